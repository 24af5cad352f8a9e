import Engine
import Foundation
import Glibc
import Testing
import TestSupport

/// A write that fails says which operation failed, on which folder, and the errno in words,
/// and code that waits for room knows a full disk by its errno (a real 64 KiB tmpfs).
@Suite(.enabled(if: canMount, "needs root to mount a tmpfs"))
struct WriteErrorWordsTests {
    @Test func aFullDiskIsNamedWithItsFolderAndErrno() throws {
        let layout = try DropLayout("write-words")
        let disk = layout.root + "/small"
        try FileManager.default.createDirectory(atPath: disk, withIntermediateDirectories: true)
        let mount = try ToolProcess.run("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", disk])
        try #require(mount.status == 0, "\(mount.output)")
        defer { _ = try? ToolProcess.run("/usr/bin/umount", ["-l", disk]) }
        do {
            try DurableFile.write(Samples.randomBytes(256 * 1024, seed: 1), to: disk + "/report.json", replacing: false)
            Issue.record("256 KiB were written to a 64 KiB disk")
        } catch {
            #expect(error.isDiskFull)
            #expect(error.errno == ENOSPC)
            #expect(error.description.hasPrefix("writing \(disk)/.defacer-tmp-"), "\(error)")
            #expect(error.description.contains("failed: the disk holding \(disk) is full (ENOSPC: No space left on device)"), "\(error)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: disk) == [], "nothing partial is left")
        let readOnly = SystemError("rename", path: "/srv/outbox/scan_defaced.nii.gz", errno: EROFS)
        #expect(readOnly.description == "moving a file to /srv/outbox/scan_defaced.nii.gz failed: /srv/outbox is on a read-only file system (EROFS: Read-only file system)")
        #expect(!readOnly.isDiskFull)
    }
}
