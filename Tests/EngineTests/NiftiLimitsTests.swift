@testable import Engine
import Foundation
import Testing

/// Sizes, units and limits checked before anything is allocated, and outputs verified before
/// they are published (the hostile corpus with the real binary is in DaemonTests).
@Suite struct NiftiLimitsTests {
    let folder = TestData.temporaryFolder()

    /// n1_int16.nii (47 x 53 x 39, 1 mm, sform) with its spatial fields stored in another unit.
    func relabelled(units: UInt8, scale: Float) throws -> String {
        var d = try #require(FileManager.default.contents(atPath: TestData.variant("n1_int16.nii")))
        func patchFloat(_ offset: Int, _ transform: (Float) -> Float) {
            let old = d.subdata(in: offset..<offset + 4).withUnsafeBytes { $0.loadUnaligned(as: Float.self) }
            withUnsafeBytes(of: transform(old)) { d.replaceSubrange(offset..<offset + 4, with: $0) }
        }
        for axis in 1...3 { patchFloat(76 + 4 * axis) { $0 * scale } }          // pixdim
        for i in 0..<12 { patchFloat(280 + 4 * i) { $0 * scale } }               // srow_x/y/z
        for i in 0..<3 { patchFloat(268 + 4 * i) { $0 * scale } }                // qoffset
        d[123] = (d[123] & ~7) | units
        let path = "\(folder)/units-\(units).nii"
        _ = FileManager.default.createFile(atPath: path, contents: d)
        return path
    }

    @Test func micrometresAndMetresReadAsMillimetres() throws {
        let mm = try NiftiReader().readHeader(TestData.variant("n1_int16.nii"))
        for (units, scale) in [(UInt8(3), Float(1000)), (UInt8(1), Float(0.001))] {
            let other = try NiftiReader().readHeader(try relabelled(units: units, scale: scale))
            for (a, b) in zip(other.voxelSize, mm.voxelSize) { #expect(abs(a - b) < 1e-6) }
            for (a, b) in zip(other.affine.rowMajor, mm.affine.rowMajor) { #expect(abs(a - b) < 1e-4) }
        }
    }

    @Test func aHundredMillimetreVoxelIsRefusedWithTheReason() throws {
        // the same numbers with the unit left at millimetres: 1000 mm voxels
        let path = try relabelled(units: 2, scale: 1000)
        do {
            _ = try NiftiReader().readHeader(path)
            Issue.record("1000 mm voxels were accepted")
        } catch {
            guard case .implausibleVoxelSize(let detail) = error.code else { Issue.record("\(error)"); return }
            #expect(detail.contains("1000 mm along axis 1"))
            #expect(error.description.contains("xyz_units"))
        }
    }

    @Test func aHeaderOverTheLimitIsRefusedBeforeReadingData() throws {
        // one voxel over the limit is refused from the header alone
        let reader = NiftiReader(maxVoxels: 47 * 53 * 39 - 1)
        #expect(throws: NiftiError(.tooManyVoxels(count: 47 * 53 * 39, limit: 47 * 53 * 39 - 1),
                                   path: TestData.variant("n1_int16.nii"))) {
            _ = try reader.readHeader(TestData.variant("n1_int16.nii"))
        }
    }

    @Test func fiveAxesWithOnlyOneVolumeAreA3DScan() throws {
        var d = try #require(FileManager.default.contents(atPath: TestData.variant("n1_int16.nii")))
        d[40] = 5  // dim[0] = 5, dim[4...5] stay 1
        d[48] = 1; d[49] = 0; d[50] = 1; d[51] = 0
        let path = "\(folder)/five.nii"
        _ = FileManager.default.createFile(atPath: path, contents: d)
        let volume = try NiftiReader().read(path)
        #expect(volume.shape == [47, 53, 39])
        #expect(volume.volumeCount == 1)
    }

    @Test func gzipDataAfterTheImageIsNotInflatedWithoutLimit() throws {
        let whole = try #require(FileManager.default.contents(atPath: TestData.variant("n1_int16.nii")))
        // the same image followed by 8 MiB of zeros in one gzip stream, made with the system gzip
        let plain = "\(folder)/padded.nii"
        _ = FileManager.default.createFile(atPath: plain, contents: whole + Data(count: 8 << 20))
        let gzip = Process()
        gzip.executableURL = URL(fileURLWithPath: "/bin/gzip")
        gzip.arguments = ["-f", plain]
        try gzip.run()
        gzip.waitUntilExit()
        #expect(throws: NiftiError(.trailingData(limit: 64 << 10), path: plain + ".gz")) {
            _ = try NiftiReader().read(plain + ".gz")
        }
    }

    @Test(.enabled(if: getuid() == 0, "mounting a small tmpfs needs root"))
    func aFullDiskFailsTheWriteAndPublishesNothing() throws {
        let disk = "\(folder)/small-disk"
        try FileManager.default.createDirectory(atPath: disk, withIntermediateDirectories: true)
        try run("/bin/mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", disk])
        defer { try? run("/bin/umount", [disk]) }
        let volume = try NiftiReader().read(TestData.real("ch2.nii.gz"))  // 7 MB of voxels
        for name in ["scan.nii.gz", "scan.nii", "pair.hdr.gz", "pair.hdr"] {
            do {
                try NiftiWriter(descrip: "full disk").write(volume, to: "\(disk)/\(name)")
                Issue.record("\(name) was written to a 256 kB disk")
            } catch {
                guard case .writeFailed(let why) = error.code else { Issue.record("\(name): \(error)"); continue }
                #expect(why.contains("No space left on device"), "\(name): \(why)")
            }
            #expect(try FileManager.default.contentsOfDirectory(atPath: disk) == [], "nothing of \(name) is left")
        }
    }

    func run(_ tool: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw CocoaError(.fileWriteUnknown) }
    }
}
