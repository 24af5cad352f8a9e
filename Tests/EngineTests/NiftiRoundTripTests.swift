@testable import Engine
import Foundation
import Testing

/// Every data type and file form, written by nibabel: read like nibabel, then written back
/// by defacer and read again without a single value or geometry field changing.
@Suite struct NiftiRoundTripTests {
    static let variants = TestData.variantManifest.files.keys.sorted()

    @Test(arguments: variants)
    func readsLikeNibabel(name: String) throws {
        let ref = try #require(TestData.variantManifest.files[name])
        let volume = try NiftiReader().read(TestData.variant(name))
        expectMatchesNibabel(volume, ref, name)
    }

    @Test(arguments: variants)
    func roundTripChangesNothing(name: String) throws {
        let original = try NiftiReader().read(TestData.variant(name))
        let folder = TestData.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let out = "\(folder)/\(name)"
        let written = try NiftiWriter(descrip: "defacer round trip").write(original, to: out)
        #expect(written.count == (original.header.fileForm.isPair ? 2 : 1))
        let back = try NiftiReader().read(out)

        #expect(back.storage == original.storage, "every stored voxel value")
        #expect(back.dataType == original.dataType)
        #expect(back.header.fileForm.version == original.header.fileForm.version)
        #expect(back.header.fileForm.isPair == original.header.fileForm.isPair)
        let a = original.header.raw, b = back.header.raw
        #expect(tupleArray(a.dim, as: Int64.self) == tupleArray(b.dim, as: Int64.self))
        #expect(Array(tupleArray(a.pixdim, as: Double.self)[1...]) == Array(tupleArray(b.pixdim, as: Double.self)[1...]))
        #expect(a.scl_slope == b.scl_slope && a.scl_inter == b.scl_inter)
        #expect(a.cal_min == b.cal_min && a.cal_max == b.cal_max)
        #expect(a.qform_code == b.qform_code && a.sform_code == b.sform_code)
        #expect(a.quatern_b == b.quatern_b && a.quatern_c == b.quatern_c && a.quatern_d == b.quatern_d)
        #expect(a.qoffset_x == b.qoffset_x && a.qoffset_y == b.qoffset_y && a.qoffset_z == b.qoffset_z)
        #expect(a.qfac == b.qfac)
        #expect(original.header.qform == back.header.qform)
        #expect(original.header.sform == back.header.sform)
        #expect(a.xyz_units == b.xyz_units && a.time_units == b.time_units && a.toffset == b.toffset)
        #expect(a.slice_code == b.slice_code && a.slice_duration == b.slice_duration)
        #expect(a.slice_start == b.slice_start && a.slice_end == b.slice_end)
        #expect(a.freq_dim == b.freq_dim && a.phase_dim == b.phase_dim && a.slice_dim == b.slice_dim)
        #expect(a.intent_code == b.intent_code)

        #expect(back.header.descrip == "defacer round trip")
        #expect(back.header.auxFile == "")
        #expect(back.header.intentName == "")
        #expect(back.header.extensionCount == 0)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasPrefix(".") }
        #expect(leftovers.isEmpty, "no temporary files left behind")
    }

    @Test func identifyingFieldsAndExtensionsAreGone() throws {
        let name = "n1_int16_oblique_identifying.nii.gz"
        let original = try NiftiReader().read(TestData.variant(name))
        #expect(original.header.extensionCount == 1)
        #expect(original.header.descrip.contains("DOE"))
        let folder = TestData.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let out = "\(folder)/plain.nii"
        try NiftiWriter(descrip: "defaced by defacer").write(original, to: out)
        let bytes = try #require(FileManager.default.contents(atPath: out))
        let headerAndExtensions = bytes.prefix(352 + 64)
        for planted in TestData.variantManifest.identifying.values + ["DOE", "00123456"] {
            #expect(headerAndExtensions.range(of: Data(planted.utf8)) == nil, "\(planted) must not survive")
        }
    }

    @Test func neverOverwritesAnExistingFile() throws {
        let volume = try NiftiReader().read(TestData.variant("n1_uint8.nii.gz"))
        let folder = TestData.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let out = "\(folder)/scan.nii.gz"
        try Data("precious".utf8).write(to: URL(fileURLWithPath: out))
        #expect(throws: NiftiError(.outputExists, path: out)) {
            try NiftiWriter(descrip: "x").write(volume, to: out)
        }
        #expect(FileManager.default.contents(atPath: out) == Data("precious".utf8))
    }

    @Test func scalingIsAppliedForProcessing() throws {
        let volume = try NiftiReader().read(TestData.variant("n1_int16_scaled.nii.gz"))
        let values = volume.floatValues()
        for index in [0, 1234, values.count / 2, values.count - 1] {
            #expect(Double(values[index]) == volume.storedValue(at: index) * 0.25 + 12.5)
        }
    }

    @Test func fourDimensionalVolumesAreSeparate() throws {
        let volume = try NiftiReader().read(TestData.variant("n1_int16_4d.nii.gz"))
        #expect(volume.volumeCount == 3)
        let first = volume.floatValues(volume: 0), second = volume.floatValues(volume: 1), third = volume.floatValues(volume: 2)
        for index in stride(from: 0, to: first.count, by: 997) {
            #expect(second[index] == (first[index] / 2).rounded(.down))
            #expect(third[index] == first[index] + 7)
        }
    }
}
