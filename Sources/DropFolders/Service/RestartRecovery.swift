import Engine

/// Restart recovery: at start (and when an inbox is added) every job folder an earlier run
/// left in the inbox's work folder is requeued, and its job record (`Jobs/JobRecord.swift`)
/// says where to resume: claim, defacing, or the moves to the outbox or to failed.
extension DropFolderService {
    /// Requeues the scans a previous run left in an inbox's work folder.
    func recoverWork(_ inbox: InboxConfig) {
        guard let names = DurableFile.list(inbox.work) else { return }
        for name in names.sorted() where !name.hasPrefix(".") {
            let dir = inbox.work + "/" + name
            guard DropEntry(path: dir)?.kind == .directory else { continue }
            guard let record = JobRecord.read(folder: dir) else {
                let rest = (DurableFile.list(dir) ?? []).filter { !$0.hasPrefix(".") && $0 != "out" }
                if rest.isEmpty { DurableFile.removeTree(dir) } else {
                    log.log(.folderProblem, "work folder of inbox \(inbox.name): \(name) has no job record; left alone",
                            [("INBOX", inbox.name), ("SCAN_ID", name)])
                }
                continue
            }
            if record.phase == .claiming && DropEntry(path: dir + "/" + record.claimedName) == nil {
                DurableFile.removeTree(dir)  // the rename never happened: the scan is still in the inbox
                continue
            }
            guard !queuedResumes.contains(record.scanID) else { continue }
            queuedResumes.insert(record.scanID)
            queue.append(QueueItem(inbox: inbox.path, kind: .resume(scanID: record.scanID)))
            log.log(.requeued, "scan \(record.scanID) from inbox \(inbox.name) was left \(record.phase.rawValue) by an earlier run (attempts so far: \(record.attempts)); requeued",
                    fields(inbox: inbox, name: record.originalName) + [("SCAN_ID", record.scanID), ("PHASE", record.phase.rawValue),
                                                                          ("ATTEMPT", "\(record.attempts)")])
        }
    }
}
