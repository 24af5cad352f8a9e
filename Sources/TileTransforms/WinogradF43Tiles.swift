/// The value a Winograd 1-D transform works on: one float, or a row of them in SIMD lanes.
protocol WinogradValue {
    static func + (a: Self, b: Self) -> Self
    static func - (a: Self, b: Self) -> Self
    static func * (a: Self, b: Float) -> Self
}
extension Float: WinogradValue {}
extension SIMD8: WinogradValue where Scalar == Float {}
extension SIMD4: WinogradValue where Scalar == Float {}

/// Winograd F(4x4x4, 3x3x3): 6x6x6 input tiles, 216 transformed points per 4x4x4 output block
/// (3.4 multiplies per output and channel pair, against 8 for F(2,3) and 27 for the definition).
/// Interpolation points 0, 1, -1, 1/2, -2 and infinity: of the sets tried in float32 on
/// 42-channel sums (0, ±1, ±1/2; 0, ±1, ±2; 0, ±1/2, ±2; this one), the smallest error
/// (7.8e-5 on outputs up to 16, against 2.6e-4 for 0, ±1, ±1/2 and 3.4e-4 for 0, ±1, ±2).
///
/// `Bᵀ` rows: `[1 -3/2 -2 3/2 1 0]`, `[0 -1 1/2 5/2 1 0]`, `[0 1 -5/2 1/2 1 0]`, `[0 -2 -1 2 1 0]`,
/// `[0 1/2 -1 -1/2 1 0]`, `[0 1 -3/2 -2 3/2 1]`; `Aᵀ` rows: `[1 1 1 1 1 0]`, `[0 1 -1 1/2 -2 0]`,
/// `[0 1 1 1/4 4 0]`, `[0 1 -1 1/8 -8 1]`; `G` rows: `[1 0 0]`, `[1/3 1/3 1/3]`, `[-1/3 1/3 -1/3]`,
/// `[-16/15 -8/15 -4/15]`, `[1/15 -2/15 4/15]`, `[0 0 1]`.
public enum WinogradF43 {
    /// `G`, 6 x 3.
    public static let filterTransform: [[Double]] = [[1, 0, 0], [1.0 / 3, 1.0 / 3, 1.0 / 3], [-1.0 / 3, 1.0 / 3, -1.0 / 3],
                                              [-16.0 / 15, -8.0 / 15, -4.0 / 15], [1.0 / 15, -2.0 / 15, 4.0 / 15], [0, 0, 1]]

    /// `Bᵀ d` along one axis, factored (24 additions and multiplies instead of 44): with
    /// `s = d4 - d2`, `t = d3 - d1`, the rows are `d0 + s - d2 + 3/2 t`, `s + t + 3/2 (d2 + d3)`,
    /// `s - t + 3/2 (d3 - d2)`, `s + 2t`, `s - t/2` and the first row shifted by one.
    @inline(__always)
    static func input<V: WinogradValue>(_ d0: V, _ d1: V, _ d2: V, _ d3: V, _ d4: V, _ d5: V) -> (V, V, V, V, V, V) {
        let s = d4 - d2, t = d3 - d1, s1 = d5 - d3, t1 = d4 - d2
        let st = s + t, sMinusT = s - t
        return (d0 + (s - d2) + t * 1.5,
                st + (d2 + d3) * 1.5,
                sMinusT + (d3 - d2) * 1.5,
                s + (t + t),
                s - t * 0.5,
                d1 + (s1 - d3) + t1 * 1.5)
    }

    /// `Aᵀ m` along one axis, factored with `a = m1 + m2`, `b = m1 - m2`.
    @inline(__always)
    static func output<V: WinogradValue>(_ m0: V, _ m1: V, _ m2: V, _ m3: V, _ m4: V, _ m5: V) -> (V, V, V, V) {
        let a = m1 + m2, b = m1 - m2
        return (m0 + a + (m3 + m4),
                b + m3 * 0.5 - m4 * 2,
                a + m3 * 0.25 + m4 * 4,
                b + m3 * 0.125 - m4 * 8 + m5)
    }

    /// `Bᵀ` along the rows `base, base+step, ...` of a tile, in place.
    @inline(__always)
    static func inputRows(_ r: UnsafeMutableBufferPointer<SIMD8<Float>>, _ base: Int, _ step: Int) {
        let o = input(r[base], r[base + step], r[base + 2 * step], r[base + 3 * step], r[base + 4 * step], r[base + 5 * step])
        r[base] = o.0; r[base + step] = o.1; r[base + 2 * step] = o.2
        r[base + 3 * step] = o.3; r[base + 4 * step] = o.4; r[base + 5 * step] = o.5
    }

    /// `Aᵀ` along the rows `base, base+step, ...` of a tile: the first four of them hold the result.
    @inline(__always)
    static func outputRows(_ r: UnsafeMutableBufferPointer<SIMD8<Float>>, _ base: Int, _ step: Int) {
        let o = output(r[base], r[base + step], r[base + 2 * step], r[base + 3 * step], r[base + 4 * step], r[base + 5 * step])
        r[base] = o.0; r[base + step] = o.1; r[base + 2 * step] = o.2; r[base + 3 * step] = o.3
    }

