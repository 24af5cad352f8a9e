import Engine
import Foundation
import Glibc
import Testing
import TestSupport

/// Moves that never replace a file, on file systems that refuse RENAME_NOREPLACE (NFS, some
/// FUSE and overlay mounts: the fault shim makes renameat2 fail with EINVAL, as they do) and
/// across bind mounts (a real `mount --bind`: rename fails with EXDEV there).
@Suite(.enabled(if: canMount, "needs root to bind-mount"))
struct RenameFallbackTests {
    /// `root/a` and `root/b`, with `b` a bind mount of `root/b-real`: one device, two mounts.
    final class BindMount {
        let layout: DropLayout
        var a: String { layout.root + "/a" }
        var b: String { layout.root + "/b" }
        init(_ label: String) throws {
            layout = try DropLayout(label)
            for f in ["a", "b", "b-real"] { try FileManager.default.createDirectory(atPath: layout.root + "/" + f, withIntermediateDirectories: true) }
            let mount = try ToolProcess.run("/usr/bin/mount", ["--bind", layout.root + "/b-real", layout.root + "/b"])
            try #require(mount.status == 0, "\(mount.output)")
        }
        deinit { _ = try? ToolProcess.run("/usr/bin/umount", ["-l", layout.root + "/b"]) }
    }

    @Test func aScanMovesAcrossABindMountAsAVerifiedCopy() throws {
        let m = try BindMount("bind-move")
        let want = try Samples.sha256(Samples.colin27)
        try FileManager.default.copyItem(atPath: Samples.colin27, toPath: m.a + "/scan.nii.gz")
        #expect(rename(m.a + "/scan.nii.gz", m.b + "/scan.nii.gz") == -1 && errno == EXDEV, "a plain rename is refused across the mounts")
        let method = try DurableFile.move(m.a + "/scan.nii.gz", to: m.b + "/scan.nii.gz")
        #expect(method == .copy)
        #expect(FileHash.sha256(ofRegularFile: m.b + "/scan.nii.gz") == want)
        #expect(access(m.a + "/scan.nii.gz", F_OK) != 0, "the source is removed once the copy is in place")
        #expect(try FileManager.default.contentsOfDirectory(atPath: m.b) == ["scan.nii.gz"], "no temporary copy is left")
    }

    @Test func aMoveNeverReplacesAFileAndCompletesOneACrashInterrupted() throws {
        let m = try BindMount("bind-noreplace")
        try Data("new scan".utf8).write(to: URL(fileURLWithPath: m.a + "/x.nii"))
        try Data("someone else's file".utf8).write(to: URL(fileURLWithPath: m.b + "/x.nii"))
        #expect(throws: SystemError.self) { try DurableFile.move(m.a + "/x.nii", to: m.b + "/x.nii") }
        #expect(try String(contentsOfFile: m.b + "/x.nii", encoding: .utf8) == "someone else's file")
        #expect(try String(contentsOfFile: m.a + "/x.nii", encoding: .utf8) == "new scan")
        // a copy already in place (the service was killed before it removed the source): the move completes
        try Data("new scan".utf8).write(to: URL(fileURLWithPath: m.b + "/y.nii"))
        try FileManager.default.copyItem(atPath: m.a + "/x.nii", toPath: m.a + "/y.nii")
        try DurableFile.move(m.a + "/y.nii", to: m.b + "/y.nii")
        #expect(access(m.a + "/y.nii", F_OK) != 0)
        #expect(try String(contentsOfFile: m.b + "/y.nii", encoding: .utf8) == "new scan")
    }

    @Test func aDicomFolderMovesAcrossABindMount() throws {
        let m = try BindMount("bind-folder")
        try FileManager.default.createDirectory(atPath: m.a + "/study/series1", withIntermediateDirectories: true)
        for i in 1...3 { try Data(Samples.randomBytes(5000, seed: UInt64(i))).write(to: URL(fileURLWithPath: m.a + "/study/series1/IM\(i)")) }
        #expect(try DurableFile.move(m.a + "/study", to: m.b + "/study") == .copy)
        #expect(access(m.a + "/study", F_OK) != 0)
        for i in 1...3 {
            #expect(FileHash.sha256(ofRegularFile: m.b + "/study/series1/IM\(i)") == FileHash.sha256(Samples.randomBytes(5000, seed: UInt64(i))))
        }
    }

    /// `defacer check-config` says which move each folder gets: a rename normally, link+unlink
    /// where renameat2 is refused (EINVAL, as on NFS), a copy into a bind-mounted outbox; and
    /// it fails when neither rename nor link works.
    @Test func checkConfigSaysWhichMoveEachFolderAllows() throws {
        try #require(FaultShim.library != nil, "clang could not build the fault shim")
        let layout = try DropLayout("check-moves")
        try FileManager.default.createDirectory(atPath: layout.root + "/outbox-real", withIntermediateDirectories: true)
        let mount = try ToolProcess.run("/usr/bin/mount", ["--bind", layout.root + "/outbox-real", layout.outbox])
        try #require(mount.status == 0, "\(mount.output)")
        defer { _ = try? ToolProcess.run("/usr/bin/umount", ["-l", layout.outbox]) }
        try layout.writeConfig()
        func moves(_ result: DefacerProcess.Result) -> String {
            result.stdout.split(separator: "\n").first { $0.contains("moves: ") }.map(String.init) ?? result.stdout
        }
        let plain = try DefacerProcess.run(["check-config", "--config", layout.configPath])
        #expect(plain.status == 0, "\(plain.stderr)")
        #expect(moves(plain).hasSuffix(": rename"), "\(plain.stdout)")
        #expect(moves(plain).contains(": rename; outbox on "), "\(plain.stdout)")
        #expect(moves(plain).contains(": copy+verify; failed on "), "\(plain.stdout)")
        let nfsLike = try DefacerProcess.run(["check-config", "--config", layout.configPath],
                                             environment: FaultShim.environment(fault: "renameat2:EINVAL:*"))
        #expect(nfsLike.status == 0, "\(nfsLike.stderr)")
        #expect(moves(nfsLike).contains(": link+unlink; outbox on "), "\(nfsLike.stdout)")
        #expect(moves(nfsLike).contains(": copy+verify; failed on ") && moves(nfsLike).hasSuffix(": link+unlink"), "\(nfsLike.stdout)")
        let neither = try DefacerProcess.run(["check-config", "--config", layout.configPath],
                                             environment: FaultShim.environment(fault: "renameat2:EINVAL:*,link:EPERM:*"))
        #expect(neither.status == 1)
        #expect(neither.stderr.contains("no move works"), "\(neither.stderr)")
        #expect(layout.names(layout.inbox).isEmpty && layout.names(layout.outbox).isEmpty, "the trials leave nothing behind")
        #expect((try? FileManager.default.contentsOfDirectory(atPath: layout.outbox)) == [], "no hidden trial file either")
    }
}
