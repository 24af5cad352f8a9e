import Engine
import Foundation
import Glibc
import Testing
import TestSupport

extension ServiceTests {
    /// Reload (SIGHUP), stop (SIGTERM) and what systemd is told over the notify socket (the real
    /// binary and a real datagram socket standing in for systemd).
    @Suite struct ServiceLifecycleTests {
        init() throws { try requireDaemonTestData() }

        @Test func sighupAddsASecondInboxAndAnInvalidConfigKeepsTheOldOne() throws {
            let layout = try DropLayout("reload")
            try layout.writeConfig(settle: 1)
            let notify = try NotifyListener(path: layout.root + "/notify.sock")
            defer { notify.close() }
            let daemon = try DaemonProcess(config: layout.configPath, environment: ["NOTIFY_SOCKET": notify.path])
            defer { daemon.kill9() }
            #expect(waitUntil(timeout: 30) { notify.assignments.contains("READY=1") })
            let (second, table) = try layout.makeSecondInbox()
            // an earlier run's job folder in the added inbox's work folder, its record damaged:
            // found when the inbox is added (read off the loop) and its scan sent to failed
            let left = "20261129T101500Z-5ec0d0ff", leftDir = second + "/.defacer-work/" + left
            try FileManager.default.createDirectory(atPath: leftDir, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: Samples.colin27, toPath: leftDir + "/" + left + ".nii.gz")
            try Data("{\"format\": 1, \"scanID\": \"2026".utf8).write(to: URL(fileURLWithPath: leftDir + "/job.json"))
            try layout.writeConfig(settle: 1, extra: table)
            daemon.signal(SIGHUP)
            #expect(waitUntil(timeout: 30) { !daemon.events("reloaded").isEmpty })
            #expect(waitUntil(timeout: 5) { notify.assignments.filter { $0 == "READY=1" }.count == 2 })
            let assignments = notify.assignments
            let reloading = try #require(assignments.firstIndex(of: "RELOADING=1"))
            let monotonic = try #require(assignments[reloading...].first { $0.hasPrefix("MONOTONIC_USEC=") })
            #expect(UInt64(monotonic.dropFirst("MONOTONIC_USEC=".count)) ?? 0 > 0)
            #expect(assignments.lastIndex(of: "READY=1")! > reloading)
            let moves = daemon.events("watching").first { $0["INBOX"] == "second" && $0["MOVES"] != nil }
            #expect(moves?["MOVES"] == "inbox=rename,outbox=rename,failed=rename", "\(moves?.line ?? daemon.stderr)")
            #expect(waitUntil(timeout: 30) { layout.names(second + "-failed") == [left + ".nii.gz", left + ".nii.gz.reason.json"] })
            #expect(daemon.events("requeued").first?["MESSAGE"]?.contains("damaged or missing job record") == true)
            try layout.write(Samples.nifti2D(), as: "two-d.nii", into: second)
            #expect(waitUntil(timeout: 30) {
                layout.names(second + "-failed") == [left + ".nii.gz", left + ".nii.gz.reason.json", "two-d.nii", "two-d.nii.reason.json"].sorted()
            })

