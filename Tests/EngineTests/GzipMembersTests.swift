@testable import Engine
import CNifti
import Foundation
import Testing

/// The gzip writer that compresses blocks on several workers (``GzipMembers``): the files it
/// writes inflate to exactly the header and voxels of the single-stream writer, and read back
/// in defacer's reader, in zlib's gzread (what libnifti and FSL use) and in nibabel.
@Suite struct GzipMembersTests {
    /// Every decompressed byte of a gzip file, through zlib's gzopen/gzread.
    static func gzread(_ path: String) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 64 << 20)
        let got = dfc_read_prefix(path, &bytes, Int64(bytes.count))
        return Array(bytes.prefix(max(0, Int(got))))
    }

    /// Offsets where a gzip member starts (magic, deflate, and a plausible flag byte), counted
    /// by Python's zlib walking the members one after the other.
    static func memberCount(_ path: String) throws -> Int {
        let script = """
        import sys, zlib
        data = open(sys.argv[1], 'rb').read(); n = 0
        while data:
            d = zlib.decompressobj(31); d.decompress(data); n += 1; data = d.unused_data
        print(n)
        """
        return Int(try python(script, path).trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    /// Runs the project's Python (the .venv, with nibabel) on `script` with `arguments`.
    static func python(_ script: String, _ arguments: String...) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestData.repositoryRoot + "/.venv/bin/python")
        process.arguments = ["-c", script] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "python: \(script)")
        return String(decoding: out, as: UTF8.self)
    }

    /// zlib's level reaches both writers: level 6 makes smaller files than level 1 of the same
    /// header and voxels (the bench's level-6 baseline writes this way).
    @Test func gzipLevelReachesBothWriters() throws {
        let volume = try NiftiReader().read(TestData.real("ch2.nii.gz"))
        let folder = TestData.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        for blocks in [nil, NiftiWriter.defaultGzipBlockBytes] {
            let fast = folder + "/fast-\(blocks ?? 0).nii.gz", small = folder + "/small-\(blocks ?? 0).nii.gz"
            try NiftiWriter(descrip: "test", gzipBlockBytes: blocks, threads: 2).write(volume, to: fast)
            try NiftiWriter(descrip: "test", gzipBlockBytes: blocks, threads: 2, gzipLevel: 6).write(volume, to: small)
            let sizes = try [fast, small].map { try FileManager.default.attributesOfItem(atPath: $0)[.size] as! Int }
            #expect(sizes[1] < sizes[0], "level 6 \(sizes[1]) bytes, level 1 \(sizes[0]) (blocks \(blocks ?? 0))")
            #expect(Self.gzread(small) == Self.gzread(fast))
        }
    }

    @Test func aRealScanWrittenInMembersInflatesToTheSingleStreamBytes() throws {
        let volume = try NiftiReader().read(TestData.real("ch2.nii.gz"))
        #expect(volume.storage.count > 3 * NiftiWriter.defaultGzipBlockBytes, "several blocks")
        let folder = TestData.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let single = folder + "/single.nii.gz", members = folder + "/members.nii.gz", one = folder + "/one-worker.nii.gz"
        try NiftiWriter(descrip: "test", gzipBlockBytes: nil, threads: 1).write(volume, to: single)
        try NiftiWriter(descrip: "test", threads: 2).write(volume, to: members)
        try NiftiWriter(descrip: "test", threads: 1).write(volume, to: one)
        let blocks = (volume.storage.count + NiftiWriter.defaultGzipBlockBytes - 1) / NiftiWriter.defaultGzipBlockBytes
        #expect(try Self.memberCount(single) == 1)
        #expect(try Self.memberCount(members) == 1 + blocks, "the header's member, then one per block")
        // header and voxels: the same bytes through zlib's gzread as the single stream's
        let expected = Self.gzread(single)
        #expect(expected.count > volume.storage.count)
        #expect(Self.gzread(members) == expected)
        // the members depend on the data and block size only, not on the workers
        #expect(FileManager.default.contents(atPath: members) == FileManager.default.contents(atPath: one))
        // defacer's reader
        let back = try NiftiReader().read(members)
        #expect(back.storage == volume.storage)
        #expect(back.header.affine == volume.header.affine && back.header.dimensions == volume.header.dimensions)
        // nibabel: the same voxels (hash of the array's bytes) and shape as defacer reads
        let script = """
        import sys, hashlib, nibabel as nib, numpy as np
        img = nib.load(sys.argv[1]); a = img.dataobj.get_unscaled()
        print(hashlib.sha256(np.ascontiguousarray(a.transpose(2, 1, 0)).tobytes()).hexdigest(), 'x'.join(map(str, a.shape)))
        """
        let nib = try Self.python(script, members).split(separator: " ").map { String($0).trimmingCharacters(in: .whitespacesAndNewlines) }
        #expect(nib == [FileHash.sha256(volume.storage), volume.header.dimensions.prefix(3).map(String.init).joined(separator: "x")])
    }

    @Test(arguments: ["pair.hdr.gz", "small-blocks.nii.gz"])
    func smallBlocksAndPairsReadBack(name: String) throws {
        let volume = try NiftiReader().read(TestData.variant("n1_int16.nii.gz"))
        let folder = TestData.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/" + name
        let written = try NiftiWriter(descrip: "test", gzipBlockBytes: 1000, threads: 3).write(volume, to: path)
        let image = written.last!
        #expect(try Self.memberCount(image) == (volume.storage.count + 999) / 1000 + (name.hasPrefix("pair") ? 0 : 1))
        let back = try NiftiReader().read(path)
        #expect(back.storage == volume.storage)
        let script = "import sys, nibabel as nib, numpy as np; print(int(nib.load(sys.argv[1]).dataobj.get_unscaled().astype(np.int64).sum()))"
        let sum = volume.storage.withUnsafeBytes { $0.bindMemory(to: Int16.self).reduce(0) { $0 + Int($1) } }
        #expect(try Self.python(script, path).trimmingCharacters(in: .whitespacesAndNewlines) == String(sum))
    }

    /// Members that each inflate to exactly the reader's 256 KiB output buffer, the file ending
    /// right after one (as other tools' multi-member gzip can): the reader used to wait forever
    /// for more output there. Read on a thread of its own, given 30 s.
    @Test func membersEndingOnTheReadersBufferAreReadToTheEnd() throws {
        let folder = TestData.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/members.nii.gz"
        let script = """
        import sys, gzip, numpy as np, nibabel as nib
        raw = nib.Nifti1Image(np.full((128, 128, 64), 7, np.uint8), np.eye(4)).to_bytes()
        with open(sys.argv[1], 'wb') as f:
            f.write(gzip.compress(raw[:352]))
            for i in range(4): f.write(gzip.compress(raw[352 + (i << 18):352 + ((i + 1) << 18)], 1))
        """
        _ = try Self.python(script, path)
        let done = DispatchSemaphore(value: 0)
        let result = ReadResult()
        Thread.detachNewThread {
            result.set(try? NiftiReader().read(path))
            done.signal()
        }
        #expect(done.wait(timeout: .now() + 30) == .success, "the reader did not finish within 30 s")
        let volume = try #require(result.get())
        #expect(volume.shape == [128, 128, 64])
        #expect(volume.storage.count == 1 << 20 && volume.storage.allSatisfy { $0 == 7 })
    }
}

/// A volume handed from the reading thread to the test.
private final class ReadResult: @unchecked Sendable {
    private let lock = NSLock()
    private var volume: NiftiVolume?
    func set(_ value: NiftiVolume?) { lock.withLock { volume = value } }
    func get() -> NiftiVolume? { lock.withLock { volume } }
}
