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
        let affine = coefficients(UnsafePointer(values), spatialCount: n, leakySlope: leakySlope, threads: threads)
        let shared = UnsafeShared(values)
        Conv3D.perChannel(weight.count, threads: threads) { c in
            affine.apply(channel: c, from: shared.pointer + c * n, to: shared.pointer + c * n, count: n)
        }
    }

    /// The scale and shift that normalise each of the `weight.count` channels of `spatialCount`
    /// values at `values` (their statistics taken now), with `leakySlope` (nil: no activation),
    /// for a later pass that applies them while it copies (``ChannelAffine``).
    func coefficients(_ values: UnsafePointer<Float>, spatialCount n: Int, leakySlope: Float?, threads: Int) -> ChannelAffine {
        let channels = weight.count
        let weight = self.weight, bias = self.bias, epsilon = Double(self.epsilon)
        var scale = [Float](repeating: 0, count: channels), shift = scale
        scale.withUnsafeMutableBufferPointer { scales in
            shift.withUnsafeMutableBufferPointer { shifts in
                let source = UnsafeShared(UnsafeMutablePointer(mutating: values))
                let sc = UnsafeShared(scales.baseAddress!), sh = UnsafeShared(shifts.baseAddress!)
                Conv3D.perChannel(channels, threads: threads) { c in
                    let (mean, variance) = Self.meanAndVariance(source.pointer + c * n, count: n)
                    let s = Float(Double(weight[c]) / (variance + epsilon).squareRoot())
                    sc.pointer[c] = s
                    sh.pointer[c] = bias[c] - Float(mean) * s
                }
            }
        }
        return ChannelAffine(scale: scale, shift: shift, slope: leakySlope ?? 1)
    }

    /// Normalised values of `x`'s channels, for ``coefficients(_:spatialCount:leakySlope:threads:)`` on a tensor.
    func coefficients(of x: Tensor, leakySlope: Float?, threads: Int) -> ChannelAffine {
        precondition(x.channels == weight.count, "instance norm expects \(weight.count) channels")
        return x.data.withUnsafeBufferPointer { coefficients($0.baseAddress!, spatialCount: x.spatialCount, leakySlope: leakySlope, threads: threads) }
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

}

/// An instance norm whose statistics are known, as one multiply and one add per channel, then
/// the leaky ReLU: applied in place, or while a value is copied (a slab convolution's input),
/// which saves the normalised tensor's own pass over memory. The same operations either way.
struct ChannelAffine: Sendable {
    let scale: [Float], shift: [Float]
    /// The leaky ReLU's slope (1: no activation).
    let slope: Float
    /// The first channel normalised (`scale[0]` is its); the channels before it are copied as
    /// they are (a concatenation whose lower channels are already normalised).
    var firstChannel = 0

    /// The same normalisation for channels `first...` of a wider tensor.
    func starting(at first: Int) -> ChannelAffine {
        ChannelAffine(scale: scale, shift: shift, slope: slope, firstChannel: first)
    }

    /// `to[i] = x * scale + shift`, then `v < 0 ? v * slope : v`, for `x = from[i]` of channel
    /// `c` (a copy below ``firstChannel``); `from` and `to` may be the same values.
    @inline(__always)
    func apply(channel c: Int, from: UnsafePointer<Float>, to: UnsafeMutablePointer<Float>, count n: Int) {
        guard c >= firstChannel else {
            if UnsafePointer(to) != from { to.update(from: from, count: n) }
            return
        }
        let scale = self.scale[c - firstChannel], shift = self.shift[c - firstChannel], slope = self.slope
        let src = UnsafeRawPointer(from), dst = UnsafeMutableRawPointer(to), vectors = n / 16
        for v in 0..<vectors {
            let y = src.loadUnaligned(fromByteOffset: v * 64, as: SIMD16<Float>.self) * scale + shift
            dst.storeBytes(of: y.replacing(with: y * slope, where: y .< 0), toByteOffset: v * 64, as: SIMD16<Float>.self)
        }
        for i in (vectors * 16)..<n {
            let y = from[i] * scale + shift
            to[i] = y >= 0 ? y : y * slope
        }
    }
}
