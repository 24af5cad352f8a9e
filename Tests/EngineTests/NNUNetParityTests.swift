@testable import Engine
import Foundation
import Testing

/// The native nnU-Net v1 engine against nnU-Net 1.7.1 itself, on a tiny real 3d_fullres model
/// (2 folds, anisotropic pooling and kernels) that tools/fixtures/make_nnunet_fixture.py made with
/// nnU-Net's own trainer and converted with tools/defacer_tools/convert_nnunet.py.
@Suite struct NNUNetParityTests {
    static let folder = Bundle.module.url(forResource: "Fixtures/nnunet_tiny", withExtension: nil)!.path
    static let prediction = try! Safetensors(path: folder + "/prediction.safetensors")

    static func tensor(_ file: Safetensors, _ name: String) throws -> Tensor {
        let s = try #require(file.entries[name]).shape
        return Tensor(channels: s[0], depth: s[1], height: s[2], width: s[3], data: try file.floats(name, shape: s))
    }

    @Test func slidingWindowStepsRoundHalfToEvenLikeNNUNet() {
        // nnU-Net's log for the fixture: padded 20x63x45 (prediction) and 20x63x44 (the scan)
        #expect(SlidingWindow.steps(patch: [20, 40, 24], image: [20, 63, 45], stepSize: 0.5) == [[0], [0, 12, 23], [0, 10, 21]])
        #expect(SlidingWindow.steps(patch: [20, 40, 24], image: [20, 63, 44], stepSize: 0.5) == [[0], [0, 12, 23], [0, 10, 20]])
        #expect(SlidingWindow.steps(patch: [64, 64, 64], image: [110, 64, 65], stepSize: 0.5) == [[0, 23, 46], [0], [0, 1]])
    }

    @Test func gaussianImportanceMatchesNNUNet() throws {
        let expected = try Self.prediction.floats("gaussian", shape: [20, 40, 24])
        let ours = SlidingWindow.gaussianImportance(patch: [20, 40, 24])
        let worst = zip(ours, expected).map { abs($0 - $1) }.max()!
        #expect(worst <= 1e-7, "Gaussian max abs difference \(worst)")
    }

    @Test func mirroringsFollowNNUNetOrder() {
        #expect(SlidingWindow.mirrorings(axes: [0, 1, 2]) == [[], [2], [1], [1, 2], [0], [0, 2], [0, 1], [0, 1, 2]])
        #expect(SlidingWindow.mirrorings(axes: [0, 2]) == [[], [2], [0], [0, 2]])
        #expect(SlidingWindow.mirrorings(axes: []) == [[]])
    }

    @Test func planReadsTheConvertedModel() throws {
        let plan = try NNUNetPlan(path: Self.folder + "/model.json")
        #expect(plan.folds == ["fold0.safetensors", "fold1.safetensors"])
        #expect(plan.classes == 3 && plan.inputChannels == 1 && plan.patchSize == [20, 40, 24])
        #expect(plan.stageFeatures == [5, 10, 20, 40])
        #expect(plan.poolKernels == [[1, 2, 2], [2, 2, 2], [2, 2, 2]])
        #expect(plan.transposeForward == [2, 0, 1] && plan.transposeBackward == [1, 2, 0])
        #expect(plan.targetSpacing == [2.5, 1.0, 0.9])
        var capped = plan
        capped.baseFeatures = 32
        capped.maxFeatures = 320
        capped.poolKernels += [[2, 2, 2], [2, 2, 2]]
        #expect(capped.stageFeatures == [32, 64, 128, 256, 320, 320])
    }

