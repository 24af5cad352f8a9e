import CLinux
/// A batch of Winograd tiles in groups of eight, one tile per SIMD lane: each lane's corner
/// (z, y, x) in a volume. Lanes past the batch's last tile repeat it, so every group is full.
struct TileLanes {
    let groups: Int
    /// Real tiles in the batch (the lanes after them are copies).
    let tiles: Int
    let bounds: (depth: Int, height: Int, width: Int)
    private var z: [SIMD8<Int>] = [], y: [SIMD8<Int>] = [], x: [SIMD8<Int>] = []
    /// Per group: each lane's first input value (its corner's offset in a channel), and which
    /// lanes' 6x6x6 input blocks lie inside the volume (bit `lane`).
    private var offsets: [SIMD8<Int>] = [], inside: [UInt8] = []
    /// Per group: whether its lanes are eight consecutive tiles of one row whose input rows
    /// (with two values more) lie inside (`inputRow`), or whose 4x4x4 output blocks do (`outputRow`).
    private var inputRow: [Bool] = [], outputRow: [Bool] = []

    /// The corners of tiles `first ..< first+tiles` of `tiling`, minus `shift` (the padding, for
    /// input tiles), in a volume of `bounds`.
    init(tiling: Tiling, first: Int, tiles: Int, shift: (Int, Int, Int), bounds: (depth: Int, height: Int, width: Int)) {
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
            z.append(zs); y.append(ys); x.append(xs)
            var mask: UInt8 = 0, offset = SIMD8<Int>(), consecutive = true
            for lane in 0..<8 {
                let (z0, y0, x0) = (zs[lane], ys[lane], xs[lane])
                if z0 >= 0 && z0 + 6 <= bounds.depth && y0 >= 0 && y0 + 6 <= bounds.height && x0 >= 0 && x0 + 6 <= bounds.width {
                    mask |= 1 << lane
                }
                offset[lane] = (z0 * bounds.height + y0) * bounds.width + x0
                consecutive = consecutive && z0 == zs[0] && y0 == ys[0] && x0 == xs[0] + 4 * lane
            }
            offsets.append(offset)
            inside.append(mask)
            inputRow.append(consecutive && mask == 0xFF && xs[7] + 8 <= bounds.width)
            outputRow.append(consecutive && zs[0] + 4 <= bounds.depth && ys[0] + 4 <= bounds.height && xs[7] + 4 <= bounds.width)
        }
    }

    /// The 6x6x6 input block of each lane of group `g` from `channel`, zero where a block lies
    /// outside the volume (the convolution's padding), each row already taken through F(4,3)'s
    /// `Bᵀ` along x, into `q[(z * 6 + y) * 6 + x]`. Four lanes at a time: where their blocks
    /// lie inside, rows are loaded as vectors and transposed; elsewhere lane by lane with bounds
    /// checks, then transformed in place.
    @inline(__always)
    func gatherAlongX(_ q: UnsafeMutableBufferPointer<SIMD8<Float>>, group g: Int, channel: UnsafePointer<Float>) {
        let n = 6
        let (d, h, w) = bounds
        let o = offsets[g], fits = inside[g]
        if inputRow[g] {
            // one row of eight tiles: each input row's 34 values loaded as vectors and split
            // into the tiles' six columns
            let p = channel + o[0]
            for a in 0..<6 {
                for b in 0..<6 {
                    let r = UnsafeRawPointer(p + (a * h + b) * w)
                    func at(_ i: Int) -> SIMD8<Float> { r.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) }
                    let (v0, v1, v2, v3) = (at(0), at(8), at(16), at(24)), (u0, u1, u2, u3) = (at(4), at(12), at(20), at(28))
                    let t = WinogradF43.input(dfc_every4th_0(v0, v1, v2, v3), dfc_every4th_1(v0, v1, v2, v3),
                                              dfc_every4th_2(v0, v1, v2, v3), dfc_every4th_3(v0, v1, v2, v3),
                                              dfc_every4th_0(u0, u1, u2, u3), dfc_every4th_1(u0, u1, u2, u3))
                    let row = (a * 6 + b) * 6
                    q[row] = t.0; q[row + 1] = t.1; q[row + 2] = t.2; q[row + 3] = t.3; q[row + 4] = t.4; q[row + 5] = t.5
                }
            }
            return
        }
        q.withMemoryRebound(to: Float.self) { f in
            let f = f.baseAddress!
            for half in 0..<2 {
                let l = half * 4
                if fits >> l & 0xF == 0xF {
                    let p0 = channel + o[l], p1 = channel + o[l + 1], p2 = channel + o[l + 2], p3 = channel + o[l + 3]
                    for a in 0..<6 {
                        for b in 0..<6 {
                            let r = (a * h + b) * w
                            let r0 = UnsafeRawPointer(p0 + r).loadUnaligned(as: SIMD4<Float>.self)
                            let r1 = UnsafeRawPointer(p1 + r).loadUnaligned(as: SIMD4<Float>.self)
                            let r2 = UnsafeRawPointer(p2 + r).loadUnaligned(as: SIMD4<Float>.self)
                            let r3 = UnsafeRawPointer(p3 + r).loadUnaligned(as: SIMD4<Float>.self)
                            let s0 = UnsafeRawPointer(p0 + r + 4).loadUnaligned(as: SIMD2<Float>.self)
                            let s1 = UnsafeRawPointer(p1 + r + 4).loadUnaligned(as: SIMD2<Float>.self)
                            let s2 = UnsafeRawPointer(p2 + r + 4).loadUnaligned(as: SIMD2<Float>.self)
                            let s3 = UnsafeRawPointer(p3 + r + 4).loadUnaligned(as: SIMD2<Float>.self)
                            let t = WinogradF43.input(SIMD4(r0[0], r1[0], r2[0], r3[0]), SIMD4(r0[1], r1[1], r2[1], r3[1]),
                                           SIMD4(r0[2], r1[2], r2[2], r3[2]), SIMD4(r0[3], r1[3], r2[3], r3[3]),
                                           SIMD4(s0[0], s1[0], s2[0], s3[0]), SIMD4(s0[1], s1[1], s2[1], s3[1]))
                            Self.storeRow(t, f + (a * 6 + b) * 48 + l)
                        }
                    }
                    continue
                }
                let zs = z[g], ys = y[g], xs = x[g]
                for lane in l..<(l + 4) {
                    let z0 = zs[lane], y0 = ys[lane], x0 = xs[lane], rowFits = x0 >= 0 && x0 + n <= w
                    for a in 0..<6 {
                        for b in 0..<6 {
                            let dst = f + (a * 6 + b) * 48 + lane
                            if z0 + a >= 0 && z0 + a < d && y0 + b >= 0 && y0 + b < h {
                                let src = channel + ((z0 + a) * h + y0 + b) * w + x0
                                if rowFits {
                                    dst[0] = src[0]; dst[8] = src[1]; dst[16] = src[2]; dst[24] = src[3]; dst[32] = src[4]; dst[40] = src[5]
                                } else {
                                    for c in 0..<6 { dst[c * 8] = x0 + c >= 0 && x0 + c < w ? src[c] : 0 }
                                }
                            } else {
                                for c in 0..<6 { dst[c * 8] = 0 }
                            }
                        }
                    }
                }
                for r in 0..<36 {
                    let row = UnsafeRawPointer(f + r * 48 + l)
                    func at(_ c: Int) -> SIMD4<Float> { row.loadUnaligned(fromByteOffset: c * 32, as: SIMD4<Float>.self) }
                    Self.storeRow(WinogradF43.input(at(0), at(1), at(2), at(3), at(4), at(5)), f + r * 48 + l)
                }
            }
        }
    }

    /// The spans of every input row the batch's input tiles read (offsets in a channel,
    /// `start ..< end`), for ``prefetch(_:channel:)``: for each run of groups whose first lanes
    /// share a row, the rows its 6x6 block of input rows covers. Worked out once per batch.
    func inputRowSpans() -> [(start: Int, end: Int)] {
        var spans: [(start: Int, end: Int)] = []
        let (d, h, w) = bounds
        var g = 0
        while g < groups {
            let zs = z[g], ys = y[g], xs = x[g]
            var last = g
            while last + 1 < groups && z[last + 1][0] == zs[0] && y[last + 1][0] == ys[0] { last += 1 }
            let x0 = max(0, xs[0]), x1 = min(w, x[last][7] + 6)
            for a in 0..<6 where zs[0] + a >= 0 && zs[0] + a < d {
                for b in 0..<6 where ys[0] + b >= 0 && ys[0] + b < h {
                    let row = ((zs[0] + a) * h + ys[0] + b) * w
                    spans.append((row + x0, row + x1))
                }
            }
            g = last + 1
        }
        return spans
    }

    /// Asks for every input row in `spans` (``inputRowSpans()``) from `channel` (each row's
    /// whole span, one request per cache line) ahead of the gather that reads them.
    static func prefetch(_ spans: [(start: Int, end: Int)], channel: UnsafePointer<Float>) {
        for span in spans {
            var c = span.start
            while c < span.end { dfc_prefetch(channel + c); c += 16 }
            dfc_prefetch(channel + span.end - 1)
        }
    }

    /// Four lanes' six values of one tile row, into the row's six vectors (32 bytes apart) at `to`.
    @inline(__always)
    static func storeRow(_ t: (SIMD4<Float>, SIMD4<Float>, SIMD4<Float>, SIMD4<Float>, SIMD4<Float>, SIMD4<Float>),
                         _ to: UnsafeMutablePointer<Float>) {
        let dst = UnsafeMutableRawPointer(to)
        dst.storeBytes(of: t.0, as: SIMD4<Float>.self)
        dst.storeBytes(of: t.1, toByteOffset: 32, as: SIMD4<Float>.self)
        dst.storeBytes(of: t.2, toByteOffset: 64, as: SIMD4<Float>.self)
        dst.storeBytes(of: t.3, toByteOffset: 96, as: SIMD4<Float>.self)
        dst.storeBytes(of: t.4, toByteOffset: 128, as: SIMD4<Float>.self)
        dst.storeBytes(of: t.5, toByteOffset: 160, as: SIMD4<Float>.self)
    }

    /// Writes each real lane's 4x4x4 output block from `q[z * 36 + y * 6 + x]` (a 6x6x6 tile
    /// whose first 4 points per axis hold the result) into `channel`, plus `bias` and
    /// `residual` (same layout as `channel`), clipped at the volume's far faces.
    @inline(__always)
    func scatter(_ q: UnsafeMutableBufferPointer<SIMD8<Float>>, group g: Int, bias: Float,
                 channel: UnsafeMutablePointer<Float>, residual: UnsafePointer<Float>?) {
        let (d, h, w) = bounds
        let zs = z[g], ys = y[g], xs = x[g]
        if outputRow[g] {
            // one row of eight tiles: each output row's 32 values put back in order and
            // written as vectors
            for a in 0..<4 {
                for b in 0..<4 {
                    let offset = ((zs[0] + a) * h + ys[0] + b) * w + xs[0], row = a * 36 + b * 6
                    let (c0, c1, c2, c3) = (q[row], q[row + 1], q[row + 2], q[row + 3])
                    let out = UnsafeMutableRawPointer(channel + offset)
                    @inline(__always) func put(_ value: SIMD8<Float>, _ i: Int) {
                        var value = value + bias
                        if let residual { value += UnsafeRawPointer(residual + offset).loadUnaligned(fromByteOffset: i * 32, as: SIMD8<Float>.self) }
                        out.storeBytes(of: value, toByteOffset: i * 32, as: SIMD8<Float>.self)
                    }
                    put(dfc_interleave4_0(c0, c1, c2, c3), 0); put(dfc_interleave4_1(c0, c1, c2, c3), 1)
                    put(dfc_interleave4_2(c0, c1, c2, c3), 2); put(dfc_interleave4_3(c0, c1, c2, c3), 3)
                }
            }
            return
        }
        for lane in 0..<min(8, tiles - g * 8) {
            let z0 = zs[lane], y0 = ys[lane], x0 = xs[lane]
            if z0 + 4 <= d && y0 + 4 <= h && x0 + 4 <= w {
                for a in 0..<4 {
                    for b in 0..<4 {
                        let offset = ((z0 + a) * h + y0 + b) * w + x0, row = a * 36 + b * 6
                        var v = SIMD4(q[row][lane], q[row + 1][lane], q[row + 2][lane], q[row + 3][lane]) + bias
                        if let residual { v += UnsafeRawPointer(residual + offset).loadUnaligned(as: SIMD4<Float>.self) }
                        UnsafeMutableRawPointer(channel + offset).storeBytes(of: v, as: SIMD4<Float>.self)
                    }
                }
                continue
            }
            for a in 0..<min(4, d - z0) {
                for b in 0..<min(4, h - y0) {
                    let offset = ((z0 + a) * h + y0 + b) * w + x0, row = a * 36 + b * 6
                    for c in 0..<min(4, w - x0) { channel[offset + c] = q[row + c][lane] + bias + (residual?[offset + c] ?? 0) }
                }
            }
        }
    }
}
