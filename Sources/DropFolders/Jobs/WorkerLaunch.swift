import DICOM
import Engine
import Foundation
import Glibc

/// How the service has one claimed scan defaced: a child process of its own binary
/// (`defacer worker JOB_DIR`, see `WorkerRun`) with a memory limit, no core files and the job's
/// time limit, started and awaited on the job's worker thread. A child that dies by a signal,
/// runs out of memory or time costs the scan the attempt already counted in its record; after
/// `crash_limit` attempts the scan goes to failed with that reason. The service, its loop and
/// the other scans never notice.
package struct WorkerLaunch: Sendable {
    /// The `defacer` binary (the service's own).
    package var binary: String
    package var models: String
    package var threads: Int
    /// `memory_per_job_mb`; nil: sized from the scan (`memoryLimitMB`).
    package var memoryMB: Int?
    /// `job_timeout_seconds`: the child is killed after this long.
    package var timeoutSeconds: Double
    /// With `executor = "slurm"`: each worker is a Slurm job (`SlurmWorker`).
    package var slurm: SlurmSettings?
    /// Told each state a scan's Slurm job is seen in (scan id, job id, state; nil once Slurm forgot it).
    package var onSlurmState: (@Sendable (String, String, String?) -> Void)?

    package init(binary: String = WorkerLaunch.ownBinary, models: String, threads: Int, memoryMB: Int?, timeoutSeconds: Double) {
        self.binary = binary
        self.models = models
        self.threads = threads
        self.memoryMB = memoryMB
        self.timeoutSeconds = timeoutSeconds
    }

    /// This process's executable (`/proc/self/exe`).
    package static var ownBinary: String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        return n > 0 ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
    }

    /// The default memory limit, MiB: 1536 for the runtime, the models and the HD-BET grid at
    /// its usual size, plus 48 bytes per voxel of the scan (its float copies, masks and
    /// resampled grids; the header's voxel count, or `max_voxels` when it cannot be read). A
    /// DICOM folder counts one voxel per two bytes of its files (`JobRecord.folderBytes`).
    package static func memoryLimitMB(voxels: Int64) -> Int {
        1536 + Int((voxels * 48 + (1 << 20) - 1) >> 20)
    }

    /// The scan's voxels as the memory rule counts them.
    package static func voxels(of record: JobRecord, in dir: String, maxVoxels: Int64) -> Int64 {
        let claimed = dir + "/" + record.claimedName
        if record.source == .dicom {
            // the settled snapshot's count (a record from before it was kept: one walk of the claimed folder)
            let bytes = record.folderBytes ?? FolderSnapshot(path: claimed)?.bytes ?? 0
            return min(bytes / 2, maxVoxels)
        }
        let header = try? NiftiReader(maxVoxels: maxVoxels).readHeader(claimed)
        return min(header?.voxelCount ?? maxVoxels, maxVoxels)
    }

    /// Runs the worker on a counted attempt (`record`, phase processing) and ends the job:
    /// publishes what it prepared, or counts its crash. `fail` sets the scan aside.
    package func run(_ record: JobRecord, job: ScanJob, fail: (JobRecord, JobFailure) -> JobOutcome) -> JobOutcome {
        let dir = job.folder(of: record.scanID)
        let limit = memoryLimit(record, job: job)
        unlink(dir + "/" + WorkerSpec.resultName)
        do { try WorkerSpec(context: job.context, models: models, threads: threads).write(folder: dir) } catch {
            return job.retryLater(record, reason: "cannot hand the scan to its worker: \(error)",
                                  giveUp: { JobFailure(reason: "the work folder could not be written \($0) times: \(error)", code: "writeFailed") },
                                  fail: fail)
        }
        if let slurm {
            let worker = SlurmWorker(launch: self, settings: slurm)
            switch worker.submit(record, dir: dir, memoryMB: limit) {
            case .failure(let failure):
                return job.retryLater(record, reason: "the scan could not be submitted to Slurm: \(failure)", giveUp: {
                    JobFailure(reason: "the scan could not be submitted to Slurm \($0) times: \(failure)", code: "slurmSubmitFailed")
                }, fail: fail)
            case .success(let id):
                return worker.conclude(id, state: worker.wait(id, scanID: record.scanID), memoryMB: limit, dir: dir, counted: record.attempts,
                                       job: job, fail: fail)
            }
        }
        let arguments = ["worker", dir, "--memory-mb", "\(limit)", "--parent", "\(getpid())"]
        // no crash report from the Swift runtime: it would print memory near the registers
        let environment = ["PATH=" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"), "LANG=C.UTF-8",
                           "SWIFT_BACKTRACE=enable=no"]
        let ending: Subprocess.Ending
        switch Subprocess.start(binary, arguments, outputFile: dir + "/" + WorkerSpec.logName, environment: environment) {
        case .failure(let failure):
            let why = String(cString: strerror(failure.code))
            return job.retryLater(record, reason: "the defacing worker could not be started (\(binary): \(why))",
                                  giveUp: { JobFailure(reason: "the defacing worker could not be started \($0) times: \(why)", code: "workerNotStarted") },
                                  fail: fail)
        case .success(let pid):
            ending = Subprocess.wait(for: pid, timeout: timeoutSeconds)
        }
        let log = Subprocess.tail(of: dir + "/" + WorkerSpec.logName, bytes: 16_384)
        let crash = ending == .exited(0) ? nil : WorkerCrash(ending: ending, memoryMB: limit, timeoutSeconds: timeoutSeconds, log: log)
        return conclude(crash, dir: dir, counted: record.attempts, job: job, fail: fail)
    }

    /// The memory limit of a scan's worker, MiB: as configured, else sized from the scan.
    func memoryLimit(_ record: JobRecord, job: ScanJob) -> Int {
        slurm?.memPerJobMB ?? memoryMB
            ?? Self.memoryLimitMB(voxels: Self.voxels(of: record, in: job.folder(of: record.scanID), maxVoxels: job.inbox.defacing.maxVoxels))
    }

    /// After a restart with `executor = "slurm"`: the attempt's Slurm job (by the id in the
    /// record, or by the attempt's job name when the restart came between submitting and
    /// recording) is waited for and concluded instead of submitting the scan again. nil when
    /// Slurm knows no such job and it left no result: a new attempt starts.
    package func reattach(_ record: JobRecord, job: ScanJob, fail: (JobRecord, JobFailure) -> JobOutcome) -> JobOutcome? {
        guard let slurm, record.phase == .processing, record.attempts > 0 else { return nil }
        let dir = job.folder(of: record.scanID)
        guard let id = record.slurmJobID ?? (try? SlurmTools.activeJobs(named: SlurmWorker.jobName(record)))?.first else { return nil }
        let worker = SlurmWorker(launch: self, settings: slurm)
        let state = worker.wait(id, scanID: record.scanID)
        if state == nil && WorkerSpec.result(folder: dir) == nil { return nil }
        return worker.conclude(id, state: state, memoryMB: memoryLimit(record, job: job), dir: dir, counted: record.attempts,
                               job: job, fail: fail)
    }

    /// The job's end after its worker ended: the worker's outcome (its recorded moves done
    /// here), or one attempt used up by a crash (`crash`, or a worker that left no result).
    /// `counted`: the attempts the record showed when the worker started.
    func conclude(_ crashed: WorkerCrash?, dir: String, counted: Int, job: ScanJob,
                  fail: (JobRecord, JobFailure) -> JobOutcome) -> JobOutcome {
        guard let record = JobRecord.read(folder: dir) else {
            return JobOutcome(result: .stuck, scanID: DurableFile.fileName(of: dir), originalName: "?",
                              reason: "its job record is missing or damaged after defacing")
        }
        if crashed == nil, var outcome = WorkerSpec.result(folder: dir) {
            guard record.phase == .publishing || record.phase == .failing else { return outcome }
            let finished = job.finish(record)
            guard finished.result != .stuck else { return finished }
            outcome.attempts = finished.attempts
            return outcome
        }
        if record.attempts < counted {
            // the worker gave the attempt back (an output could not be written, a full disk) and
            // then could not write its result either: wait, as it decided
            return JobOutcome(result: .retry, scanID: record.scanID, originalName: record.originalName,
                              reason: "the disk holding \(job.inbox.work) could not take the worker's result: waiting", attempts: record.attempts)
        }
        let crash = crashed ?? WorkerCrash(head: "defacing stopped on this scan without a result", tail: "", code: "workerCrashed")
        guard record.attempts < job.context.crashLimit else {
            return fail(record, JobFailure(reason: crash.finalReason(attempts: record.attempts), code: crash.code))
        }
        for sub in ["out", "convert", "failed-part"] { DurableFile.removeTree(dir + "/" + sub) }
        if record.slurmJobID != nil {
            // this job is concluded: the retry submits a new one instead of waiting for it again
            var concluded = record
            concluded.slurmJobID = nil
            try? concluded.write(folder: dir)
        }
        return JobOutcome(result: .retry, scanID: record.scanID, originalName: record.originalName,
                          reason: "\(crash.reason) (attempt \(record.attempts) of \(job.context.crashLimit))", attempts: record.attempts)
    }
}