    /// `Bᵀ d B` along each axis for tiles `first ..< first+tiles`: `v[e * block + ci * stride + t]`.
    /// Eight tiles at a time, one per SIMD lane (``TileLanes``): every transform step works on
    /// whole vectors and each point's eight values are stored together. `stride` is a multiple
    /// of 8, so the lanes past `tiles` (copies of the last tile) land in unused columns.
    public static func transformInput(channels: Int, depth: Int, height: Int, width: Int, _ src: UnsafePointer<Float>,
                               pads: [Int], output: (depth: Int, height: Int, width: Int), first: Int, tiles: Int,
                               stride: Int, block: Int, into v: UnsafeMutablePointer<Float>) {
        let x = (channels: channels, depth: depth, height: height, width: width)
        let tiling = Tiling(od: output.depth, oh: output.height, ow: output.width, side: 4)
        precondition(stride % 8 == 0, "Winograd batches hold a multiple of 8 tiles")
        let lanes = TileLanes(tiling: tiling, first: first, tiles: tiles, shift: (pads[0], pads[1], pads[2]),
                              bounds: (x.depth, x.height, x.width))
        let plane = x.depth * x.height * x.width, spans = lanes.inputRowSpans()
        var tile = [SIMD8<Float>](repeating: .zero, count: 216)
        tile.withUnsafeMutableBufferPointer { q in
            for ci in 0..<x.channels {
                let channel = src + ci * plane
                // the rows of the channel two ahead: the gathers' loads stalled on them (cpu-clock
                // samples); HD-BET's F(4,3) layers, best of 2 runs, 5 alternated trios: 2.96 ->
                // 2.88 s, 3.19 -> 2.81, 2.95 -> 2.81, 3.17 -> 2.70, 3.83 -> 3.69 (one channel
                // ahead: no gain; four: less; the output rows and residual: no gain)
                if ci + 2 < x.channels { TileLanes.prefetch(spans, channel: channel + 2 * plane) }
                for g in 0..<lanes.groups {
                    lanes.gatherAlongX(q, group: g, channel: channel)
                    for z in 0..<6 { for c in 0..<6 { inputRows(q, z * 36 + c, 6) } }
                    // along z, each point stored as it comes
                    let dst = UnsafeMutableRawPointer(v + ci * stride + g * 8)
                    for r in 0..<36 {
                        let o = input(q[r], q[r + 36], q[r + 72], q[r + 108], q[r + 144], q[r + 180])
                        let at = r * block * 4, step = 36 * block * 4
                        dst.storeBytes(of: o.0, toByteOffset: at, as: SIMD8<Float>.self)
                        dst.storeBytes(of: o.1, toByteOffset: at + step, as: SIMD8<Float>.self)
                        dst.storeBytes(of: o.2, toByteOffset: at + 2 * step, as: SIMD8<Float>.self)
                        dst.storeBytes(of: o.3, toByteOffset: at + 3 * step, as: SIMD8<Float>.self)
                        dst.storeBytes(of: o.4, toByteOffset: at + 4 * step, as: SIMD8<Float>.self)
                        dst.storeBytes(of: o.5, toByteOffset: at + 5 * step, as: SIMD8<Float>.self)
                    }
                }
            }
        }
    }

    /// `Aᵀ m A` along each axis: products `m[e][co][t]` to 4x4x4 output blocks, plus bias and
    /// residual; eight tiles at a time, one per SIMD lane, as ``transformInput``; output channels
    /// `channelStride` values apart.
    public static func transformOutput(_ m: UnsafePointer<Float>, stride: Int, block: Int, channels: Int, bias: UnsafePointer<Float>?,
                                       residual: UnsafePointer<Float>?, first: Int, tiles: Int,
                                       into out: UnsafeMutablePointer<Float>, od: Int, oh: Int, ow: Int, channelStride plane: Int) {
        let tiling = Tiling(od: od, oh: oh, ow: ow, side: 4)
        precondition(stride % 8 == 0, "Winograd batches hold a multiple of 8 tiles")
        let lanes = TileLanes(tiling: tiling, first: first, tiles: tiles, shift: (0, 0, 0), bounds: (od, oh, ow))
        var rows = [SIMD8<Float>](repeating: .zero, count: 216)
        rows.withUnsafeMutableBufferPointer { q in
            for co in 0..<channels {
                let b = bias?[co] ?? 0
                let channel = out + co * plane, added = residual.map { $0 + co * plane }
                for g in 0..<lanes.groups {
                    let src = UnsafeRawPointer(m + co * stride + g * 8)
                    // along x as the points are loaded
                    for r in 0..<36 {
                        func at(_ c: Int) -> SIMD8<Float> { src.loadUnaligned(fromByteOffset: (r * 6 + c) * block * 4, as: SIMD8<Float>.self) }
                        let o = output(at(0), at(1), at(2), at(3), at(4), at(5))
                        q[r * 6] = o.0; q[r * 6 + 1] = o.1; q[r * 6 + 2] = o.2; q[r * 6 + 3] = o.3
                    }
                    for z in 0..<6 { for c in 0..<4 { outputRows(q, z * 36 + c, 6) } }
                    for y in 0..<4 { for c in 0..<4 { outputRows(q, y * 6 + c, 36) } }
                    lanes.scatter(q, group: g, bias: b, channel: channel, residual: added)
                }
            }
        }
    }
}
