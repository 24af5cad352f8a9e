import COpenBLAS
import Dispatch

/// A 3D convolution (PyTorch `Conv3d` semantics, weights `[out, in, kd, kh, kw]`), computed as
/// matrix products on OpenBLAS: Winograd (F(4x4x4, 3x3x3) or F(2x2x2, 3x3x3), see
/// ``winogradVariant(inChannels:outChannels:)``) for stride-1 3x3x3 kernels with up to
/// ``winogradMaxPairs`` channel pairs (wider ones: F(2,3) with filters transformed at each
/// call), im2col tiles otherwise; scratch memory stays bounded
/// whatever the volume size. Kernel, stride and padding may differ per axis (nnU-Net's
/// `[1, 3, 3]` kernels and `[1, 2, 2]` strides).
public struct Conv3D: Sendable {
    public let inChannels: Int
    public let outChannels: Int
    /// Kernel size per axis (depth, height, width).
    public let kernelSize: [Int]
    /// Stride per axis (depth, height, width).
    public let strides: [Int]
    /// Zero padding per axis (depth, height, width), on both sides.
    public let paddings: [Int]
    /// `[out, in, kd, kh, kw]`, row-major.
    public let weight: [Float]
    /// `[out]`, or nil for no bias.
    public let bias: [Float]?
    /// The filters in Winograd's transformed domain, `[points, out, in]`, for the convolutions that use it.
    let winogradWeight: [Float]?
    /// The Winograd algorithm those filters are for.
    let winogradVariant: Winograd3D.Variant

    /// Largest `in * out` whose transformed filters are kept (2.4x the filter's memory). Deeper,
    /// wider layers run on small volumes, where im2col's products are large enough to be fast.
    public static let winogradMaxPairs = 168 * 336

    /// The kernel size of a cubic kernel (the largest side otherwise).
    public var kernel: Int { kernelSize.max()! }
    /// The stride when it is the same on every axis (the largest otherwise).
    public var stride: Int { strides.max()! }
    /// The padding when it is the same on every axis (the largest otherwise).
    public var padding: Int { paddings.max()! }

    /// Size of one worker's patch-matrix tile in floats (1 Mi floats = 4 MiB, cache-sized).
    public static let tileFloats = 1 << 20

    /// A convolution with a cubic kernel and the same stride and padding on every axis.
    public init(inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                weight: [Float], bias: [Float]?) {
        self.init(inChannels: inChannels, outChannels: outChannels, kernel: [kernel, kernel, kernel],
                  stride: [stride, stride, stride], padding: [padding, padding, padding], weight: weight, bias: bias)
    }

    /// A convolution whose kernel, stride and padding are given per axis (depth, height, width).
    public init(inChannels: Int, outChannels: Int, kernel: [Int], stride: [Int] = [1, 1, 1], padding: [Int] = [0, 0, 0],
                weight: [Float], bias: [Float]?) {
        precondition(kernel.count == 3 && stride.count == 3 && padding.count == 3, "conv kernel, stride and padding need 3 axes")
        precondition(kernel.allSatisfy { $0 >= 1 } && stride.allSatisfy { $0 >= 1 } && padding.allSatisfy { $0 >= 0 },
                     "conv kernel, stride or padding out of range")
        precondition(weight.count == outChannels * inChannels * kernel.reduce(1, *), "conv weight size")
        precondition(bias == nil || bias!.count == outChannels, "conv bias size")
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelSize = kernel
        self.strides = stride
        self.paddings = padding
        self.weight = weight
        self.bias = bias
        let variant = Self.winogradVariant(inChannels: inChannels, outChannels: outChannels)
        winogradVariant = variant
        if kernel == [3, 3, 3] && stride == [1, 1, 1] && inChannels * outChannels <= Self.winogradMaxPairs {
            winogradWeight = Self.transformFilters(weight, outChannels: outChannels, inChannels: inChannels, variant: variant,
                                                   threads: EngineThreads.available)
        } else {
            winogradWeight = nil
        }
    }

    /// Whether this convolution keeps its filters in Winograd's domain (F(4,3) or F(2,3)); only
    /// those run slab by slab.
    public var usesWinograd: Bool { winogradWeight != nil }

    /// Whether this is a stride-1 3x3x3 convolution too wide to keep its transformed filters
    /// (more than ``winogradMaxPairs`` channel pairs): it runs as Winograd F(2,3) with filters
    /// transformed at each call (29 MiB for 336x336 channels, freed after the call) instead of im2col.
    public var transformsFiltersPerCall: Bool {
        winogradWeight == nil && kernelSize == [3, 3, 3] && strides == [1, 1, 1]
    }

