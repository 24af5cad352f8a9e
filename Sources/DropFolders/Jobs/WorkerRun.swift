import CLinux
import DICOM
import Engine
import Foundation
import Glibc

/// `defacer worker JOB_DIR`: the child process that parses, checks and defaces one claimed scan
/// or DICOM folder in its job folder, as `worker.json` says, under its own limits. It writes
/// the outputs and the publishing plan into the job folder (never into the outbox or failed:
/// the service does those moves) and then `result.json`.
package enum WorkerRun {
    /// Why the worker could not even start on the job (exit status 2).
    package struct SetupError: Error, CustomStringConvertible {
        package var description: String
    }

    /// Limits this process before anything of the scan is read: RLIMIT_DATA to `memoryMB` MiB,
    /// no core files, not dumpable, and killed when `parent` (the service) dies.
    package static func limit(memoryMB: Int?, parent: pid_t?) throws(SetupError) {
        var none = rlimit(rlim_cur: 0, rlim_max: 0)
        guard setrlimit(__rlimit_resource_t(RLIMIT_CORE.rawValue), &none) == 0, dfc_set_not_dumpable() == 0 else {
            throw SetupError(description: "core files could not be switched off: \(String(cString: strerror(errno)))")
        }
        if let parent {
            guard dfc_die_with_parent() == 0 else { throw SetupError(description: "prctl: \(String(cString: strerror(errno)))") }
            guard getppid() == parent else { throw SetupError(description: "the service that started this worker is gone") }
        }
        if let memoryMB {
            let bytes = rlim_t(memoryMB) << 20
            var memory = rlimit(rlim_cur: bytes, rlim_max: bytes)
            guard setrlimit(__rlimit_resource_t(RLIMIT_DATA.rawValue), &memory) == 0 else {
                throw SetupError(description: "the memory limit could not be set: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Defaces the job in `folder` and writes its `result.json`.
    package static func run(folder: String) throws(SetupError) {
        guard let spec = WorkerSpec.read(folder: folder) else {
            throw SetupError(description: "\(folder) holds no readable \(WorkerSpec.fileName)")
        }
        guard let record = JobRecord.read(folder: folder), record.phase == .processing else {
            throw SetupError(description: "\(folder) holds no job record of a scan being defaced")
        }
        var context = JobContext(inbox: spec.inbox, crashLimit: spec.crashLimit, writeRetries: spec.writeRetries,
                                 log: EventLog(target: .stderr), dicom: spec.dicom)
        context.defersPublishing = true
        let job = ScanJob(context: context)
        let dicom = DicomJob(context: context)
        let fail: (JobRecord, JobFailure) -> JobOutcome = { record, failure in
            record.source == .dicom ? dicom.failWhole(record, nil, failure) : job.failScan(record, failure)
        }
        let outcome: JobOutcome
        do {
            context.processor = try Defacer(options: spec.inbox.defacing.engineOptions(models: spec.models, threads: spec.threads))
            outcome = record.source == .dicom ? DicomJob(context: context).convertAndDeface(record)
                : ScanJob(context: context).defaceClaimed(record)
        } catch {
            outcome = job.retryLater(record, reason: "the models cannot be loaded: \(error)", giveUp: { failures in
                JobFailure(reason: "the models could not be loaded \(failures) times: \(error)", code: "model")
            }, fail: fail)
        }
        do { try WorkerSpec.writeResult(outcome, folder: folder) } catch {
            throw SetupError(description: "the result could not be written: \(error)")
        }
    }
}
