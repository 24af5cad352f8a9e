import Dispatch
import Glibc

/// inotify on a set of folders, delivering batches of events on a Dispatch queue. Events are
/// hints only: the service still lists each folder at start, on overflow and periodically.
final class InotifyWatcher: @unchecked Sendable {
    struct Event: Sendable {
        var watch: Int32
        var mask: UInt32
        var name: String

        var isOverflow: Bool { mask & UInt32(IN_Q_OVERFLOW) != 0 }
        var isDirectory: Bool { mask & UInt32(IN_ISDIR) != 0 }
        /// The watched folder itself went away or was unmounted.
        var watchEnded: Bool { mask & UInt32(IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT) != 0 }
        /// A name left the folder.
        var nameLeft: Bool { mask & UInt32(IN_DELETE | IN_MOVED_FROM) != 0 }
    }

    /// What the service watches in an inbox: new names, finished writes, arrivals by rename,
    /// departures, and the folder itself going away.
    static let inboxMask = UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MOVED_FROM
                                  | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

    let fd: Int32
    private let source: DispatchSourceRead
    private var buffer = [UInt8](repeating: 0, count: 64 * 1024)

    /// `handler` runs on `queue` with each batch read.
    init(queue: DispatchQueue, handler: @escaping @Sendable ([Event]) -> Void) throws(SystemError) {
        fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else { throw SystemError("inotify_init1", path: "", errno: errno) }
        source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
        source.setEventHandler { [unowned self] in
            let events = self.drain()
            if !events.isEmpty { handler(events) }
        }
        source.resume()
    }

    deinit {
        source.cancel()
        close(fd)
    }

    /// Watches a folder; returns the watch descriptor.
    func add(_ path: String) throws(SystemError) -> Int32 {
        let wd = inotify_add_watch(fd, path, Self.inboxMask)
        guard wd >= 0 else { throw SystemError("inotify_add_watch", path: path, errno: errno) }
        return wd
    }

    func remove(_ watch: Int32) {
        _ = inotify_rm_watch(fd, watch)
    }

    /// Stops delivering events.
    func stop() { source.cancel() }

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

/// A failed system call: which, on what, and the system's reason.
struct SystemError: Error, Sendable, CustomStringConvertible {
    var call: String
    var path: String
    var errno: Int32

    init(_ call: String, path: String, errno: Int32) {
        self.call = call
        self.path = path
        self.errno = errno
    }

    var description: String { "\(call) \(path): \(String(cString: strerror(errno)))" }
}
