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
    /// `out + c * channelStride + (z - slices.lowerBound) * height * width`. Separable: each
    /// input slice is interpolated along width once (and kept while two output slices use it),
    /// then rows are blended along height and depth, in the same operations and order as the
    /// voxel-by-voxel formula, so the result is the same to the bit.
    static func trilinearAlignCorners(_ x: Tensor, depth: Int, height: Int, width: Int, slices: Range<Int>,
                                      into out: UnsafeMutablePointer<Float>, channelStride: Int, threads: Int) {
        let az = Axis(x.depth, depth), ay = Axis(x.height, height), ax = Axis(x.width, width)
        let (h, w) = (x.height, x.width)
        let planeSize = h * width
        x.data.withUnsafeBufferPointer { srcBuf in
            let sharedSrc = UnsafeShared(srcBuf.baseAddress!), sharedDst = UnsafeShared(out)
            Conv3D.perChannel(x.channels, threads: threads) { c in
                let planes = UnsafeMutablePointer<Float>.allocate(capacity: 2 * planeSize)
                defer { planes.deallocate() }
                var held = [-1, -1]
                // the slot holding input slice `z` interpolated along width, `keep`'s slot untouched
                func plane(_ z: Int, keep: Int) -> UnsafeMutablePointer<Float> {
                    if let slot = held.firstIndex(of: z) { return planes + slot * planeSize }
                    let slot = held[0] == keep ? 1 : 0
                    held[slot] = z
                    let src = UnsafePointer(sharedSrc.pointer) + (c * x.depth + z) * h * w, dst = planes + slot * planeSize
                    ax.lo.withUnsafeBufferPointer { lo in
                        ax.hi.withUnsafeBufferPointer { hi in
                            ax.t.withUnsafeBufferPointer { t in
                                for row in 0..<h {
                                    let s = src + row * w, d = dst + row * width
                                    for xx in 0..<width { d[xx] = s[lo[xx]] * (1 - t[xx]) + s[hi[xx]] * t[xx] }
                                }
                            }
                        }
                    }
                    return dst
                }
                var o = sharedDst.pointer + c * channelStride
                for z in slices {
                    let p0 = plane(az.lo[z], keep: az.hi[z]), p1 = plane(az.hi[z], keep: az.lo[z]), tz = az.t[z]
                    let uz = 1 - tz
                    for yy in 0..<height {
                        // four input rows, blended along height then depth (a loop the compiler vectorises)
                        let r0 = ay.lo[yy] * width, r1 = ay.hi[yy] * width, ty = ay.t[yy], uy = 1 - ty
                        let a0 = UnsafePointer(p0 + r0), a1 = UnsafePointer(p0 + r1), b0 = UnsafePointer(p1 + r0), b1 = UnsafePointer(p1 + r1)
                        let row = o
                        for xx in 0..<width {
                            let c0 = a0[xx] * uy + a1[xx] * ty
                            let c1 = b0[xx] * uy + b1[xx] * ty
                            row[xx] = c0 * uz + c1 * tz
                        }
                        o += width
                    }
                }
            }
        }
    }

    /// For each output position along one axis: the two input positions and the weight of the upper.
    struct Axis {
        var lo: [Int] = [], hi: [Int] = [], t: [Float] = []
        init(_ n: Int, _ m: Int) {
            let scale = m > 1 ? Float(n - 1) / Float(m - 1) : 0
            for o in 0..<m {
                let s = Float(o) * scale
                let l = min(Int(s), n - 1)
                lo.append(l)
                hi.append(min(l + 1, n - 1))
                t.append(s - Float(l))
            }
        }
    }
}
