import Engine
import Foundation
import Glibc
import Testing
import TestSupport

extension ServiceTests {
    /// At start the service removes the temporaries a kill in the middle of a copy or a write
    /// left in its own folders (only `.defacer-tmp-<pid>-` names of processes that are gone),
    /// and says so in the log without the names.
    @Suite struct StartupCleanupTests {
        init() throws { try requireDaemonTestData() }

        /// The id of a process that has ended.
        static func endedProcess() throws -> pid_t {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/true")
            try process.run()
            process.waitUntilExit()
            return process.processIdentifier
        }

        @Test func temporariesLeftByAnInterruptedCopyAreRemovedAtStartAndNothingElse() throws {
            let layout = try DropLayout("startup-cleanup")
            try layout.writeConfig(settle: 1)
            let gone = try Self.endedProcess()
            let head = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Samples.colin27)))
            let half = Array(head[..<(head.count / 2)])
            try FileManager.default.createDirectory(atPath: layout.work, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: layout.failed + "/DOE_JOHN_MR", withIntermediateDirectories: true)
            // half a copy of a defaced scan, a half-copied DICOM folder, a slice copied into a
            // failed series folder, a job record being written
            let leftovers = [layout.outbox + "/.defacer-tmp-\(gone)-k3x9-sub-01_T1w_defaced.nii.gz",
                             layout.failed + "/DOE_JOHN_MR/.defacer-tmp-\(gone)-p2-IM0007.dcm",
                             layout.work + "/.defacer-tmp-\(gone)-zz-job.json"]
            for path in leftovers { try layout.write(half, as: DurableFile.fileName(of: path), into: DurableFile.directory(of: path)) }
            let copiedFolder = layout.failed + "/.defacer-tmp-\(gone)-77-DOE_JANE_MR"
            try FileManager.default.createDirectory(atPath: copiedFolder + "/1", withIntermediateDirectories: true)
            try layout.write(half, as: "IM0001.dcm", into: copiedFolder + "/1")
            // not ours to remove: a running process's temporary (this test's), other hidden
            // names, a finished output, and anything in the inbox (the users' folder)
            let kept = [layout.outbox + "/.defacer-tmp-\(getpid())-live-sub-02_T1w_defaced.nii.gz",
                        layout.outbox + "/.defacer-tmp-notapid-x.nii.gz",
                        layout.outbox + "/.hidden-by-a-user",
                        layout.outbox + "/sub-03_T1w_defaced.nii.gz",
                        layout.inbox + "/.defacer-tmp-\(gone)-q-sub-04_T1w.nii.gz"]
            for path in kept { try layout.write(half, as: DurableFile.fileName(of: path), into: DurableFile.directory(of: path)) }

            let daemon = try DaemonProcess(config: layout.configPath)
            defer { daemon.kill9() }
            #expect(waitUntil(timeout: 30) { !daemon.events("ready").isEmpty })
            for path in leftovers + [copiedFolder] { #expect(DropEntry(path: path) == nil, "\(path) is still there") }
            for path in kept { #expect(DropEntry(path: path)?.kind == .regular, "\(path) was removed") }
            #expect(layout.names(layout.failed + "/DOE_JOHN_MR").isEmpty)
            let cleaned = daemon.events("cleaned-up")
            let removed = Dictionary(cleaned.compactMap { e in e["FOLDER"].map { ($0, e["REMOVED"] ?? "") } }, uniquingKeysWith: { a, _ in a })
            #expect(removed == [layout.outbox: "1", layout.failed: "2", layout.work: "1"], "\(daemon.stderr)")
            #expect(cleaned.allSatisfy { $0["MESSAGE"]?.contains("interrupted copy or write") == true })
            // no scan names in the log
            for name in ["sub-01", "DOE_JOHN", "DOE_JANE", "IM000", "job.json"] { #expect(!daemon.stderr.contains(name), "\(name) logged") }
            // the next start finds nothing to remove
            daemon.kill9()
            let again = try DaemonProcess(config: layout.configPath)
            defer { again.kill9() }
            #expect(waitUntil(timeout: 30) { !again.events("ready").isEmpty })
            #expect(again.events("cleaned-up").isEmpty)
        }
    }
}
