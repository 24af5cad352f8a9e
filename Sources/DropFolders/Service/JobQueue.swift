import DICOM
import Dispatch
import Engine
import Foundation

/// The job queue: first in, first out, at most `max_jobs` scans at once on the worker
/// threads; each ends in one outcome that is logged, and a scan to retry is requeued later.
extension DropFolderService {
    var queuedCount: Int { queue.count - queueHead }

    func startJobs() {
        while !draining && !reloading && running.count < config.jobSlots && queueHead < queue.count {
            let item = queue[queueHead]
            queueHead += 1
            if queueHead > 1024 && queueHead * 2 > queue.count {
                queue.removeFirst(queueHead)
                queueHead = 0
            }
            guard let inbox = inboxes[item.inbox] else {
                // the inbox left the configuration: its claimed scans wait in its work folder
                if case .resume(let scanID) = item.kind { queuedResumes.remove(scanID) }
                continue
            }
            // the models were checked at start and reload; each scan is defaced by a worker
            // process of its own (`WorkerLaunch`) that loads them
            guard verifiedEngines.contains(inbox.config.defacing.engineKey) else { continue }
            var context = JobContext(inbox: inbox.config, crashLimit: config.crashLimit,
                                     writeRetries: config.writeRetries, log: log, dicom: config.dicom)
            let threads = config.threadsPerJob(scansAtHand: scansAtHand())
            context.worker = WorkerLaunch(models: config.models, threads: threads,
                                          memoryMB: inbox.config.memoryPerJobMB ?? config.memoryPerJobMB, timeoutSeconds: config.jobTimeoutSeconds)
            if config.executor == .slurm {
                context.worker?.slurm = config.slurm
                context.worker?.onSlurmState = { [self] scanID, jobID, state in
                    loop.async { self.assumeIsolated { $0.slurmStateChanged(scanID: scanID, jobID: jobID, state: state) } }
                }
            }
            let jobContext = context
            let job = ScanJob(context: context)
            let number = nextJob
            nextJob += 1
            let now = monotonicSeconds()
            switch item.kind {
            case .fresh(let name):
                let key = item.inbox + "/" + name
                guard var c = candidates[key], c.state == .queued else { continue }
                c.state = .running
                candidates[key] = c
                running[number] = RunningJob(inbox: item.inbox, candidateKey: key, startedAt: now)
                let settled = c.entry
                let waited = now - (c.settledAt ?? now)
                log.log(.jobStarted, "taking a scan from inbox \(inbox.config.name) (\(running.count) running, \(threads) engine thread\(threads == 1 ? "" : "s"))",
                        fields(inbox: inbox.config, name: name) + [("RUNNING", "\(running.count)"), ("THREADS", "\(threads)"),
                                                                   ("QUEUE_WAIT_MS", "\(Int(waited * 1000))")])
                let settledAt = c.settledAt ?? now
                let folder = c.isDicom ? c.folder : nil
                workers.async { [self] in
                    var outcome = folder.map { DicomJob(context: jobContext).runFresh(name: name, settled: $0) }
                        ?? job.runFresh(name: name, settled: settled)
                    outcome.settledAt = settledAt
                    let finished = outcome
                    loop.async { self.assumeIsolated { $0.jobEnded(number, finished) } }
                }
            case .resume(let scanID):
                queuedResumes.remove(scanID)
                running[number] = RunningJob(inbox: item.inbox, scanID: scanID, startedAt: now)
                log.log(.jobStarted, "resuming scan \(scanID) in inbox \(inbox.config.name) (\(running.count) running, \(threads) engine thread\(threads == 1 ? "" : "s"))",
                        [("INBOX", inbox.config.name), ("SCAN_ID", scanID), ("RUNNING", "\(running.count)"), ("THREADS", "\(threads)")])
                workers.async { [self] in
                    let outcome = job.runResumed(scanID: scanID)
                    loop.async { self.assumeIsolated { $0.jobEnded(number, outcome) } }
                }
            }
        }
    }

    /// The scans to deface as a job starts: itself, those running, those queued behind it and
    /// those settling in the inboxes (a batch dropped at once settles one file at a time);
    /// counted up to ``DaemonConfig/jobsAtOnce``, all that matters.
    func scansAtHand() -> Int {
        var count = 1 + running.count + queuedCount
        guard count < config.jobsAtOnce else { return count }
        for c in candidates.values where c.state == .settling {
            count += 1
            if count >= config.jobsAtOnce { break }
        }
        return count
    }

