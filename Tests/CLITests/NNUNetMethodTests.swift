import Foundation
import Glibc
import Testing
import TestSupport

/// `--method nnunet --model DIR` on the command line and `method = "nnunet"` in the service's
/// configuration, with the tiny face model trained by tools/fixtures/make_nnunet_face_model.py.
@Suite(.serialized) struct NNUNetMethodTests {
    static let model = DefacerProcess.repositoryRoot + "/Tests/EngineTests/Fixtures/nnunet_face"
    static let hdbet = DefacerProcess.repositoryRoot + "/models/hdbet"

    static func temporaryFolder() throws -> String {
        let folder = NSTemporaryDirectory() + "defacer-nnunet-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return folder
    }

    @Test func defaceWithTheModelNamesItInTheReport() throws {
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let input = folder + "/colin.nii.gz"
        try FileManager.default.copyItem(atPath: DefacerProcess.repositoryRoot + "/data/real/ch2.nii.gz", toPath: input)
        let result = try DefacerProcess.run(["deface", input, "--models", Self.hdbet, "--method", "nnunet", "--model", Self.model])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("face and ears found by nnunet model nnunet_face"), "\(result.stdout)")
        #expect(result.stdout.contains("licence: test fixture of the defacer project"))
        #expect(result.stdout.contains("brain voxels touched: 0"))
        let data = try #require(FileManager.default.contents(atPath: folder + "/colin_deface.json"))
        let report = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let region = try #require(report["faceRegion"] as? [String: Any])
        #expect(region["method"] as? String == "nnunet")
        #expect(region["model"] as? String == "nnunet_face")
        #expect((report["faceVoxelsRemoved"] as? Int ?? 0) > 0)
        #expect(FileManager.default.fileExists(atPath: folder + "/colin_qc.png"))
    }

    @Test func wrongMethodOptionsAreRefusedBeforeAnyWork() throws {
        let noModel = try DefacerProcess.run(["deface", "in.nii.gz", "--method", "nnunet"])
        #expect(noModel.status == 64 && noModel.stderr.contains("--method nnunet needs --model"), "\(noModel.stderr)")
        let modelWithoutMethod = try DefacerProcess.run(["deface", "in.nii.gz", "--model", Self.model])
        #expect(modelWithoutMethod.status == 64 && modelWithoutMethod.stderr.contains("need --method nnunet"))
        let badLabels = try DefacerProcess.run(["deface", "in.nii.gz", "--method", "nnunet", "--model", Self.model, "--remove-labels", "1,x"])
        #expect(badLabels.status == 64 && badLabels.stderr.contains("--remove-labels"))
        let unknownLabel = try DefacerProcess.run(["deface", "in.nii.gz", "--models", Self.hdbet, "--method", "nnunet",
                                                   "--model", Self.model, "--remove-labels", "1,9"])
        #expect(unknownLabel.status == 1 && unknownLabel.stderr.contains("the model's labels are 1 (face), 2 (ears)"), "\(unknownLabel.stderr)")
        let unknownMethod = try DefacerProcess.run(["deface", "in.nii.gz", "--method", "pydeface"])
        #expect(unknownMethod.status == 64)
    }

    /// A config with inbox folders that exist, and `defacing` as given.
    static func config(in folder: String, defacing: String) throws -> String {
        for name in ["in", "out", "failed"] {
            try FileManager.default.createDirectory(atPath: folder + "/" + name, withIntermediateDirectories: true)
        }
        let text = """
        models = "\(DefacerProcess.repositoryRoot)/models"
        [defacing]
        \(defacing)
        [[inbox]]
        path = "in"
        outbox = "out"
        failed = "failed"
        """
        let path = folder + "/defacer.toml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func checkConfigValidatesTheModelAndItsLabels() throws {
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let good = try DefacerProcess.run(["check-config", "--config", try Self.config(in: folder, defacing: """
            method = "nnunet"
            model = "\(Self.model)"
            remove_labels = [1, 2]
            """)])
        #expect(good.status == 0, "\(good.stderr)")
        #expect(good.stdout.contains("face and ears: nnU-Net model \(Self.model), labels 1, 2"), "\(good.stdout)")
        let cases: [(String, String)] = [
            ("method = \"nnunet\"\nmodel = \"\(Self.model)\"\nremove_labels = [3]", "the model's labels are 1 (face), 2 (ears)"),
            ("method = \"nnunet\"\nmodel = \"\(folder)/nowhere\"", "the model file is missing"),
            ("method = \"nnunet\"", "method = \"nnunet\" needs the folder of a converted nnU-Net v1 model"),
            ("method = \"deep\"", "must be \"builtin\""),
            ("model = \"\(Self.model)\"", "model and remove_labels need method = \"nnunet\""),
            ("method = \"nnunet\"\nmodel = \"\(Self.model)\"\nremove_labels = \"face\"", "remove_labels: must be a list"),
        ]
        for (defacing, message) in cases {
            let result = try DefacerProcess.run(["check-config", "--config", try Self.config(in: folder, defacing: defacing)])
            #expect(result.status == 1, "\(defacing)")
            #expect(result.stderr.contains(message), "\(defacing): \(result.stderr)")
        }
    }

    @Test(.enabled(if: daemonTestsCanRun, "needs models/ and data/ from tools/setup/setup.sh"))
    func theServiceDefacesADropWithTheModel() throws {
        let layout = try DropLayout("nnunet-service")
        try layout.writeConfig(global: "[defacing]\nmethod = \"nnunet\"\nmodel = \"\(Self.model)\"\nremove_labels = [1, 2]")
        let daemon = try DaemonProcess(config: layout.configPath)
        defer { daemon.kill9() }
        #expect(waitUntil(timeout: 30) { !daemon.events("ready").isEmpty })
        try layout.drop(Samples.colin27, as: "sub-01_T1w.nii.gz")
        #expect(waitUntil(timeout: 400) { !daemon.events("done").isEmpty || !daemon.events("failed").isEmpty })
        #expect(layout.names(layout.outbox).sorted() == DropLayout.outputSet("sub-01_T1w"))
        let data = try #require(FileManager.default.contents(atPath: layout.outbox + "/sub-01_T1w_deface.json"))
        let report = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let region = try #require(report["faceRegion"] as? [String: Any])
        #expect(region["method"] as? String == "nnunet" && region["model"] as? String == "nnunet_face")
        #expect(report["brainVoxelsTouched"] as? Int == 0)
        daemon.signal(SIGTERM)
        #expect(daemon.waitForExit(timeout: 30) == 0)
    }
}
