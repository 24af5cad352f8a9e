import COpenBLAS
import Dispatch

/// A 3D convolution (PyTorch `Conv3d` semantics, weights `[out, in, kd, kh, kw]`), computed as
/// matrix products on OpenBLAS: Winograd (F(4x4x4, 3x3x3) or F(2x2x2, 3x3x3), see
/// ``winogradVariant(inChannels:outChannels:)``) for stride-1 3x3x3 kernels with up to
/// ``winogradMaxPairs`` channel pairs, im2col tiles otherwise; scratch memory stays bounded
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
            var u = [Float](repeating: 0, count: variant.points * outChannels * inChannels)
            weight.withUnsafeBufferPointer { w in
                u.withUnsafeMutableBufferPointer { Winograd3D.transformWeights(w.baseAddress!, outChannels: outChannels,
                                                                                inChannels: inChannels, variant: variant,
                                                                                into: $0.baseAddress!) }
            }
            winogradWeight = u
        } else {
            winogradWeight = nil
        }
    }

    /// Whether this convolution runs as Winograd (F(4,3) or F(2,3)).
    public var usesWinograd: Bool { winogradWeight != nil }

    /// `winograd F(4,3)` or `winograd F(2,3)` where Winograd runs, `im2col` otherwise.
    public var algorithm: String { usesWinograd ? (winogradVariant == .f4 ? "winograd F(4,3)" : "winograd F(2,3)") : "im2col" }

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
        guard let winogradWeight else {
            let y = direct(x, threads: threads)
            return residual.map { TensorOps.add(y, $0) } ?? y
        }
        precondition(x.channels == inChannels, "conv expects \(inChannels) channels, got \(x.channels)")
        EngineThreads.useSingleThreadedBLAS()
        let od = outputSize(x.depth, axis: 0), oh = outputSize(x.height, axis: 1), ow = outputSize(x.width, axis: 2)
        // every output voxel is written by its tile
        var out = FreshMemory.floats(outChannels * od * oh * ow, threads: threads)
        precondition(residual == nil || residual!.shape == [outChannels, od, oh, ow], "conv residual shape")
        x.data.withUnsafeBufferPointer { src in
            winogradWeight.withUnsafeBufferPointer { u in
                out.withUnsafeMutableBufferPointer { dst in
                    (bias ?? []).withUnsafeBufferPointer { b in
                      (residual?.data ?? []).withUnsafeBufferPointer { r in
                        Winograd3D.convolve(Winograd3D.Shape(x), src: src.baseAddress!, transformedWeights: u.baseAddress!,
                                            variant: winogradVariant,
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
        var out = [Float](repeating: 0, count: outChannels * n)
        let kRows = inChannels * kernelSize.reduce(1, *)

        if kernelSize == [1, 1, 1] && strides == [1, 1, 1] && paddings == [0, 0, 0] {
            x.data.withUnsafeBufferPointer { src in
                weight.withUnsafeBufferPointer { w in
                    out.withUnsafeMutableBufferPointer { dst in
                        ParallelGEMM.multiply(m: outChannels, n: n, k: inChannels, a: w.baseAddress!, lda: inChannels,
                                              b: src.baseAddress!, ldb: n, c: dst.baseAddress!, ldc: n, threads: threads)
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
                                tile += workers
                            }
                        }
                    }
                }
            }
        }
        if let bias {
            out.withUnsafeMutableBufferPointer { dst in
                for c in 0..<outChannels {
                    let b = bias[c]
                    let p = dst.baseAddress! + c * n
                    for i in 0..<n { p[i] += b }
                }
            }
        }
        return Tensor(channels: outChannels, depth: od, height: oh, width: ow, data: out)
    }

    /// Fills `col` (`[in*kd*kh*kw, lines*ow]`) with the input patches of output lines
    /// `line0 ..< line0+lines` (line = z*oh + y); zero where the kernel hangs over the border.
    private func im2col(_ src: UnsafePointer<Float>, _ x: Tensor, into col: UnsafeMutablePointer<Float>,
                        line0: Int, lines: Int, oh: Int, ow: Int) {
        let (kd, kh, kw) = (kernelSize[0], kernelSize[1], kernelSize[2])
        let (sz, sy, sx) = (strides[0], strides[1], strides[2])
        let (pz, py, px) = (paddings[0], paddings[1], paddings[2])
        let (d, h, w) = (x.depth, x.height, x.width)
        let tileN = lines * ow
        let kVolume = kd * kh * kw
        let rows = inChannels * kVolume
        for r in 0..<rows {
            let ci = r / kVolume
            let kz = (r / (kh * kw)) % kd, ky = (r / kw) % kh, kx = r % kw
            let rowPtr = col + r * tileN
            let channel = src + ci * d * h * w
            let lo = sx == 1 ? max(0, px - kx) : 0, hi = sx == 1 ? max(lo, min(ow, w + px - kx)) : 0
            for l in 0..<lines {
                let line = line0 + l
                let iz = (line / oh) * sz - pz + kz
                let iy = (line % oh) * sy - py + ky
                let dst = rowPtr + l * ow
                if iz < 0 || iz >= d || iy < 0 || iy >= h {
                    dst.update(repeating: 0, count: ow)
                    continue
                }
                let input = channel + (iz * h + iy) * w
                if sx == 1 {
                    // input x = ox - px + kx, valid for ox in [lo, hi)
                    if lo > 0 { dst.update(repeating: 0, count: lo) }
                    if hi > lo { (dst + lo).update(from: input + (lo - px + kx), count: hi - lo) }
                    if hi < ow { (dst + hi).update(repeating: 0, count: ow - hi) }
                } else {
                    // input x = ox * sx - px + kx, inside the row for ox in [first, end)
                    let first = min(ow, max(0, (px - kx + sx - 1) / sx)), last = w - 1 + px - kx
                    let end = last < 0 ? first : max(first, min(ow, last / sx + 1))
                    if first > 0 { dst.update(repeating: 0, count: first) }
                    let row = input - px + kx
                    for ox in first..<end { dst[ox] = row[ox * sx] }
                    if end < ow { (dst + end).update(repeating: 0, count: ow - end) }
                }
            }
        }
    }
}
