import Foundation
import Testing
import TestSupport

extension ServiceTests {
    /// How a service with `max_jobs = 2` shares the cores (the real binary, real scans): a scan
    /// dropped alone gets every core; scans dropped together run two at a time on half each.
    @Suite struct JobThreadsTests {
        init() throws { try requireDaemonTestData() }

        @Test func aScanAloneGetsEveryCoreAndABatchSharesThem() throws {
            let cores = ProcessInfo.processInfo.activeProcessorCount
            let layout = try DropLayout("threads")
            try layout.writeConfig(maxJobs: 2, settle: 1)
            let daemon = try DaemonProcess(config: layout.configPath)
            defer { daemon.kill9() }
            #expect(waitUntil(timeout: 30) { !daemon.events("ready").isEmpty })
            try layout.drop(Samples.colin27, as: "alone.nii.gz")
            #expect(waitUntil(timeout: 240) { !daemon.events("done").isEmpty || !daemon.events("failed").isEmpty })
            // three dropped at once: they settle one after the other, and the first one taken
            // must already count the others
            for name in ["first", "second", "third"] { try layout.drop(Samples.colin27, as: name + ".nii.gz") }
            #expect(waitUntil(timeout: 400) { daemon.events("done").count + daemon.events("failed").count >= 4 })
            Thread.sleep(forTimeInterval: 0.5)
            #expect(layout.names(layout.outbox) == ["alone", "first", "second", "third"].flatMap { DropLayout.outputSet($0) }.sorted())
            let started = daemon.events("job-started")
            #expect(started.count == 4)
            #expect(started.first?["THREADS"] == "\(cores)", "\(started.first?.line ?? "")")
            for entry in started.dropFirst() {
                #expect(entry["THREADS"] == "\(max(1, cores / 2))", "\(entry.line)")
            }
            #expect(started.compactMap { Int($0["RUNNING"] ?? "") }.max() == 2, "the batch ran two at a time")
        }
    }
}
