import Foundation
import Glibc
import Testing
import TestSupport

extension ServiceTests {
/// Every hostile NIfTI file of the corpus dropped beside a real scan into a running service
/// (`defacer run`, real binary, real folders): the service keeps its PID, the real scan is
/// defaced, and each hostile file is set aside in failed with a reason in plain words.
/// (Pairs are left out: the service refuses
/// .hdr/.img pairs as such, and DICOM folders wait for their quiet period.)
@Suite struct HostileDropTests {
    init() throws { try requireDaemonTestData() }

    @Test func hostileFilesBesideARealScanNeverStopTheService() throws {
        let layout = try DropLayout("hostile")
        try layout.writeConfig(settle: 1)
        let daemon = try DaemonProcess(config: layout.configPath)
        defer { daemon.kill9() }
        #expect(waitUntil(timeout: 30) { !daemon.events("ready").isEmpty })
        let pid = daemon.process.processIdentifier
        let hostile = HostileCorpus.niftiFiles.filter { !$0.hasSuffix(".hdr") }
        let names = hostile.map { String($0.dropFirst("nifti/".count)) }
        for (entry, name) in zip(hostile, names) { try layout.drop(HostileCorpus.folder + "/" + entry, as: name) }
        try layout.drop(Samples.colin27, as: "real_T1w.nii.gz")

        #expect(waitUntil(timeout: 900) { !daemon.events("done").isEmpty && daemon.events("failed").count >= names.count })
        #expect(daemon.process.isRunning, "the service is still running")
        #expect(daemon.process.processIdentifier == pid && daemon.events("ready").count == 1, "and was never restarted")
        #expect(layout.names(layout.outbox) == DropLayout.outputSet("real_T1w"), "the real scan is defaced")
        let failed = Set(layout.names(layout.failed))
        for name in names {
            #expect(failed.contains(name) && failed.contains(name + ".reason.json"), "\(name) is set aside")
            let reason = (try? layout.reason(name)["error"] as? String) ?? ""
            #expect(!reason.isEmpty && !reason.contains("crash"), "\(name): \(reason)")
        }
        daemon.signal(SIGTERM)
        #expect(daemon.waitForExit(timeout: 60) == 0)
    }
}
}
