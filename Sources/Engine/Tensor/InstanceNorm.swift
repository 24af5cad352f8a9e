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
        let weight = self.weight, bias = self.bias, epsilon = Double(self.epsilon)
        let shared = UnsafeShared(values)
        Conv3D.perChannel(channels, threads: threads) { c in
            let p = shared.pointer + c * n
            let (mean, variance) = Self.meanAndVariance(p, count: n)
            let scale = Float(Double(weight[c]) / (variance + epsilon).squareRoot())
            Self.affine(p, count: n, scale: scale, shift: bias[c] - Float(mean) * scale, slope: leakySlope ?? 1)
        }
    }

    /// Mean and biased variance of `count` values in one pass over memory: each block of 512
    /// (in the first cache level) gets its float mean, then the sum and squares of deviations
    /// from it (in 16 lanes) that correct it, and the blocks are merged in double (Chan et
    /// al.'s pairwise update), so the result stays as exact as two passes with double sums.
    static func meanAndVariance(_ p: UnsafePointer<Float>, count n: Int) -> (Double, Double) {
        var total = 0.0, mean = 0.0, m2 = 0.0, start = 0
        while start < n {
            let count = min(512, n - start), q = p + start
            let raw = UnsafeRawPointer(q), vectors = count / 16
            var s = SIMD16<Float>()
            for v in 0..<vectors { s += raw.loadUnaligned(fromByteOffset: v * 64, as: SIMD16<Float>.self) }
            var sum = s.sum()
            for i in (vectors * 16)..<count { sum += q[i] }
            let guess = sum / Float(count)
            var d = SIMD16<Float>(), e2 = SIMD16<Float>()
            for v in 0..<vectors {
                let e = raw.loadUnaligned(fromByteOffset: v * 64, as: SIMD16<Float>.self) - guess
                d += e
                e2 += e * e
            }
            var deviations = Double(d.sum()), squares = Double(e2.sum())
            for i in (vectors * 16)..<count {
                let e = q[i] - guess
                deviations += Double(e)
                squares += Double(e * e)
            }
            // the block's mean corrected by its deviations' sum, and its squares taken about it
            let nb = Double(count), blockMean = Double(guess) + deviations / nb
            squares -= deviations * deviations / nb
            let merged = total + nb, delta = blockMean - mean
            mean += delta * nb / merged
            m2 += squares + delta * delta * total * nb / merged
            total = merged
            start += count
        }
        return (mean, max(0, m2 / total))
    }

    /// `v = x * scale + shift`, then `v < 0 ? v * slope : v` (slope 1: no activation), in place.
    static func affine(_ p: UnsafeMutablePointer<Float>, count n: Int, scale: Float, shift: Float, slope: Float) {
        let raw = UnsafeMutableRawPointer(p), vectors = n / 16
        for v in 0..<vectors {
            let y = raw.loadUnaligned(fromByteOffset: v * 64, as: SIMD16<Float>.self) * scale + shift
            raw.storeBytes(of: y.replacing(with: y * slope, where: y .< 0), toByteOffset: v * 64, as: SIMD16<Float>.self)
        }
        for i in (vectors * 16)..<n {
            let y = p[i] * scale + shift
            p[i] = y >= 0 ? y : y * slope
        }
    }
}
