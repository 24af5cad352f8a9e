/// Instance normalisation with affine parameters (PyTorch `InstanceNorm3d(affine=True)`
/// normalising with each input's own statistics, biased variance), optionally followed by
/// a leaky ReLU in the same pass.
public struct InstanceNorm: Sendable {
    public let weight: [Float]
    public let bias: [Float]
    public let epsilon: Float

    public init(weight: [Float], bias: [Float], epsilon: Float = 1e-5) {
        precondition(weight.count == bias.count, "instance norm weight and bias sizes differ")
        self.weight = weight
        self.bias = bias
        self.epsilon = epsilon
    }

    /// Normalises each channel, then applies `leakySlope` (nil: no activation).
    public func callAsFunction(_ x: Tensor, leakySlope: Float? = nil) -> Tensor {
        precondition(x.channels == weight.count, "instance norm expects \(weight.count) channels")
        var y = x
        let n = x.spatialCount
        y.data.withUnsafeMutableBufferPointer { buf in
            for c in 0..<x.channels {
                let p = buf.baseAddress! + c * n
                var sum = 0.0, sumSq = 0.0
                for i in 0..<n {
                    let v = Double(p[i])
                    sum += v
                    sumSq += v * v
                }
                let mean = sum / Double(n)
                let variance = max(0, sumSq / Double(n) - mean * mean)
                let scale = Float(Double(weight[c]) / (variance + Double(epsilon)).squareRoot())
                let shift = bias[c] - Float(mean) * scale
                if let slope = leakySlope {
                    for i in 0..<n {
                        let v = p[i] * scale + shift
                        p[i] = v >= 0 ? v : v * slope
                    }
                } else {
                    for i in 0..<n { p[i] = p[i] * scale + shift }
                }
            }
        }
        return y
    }
}
