import Engine
import Glibc

/// What adding an inbox finds in its folders: the moves each of them allows, and the job
/// folders an earlier run left in its work folder (with their records; a record is nil when it
/// is damaged or missing). Taken by ``DropFolderService/survey(_:log:)``: at start before the
/// service is ready, on a reload off the service's loop.
struct InboxSurvey: Sendable {
    /// A job folder's name (the scan id) and its record.
    typealias LeftJob = (name: String, record: JobRecord?)
    var trials: [RenameTrial]
    var leftJobs: [LeftJob]
}

/// Restart recovery: at start (and when an inbox is added) every job folder an earlier run
/// left in the inbox's work folder is requeued, and its job record (`Jobs/JobRecord.swift`)
/// says where to resume: claim, defacing, or the moves to the outbox or to failed. A folder
/// whose record is damaged is requeued too, and its scan goes to failed with that reason.
extension DropFolderService {
    /// Reads (and tidies) an inbox's folders before it is added: removes the temporaries an
    /// interrupted copy or write left, tries each move, and lists the job folders an earlier
    /// run left, removing those whose claim never happened or that hold nothing of a scan.
    /// Touches only the inbox's folders (in an outbox or failed folder it shares with another
    /// inbox, only temporaries of processes that have ended), so it may run off the loop.
    static func survey(_ inbox: InboxConfig, log: EventLog) -> InboxSurvey {
        removeLeftoverTemporaries(inbox, log: log)
        return InboxSurvey(trials: RenameTrial.run(for: inbox), leftJobs: leftJobs(inbox))
    }

    /// The job folders an earlier run left in an inbox's work folder, in name order.
    static func leftJobs(_ inbox: InboxConfig) -> [InboxSurvey.LeftJob] {
        guard let names = DurableFile.list(inbox.work) else { return [] }
        var left: [InboxSurvey.LeftJob] = []
        for name in names.sorted() where !name.hasPrefix(".") {
            let dir = inbox.work + "/" + name
            guard DropEntry(path: dir)?.kind == .directory else { continue }
            let record = JobRecord.read(folder: dir)
            if let record, record.phase == .claiming, !claimHappened(record, dir: dir, inbox: inbox) {
                DurableFile.removeTree(dir)  // the move never happened: the scan is still in the inbox
                continue
            }
            if record == nil && ScanJob.claimedEntries(dir).isEmpty {
                DurableFile.removeTree(dir)  // a job folder with nothing of a scan in it
                continue
            }
            left.append((name, record))
        }
        return left
    }

    /// Requeues the scans a previous run left in an inbox's work folder (``leftJobs(_:)``).
    func recoverWork(_ inbox: InboxConfig, _ left: [InboxSurvey.LeftJob]) {
        for (name, record) in left {
            guard !queuedResumes.contains(name) else { continue }
            queuedResumes.insert(name)
            queue.append(QueueItem(inbox: inbox.path, kind: .resume(scanID: name)))
            guard let record else {
                log.log(.requeued, "scan \(name) in the work folder of inbox \(inbox.name) has a damaged or missing job record; it goes to failed",
                        [("INBOX", inbox.name), ("SCAN_ID", name)])
                continue
            }
            log.log(.requeued, "scan \(record.scanID) from inbox \(inbox.name) was left \(record.phase.rawValue) by an earlier run (attempts so far: \(record.attempts)); requeued",
                    fields(inbox: inbox, name: record.originalName) + [("SCAN_ID", record.scanID), ("PHASE", record.phase.rawValue),
                                                                          ("ATTEMPT", "\(record.attempts)")])
        }
    }

    /// Removes the temporaries an earlier run left in the folders the service owns for an
    /// inbox (a kill in the middle of a cross-mount copy or a write): the outbox, failed and
    /// archive folders (and DICOM folders in failed), the work folder and its job folders.
    /// Only names defacer gives its temporaries, only of processes no longer running; logged
    /// with counts, never names (they hold the scans' names).
    static func removeLeftoverTemporaries(_ inbox: InboxConfig, log: EventLog) {
        let folders: [(role: String, path: String?, depth: Int)] = [
            ("outbox", inbox.outbox, 0), ("failed", inbox.failed, 1), ("archive", inbox.archive, 0), ("work", inbox.work, 2),
        ]
        for folder in folders {
            guard let path = folder.path else { continue }
            let removed = DurableFile.removeLeftoverTemporaries(in: path, depth: folder.depth)
            guard removed > 0 else { continue }
            log.log(.cleanedUp, "inbox \(inbox.name): removed \(removed) temporar\(removed == 1 ? "y" : "ies") that an interrupted copy or write left in the \(folder.role) folder",
                    [("INBOX", inbox.name), ("FOLDER", path), ("REMOVED", "\(removed)")])
        }
    }

    /// Whether a claim that a restart interrupted got the scan into the job folder. A claim by
    /// link (or copy) that stopped before the inbox name was removed is completed here, so
    /// that the inbox does not offer the scan a second time.
    static func claimHappened(_ record: JobRecord, dir: String, inbox: InboxConfig) -> Bool {
        let claimed = dir + "/" + record.claimedName
        guard let entry = DropEntry(path: claimed) else { return false }
        let original = inbox.path + "/" + record.originalName
        if entry.kind == .directory {
            // a folder moved over an empty one made for it: still empty means not moved
            if DurableFile.list(claimed)?.isEmpty == true && DropEntry(path: original) != nil { return false }
            return true
        }
        _ = try? DurableFile.completeIfAlreadyThere(original, claimed)
        return true
    }
}

extension ScanJob {
    /// What of a claimed scan a job folder holds (the scan file or DICOM folder), without the
    /// record, outputs, conversion and hidden temporary files.
    package static func claimedEntries(_ dir: String) -> [String] {
        (DurableFile.list(dir) ?? []).filter {
            !$0.hasPrefix(".") && ![JobRecord.fileName, "out", "convert", "failed-part"].contains($0) && !$0.hasSuffix(".reason.json")
        }.sorted()
    }

    /// A job folder whose `job.json` is missing or cannot be read: what it holds cannot be
    /// resumed safely (it is not known what was done), so the claimed scan goes to failed,
    /// unchanged, with the reason; a folder holding nothing of a scan is removed.
    package func failDamagedRecord(scanID: String) -> JobOutcome {
        let dir = folder(of: scanID)
        guard let claimed = Self.claimedEntries(dir).first else {
            DurableFile.removeTree(dir)
            return JobOutcome(result: .vanished, scanID: scanID, originalName: "?")
        }
        let isFolder = DropEntry(path: dir + "/" + claimed)?.kind == .directory
        var record = JobRecord(scanID: scanID, inbox: inbox.path, originalName: claimed, claimedName: claimed,
                               phase: .processing, claimedAt: EventLog.timestamp())
        record.source = isFolder ? .dicom : .nifti
        let failure = JobFailure(reason: "its job record (\(JobRecord.fileName)) in the work folder was damaged, so defacer cannot tell how far it got; the scan was set aside unchanged: check it and drop it again",
                                 code: "damagedJobRecord")
        return isFolder ? fail(record, failure) : failScan(record, failure)
    }
}
