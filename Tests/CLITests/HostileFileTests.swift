import Foundation
import Testing
import TestSupport

/// The hostile corpus (Tests/HostileFiles, written by tools/fixtures/make_hostile_files.py):
/// `defacer info` and `defacer deface` refuse every file with exit status 1 and a reason in
/// plain words, never die of a signal, and never leave a defaced file behind.
@Suite struct HostileFileTests {
    static let corpus = HostileCorpus.folder
    static let manifest = HostileCorpus.manifest
    static let niftiFiles = HostileCorpus.niftiFiles
    static let dicomFolders = HostileCorpus.dicomFolders
    static let models = DefacerProcess.repositoryRoot + "/models/hdbet"

    @Test func theCorpusIsThere() {
        #expect(Self.niftiFiles.count >= 100, "run tools/fixtures/make_hostile_files.py Tests/HostileFiles")
        #expect(Self.dicomFolders.count >= 10)
    }

    func expectRefusal(_ result: DefacerProcess.Result, _ entry: String, _ command: String) {
        let attack = Self.manifest[entry] ?? ""
        #expect(!result.signalled, "\(command) \(entry) (\(attack)) died of signal \(result.status)")
        #expect(result.status == 1, "\(command) \(entry) (\(attack)) exited \(result.status): \(result.stderr)")
        #expect(result.stderr.hasPrefix("Error: "), "\(command) \(entry): no plain reason: \(result.stderr.prefix(300))")
        #expect(!result.stderr.contains("Fatal error") && !result.stderr.contains("Backtracing"))
    }

    @Test(arguments: niftiFiles) func infoRefuses(_ entry: String) throws {
        let result = try DefacerProcess.run(["info", Self.corpus + "/" + entry])
        expectRefusal(result, entry, "info")
        // the message names the file (or, for a pair, the half that is missing)
        let stem = String(entry.dropFirst("nifti/".count).prefix { $0 != "." })
        #expect(result.stderr.contains(stem), "the message names the file")
    }

    @Test(arguments: niftiFiles) func defaceRefuses(_ entry: String) throws {
        let out = TemporaryFolder()
        let result = try DefacerProcess.run(["deface", Self.corpus + "/" + entry, "--models", Self.models,
                                             "--output", out.path + "/scan_defaced.nii.gz", "--mask", out.path + "/mask.nii.gz",
                                             "--qc", out.path + "/qc.png", "--report", out.path + "/report.json"])
        expectRefusal(result, entry, "deface")
        #expect((try? FileManager.default.contentsOfDirectory(atPath: out.path)) == [], "nothing is written")
    }

    @Test(arguments: dicomFolders) func defaceRefusesDicom(_ entry: String) throws {
        let out = TemporaryFolder()
        let result = try DefacerProcess.run(["deface", Self.corpus + "/" + entry, "--models", Self.models,
                                             "--output", out.path + "/out"])
        expectRefusal(result, entry, "deface")
        let written = (try? FileManager.default.subpathsOfDirectory(atPath: out.path)) ?? []
        #expect(!written.contains { $0.hasSuffix("_defaced.nii.gz") }, "no defaced series from \(entry)")
    }
}

/// A fresh folder under the temporary directory, removed when the value goes away.
final class TemporaryFolder {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "defacer-hostile-" + UUID().uuidString
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}
