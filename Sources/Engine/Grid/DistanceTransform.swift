/// Exact Euclidean distances on a voxel grid with any voxel size (Felzenszwalb and
/// Huttenlocher's separable lower-envelope method), in millimetres.
public enum DistanceTransform {
    /// Columns gathered together for the passes along y and z: whole cache lines are read and
    /// written, and each column is then worked on contiguously.
    static let block = 64

    /// For every voxel, the distance to the nearest voxel where `mask` is nonzero (0 there).
    /// One pass along each axis (x over rows, y within each slice, z within each coronal
    /// plane), each pass split over `threads` workers; every line's arithmetic is the same
    /// whatever the number of workers.
    ///
    /// With `box`, only the voxels in the box get their distance, exactly the value the whole
    /// grid's transform gives them (every line a box voxel depends on is transformed whole, the
    /// same way; only lines and values nothing in the box reads are skipped); every other voxel
    /// is set to `elsewhere`, which the caller chooses so that a value read there by mistake
    /// fails safe.
    public static func distance(to mask: [UInt8], grid: Grid3D, spacing: [Double],
                                threads: Int = EngineThreads.available,
                                box: VoxelBox? = nil, elsewhere: Float = 0) -> [Float] {
        let (nx, ny, nz) = (grid.nx, grid.ny, grid.nz)
        let w = (0..<3).map { Float(spacing[$0] * spacing[$0]) }
        guard grid.count > 0 else { return [] }
        let box = box ?? .whole(grid)
        guard !box.isEmpty else { return [Float](repeating: elsewhere, count: grid.count) }
        let (lo, hi) = (box.lower, box.upper)
        // every value is written by the first pass
        return [Float](unsafeUninitializedCapacity: grid.count) { buffer, initialized in
            mask.withUnsafeBufferPointer { maskBuffer in
                let m = UnsafeShared(maskBuffer.baseAddress!), out = UnsafeShared(buffer.baseAddress!)
                // along x: straight from the mask, row by row
                ParallelSlices.forEach(nz, threads: threads) { z in
                    for row in (z * ny)..<((z + 1) * ny) {
                        nearestInRow(m.pointer + row * nx, n: nx, w: w[0], into: out.pointer + row * nx)
                    }
                }
                // along y within each axial slice (the box's columns, every slice: the z pass
                // reads them whole), then along z within each coronal plane of the box
                ParallelSlices.forEach(nz, threads: threads) { z in
                    columns(out.pointer + z * nx * ny + lo.x, count: hi.x - lo.x, length: ny, stride: nx,
                            keep: lo.y..<hi.y, w: w[1], root: false)
                }
                ParallelSlices.forEach(hi.y - lo.y, threads: threads) { y in
                    columns(out.pointer + (lo.y + y) * nx + lo.x, count: hi.x - lo.x, length: nz, stride: nx * ny,
                            keep: lo.z..<hi.z, w: w[2], root: true)
                }
                if box != .whole(grid) {
                    ParallelSlices.forEach(nz, threads: threads) { z in
                        fillOutside(box, slice: z, grid: grid, with: elsewhere, in: out.pointer)
                    }
                }
            }
            initialized = grid.count
        }
    }

    /// Sets the voxels of axial slice `z` outside `box` to `value`.
    private static func fillOutside(_ box: VoxelBox, slice z: Int, grid: Grid3D, with value: Float,
                                    in out: UnsafeMutablePointer<Float>) {
        let (nx, ny) = (grid.nx, grid.ny)
        let slice = out + z * nx * ny
        guard z >= box.lower.z, z < box.upper.z else {
            slice.update(repeating: value, count: nx * ny)
            return
        }
        for y in 0..<ny {
            let row = slice + y * nx
            guard y >= box.lower.y, y < box.upper.y else {
                row.update(repeating: value, count: nx)
                continue
            }
            row.update(repeating: value, count: box.lower.x)
            (row + box.upper.x).update(repeating: value, count: nx - box.upper.x)
        }
    }

