@testable import Engine
import Foundation
import Testing

#if DEBUG
let isReleaseBuild = false
#else
let isReleaseBuild = true
#endif

/// HD-BET fold 0 on Colin27 against the wheel's own PyTorch network on the same input
/// (tools/fixtures/hdbet_golden.py fixture). Whole-network tests run in release builds only.
@Suite(.enabled(if: isReleaseBuild, "whole-network tests run with swift test -c release"))
struct HDBETParityTests {
    static let models = TestData.repositoryRoot + "/models/hdbet"

    @Test func fold0MatchesPyTorchOnColin27() throws {
        let golden = try Safetensors(path: try #require(
            Bundle.module.url(forResource: "Fixtures/hdbet_fold0_colin27", withExtension: "safetensors")).path)
        let volume = try NiftiReader().read(TestData.real("ch2.nii.gz"))
        let extractor = try BrainExtractor(modelFolder: Self.models, mode: .fast)
        let view = volume.rasReorientation
        let prepared = extractor.prepare(view.toRAS(volume.floatValues()), grid: Grid3D(view.rasShape),
                                         spacing: (0..<3).map { view.rasAffine.columnLengths[$0] })
        // the same input PyTorch saw
        let moments = try golden.rawBytes("input_moments", dtype: "F64").withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
        let sum = prepared.input.data.reduce(0.0) { $0 + Double($1) }
        let sumSq = prepared.input.data.reduce(0.0) { $0 + Double($1) * Double($1) }
        #expect(abs(sum - moments[0]) <= 1e-3 * max(1, abs(moments[0])) && abs(sumSq - moments[1]) <= 1e-6 * moments[1])

        let output = extractor.predict(prepared.input)
        let n = output.spatialCount
        let indices = try golden.rawBytes("sample_index", dtype: "I32").withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
        let expected = try golden.floats("sample_brain_probability", shape: [indices.count])
        var worst: Float = 0
        for (i, index) in indices.enumerated() {
            worst = max(worst, abs(output.data[n + Int(index)] - expected[i]))
        }
        #expect(worst <= 1e-4, "softmax max abs difference \(worst)")

        let bits = try golden.rawBytes("mask_bits", dtype: "U8")
        var both = 0, ours = 0, theirs = 0
        for v in 0..<n {
            let a = output.data[n + v] > output.data[v]
            let b = (bits[v >> 3] >> (v & 7)) & 1 == 1
            if a { ours += 1 }
            if b { theirs += 1 }
            if a && b { both += 1 }
        }
        let dice = 2 * Double(both) / Double(ours + theirs)
        #expect(both == ours && both == theirs, "brain mask Dice \(dice)")
        print("HD-BET fold 0 parity: max abs softmax difference \(worst), mask Dice \(dice)")
    }
}
