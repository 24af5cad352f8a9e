import DropFolders
import Engine
import Foundation
import Glibc

/// One `defacer batch` run: plans the sources, reconciles the plan with the manifest (only what
/// is missing or changed is done; a finished scan is never redone), copies a BIDS dataset's
/// other files, defaces locally or on Slurm, and reports.
struct BatchRun {
    var folder: BatchFolder
    var settings: BatchSettings
    var jobs: Int?
    var slurm: SlurmOptions?
    var waitForSlurm = false

    init(folder: BatchFolder, settings: BatchSettings) {
        self.folder = folder
        self.settings = settings
    }

    /// Runs the batch; returns the exit status (0 all done, 1 some failed or left, 2 nothing could run, 130 stopped).
    func execute(sources: [String]) -> Int32 {
        do {
            try folder.prepare()
            let lock = try BatchLock(folder)
            defer { lock.release() }
            var manifest = try prepareManifest(sources: sources)
            let toDo = try reconcile(&manifest, plan: try BatchPlanner(settings: settings).plan(sources))
            return try run(toDo, manifest: &manifest)
        } catch {
            BatchError.warn("defacer batch: \(error.message)\n")
            return 2
        }
    }

    func prepareManifest(sources: [String]) throws(BatchError) -> BatchManifest {
        guard FileManager.default.fileExists(atPath: settings.models + "/model.json") else {
            throw BatchError("no HD-BET model in \(settings.models) (give --models or set DEFACER_MODELS)")
        }
        guard var manifest = try BatchManifest.load(folder) else {
            return BatchManifest(settings: settings, sources: sources)
        }
        guard manifest.settings.sameOutputs(as: settings) else {
            let was = manifest.settings
            throw BatchError("\(folder.output) was defaced with --mode \(was.mode) --margin \(was.marginMM)"
                + (was.keepEars ? " --keep-ears" : "") + "; use the same settings to resume, or another --output")
        }
        manifest.settings = settings
        manifest.sources = Array(Set(manifest.sources + sources)).sorted()
        return manifest
    }

    /// Folds the plan into the manifest; returns the items to deface now.
    func reconcile(_ manifest: inout BatchManifest, plan: BatchPlan) throws(BatchError) -> [BatchItem] {
        manifest.collect(from: folder)
        let known = Dictionary(uniqueKeysWithValues: manifest.items.map { ($0.id, $0) })
        var toDo: [BatchItem] = []
        for item in plan.items {
            let outcome = manifest.outcomes[item.id]
            let unchanged = outcome?.inputSHA256 == item.inputSHA256
            switch outcome?.state {
            case .done? where FileManager.default.fileExists(atPath: folder.absolute(item.display)):
                if !unchanged {
                    print("not redone: \(item.input) changed since it was defaced into \(item.display); "
                        + "remove that output to deface the new version")
                }
                if known[item.id] == nil { manifest.items.append(item) }
            case .failed? where unchanged && outcome?.retryable == false:
                if known[item.id] == nil { manifest.items.append(item) }
            default:
                folder.forget(item.id)
                manifest.outcomes[item.id] = nil
                toDo.append(item)
                if let index = manifest.items.firstIndex(where: { $0.id == item.id }) { manifest.items[index] = item }
                else { manifest.items.append(item) }
            }
        }
        try BatchCopier(folder: folder, settings: settings).copy(plan)
        try manifest.save(folder)
        return toDo
    }

    func run(_ toDo: [BatchItem], manifest: inout BatchManifest) throws(BatchError) -> Int32 {
        let before = manifest.counts
        if toDo.isEmpty {
            print("nothing to do: \(before.done) scan(s) defaced, \(before.failed) failed, in \(folder.output)")
            return BatchStatus.summary(manifest, folder: folder)
        }
        let progress = BatchProgress(total: manifest.items.count, alreadyDone: manifest.items.count - toDo.count)
        let binary = try Self.ownBinary()
        if let slurm {
            let runner = BatchSlurmRunner(folder: folder, binary: binary, options: slurm)
            try runOnSlurm(runner, toDo: toDo, manifest: &manifest, progress: progress)
        } else {
            if let active = try? SlurmTools.activeTasks(manifest.slurmJobs.map(\.jobID)), !active.isEmpty {
                throw BatchError("Slurm jobs of this batch still run (\(active.count) task(s)); wait for them "
                    + "(defacer batch --status \(folder.output)) or scancel them before running it here")
            }
            let (workers, threads) = BatchCapacity.workers(requested: jobs, measured: Array(manifest.outcomes.values))
            print("defacing \(toDo.count) scan(s) with \(workers) worker(s), \(threads) thread(s) each")
            let runner = BatchLocalRunner(folder: folder, items: toDo, binary: binary, jobs: workers,
                                          threadsPerWorker: threads, progress: progress)
            runner.run()
            progress.close()
            manifest.collect(from: folder)
            try manifest.save(folder)
            if runner.stopped {
                print("stopped: run the same command again to resume (\(manifest.counts.pending) scan(s) left)")
                return 130
            }
        }
        if slurm != nil && !waitForSlurm { return 0 }
        let after = manifest.counts
        let defaced = after.done - before.done
        print(String(format: "%d scan(s) defaced in %@ (%.1f scans/hour)", defaced,
                     BatchProgress.duration(progress.elapsed), Double(defaced) * 3600 / max(progress.elapsed, 1)))
        return BatchStatus.summary(manifest, folder: folder)
    }

    /// Submits to Slurm (or, when this batch's jobs still run, attaches to them) and follows with --wait.
    func runOnSlurm(_ runner: BatchSlurmRunner, toDo: [BatchItem], manifest: inout BatchManifest,
                    progress: BatchProgress) throws(BatchError) {
        let active: [String: String]
        do { active = try SlurmTools.activeTasks(manifest.slurmJobs.map(\.jobID)) } catch { throw BatchError(error.description) }
        if active.isEmpty {
            let submission = try runner.submit(toDo, manifest: &manifest, resubmission: false)
            print("submitted Slurm job \(submission.jobID): \(toDo.count) scan(s) in \(submission.tasks.count) array task(s)")
        } else {
            let jobs = Set(active.keys.map { String($0.prefix { $0 != "_" }) }).sorted()
            print("Slurm job(s) \(jobs.joined(separator: ", ")) of this batch still run; not submitting again")
        }
        guard waitForSlurm else {
            print("follow it with: defacer batch --status \(folder.output)")
            return
        }
        try runner.follow(manifest: &manifest, progress: progress)
        progress.close()
        manifest.collect(from: folder)
        try manifest.save(folder)
    }

    /// This program's own path (workers and Slurm tasks run the same binary).
    static func ownBinary() throws(BatchError) -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { throw BatchError("cannot find this program's own path (/proc/self/exe)") }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
