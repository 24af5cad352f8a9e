@testable import Engine
import Foundation
import Testing

/// The real scans fetched by the setup, read by defacer, against what nibabel reports.
@Suite struct RealScanReadTests {
    @Test(arguments: ["ch2.nii.gz", "ch2bet.nii.gz", "mean_reg2mean.nii.gz", "facemask.nii.gz"])
    func readsLikeNibabel(name: String) throws {
        let ref = try #require(TestData.nibabelReference[name])
        let path = TestData.real(name)
        let fileBytes = try #require(FileManager.default.contents(atPath: path))
        #expect(FileHash.sha256(fileBytes) == ref.file_sha256, "the fetched \(name) is the file the fixture describes")
        let volume = try NiftiReader().read(path)
        expectMatchesNibabel(volume, ref, name)
    }

    @Test func colinInfoIsRight() throws {
        let info = ScanInfo(file: "ch2.nii.gz", header: try NiftiReader().readHeader(TestData.real("ch2.nii.gz")))
        #expect(info.dimensions == [181, 217, 181])
        #expect(info.voxelSizeMM == [1, 1, 1])
        #expect(info.dataType == "uint8")
        #expect(info.orientation == "RAS")
        #expect(info.sformCode == 4 && info.qformCode == 0)
        #expect(info.affineSource == "sform")
        #expect(info.volumes == 1)
    }
}