            // an invalid config is refused; the service keeps running the old one
            try "max_jobs = \"many\"\n".write(toFile: layout.configPath, atomically: true, encoding: .utf8)
            daemon.signal(SIGHUP)
            #expect(waitUntil(timeout: 30) { !daemon.events("reload-failed").isEmpty })
            #expect(daemon.events("reload-failed").first?["REASON"]?.contains("max_jobs") == true)
            #expect(waitUntil(timeout: 5) { notify.assignments.filter { $0 == "READY=1" }.count == 3 })
            try layout.write(Samples.nifti2D(), as: "still.nii", into: second)
            try layout.write(Samples.nifti2D(), as: "first.nii")
            #expect(waitUntil(timeout: 30) {
                layout.names(second + "-failed").contains("still.nii.reason.json") && layout.names(layout.failed).contains("first.nii.reason.json")
            })
            daemon.signal(SIGTERM)
            #expect(daemon.waitForExit(timeout: 30) == 0)
        }

        @Test func sigtermDrainsTheRunningScanAndTakesNoNewOne() throws {
            let layout = try DropLayout("term")
            try layout.writeConfig(settle: 1)
            let notify = try NotifyListener(path: layout.root + "/notify.sock")
            defer { notify.close() }
            let daemon = try DaemonProcess(config: layout.configPath, environment: ["NOTIFY_SOCKET": notify.path])
            defer { daemon.kill9() }
            #expect(waitUntil(timeout: 30) { !daemon.events("ready").isEmpty })
            try layout.drop(Samples.colin27, as: "running.nii.gz")
            #expect(waitUntil(timeout: 30) { !daemon.events("job-started").isEmpty })
            // the running scan's worker is held still until the service has been told to stop,
            // so that it is still running then however fast the engine is
            let worker = try #require(daemon.freezeWorker(after: 0.5))
            try layout.drop(Samples.colin27, as: "waiting.nii.gz")
            Thread.sleep(forTimeInterval: 2.5)  // settled and queued behind the running one
            daemon.signal(SIGTERM)
            #expect(waitUntil(timeout: 5) { notify.assignments.contains("STOPPING=1") })
            #expect(notify.assignments.contains { $0.hasPrefix("EXTEND_TIMEOUT_USEC=") })
            #expect(kill(worker, SIGCONT) == 0)
            let status = daemon.waitForExit(timeout: 300)
            #expect(status == 0)
            #expect(layout.names(layout.outbox) == DropLayout.outputSet("running"))
            #expect(layout.names(layout.inbox) == ["waiting.nii.gz"])
            #expect(layout.workEntries().isEmpty)
            #expect(daemon.events("job-started").count == 1)
            #expect(!daemon.events("stopped").isEmpty)
        }

        @Test func notifySocketGetsReadyStatusWatchdogAndStopping() throws {
            let layout = try DropLayout("notify")
            try layout.writeConfig(settle: 1)
            try layout.write(Samples.randomBytes(1000, seed: 11), as: "early.nii.gz")
            let notify = try NotifyListener(path: layout.root + "/notify.sock")
            defer { notify.close() }
            let daemon = try DaemonProcess(config: layout.configPath,
                                           environment: ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "1000000"])
            defer { daemon.kill9() }
            #expect(waitUntil(timeout: 30) { notify.assignments.contains("READY=1") })
            #expect(waitUntil(timeout: 10) { layout.names(layout.failed).count == 2 })
            #expect(waitUntil(timeout: 5) { notify.assignments.filter { $0 == "WATCHDOG=1" }.count >= 4 })
            let assignments = notify.assignments
            // READY comes with the first STATUS, after the startup scan queued the early file
            let ready = try #require(assignments.firstIndex(of: "READY=1"))
            #expect(assignments[ready + 1].hasPrefix("STATUS=queued 0, running 0, done 0, failed 0, settling 1"))
            #expect(!assignments[..<ready].contains("WATCHDOG=1"))
            // the files reach failed/ on the worker just before the loop publishes the status
            #expect(waitUntil(timeout: 10) { notify.assignments.contains("STATUS=queued 0, running 0, done 0, failed 1") })
            // the models are checked at start and let go (each scan's worker loads its own): an idle
            // service holds tens of MB, not the networks' hundreds
            let status = try String(contentsOfFile: "/proc/\(daemon.process.processIdentifier)/status", encoding: .utf8)
            let rssLine = try #require(status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") })
            let rssKB = try #require(Int(rssLine.split(separator: " ", omittingEmptySubsequences: true)[1]))
            #expect(rssKB < 100_000, "idle service resident memory \(rssKB) kB")
            daemon.signal(SIGTERM)
            #expect(daemon.waitForExit(timeout: 30) == 0)
            #expect(waitUntil(timeout: 2) { notify.assignments.contains("STOPPING=1") })
        }
    }
}
