import Dispatch

/// Instance normalisation with affine parameters (PyTorch `InstanceNorm3d(affine=True)`
/// normalising with each input's own statistics, biased variance), optionally followed by
/// a leaky ReLU in the same pass. Channels are spread over the engine's workers.
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
        let n = x.spatialCount, channels = x.channels
        let weight = self.weight, bias = self.bias, epsilon = Double(self.epsilon)
        y.data.withUnsafeMutableBufferPointer { buf in
            let shared = UnsafeShared(buf.baseAddress!)
            DispatchQueue.concurrentPerform(iterations: min(channels, EngineThreads.count)) { worker in
                var c = worker
                while c < channels {
                    let p = shared.pointer + c * n
                    // float sums over blocks of 4096, added up in double
                    var sum = 0.0, sumSq = 0.0
                    var start = 0
                    while start < n {
                        let end = min(n, start + 4096)
                        var s: Float = 0, q: Float = 0
                        for i in start..<end {
                            let v = p[i]
                            s += v
                            q += v * v
                        }
                        sum += Double(s)
                        sumSq += Double(q)
                        start = end
                    }
                    let mean = sum / Double(n)
                    let variance = max(0, sumSq / Double(n) - mean * mean)
                    let scale = Float(Double(weight[c]) / (variance + epsilon).squareRoot())
                    let shift = bias[c] - Float(mean) * scale
                    if let slope = leakySlope {
                        for i in 0..<n {
                            let v = p[i] * scale + shift
                            p[i] = v >= 0 ? v : v * slope
                        }
                    } else {
                        for i in 0..<n { p[i] = p[i] * scale + shift }
                    }
                    c += min(channels, EngineThreads.count)
                }
            }
        }
        return y
    }
}
