@testable import Engine
import Testing

/// The convolutions that do not keep Winograd filters, against a float64 direct convolution
/// written from the definition: the im2col path with strides (each input row split into its
/// phases) on odd sizes, per-axis kernels, strides and paddings that reach past the borders, and
/// the wide stride-1 layers that run Winograd F(2,3) with filters transformed at each call.
@Suite struct ConvolutionReferenceTests {
    typealias W = WinogradParityTests

    /// `conv` on `x` from the definition, in double precision.
    static func reference(_ conv: Conv3D, _ x: Tensor) -> [Double] {
        let (k, s, p) = (conv.kernelSize, conv.strides, conv.paddings)
        let od = conv.outputSize(x.depth, axis: 0), oh = conv.outputSize(x.height, axis: 1), ow = conv.outputSize(x.width, axis: 2)
        var out = [Double](repeating: 0, count: conv.outChannels * od * oh * ow)
        for co in 0..<conv.outChannels {
            for z in 0..<od {
                for y in 0..<oh {
                    for xo in 0..<ow {
                        var sum = Double(conv.bias?[co] ?? 0)
                        for ci in 0..<conv.inChannels {
                            for kz in 0..<k[0] {
                                let iz = z * s[0] - p[0] + kz
                                guard iz >= 0 && iz < x.depth else { continue }
                                for ky in 0..<k[1] {
                                    let iy = y * s[1] - p[1] + ky
                                    guard iy >= 0 && iy < x.height else { continue }
                                    for kx in 0..<k[2] {
                                        let ix = xo * s[2] - p[2] + kx
                                        guard ix >= 0 && ix < x.width else { continue }
                                        let wv = conv.weight[(((co * conv.inChannels + ci) * k[0] + kz) * k[1] + ky) * k[2] + kx]
                                        sum += Double(wv) * Double(x.data[((ci * x.depth + iz) * x.height + iy) * x.width + ix])
                                    }
                                }
                            }
                        }
                        out[((co * od + z) * oh + y) * ow + xo] = sum
                    }
                }
            }
        }
        return out
    }

    static func worstDifference(_ a: Tensor, _ b: [Double]) -> Double {
        #expect(a.data.count == b.count)
        return zip(a.data, b).map { abs(Double($0) - $1) }.max() ?? .infinity
    }

    /// (in, out, input size, kernel, stride, padding): stride 2 on even and odd widths (the last
    /// output's kernel hanging over the far border or not), stride 3, padding 0 and 2, nnU-Net's
    /// `[1, 3, 3]` kernels with `[1, 2, 2]` strides, and a row narrower than one SIMD block.
    static let strided: [(Int, Int, [Int], [Int], [Int], [Int])] = [
        (3, 4, [7, 9, 37], [3, 3, 3], [2, 2, 2], [1, 1, 1]),
        (5, 2, [6, 8, 34], [3, 3, 3], [2, 2, 2], [1, 1, 1]),
        (2, 3, [5, 7, 11], [3, 3, 3], [2, 2, 2], [0, 0, 0]),
        (2, 3, [5, 6, 23], [3, 3, 3], [2, 2, 2], [2, 2, 2]),
        (3, 2, [4, 9, 40], [1, 3, 3], [1, 2, 2], [0, 1, 1]),
        (2, 2, [8, 8, 29], [3, 3, 3], [3, 3, 3], [1, 1, 1]),
        (4, 3, [3, 4, 5], [3, 3, 3], [2, 2, 2], [1, 1, 1]),
        (2, 3, [6, 5, 19], [3, 3, 3], [1, 1, 1], [1, 1, 1]),
    ]

    @Test(arguments: strided)
    func im2colMatchesTheDefinition(cin: Int, cout: Int, size: [Int], kernel: [Int], stride: [Int], padding: [Int]) {
        let conv = Conv3D(inChannels: cin, outChannels: cout, kernel: kernel, stride: stride, padding: padding,
                          weight: W.values(cout * cin * kernel.reduce(1, *), seed: 17), bias: W.values(cout, seed: 19))
        let x = W.input(cin, size[0], size[1], size[2])
        let reference = Self.reference(conv, x)
        let worst = Self.worstDifference(conv.direct(x, threads: 2), reference)
        #expect(worst <= 1e-5, "im2col vs float64 definition max abs difference \(worst)")
        if stride != [1, 1, 1] {
            #expect(!conv.runsWinograd && conv.algorithm == "im2col")
            #expect(Self.worstDifference(conv(x, threads: 3), reference) == worst)
        }
    }

    /// A layer above ``Conv3D/winogradMaxPairs`` (240 x 240 channels) keeps no transformed
    /// filters, runs F(2,3) with filters transformed at the call, and stays within F(2,3)'s error
    /// of the definition on an odd volume whose tiles cross every far border.
    @Test func wideLayerRunsWinogradWithFiltersPerCall() {
        let channels = 240
        let conv = Conv3D(inChannels: channels, outChannels: channels, kernel: 3, padding: 1,
                          weight: W.values(channels * channels * 27, seed: 29).map { $0 * 0.05 }, bias: W.values(channels, seed: 31))
        #expect(channels * channels > Conv3D.winogradMaxPairs)
        #expect(!conv.usesWinograd && conv.transformsFiltersPerCall && conv.algorithm == "winograd F(2,3) per call")
        let x = W.input(channels, 3, 5, 4)
        let reference = Self.reference(conv, x)
        let largest = reference.map(abs).max() ?? 0
        let winograd = Self.worstDifference(conv(x, threads: 2), reference)
        let direct = Self.worstDifference(conv.direct(x, threads: 2), reference)
        #expect(winograd <= 1e-5 * max(1, largest), "per-call Winograd max abs difference \(winograd), largest output \(largest)")
        #expect(direct <= 1e-5 * max(1, largest))
        let residual = W.input(channels, 3, 5, 4)
        let added = conv(x, adding: residual, threads: 2)
        let expected = zip(reference, residual.data).map { $0 + Double($1) }
        #expect(Self.worstDifference(added, expected) <= 1e-5 * max(1, largest))
    }

    /// Filters transformed on several workers are the same bits as on one.
    @Test func filterTransformIsTheSameOnAnyNumberOfWorkers() {
        let weight = W.values(7 * 5 * 27, seed: 37)
        let one = Conv3D.transformFilters(weight, outChannels: 7, inChannels: 5, variant: .f2, threads: 1)
        #expect(Conv3D.transformFilters(weight, outChannels: 7, inChannels: 5, variant: .f2, threads: 3) == one)
        #expect(Conv3D.transformFilters(weight, outChannels: 7, inChannels: 5, variant: .f4, threads: 2)
            == Conv3D.transformFilters(weight, outChannels: 7, inChannels: 5, variant: .f4, threads: 1))
    }
}
