import Engine
import Foundation
import Glibc
import Testing
import TestSupport

/// Whether this process may mount a tmpfs (root on these machines).
let canMountTmpfs: Bool = getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/mount")

/// A full disk is a reason to wait, not to set a scan aside: on a real 6 MiB tmpfs holding the
/// inbox, work folder and outbox, a 3.5 MB scan cannot get its outputs written; the service
/// keeps it in the work folder, says the disk is full, and defaces it once there is room,
/// without counting the waits as crashes.
@Suite(.enabled(if: daemonTestsCanRun && canMountTmpfs, "needs root to mount a tmpfs"))
struct DiskFullTests {
    init() throws { try requireDaemonTestData() }

    @Test func fullDiskWaitsAndTheScanIsDefacedOnceThereIsRoom() throws {
        let layout = try DropLayout("disk-full")
        let mount = try ToolProcess.run("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=6m", "tmpfs", layout.root])
        try #require(mount.status == 0, "\(mount.output)")
        defer { _ = try? ToolProcess.run("/usr/bin/umount", ["-l", layout.root]) }
        for folder in ["inbox", "outbox", "failed", "staging"] {
            try FileManager.default.createDirectory(atPath: layout.root + "/" + folder, withIntermediateDirectories: true)
        }
        // crash_limit 1: a single attempt counted as a crash would set the scan aside
        try layout.writeConfig(settle: 1, global: "retry_seconds = 2\nwrite_retries = 1\ncrash_limit = 1")
        let daemon = try DaemonProcess(config: layout.configPath)
        defer { daemon.kill9() }
        #expect(waitUntil(timeout: 60) { !daemon.events("ready").isEmpty }, "\(daemon.stderr)")
        try FileManager.default.copyItem(atPath: Samples.colin27, toPath: layout.inbox + "/sub-01_T1w.nii.gz")
        // more waits than write_retries allows: a full disk is not charged as a write failure either
        #expect(waitUntil(timeout: 600) { daemon.events("retry").count >= 3 }, "\(daemon.stderr)")
        let retry = try #require(daemon.events("retry").first)
        #expect(retry["MESSAGE"]?.contains("the disk holding \(layout.outbox) is full: waiting") == true, "\(retry.line)")
        #expect(layout.names(layout.failed).isEmpty)
        #expect(layout.names(layout.outbox).isEmpty)
        #expect(layout.workEntries().count == 1, "the scan waits in the work folder")
        // room again: the same file system grown, as an administrator freeing space would
        let grow = try ToolProcess.run("/usr/bin/mount", ["-o", "remount,size=32m", layout.root])
        try #require(grow.status == 0, "\(grow.output)")
        #expect(waitUntil(timeout: 600) { !daemon.events("done").isEmpty || !daemon.events("failed").isEmpty
            || !daemon.events("quarantined").isEmpty }, "\(daemon.stderr)")
        #expect(layout.names(layout.outbox) == DropLayout.outputSet("sub-01_T1w"), "\(daemon.stderr)")
        #expect(layout.names(layout.failed).isEmpty)
        #expect(daemon.events("quarantined").isEmpty)
        let done = try #require(daemon.events("done").first)
        #expect(done["ATTEMPT"] == "1", "the waits were not counted as attempts: \(done.line)")
    }
}
