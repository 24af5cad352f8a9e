@testable import Engine
import Testing

/// The slab-by-slab convolutions the HD-BET forward pass uses to save memory give the same
/// output as the whole-volume convolution: over their own input, added onto a residual, and
/// fed by an upsampling; depths that are not a multiple of the slab exercise the last slab.
@Suite struct SlabConvolutionTests {
    typealias W = WinogradParityTests

    @Test(arguments: [[9, 7, 11], [8, 6, 5], [1, 4, 4], [4, 3, 3], [13, 5, 6]])
    func inPlaceMatchesWholeVolume(size: [Int]) {
        let conv = W.conv(6, 6)
        let x = W.input(6, size[0], size[1], size[2])
        var y = x
        conv.applyInPlace(&y, threads: 2)
        #expect(y == conv(x, threads: 2), "slab-wise output differs from the whole-volume convolution")
    }

    @Test func addingOntoResidualMatchesFusedResidual() {
        let conv = W.conv(5, 5)
        let x = W.input(5, 11, 6, 7)
        var residual = Tensor(channels: 5, depth: 11, height: 6, width: 7, data: W.values(5 * 11 * 6 * 7, seed: 23))
        let expected = conv(x, adding: residual, threads: 2)
        x.data.withUnsafeBufferPointer { a in
            residual.data.withUnsafeMutableBufferPointer { p in
                conv.slabwise(a.baseAddress!, depth: 11, height: 6, width: 7, into: p.baseAddress!, adding: true, threads: 2)
            }
        }
        #expect(residual == expected)
    }

    /// Over its own buffer and added onto it (each slab's input copied before the slab below
    /// it is written), across several slabs and a short last one.
    @Test func inPlaceAddingMatchesResidualOfItself() {
        let conv = W.conv(5, 5)
        let x = W.input(5, 19, 6, 7)
        let expected = conv(x, adding: x, threads: 2)
        var y = x
        y.data.withUnsafeMutableBufferPointer { p in
            conv.slabwise(UnsafePointer(p.baseAddress!), depth: 19, height: 6, width: 7, into: p.baseAddress!, adding: true, threads: 2)
        }
        #expect(y == expected)
    }

    /// The upsampling convolution written straight into the upper channels of a wider buffer
    /// (the concatenation) gives the whole-volume result there and leaves the lower channels alone.
    @Test func upsampledSlabsStraightIntoConcatenation() {
        let conv = W.conv(4, 3)
        let small = W.input(4, 5, 3, 4)
        let (d, h, w) = (10, 6, 8), n = d * h * w
        let expected = conv(Upsample.trilinearAlignCorners(small, depth: d, height: h, width: w, threads: 2), threads: 2)
        var out = [Float](repeating: -7, count: 5 * n)
        out.withUnsafeMutableBufferPointer { p in
            conv.slabwise(depth: d, height: h, width: w, threads: 2,
                          fill: { Upsample.trilinearAlignCorners(small, depth: d, height: h, width: w, slices: $0, into: $1, channelStride: $2, threads: 2) },
                          into: p.baseAddress! + 2 * n, channelStride: n, adding: false)
        }
        #expect(Array(out[(2 * n)...]) == expected.data)
        #expect(out[..<(2 * n)].allSatisfy { $0 == -7 }, "the lower channels were written")
    }

    /// A norm applied as the slabs are filled gives, bit for bit, the convolution of the
    /// normalised tensor: in place, into a separate tensor and added onto a residual.
    @Test func normalisingWhileFillingMatchesNormaliseThenConvolve() {
        let conv = W.conv(5, 5)
        let x = W.input(5, 11, 6, 7)
        let norm = InstanceNorm(weight: [0.5, 1.5, -1, 2, 0.25], bias: [0.1, -0.2, 0.3, 0, 1])
        let normalised = norm(x, leakySlope: 0.01, threads: 2)
        let affine = norm.coefficients(of: x, leakySlope: 0.01, threads: 2)
        var inPlace = x
        conv.applyInPlace(&inPlace, normalizing: affine, threads: 2)
        #expect(inPlace == conv(normalised, threads: 2))
        var residual = W.input(5, 11, 6, 7)
        let expected = conv(normalised, adding: residual, threads: 2)
        x.data.withUnsafeBufferPointer { a in
            residual.data.withUnsafeMutableBufferPointer { p in
                conv.slabwise(a.baseAddress!, depth: 11, height: 6, width: 7, into: p.baseAddress!, adding: true,
                              normalizing: affine, threads: 2)
            }
        }
        #expect(residual == expected)
    }

    /// A norm of the upper channels only (a concatenation's upsampled half), applied while
    /// filling: the lower channels go in as they are.
    @Test func normalisingUpperChannelsOnlyMatchesConcatenationOfNormalisedHalf() {
        let conv = W.conv(5, 5)
        let lower = W.input(2, 9, 6, 7), upper = W.input(3, 9, 6, 7)
        let norm = InstanceNorm(weight: [1.5, -1, 0.5], bias: [0.2, 0, -0.3])
        let expected = conv(TensorOps.concatChannels(lower, norm(upper, leakySlope: 0.01, threads: 2)), threads: 2)
        var x = TensorOps.concatChannels(lower, upper)
        conv.applyInPlace(&x, normalizing: norm.coefficients(of: upper, leakySlope: 0.01, threads: 2).starting(at: 2), threads: 2)
        #expect(x == expected)
    }
}
