import Glibc

/// Large float arrays whose pages the kernel maps in one call per worker before the first
/// write (`MADV_POPULATE_WRITE`), instead of one page fault per 4 KiB page as a layer first
/// touches them. The values are left as the kernel gives them (zero); every caller writes
/// each one before reading it. On a kernel without the call, pages fault in as usual.
enum FreshMemory {
    /// `count` floats, their pages mapped on `threads` workers.
    static func floats(_ count: Int, threads: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            if let base = buffer.baseAddress { populate(base, bytes: count * MemoryLayout<Float>.stride, threads: threads) }
            initialized = count
        }
    }

    /// Maps the whole pages inside `bytes` bytes at `start`, split among `threads` workers.
    static func populate(_ start: UnsafeMutableRawPointer, bytes: Int, threads: Int) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let first = (Int(bitPattern: start) + page - 1) / page * page, end = (Int(bitPattern: start) + bytes) / page * page
        guard end - first >= 64 * page else { return }
        let pages = (end - first) / page, workers = max(1, threads)
        ParallelSlices.forEach(workers, threads: workers) { worker in
            let lo = first + pages * worker / workers * page, hi = first + pages * (worker + 1) / workers * page
            _ = madvise(UnsafeMutableRawPointer(bitPattern: lo), hi - lo, MADV_POPULATE_WRITE)
        }
    }
}
