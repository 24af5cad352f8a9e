import Foundation

/// Splits independent work (slices, rows, columns, channels) among worker threads. Each
/// item is done by exactly one worker, in the same way as on one thread, so a result never
/// depends on how many workers there were.
enum ParallelSlices {
    /// Calls `body(item)` for every item in `0..<count`, items taken in interleaved chunks of
    /// `chunk` by up to `threads` workers.
    static func forEach(_ count: Int, threads: Int, chunk: Int = 1, _ body: (Int) -> Void) {
        let chunks = (count + chunk - 1) / max(1, chunk)
        let workers = max(1, min(threads, chunks))
        guard workers > 1 else {
            for item in 0..<count { body(item) }
            return
        }
        withoutActuallyEscaping(body) { body in
            let shared = UnsafeSharedBody(body)
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                var c = worker
                while c < chunks {
                    for item in (c * chunk)..<min(count, (c + 1) * chunk) { shared.body(item) }
                    c += workers
                }
            }
        }
    }

    /// Per-worker partial results of `body(item, &partial)`, one per worker, for the caller to
    /// combine (only with order-independent operations: counts, minima, maxima).
    static func reduce<Partial>(_ count: Int, threads: Int, initial: Partial,
                                _ body: (Int, inout Partial) -> Void) -> [Partial] {
        let workers = max(1, min(threads, count))
        var partials = [Partial](repeating: initial, count: workers)
        partials.withUnsafeMutableBufferPointer { buffer in
            let out = UnsafeShared(buffer.baseAddress!)
            forEach(workers, threads: workers) { worker in
                var item = worker
                while item < count {
                    body(item, &out.pointer[worker])
                    item += workers
                }
            }
        }
        return partials
    }
}

/// A closure handed to concurrent workers that only touch disjoint data (see `UnsafeShared`).
private struct UnsafeSharedBody: @unchecked Sendable {
    let body: (Int) -> Void
    init(_ body: @escaping (Int) -> Void) { self.body = body }
}
