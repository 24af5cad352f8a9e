import Foundation
import Testing
import TestSupport

/// `defacer segment` runs a converted nnU-Net model (the tiny real checkpoint of the parity
/// tests) and writes labels with the scan's geometry.
@Suite struct SegmentCommandTests {
    @Test func writesLabelsOnTheScansGrid() throws {
        let fixtures = DefacerProcess.repositoryRoot + "/Tests/EngineTests/Fixtures/nnunet_tiny"
        let folder = NSTemporaryDirectory() + "defacer-segment-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let out = folder + "/labels.nii.gz"
        let result = try DefacerProcess.run(["segment", "--model", fixtures, fixtures + "/scan.nii.gz", "--output", out, "--folds", "1", "--no-mirroring"])
        #expect(result.status == 0, "\(result.stderr)")
        let info = try DefacerProcess.run(["info", "--json", out])
        let scan = try DefacerProcess.run(["info", "--json", fixtures + "/scan.nii.gz"])
        let a = try #require(try JSONSerialization.jsonObject(with: Data(info.stdout.utf8)) as? [String: Any])
        let b = try #require(try JSONSerialization.jsonObject(with: Data(scan.stdout.utf8)) as? [String: Any])
        #expect(a["dataType"] as? String == "uint8")
        #expect(a["dimensions"] as? [Int] == b["dimensions"] as? [Int])
        #expect(a["affine"] as? [[Double]] == b["affine"] as? [[Double]])
        let missing = try DefacerProcess.run(["segment", "--model", folder + "/nope", fixtures + "/scan.nii.gz"])
        #expect(missing.status != 0 && missing.stderr.contains("model file is missing"))
    }
}
