import Engine
import Foundation
import Glibc
import Testing
import TestSupport

extension ServiceTests {
    /// The service with `executor = "slurm"` on the real one-node cluster (tools/setup/slurm.sh
    /// start): each claimed scan is a Slurm job running `defacer worker`; a service killed with
    /// -9 while the jobs run re-attaches to them at its next start instead of submitting again.
    @Suite struct SlurmServiceTests {
        init() throws { try requireDaemonTestData() }

        /// `JobName` of every job Slurm remembers whose work folder lies under `root`.
        static func jobNames(under root: String) throws -> [String] {
            let said = try TestCluster.shell("scontrol -o show job")
            return said.stdout.split(whereSeparator: \.isNewline).filter { $0.contains("WorkDir=" + root + "/") }.compactMap { line in
                line.split(separator: " ").first { $0.hasPrefix("JobName=") }.map { String($0.dropFirst("JobName=".count)) }
            }
        }

        @Test func checkConfigSaysWhenSbatchIsMissing() throws {
            let layout = try DropLayout("slurm-config")
            try layout.writeConfig(global: "executor = \"slurm\"")
            let withTools = try DefacerProcess.run(["check-config", "--config", layout.configPath])
            #expect(withTools.status == 0, "\(withTools.stdout)\(withTools.stderr)")
            let without = try DefacerProcess.run(["check-config", "--config", layout.configPath], environment: ["PATH": "/nonexistent"])
            #expect(without.status == 1)
            #expect((without.stdout + without.stderr).contains("sbatch is not on PATH"), "\(without.stdout)\(without.stderr)")
        }

        @Test func burstKilledWhileJobsRunEndsEveryScanOnceWithoutResubmitting() throws {
            #expect(TestCluster.ready(), "no Slurm test cluster: start it with tools/setup/slurm.sh start")
            let layout = try DropLayout("slurm")
            try layout.writeConfig(maxJobs: 2, settle: 1, global: """
            executor = "slurm"
            slurm_max_running = 3
            slurm_time_limit_minutes = 30
            retry_seconds = 1
            """)
            var daemon = try DaemonProcess(config: layout.configPath)
            defer { daemon.kill9() }
            #expect(waitUntil(timeout: 30) { !daemon.events("ready").isEmpty })
            let names = ["alpha", "beta", "gamma"]
            for name in names { try layout.drop(Samples.colin27, as: name + ".nii.gz") }
            #expect(waitUntil(timeout: 120) { daemon.events("slurm-job").filter { $0["SLURM_STATE"] == "RUNNING" }.count >= 2 })
            #expect(daemon.events("slurm-job").contains { $0.line.contains("running in Slurm") })
            // the two running workers are held still inside the engine (a deface takes several
            // seconds) so that the kill lands mid-deface however fast the engine is, and let go
            // once the service is dead: the restart must wait for their jobs
            var running: [pid_t] = []
            #expect(waitUntil(timeout: 60) { running = workerProcesses(jobsUnder: layout.root); return running.count >= 2 })
            Thread.sleep(forTimeInterval: 1)
            for worker in running { #expect(kill(worker, SIGSTOP) == 0) }
            #expect(daemon.events("done").isEmpty, "a scan was defaced before the kill: the test did not kill mid-deface")
            daemon.kill9()
            for worker in running { #expect(kill(worker, SIGCONT) == 0) }
            let submitted = try Self.jobNames(under: layout.root)
            #expect(submitted.count == 3, "\(submitted)")
            #expect(layout.names(layout.outbox).isEmpty)

            daemon = try DaemonProcess(config: layout.configPath)
            #expect(waitUntil(timeout: 30) { !daemon.events("ready").isEmpty })
            #expect(daemon.events("requeued").count == 3)
            #expect(waitUntil(timeout: 1200) { daemon.events("done").count + daemon.events("failed").count >= 3 })
            Thread.sleep(forTimeInterval: 0.5)
            #expect(layout.names(layout.outbox) == names.flatMap { DropLayout.outputSet($0) }.sorted())
            #expect(layout.names(layout.failed).isEmpty)
            #expect(layout.names(layout.inbox).isEmpty)
            #expect(layout.workEntries().isEmpty)
            let jobs = try Self.jobNames(under: layout.root)
            #expect(jobs.sorted() == submitted.sorted(), "no job was submitted twice: \(jobs)")
            for name in names {
                let report = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: layout.outbox + "/\(name)_deface.json"))) as? [String: Any])
                #expect(report["attempts"] as? Int == 1, "\(name): the restart waited for the job instead of another attempt")
            }
        }

        @Test func jobCancelledInSlurmCostsOneAttemptAndTheScanIsDefacedByTheNext() throws {
            #expect(TestCluster.ready(), "no Slurm test cluster: start it with tools/setup/slurm.sh start")
            let layout = try DropLayout("slurm-cancel")
            try layout.writeConfig(settle: 1, global: "executor = \"slurm\"\nretry_seconds = 1")
            let daemon = try DaemonProcess(config: layout.configPath)
            defer { daemon.kill9() }
            #expect(waitUntil(timeout: 30) { !daemon.events("ready").isEmpty })
            try layout.drop(Samples.colin27, as: "cancelled.nii.gz")
            #expect(waitUntil(timeout: 120) { daemon.events("slurm-job").contains { $0["SLURM_STATE"] == "RUNNING" } })
            let first = try #require(daemon.events("slurm-job").first { $0["SLURM_STATE"] == "RUNNING" }?["SLURM_JOB_ID"])
            // held still inside the engine so that the job is still running when it is cancelled
            // (scancel sends SIGCONT before its SIGTERM)
            var worker: pid_t?
            #expect(waitUntil(timeout: 60) { worker = workerProcesses(jobsUnder: layout.root).first; return worker != nil })
            Thread.sleep(forTimeInterval: 1)
            #expect(kill(try #require(worker), SIGSTOP) == 0)
            #expect(try TestCluster.shell("scancel \(first)").status == 0)
            #expect(waitUntil(timeout: 60) { !daemon.events("retry").isEmpty })
            let retry = try #require(daemon.events("retry").first)
            #expect(retry["REASON"]?.contains("ended CANCELLED") == true, "\(retry.line)")
            #expect(waitUntil(timeout: 600) { !daemon.events("done").isEmpty || !daemon.events("failed").isEmpty })
            Thread.sleep(forTimeInterval: 0.5)
            #expect(layout.names(layout.outbox) == DropLayout.outputSet("cancelled"))
            #expect(layout.workEntries().isEmpty)
            let jobs = try Self.jobNames(under: layout.root)
            #expect(jobs.count == 2 && jobs.allSatisfy { $0.hasPrefix("defacer-") }, "one job per attempt: \(jobs)")
        }
    }
}
