import Engine
import Foundation
import Glibc
import Testing
import TestSupport

/// kill -9 at every phase boundary of a scan (claimed, processing, publishing or failing, after
/// each move, finished): the service stops itself there (the `DEFACER_TEST_PAUSE_AT` test hook),
/// is killed with SIGKILL, and started again; each scan ends exactly once in the outbox or in
/// failed, and nothing partial is ever in the outbox. The real binary, real folders, a real head.
@Suite(.enabled(if: daemonTestsCanRun))
struct PhaseKillTests {
    init() throws { try requireDaemonTestData() }

    /// Starts the service paused at `phase` (nil: not paused), waits for the pause and kills
    /// it there; a run without a pause is returned still running.
    static func run(_ layout: DropLayout, pausingAt phase: String?, shim: [String: String], timeout: Double) throws -> DaemonProcess? {
        var env = shim
        if let phase { env["DEFACER_TEST_PAUSE_AT"] = phase }
        let daemon = try DaemonProcess(config: layout.configPath, environment: env)
        guard phase != nil else { return daemon }
        let stopped = waitUntilStopped(daemon.process.processIdentifier, timeout: timeout)
        #expect(stopped, "the service never reached \(phase!): \(daemon.stderr)")
        daemon.kill9()
        return nil
    }

    /// How the scan's moves are made: plain renames; link+unlink (the fault shim refuses
    /// renameat2 with EINVAL, as NFS does); or copies into a failed folder that is a bind mount.
    static func environment(_ moves: String, _ layout: DropLayout) throws -> [String: String] {
        switch moves {
        case "link+unlink":
            let env = FaultShim.environment(fault: "renameat2:EINVAL:*")
            try #require(env["LD_PRELOAD"] != nil, "clang could not build the fault shim")
            return env.filter { $0.key.hasPrefix("DEFACER_FAULT") || $0.key == "LD_PRELOAD" }
        case "copy+verify":
            try #require(canMount, "needs root to bind-mount")
            try FileManager.default.createDirectory(atPath: layout.root + "/failed-real", withIntermediateDirectories: true)
            let mount = try ToolProcess.run("/usr/bin/mount", ["--bind", layout.root + "/failed-real", layout.failed])
            try #require(mount.status == 0, "\(mount.output)")
            return [:]
        default:
            return [:]
        }
    }

    @Test(arguments: ["rename", "link+unlink", "copy+verify"])
    func aScanThatFailsEndsInFailedOnceWhereverTheServiceIsKilled(moves: String) throws {
        let layout = try DropLayout("phase-kill-failed")
        try layout.writeConfig(settle: 1, global: "crash_limit = 3")
        let shim = try Self.environment(moves, layout)
        defer { if moves == "copy+verify" { _ = try? ToolProcess.run("/usr/bin/umount", ["-l", layout.failed]) } }
        let bytes = Samples.randomBytes(4000, seed: 11)
        try layout.write(bytes, as: "broken.nii.gz")
        for phase in ["claimed", "processing", "failing", "moved-1", "moved-2", "finished"] {
            _ = try Self.run(layout, pausingAt: phase, shim: shim, timeout: 60)
            #expect(layout.names(layout.outbox).isEmpty, "after a kill at \(phase)")
            let failed = layout.names(layout.failed)
            #expect(failed.isEmpty || failed == ["broken.nii.gz"] || failed == ["broken.nii.gz", "broken.nii.gz.reason.json"],
                    "after a kill at \(phase): \(failed)")
        }
        let daemon = try #require(try Self.run(layout, pausingAt: nil, shim: shim, timeout: 0))
        defer { daemon.kill9() }
        #expect(waitUntil(timeout: 60) { layout.workEntries().isEmpty }, "\(daemon.stderr)")
        Thread.sleep(forTimeInterval: 1)
        #expect(layout.names(layout.failed) == ["broken.nii.gz", "broken.nii.gz.reason.json"])
        #expect(FileHash.sha256(ofRegularFile: layout.failed + "/broken.nii.gz") == FileHash.sha256(bytes), "the original is kept whole")
        #expect(layout.names(layout.inbox).isEmpty)
        #expect(layout.names(layout.outbox).isEmpty)
        #expect(daemon.events("done").isEmpty)
        let said = daemon.events("watching").compactMap { $0["MESSAGE"] }.first { $0.contains("moves: ") } ?? daemon.stderr
        #expect(said.contains("failed on ") && said.hasSuffix(": \(moves)"), "\(said)")
    }

    @Test func aScanEndsInTheOutboxOnceWhereverTheServiceIsKilled() throws {
        let layout = try DropLayout("phase-kill-done")
        try layout.writeConfig(settle: 1, global: "crash_limit = 3")
        try layout.drop(Samples.colin27, as: "sub-01_T1w.nii.gz")
        let all = DropLayout.outputSet("sub-01_T1w")
        for phase in ["claimed", "processing", "publishing", "moved-1", "moved-2", "moved-3", "moved-4", "finished"] {
            _ = try Self.run(layout, pausingAt: phase, shim: [:], timeout: 1500)
            let out = layout.names(layout.outbox)
            #expect(Set(out).isSubset(of: all), "after a kill at \(phase): \(out)")
            // the defaced scan moves last: when it is there, everything else is too
            #expect(!out.contains("sub-01_T1w_defaced.nii.gz") || out == all, "after a kill at \(phase): \(out)")
            #expect(layout.names(layout.failed).isEmpty, "after a kill at \(phase)")
        }
        let daemon = try #require(try Self.run(layout, pausingAt: nil, shim: [:], timeout: 0))
        defer { daemon.kill9() }
        #expect(waitUntil(timeout: 120) { layout.workEntries().isEmpty }, "\(daemon.stderr)")
        Thread.sleep(forTimeInterval: 1)
        #expect(layout.names(layout.outbox) == all)
        #expect(layout.names(layout.failed).isEmpty)
        #expect(layout.names(layout.inbox).isEmpty)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: layout.outbox + "/sub-01_T1w_deface.json"))) as? [String: Any])
        #expect(report["attempts"] as? Int == 2, "killed once while processing, defaced once")
        let sums = try #require(report["outputSHA256"] as? [String: String])
        #expect(sums["sub-01_T1w_defaced.nii.gz"] == FileHash.sha256(ofRegularFile: layout.outbox + "/sub-01_T1w_defaced.nii.gz"))
    }
}
