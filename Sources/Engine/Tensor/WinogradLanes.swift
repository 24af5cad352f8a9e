/// A batch of Winograd tiles in groups of eight, one tile per SIMD lane: each lane's corner
/// (z, y, x) in a volume, and per group whether all eight blocks lie inside it and, for the
/// output, whether they follow one another along a row (one 32-voxel run per row of the block).
/// Lanes past the batch's last tile repeat it, so every group is full.
struct TileLanes {
    let groups: Int
    /// Real tiles in the batch (the lanes after them are copies).
    let tiles: Int
    let bounds: (depth: Int, height: Int, width: Int)
    private var z: [SIMD8<Int>] = [], y: [SIMD8<Int>] = [], x: [SIMD8<Int>] = []
    private var inside: [Bool] = [], alongRow: [Bool] = []

    /// The corners of tiles `first ..< first+tiles` of `tiling`, minus `shift` (the padding, for
    /// input tiles), for blocks of `size` voxels per side in a volume of `bounds`.
    init(tiling: Winograd3D.Tiling, first: Int, tiles: Int, shift: (Int, Int, Int), size: Int,
         bounds: (depth: Int, height: Int, width: Int)) {
        self.tiles = tiles
        self.bounds = bounds
        groups = (tiles + 7) / 8
        var cursor = tiling.origin(first)
        var last = (0, 0, 0)
        for g in 0..<groups {
            var zs = SIMD8<Int>(), ys = SIMD8<Int>(), xs = SIMD8<Int>()
            for lane in 0..<8 {
                if g * 8 + lane < tiles {
                    last = (cursor.z - shift.0, cursor.y - shift.1, cursor.x - shift.2)
                    cursor.advance()
                }
                (zs[lane], ys[lane], xs[lane]) = last
            }
            let fits = zs.min() >= 0 && zs.max() + size <= bounds.depth && ys.min() >= 0 && ys.max() + size <= bounds.height
                && xs.min() >= 0 && xs.max() + size <= bounds.width
            z.append(zs); y.append(ys); x.append(xs)
            inside.append(fits)
            alongRow.append(fits && g * 8 + 8 <= tiles && zs.min() == zs.max() && ys.min() == ys.max()
                            && xs == xs[0] &+ SIMD8(0, 1, 2, 3, 4, 5, 6, 7) &* size)
        }
    }

    /// The `size`³ input block of each lane of group `g` from `channel`, into `q[(z * size + y) * size + x]`,
    /// zero where a block lies outside the volume (the convolution's padding). Lane by lane,
    /// as scalar stores into the vectors' memory.
    @inline(__always)
    func gather(_ q: UnsafeMutableBufferPointer<SIMD8<Float>>, group g: Int, size n: Int, channel: UnsafePointer<Float>) {
        let (d, h, w) = bounds
        let zs = z[g], ys = y[g], xs = x[g], all = inside[g]
        q.withMemoryRebound(to: Float.self) { f in
            let f = f.baseAddress!
            for lane in 0..<8 {
                let z0 = zs[lane], y0 = ys[lane], x0 = xs[lane]
                let fits = all || (z0 >= 0 && z0 + n <= d && y0 >= 0 && y0 + n <= h && x0 >= 0 && x0 + n <= w)
                for a in 0..<n {
                    for b in 0..<n {
                        let dst = f + (a * n + b) * n * 8 + lane
                        if fits {
                            let src = channel + ((z0 + a) * h + y0 + b) * w + x0
                            for c in 0..<n { dst[c * 8] = src[c] }
                        } else if z0 + a >= 0 && z0 + a < d && y0 + b >= 0 && y0 + b < h {
                            let src = channel + ((z0 + a) * h + y0 + b) * w
                            for c in 0..<n { dst[c * 8] = x0 + c >= 0 && x0 + c < w ? src[x0 + c] : 0 }
                        } else {
                            for c in 0..<n { dst[c * 8] = 0 }
                        }
                    }
                }
            }
        }
    }

    /// Writes each real lane's `size`³ output block from `q[z * 36 + y * 6 + x]` (a 6x6x6 tile
    /// whose first `size` points per axis hold the result) into `channel`, plus `bias` and
    /// `residual` (same layout as `channel`), clipped at the volume's far faces.
    @inline(__always)
    func scatter(_ q: UnsafeMutableBufferPointer<SIMD8<Float>>, group g: Int, size n: Int, bias: Float,
                 channel: UnsafeMutablePointer<Float>, residual: UnsafePointer<Float>?) {
        let (d, h, w) = bounds
        let zs = z[g], ys = y[g], xs = x[g]
        if alongRow[g] {
            let start = (zs[0] * h + ys[0]) * w + xs[0]
            for a in 0..<n {
                for b in 0..<n {
                    let offset = start + (a * h + b) * w, row = a * 36 + b * 6
                    for c in 0..<n {
                        let v = q[row + c] + bias
                        for lane in 0..<8 {
                            let i = offset + lane * n + c
                            channel[i] = v[lane] + (residual?[i] ?? 0)
                        }
                    }
                }
            }
            return
        }
        for lane in 0..<min(8, tiles - g * 8) {
            let z0 = zs[lane], y0 = ys[lane], x0 = xs[lane]
            for a in 0..<min(n, d - z0) {
                for b in 0..<min(n, h - y0) {
                    let offset = ((z0 + a) * h + y0 + b) * w + x0, row = a * 36 + b * 6
                    for c in 0..<min(n, w - x0) { channel[offset + c] = q[row + c][lane] + bias + (residual?[offset + c] ?? 0) }
                }
            }
        }
    }
}