    @Test func anisotropicConvolutionMatchesDirectSum() {
        // a [1, 3, 3] kernel, stride [1, 2, 2], padding [0, 1, 1], against the definition
        let inputValues: [Float] = (0..<180).map { (i: Int) -> Float in Float((i * 37) % 23) / 7 - 1 }
        let x = Tensor(channels: 2, depth: 3, height: 5, width: 6, data: inputValues)
        let weight: [Float] = (0..<54).map { (i: Int) -> Float in Float((i * 11) % 13) / 13 - 0.5 }
        let conv = Conv3D(inChannels: 2, outChannels: 3, kernel: [1, 3, 3], stride: [1, 2, 2], padding: [0, 1, 1],
                          weight: weight, bias: [0.1, -0.2, 0.3])
        let y = conv(x)
        #expect(y.shape == [3, 3, 3, 3])
        var worst: Float = 0
        for co in 0..<3 {
            for z in 0..<3 {
                for oy in 0..<3 {
                    for ox in 0..<3 {
                        var s = conv.bias![co]
                        for ci in 0..<2 {
                            for ky in 0..<3 {
                                for kx in 0..<3 {
                                    let iy: Int = oy * 2 - 1 + ky
                                    let ix: Int = ox * 2 - 1 + kx
                                    guard iy >= 0, iy < 5, ix >= 0, ix < 6 else { continue }
                                    let wi: Int = ((co * 2 + ci) * 3 + ky) * 3 + kx
                                    let xi: Int = ((ci * 3 + z) * 5 + iy) * 6 + ix
                                    s += weight[wi] * x.data[xi]
                                }
                            }
                        }
                        let yi: Int = ((co * 3 + z) * 3 + oy) * 3 + ox
                        worst = max(worst, abs(s - y.data[yi]))
                    }
                }
            }
        }
        #expect(worst <= 1e-5)
        let up = TransposedConv3D(inChannels: 2, outChannels: 1, strides: [1, 2, 2], weight: [1, 2, 3, 4, 10, 20, 30, 40], bias: [0.5])
        let u = up(Tensor(channels: 2, depth: 1, height: 1, width: 1, data: [1, 2]))
        #expect(u.shape == [1, 1, 2, 2] && u.data == [21.5, 42.5, 63.5, 84.5])
    }

    @Test(.enabled(if: isReleaseBuild, "whole-network tests run with swift test -c release"))
    func twoFoldsMirroredSlidingWindowMatchNNUNet() throws {
        let predictor = try NNUNetPredictor(modelFolder: Self.folder)
        let input = try Self.tensor(Self.prediction, "input"), expected = try Self.tensor(Self.prediction, "softmax")
        let start = ContinuousClock.now
        let output = predictor.predict(input)
        let seconds = (ContinuousClock.now - start) / .seconds(1)
        #expect(output.shape == expected.shape)
        let worst = zip(output.data, expected.data).map { abs($0 - $1) }.max() ?? .infinity
        let mean = zip(output.data, expected.data).reduce(0.0) { $0 + Double(abs($1.0 - $1.1)) } / Double(output.data.count)
        #expect(worst <= 1e-3, "softmax max abs difference \(worst)")
        print("nnU-Net parity (2 folds x 9 tiles x 8 mirrorings): max abs \(worst), mean abs \(mean), \(seconds) s")
    }

    @Test(.enabled(if: isReleaseBuild, "whole-network tests run with swift test -c release"))
    func segmentingAScanMatchesNNUNetPredictCases() throws {
        var predictor = try NNUNetPredictor(modelFolder: Self.folder)
        let volume = try NiftiReader().read(Self.folder + "/scan.nii.gz")
        let reference = try Safetensors(path: Self.folder + "/segmentation.safetensors")
        for (useMask, name) in [(false, "labels"), (true, "labels_masknorm")] {
            predictor.plan.useMaskForNorm = [useMask]
            let segmentation = try predictor.segment(volume: volume)
            let expected = try reference.rawBytes(name, dtype: "U8")
            #expect(segmentation.grid == Grid3D(volume.shape) && segmentation.labels.count == expected.count)
            let differing = zip(segmentation.labels, expected).filter { $0 != $1 }.count
            #expect(differing == 0, "\(name): \(differing) of \(expected.count) labels differ from nnU-Net's")
            print("nnU-Net predict_cases parity (\(name)): \(differing) of \(expected.count) labels differ")
        }
    }

    @Test(.enabled(if: isReleaseBuild, "whole-network tests run with swift test -c release"))
    func segmentingAScanThatNeedsResamplingMatchesNNUNetWithTrilinearResampling() throws {
        // every axis resampled to the plan's spacing and back; nnU-Net made the reference with its
        // image resampling switched from cubic to trilinear, as defacer resamples
        let predictor = try NNUNetPredictor(modelFolder: Self.folder)
        let volume = try NiftiReader().read(Self.folder + "/scan_resampled.nii.gz")
        let reference = try Safetensors(path: Self.folder + "/segmentation.safetensors")
        let labels = try predictor.segment(volume: volume).labels
        let linear = try reference.rawBytes("labels_resampled_linear", dtype: "U8")
        let differing = zip(labels, linear).filter { $0 != $1 }.count
        #expect(differing <= linear.count / 1000, "\(differing) of \(linear.count) labels differ from nnU-Net's (trilinear)")
        // against nnU-Net as it ships (cubic): this tiny random network's classes are close calls,
        // so the interpolation changes many of them
        let cubic = try reference.rawBytes("labels_resampled", dtype: "U8")
        let foreground = zip(labels, cubic).filter { $0 != 0 || $1 != 0 }
        let agreement = Double(foreground.filter { $0 == $1 }.count) / Double(foreground.count)
        print("nnU-Net predict_cases with resampling: \(differing) of \(linear.count) labels differ (trilinear); "
              + "agreement with cubic nnU-Net \(agreement) of \(foreground.count) foreground voxels")
    }

