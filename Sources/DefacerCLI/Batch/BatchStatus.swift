import DropFolders
import Engine
import Foundation
/// `defacer batch --status DIR`, and the end-of-run summary: counts, failures with reasons,
/// and the Slurm jobs still queued or running.
enum BatchStatus {
    /// Prints the status; returns 0 (all done or still going), 1 (some failed) or 2 (no batch).
    static func show(_ folder: BatchFolder) -> Int32 {
        let loaded: BatchManifest?
        do { loaded = try BatchManifest.load(folder) } catch {
            BatchError.warn("defacer batch: \(error.message)\n")
            return 2
        }
        guard var manifest = loaded else {
            BatchError.warn("defacer batch: \(folder.output) holds no batch (no .defacer-batch/manifest.json)\n")
            return 2
        }
        manifest.collect(from: folder)
        if !manifest.slurmJobs.isEmpty {
            let jobs = manifest.slurmJobs.map(\.jobID)
            if let active = try? SlurmTools.activeTasks(jobs) {
                let running = active.values.filter { $0 == "RUNNING" }.count
                print("Slurm job(s) \(jobs.joined(separator: ", ")): \(running) task(s) running, \(active.count - running) queued")
            } else {
                print("Slurm job(s) \(jobs.joined(separator: ", ")): squeue cannot be asked from here")
            }
        }
        let code = summary(manifest, folder: folder)
        return code == 1 && manifest.counts.failed == 0 ? 0 : code
    }

    /// Prints counts and failures; returns 0 when every scan is defaced, else 1.
    static func summary(_ manifest: BatchManifest, folder: BatchFolder) -> Int32 {
        let counts = manifest.counts
        print("\(folder.output): \(manifest.items.count) scan(s): \(counts.done) defaced, \(counts.failed) failed, \(counts.pending) to do")
        for item in manifest.items {
            guard let outcome = manifest.outcomes[item.id], outcome.state == .failed else { continue }
            print("  failed: \(item.input): \(outcome.reason ?? "no reason recorded")"
                + (outcome.retryable ? " (tried again on the next run)" : ""))
        }
        return counts.done == manifest.items.count ? 0 : 1
    }
}
