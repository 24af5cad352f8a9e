import TestSupport
import Engine
import Foundation
import Glibc
import Testing

extension BatchTests {
    /// `--slurm --wait` through the real cluster: one array task is cancelled (`scancel`) while
    /// it defaces; the waiting command resubmits it once and ends with every head defaced and
    /// the non-scan failed inside its task.
    func runOnSlurmWithCancel(_ fixture: BatchFixture, output: String) throws {
        let log = fixture.path("slurm-run.log")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: DefacerProcess.binary)
        process.arguments = ["batch", fixture.bids, fixture.scans, "--output", output, "--slurm", "--wait",
                             "--max-running", "2"]
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = handle
        process.standardError = handle
        try process.run()

        var cancelled: String?
        for _ in 0..<600 where cancelled == nil {
            usleep(200_000)
            let queue = try TestCluster.shell("squeue -h -r -n defacer-batch -t RUNNING -o %i")
            guard let task = queue.stdout.split(whereSeparator: \.isNewline).first.map(String.init) else { continue }
            sleep(3)  // well into the scan
            let cancel = try TestCluster.shell("scancel \(task)")
            #expect(cancel.status == 0, "\(cancel.stdout)")
            cancelled = task
        }
        #expect(cancelled != nil, "no array task was ever seen running")
        process.waitUntilExit()
        try handle.close()
        let said = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(process.terminationStatus == 1, "\(said)")
        #expect(said.contains("submitted Slurm job "), "\(said)")
        #expect(said.contains("resubmitted 1 scan(s)"), "\(said)")
        #expect(said.contains("4 scan(s): 3 defaced, 1 failed, 0 to do"), "\(said)")
        let manifest = try BatchFixture.manifest(output)
        let jobs = manifest["slurmJobs"] as? [[String: Any]] ?? []
        #expect(jobs.count == 2, "one submission and one resubmission: \(jobs)")
        let outcomes = (manifest["outcomes"] as? [String: [String: Any]] ?? [:]).values
        #expect(outcomes.allSatisfy { ($0["slurmTask"] as? String ?? "").contains("_") }, "every outcome from a Slurm task")
    }
}
