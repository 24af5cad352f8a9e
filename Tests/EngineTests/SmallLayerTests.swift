@testable import Engine
import Foundation
import Testing

/// The layers that bypass matrix products (one-channel stencil, fused 1x1x1 + softmax, one-pass
/// instance-norm statistics) against the general paths, and the layer clock's bookkeeping.
@Suite struct SmallLayerTests {
    func values(_ count: Int, seed: Int) -> [Float] {
        (0..<count).map { Float((($0 * 7919 + seed * 104_729) % 2003) - 1001) / 500 }
    }

    func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
        zip(a, b).map { abs($0 - $1) }.max() ?? .infinity
    }

    @Test(arguments: [[5, 6, 13], [9, 4, 16], [3, 3, 1]])
    func oneChannelStencilMatchesIm2col(size: [Int]) throws {
        let x = Tensor(channels: 1, depth: size[0], height: size[1], width: size[2], data: values(size.reduce(1, *), seed: 1))
        let conv = Conv3D(inChannels: 1, outChannels: 21, kernel: 3, padding: 1, weight: values(21 * 27, seed: 2),
                          bias: values(21, seed: 3))
        let stencil = try #require(conv.stencil(x, threads: 2))
        let reference = conv.direct(x, threads: 2)
        #expect(stencil.shape == reference.shape)
        #expect(maxDifference(stencil.data, reference.data) <= 1e-5)
    }

    @Test func stencilRefusesOtherShapes() {
        let x = Tensor(channels: 2, depth: 4, height: 4, width: 4, data: values(128, seed: 4))
        let conv = Conv3D(inChannels: 2, outChannels: 3, kernel: 3, padding: 1, weight: values(3 * 2 * 27, seed: 5), bias: nil)
        #expect(conv.stencil(x, threads: 2) == nil)
    }

    @Test func fusedSoftmaxMatchesConvolutionThenSoftmax() {
        // 5000 voxels: two full blocks of 2048 and a partial one
        let x = Tensor(channels: 42, depth: 10, height: 20, width: 25, data: values(42 * 5000, seed: 6))
        let conv = Conv3D(inChannels: 42, outChannels: 2, kernel: 1, weight: values(2 * 42, seed: 7), bias: nil)
        let fused = conv.softmaxOfProduct(x, threads: 2)
        let reference = TensorOps.softmaxChannels(conv.direct(x, threads: 2))
        #expect(fused.shape == reference.shape)
        #expect(maxDifference(fused.data, reference.data) <= 1e-5)
    }

    @Test func fusedSoftmaxNormalisesBlocksAsNormaliseThenSoftmax() {
        let x = Tensor(channels: 42, depth: 10, height: 20, width: 25, data: values(42 * 5000, seed: 8))
        let conv = Conv3D(inChannels: 42, outChannels: 2, kernel: 1, weight: values(2 * 42, seed: 9), bias: nil)
        let norm = InstanceNorm(weight: values(42, seed: 10), bias: values(42, seed: 11))
        let affine = norm.coefficients(of: x, leakySlope: 0.1, threads: 2)
        let fused = conv.softmaxOfProduct(x, normalizing: affine, threads: 2)
        #expect(fused == conv.softmaxOfProduct(norm(x, leakySlope: 0.1, threads: 2), threads: 2), "not bit for bit the same")
    }

    @Test func instanceNormStatisticsStayExactFarFromZero() {
        // a channel whose mean is large beside its spread, the case one-pass sums get wrong
        let n = 10_007
        let data = (0..<n).map { 1000 + Float(($0 * 37) % 101) / 100 }
        let mean = data.reduce(0.0) { $0 + Double($1) } / Double(n)
        let variance = data.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(n)
        let (m, v) = data.withUnsafeBufferPointer { InstanceNorm.meanAndVariance($0.baseAddress!, count: n) }
        #expect(abs(m - mean) <= 1e-9 * mean)
        #expect(abs(v - variance) <= 1e-4 * variance)
        let norm = InstanceNorm(weight: [2], bias: [0.5])
        let y = norm(Tensor(channels: 1, depth: 1, height: 1, width: n, data: data), leakySlope: 0.01)
        let expected = data.map { value -> Float in
            let z = Float((Double(value) - mean) / (variance + 1e-5).squareRoot()) * 2 + 0.5
            return z >= 0 ? z : z * 0.01
        }
        #expect(maxDifference(y.data, expected) <= 1e-3)
    }

    @Test func layerClockChargesNestedKindsToThemselves() {
        let clock = LayerClock()
        clock.measure("outer") {
            Thread.sleep(forTimeInterval: 0.05)
            clock.measure("inner") { Thread.sleep(forTimeInterval: 0.4) }
        }
        let seconds = Dictionary(uniqueKeysWithValues: clock.stages.map { ($0.name, $0.seconds) })
        #expect(clock.stages.map(\.name) == ["outer", "inner"])
        #expect(seconds["inner"]! >= 0.4)
        // charged the inner time too, outer would be at least 0.45 s; the margin absorbs a
        // late wake-up from the 0.05 s sleep on a loaded machine
        #expect(seconds["outer"]! >= 0.05 && seconds["outer"]! < 0.4)
    }
}
