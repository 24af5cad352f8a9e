/// A transposed 3D convolution whose kernel equals its stride (PyTorch
/// `ConvTranspose3d(kernel_size=s, stride=s)`, weights `[in, out, s, s, s]`), as in nnU-Net's
/// decoder: one matrix product, then each input voxel spreads into an s^3 block.
public struct TransposedConv3D: Sendable {
    public let inChannels: Int
    public let outChannels: Int
    public let stride: Int
    public let weight: [Float]
    public let bias: [Float]?

    public init(inChannels: Int, outChannels: Int, stride: Int, weight: [Float], bias: [Float]?) {
        precondition(weight.count == inChannels * outChannels * stride * stride * stride, "transposed conv weight size")
        precondition(bias == nil || bias!.count == outChannels, "transposed conv bias size")
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.stride = stride
        self.weight = weight
        self.bias = bias
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.channels == inChannels, "transposed conv expects \(inChannels) channels")
        let s = stride, s3 = s * s * s
        let n = x.spatialCount
        let rows = outChannels * s3
        // [out*s^3, n] = W^T [out*s^3, in] x X [in, n]; W is [in, out*s^3]
        var products = [Float](repeating: 0, count: rows * n)
        x.data.withUnsafeBufferPointer { src in
            weight.withUnsafeBufferPointer { w in
                products.withUnsafeMutableBufferPointer { dst in
                    ParallelGEMM.multiply(m: rows, n: n, k: inChannels, a: w.baseAddress!, lda: rows, transposeA: true,
                                          b: src.baseAddress!, ldb: n, c: dst.baseAddress!, ldc: n)
                }
            }
        }
        let (d, h, w) = (x.depth, x.height, x.width)
        let (od, oh, ow) = (d * s, h * s, w * s)
        var out = [Float](repeating: 0, count: outChannels * od * oh * ow)
        products.withUnsafeBufferPointer { p in
            out.withUnsafeMutableBufferPointer { o in
                for co in 0..<outChannels {
                    let b = bias?[co] ?? 0
                    for kz in 0..<s {
                        for ky in 0..<s {
                            for kx in 0..<s {
                                let row = p.baseAddress! + (co * s3 + (kz * s + ky) * s + kx) * n
                                var i = 0
                                for z in 0..<d {
                                    for y in 0..<h {
                                        let dst = ((co * od + z * s + kz) * oh + y * s + ky) * ow + kx
                                        for xx in 0..<w {
                                            o[dst + xx * s] = row[i] + b
                                            i += 1
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return Tensor(channels: outChannels, depth: od, height: oh, width: ow, data: out)
    }
}
