@testable import Engine
import Testing

/// Winograd F(2x2x2, 3x3x3) against the direct (im2col) convolution on odd shapes, where
/// output tiles hang over the far borders; the PyTorch goldens in LayerParityTests cover
/// the Winograd path against PyTorch itself.
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

    @Test(arguments: [(3, 5, [7, 9, 5], 1), (1, 21, [5, 6, 7], 1), (21, 21, [9, 7, 11], 1), (4, 3, [1, 2, 3], 1),
                      (6, 4, [3, 5, 4], 0), (2, 2, [1, 1, 1], 1), (5, 7, [6, 3, 8], 2)])
    func winogradMatchesDirect(cin: Int, cout: Int, size: [Int], padding: Int) {
        let conv = Self.conv(cin, cout, padding: padding)
        #expect(conv.usesWinograd)
        let x = Self.input(cin, size[0], size[1], size[2])
        let worst = worstDifference(conv(x), conv.direct(x))
        #expect(worst <= 1e-5, "Winograd vs direct max abs difference \(worst)")
    }

    @Test func residualIsAddedAsTheOutputIsWritten() {
        let conv = Self.conv(6, 6, bias: false)
        let x = Self.input(6, 5, 7, 9)
        let residual = Tensor(channels: 6, depth: 5, height: 7, width: 9, data: Self.values(6 * 5 * 7 * 9, seed: 19))
        let worst = worstDifference(conv(x, adding: residual), TensorOps.add(conv.direct(x), residual))
        #expect(worst <= 1e-5, "max abs difference \(worst)")
    }

    @Test func oneThreadAndManyGiveTheSameOutput() {
        let conv = Self.conv(8, 8)
        let x = Self.input(8, 17, 13, 11)
        #expect(conv(x, threads: 1) == conv(x, threads: 3))
    }

    @Test func wideLayersStayDirect() {
        #expect(!Self.conv(336, 336).usesWinograd)
        #expect(!Conv3D(inChannels: 2, outChannels: 2, kernel: 3, stride: 2, padding: 1,
                        weight: Self.values(108, seed: 5), bias: nil).usesWinograd)
    }
}
