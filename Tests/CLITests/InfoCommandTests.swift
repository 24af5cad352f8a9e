import Foundation
import Testing
import TestSupport

/// `defacer --version`, `--help` and `info`, run as the real executable.
@Suite struct InfoCommandTests {
    @Test func versionAndHelp() throws {
        let version = try DefacerProcess.run(["--version"])
        #expect(version.status == 0)
        #expect(version.stdout.hasPrefix("defacer "))
        let help = try DefacerProcess.run(["--help"])
        #expect(help.status == 0)
        #expect(help.stdout.contains("info"))
    }

    @Test func infoJSONOnColin27() throws {
        let path = DefacerProcess.repositoryRoot + "/data/real/ch2.nii.gz"
        let result = try DefacerProcess.run(["info", "--json", path])
        #expect(result.status == 0)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(json["dimensions"] as? [Int] == [181, 217, 181])
        #expect(json["voxelSizeMM"] as? [Double] == [1, 1, 1])
        #expect(json["dataType"] as? String == "uint8")
        #expect(json["orientation"] as? String == "RAS")
        #expect(json["sformCode"] as? Int == 4)
        #expect(json["qformCode"] as? Int == 0)
        #expect(json["volumes"] as? Int == 1)
        let affine = try #require(json["affine"] as? [[Double]])
        #expect(affine == [[1, 0, 0, -90], [0, 1, 0, -125], [0, 0, 1, -71], [0, 0, 0, 1]])
    }

    @Test func infoTextOnThePydefaceHead() throws {
        let path = DefacerProcess.repositoryRoot + "/data/real/mean_reg2mean.nii.gz"
        let result = try DefacerProcess.run(["info", path])
        #expect(result.status == 0)
        #expect(result.stdout.contains("dimensions:   176 x 256 x 256"))
        #expect(result.stdout.contains("voxel size:   1 x 0.976562 x 0.976562 mm"))
        #expect(result.stdout.contains("data type:    int16"))
        #expect(result.stdout.contains("orientation:  RAS"))
        #expect(result.stdout.contains("sform code:   1"))
    }

    @Test func badInputExitsNonZeroWithTheReason() throws {
        let folder = NSTemporaryDirectory() + "defacer-cli-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/garbage.nii.gz"
        try Data((0..<2000).map { UInt8(truncatingIfNeeded: $0 &* 31) }).write(to: URL(fileURLWithPath: path))
        let result = try DefacerProcess.run(["info", path])
        #expect(result.status != 0)
        #expect(result.stderr.contains("\(path): this is not a NIfTI image"))
        #expect(!result.stderr.contains("Fatal error"))
        let missing = try DefacerProcess.run(["info", folder + "/missing.nii"])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("missing.nii: the file does not exist"))
    }
}
