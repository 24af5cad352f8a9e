import COpenBLAS
import Dispatch

/// A 3D convolution (PyTorch `Conv3d` semantics, weights `[out, in, kd, kh, kw]`), computed as
/// a matrix product on OpenBLAS over im2col tiles, so scratch memory stays bounded whatever
/// the volume size.
public struct Conv3D: Sendable {
    public let inChannels: Int
    public let outChannels: Int
    public let kernel: Int
    public let stride: Int
    public let padding: Int
    /// `[out, in, k, k, k]`, row-major.
    public let weight: [Float]
    /// `[out]`, or nil for no bias.
    public let bias: [Float]?

    /// Size of one worker's patch-matrix tile in floats (1 Mi floats = 4 MiB, cache-sized).
    public static let tileFloats = 1 << 20

    public init(inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                weight: [Float], bias: [Float]?) {
        precondition(weight.count == outChannels * inChannels * kernel * kernel * kernel, "conv weight size")
        precondition(bias == nil || bias!.count == outChannels, "conv bias size")
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.weight = weight
        self.bias = bias
    }

    func outputSize(_ n: Int) -> Int { (n + 2 * padding - kernel) / stride + 1 }

    /// Applies the convolution.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.channels == inChannels, "conv expects \(inChannels) channels, got \(x.channels)")
        let od = outputSize(x.depth), oh = outputSize(x.height), ow = outputSize(x.width)
        let n = od * oh * ow
        var out = [Float](repeating: 0, count: outChannels * n)
        let k3 = kernel * kernel * kernel
        let kRows = inChannels * k3
        let plane = oh * ow

        if kernel == 1 && stride == 1 && padding == 0 {
            x.data.withUnsafeBufferPointer { src in
                weight.withUnsafeBufferPointer { w in
                    out.withUnsafeMutableBufferPointer { dst in
                        ParallelGEMM.multiply(m: outChannels, n: n, k: inChannels, a: w.baseAddress!, lda: inChannels,
                                              b: src.baseAddress!, ldb: n, c: dst.baseAddress!, ldc: n)
                    }
                }
            }
        } else {
            // Tiles of whole output lines whose patch matrix stays in cache, each filled and
            // multiplied by one worker with single-threaded OpenBLAS.
            let linesTotal = od * oh
            let linesPerTile = max(1, min(linesTotal, Self.tileFloats / max(1, kRows * ow)))
            let tiles = (linesTotal + linesPerTile - 1) / linesPerTile
            let workers = min(EngineThreads.count, tiles)
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

    /// Fills `col` (`[in*k^3, lines*ow]`) with the input patches of output lines
    /// `line0 ..< line0+lines` (line = z*oh + y); zero where the kernel hangs over the border.
    private func im2col(_ src: UnsafePointer<Float>, _ x: Tensor, into col: UnsafeMutablePointer<Float>,
                        line0: Int, lines: Int, oh: Int, ow: Int) {
        let k = kernel, s = stride, p = padding
        let (d, h, w) = (x.depth, x.height, x.width)
        let tileN = lines * ow
        let rows = inChannels * k * k * k
        for r in 0..<rows {
            let ci = r / (k * k * k)
            let kz = (r / (k * k)) % k, ky = (r / k) % k, kx = r % k
            let rowPtr = col + r * tileN
            let channel = src + ci * d * h * w
            let lo = s == 1 ? max(0, p - kx) : 0, hi = s == 1 ? max(lo, min(ow, w + p - kx)) : 0
            for l in 0..<lines {
                let line = line0 + l
                let iz = (line / oh) * s - p + kz
                let iy = (line % oh) * s - p + ky
                let dst = rowPtr + l * ow
                if iz < 0 || iz >= d || iy < 0 || iy >= h {
                    dst.update(repeating: 0, count: ow)
                    continue
                }
                let input = channel + (iz * h + iy) * w
                if s == 1 {
                    // input x = ox - p + kx, valid for ox in [lo, hi)
                    if lo > 0 { dst.update(repeating: 0, count: lo) }
                    if hi > lo { (dst + lo).update(from: input + (lo - p + kx), count: hi - lo) }
                    if hi < ow { (dst + hi).update(repeating: 0, count: ow - hi) }
                } else {
                    for ox in 0..<ow {
                        let ix = ox * s - p + kx
                        dst[ox] = (ix >= 0 && ix < w) ? input[ix] : 0
                    }
                }
            }
        }
    }
}
