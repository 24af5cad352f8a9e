import Engine
import Foundation
import Glibc
import Testing
import TestSupport

extension ServiceTests {
    /// Inputs that cannot be defaced go to `failed` with their reasons; the service keeps running
    /// (the real binary on real folders, as in `DropFolderServiceTests`).
    @Suite struct FailedScansTests {
        init() throws { try requireDaemonTestData() }

        @Test func badInputsGoToFailedWithReasonsAndTheServiceKeepsRunning() throws {
            let layout = try DropLayout("bad")
            try layout.writeConfig(settle: 1)
            let daemon = try DaemonProcess(config: layout.configPath)
            defer { daemon.kill9() }
            #expect(waitUntil(timeout: 30) { !daemon.events("ready").isEmpty })
            let random = Samples.randomBytes(5000, seed: 42)
            try layout.write(random, as: "random.nii.gz")
            try layout.write(try Samples.truncatedGzip(), as: "truncated.nii.gz")
            try layout.write(Samples.nifti2D(), as: "flat.nii")
            try layout.write(Array("not a scan".utf8), as: "notes.txt")
            try layout.write(Samples.nifti2D(), as: "pair.hdr")
            #expect(symlink("/etc/hostname", layout.inbox + "/link.nii.gz") == 0)
            #expect(mkfifo(layout.inbox + "/pipe.nii.gz", 0o644) == 0)
            try FileManager.default.createDirectory(atPath: layout.inbox + "/folder.nii.gz", withIntermediateDirectories: false)
            try layout.write(Samples.randomBytes(100, seed: 1), as: "folder.nii.gz/inside.dcm")
            let names = ["flat.nii", "folder.nii.gz", "link.nii.gz", "notes.txt", "pair.hdr", "pipe.nii.gz", "random.nii.gz", "truncated.nii.gz"]
            #expect(waitUntil(timeout: 60) { daemon.events("failed").count >= names.count })
            Thread.sleep(forTimeInterval: 0.5)
            #expect(layout.names(layout.failed) == (names + names.map { $0 + ".reason.json" }).sorted())
            #expect(layout.names(layout.inbox).isEmpty)
            #expect(layout.names(layout.outbox).isEmpty)
            func error(_ name: String) throws -> String { try layout.reason(name)["error"] as? String ?? "" }
            #expect(try error("random.nii.gz").contains("not a NIfTI image"))
            #expect(try error("truncated.nii.gz").contains("incomplete") || (try error("truncated.nii.gz")).contains("cut off"))
            #expect(try error("flat.nii").contains("2D image"))
            #expect(try error("notes.txt").contains(".nii or .nii.gz"))
            #expect(try error("pair.hdr").contains("pairs"))
            #expect(try error("link.nii.gz").contains("symbolic link pointing outside the inbox"))
            #expect(try error("pipe.nii.gz").contains("named pipe"))
            #expect(try error("folder.nii.gz").contains("folder"))
            let reason = try layout.reason("random.nii.gz")
            #expect(reason["sha256"] as? String == FileHash.sha256(random))
            #expect(reason["defacerVersion"] as? String == DefacerVersion.string)
            #expect(reason["attempts"] as? Int == 1)
            #expect(reason["file"] as? String == "random.nii.gz")
            #expect(reason["sha256"] is NSNull == false)
            #expect(try layout.reason("pipe.nii.gz")["sha256"] is NSNull)
            // the link was moved, never followed
            #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: layout.failed + "/link.nii.gz")) == "/etc/hostname")
            #expect(FileManager.default.fileExists(atPath: layout.failed + "/folder.nii.gz/inside.dcm"))
            // still running, and still taking files; a second file of a failed name does not overwrite
            #expect(daemon.process.isRunning)
            try layout.write(Samples.randomBytes(700, seed: 9), as: "random.nii.gz")
            #expect(waitUntil(timeout: 30) { layout.names(layout.failed).contains("random-2.nii.gz.reason.json") })
            #expect(try layout.reason("random.nii.gz")["sha256"] as? String == FileHash.sha256(random))
            daemon.signal(SIGTERM)
            #expect(daemon.waitForExit(timeout: 30) == 0)
        }

        @Test(.enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"),
                       "needs root to run the service as nobody"))
        func unreadableFileGoesToFailed() throws {
            let layout = try DropLayout("unreadable")
            try layout.writeConfig(settle: 1)
            for path in ["/tmp/defacer-daemon-tests", layout.root] { chmod(path, 0o755) }
            for folder in [layout.inbox, layout.outbox, layout.failed] { chmod(folder, 0o777) }
            let daemon = try DaemonProcess(config: layout.configPath, asNobody: true)
            defer { daemon.kill9() }
            #expect(waitUntil(timeout: 30) { !daemon.events("ready").isEmpty }, "\(daemon.stderr)")
            try FileManager.default.copyItem(atPath: Samples.colin27, toPath: layout.root + "/staging/secret.nii.gz")
            chmod(layout.root + "/staging/secret.nii.gz", 0o000)
            try FileManager.default.moveItem(atPath: layout.root + "/staging/secret.nii.gz", toPath: layout.inbox + "/secret.nii.gz")
            #expect(waitUntil(timeout: 60) { layout.names(layout.failed).contains("secret.nii.gz.reason.json") })
            #expect((try layout.reason("secret.nii.gz")["error"] as? String)?.contains("not allowed to read") == true)
            #expect(layout.names(layout.inbox).isEmpty)
            #expect(daemon.process.isRunning)
        }

        @Test(.enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"),
                       "needs root to run the service as nobody"))
        func outboxThatCannotBeWrittenIsRetriedWithoutDefacingAgain() throws {
            let layout = try DropLayout("retry")
            try layout.writeConfig(settle: 1, global: "retry_seconds = 2")
            for path in ["/tmp/defacer-daemon-tests", layout.root] { chmod(path, 0o755) }
            for folder in [layout.inbox, layout.outbox, layout.failed] { chmod(folder, 0o777) }
            let daemon = try DaemonProcess(config: layout.configPath, asNobody: true)
            defer { daemon.kill9() }
            #expect(waitUntil(timeout: 30) { !daemon.events("ready").isEmpty }, "\(daemon.stderr)")
            chmod(layout.outbox, 0o555)  // e.g. a full or read-only outbox
            try layout.drop(Samples.colin27, as: "later.nii.gz")
            chmod(layout.inbox + "/later.nii.gz", 0o644)
            #expect(waitUntil(timeout: 240) { !daemon.events("folder-problem").isEmpty })
            #expect(layout.names(layout.outbox).isEmpty)
            #expect(layout.workEntries().count == 1)
            chmod(layout.outbox, 0o777)
            #expect(waitUntil(timeout: 30) { !daemon.events("done").isEmpty })
            #expect(layout.names(layout.outbox) == DropLayout.outputSet("later"))
            #expect(layout.workEntries().isEmpty)
            #expect(daemon.events("job-started").count == 2)  // the claim, then the resumed moves
            #expect(daemon.events("done").first?["ATTEMPT"] == "1")  // defaced once
        }
    }
}
