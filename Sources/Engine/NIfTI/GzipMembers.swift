import CNifti
import Glibc

/// Voxel data compressed as independent gzip members of `blockBytes` each (the last one
/// shorter), made on several workers at once. A file of several members is one gzip file
/// (RFC 1952, section 2.2): zlib's gzread (libnifti, FSL), Python's gzip (nibabel) and
/// defacer's own reader inflate it to the same bytes as a single stream. The members depend
/// only on the data and the block size, never on the number of workers.
enum GzipMembers {
    /// Blocks compressed before they are written: memory beyond the image stays about
    /// `window` blocks whatever the image's size.
    static let window = 16

    /// Compresses `data` at zlib `level` on `threads` workers, `window` blocks at a time, and hands
    /// each member to `append` in order. Returns the members' sizes, or nil when compressing failed.
    static func compress(_ data: UnsafeRawBufferPointer, blockBytes: Int, level: Int32, threads: Int,
                         append: (UnsafeRawBufferPointer) -> Bool) -> [Int64]? {
        let count = (data.count + blockBytes - 1) / blockBytes
        let capacity = Int(dfc_gzip_bound(Int64(blockBytes)))
        let batch = min(count, window)
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: max(1, batch * capacity))
        defer { buffer.deallocate() }
        guard let start = data.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return [] }
        let (base, out) = (UnsafeShared(start), UnsafeShared(buffer))
        var sizes = [Int64](repeating: -1, count: count)
        for first in stride(from: 0, to: count, by: batch) {
            let n = min(batch, count - first)
            sizes.withUnsafeMutableBufferPointer { s in
                let size = UnsafeShared(s.baseAddress!)
                ParallelSlices.forEach(n, threads: threads) { k in
                    let i = first + k, bytes = min(blockBytes, data.count - i * blockBytes)
                    size.pointer[i] = dfc_gzip_member(base.pointer + i * blockBytes, Int64(bytes), level,
                                                      out.pointer + k * capacity, Int64(capacity))
                }
            }
            for k in 0..<n {
                guard sizes[first + k] >= 0,
                      append(UnsafeRawBufferPointer(start: buffer + k * capacity, count: Int(sizes[first + k]))) else { return nil }
            }
        }
        return sizes
    }

    /// Re-reads the members (of `sizes`) from `file`, where they start at byte `start`, each on
    /// a worker: every one a whole gzip member (CRC and length) that inflates to exactly its
    /// block of `data`. Returns the first failing DFC_READ_ code, or DFC_READ_OK.
    static func verify(file: String, start: Int64, sizes: [Int64], blockBytes: Int,
                       against data: UnsafeRawBufferPointer, threads: Int) -> Int32 {
        var offsets = [Int64](repeating: start, count: sizes.count)
        for i in offsets.indices.dropFirst() { offsets[i] = offsets[i - 1] + sizes[i - 1] }
        var status = [Int32](repeating: Int32(DFC_READ_OK), count: sizes.count)
        guard let first = data.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return Int32(DFC_READ_OK) }
        let base = UnsafeShared(first)
        status.withUnsafeMutableBufferPointer { s in
            let out = UnsafeShared(s.baseAddress!)
            ParallelSlices.forEach(sizes.count, threads: threads) { i in
                let n = min(blockBytes, data.count - i * blockBytes)
                out.pointer[i] = dfc_verify_gzip_member(file, offsets[i], sizes[i], base.pointer + i * blockBytes, Int64(n))
            }
        }
        return status.first { $0 != Int32(DFC_READ_OK) } ?? Int32(DFC_READ_OK)
    }
}