    /// Whether this convolution runs as Winograd, with kept or per-call filters.
    public var runsWinograd: Bool { usesWinograd || transformsFiltersPerCall }

    /// `winograd F(4,3)` or `winograd F(2,3)` where Winograd runs with kept filters,
    /// `winograd F(2,3) per call` where its filters are transformed at each call, `im2col` otherwise.
    public var algorithm: String {
        usesWinograd ? (winogradVariant == .f4 ? "winograd F(4,3)" : "winograd F(2,3)")
            : transformsFiltersPerCall ? "winograd F(2,3) per call" : "im2col"
    }

    /// Filters `[out, in, 3, 3, 3]` in Winograd's domain (`[points, out, in]`), each of `threads`
    /// workers transforming a share of the output channels, a few at a time (about 1 MiB of
    /// scratch per worker).
    static func transformFilters(_ weight: [Float], outChannels: Int, inChannels: Int, variant: Winograd3D.Variant,
                                 threads: Int) -> [Float] {
        let points = variant.points, pairs = outChannels * inChannels
        let chunk = max(1, (1 << 18) / (points * inChannels))
        let chunks = (outChannels + chunk - 1) / chunk
        let workers = max(1, min(threads, chunks))
        return [Float](unsafeUninitializedCapacity: points * pairs) { ub, count in
            weight.withUnsafeBufferPointer { w in
                let src = UnsafeShared(w.baseAddress!), dst = UnsafeShared(ub.baseAddress!)
                DispatchQueue.concurrentPerform(iterations: workers) { worker in
                    let part = UnsafeMutablePointer<Float>.allocate(capacity: points * chunk * inChannels)
                    defer { part.deallocate() }
                    for index in Swift.stride(from: worker, to: chunks, by: workers) {
                        let first = index * chunk, share = (min(outChannels, first + chunk) - first) * inChannels
                        Winograd3D.transformWeights(src.pointer + first * inChannels * 27, outChannels: share / inChannels,
                                                    inChannels: inChannels, variant: variant, into: part)
                        for e in 0..<points {
                            (dst.pointer + e * pairs + first * inChannels).initialize(from: part + e * share, count: share)
                        }
                    }
                }
            }
            count = points * pairs
        }
    }

    /// Largest `in * out` run as F(4x4x4, 3x3x3). Its filters take 8x the memory of the
    /// definition's (216 points against 27 taps; F(2,3): 2.4x); the wider layers (HD-BET's
    /// 168-channel level, three quarters of its filter memory) run on small volumes and gain
    /// little, so they keep F(2,3): about 85 MiB less per fold for ~0.1 s more per pass.
    public static let winogradF4MaxPairs = 168 * 84

    /// The Winograd algorithm for a layer's channel counts: F(4x4x4, 3x3x3) up to
    /// ``winogradF4MaxPairs`` channel pairs (its float32 error keeps HD-BET within its parity
    /// with PyTorch, see the README's speed section), F(2x2x2, 3x3x3) above.
    static func winogradVariant(inChannels: Int, outChannels: Int) -> Winograd3D.Variant {
        inChannels * outChannels <= winogradF4MaxPairs ? .f4 : .f2
    }

    func outputSize(_ n: Int, axis: Int) -> Int { (n + 2 * paddings[axis] - kernelSize[axis]) / strides[axis] + 1 }

    /// Applies the convolution on `threads` workers, plus `residual` (same shape as the output)
    /// when given, added as the output is written.
    public func callAsFunction(_ x: Tensor, adding residual: Tensor? = nil, threads: Int = EngineThreads.available) -> Tensor {
        if let winogradWeight {
            return winograd(x, filters: winogradWeight, variant: winogradVariant, adding: residual, threads: threads)
        }
        if transformsFiltersPerCall {
            let filters = Self.transformFilters(weight, outChannels: outChannels, inChannels: inChannels, variant: .f2,
                                                threads: threads)
            return winograd(x, filters: filters, variant: .f2, adding: residual, threads: threads)
        }
        let y = direct(x, threads: threads)
        return residual.map { TensorOps.add(y, $0) } ?? y
    }

