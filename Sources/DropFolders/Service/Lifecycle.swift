import CLinux
import DICOM
import Dispatch
import Engine
import Foundation
import Glibc

/// Start, reload (SIGHUP) and stop (SIGTERM, SIGINT), and what systemd is told at each.
extension DropFolderService {
    // MARK: start

    /// Sets watches, requeues what a previous run left in the work folders, lists every inbox,
    /// starts the timers and signal handlers, and tells systemd READY=1.
    func start() {
        watcher.start { [self] events in self.assumeIsolated { $0.handle(events) } }
        for inbox in config.inboxes { addInbox(inbox) }
        for sig in [SIGHUP, SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: loop)
            source.setEventHandler { [self] in
                self.assumeIsolated { service in
                    if sig == SIGHUP { service.reload() } else { service.stop(signal: sig) }
                }
            }
            source.resume()
            signalSources.append(source)
        }
        signal(SIGPIPE, SIG_IGN)
        startTimers()
        if let interval = notifier.watchdogInterval {
            watchdogTimer = makeTimer(every: interval) { $0.watchdogCheck() }
        }
        let n = config.inboxes.count, jobs = config.jobSlots, threads = config.threadsPerJob
        let limit = config.jobsAtOnceLimit.map { " (max_jobs \(config.maxJobs), but \($0))" } ?? ""
        log.log(.ready, "ready: watching \(n) inbox\(n == 1 ? "" : "es"), at most \(jobs) scan\(jobs == 1 ? "" : "s") at once\(limit), \(config.threadDescription)",
                [("INBOXES", config.inboxes.map(\.name).joined(separator: ",")), ("MAX_JOBS", "\(config.maxJobs)"),
                 ("THREADS_PER_JOB", "\(threads)"), ("SETTLE_SECONDS", "\(config.settleSeconds)")])
        lastStatus = statusLine()
        notifier.ready(status: lastStatus)
        checkSlurmFolders()
        startJobs()
    }

    func startTimers() {
        tickTimer?.cancel(); rescanTimer?.cancel(); pollTimer?.cancel()
        tickTimer = makeTimer(every: config.tickSeconds) { $0.tick() }
        rescanTimer = makeTimer(every: config.rescanSeconds, startAfter: config.rescanSeconds) { $0.rescanAll(reason: "periodic") }
        pollTimer = makeTimer(every: config.pollSeconds, startAfter: config.pollSeconds) { service in
            for (path, state) in service.inboxes where state.polling { service.rescan(path) }
        }
    }

    /// A repeating timer on the loop whose handler runs isolated to the service.
    func makeTimer(every seconds: Double, startAfter: Double = 0,
                   _ handler: @escaping @Sendable (isolated DropFolderService) -> Void) -> DispatchSourceTimer {
        let timer = DispatchSource.makeTimerSource(queue: loop)
        timer.schedule(deadline: .now() + startAfter, repeating: seconds, leeway: .milliseconds(20))
        timer.setEventHandler { [self] in self.assumeIsolated { handler($0) } }
        timer.resume()
        return timer
    }

    /// statfs magic numbers of file systems whose changes on other machines inotify cannot see.
    static let networkFileSystems: [Int64: String] = [
        0x6969: "NFS", 0xFF53_4D42: "CIFS", 0xFE53_4D42: "SMB2", 0x517B: "SMB", 0x6573_5546: "FUSE",
        0x00C3_6400: "Ceph", 0x5346_414F: "AFS", 0x0BD0_0BD0: "Lustre", 0x4734_5441: "GPFS", 0x0102_1997: "9P",
    ]

    /// The network file system an inbox is on (its name), or nil for a local one.
    static func networkFileSystem(of path: String) -> String? {
        networkFileSystems[dfc_filesystem_type(path)]
    }

    /// Watches an inbox (or polls it), requeues its work folder and lists it; `survey` is what a
    /// reload found in its folders off the loop (taken here when nil).
    func addInbox(_ inbox: InboxConfig, survey: InboxSurvey? = nil) {
        let network = Self.networkFileSystem(of: inbox.path)
        var state = InboxState(config: inbox, watch: nil, polling: inbox.polls(network: network))
        var how = state.polling ? "polling every \(config.pollSeconds) s" : "inotify"
        if let network, inbox.watch == .auto { how += " (\(network) delivers no inotify events)" }
        inboxes[inbox.path] = state
        if !state.polling { setWatch(inbox.path) }
        state = inboxes[inbox.path]!
        let dicom = inbox.acceptsDicom
            ? "NIfTI files and DICOM folders (complete after \(plainNumber(config.dicom.settleSeconds)) s without change, or at once with a \(DicomSettings.completeMarker) file)"
            : "NIfTI files only"
        log.log(.watching, "inbox \(inbox.name): \(how); \(dicom); outbox \(inbox.outbox), failed \(inbox.failed)",
                [("INBOX", inbox.name), ("WATCH", state.polling ? "poll" : "inotify"), ("DICOM", inbox.acceptsDicom ? "yes" : "no")])
        let survey = survey ?? Self.survey(inbox, log: log)
        logRenameTrials(inbox, survey.trials)
        recoverWork(inbox, survey.leftJobs)
        rescan(inbox.path)
    }

    /// Says which move each of the inbox's folders allows ("outbox on NFS: link+unlink"), and
    /// where none works, that scans cannot pass.
    func logRenameTrials(_ inbox: InboxConfig, _ trials: [RenameTrial]) {
        log.log(.watching, "inbox \(inbox.name): moves: " + trials.map(\.line).joined(separator: "; "),
                [("INBOX", inbox.name), ("MOVES", trials.map { "\($0.role)=\($0.method?.rawValue ?? "none")" }.joined(separator: ","))])
        for trial in trials where trial.method == nil {
            log.log(.folderProblem, "inbox \(inbox.name): \(trial.line)", [("INBOX", inbox.name), ("FOLDER", trial.folder)])
        }
    }

    func setWatch(_ path: String) {
        guard var state = inboxes[path], state.watch == nil, !state.polling, !draining else { return }
        do {
            let wd = try watcher.add(path)
            state.watch = wd
            watchToInbox[wd] = path
        } catch {
            log.log(.folderProblem, "inbox \(state.config.name): cannot watch the folder (\(error)); it is listed every \(config.rescanSeconds) s meanwhile",
                    [("INBOX", state.config.name)])
        }
        inboxes[path] = state
    }

    // MARK: reload

    /// SIGHUP: read the config again; apply it when valid, else keep the running one and say why.
    func reload() {
        guard !draining, !reloading else { return }
        reloading = true
        notifier.reloading()
        log.log(.reloading, "reloading \(config.sourcePath)")
        let path = config.sourcePath, current = verifiedEngines, models = config.models, watched = Set(inboxes.keys)
        let old = config, log = self.log
        DispatchQueue.global().async { [self] in
            var result: Result<Reloaded, any Error>
            do {
                let new = try ConfigLoader.load(path)
                let hasher = try NameHasher.load(configuredFile: new.nameHashKeyFile)
                let engines = try Self.verifyEngines(for: new, existing: current, models: models)
                // the folders of the inboxes it adds, read here rather than on the loop (on a
                // network file system each move tried can take a while); not when the reload
                // will be refused for a moved work folder
                var surveys: [String: InboxSurvey] = [:]
                if Self.movedWorkFolders(from: old, to: new).isEmpty {
                    for inbox in new.inboxes where !watched.contains(inbox.path) { surveys[inbox.path] = Self.survey(inbox, log: log) }
                }
                result = .success(Reloaded(config: new, engines: engines, hasher: hasher, surveys: surveys))
            } catch {
                result = .failure(error)
            }
            let outcome = result
            loop.async { self.assumeIsolated { $0.applyReload(outcome) } }
        }
    }

    /// A new configuration read, checked and prepared off the loop by ``reload()``.
    struct Reloaded: Sendable {
        var config: DaemonConfig
        var engines: Set<String>
        var hasher: NameHasher
        /// What the inboxes it adds hold (by path), read before they are added.
        var surveys: [String: InboxSurvey]
    }

    func applyReload(_ result: Result<Reloaded, any Error>) {
        reloading = false
        switch result {
        case .failure(let error):
            let text = "\(error)".replacingOccurrences(of: "\n", with: " ")
            log.log(.reloadFailed, "the new configuration is not valid; still running the old one: \(text)", [("REASON", text)])
        case .success(let reloaded) where !Self.movedWorkFolders(from: config, to: reloaded.config).isEmpty:
            let moved = Self.movedWorkFolders(from: config, to: reloaded.config).joined(separator: "; ")
            log.log(.reloadFailed, "the new configuration moves a work folder (\(moved)); scans claimed there would be stranded, so the reload was refused and the old configuration still runs: stop the service, move the work folder's contents, then start it",
                    [("REASON", "work folder changed: \(moved)")])
        case .success(let reloaded):
            let old = config, new = reloaded.config
            config = new
            config.sourcePath = old.sourcePath
            verifiedEngines = reloaded.engines
            nameHasher = reloaded.hasher
            applyInboxes(new.inboxes, surveys: reloaded.surveys)
            startTimers()
            let n = new.inboxes.count
            let jobs = new.jobSlots, limit = new.jobsAtOnceLimit.map { " (max_jobs \(new.maxJobs), but \($0))" } ?? ""
            log.log(.reloaded, "configuration reloaded: \(n) inbox\(n == 1 ? "" : "es"), at most \(jobs) scan\(jobs == 1 ? "" : "s") at once\(limit)",
                    [("INBOXES", new.inboxes.map(\.name).joined(separator: ",")), ("MAX_JOBS", "\(new.maxJobs)")])
        }
        lastStatus = statusLine()
        notifier.ready(status: lastStatus)
        startJobs()
        publishStatus()
    }

    /// The inboxes (kept across a reload) whose work folder the new configuration changes:
    /// "inbox main: /a/.defacer-work -> /b/work".
    static func movedWorkFolders(from old: DaemonConfig, to new: DaemonConfig) -> [String] {
        new.inboxes.compactMap { inbox in
            guard let before = old.inboxes.first(where: { $0.path == inbox.path }), before.work != inbox.work else { return nil }
            return "inbox \(inbox.name): \(before.work) -> \(inbox.work)"
        }
    }

    /// Drops the inboxes that left the configuration, updates the others, adds the new ones
    /// (with what `surveys` found in their folders).
    func applyInboxes(_ new: [InboxConfig], surveys: [String: InboxSurvey]) {
        let newPaths = Set(new.map(\.path))
        for path in inboxes.keys where !newPaths.contains(path) {
            if let wd = inboxes[path]?.watch { watcher.remove(wd); watchToInbox[wd] = nil }
            inboxes[path] = nil
            for (key, c) in candidates where c.inbox == path && c.state != .running { candidates[key] = nil }
            log.log(.watching, "inbox \(DurableFile.fileName(of: path)) removed from the configuration; no longer watched")
        }
        for inbox in new {
            guard var state = inboxes[inbox.path] else {
                addInbox(inbox, survey: surveys[inbox.path])
                continue
            }
            let wantPoll = inbox.polls(network: Self.networkFileSystem(of: inbox.path))
            if wantPoll != state.polling {
                if let wd = state.watch { watcher.remove(wd); watchToInbox[wd] = nil; state.watch = nil }
                state.polling = wantPoll
            }
            state.config = inbox
            inboxes[inbox.path] = state
            if !wantPoll { setWatch(inbox.path) }
        }
    }

    // MARK: stop

    /// SIGTERM or SIGINT: take no new scans, let the running ones finish (asking systemd for
    /// more time meanwhile), then stop. Queued scans stay in their inbox or work folder.
    /// A second signal stops at once; the running scans are then resumed at the next start.
    func stop(signal sig: Int32) {
        if draining {
            log.log(.stopped, "stopping at once (second signal); \(running.count) running scan(s) resume at the next start",
                    [("DONE", "\(doneCount)"), ("FAILED", "\(failedCount)")])
            cancelSources()
            stopped.signal()
            return
        }
        draining = true
        watcher.stop()
        rescanTimer?.cancel(); pollTimer?.cancel()
        let line = statusLine()
        lastStatus = line
        notifier.stopping(status: line)
        log.log(.stopping, "stopping (\(sig == SIGTERM ? "SIGTERM" : "SIGINT")): no new scans; waiting for \(running.count) running", [("RUNNING", "\(running.count)")])
        if running.isEmpty {
            finishStop()
            return
        }
        notifier.extendTimeout(seconds: 60)
        drainTimer = makeTimer(every: 10, startAfter: 10) { service in
            // ask for more time while the running scans are within their time limit
            if service.health() == nil { service.notifier.extendTimeout(seconds: 60) }
            service.notifier.status(service.statusLine())
        }
    }

    func finishStop() {
        log.log(.stopped, "stopped: \(doneCount) done, \(failedCount) failed since start",
                [("DONE", "\(doneCount)"), ("FAILED", "\(failedCount)")])
        notifier.status("stopped: done \(doneCount), failed \(failedCount)")
        cancelSources()
        stopped.signal()
    }

    /// Stops every timer and signal handler: nothing runs on the loop after `run()` returns
    /// but what running jobs report (they hold the service, as the handlers did).
    func cancelSources() {
        for timer in [tickTimer, rescanTimer, pollTimer, watchdogTimer, drainTimer] { timer?.cancel() }
        for source in signalSources { source.cancel() }
        watcher.stop()
    }
}
