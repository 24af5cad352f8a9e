@testable import Engine
import Foundation
import Testing

/// Each layer type against PyTorch's output on odd shapes (goldens made by
/// tools/fixtures/make_layer_goldens.py and committed).
@Suite struct LayerParityTests {
    static let goldens: Safetensors = {
        let url = Bundle.module.url(forResource: "Fixtures/layer_goldens", withExtension: "safetensors")!
        return try! Safetensors(path: url.path)
    }()

    func tensor(_ name: String) throws -> Tensor {
        let entry = try #require(Self.goldens.entries[name])
        let s = entry.shape
        return Tensor(channels: s[0], depth: s[1], height: s[2], width: s[3],
                      data: try Self.goldens.floats(name, shape: s))
    }

    func values(_ name: String) throws -> [Float] {
        let entry = try #require(Self.goldens.entries[name])
        return try Self.goldens.floats(name, shape: entry.shape)
    }

    func expectClose(_ a: Tensor, _ b: Tensor, tolerance: Float = 1e-4) {
        #expect(a.shape == b.shape)
        let worst = zip(a.data, b.data).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst <= tolerance, "max abs difference \(worst)")
    }

    @Test(arguments: [("conv_k3s1p1", 3, 1, 1), ("conv_k3s2p1", 3, 2, 1), ("conv_k1", 1, 1, 0), ("conv_k3s1p1_nobias", 3, 1, 1)])
    func convolution(name: String, kernel: Int, stride: Int, padding: Int) throws {
        let x = try tensor("\(name).input"), y = try tensor("\(name).output")
        let bias = Self.goldens.entries["\(name).bias"] == nil ? nil : try values("\(name).bias")
        let conv = Conv3D(inChannels: x.channels, outChannels: y.channels, kernel: kernel, stride: stride,
                          padding: padding, weight: try values("\(name).weight"), bias: bias)
        expectClose(conv(x), y)
    }

    @Test func transposedConvolution() throws {
        let x = try tensor("tconv.input"), y = try tensor("tconv.output")
        let layer = TransposedConv3D(inChannels: x.channels, outChannels: y.channels, stride: 2,
                                     weight: try values("tconv.weight"), bias: try values("tconv.bias"))
        expectClose(layer(x), y)
    }

    @Test func instanceNormWithLeakyReLU() throws {
        let norm = InstanceNorm(weight: try values("norm.weight"), bias: try values("norm.bias"))
        expectClose(norm(try tensor("norm.input"), leakySlope: 0.01), try tensor("norm.output"))
    }

    @Test func trilinearUpsampling() throws {
        let x = try tensor("upsample.input"), y = try tensor("upsample.output")
        expectClose(Upsample.trilinearAlignCorners(x, depth: y.depth, height: y.height, width: y.width), y, tolerance: 1e-5)
    }

    @Test func softmaxOverChannels() throws {
        expectClose(TensorOps.softmaxChannels(try tensor("softmax.input")), try tensor("softmax.output"), tolerance: 1e-6)
    }

    @Test func weightsOfTheWrongShapeAreRefused() throws {
        #expect(throws: ModelError(.wrongShape(name: "conv_k1.weight", expected: [2, 5, 3, 3, 3], found: [2, 5, 1, 1, 1]),
                                   path: Self.goldens.path)) {
            _ = try Self.goldens.floats("conv_k1.weight", shape: [2, 5, 3, 3, 3])
        }
        let reader = WeightReader(Self.goldens)
        _ = try reader("conv_k1.weight", [2, 5, 1, 1, 1])
        #expect(throws: ModelError.self) { try reader.finish() }
    }
}
