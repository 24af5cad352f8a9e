import Engine
import Foundation
import Glibc
import Testing

/// The one file hash (swift-crypto's SHA-256, streamed): the digests `sha256sum` prints, for
/// bytes and for real files larger than one read, and no reading from links or pipes when asked not to.
@Suite struct FileHashTests {
    @Test func knownDigests() {
        #expect(FileHash.sha256(Array("".utf8)) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(FileHash.sha256(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let long = Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
        #expect(FileHash.sha256(long) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    @Test func fileLargerThanOneReadMatchesSha256sum() throws {
        let folder = NSTemporaryDirectory() + "defacer-hash-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/scan.bin"
        let bytes = (0..<(3 << 20) + 12_345).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) }
        try DurableFile.write(bytes, to: path, replacing: false)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        process.arguments = [path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let printed = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let expected = String(printed.prefix(64))
        #expect(FileHash.sha256(ofRegularFile: path) == expected)
        #expect(FileHash.sha256(bytes) == expected)

        let link = folder + "/link.bin"
        #expect(symlink(path, link) == 0)
        #expect(FileHash.sha256(ofRegularFile: link) == expected)
        #expect(FileHash.sha256(ofRegularFile: link, followLinks: false) == nil)
        let fifo = folder + "/pipe"
        #expect(mkfifo(fifo, 0o600) == 0)
        #expect(FileHash.sha256(ofRegularFile: fifo) == nil)
        #expect(FileHash.sha256(ofRegularFile: folder + "/missing") == nil)
    }

    @Test func durableWriteNeverReplacesUnlessAsked() throws {
        let folder = NSTemporaryDirectory() + "defacer-durable-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/report.json"
        try DurableFile.write(Array("first".utf8), to: path, replacing: false)
        #expect(throws: SystemError.self) { try DurableFile.write(Array("second".utf8), to: path, replacing: false) }
        #expect(FileManager.default.contents(atPath: path) == Data("first".utf8))
        try DurableFile.write(Array("third".utf8), to: path, replacing: true)
        #expect(FileManager.default.contents(atPath: path) == Data("third".utf8))
        #expect(DurableFile.list(folder) == ["report.json"])  // no temporary left behind
        #expect(throws: SystemError.self) { try DurableFile.write(Array("x".utf8), to: folder + "/no/such/file", replacing: false) }
    }
}