    /// The first pass on a row of the mask: every value taking part is 0, and the lower
    /// envelope of parabolas of equal height is simply the nearest mask voxel (on a tie either
    /// gives the same distance), so the envelope's result `w * dq * dq` comes from the nearest
    /// voxel on each side, found in one sweep each way; a row without mask stays at 1e20.
    private static func nearestInRow(_ mask: UnsafeMutablePointer<UInt8>, n: Int, w: Float, into out: UnsafeMutablePointer<Float>) {
        var last = -1
        for q in 0..<n {
            if mask[q] != 0 { last = q }
            out[q] = last < 0 ? 1e20 : Float(q - last)
        }
        guard last >= 0 else { return }
        var next = -1
        for q in stride(from: n - 1, through: 0, by: -1) {
            if mask[q] != 0 { next = q }
            let dq = next < 0 || (out[q] < 1e19 && out[q] <= Float(next - q)) ? out[q] : Float(next - q)
            out[q] = w * dq * dq
        }
    }

    /// Transforms `count` neighbouring columns (x = 0..<count) of `length` values `stride`
    /// apart, in blocks, each column whole, storing back only the positions in `keep`; with
    /// `root`, stores square roots (the last pass).
    private static func columns(_ base: UnsafeMutablePointer<Float>, count: Int, length: Int, stride: Int,
                                keep: Range<Int>, w: Float, root: Bool) {
        let line = Line(capacity: length)
        let gathered = UnsafeMutablePointer<Float>.allocate(capacity: 2 * block * length)
        defer { line.free(); gathered.deallocate() }
        let results = gathered + block * length
        var x0 = 0
        while x0 < count {
            let width = min(block, count - x0)
            for i in 0..<length {
                let src = base + i * stride + x0
                for j in 0..<width { gathered[j * length + i] = src[j] }
            }
            for j in 0..<width {
                line.envelope(gathered + j * length, n: length, w: w, keep: keep, into: results + j * length)
            }
            for i in keep {
                let dst = base + i * stride + x0
                if root {
                    for j in 0..<width { dst[j] = results[j * length + i].squareRoot() }
                } else {
                    for j in 0..<width { dst[j] = results[j * length + i] }
                }
            }
            x0 += width
        }
    }

    /// Scratch for one line: the envelope's parabolas `v`, their boundaries `z`, and each
    /// point's `f[q] + w * q * q`.
    private struct Line {
        let v: UnsafeMutablePointer<Int>, z: UnsafeMutablePointer<Float>, g: UnsafeMutablePointer<Float>

        init(capacity n: Int) {
            v = .allocate(capacity: n)
            z = .allocate(capacity: n + 1)
            g = .allocate(capacity: n)
        }

        func free() {
            v.deallocate(); z.deallocate(); g.deallocate()
        }

        /// 1D squared distance transform of `f` with squared step `w`, into `out` at the
        /// positions in `keep` (the envelope is built from the whole line).
        ///
        /// A run of zeros (mask voxels) enters the envelope by its two ends only: a zero
        /// parabola is never removed by a later one (they meet beyond it), so the run's inner
        /// parabolas only ever decide the positions inside the run, where the distance is 0;
        /// every other position gets the same parabola, so the same value, as with all of them.
        func envelope(_ f: UnsafeMutablePointer<Float>, n: Int, w: Float, keep: Range<Int>,
                      into out: UnsafeMutablePointer<Float>) {
            let inf = Float.infinity, w2 = 2 * w
            var k = -1
            var next = 0
            while next < n {
                let q = next
                next += 1
                guard f[q] < 1e19 else { continue }
                if f[q] == 0 {
                    // the run's first zero now, its last (if another) on the next step
                    var end = q
                    while end + 1 < n && f[end + 1] == 0 { end += 1 }
                    if end > q + 1 { next = end }
                }
                let gq = f[q] + w * Float(q &* q)
                g[q] = gq
                if k < 0 {
                    k = 0; v[0] = q; z[0] = -inf; z[1] = inf
                    continue
                }
                var s: Float
                while true {
                    let p = v[k]
                    s = (gq - g[p]) / (w2 * Float(q &- p))
                    if s <= z[k] {
                        k -= 1
                        if k < 0 { break }
                    } else { break }
                }
                k += 1
                v[k] = q
                z[k] = k == 0 ? -inf : s
                z[k + 1] = inf
            }
            if k < 0 {
                (out + keep.lowerBound).update(from: f + keep.lowerBound, count: keep.count)
                return
            }
            var j = 0
            for q in keep {
                guard f[q] != 0 else {
                    out[q] = 0
                    continue
                }
                while z[j + 1] < Float(q) { j += 1 }
                let p = v[j]
                let dq = Float(q &- p)
                out[q] = w * dq * dq + f[p]
            }
        }
    }
}
