import Engine
import Foundation
import Glibc
import Testing
import TestSupport

extension ServiceTests {
    /// Each scan is defaced by a worker process of its own (`defacer worker JOB_DIR`): a worker
    /// that dies or runs out of memory costs its scan one attempt and nothing else (the real
    /// binary, real scans, real signals and a real RLIMIT_DATA).
    @Suite struct WorkerProcessTests {
        init() throws { try requireDaemonTestData() }

        @Test func workerKilledMidDefaceCostsOneAttemptAndTheScanIsRetried() throws {
            let layout = try DropLayout("worker-kill")
            try layout.writeConfig(settle: 1, global: "retry_seconds = 1")
            let daemon = try DaemonProcess(config: layout.configPath)
            defer { daemon.kill9() }
            let servicePID = daemon.process.processIdentifier
            #expect(waitUntil(timeout: 30) { !daemon.events("ready").isEmpty })
            try layout.drop(Samples.colin27, as: "killed.nii.gz")
            var worker: pid_t?
            #expect(waitUntil(timeout: 60) { worker = daemon.workers().first; return worker != nil })
            Thread.sleep(forTimeInterval: 1)   // inside the engine (a Colin27 deface takes several seconds)
            let victim = try #require(worker)
            #expect(kill(victim, SIGKILL) == 0)
            #expect(waitUntil(timeout: 30) { !daemon.events("retry").isEmpty })
            let retry = try #require(daemon.events("retry").first)
            #expect(retry["REASON"]?.contains("defacing crashed on this scan (signal 9") == true, "\(retry.line)")
            #expect(retry["ATTEMPT"] == "1")
            #expect(waitUntil(timeout: 400) { !daemon.events("done").isEmpty || !daemon.events("failed").isEmpty })
            Thread.sleep(forTimeInterval: 0.5)
            #expect(daemon.process.isRunning && daemon.process.processIdentifier == servicePID, "the service keeps its PID")
            #expect(daemon.events("started").count == 1)
            #expect(layout.names(layout.outbox) == DropLayout.outputSet("killed"))
            #expect(layout.names(layout.failed).isEmpty)
            #expect(layout.workEntries().isEmpty)
            let report = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: layout.outbox + "/killed_deface.json"))) as? [String: Any])
            #expect(report["attempts"] as? Int == 2)
            #expect(daemon.workers().isEmpty, "no worker is left behind")
        }

        @Test func scanOverItsMemoryLimitGoesToFailedWhileAnotherIsDefaced() throws {
            let layout = try DropLayout("worker-memory")
            let tight = layout.root + "/tight"
            for folder in ["", "/outbox", "/failed"] {
                try FileManager.default.createDirectory(atPath: tight + folder, withIntermediateDirectories: true)
            }
            try layout.writeConfig(maxJobs: 2, settle: 1, global: "retry_seconds = 1", extra: """

            [[inbox]]
            name = "tight"
            path = "tight"
            outbox = "tight/outbox"
            failed = "tight/failed"
            memory_per_job_mb = 256
            """)
            let daemon = try DaemonProcess(config: layout.configPath)
            defer { daemon.kill9() }
            let servicePID = daemon.process.processIdentifier
            #expect(waitUntil(timeout: 30) { !daemon.events("ready").isEmpty })
            try layout.drop(Samples.colin27, as: "roomy.nii.gz")
            try layout.drop(Samples.colin27, as: "starved.nii.gz", into: tight)
            #expect(waitUntil(timeout: 600) { daemon.events("done").count + daemon.events("failed").count >= 2 })
            Thread.sleep(forTimeInterval: 0.5)
            #expect(daemon.process.isRunning && daemon.process.processIdentifier == servicePID, "the service keeps its PID")
            #expect(layout.names(layout.outbox) == DropLayout.outputSet("roomy"))
            #expect(layout.names(tight + "/outbox").isEmpty)
            #expect(layout.names(tight + "/failed") == ["starved.nii.gz", "starved.nii.gz.reason.json"])
            let reason = try layout.reason("starved.nii.gz", in: tight + "/failed")
            let error = try #require(reason["error"] as? String)
            #expect(error.contains("ran out of its memory limit of 256 MB"), "\(error)")
            #expect(reason["code"] as? String == "outOfMemory")
            #expect(reason["attempts"] as? Int == 2)
            #expect(reason["sha256"] as? String == (try Samples.sha256(Samples.colin27)))
            #expect(daemon.events("retry").count == 1, "one retry before crash_limit (2) is reached")
        }
    }
}
