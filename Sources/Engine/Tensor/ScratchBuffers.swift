import Foundation

/// Float scratch buffers kept between the layers of a network pass, so that each layer's
/// slab and tile buffers reuse pages the previous layer already touched instead of asking the
/// kernel for fresh zeroed ones (a large buffer is mapped anew on each allocation and faulted
/// in page by page). A buffer is held by one caller between ``take(_:)`` and ``give(_:)``;
/// free buffers are released by ``trim()`` at the end of a pass, so nothing stays between scans.
final class ScratchBuffers: @unchecked Sendable {
    /// One buffer and how many floats it holds.
    struct Buffer {
        let pointer: UnsafeMutablePointer<Float>
        let capacity: Int
    }

    /// The engine's buffers (shared by concurrent jobs: each buffer has one holder at a time).
    static let shared = ScratchBuffers()

    private let lock = NSLock()
    private var free: [Buffer] = []

    /// A buffer of at least `count` floats (its values are whatever it last held): the smallest
    /// free one that is large enough, or a new one (free buffers too small for it are released).
    func take(_ count: Int) -> Buffer {
        let (reused, released): (Buffer?, [Buffer]) = lock.withLock {
            if let best = free.indices.filter({ free[$0].capacity >= count }).min(by: { free[$0].capacity < free[$1].capacity }) {
                return (free.remove(at: best), [])
            }
            defer { free.removeAll() }
            return (nil, free)
        }
        for buffer in released { buffer.pointer.deallocate() }
        return reused ?? Buffer(pointer: .allocate(capacity: count), capacity: count)
    }

    /// Hands `buffer` back for reuse.
    func give(_ buffer: Buffer) {
        lock.withLock { free.append(buffer) }
    }

    /// Releases every free buffer.
    func trim() {
        let released = lock.withLock { () -> [Buffer] in
            defer { free.removeAll() }
            return free
        }
        for buffer in released { buffer.pointer.deallocate() }
    }
}
