import Dispatch
import Engine
import Glibc

/// inotify on a set of folders, delivering batches of events on a Dispatch queue. Events are
/// hints only: the service still lists each folder at start, on overflow and periodically.
/// Not Sendable: the service's actor owns it, and its reads run on the actor's queue.
package final class InotifyWatcher {
    package struct Event: Sendable {
        package var watch: Int32
        package var mask: UInt32
        package var name: String

        package var isOverflow: Bool { mask & UInt32(IN_Q_OVERFLOW) != 0 }
        package var isDirectory: Bool { mask & UInt32(IN_ISDIR) != 0 }
        /// The watched folder itself went away or was unmounted.
        package var watchEnded: Bool { mask & UInt32(IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT) != 0 }
        /// A name left the folder.
        package var nameLeft: Bool { mask & UInt32(IN_DELETE | IN_MOVED_FROM) != 0 }
    }

    /// What the service watches in an inbox: new names, finished writes, arrivals by rename,
    /// departures, and the folder itself going away.
    package static let inboxMask = UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MOVED_FROM
                                  | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

    package let fd: Int32
    private let queue: DispatchQueue
    private var source: DispatchSourceRead?
    private var buffer = [UInt8](repeating: 0, count: 64 * 1024)

    /// Opens the inotify instance; events are read on `queue` once `start` is called.
    package init(queue: DispatchQueue) throws(SystemError) {
        fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else { throw SystemError("inotify_init1", path: "", errno: errno) }
        self.queue = queue
    }

    deinit {
        source?.cancel()
        close(fd)
    }

    /// `handler` runs on the queue with each batch read. Call once.
    package func start(_ handler: @escaping @Sendable ([Event]) -> Void) {
        let source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
        source.setEventHandler { [unowned self] in
            let events = self.drain()
            if !events.isEmpty { handler(events) }
        }
        source.resume()
        self.source = source
    }

    /// Watches a folder; returns the watch descriptor.
    package func add(_ path: String) throws(SystemError) -> Int32 {
        let wd = inotify_add_watch(fd, path, Self.inboxMask)
        guard wd >= 0 else { throw SystemError("inotify_add_watch", path: path, errno: errno) }
        return wd
    }

    package func remove(_ watch: Int32) {
        _ = inotify_rm_watch(fd, watch)
    }

    /// Stops delivering events.
    package func stop() { source?.cancel() }

    private func drain() -> [Event] {
        var events: [Event] = []
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            buffer.withUnsafeBytes { raw in
                var offset = 0
                while offset + 16 <= n {
                    let wd = raw.loadUnaligned(fromByteOffset: offset, as: Int32.self)
                    let mask = raw.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)
                    let len = Int(raw.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self))
                    var name = ""
                    if len > 0 {
                        let bytes = raw[(offset + 16)..<(offset + 16 + len)]
                        name = String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
                    }
                    events.append(Event(watch: wd, mask: mask, name: name))
                    offset += 16 + len
                }
            }
        }
        return events
    }
}
