@testable import Engine
import Foundation
import Testing

/// Defacing with an nnU-Net model's labels (`DefaceMethod.nnunet`) on a real head: the tiny face
/// model that tools/fixtures/make_nnunet_face_model.py trained with nnU-Net 1.7.1 finds the face
/// and ears, and the same guard as the built-in method keeps the brain (release builds only).
@Suite(.enabled(if: isReleaseBuild, "whole-network tests run with swift test -c release"), .serialized)
struct NNUNetDefaceTests {
    static let model = Bundle.module.url(forResource: "Fixtures/nnunet_face", withExtension: nil)!.path

    static func defacer(model: String = NNUNetDefaceTests.model, labels: [Int] = []) throws -> Defacer {
        var options = DefaceOptions(modelFolder: TestData.repositoryRoot + "/models/hdbet")
        options.method = .nnunet(model: model, removeLabels: labels)
        return try Defacer(options: options)
    }

    /// Removed voxels (stored order) that lie in Colin27's reference brain (ch2bet).
    static func brainVoxelsRemoved(mask path: String) throws -> Int {
        let mask = try NiftiReader().read(path), brain = try NiftiReader().read(TestData.real("ch2bet.nii.gz"))
        #expect(mask.shape == brain.shape)
        return (0..<mask.voxelsPerVolume).filter { mask.storage[$0] != 0 && brain.storedValue(at: $0) != 0 }.count
    }

    @Test func colin27LosesWhatTheModelMarksAndNothingOfItsBrain() throws {
        let folder = TestData.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let input = folder + "/colin.nii.gz"
        try FileManager.default.copyItem(atPath: TestData.real("ch2.nii.gz"), toPath: input)
        let outputs = DefaceOutputs.beside(input)
        let report = try Self.defacer().deface(input: input, outputs: outputs)
        #expect(report.brainVoxelsTouched == 0)
        #expect(try Self.brainVoxelsRemoved(mask: outputs.faceMask!) == 0, "the reference brain is untouched")
        // the report names the method, the model, its source and licence
        let region = try #require(report.faceRegion)
        #expect(region.method == "nnunet" && region.model == "nnunet_face")
        #expect(region.modelLicence?.hasPrefix("test fixture of the defacer project") == true)
        #expect(region.modelSource?.contains("make_nnunet_face_model.py") == true)
        #expect(region.removedLabels == ["1 (face)", "2 (ears)"])
        #expect(report.method.hasPrefix("nnU-Net v1 model nnunet_face"))
        let json = String(decoding: try #require(FileManager.default.contents(atPath: outputs.report!)), as: UTF8.self)
        #expect(json.contains("\"modelLicence\" : \"test fixture of the defacer project"))
        // what was removed is what the model marks (on the scan's grid), less what the guard keeps
        let volume = try NiftiReader().read(input)
        let labels = try NNUNetPredictor(modelFolder: Self.model).segment(volume: volume).labels
        let removed = try NiftiReader().read(outputs.faceMask!).storage
        let marked = labels.filter { $0 != 0 }.count
        let outsideModel = removed.indices.filter { removed[$0] != 0 && labels[$0] == 0 }.count
        let removedCount = removed.filter { $0 != 0 }.count
        #expect(outsideModel == 0, "\(outsideModel) removed voxels the model did not mark")
        #expect(Double(removedCount) >= 0.8 * Double(marked), "\(removedCount) of \(marked) marked voxels removed")
        #expect(report.faceVoxelsRemoved > 0 && report.earVoxelsRemoved > 0)
        #expect(report.features["nose"]?.found == true && (report.features["nose"]?.removedFraction ?? 0) > 0.5)
    }

    @Test func keepEarsKeepsTheEarLabel() throws {
        let folder = TestData.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let input = folder + "/colin.nii.gz"
        try FileManager.default.copyItem(atPath: TestData.real("ch2.nii.gz"), toPath: input)
        let report = try Self.defacer().with { $0.removeEars = false }.deface(input: input, outputs: DefaceOutputs(defaced: folder + "/d.nii.gz"))
        #expect(report.earVoxelsRemoved == 0 && report.faceVoxelsRemoved > 0)
    }

    /// A model whose face label is everything its real one is not (brain included): refused as
    /// not a face, or clipped by the guard with a warning; never the brain.
    @Test func aFaceLabelOverTheBrainNeverReachesIt() throws {
        let folder = TestData.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let swapped = folder + "/swapped_model"
        try FileManager.default.createDirectory(atPath: swapped, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Self.model + "/model.json", toPath: swapped + "/model.json")
        try SafetensorsEdit.swapOutputChannels(0, 1, prefix: "seg_outputs.", from: Self.model + "/fold0.safetensors",
                                               to: swapped + "/fold0.safetensors")
        let input = folder + "/colin.nii.gz"
        try FileManager.default.copyItem(atPath: TestData.real("ch2.nii.gz"), toPath: input)
        let outputs = DefaceOutputs.beside(input)
        let defacer = try Self.defacer(model: swapped, labels: [1])
        switch Result(catching: { () throws(DefaceError) in try defacer.deface(input: input, outputs: outputs) }) {
        case .success(let report):
            #expect(report.brainVoxelsTouched == 0)
            #expect(try Self.brainVoxelsRemoved(mask: outputs.faceMask!) == 0)
            #expect(report.warnings.contains { $0.contains("the guard kept it") }, "\(report.warnings)")
        case .failure(let error):
            #expect(error.code == .implausibleFace, "\(error)")
            #expect(!FileManager.default.fileExists(atPath: outputs.defaced), "nothing written for a refused scan")
        }
    }

    @Test func labelsTheModelDoesNotHaveAreRefused() throws {
        #expect(throws: ModelError.self) { try Self.defacer(labels: [1, 7]) }
        do throws(ModelError) {
            _ = try NNUNetFaceModel(folder: Self.model, removeLabels: [7])
            Issue.record("label 7 was accepted")
        } catch {
            #expect(error.description.contains("1 (face), 2 (ears)"), "\(error)")
        }
        try NNUNetFaceModel.check(folder: Self.model, removeLabels: [2])
        #expect(throws: ModelError.self) { try NNUNetFaceModel.check(folder: Self.model + "/missing", removeLabels: []) }
    }
}

/// Rewrites a safetensors file with two output channels of some float32 tensors swapped (a model
/// whose labels are exchanged, for the guard's test).
enum SafetensorsEdit {
    static func swapOutputChannels(_ a: Int, _ b: Int, prefix: String, from: String, to: String) throws {
        var data = try #require(FileManager.default.contents(atPath: from))
        let headerLength = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        let header = try #require(try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + headerLength))) as? [String: Any])
        var swapped = 0
        for (name, value) in header where name.hasPrefix(prefix) {
            guard let entry = value as? [String: Any], let shape = entry["shape"] as? [Int],
                  let offsets = entry["data_offsets"] as? [Int], entry["dtype"] as? String == "F32", shape[0] > max(a, b) else { continue }
            let row = shape.dropFirst().reduce(1, *) * 4, start = 8 + headerLength + offsets[0]
            let rowA = data.subdata(in: (start + a * row)..<(start + (a + 1) * row))
            let rowB = data.subdata(in: (start + b * row)..<(start + (b + 1) * row))
            data.replaceSubrange((start + a * row)..<(start + (a + 1) * row), with: rowB)
            data.replaceSubrange((start + b * row)..<(start + (b + 1) * row), with: rowA)
            swapped += 1
        }
        #expect(swapped > 0, "no \(prefix)* tensor in \(from)")
        try data.write(to: URL(fileURLWithPath: to))
    }
}
