import COpenBLAS
import Dispatch

/// Winograd convolutions for stride-1 3x3x3 kernels (Lavin and Gray 2016, extended to three
/// axes): input tiles and 3x3x3 filters are taken to a transformed domain where an output
/// block needs one multiply per point and channel pair. F(2x2x2, 3x3x3) (here): 4x4x4 input
/// tiles, 64 points per 2x2x2 block instead of 216 multiplies; F(4x4x4, 3x3x3): ``WinogradF43``.
/// The products over channels are one matrix product per point and batch of tiles, on OpenBLAS.
///
/// 1-D transforms (F(2,3)): `Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]`,
/// `G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1]`, `Aᵀ = [1 1 1 0; 0 1 -1 -1]`, applied along each axis.
enum Winograd3D {
    /// Which output block a tile gives: F(2x2x2, 3x3x3) (64 points) or F(4x4x4, 3x3x3) (216
    /// points, ``WinogradF43``: fewer multiplies, about 16x the rounding error of F(2,3)).
    enum Variant: Sendable {
        case f2, f4
        /// Output voxels per tile side.
        var tile: Int { self == .f2 ? 2 : 4 }
        /// Transformed-domain points per tile.
        var points: Int { (tile + 2) * (tile + 2) * (tile + 2) }
        /// `G`, `(tile + 2) x 3`.
        var filterTransform: [[Double]] {
            self == .f2 ? [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]] : WinogradF43.filterTransform
        }
    }

    /// Filters `[out, in, 3, 3, 3]` to `[points, out, in]` (`G g Gᵀ` along each axis, in double precision).
    static func transformWeights(_ weight: UnsafePointer<Float>, outChannels: Int, inChannels: Int, variant: Variant,
                                 into u: UnsafeMutablePointer<Float>) {
        let pairs = outChannels * inChannels, n = variant.tile + 2, g = variant.filterTransform
        var t1 = [Double](repeating: 0, count: 9 * n), t2 = [Double](repeating: 0, count: 3 * n * n)
        for pair in 0..<pairs {
            let f = weight + pair * 27
            // along x: [z][y][3] -> [z][y][n]; along y: [z][3][n] -> [z][n][n]; along z: [3][n][n] -> [n][n][n]
            for r in 0..<9 {
                for a in 0..<n { t1[r * n + a] = (0..<3).reduce(0.0) { $0 + g[a][$1] * Double(f[r * 3 + $1]) } }
            }
            for z in 0..<3 {
                for b in 0..<n {
                    for a in 0..<n { t2[(z * n + b) * n + a] = (0..<3).reduce(0.0) { $0 + g[b][$1] * t1[(z * 3 + $1) * n + a] } }
                }
            }
            for c in 0..<n {
                for yx in 0..<(n * n) {
                    let value = (0..<3).reduce(0.0) { $0 + g[c][$1] * t2[$1 * n * n + yx] }
                    u[(c * n * n + yx) * pairs + pair] = Float(value)
                }
            }
        }
    }

    /// The sizes of an input volume (its values are passed as a pointer).
    struct Shape {
        var channels: Int, depth: Int, height: Int, width: Int
        init(channels: Int, depth: Int, height: Int, width: Int) {
            self.channels = channels; self.depth = depth; self.height = height; self.width = width
        }
        init(_ x: Tensor) { self.init(channels: x.channels, depth: x.depth, height: x.height, width: x.width) }
    }

    /// Tiles of the output: blocks of `side` voxels per axis, counted per axis.
    struct Tiling {
        var tz: Int, ty: Int, tx: Int
        let side: Int
        var count: Int { tz * ty * tx }
        init(od: Int, oh: Int, ow: Int, side: Int) {
            self.side = side
            tz = (od + side - 1) / side; ty = (oh + side - 1) / side; tx = (ow + side - 1) / side
        }

        /// The first output voxel (z, y, x) of tile `index`.
        func origin(_ index: Int) -> Cursor {
            Cursor(z: (index / (ty * tx)) * side, y: ((index / tx) % ty) * side, x: (index % tx) * side,
                   width: tx * side, height: ty * side, side: side)
        }
    }

    /// A tile's first output voxel, stepped tile by tile without divisions.
    struct Cursor {
        var z: Int, y: Int, x: Int
        let width: Int, height: Int, side: Int
        @inline(__always) mutating func advance() {
            x += side
            if x == width { x = 0; y += side; if y == height { y = 0; z += side } }
        }
    }

    /// The floats of one batch's transformed input (1 MiB), which its products then overwrite
    /// point by point: sized to stay in a core's second-level cache between the input
    /// transform, the products and the output transform. Measured in the slab convolutions of a
    /// 16x176x176 volume, 2 threads, best of 5 alternated runs, with separate input and product
    /// buffers of 512 KiB together against 4 MiB: 42->42 0.104-0.107 s -> 0.090-0.092 s, 42->21
    /// 0.068-0.076 -> 0.065-0.067 s, 21->21 0.041 -> 0.038-0.040 s; one shared buffer of twice
    /// the tiles then took HD-BET's F(4,3) layers from 3.52-3.97 s to 3.40-3.46 s (best and
    /// median of 5 alternated whole-head runs). Smaller budgets (8 tiles) are slower.
    static let batchFloats = 1 << 18

    /// The convolution of `x` (padding `pads` per axis) into `out` (`[out, od, oh, ow]`, its
    /// channels `outChannelStride` values apart, `od * oh * ow` when nil), bias and `residual`
    /// (same layout as `out`; it may be `out` itself) added.
    static func convolve(_ x: Shape, src: UnsafePointer<Float>, transformedWeights u: UnsafePointer<Float>, variant: Variant,
                         bias: UnsafePointer<Float>?, residual: UnsafePointer<Float>?, outChannels: Int, pads: [Int],
                         out: UnsafeMutablePointer<Float>, od: Int, oh: Int, ow: Int, outChannelStride: Int? = nil, threads: Int) {
        let cin = x.channels, cout = outChannels, channelStride = outChannelStride ?? od * oh * ow
        let tiling = Tiling(od: od, oh: oh, ow: ow, side: variant.tile), points = variant.points
        // tiles per batch: one batch's transformed input within `batchFloats`, at least 16 tiles
        // (a multiple of 8: F(4,3) transforms eight tiles at a time, one per SIMD lane)
        let batch = (max(16, min(tiling.count, batchFloats / (points * max(cin, cout)))) + 7) / 8 * 8
        let batches = (tiling.count + batch - 1) / batch
        // one block per point, for its input and then its products; the blocks start one cache
        // line apart modulo 4 KiB, so a tile's scattered stores (and the output transform's
        // loads) do not all fall in one cache set
        let block = padded(max(cin, cout) * batch)
        let workers = max(1, min(threads, batches))
        // each worker takes an equal share of the tiles (a multiple of 8), in batches: on small
        // volumes a few whole batches would leave one worker waiting for the other
        let share = ((tiling.count + workers - 1) / workers + 7) / 8 * 8
        let s = UnsafeShared(src), w = UnsafeShared(u), o = UnsafeShared(out)
        let b = bias.map { UnsafeShared($0) }, res = residual.map { UnsafeShared($0) }
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            // point e's input in block e + 1, its products in block e: each product overwrites
            // the input of the point before it, already consumed
            let buffer = ScratchBuffers.shared.take((points + 1) * block)
            defer { ScratchBuffers.shared.give(buffer) }
            let m = buffer.pointer, v = buffer.pointer + block
            let end = min(tiling.count, (worker + 1) * share)
            var t0 = worker * share
            while t0 < end {
                let tiles = min(batch, end - t0)
                if variant == .f2 {
                    transformInput(x, UnsafePointer(s.pointer), pads: pads, tiling: tiling, first: t0, tiles: tiles, stride: batch,
                                   block: block, into: v)
                } else {
                    WinogradF43.transformInput(x, UnsafePointer(s.pointer), pads: pads, tiling: tiling, first: t0, tiles: tiles,
                                               stride: batch, block: block, into: v)
                }
                for e in 0..<points {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(cout), Int32(tiles), Int32(cin),
                                1, w.pointer + e * cout * cin, Int32(cin), v + e * block, Int32(batch),
                                0, m + e * block, Int32(batch))
                }
                let bias = b.map { UnsafePointer($0.pointer) }, residual = res.map { UnsafePointer($0.pointer) }
                if variant == .f2 {
                    transformOutput(m, stride: batch, block: block, channels: cout, bias: bias, residual: residual,
                                    tiling: tiling, first: t0, tiles: tiles, into: o.pointer, od: od, oh: oh, ow: ow,
                                    channelStride: channelStride)
                } else {
                    WinogradF43.transformOutput(m, stride: batch, block: block, channels: cout, bias: bias, residual: residual,
                                                tiling: tiling, first: t0, tiles: tiles, into: o.pointer, od: od, oh: oh, ow: ow,
                                                channelStride: channelStride)
                }
                t0 += tiles
            }
        }
    }

    /// A point block of `floats` rounded up so that consecutive blocks start 16 floats apart modulo 1024.
    static func padded(_ floats: Int) -> Int {
        let rounded = (floats + 15) / 16 * 16
        return rounded + (16 - rounded % 1024 + 1024) % 1024
    }

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
    static func transformInput(_ x: Shape, _ src: UnsafePointer<Float>, pads: [Int], tiling: Tiling,
                               first: Int, tiles: Int, stride: Int, block: Int, into v: UnsafeMutablePointer<Float>) {
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
                    Winograd3D.gatherTile(rows, size: 4, channel: channel, z0: z0, y0: y0, x0: x0, depth: d, height: h, width: w)
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
    static func transformOutput(_ m: UnsafePointer<Float>, stride: Int, block: Int, channels: Int, bias: UnsafePointer<Float>?,
                                residual: UnsafePointer<Float>?, tiling: Tiling, first: Int, tiles: Int,
                                into out: UnsafeMutablePointer<Float>, od: Int, oh: Int, ow: Int, channelStride plane: Int) {
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
