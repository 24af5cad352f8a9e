/// Winograd F(2x2x2, 3x3x3)'s tile transforms (4x4x4 input tiles, 64 points per 2x2x2 output
/// block; the algebra is in Engine's `Winograd3D`): `Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]`
/// and `Aᵀ = [1 1 1 0; 0 1 -1 -1]` along each axis.
public enum WinogradF23 {
    /// Gathers the `size`³ input tile whose corner is at (z0, y0, x0) into `rows`: `size`² rows
    /// (z, y) along x in lanes `0..<size`, zero where the tile lies outside the volume (the
    /// convolution's padding). F(2,3)'s (F(4,3) gathers eight tiles at a time: ``TileLanes``).
    @inline(__always)
    static func gatherTile<V: SIMD>(_ rows: UnsafeMutableBufferPointer<V>, size n: Int, channel: UnsafePointer<Float>,
                                    z0: Int, y0: Int, x0: Int, depth d: Int, height h: Int, width w: Int) where V.Scalar == Float {
        let inside = z0 >= 0 && z0 + n <= d && y0 >= 0 && y0 + n <= h && x0 >= 0 && x0 + n <= w
        for r in 0..<(n * n) {
            let z = z0 + r / n, y = y0 + r % n
            var row = V.zero
            if inside {
                let p = channel + (z * h + y) * w + x0
                for k in 0..<n { row[k] = p[k] }
            } else if z >= 0 && z < d && y >= 0 && y < h {
                let p = channel + (z * h + y) * w
                for k in 0..<n where x0 + k >= 0 && x0 + k < w { row[k] = p[x0 + k] }
            }
            rows[r] = row
        }
    }

    /// `Bᵀ d B` along each axis for tiles `first ..< first+tiles`: `v[e * block + ci * stride + t]`.
    public static func transformInput(channels: Int, depth: Int, height: Int, width: Int, _ src: UnsafePointer<Float>,
                               pads: [Int], output: (depth: Int, height: Int, width: Int), first: Int, tiles: Int,
                               stride: Int, block: Int, into v: UnsafeMutablePointer<Float>) {
        let x = (channels: channels, depth: depth, height: height, width: width)
        let tiling = Tiling(od: output.depth, oh: output.height, ow: output.width, side: 2)
        let (d, h, w) = (x.depth, x.height, x.width)
        let plane = d * h * w, rowStep = block
        let (pz, py, px) = (pads[0], pads[1], pads[2])
        var tile = [SIMD4<Float>](repeating: .zero, count: 16)
        tile.withUnsafeMutableBufferPointer { rows in
            // channel by channel, so the 64 rows a tile writes stay in L1 from one tile to the next
            for ci in 0..<x.channels {
                let channel = src + ci * plane
                var cursor = tiling.origin(first)
                for t in 0..<tiles {
                    defer { cursor.advance() }
                    let z0 = cursor.z - pz, y0 = cursor.y - py, x0 = cursor.x - px
                    gatherTile(rows, size: 4, channel: channel, z0: z0, y0: y0, x0: x0, depth: d, height: h, width: w)
                    // along z (rows r, r+4, r+8, r+12 share y), then along y, as whole rows
                    for yy in 0..<4 {
                        let a = rows[yy], b = rows[4 + yy], c = rows[8 + yy], e = rows[12 + yy]
                        rows[yy] = a - c; rows[4 + yy] = b + c; rows[8 + yy] = c - b; rows[12 + yy] = b - e
                    }
                    for zz in 0..<4 {
                        let base = zz * 4
                        let a = rows[base], b = rows[base + 1], c = rows[base + 2], e = rows[base + 3]
                        rows[base] = a - c; rows[base + 1] = b + c; rows[base + 2] = c - b; rows[base + 3] = b - e
                    }
                    // along x, within each row; then scatter the 64 points
                    let dst = v + ci * stride + t
                    for r in 0..<16 {
                        let q = rows[r]
                        let out = dst + (r * 4) * rowStep
                        out[0] = q[0] - q[2]
                        out[rowStep] = q[1] + q[2]
                        out[2 * rowStep] = q[2] - q[1]
                        out[3 * rowStep] = q[1] - q[3]
                    }
                }
            }
        }
    }

    /// `Aᵀ m A` along each axis: products `m[e][co][t]` to 2x2x2 output blocks, plus bias and
    /// residual; output channels `channelStride` values apart.
    public static func transformOutput(_ m: UnsafePointer<Float>, stride: Int, block: Int, channels: Int, bias: UnsafePointer<Float>?,
                                       residual: UnsafePointer<Float>?, first: Int, tiles: Int,
                                       into out: UnsafeMutablePointer<Float>, od: Int, oh: Int, ow: Int, channelStride plane: Int) {
        let tiling = Tiling(od: od, oh: oh, ow: ow, side: 2)
        let rowStep = block
        var rows = [SIMD4<Float>](repeating: .zero, count: 16)
        rows.withUnsafeMutableBufferPointer { q in
            for co in 0..<channels {
                let b = bias?[co] ?? 0
                var cursor = tiling.origin(first)
                for t in 0..<tiles {
                    defer { cursor.advance() }
                    let src = m + co * stride + t
                    for r in 0..<16 {
                        let p = src + (r * 4) * rowStep
                        q[r] = SIMD4(p[0], p[rowStep], p[2 * rowStep], p[3 * rowStep])
                    }
                    // along z, for each y (rows z*4+y): 16 rows -> 8; then along y -> 4 rows (z, y)
                    let r0 = q[0] + q[4] + q[8], r1 = q[4] - q[8] - q[12]
                    let s0 = q[1] + q[5] + q[9], s1 = q[5] - q[9] - q[13]
                    let u0 = q[2] + q[6] + q[10], u1 = q[6] - q[10] - q[14]
                    let w0 = q[3] + q[7] + q[11], w1 = q[7] - q[11] - q[15]
                    let z = cursor.z, y = cursor.y, x = cursor.x
                    // along x within the row, clipped at the far borders of odd sizes
                    func store(_ row: SIMD4<Float>, _ dz: Int, _ dy: Int) {
                        guard z + dz < od && y + dy < oh else { return }
                        let offset = co * plane + ((z + dz) * oh + y + dy) * ow + x
                        let p = out + offset
                        let r0 = residual?[offset] ?? 0
                        p[0] = row[0] + row[1] + row[2] + b + r0
                        if x + 1 < ow { p[1] = row[1] - row[2] - row[3] + b + (residual?[offset + 1] ?? 0) }
                    }
                    store(r0 + s0 + u0, 0, 0)
                    store(s0 - u0 - w0, 0, 1)
                    store(r1 + s1 + u1, 1, 0)
                    store(s1 - u1 - w1, 1, 1)
                }
            }
        }
    }
}
