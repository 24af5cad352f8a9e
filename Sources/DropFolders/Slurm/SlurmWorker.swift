import DICOM
import Engine
import Foundation
import Glibc

/// A scan's worker as a Slurm job (`executor = "slurm"`): the same `defacer worker JOB_DIR` as
/// a local run, submitted with `sbatch` to a node that sees the work folder, named
/// `defacer-<scan id>-<attempt>` and recorded by id in the job record; the job's worker thread
/// waits (never the service's loop) for the states that the one `SlurmPoller` reads until it ends.
struct SlurmWorker {
    var launch: WorkerLaunch
    var settings: SlurmSettings

    /// States in which a job has not ended yet.
    static let activeStates: Set = ["PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED",
                                    "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED"]

    /// One name per attempt of a scan: a job of that name in the queue is this attempt's.
    static func jobName(_ record: JobRecord) -> String { "defacer-\(record.scanID)-\(record.attempts)" }

    /// Submits this attempt's job, unless Slurm already holds one of its name, and records its id.
    func submit(_ recordIn: JobRecord, dir: String, memoryMB: Int) -> Result<String, SlurmTools.Failure> {
        var record = recordIn
        let name = Self.jobName(record)
        let id: String
        do {
            if let queued = try SlurmTools.activeJobs(named: name).first { id = queued } else {
                let minutes = settings.timeLimitMinutes ?? Int((launch.timeoutSeconds / 60).rounded(.up))
                var arguments = ["--job-name=\(name)", "--output=\(dir)/\(WorkerSpec.logName)", "--time=\(minutes)",
                                 "--mem=\(memoryMB)M", "--cpus-per-task=\(launch.threads)", "--chdir=\(dir)",
                                 "--export=ALL,SWIFT_BACKTRACE=enable=no"]
                if let partition = settings.partition { arguments.append("--partition=\(partition)") }
                arguments.append("--wrap=exec \(SlurmTools.quoted(launch.binary)) worker \(SlurmTools.quoted(dir)) --memory-mb \(memoryMB)")
                id = try SlurmTools.submit(arguments)
            }
        } catch { return .failure(error) }
        record.slurmJobID = id
        // unrecorded, a restart still finds the job by its name while it is queued or running
        try? record.write(folder: dir)
        return .success(id)
    }

    /// Follows job `id` until it ends; its final state (nil once Slurm has forgotten it). The
    /// states come from the service's one poller (`SlurmPoller`), which keeps asking while Slurm
    /// cannot be asked (slurmctld down).
    func wait(_ id: String, scanID: String) -> String? {
        let ending = SlurmPoller.shared.wait(for: id, every: settings.pollSeconds) { launch.onSlurmState?(scanID, id, $0) }
        guard case .ended(let state) = ending else { preconditionFailure("no deadline, no other ending") }
        return state
    }

    /// The job's end: a completed job's outcome, or one attempt used up by a job that Slurm
    /// failed, cancelled or timed out.
    func conclude(_ id: String, state: String?, memoryMB: Int, dir: String, counted: Int, job: ScanJob,
                  fail: (JobRecord, JobFailure) -> JobOutcome) -> JobOutcome {
        let log = Subprocess.tail(of: dir + "/" + WorkerSpec.logName, bytes: 16_384)
        let crash: WorkerCrash?
        switch state {
        case "COMPLETED", nil: crash = nil
        case "TIMEOUT", "DEADLINE":
            let minutes = settings.timeLimitMinutes ?? Int((launch.timeoutSeconds / 60).rounded(.up))
            crash = WorkerCrash(head: "defacing this scan took longer than its Slurm time limit of \(minutes) min", tail: "",
                                code: "timedOut", setting: "slurm_time_limit_minutes")
        case "OUT_OF_MEMORY":
            crash = .memory(memoryMB, setting: "slurm_mem_per_job_mb")
        case _ where WorkerCrash.outOfMemory(log):
            crash = .memory(memoryMB, setting: settings.memPerJobMB == nil ? "memory_per_job_mb" : "slurm_mem_per_job_mb")
        case let other?:
            crash = WorkerCrash(head: "the Slurm job defacing this scan ended \(other)", tail: "(job \(id))", code: "slurmJobFailed")
        }
        return launch.conclude(crash, dir: dir, counted: counted, job: job, fail: fail)
    }
}
