import DropFolders
import Engine
import Foundation
import Glibc
/// The task lists of one Slurm submission, in `DIR/.defacer-batch/slurm/submission-N.json`,
/// written before `sbatch` so that every array task finds its share.
enum SlurmSubmissionFile {
    static func path(_ folder: BatchFolder, number: Int) -> String { folder.slurm + "/submission-\(number).json" }

    static func load(_ folder: BatchFolder, number: Int) throws(BatchError) -> BatchManifest.SlurmSubmission {
        guard let data = FileManager.default.contents(atPath: path(folder, number: number)),
              let value = try? JSONDecoder().decode(BatchManifest.SlurmSubmission.self, from: data) else {
            throw BatchError("cannot read \(path(folder, number: number))")
        }
        return value
    }
}

/// Slurm options of a batch run.
struct SlurmOptions: Sendable {
    var partition: String?
    var timeLimitMinutes: Int?
    var memPerJobMB: Int?
    var maxRunning: Int?
    /// At most this many array tasks per submission; more scans share tasks.
    var maxTasks = 1000
}

/// Runs a batch as Slurm array jobs: submits the items still to do, follows the jobs with
/// `squeue`, reads each task's outcome files, and resubmits once what a task left undone.
struct BatchSlurmRunner {
    var folder: BatchFolder
    var binary: String
    var options: SlurmOptions

    /// Submits `items` as one array job; returns the submission recorded in the manifest.
    func submit(_ items: [BatchItem], manifest: inout BatchManifest, resubmission: Bool) throws(BatchError) -> BatchManifest.SlurmSubmission {
        let taskCount = min(items.count, options.maxTasks)
        var tasks = [[String]](repeating: [], count: taskCount)
        for (index, item) in items.enumerated() { tasks[index % taskCount].append(item.id) }
        let number = manifest.slurmJobs.count
        var submission = BatchManifest.SlurmSubmission(jobID: "", tasks: tasks, submitted: BatchClock.timestamp(),
                                                       isResubmission: resubmission)
        try BatchFolder.writeJSON(submission, to: SlurmSubmissionFile.path(folder, number: number))
        let limits = SlurmLimits.choose(options: options, measured: Array(manifest.outcomes.values),
                                        scansPerTask: tasks.map(\.count).max() ?? 1)
        var arguments = ["--job-name=defacer-batch", "--array=0-\(taskCount - 1)%\(options.maxRunning ?? taskCount)",
                         "--output=\(folder.slurm)/%A_%a.out", "--time=\(limits.minutes)", "--mem=\(limits.memoryMB)M",
                         "--cpus-per-task=1", "--chdir=\(folder.output)", "--export=ALL,DEFACER_THREADS=1"]
        if let partition = options.partition { arguments.append("--partition=\(partition)") }
        arguments.append("--wrap=exec \(SlurmTools.quoted(binary)) batch-task \(SlurmTools.quoted(folder.output)) --submission \(number)")
        do { submission.jobID = try SlurmTools.submit(arguments) } catch { throw BatchError(error.description) }
        try BatchFolder.writeJSON(submission, to: SlurmSubmissionFile.path(folder, number: number))
        manifest.slurmJobs.append(submission)
        try manifest.save(folder)
        return submission
    }

    /// Follows the manifest's active jobs to their end, showing progress; resubmits once the
    /// items a task left without an outcome (or with a retryable failure); records the rest as failed.
    func follow(manifest: inout BatchManifest, progress: BatchProgress) throws(BatchError) {
        manifest.collect(from: folder)
        var reported = Set(manifest.outcomes.keys)
        while true {
            try waitForActive(manifest.slurmJobs.map(\.jobID), manifest: &manifest, progress: progress, reported: &reported)
            guard let last = manifest.slurmJobs.last else { return }
            let left = unfinished(last)
            if left.isEmpty { return }
            let items = manifest.items.filter { left.keys.contains($0.id) }
            if !last.isResubmission {
                for item in items { folder.forget(item.id) }
                let again = try submit(items, manifest: &manifest, resubmission: true)
                progress.note("resubmitted \(items.count) scan(s) whose tasks ended without a result as job \(again.jobID)")
                continue
            }
            for item in items where folder.outcome(item.id) == nil {
                let outcome = BatchOutcome(id: item.id, state: .failed, reason: left[item.id] ?? "the Slurm task ended without a result",
                                           retryable: true, inputSHA256: item.inputSHA256, finished: BatchClock.timestamp())
                try folder.record(outcome)
                progress.finished(item, outcome: outcome)
            }
            manifest.collect(from: folder)
            try manifest.save(folder)
            return
        }
    }

    /// Polls `squeue` until none of `jobs`' tasks is pending or running, showing each scan as
    /// its outcome file appears (a retryable failure waits: it may be resubmitted).
    func waitForActive(_ jobs: [String], manifest: inout BatchManifest, progress: BatchProgress,
                       reported: inout Set<String>) throws(BatchError) {
        while true {
            let active: [String: String]
            do { active = try SlurmTools.activeTasks(jobs) } catch { throw BatchError(error.description) }
            manifest.collect(from: folder)
            for item in manifest.items where !reported.contains(item.id) {
                guard let outcome = manifest.outcomes[item.id], outcome.state == .done || !outcome.retryable else { continue }
                reported.insert(item.id)
                progress.finished(item, outcome: outcome)
            }
            if active.isEmpty { return }
            progress.tick()
            sleep(2)
        }
    }

    /// The items of a submission without a done outcome, with why their task left them.
    func unfinished(_ submission: BatchManifest.SlurmSubmission) -> [String: String] {
        var left: [String: String] = [:]
        for (index, ids) in submission.tasks.enumerated() {
            for id in ids {
                let outcome = folder.outcome(id)
                if outcome?.state == .done || outcome?.retryable == false { continue }
                let state = SlurmTools.finalState(job: submission.jobID, task: index) ?? "unknown"
                left[id] = outcome?.reason ?? "Slurm task \(submission.jobID)_\(index) ended (\(state)) without a result, twice; "
                    + "log: \(folder.slurm)/\(submission.jobID)_\(index).out"
            }
        }
        return left
    }

}

/// Time and memory per array task: from the options, else from what finished scans needed.
enum SlurmLimits {
    static let defaultSecondsPerScan = 1800.0
    static let defaultMemoryMB = 4096

    static func choose(options: SlurmOptions, measured: [BatchOutcome], scansPerTask: Int) -> (minutes: Int, memoryMB: Int) {
        let done = measured.filter { $0.state == .done }
        let perScan = done.map(\.seconds).max().map { max($0 * 3, 300) } ?? defaultSecondsPerScan
        let minutes = options.timeLimitMinutes ?? max(10, Int((perScan * Double(scansPerTask) / 60).rounded(.up)))
        let peak = done.map(\.peakMemoryMB).max().map { ($0 * 3 / 2 + 255) / 256 * 256 } ?? defaultMemoryMB
        return (minutes, options.memPerJobMB ?? max(1024, peak))
    }
}
