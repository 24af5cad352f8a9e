import Engine
import Foundation
import Glibc
import Testing
import TestSupport

/// The work folder's own faults: a damaged job record, and a reload that would move the work folder.
@Suite(.enabled(if: daemonTestsCanRun))
struct WorkFolderRecoveryTests {
    init() throws { try requireDaemonTestData() }

    /// A job folder whose job.json is damaged: the service cannot know how far the scan got,
    /// so the scan goes to failed unchanged, with that reason, instead of staying forever.
    @Test func aDamagedJobRecordSendsItsScanToFailedWithTheReason() throws {
        let layout = try DropLayout("damaged-record")
        try layout.writeConfig(settle: 1)
        let id = "20261129T101500Z-0badc0de"
        let dir = layout.work + "/" + id
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Samples.colin27, toPath: dir + "/" + id + ".nii.gz")
        try Data("{\"format\": 1, \"scanID\": \"2026".utf8).write(to: URL(fileURLWithPath: dir + "/job.json"))  // cut off
        let daemon = try DaemonProcess(config: layout.configPath)
        defer { daemon.kill9() }
        #expect(waitUntil(timeout: 60) { !daemon.events("failed").isEmpty }, "\(daemon.stderr)")
        Thread.sleep(forTimeInterval: 0.5)
        #expect(layout.names(layout.failed) == [id + ".nii.gz", id + ".nii.gz.reason.json"])
        let reason = try layout.reason(id + ".nii.gz")
        #expect((reason["error"] as? String)?.contains("job record") == true, "\(reason)")
        #expect(reason["code"] as? String == "damagedJobRecord")
        #expect(reason["sha256"] as? String == (try Samples.sha256(Samples.colin27)), "the scan is kept unchanged")
        #expect(layout.workEntries().isEmpty)
        #expect(layout.names(layout.outbox).isEmpty)
        #expect(daemon.events("requeued").first?["MESSAGE"]?.contains("damaged or missing job record") == true)
    }

    /// SIGHUP with a config whose inbox has another work folder: refused with the reason (the
    /// scans claimed in the old one would be stranded), and the old configuration keeps running.
    @Test func aReloadThatMovesTheWorkFolderIsRefused() throws {
        let layout = try DropLayout("reload-work")
        try layout.writeConfig(settle: 1)
        let daemon = try DaemonProcess(config: layout.configPath)
        defer { daemon.kill9() }
        #expect(waitUntil(timeout: 60) { !daemon.events("ready").isEmpty }, "\(daemon.stderr)")
        try FileManager.default.createDirectory(atPath: layout.root + "/work2", withIntermediateDirectories: true)
        try layout.writeConfig(settle: 1, extra: "work = \"work2\"")
        daemon.signal(SIGHUP)
        #expect(waitUntil(timeout: 60) { !daemon.events("reload-failed").isEmpty }, "\(daemon.stderr)")
        let refused = try #require(daemon.events("reload-failed").first)
        #expect(refused["MESSAGE"]?.contains("moves a work folder") == true, "\(refused.line)")
        #expect(refused["MESSAGE"]?.contains(layout.work + " -> " + layout.root + "/work2") == true, "\(refused.line)")
        #expect(daemon.events("reloaded").isEmpty)
        // still the old configuration: a scan is claimed through the old work folder
        try layout.write(Samples.randomBytes(4000, seed: 3), as: "broken.nii.gz")
        #expect(waitUntil(timeout: 60) { !daemon.events("failed").isEmpty }, "\(daemon.stderr)")
        #expect(layout.names(layout.failed) == ["broken.nii.gz", "broken.nii.gz.reason.json"])
        #expect(layout.names(layout.root + "/work2").isEmpty)
        #expect(daemon.process.isRunning)
    }
}