    func jobEnded(_ number: Int, _ outcome: JobOutcome) {
        guard let job = running.removeValue(forKey: number) else { return }
        let now = monotonicSeconds()
        if let key = job.candidateKey { candidates[key] = nil }
        if let id = outcome.scanID { slurmStates[id] = nil }
        let inbox = inboxes[job.inbox]?.config
        var f = inbox.map { fields(inbox: $0, name: outcome.originalName) } ?? []
        if let id = outcome.scanID { f.append(("SCAN_ID", id)) }
        f.append(("RESULT", outcome.result.rawValue))
        f.append(("DURATION_MS", "\(Int((now - job.startedAt) * 1000))"))
        f.append(("RUNNING", "\(running.count)"))
        if outcome.attempts > 0 { f.append(("ATTEMPT", "\(outcome.attempts)")) }
        let label = inbox?.name ?? "?"
        let scan = outcome.scanID.map { "scan \($0)" } ?? "a scan"
        switch outcome.result {
        case .done:
            doneCount += 1
            if let v = outcome.voxelsRemoved { f.append(("VOXELS_REMOVED", "\(v)")) }
            if let d = outcome.engineStartedAt, let s = outcome.settledAt { f.append(("START_DELAY_MS", String(format: "%.1f", (d - s) * 1000))) }
            if !outcome.warnings.isEmpty { f.append(("WARNINGS", outcome.warnings.joined(separator: "; "))) }
            guard let series = outcome.seriesDefaced else {
                log.log(.done, "\(scan) from inbox \(label) defaced; results in the outbox", f)
                break
            }
            let notDefaced = outcome.seriesNotDefaced ?? 0
            f += [("KIND", "dicom"), ("SERIES_DEFACED", "\(series)"), ("SERIES_NOT_DEFACED", "\(notDefaced)")]
            log.log(.done, "\(scan) (DICOM folder) from inbox \(label): \(series) series defaced; results in the outbox", f)
            if notDefaced > 0 {
                failedCount += 1
                let partial = f.map { $0.0 == "RESULT" ? ("RESULT", "partial") : $0 }
                log.log(.failed, "\(scan) (DICOM folder) from inbox \(label): \(outcome.reason ?? "")", partial + [("REASON", outcome.reason ?? "")])
            }
        case .failed, .quarantined:
            failedCount += 1
            if outcome.seriesDefaced != nil { f.append(("KIND", "dicom")) }
            f.append(("REASON", outcome.reason ?? ""))
            log.log(outcome.result == .failed ? .failed : .quarantined,
                    "\(scan) from inbox \(label) moved to failed: \(outcome.reason ?? "")", f)
        case .retry:
            f.append(("REASON", outcome.reason ?? ""))
            log.log(.retry, "\(scan) from inbox \(label): \(outcome.reason ?? "") - retrying in \(Int(config.retrySeconds)) s", f)
            scheduleResume(inbox: job.inbox, scanID: outcome.scanID)
        case .stuck:
            f.append(("REASON", outcome.reason ?? ""))
            log.log(.folderProblem, "\(scan) from inbox \(label): \(outcome.reason ?? ""); retrying in \(Int(config.retrySeconds)) s", f)
            if let id = outcome.scanID, let inbox, DropEntry(path: inbox.work + "/" + id) != nil {
                scheduleResume(inbox: job.inbox, scanID: id)
            }
        case .vanished:
            break
        case .changed:
            break
        }
        if config.reviewPage, let inbox, [.done, .failed, .quarantined].contains(outcome.result) {
            ReviewPageWriter.refresh(outbox: inbox.outbox, config: config, log: log)
        }
        // the same name may have been dropped again meanwhile
        if let key = job.candidateKey, !draining {
            note(inbox: job.inbox, name: DurableFile.fileName(of: key))
        }
        if draining && running.isEmpty {
            finishStop()
            return
        }
        startJobs()
        publishStatus()
    }

    func scheduleResume(inbox: String, scanID: String?) {
        guard let scanID else { return }
        loop.asyncAfter(deadline: .now() + config.retrySeconds) { [self] in
            self.assumeIsolated { service in
                guard !service.draining, service.inboxes[inbox] != nil, !service.queuedResumes.contains(scanID) else { return }
                service.queuedResumes.insert(scanID)
                service.queue.append(QueueItem(inbox: inbox, kind: .resume(scanID: scanID)))
                service.startJobs()
                service.publishStatus()
            }
        }
    }
}

extension DropFolderService {
    /// A scan's Slurm job was seen in a new state: logged, counted in STATUS=.
    func slurmStateChanged(scanID: String, jobID: String, state: String?) {
        slurmStates[scanID] = state.flatMap { SlurmWorker.activeStates.contains($0) ? $0 : nil }
        let words = state == "PENDING" ? "queued in Slurm" : state == "RUNNING" ? "running in Slurm" : "in Slurm: \(state ?? "no longer known")"
        log.log(.slurmJob, "scan \(scanID) \(words) (job \(jobID))",
                [("SCAN_ID", scanID), ("SLURM_JOB_ID", jobID), ("SLURM_STATE", state ?? "UNKNOWN")])
        publishStatus()
    }
}
