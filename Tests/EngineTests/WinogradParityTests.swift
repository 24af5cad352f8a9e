@testable import Engine
import Testing

/// Winograd F(2x2x2, 3x3x3) and F(4x4x4, 3x3x3) against the direct (im2col) convolution on odd
/// shapes, where output tiles hang over the far borders; the PyTorch goldens in LayerParityTests
/// and HDBETParityTests cover the Winograd path the engine runs against PyTorch itself.
@Suite struct WinogradParityTests {
    /// Deterministic values in [-1, 1) (a linear congruential sequence).
    static func values(_ count: Int, seed: UInt64) -> [Float] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(state >> 40) - (1 << 23)) / Float(1 << 23)
        }
    }

    static func conv(_ cin: Int, _ cout: Int, padding: Int = 1, bias: Bool = true) -> Conv3D {
        Conv3D(inChannels: cin, outChannels: cout, kernel: 3, stride: 1, padding: padding,
               weight: values(cout * cin * 27, seed: 7).map { $0 * 0.3 },
               bias: bias ? values(cout, seed: 11) : nil)
    }

    static func input(_ c: Int, _ d: Int, _ h: Int, _ w: Int) -> Tensor {
        Tensor(channels: c, depth: d, height: h, width: w, data: values(c * d * h * w, seed: 3))
    }

    func worstDifference(_ a: Tensor, _ b: Tensor) -> Float {
        #expect(a.shape == b.shape)
        return zip(a.data, b.data).map { abs($0 - $1) }.max() ?? .infinity
    }

    /// `conv` on `x` as the given Winograd variant, whatever the engine picks for its channels.
    static func winograd(_ conv: Conv3D, _ x: Tensor, _ variant: Winograd3D.Variant,
                         code: TileTransformCode = .preferred, residual: Tensor? = nil) -> Tensor {
        let (od, oh, ow) = (conv.outputSize(x.depth, axis: 0), conv.outputSize(x.height, axis: 1), conv.outputSize(x.width, axis: 2))
        var u = [Float](repeating: 0, count: variant.points * conv.inChannels * conv.outChannels)
        var out = [Float](repeating: 0, count: conv.outChannels * od * oh * ow)
        conv.weight.withUnsafeBufferPointer { w in
            Winograd3D.transformWeights(w.baseAddress!, outChannels: conv.outChannels, inChannels: conv.inChannels,
                                        variant: variant, into: &u)
        }
        x.data.withUnsafeBufferPointer { src in
            conv.bias!.withUnsafeBufferPointer { b in
                (residual?.data ?? []).withUnsafeBufferPointer { r in
                    Winograd3D.convolve(Winograd3D.Shape(x), src: src.baseAddress!, transformedWeights: u, variant: variant,
                                        bias: b.baseAddress, residual: residual == nil ? nil : r.baseAddress,
                                        outChannels: conv.outChannels, pads: conv.paddings, out: &out, od: od, oh: oh, ow: ow,
                                        threads: 2, code: code)
                }
            }
        }
        return Tensor(channels: conv.outChannels, depth: od, height: oh, width: ow, data: out)
    }

    static let shapes: [(Int, Int, [Int], Int)] = [(3, 5, [7, 9, 5], 1), (1, 21, [5, 6, 7], 1), (21, 21, [9, 7, 11], 1),
                                                   (4, 3, [1, 2, 3], 1), (6, 4, [3, 5, 4], 0), (2, 2, [1, 1, 1], 1),
                                                   (5, 7, [6, 3, 8], 2), (42, 42, [10, 13, 9], 1),
                                                   // rows of more than eight F(4,3) tiles, inside and at the borders
                                                   (7, 5, [9, 10, 75], 1), (3, 4, [6, 13, 64], 1), (4, 4, [8, 8, 70], 0)]

    /// F(2,3) stays within 1e-5 of the direct convolution; F(4,3), whose transforms carry
    /// larger constants, within 1e-5 of the largest output (outputs here reach about 13).
    @Test(arguments: shapes)
    func winogradMatchesDirect(cin: Int, cout: Int, size: [Int], padding: Int) {
        let conv = Self.conv(cin, cout, padding: padding)
        #expect(conv.usesWinograd)
        let x = Self.input(cin, size[0], size[1], size[2])
        let direct = conv.direct(x)
        let f2 = worstDifference(Self.winograd(conv, x, .f2), direct), f4 = worstDifference(Self.winograd(conv, x, .f4), direct)
        #expect(f2 <= 1e-5, "Winograd F(2,3) vs direct max abs difference \(f2)")
        let largest = direct.data.map(abs).max() ?? 0
        #expect(f4 <= 1e-5 * largest, "Winograd F(4,3) vs direct max abs difference \(f4)")
        #expect(worstDifference(conv(x), direct) <= 1e-5 * largest)
        print("winograd \(cin)->\(cout) \(size): F(2,3) \(f2), F(4,3) \(f4), largest output \(largest)")
    }

    /// The AVX2 build of the tile transforms gives the portable build's floats bit for bit
    /// (the same additions and multiplies per lane, none fused), on shapes whose tiles hang over
    /// every border, with bias and a residual added.
    @Test(.enabled(if: TileTransformCode.runnable.contains(.avx2), "this processor has no AVX2"),
          arguments: [Winograd3D.Variant.f2, .f4])
    func avx2TransformsMatchPortableBitForBit(variant: Winograd3D.Variant) {
        for (cin, cout, size, padding) in Self.shapes {
            let conv = Self.conv(cin, cout, padding: padding)
            let x = Self.input(cin, size[0], size[1], size[2])
            let (od, oh, ow) = (conv.outputSize(x.depth, axis: 0), conv.outputSize(x.height, axis: 1), conv.outputSize(x.width, axis: 2))
            let residual = Tensor(channels: cout, depth: od, height: oh, width: ow, data: Self.values(cout * od * oh * ow, seed: 29))
            let portable = Self.winograd(conv, x, variant, code: .portable, residual: residual)
            let avx2 = Self.winograd(conv, x, variant, code: .avx2, residual: residual)
            #expect(portable.data.map(\.bitPattern) == avx2.data.map(\.bitPattern), "\(cin)->\(cout) \(size): AVX2 differs")
            #expect(portable.data.contains { $0 != 0 })
        }
    }

    @Test func residualIsAddedAsTheOutputIsWritten() {
        let conv = Self.conv(6, 6, bias: false)
        let x = Self.input(6, 5, 7, 9)
        let residual = Tensor(channels: 6, depth: 5, height: 7, width: 9, data: Self.values(6 * 5 * 7 * 9, seed: 19))
        let worst = worstDifference(conv(x, adding: residual), TensorOps.add(conv.direct(x), residual))
        #expect(worst <= 1e-4, "max abs difference \(worst)")
    }

    @Test func oneThreadAndManyGiveTheSameOutput() {
        let conv = Self.conv(8, 8)
        let x = Self.input(8, 17, 13, 11)
        #expect(conv(x, threads: 1) == conv(x, threads: 3))
    }

    @Test func wideLayersKeepSmallerTiles() {
        #expect(Self.conv(84, 84).winogradVariant == .f4)
        #expect(Self.conv(168, 84).winogradVariant == .f4)
        #expect(Self.conv(168, 168).winogradVariant == .f2 && Self.conv(168, 168).usesWinograd)
    }

    @Test func wideLayersKeepNoFilters() {
        #expect(!Self.conv(336, 336).usesWinograd && Self.conv(336, 336).transformsFiltersPerCall)
        #expect(!Conv3D(inChannels: 2, outChannels: 2, kernel: 3, stride: 2, padding: 1,
                        weight: Self.values(108, seed: 5), bias: nil).runsWinograd)
    }
}