    /// The convolution as Winograd `variant` with `filters` in its transformed domain.
    private func winograd(_ x: Tensor, filters: [Float], variant: Winograd3D.Variant, adding residual: Tensor?,
                          threads: Int) -> Tensor {
        precondition(x.channels == inChannels, "conv expects \(inChannels) channels, got \(x.channels)")
        EngineThreads.useSingleThreadedBLAS()
        let od = outputSize(x.depth, axis: 0), oh = outputSize(x.height, axis: 1), ow = outputSize(x.width, axis: 2)
        // every output voxel is written by its tile
        var out = FreshMemory.floats(outChannels * od * oh * ow, threads: threads)
        precondition(residual == nil || residual!.shape == [outChannels, od, oh, ow], "conv residual shape")
        x.data.withUnsafeBufferPointer { src in
            filters.withUnsafeBufferPointer { u in
                out.withUnsafeMutableBufferPointer { dst in
                    (bias ?? []).withUnsafeBufferPointer { b in
                      (residual?.data ?? []).withUnsafeBufferPointer { r in
                        Winograd3D.convolve(Winograd3D.Shape(x), src: src.baseAddress!, transformedWeights: u.baseAddress!,
                                            variant: variant,
                                            bias: bias == nil ? nil : b.baseAddress,
                                            residual: residual == nil ? nil : r.baseAddress,
                                            outChannels: outChannels, pads: paddings, out: dst.baseAddress!,
                                            od: od, oh: oh, ow: ow, threads: threads)
                      }
                    }
                }
            }
        }
        return Tensor(channels: outChannels, depth: od, height: oh, width: ow, data: out)
    }

