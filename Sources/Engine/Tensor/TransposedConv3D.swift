/// A transposed 3D convolution whose kernel equals its stride on every axis (PyTorch
/// `ConvTranspose3d(kernel_size=s, stride=s)`, weights `[in, out, sd, sh, sw]`), as in nnU-Net's
/// decoder: one matrix product, then each input voxel spreads into an `sd x sh x sw` block.
/// The stride may differ per axis (nnU-Net's `[1, 2, 2]` upsampling).
public struct TransposedConv3D: Sendable {
    public let inChannels: Int
    public let outChannels: Int
    /// Stride (= kernel size) per axis (depth, height, width).
    public let strides: [Int]
    public let weight: [Float]
    public let bias: [Float]?

    /// The stride when it is the same on every axis (the largest otherwise).
    public var stride: Int { strides.max()! }

    /// The same stride on every axis.
    public init(inChannels: Int, outChannels: Int, stride: Int, weight: [Float], bias: [Float]?) {
        self.init(inChannels: inChannels, outChannels: outChannels, strides: [stride, stride, stride],
                  weight: weight, bias: bias)
    }

    /// A stride per axis (depth, height, width).
    public init(inChannels: Int, outChannels: Int, strides: [Int], weight: [Float], bias: [Float]?) {
        precondition(strides.count == 3 && strides.allSatisfy { $0 >= 1 }, "transposed conv strides")
        precondition(weight.count == inChannels * outChannels * strides.reduce(1, *), "transposed conv weight size")
        precondition(bias == nil || bias!.count == outChannels, "transposed conv bias size")
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.strides = strides
        self.weight = weight
        self.bias = bias
    }

    public func callAsFunction(_ x: Tensor, threads: Int = EngineThreads.available) -> Tensor {
        precondition(x.channels == inChannels, "transposed conv expects \(inChannels) channels")
        let (sd, sh, sw) = (strides[0], strides[1], strides[2])
        let block = sd * sh * sw
        let n = x.spatialCount
        let rows = outChannels * block
        // [out*block, n] = W^T [out*block, in] x X [in, n]; W is [in, out*block]
        var products = [Float](repeating: 0, count: rows * n)
        x.data.withUnsafeBufferPointer { src in
            weight.withUnsafeBufferPointer { w in
                products.withUnsafeMutableBufferPointer { dst in
                    ParallelGEMM.multiply(m: rows, n: n, k: inChannels, a: w.baseAddress!, lda: rows, transposeA: true,
                                          b: src.baseAddress!, ldb: n, c: dst.baseAddress!, ldc: n, threads: threads)
                }
            }
        }
        let (d, h, w) = (x.depth, x.height, x.width)
        let (od, oh, ow) = (d * sd, h * sh, w * sw)
        var out = [Float](repeating: 0, count: outChannels * od * oh * ow)
        products.withUnsafeBufferPointer { p in
            out.withUnsafeMutableBufferPointer { o in
                for co in 0..<outChannels {
                    let b = bias?[co] ?? 0
                    for kz in 0..<sd {
                        for ky in 0..<sh {
                            for kx in 0..<sw {
                                let row = p.baseAddress! + (co * block + (kz * sh + ky) * sw + kx) * n
                                var i = 0
                                for z in 0..<d {
                                    for y in 0..<h {
                                        let dst = ((co * od + z * sd + kz) * oh + y * sh + ky) * ow + kx
                                        for xx in 0..<w {
                                            o[dst + xx * sw] = row[i] + b
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
