/// Resizing a grid of values to another number of voxels over the same extent
/// (voxel centres aligned as scikit-image's `resize` does: `src = (dst + 0.5) * in/out - 0.5`).
public enum Resample {
    /// Trilinear resize, clamped at the edges; slices of the result on `threads` workers (each
    /// value computed the same way whatever their number).
    public static func linear(_ values: [Float], from a: Grid3D, to b: Grid3D, threads: Int = 1) -> [Float] {
        guard b.count > 0 else { return [] }
        let wx = weights(a.nx, b.nx), wy = weights(a.ny, b.ny), wz = weights(a.nz, b.nz)
        // every value is written once, by the worker of its slice (which also maps its pages)
        return [Float](unsafeUninitializedCapacity: b.count) { dstBuffer, initialized in
            values.withUnsafeBufferPointer { srcBuffer in
                let src = UnsafeShared(srcBuffer.baseAddress!), dst = UnsafeShared(dstBuffer.baseAddress!)
                ParallelSlices.forEach(b.nz, threads: threads) { z in
                    let (src, dst) = (src.pointer, dst.pointer)
                    var o = z * b.nx * b.ny
                    let z0 = wz.lo[z] * a.nx * a.ny, z1 = wz.hi[z] * a.nx * a.ny, tz = wz.t[z]
                    for y in 0..<b.ny {
                        let y0 = wy.lo[y] * a.nx, y1 = wy.hi[y] * a.nx, ty = wy.t[y]
                        for x in 0..<b.nx {
                            let x0 = wx.lo[x], x1 = wx.hi[x], tx = wx.t[x]
                            let c00 = src[z0 + y0 + x0] * (1 - tx) + src[z0 + y0 + x1] * tx
                            let c01 = src[z0 + y1 + x0] * (1 - tx) + src[z0 + y1 + x1] * tx
                            let c10 = src[z1 + y0 + x0] * (1 - tx) + src[z1 + y0 + x1] * tx
                            let c11 = src[z1 + y1 + x0] * (1 - tx) + src[z1 + y1 + x1] * tx
                            dst[o] = (c00 * (1 - ty) + c01 * ty) * (1 - tz) + (c10 * (1 - ty) + c11 * ty) * tz
                            o += 1
                        }
                    }
                }
            }
            initialized = b.count
        }
    }

    /// Interpolation sources along one axis.
    static func weights(_ n: Int, _ m: Int) -> (lo: [Int], hi: [Int], t: [Float]) {
        var lo = [Int](repeating: 0, count: m), hi = lo, t = [Float](repeating: 0, count: m)
        let scale = Double(n) / Double(m)
        for o in 0..<m {
            let s = min(max((Double(o) + 0.5) * scale - 0.5, 0), Double(n - 1))
            let l = min(Int(s), n - 1)
            lo[o] = l
            hi[o] = min(l + 1, n - 1)
            t[o] = Float(s - Double(l))
        }
        return (lo, hi, t)
    }
}
