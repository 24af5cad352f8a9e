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
    public func callAsFunction(_ x: Tensor, leakySlope: Float? = nil, threads: Int = EngineThreads.available) -> Tensor {
        var y = x
        normalize(&y, leakySlope: leakySlope, threads: threads)
        return y
    }

    /// Normalises each channel of `x` in place, then applies `leakySlope` (nil: no activation).
    public func normalize(_ x: inout Tensor, leakySlope: Float? = nil, threads: Int = EngineThreads.available) {
        precondition(x.channels == weight.count, "instance norm expects \(weight.count) channels")
        let n = x.spatialCount
        x.data.withUnsafeMutableBufferPointer { normalize($0.baseAddress!, spatialCount: n, leakySlope: leakySlope, threads: threads) }
    }

    /// Normalises, in place, the `weight.count` channels of `spatialCount` values that start at `values`.
    func normalize(_ values: UnsafeMutablePointer<Float>, spatialCount n: Int, leakySlope: Float?, threads: Int) {
        let channels = weight.count
        let workers = max(1, min(channels, threads))
        let weight = self.weight, bias = self.bias, epsilon = Double(self.epsilon)
        let shared = UnsafeShared(values)
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            var c = worker
            while c < channels {
                let p = shared.pointer + c * n
                // two passes (mean, then squared deviations), float sums over blocks of 512
                // added up in double: exact enough for HD-BET parity, and vectorisable
                func blockSum(_ term: (Float) -> Float) -> Double {
                    var total = 0.0, start = 0
                    while start < n {
                        let end = min(n, start + 512)
                        var s: Float = 0
                        for i in start..<end { s += term(p[i]) }
                        total += Double(s)
                        start = end
                    }
                    return total
                }
                let mean = blockSum { $0 } / Double(n)
                let m = Float(mean)
                let variance = blockSum { ($0 - m) * ($0 - m) } / Double(n)
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
                c += workers
            }
        }
    }
}
