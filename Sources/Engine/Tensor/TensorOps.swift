import Foundation

/// Element-wise and shape operations on ``Tensor``: leaky ReLU, residual add, channel
/// concatenation, softmax over channels, mirroring, axis permutation.
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
        y.data.withUnsafeMutableBufferPointer { softmax($0.baseAddress!, channels: c, channelStride: n, voxels: 0..<n) }
        return y
    }

    /// Softmax over `channels` values `channelStride` apart, in place, at each voxel of `voxels`.
    static func softmax(_ p: UnsafeMutablePointer<Float>, channels c: Int, channelStride n: Int, voxels: Range<Int>) {
        for i in voxels {
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

extension TensorOps {
    /// Permutes the spatial axes as numpy's `transpose` does: output axis `a` is input axis
    /// `order[a]` (0 depth, 1 height, 2 width); channels stay first.
    public static func permuteSpatial(_ x: Tensor, order: [Int]) -> Tensor {
        precondition(order.sorted() == [0, 1, 2], "permuteSpatial: \(order) is not a permutation of 0, 1, 2")
        if order == [0, 1, 2] { return x }
        let inSize = [x.depth, x.height, x.width]
        let inStride = [x.height * x.width, x.width, 1]
        let outSize = order.map { inSize[$0] }
        let s = order.map { inStride[$0] }
        var out = [Float](repeating: 0, count: x.data.count)
        let n = x.spatialCount
        x.data.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                var o = 0
                for c in 0..<x.channels {
                    let base = c * n
                    for a in 0..<outSize[0] {
                        for b in 0..<outSize[1] {
                            var i = base + a * s[0] + b * s[1]
                            for _ in 0..<outSize[2] {
                                dst[o] = src[i]
                                o += 1
                                i += s[2]
                            }
                        }
                    }
                }
            }
        }
        return Tensor(channels: x.channels, depth: outSize[0], height: outSize[1], width: outSize[2], data: out)
    }
}

extension Float {
    @inline(__always) var exp: Float { Float(Foundation.exp(Double(self))) }
}
