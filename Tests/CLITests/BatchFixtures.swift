import TestSupport
import Engine
import Foundation
import Glibc
import Testing

/// Sources for batch tests built from our real heads: a BIDS dataset (ch2 and mean_reg2mean
/// as two subjects' T1w, with sidecars, a functional file and the usual top-level files) and
/// a plain folder with one more head and a file that is not a scan.
final class BatchFixture: @unchecked Sendable {
    let root: String

    init(_ label: String) throws {
        root = "/tmp/defacer-batch-tests/\(label)-\(UUID().uuidString.prefix(8))"
        let real = DefacerProcess.repositoryRoot + "/data/real"
        try write("bids/dataset_description.json", #"{"Name": "defacer batch test", "BIDSVersion": "1.8.0"}"#)
        try write("bids/README", "Two heads from mricron-data and pydeface, for defacer's batch tests.\n")
        try write("bids/participants.tsv", "participant_id\tage\nsub-01\t30\nsub-02\t40\n")
        try copy(real + "/ch2.nii.gz", to: "bids/sub-01/anat/sub-01_T1w.nii.gz")
        try write("bids/sub-01/anat/sub-01_T1w.json", #"{"MagneticFieldStrength": 1.5}"#)
        try copy(real + "/mean_reg2mean.nii.gz", to: "bids/sub-02/ses-1/anat/sub-02_ses-1_T1w.nii.gz")
        try write("bids/sub-02/ses-1/anat/sub-02_ses-1_T1w.json", #"{"MagneticFieldStrength": 3}"#)
        try copy(real + "/facemask.nii.gz", to: "bids/sub-02/ses-1/func/sub-02_ses-1_task-rest_bold.nii.gz")
        try write("bids/sub-02/ses-1/func/sub-02_ses-1_task-rest_bold.json", #"{"RepetitionTime": 2, "TaskName": "rest"}"#)
        try write("bids/sourcedata/raw.txt", "original scanner export (never copied)\n")
        try copy(real + "/ch2.nii.gz", to: "scans/site1/t1.nii.gz")
        try write("scans/site1/notes.nii.gz", "this is a text file, not a scan\n")
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    var bids: String { root + "/bids" }
    var scans: String { root + "/scans" }

    func path(_ relative: String) -> String { root + "/" + relative }

    func write(_ relative: String, _ text: String) throws {
        try FileManager.default.createDirectory(atPath: DurableFile.directory(of: path(relative)), withIntermediateDirectories: true)
        try text.write(toFile: path(relative), atomically: true, encoding: .utf8)
    }

    func copy(_ from: String, to relative: String) throws {
        try FileManager.default.createDirectory(atPath: DurableFile.directory(of: path(relative)), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: from, toPath: path(relative))
    }

    /// Every visible file under `folder` (relative paths; `.defacer-batch` left out), sorted.
    static func files(under folder: String) -> [String] {
        let walker = FileManager.default.enumerator(atPath: folder)
        var result: [String] = []
        while let next = walker?.nextObject() as? String {
            if next.split(separator: "/").contains(where: { $0.hasPrefix(".") }) { continue }
            var isFolder: ObjCBool = false
            if FileManager.default.fileExists(atPath: folder + "/" + next, isDirectory: &isFolder), !isFolder.boolValue {
                result.append(next)
            }
        }
        return result.sorted()
    }

    static func sha256(_ path: String) -> String {
        FileHash.sha256(ofRegularFile: path) ?? ""
    }

    /// The manifest as JSON.
    static func manifest(_ output: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: output + "/.defacer-batch/manifest.json"))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }
}
