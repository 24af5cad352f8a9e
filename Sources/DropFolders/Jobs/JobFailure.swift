import Engine
import Foundation
import Glibc

/// Why a claimed scan or DICOM folder cannot be defaced, and the one way every such job ends:
/// set aside after `crash_limit` starts that never ended, retried later when an output could
/// not be written, or moved to `failed` with its reason file (`FailureRecord`).
package struct JobFailure: Sendable {
    /// In plain words, for the reason file and the log.
    package var reason: String
    /// A stable name for programs (`notAScanFile`, `crashedService`, `writeFailed`...).
    package var code: String
    /// `failed`, or `quarantined` for a scan that kept stopping the service.
    package var result: JobOutcome.Result = .failed

    package init(reason: String, code: String, result: JobOutcome.Result = .failed) {
        self.reason = reason
        self.code = code
        self.result = result
    }

    /// Whether a write failure is a full disk or a used-up quota: a reason to wait, not a fault
    /// of the scan. Known by its errno; only a failure that reached here as words alone (a DICOM
    /// conversion's) is known by the errno's name in them, as `SystemError` writes it.
    package static func isDiskFull(errno: Int32?, reason: String) -> Bool {
        if let errno { return SystemError.isDiskFull(errno) }
        return [ENOSPC, EDQUOT].contains { reason.contains("(\(SystemError.name(of: $0)): ") || reason.contains(String(cString: strerror($0))) }
    }

    /// The failure of a job started `crash_limit` times without ending (a crash, a kill or a
    /// power cut), or nil while it may be tried again. `what` names the work ("defacing this scan").
    package static func crashed(_ record: JobRecord, limit: Int, doing what: String) -> JobFailure? {
        guard record.attempts >= limit else { return nil }
        return JobFailure(reason: "\(what) stopped the service \(record.attempts) times (a crash, a kill or a power cut); it was set aside so that it cannot stop the service again",
                          code: "crashedService", result: .quarantined)
    }
}

/// `<name>.reason.json` in the failed folder: what was dropped, why it failed, and for a DICOM
/// folder each series and what became of it (beside the DICOM files, which identify the
/// patient anyway).
package struct FailureRecord: Codable, Sendable {
    /// One series of a DICOM folder.
    package struct Series: Codable, Sendable {
        package var name: String
        package var result: String
        package var dicomFiles: Int
        package var files: [String]?
        package var seriesNumber: Int?
        package var reason: String?
    }

    /// A DICOM file that could not be read.
    package struct BrokenFile: Codable, Sendable {
        package var path: String
        package var reason: String
    }

    package var file: String
    package var scanId: String
    package var inbox: String
    package var error: String
    package var code: String
    package var attempts: Int
    package var defacerVersion = DefacerVersion.string
    package var failedAt = EventLog.timestamp()
    package var claimedAt: String
    package var storedAs: String?
    /// A NIfTI file's digest: always present, null when it could not be read; absent for DICOM.
    package var sha256: String??
    package var kind: String?
    package var outbox: String?
    package var files: Int?
    package var series: [Series]?
    package var brokenFiles: [BrokenFile]?
    package var converterLog: String?

    package init(_ record: JobRecord, inbox: String, failure: JobFailure, storedAs: String) {
        file = record.originalName
        scanId = record.scanID
        self.inbox = inbox
        error = failure.reason
        code = failure.code
        attempts = record.attempts
        claimedAt = record.claimedAt
        if storedAs != record.originalName { self.storedAs = storedAs }
    }

    /// The record as the file holds it (sorted keys, indented).
    package var json: Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return (try? encoder.encode(self)) ?? Data()
    }
}

extension JobOutcome {
    /// A job that cannot record or move its files (the folders are broken): the scan stays in
    /// the work folder and is tried again later.
    package static func stuck(_ record: JobRecord, _ reason: String) -> JobOutcome {
        JobOutcome(result: .stuck, scanID: record.scanID, originalName: record.originalName, reason: reason, attempts: record.attempts)
    }
}

extension ScanJob {
    /// Moves the claimed scan or folder and its reason file to the failed folder: the reason
    /// file is written and the moves recorded first, so a crash half-way finishes them.
    /// `describe` adds what only this kind of job knows to the reason file.
    package func fail(_ recordIn: JobRecord, _ failure: JobFailure,
                      describe: (inout FailureRecord) -> Void = { _ in }) -> JobOutcome {
        var record = recordIn
        let dir = folder(of: record.scanID)
        for sub in ["out", "convert", "failed-part"] { DurableFile.removeTree(dir + "/" + sub) }
        let name = Self.freeName(record.originalName, in: inbox.failed, also: [".reason.json"])
        let reasonName = record.scanID + ".reason.json"
        var reasonFile = FailureRecord(record, inbox: inbox.name, failure: failure, storedAs: name)
        describe(&reasonFile)
        do {
            try DurableFile.write(reasonFile.json, to: dir + "/" + reasonName, replacing: true)
            record.phase = .failing
            // the scan first, its reason last: a reason file means the entry is complete
            record.moves = [JobRecord.Move(from: record.claimedName, to: inbox.failed + "/" + name),
                            JobRecord.Move(from: reasonName, to: inbox.failed + "/" + name + ".reason.json")]
            try record.write(folder: dir)
        } catch {
            return .stuck(record, "cannot record the failure: \(error)")
        }
        var outcome = finish(record)
        if outcome.result == .failed {
            outcome.result = failure.result
            outcome.reason = failure.reason
        }
        return outcome
    }

    /// An output could not be written (a full disk, permissions: not the scan's fault): the
    /// attempt does not count as a crash and the job waits in the work folder for a retry.
    /// A full disk (or quota) waits as long as it takes; other write failures until
    /// `write_retries` is used up, then `giveUp(failures)` says why it goes to failed.
    package func retryLater(_ recordIn: JobRecord, reason: String, errno: Int32? = nil, giveUp: (Int) -> JobFailure,
                            fail: (JobRecord, JobFailure) -> JobOutcome) -> JobOutcome {
        var record = recordIn
        let dir = folder(of: record.scanID)
        // partial outputs go first: on a full disk they hold the room the record needs
        for sub in ["out", "convert", "failed-part"] { DurableFile.removeTree(dir + "/" + sub) }
        record.attempts -= 1
        let diskFull = JobFailure.isDiskFull(errno: errno, reason: reason)
        if !diskFull {
            record.writeFailures += 1
            if record.writeFailures > context.writeRetries { return fail(record, giveUp(record.writeFailures)) }
        }
        let written: Bool
        do { try record.write(folder: dir); written = true } catch { written = false }
        var said = diskFull ? "the disk holding \(inbox.outbox) is full: waiting (\(reason))" : reason
        if !written { said += "; the work folder could not record this wait, so it counts as an attempt" }
        return JobOutcome(result: .retry, scanID: record.scanID, originalName: record.originalName,
                          reason: said, attempts: record.attempts)
    }
}
