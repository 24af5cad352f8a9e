@testable import Engine
import Foundation
import Testing

/// Each kind of bad input gives its own typed error that names the file; none crashes.
@Suite struct NiftiBadInputTests {
    let folder = TestData.temporaryFolder()

    func file(_ name: String, _ bytes: Data) -> String {
        let path = "\(folder)/\(name)"
        _ = FileManager.default.createFile(atPath: path, contents: bytes)
        return path
    }

    /// A valid uncompressed NIfTI-1 file to damage.
    func validNii() throws -> Data {
        try #require(FileManager.default.contents(atPath: TestData.variant("n1_int16.nii")))
    }

    func patched(_ data: Data, int16At offsets: [(Int, Int16)]) -> Data {
        var d = data
        for (offset, value) in offsets {
            withUnsafeBytes(of: value.littleEndian) { d.replaceSubrange(offset..<offset + 2, with: $0) }
        }
        return d
    }

    func expectError(_ path: String, _ code: NiftiError.Code, reader: NiftiReader = NiftiReader()) {
        do {
            _ = try reader.read(path)
            Issue.record("\(path) was accepted")
        } catch {
            #expect(error.code == code)
            #expect(error.path == path)
            #expect(error.description.hasPrefix(path + ": "))
        }
    }

    @Test func missingFile() { expectError("\(folder)/nothing-here.nii.gz", .fileNotFound) }

    @Test func emptyFile() { expectError(file("empty.nii", Data()), .emptyFile) }

    @Test func randomBytes() {
        var rng = SystemRandomNumberGenerator()
        let bytes = Data((0..<4096).map { _ in UInt8.random(in: 0...255, using: &rng) })
        expectError(file("random.nii", bytes), .notNifti)
        expectError(file("random.nii.gz", bytes), .notNifti)
    }

    @Test func truncatedGzip() throws {
        let whole = try #require(FileManager.default.contents(atPath: TestData.real("ch2.nii.gz")))
        expectError(file("half.nii.gz", whole.prefix(whole.count / 2)), .truncated(expectedBytes: 181 * 217 * 181))
    }

    @Test func gzipCutInItsTrailer() throws {
        // every voxel decompresses, but the stream's length and checksum are missing
        let whole = try #require(FileManager.default.contents(atPath: TestData.real("ch2.nii.gz")))
        expectError(file("notrailer.nii.gz", whole.prefix(whole.count - 6)), .corruptCompression)
    }

    @Test func headerPromisesMoreDataThanTheFileHolds() throws {
        let nii = try validNii()
        expectError(file("short.nii", nii.prefix(nii.count - 1000)), .truncated(expectedBytes: Int64(nii.count - 352)))
    }

    @Test func zeroDimension() throws {
        let path = file("zero.nii", patched(try validNii(), int16At: [(42, 0)]))
        expectError(path, .invalidDimensions("axis 1 has size 0"))
    }

    @Test func negativeDimension() throws {
        let path = file("negative.nii", patched(try validNii(), int16At: [(44, -53)]))
        expectError(path, .invalidDimensions("axis 2 has size -53"))
    }

    @Test func twoDimensionalImage() throws {
        let nii = try validNii()
        // dim = [2, 47, 53, 1, ...]: one slice; the file keeps more bytes than needed
        let path = file("slice.nii", patched(nii, int16At: [(40, 2), (46, 1)]))
        expectError(path, .notThreeDimensional(dimensions: 2))
    }

    @Test func moreVoxelsThanTheLimit() {
        let path = TestData.variant("n1_int16.nii")
        expectError(path, .tooManyVoxels(count: 47 * 53 * 39, limit: 1000), reader: NiftiReader(maxVoxels: 1000))
    }

    @Test func complexDataType() throws {
        let path = file("complex.nii", patched(try validNii(), int16At: [(70, 32), (72, 64)]))
        expectError(path, .unsupportedDataType("complex64"))
    }

    @Test func rgbDataType() throws {
        let path = file("rgb.nii", patched(try validNii(), int16At: [(70, 128), (72, 24)]))
        expectError(path, .unsupportedDataType("RGB colour (rgb24)"))
    }

    @Test func aFolderIsNotAScan() throws {
        let path = "\(folder)/folder.nii"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        expectError(path, .notARegularFile)
    }

    @Test func unknownFileName() {
        expectError(file("scan.dcm", Data([1, 2, 3])), .unsupportedFileName)
    }

    @Test func pairWithoutItsImage() throws {
        let hdr = try #require(FileManager.default.contents(atPath: TestData.variant("n1pair_int16.hdr")))
        let path = file("lonely.hdr", hdr)
        do {
            _ = try NiftiReader().read(path)
            Issue.record("a header without its .img was accepted")
        } catch {
            #expect(error.code == .fileNotFound || error.code == .notNifti)
        }
    }
}
