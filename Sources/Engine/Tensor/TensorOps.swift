import Foundation

/// Element-wise and shape operations on ``Tensor``: leaky ReLU, residual add, channel
/// concatenation, softmax over channels, mirroring.
public enum TensorOps {
    /// `max(x, slope * x)` for slope < 1.
    public static func leakyReLU(_ x: Tensor, slope: Float) -> Tensor {
        var y = x
        y.data.withUnsafeMutableBufferPointer { p in
            for i in p.indices where p[i] < 0 { p[i] *= slope }
        }
        return y
    }

    /// `a + b` (same shape).
    public static func add(_ a: Tensor, _ b: Tensor) -> Tensor {
        precondition(a.shape == b.shape, "add: shapes \(a.shape) and \(b.shape) differ")
        var y = a
        y.data.withUnsafeMutableBufferPointer { p in
            b.data.withUnsafeBufferPointer { q in
                for i in p.indices { p[i] += q[i] }
            }
        }
        return y
    }

    /// Stacks the channels of `a` then `b` (same spatial size).
    public static func concatChannels(_ a: Tensor, _ b: Tensor) -> Tensor {
        precondition(a.depth == b.depth && a.height == b.height && a.width == b.width,
                     "concat: spatial sizes differ")
        return Tensor(channels: a.channels + b.channels, depth: a.depth, height: a.height,
                      width: a.width, data: a.data + b.data)
    }

    /// Softmax over the channel axis at every voxel.
    public static func softmaxChannels(_ x: Tensor) -> Tensor {
        var y = x
        let n = x.spatialCount, c = x.channels
        y.data.withUnsafeMutableBufferPointer { p in
            for i in 0..<n {
                var m = -Float.infinity
                for k in 0..<c { m = max(m, p[k * n + i]) }
                var s: Float = 0
                for k in 0..<c {
                    let e = (p[k * n + i] - m).exp
                    p[k * n + i] = e
                    s += e
                }
                for k in 0..<c { p[k * n + i] /= s }
            }
        }
        return y
    }

    /// Reverses the tensor along the chosen spatial axes (0 depth, 1 height, 2 width).
    public static func flip(_ x: Tensor, axes: Set<Int>) -> Tensor {
        if axes.isEmpty { return x }
        var y = x
        let (d, h, w) = (x.depth, x.height, x.width)
        x.data.withUnsafeBufferPointer { src in
            y.data.withUnsafeMutableBufferPointer { dst in
                for c in 0..<x.channels {
                    for z in 0..<d {
                        let sz = axes.contains(0) ? d - 1 - z : z
                        for yy in 0..<h {
                            let sy = axes.contains(1) ? h - 1 - yy : yy
                            let o = ((c * d + z) * h + yy) * w
                            let s = ((c * d + sz) * h + sy) * w
                            if axes.contains(2) {
                                for xx in 0..<w { dst[o + xx] = src[s + w - 1 - xx] }
                            } else {
                                for xx in 0..<w { dst[o + xx] = src[s + xx] }
                            }
                        }
                    }
                }
            }
        }
        return y
    }
}

extension Float {
    @inline(__always) var exp: Float { Float(Foundation.exp(Double(self))) }
}
