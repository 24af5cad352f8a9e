import Engine
import Foundation
import Glibc
import Testing
import TestSupport

/// Throughput of the service with max_jobs 1 against 2 on the same four real heads. Opt-in
/// (DEFACER_DAEMON_BENCH=1): it takes several minutes and measures, rather than checks.
@Suite(.serialized, .enabled(if: daemonTestsCanRun && ProcessInfo.processInfo.environment["DEFACER_DAEMON_BENCH"] == "1",
                             "set DEFACER_DAEMON_BENCH=1 to measure"))
struct DropFolderThroughputBenchmark {
    init() throws { try requireDaemonTestData() }

    @Test(arguments: [1, 2])
    func throughput(maxJobs: Int) throws {
        let layout = try DropLayout("bench\(maxJobs)")
        try layout.writeConfig(maxJobs: maxJobs, settle: 1)
        let daemon = try DaemonProcess(config: layout.configPath)
        defer { daemon.kill9() }
        #expect(waitUntil(timeout: 30) { !daemon.events("ready").isEmpty })
        let start = Date()
        for i in 0..<4 { try layout.drop(Samples.colin27, as: "head-\(i).nii.gz") }
        #expect(waitUntil(timeout: 900) { daemon.events("done").count + daemon.events("failed").count >= 4 })
        let seconds = Date().timeIntervalSince(start)
        let delays = daemon.events("done").compactMap { Double($0["START_DELAY_MS"] ?? "") }
        print(String(format: "max_jobs %d: 4 heads in %.1f s (%.2f scans/min); settled-to-engine delay %@ ms",
                     maxJobs, seconds, 4 / seconds * 60, delays.map { String(format: "%.1f", $0) }.joined(separator: ", ")))
        #expect(daemon.events("done").count == 4)
    }
}
