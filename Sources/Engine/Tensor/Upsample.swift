import Dispatch

/// Trilinear upsampling with `align_corners=True` (PyTorch `Upsample(mode="trilinear")`),
/// to an explicit output size.
public enum Upsample {
    /// Resizes every channel of `x` to `depth x height x width`.
    public static func trilinearAlignCorners(_ x: Tensor, depth: Int, height: Int, width: Int,
                                             threads: Int = EngineThreads.available) -> Tensor {
        var out = [Float](repeating: 0, count: x.channels * depth * height * width)
        out.withUnsafeMutableBufferPointer {
            trilinearAlignCorners(x, depth: depth, height: height, width: width, slices: 0..<depth, into: $0.baseAddress!,
                                  channelStride: depth * height * width, threads: threads)
        }
        return Tensor(channels: x.channels, depth: depth, height: height, width: width, data: out)
    }

    /// Output slices `slices` (along depth) of every channel, slice `z` of channel `c` written at
    /// `out + c * channelStride + (z - slices.lowerBound) * height * width`.
    static func trilinearAlignCorners(_ x: Tensor, depth: Int, height: Int, width: Int, slices: Range<Int>,
                                      into out: UnsafeMutablePointer<Float>, channelStride: Int, threads: Int) {
        func axis(_ n: Int, _ m: Int) -> (lo: [Int], hi: [Int], t: [Float]) {
            var lo = [Int](), hi = [Int](), t = [Float]()
            let scale = m > 1 ? Float(n - 1) / Float(m - 1) : 0
            for o in 0..<m {
                let s = Float(o) * scale
                let l = min(Int(s), n - 1)
                lo.append(l)
                hi.append(min(l + 1, n - 1))
                t.append(s - Float(l))
            }
            return (lo, hi, t)
        }
        let az = axis(x.depth, depth), ay = axis(x.height, height), ax = axis(x.width, width)
        let (h, w) = (x.height, x.width)
        let channels = x.channels
        x.data.withUnsafeBufferPointer { srcBuf in
            do {
                let sharedSrc = UnsafeShared(srcBuf.baseAddress!), sharedDst = UnsafeShared(out)
                let workers = max(1, min(channels, threads))
                DispatchQueue.concurrentPerform(iterations: workers) { worker in
                  for c in stride(from: worker, to: channels, by: workers) {
                    let src = UnsafePointer(sharedSrc.pointer), dst = sharedDst.pointer
                    var o = c * channelStride
                    let base = c * x.depth * h * w
                    for z in slices {
                        let z0 = base + az.lo[z] * h * w, z1 = base + az.hi[z] * h * w, tz = az.t[z]
                        for yy in 0..<height {
                            let y0 = ay.lo[yy] * w, y1 = ay.hi[yy] * w, ty = ay.t[yy]
                            for xx in 0..<width {
                                let x0 = ax.lo[xx], x1 = ax.hi[xx], tx = ax.t[xx]
                                let c00 = src[z0 + y0 + x0] * (1 - tx) + src[z0 + y0 + x1] * tx
                                let c01 = src[z0 + y1 + x0] * (1 - tx) + src[z0 + y1 + x1] * tx
                                let c10 = src[z1 + y0 + x0] * (1 - tx) + src[z1 + y0 + x1] * tx
                                let c11 = src[z1 + y1 + x0] * (1 - tx) + src[z1 + y1 + x1] * tx
                                let c0 = c00 * (1 - ty) + c01 * ty
                                let c1 = c10 * (1 - ty) + c11 * ty
                                dst[o] = c0 * (1 - tz) + c1 * tz
                                o += 1
                            }
                        }
                    }
                  }
                }
            }
        }
    }
}
