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

    /// Largest im2col scratch buffer in floats (64 Mi floats = 256 MiB).
    public static let maxScratchFloats = 64 << 20

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
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
                                    Int32(outChannels), Int32(n), Int32(inChannels),
                                    1, w.baseAddress, Int32(inChannels),
                                    src.baseAddress, Int32(n), 0, dst.baseAddress, Int32(n))
                    }
                }
            }
        } else {
            let planesPerTile = max(1, min(od, Self.maxScratchFloats / max(1, kRows * plane)))
            var scratch = [Float](repeating: 0, count: kRows * planesPerTile * plane)
            var z0 = 0
            while z0 < od {
                let planes = min(planesPerTile, od - z0)
                let tileN = planes * plane
                scratch.withUnsafeMutableBufferPointer { col in
                    im2col(x, into: col.baseAddress!, z0: z0, planes: planes, oh: oh, ow: ow)
                }
                scratch.withUnsafeBufferPointer { col in
                    weight.withUnsafeBufferPointer { w in
                        out.withUnsafeMutableBufferPointer { dst in
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
                                        Int32(outChannels), Int32(tileN), Int32(kRows),
                                        1, w.baseAddress, Int32(kRows),
                                        col.baseAddress, Int32(tileN), 0,
                                        dst.baseAddress! + z0 * plane, Int32(n))
                        }
                    }
                }
                z0 += planes
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

    /// Fills `col` (`[in*k^3, planes*oh*ow]`) with the input patches of output planes
    /// `z0 ..< z0+planes`; zero where the kernel hangs over the padded border.
    private func im2col(_ x: Tensor, into col: UnsafeMutablePointer<Float>, z0: Int, planes: Int, oh: Int, ow: Int) {
        let k = kernel, s = stride, p = padding
        let (d, h, w) = (x.depth, x.height, x.width)
        let tileN = planes * oh * ow
        let rows = inChannels * k * k * k
        x.data.withUnsafeBufferPointer { srcBuf in
            let shared = UnsafeShared(srcBuf.baseAddress!), target = UnsafeShared(col)
            DispatchQueue.concurrentPerform(iterations: min(rows, 8)) { part in
                var r = part
                while r < rows {
                    let ci = r / (k * k * k)
                    let kz = (r / (k * k)) % k, ky = (r / k) % k, kx = r % k
                    let rowPtr = target.pointer + r * tileN
                    let channel = UnsafePointer(shared.pointer) + ci * d * h * w
                    var o = 0
                    for pz in 0..<planes {
                        let iz = (z0 + pz) * s - p + kz
                        for oy in 0..<oh {
                            let iy = oy * s - p + ky
                            let dst = rowPtr + o
                            if iz < 0 || iz >= d || iy < 0 || iy >= h {
                                dst.update(repeating: 0, count: ow)
                            } else {
                                let line = channel + (iz * h + iy) * w
                                if s == 1 {
                                    // input x = ox - p + kx, valid for ox in [lo, hi)
                                    let lo = max(0, p - kx), hi = min(ow, w + p - kx)
                                    if lo > 0 { dst.update(repeating: 0, count: lo) }
                                    if hi > lo { (dst + lo).update(from: line + (lo - p + kx), count: hi - lo) }
                                    if hi < ow { (dst + max(hi, lo)).update(repeating: 0, count: ow - max(hi, lo)) }
                                } else {
                                    for ox in 0..<ow {
                                        let ix = ox * s - p + kx
                                        dst[ox] = (ix >= 0 && ix < w) ? line[ix] : 0
                                    }
                                }
                            }
                            o += ow
                        }
                    }
                    r += min(rows, 8)
                }
            }
        }
    }
}
