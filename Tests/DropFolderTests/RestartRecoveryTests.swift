import Engine
import Foundation
import Glibc
import Testing
import TestSupport

extension ServiceTests {
    /// A service killed while defacing: the next start finishes every scan exactly once, and a
    /// scan that keeps stopping the service is set aside (the real binary, SIGKILL, real folders).
    @Suite struct RestartRecoveryTests {
        init() throws { try requireDaemonTestData() }

        @Test func killDuringProcessingThenRestartEndsEveryScanExactlyOnce() throws {
            let layout = try DropLayout("kill")
            try layout.writeConfig(settle: 1)
            var daemon = try DaemonProcess(config: layout.configPath)
            defer { daemon.kill9() }
            #expect(waitUntil(timeout: 30) { !daemon.events("ready").isEmpty })
            try layout.drop(Samples.colin27, as: "first.nii.gz")
            #expect(waitUntil(timeout: 30) { !daemon.events("job-started").isEmpty })
            try layout.drop(Samples.colin27, as: "second.nii.gz")
            try layout.write(Samples.randomBytes(4000, seed: 5), as: "broken.nii.gz")
            // frozen inside the engine (a Colin27 deface takes several seconds), so that the kill
            // lands mid-deface however fast the engine is; the worker dies with the service
            let worker = try #require(daemon.freezeWorker(after: 1), "the first scan's worker was gone before it could be frozen")
            daemon.kill9()
            #expect(waitUntil(timeout: 10) { !processIsAlive(worker) }, "the worker died with the service")
            #expect(layout.names(layout.outbox).isEmpty, "no partial result may reach the outbox")
            #expect(layout.workEntries().count == 1)
            // restart: the claimed scan is requeued, the rest is found in the inbox
            daemon = try DaemonProcess(config: layout.configPath)
            #expect(waitUntil(timeout: 30) { !daemon.events("ready").isEmpty })
            #expect(daemon.events("requeued").count == 1)
            #expect(waitUntil(timeout: 400) { daemon.events("done").count + daemon.events("failed").count >= 3 })
            Thread.sleep(forTimeInterval: 0.5)
            #expect(layout.names(layout.outbox) == (DropLayout.outputSet("first") + DropLayout.outputSet("second")).sorted())
            #expect(layout.names(layout.failed) == ["broken.nii.gz", "broken.nii.gz.reason.json"])
            #expect(layout.names(layout.inbox).isEmpty)
            #expect(layout.workEntries().isEmpty)
            let report = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: layout.outbox + "/first_deface.json"))) as? [String: Any])
            #expect(report["attempts"] as? Int == 2)
        }

        @Test func scanThatStopsTheServiceTwiceIsSetAside() throws {
            let layout = try DropLayout("crash")
            try layout.writeConfig(settle: 1)
            try layout.drop(Samples.colin27, as: "poison.nii.gz")
            for round in 1...2 {
                let daemon = try DaemonProcess(config: layout.configPath)
                #expect(waitUntil(timeout: 60) { !daemon.events("job-started").isEmpty }, "round \(round)")
                let worker = try #require(daemon.freezeWorker(after: 1), "round \(round): the worker was gone before it could be frozen")
                daemon.kill9()
                #expect(waitUntil(timeout: 10) { !processIsAlive(worker) }, "round \(round): the worker died with the service")
                #expect(layout.names(layout.outbox).isEmpty)
            }
            let daemon = try DaemonProcess(config: layout.configPath)
            defer { daemon.kill9() }
            #expect(waitUntil(timeout: 60) { !daemon.events("quarantined").isEmpty })
            Thread.sleep(forTimeInterval: 0.5)
            #expect(layout.names(layout.failed) == ["poison.nii.gz", "poison.nii.gz.reason.json"])
            let reason = try layout.reason("poison.nii.gz")
            #expect((reason["error"] as? String)?.contains("stopped the service 2 times") == true)
            #expect(reason["attempts"] as? Int == 2)
            #expect(reason["sha256"] as? String == (try Samples.sha256(Samples.colin27)))
            #expect(layout.workEntries().isEmpty)
            #expect(layout.names(layout.outbox).isEmpty)
        }
    }
}