    /// The convolution as im2col tiles times the filters (every multiply of the definition).
    public func direct(_ x: Tensor, threads: Int = EngineThreads.available) -> Tensor {
        precondition(x.channels == inChannels, "conv expects \(inChannels) channels, got \(x.channels)")
        EngineThreads.useSingleThreadedBLAS()
        let od = outputSize(x.depth, axis: 0), oh = outputSize(x.height, axis: 1), ow = outputSize(x.width, axis: 2)
        let n = od * oh * ow
        // every output value is written by a product (beta 0) before its bias is added
        var out = FreshMemory.floats(outChannels * n, threads: threads)
        let kRows = inChannels * kernelSize.reduce(1, *)

        if kernelSize == [1, 1, 1] && strides == [1, 1, 1] && paddings == [0, 0, 0] {
            x.data.withUnsafeBufferPointer { src in
                weight.withUnsafeBufferPointer { w in
                    out.withUnsafeMutableBufferPointer { dst in
                        ParallelGEMM.multiply(m: outChannels, n: n, k: inChannels, a: w.baseAddress!, lda: inChannels,
                                              b: src.baseAddress!, ldb: n, c: dst.baseAddress!, ldc: n, threads: threads)
                        if let bias {
                            let d = UnsafeShared(dst.baseAddress!)
                            ParallelSlices.forEach(outChannels, threads: threads) { c in Self.add(bias[c], to: d.pointer + c * n, count: n) }
                        }
                    }
                }
            }
        } else {
            // Tiles of whole output lines whose patch matrix stays in cache, each filled and
            // multiplied by one worker with single-threaded OpenBLAS.
            let linesTotal = od * oh
            let linesPerTile = max(1, min(linesTotal, Self.tileFloats / max(1, kRows * ow)))
            let tiles = (linesTotal + linesPerTile - 1) / linesPerTile
            let workers = max(1, min(threads, tiles))
            x.data.withUnsafeBufferPointer { srcBuf in
                weight.withUnsafeBufferPointer { wBuf in
                    out.withUnsafeMutableBufferPointer { dstBuf in
                        let src = UnsafeShared(srcBuf.baseAddress!), w = UnsafeShared(wBuf.baseAddress!)
                        let dst = UnsafeShared(dstBuf.baseAddress!)
                        DispatchQueue.concurrentPerform(iterations: workers) { worker in
                            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: kRows * linesPerTile * ow)
                            defer { scratch.deallocate() }
                            var tile = worker
                            while tile < tiles {
                                let line0 = tile * linesPerTile
                                let lines = min(linesPerTile, linesTotal - line0)
                                let tileN = lines * ow
                                im2col(UnsafePointer(src.pointer), x, into: scratch, line0: line0, lines: lines, oh: oh, ow: ow)
                                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
                                            Int32(outChannels), Int32(tileN), Int32(kRows),
                                            1, w.pointer, Int32(kRows), scratch, Int32(tileN), 0,
                                            dst.pointer + line0 * ow, Int32(n))
                                if let bias {
                                    for c in 0..<outChannels { Self.add(bias[c], to: dst.pointer + c * n + line0 * ow, count: tileN) }
                                }
                                tile += workers
                            }
                        }
                    }
                }
            }
        }
        return Tensor(channels: outChannels, depth: od, height: oh, width: ow, data: out)
    }

    /// `values[i] += b` for the `count` values at `values`.
    private static func add(_ b: Float, to values: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { values[i] += b }
    }

    /// Fills `col` (`[in*kd*kh*kw, lines*ow]`) with the input patches of output lines
    /// `line0 ..< line0+lines` (line = z*oh + y); zero where the kernel hangs over the border.
    /// With a stride along x, each input row is first split into its `sx` phases (voxels
    /// `sx*j + q` for each `q`), so that every patch row is a contiguous copy of one phase.
    func im2col(_ src: UnsafePointer<Float>, _ x: Tensor, into col: UnsafeMutablePointer<Float>,
                        line0: Int, lines: Int, oh: Int, ow: Int) {
        let (kd, kh, kw) = (kernelSize[0], kernelSize[1], kernelSize[2])
        let (sz, sy, sx) = (strides[0], strides[1], strides[2])
        let (pz, py, px) = (paddings[0], paddings[1], paddings[2])
        let (d, h, w) = (x.depth, x.height, x.width)
        let tileN = lines * ow, phaseLength = (w + sx - 1) / sx
        // per kx: the outputs [first, end) whose input x = ox*sx - px + kx lies in the row, read
        // from phase (kx - px) mod sx at offset ox + floor((kx - px) / sx)
        let spans = (0..<kw).map { kx -> (first: Int, end: Int, from: Int) in
            let shift = kx - px, q = ((shift % sx) + sx) % sx
            let first = min(ow, max(0, (-shift + sx - 1) / sx)), last = w - 1 - shift
            let end = last < 0 ? first : max(first, min(ow, last / sx + 1))
            return (first, end, sx == 1 ? shift : q * phaseLength + (shift - q) / sx)
        }
        let phases = UnsafeMutablePointer<Float>.allocate(capacity: sx == 1 ? 0 : sx * phaseLength)
        defer { phases.deallocate() }
        for group in 0..<(inChannels * kd * kh) {
            let ci = group / (kd * kh), kz = (group / kh) % kd, ky = group % kh
            let rows = col + group * kw * tileN
            let channel = src + ci * d * h * w
            for l in 0..<lines {
                let line = line0 + l
                let iz = (line / oh) * sz - pz + kz
                let iy = (line % oh) * sy - py + ky
                if iz < 0 || iz >= d || iy < 0 || iy >= h {
                    for kx in 0..<kw { (rows + kx * tileN + l * ow).update(repeating: 0, count: ow) }
                    continue
                }
                var input = channel + (iz * h + iy) * w
                if sx > 1 {
                    Self.splitPhases(input, count: w, stride: sx, phaseLength: phaseLength, into: phases)
                    input = UnsafePointer(phases)
                }
                for (kx, span) in spans.enumerated() {
                    let dst = rows + kx * tileN + l * ow
                    if span.first > 0 { dst.update(repeating: 0, count: span.first) }
                    if span.end > span.first {
                        (dst + span.first).update(from: input + (span.first + span.from), count: span.end - span.first)
                    }
                    if span.end < ow { (dst + span.end).update(repeating: 0, count: ow - span.end) }
                }
            }
        }
    }

    /// `phases[q * phaseLength + j] = row[stride * j + q]` for the `count` values of `row`.
    private static func splitPhases(_ row: UnsafePointer<Float>, count: Int, stride: Int, phaseLength: Int,
                                    into phases: UnsafeMutablePointer<Float>) {
        var x = 0
        if stride == 2 {
            let odd = phases + phaseLength
            while x + 16 <= count {
                let v = UnsafeRawPointer(row + x).loadUnaligned(as: SIMD16<Float>.self)
                UnsafeMutableRawPointer(phases + x / 2).storeBytes(of: v.evenHalf, as: SIMD8<Float>.self)
                UnsafeMutableRawPointer(odd + x / 2).storeBytes(of: v.oddHalf, as: SIMD8<Float>.self)
                x += 16
            }
        }
        while x < count {
            phases[(x % stride) * phaseLength + x / stride] = row[x]
            x += 1
        }
    }
}