/// Why a worker ended without an outcome, in the words of the reason file and the log:
/// `head` ("defacing crashed on this scan"), then how often, then `tail` ("(signal 4)").
struct WorkerCrash {
    var head: String
    var tail: String
    var code: String
    /// The setting to raise when a scan needs more (memory, time).
    var setting: String?

    var reason: String { tail.isEmpty ? head : head + " " + tail }

    init(head: String, tail: String, code: String, setting: String? = nil) {
        (self.head, self.tail, self.code, self.setting) = (head, tail, code, setting)
    }

    /// Whether a worker's output shows that it ran out of memory.
    static func outOfMemory(_ log: String) -> Bool {
        ["failed to allocate", "Could not allocate memory", "Cannot allocate memory", "out of memory", "bad_alloc"].contains { log.contains($0) }
    }

    static func memory(_ memoryMB: Int, setting: String) -> WorkerCrash {
        WorkerCrash(head: "defacing this scan ran out of its memory limit of \(memoryMB) MB", tail: "", code: "outOfMemory", setting: setting)
    }

    init(ending: Subprocess.Ending, memoryMB: Int, timeoutSeconds: Double, log: String) {
        switch ending {
        case .timedOut:
            self.init(head: "defacing this scan took longer than \(plainNumber(timeoutSeconds)) s", tail: "", code: "timedOut",
                      setting: "job_timeout_seconds")
        case _ where Self.outOfMemory(log):
            self = .memory(memoryMB, setting: "memory_per_job_mb")
        case .signalled(let sig):
            self.init(head: "defacing crashed on this scan", tail: "(signal \(sig))", code: "workerCrashed")
        case .exited(let status):
            self.init(head: "defacing stopped on this scan without a result", tail: "(exit status \(status))", code: "workerCrashed")
        case .notStarted(let e):
            self.init(head: "the defacing worker could not be started", tail: "(\(String(cString: strerror(e))))", code: "workerNotStarted")
        }
    }

    /// The reason once `crash_limit` attempts are used up.
    func finalReason(attempts: Int) -> String {
        let times = attempts == 1 ? "once" : attempts == 2 ? "twice" : "\(attempts) times"
        let raise = setting.map { ": raise \($0) if the scan is expected to need more" } ?? ""
        return "\(head) \(times)\(tail.isEmpty ? "" : " " + tail); it was set aside\(raise)"
    }
}
