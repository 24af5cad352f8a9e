import COpenBLAS
import Dispatch
import TileTransforms

/// Winograd convolutions for stride-1 3x3x3 kernels (Lavin and Gray 2016, extended to three
/// axes): input tiles and 3x3x3 filters are taken to a transformed domain where an output
/// block needs one multiply per point and channel pair. F(2x2x2, 3x3x3) (here): 4x4x4 input
/// tiles, 64 points per 2x2x2 block instead of 216 multiplies; F(4x4x4, 3x3x3): 6x6x6 tiles, 216
/// points per 4x4x4 block. The tile transforms are in the `TileTransforms` module (built twice,
/// see ``TileTransformCode``); the products over channels are one matrix product per point and
/// batch of tiles, on OpenBLAS.
///
/// 1-D transforms (F(2,3)): `Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]`,
/// `G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1]`, `Aᵀ = [1 1 1 0; 0 1 -1 -1]`, applied along each axis.
enum Winograd3D {
    /// Which output block a tile gives: F(2x2x2, 3x3x3) (64 points) or F(4x4x4, 3x3x3) (216
    /// points, `TileTransforms.WinogradF43`: fewer multiplies, about 16x the rounding error of F(2,3)).
    enum Variant: Sendable {
        case f2, f4
        /// Output voxels per tile side.
        var tile: Int { self == .f2 ? 2 : 4 }
        /// Transformed-domain points per tile.
        var points: Int { (tile + 2) * (tile + 2) * (tile + 2) }
        /// `G`, `(tile + 2) x 3`.
        var filterTransform: [[Double]] {
            self == .f2 ? [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]] : TileTransforms.WinogradF43.filterTransform
        }
    }

    /// Filters `[out, in, 3, 3, 3]` to `[points, out, in]` (`G g Gᵀ` along each axis, in double
    /// precision; each sum taken as `(g₀f₀ + g₁f₁) + g₂f₂`).
    static func transformWeights(_ weight: UnsafePointer<Float>, outChannels: Int, inChannels: Int, variant: Variant,
                                 into u: UnsafeMutablePointer<Float>) {
        let pairs = outChannels * inChannels, n = variant.tile + 2
        let g = variant.filterTransform.flatMap { $0 }  // row a: g[a * 3 ..< a * 3 + 3]
        var scratch = [Double](repeating: 0, count: 9 * n + 3 * n * n)
        g.withUnsafeBufferPointer { g in
            scratch.withUnsafeMutableBufferPointer { scratch in
                let t1 = scratch.baseAddress!, t2 = t1 + 9 * n
                @inline(__always) func sum(_ row: Int, _ a: Double, _ b: Double, _ c: Double) -> Double {
                    g[row * 3] * a + g[row * 3 + 1] * b + g[row * 3 + 2] * c
                }
                for pair in 0..<pairs {
                    let f = weight + pair * 27
                    // along x: [z][y][3] -> [z][y][n]; along y: [z][3][n] -> [z][n][n]; along z: [3][n][n] -> [n][n][n]
                    for r in 0..<9 {
                        let (a, b, c) = (Double(f[r * 3]), Double(f[r * 3 + 1]), Double(f[r * 3 + 2]))
                        for k in 0..<n { t1[r * n + k] = sum(k, a, b, c) }
                    }
                    for z in 0..<3 {
                        for row in 0..<n {
                            for k in 0..<n {
                                let base = z * 3 * n + k
                                t2[(z * n + row) * n + k] = sum(row, t1[base], t1[base + n], t1[base + 2 * n])
                            }
                        }
                    }
                    for c in 0..<n {
                        for yx in 0..<(n * n) {
                            u[(c * n * n + yx) * pairs + pair] = Float(sum(c, t2[yx], t2[n * n + yx], t2[2 * n * n + yx]))
                        }
                    }
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

    /// The floats of one batch's transformed input (1 MiB), which its products then overwrite
    /// point by point: sized to stay in a core's second-level cache between the input
    /// transform, the products and the output transform. Measured in the slab convolutions of a
    /// 16x176x176 volume, 2 threads, best of 5 alternated runs, with separate input and product
    /// buffers of 512 KiB together against 4 MiB: 42->42 0.104-0.107 s -> 0.090-0.092 s, 42->21
    /// 0.068-0.076 -> 0.065-0.067 s, 21->21 0.041 -> 0.038-0.040 s; one shared buffer of twice
    /// the tiles then took HD-BET's F(4,3) layers from 3.52-3.97 s to 3.40-3.46 s (best and
    /// median of 5 alternated whole-head runs). Smaller budgets (8 tiles) are slower.
    static let batchFloats = 1 << 18

    /// Channel pairs from which one point's filter matrix (256 KiB and more) is packed by
    /// OpenBLAS at every product, and the fewest tiles per batch that amortise it: HD-BET's
    /// 336x336 layers, 16 tiles per batch under `batchFloats`, took 0.26 s for a 16x22x22 input
    /// (two threads) against 0.19 s with 32 tiles, 0.145 s with 64, 0.128 s with 128 and 0.12-0.124
    /// s with 256; in the whole network `loc1.conv1` 0.219-0.229 -> 0.115-0.121 s and the level-5
    /// context convolutions 0.040-0.043 -> 0.028-0.033 s. The 168x168 and 336x168 layers were no
    /// faster with 128 tiles (0.027-0.030 -> 0.036-0.038 s, 0.216-0.273 -> 0.251-0.282 s).
    static let packedPairs = 256 * 256, packedMinimumTiles = 128

    /// The convolution of `x` (padding `pads` per axis) into `out` (`[out, od, oh, ow]`, its
    /// channels `outChannelStride` values apart, `od * oh * ow` when nil), bias and `residual`
    /// (same layout as `out`; it may be `out` itself) added; the tile transforms of `code`.
    static func convolve(_ x: Shape, src: UnsafePointer<Float>, transformedWeights u: UnsafePointer<Float>, variant: Variant,
                         bias: UnsafePointer<Float>?, residual: UnsafePointer<Float>?, outChannels: Int, pads: [Int],
                         out: UnsafeMutablePointer<Float>, od: Int, oh: Int, ow: Int, outChannelStride: Int? = nil, threads: Int,
                         code: TileTransformCode = .preferred) {
        let cin = x.channels, cout = outChannels, channelStride = outChannelStride ?? od * oh * ow
        let tiling = TileTransforms.Tiling(od: od, oh: oh, ow: ow, side: variant.tile), points = variant.points
        // tiles per batch: one batch's transformed input within `batchFloats`, at least 16 tiles
        // (a multiple of 8: F(4,3) transforms eight tiles at a time, one per SIMD lane), and at
        // least `packedMinimumTiles` for the widest layers
        let least = cin * cout >= packedPairs ? packedMinimumTiles : 16
        let batch = (max(least, min(tiling.count, batchFloats / (points * max(cin, cout)))) + 7) / 8 * 8
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
                code.transformInput(variant, x, UnsafePointer(s.pointer), pads: pads, output: (od, oh, ow), first: t0, tiles: tiles,
                                    stride: batch, block: block, into: v)
                for e in 0..<points {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(cout), Int32(tiles), Int32(cin),
                                1, w.pointer + e * cout * cin, Int32(cin), v + e * block, Int32(batch),
                                0, m + e * block, Int32(batch))
                }
                let bias = b.map { UnsafePointer($0.pointer) }, residual = res.map { UnsafePointer($0.pointer) }
                code.transformOutput(variant, m, stride: batch, block: block, channels: cout, bias: bias, residual: residual,
                                     first: t0, tiles: tiles, into: o.pointer, od: od, oh: oh, ow: ow, channelStride: channelStride)
                t0 += tiles
            }
        }
    }

    /// A point block of `floats` rounded up so that consecutive blocks start 16 floats apart modulo 1024.
    static func padded(_ floats: Int) -> Int {
        let rounded = (floats + 15) / 16 * 16
        return rounded + (16 - rounded % 1024 + 1024) % 1024
    }
}