    /// A copy of the fixture model with one file changed.
    func tamperedCopy(_ change: (String) throws -> Void) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nnunet-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for file in ["model.json", "fold0.safetensors", "fold1.safetensors"] {
            try FileManager.default.copyItem(atPath: Self.folder + "/" + file, toPath: dir + "/" + file)
        }
        try change(dir)
        return dir
    }

    func editJSON(_ dir: String, _ edit: (inout [String: Any]) -> Void) throws {
        let url = URL(fileURLWithPath: dir + "/model.json")
        var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        edit(&json)
        try JSONSerialization.data(withJSONObject: json).write(to: url)
    }

    @Test func aPlanThatDisagreesWithTheWeightsIsRefused() throws {
        let dir = try tamperedCopy { dir in
            try editJSON(dir) { json in
                var network = json["network"] as! [String: Any]
                network["base_num_features"] = 8
                json["network"] = network
            }
        }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let error = ModelError(.wrongShape(name: "conv_blocks_context.0.blocks.0.conv.weight", expected: [8, 1, 1, 3, 3], found: [5, 1, 1, 3, 3]),
                               path: dir + "/fold0.safetensors")
        #expect(throws: error) { _ = try NNUNetPredictor(modelFolder: dir) }
        #expect(error.description.contains("has shape [5, 1, 1, 3, 3], the network needs [8, 1, 1, 3, 3]"))
    }

    @Test func weightsOfTheWrongShapeAreRefused() throws {
        let dir = try tamperedCopy { dir in
            let file = try Safetensors(path: dir + "/fold1.safetensors")
            var tensors: [(name: String, shape: [Int], values: [Float])] = []
            for (name, entry) in file.entries.sorted(by: { $0.key < $1.key }) {
                var values = try file.floats(name, shape: entry.shape)
                var shape = entry.shape
                if name == "tu.1.weight" {   // [20, 10, 2, 2, 2] stored as [20, 10, 1, 2, 2]
                    shape = [20, 10, 1, 2, 2]
                    values = Array(values.prefix(shape.reduce(1, *)))
                }
                tensors.append((name, shape, values))
            }
            try Safetensors.write(tensors, to: dir + "/fold1.safetensors")
        }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(throws: ModelError(.wrongShape(name: "tu.1.weight", expected: [20, 10, 2, 2, 2], found: [20, 10, 1, 2, 2]),
                                   path: dir + "/fold1.safetensors")) {
            _ = try NNUNetPredictor(modelFolder: dir)
        }
        // the first fold alone still loads
        #expect(try NNUNetPredictor(modelFolder: dir, foldLimit: 1).networks.count == 1)
    }

    @Test func unsupportedVariantsAndBrokenPlansAreRefused() throws {
        let variants: [(String, (inout [String: Any]) -> Void, (ModelError.Code) -> Bool)] = [
            ("bilinear upsampling", { json in
                var network = json["network"] as! [String: Any]
                network["convolutional_upsampling"] = false
                json["network"] = network
            }, { if case .unsupportedArchitecture(let s) = $0 { s.contains("convolutional_upsampling") } else { false } }),
            ("kernel of 5", { json in
                var network = json["network"] as! [String: Any]
                network["conv_kernel_sizes"] = [[1, 3, 3], [3, 3, 3], [5, 5, 5], [3, 3, 3]]
                json["network"] = network
            }, { if case .malformed(let s) = $0 { s.contains("pads only kernels of 3") } else { false } }),
            ("another architecture", { json in json["architecture"] = "hdbet" },
             { $0 == .unsupportedArchitecture("hdbet") }),
            ("no preprocessing", { json in json["preprocessing"] = nil },
             { if case .malformed(let s) = $0 { s.contains("preprocessing") } else { false } }),
        ]
        for (label, edit, matches) in variants {
            let dir = try tamperedCopy { try editJSON($0, edit) }
            defer { try? FileManager.default.removeItem(atPath: dir) }
            do {
                _ = try NNUNetPredictor(modelFolder: dir)
                Issue.record("\(label): loaded")
            } catch {
                #expect(matches(error.code), "\(label): \(error)")
                #expect(error.path == dir + "/model.json", "\(label): \(error)")
            }
        }
    }
}
