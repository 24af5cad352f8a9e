import CLinux
import Dispatch
import Engine
import Foundation
import Glibc

/// The drop-folder service: watches the inboxes, decides when a file has settled, keeps a
/// first-in-first-out queue, runs at most `max_jobs` scans at once on worker threads, and talks
/// to systemd (READY, STATUS, WATCHDOG, RELOADING, STOPPING). All its state lives on one serial
/// Dispatch queue (`loop`); jobs run on a concurrent queue and report back to `loop`.
final class DropFolderService: @unchecked Sendable {
    /// A name in an inbox that the service is following.
    struct Candidate {
        enum State { case settling, queued, running }
        enum Parse { case unchecked, checking, ok, failed(at: Double, incomplete: Bool) }
        var inbox: String
        var name: String
        var entry: DropEntry
        var lastChange: Double
        var parse = Parse.unchecked
        var state = State.settling
        var settledAt: Double?
        /// A folder taken as a DICOM series or study (settled by `folder` snapshots).
        var isDicom = false
        var folder: FolderSnapshot?
        var lastWalk = 0.0
    }

    struct QueueItem {
        enum Kind { case fresh(name: String), resume(scanID: String) }
        var inbox: String
        var kind: Kind
    }

    struct InboxState {
        var config: InboxConfig
        var watch: Int32?
        var polling: Bool
        var problem: String?
    }

    struct RunningJob {
        var inbox: String
        var candidateKey: String?
        var scanID: String?
        var startedAt: Double
    }

    /// Names followed at once at most; more wait in the inbox for a later listing.
    static let maxTracked = 10_000

    let loop = DispatchQueue(label: "defacer.service")
    private let parseQueue = DispatchQueue(label: "defacer.settle-check")
    private let workers = DispatchQueue(label: "defacer.jobs", qos: .utility, attributes: .concurrent)
    let log: EventLog
    let notifier = ServiceNotifier()

    private(set) var config: DaemonConfig
    private var processors: [String: Defacer]
    private var watcher: InotifyWatcher!
    private var inboxes: [String: InboxState] = [:]
    private var watchToInbox: [Int32: String] = [:]
    private var candidates: [String: Candidate] = [:]
    private var queue: [QueueItem] = []
    private var queueHead = 0
    private var queuedResumes = Set<String>()
    private var running: [Int: RunningJob] = [:]
    private var nextJob = 0
    private var doneCount = 0, failedCount = 0
    private var draining = false, reloading = false
    private var pendingThreads: Int?
    private var tickTimer: DispatchSourceTimer?
    private var rescanTimer: DispatchSourceTimer?
    private var pollTimer: DispatchSourceTimer?
    private var watchdogTimer: DispatchSourceTimer?
    private var drainTimer: DispatchSourceTimer?
    private var signalSources: [DispatchSourceSignal] = []
    private var lastTick = monotonicSeconds()
    private var lastStatus = ""
    private var parseStartedAt: Double?
    private var trackingFull = false
    private var unhealthyReason: String?

    init(config: DaemonConfig, processors: [String: Defacer], log: EventLog) {
        self.config = config
        self.processors = processors
        self.log = log
    }

    /// Loads the engines a config needs, reusing those of `existing` with the same settings.
    static func loadProcessors(for config: DaemonConfig, existing: [String: Defacer] = [:], models: String? = nil)
        throws(ModelError) -> [String: Defacer]
    {
        var result: [String: Defacer] = [:]
        for inbox in config.inboxes {
            let key = inbox.defacing.engineKey
            if result[key] != nil { continue }
            if models == config.models, let old = existing[key] { result[key] = old; continue }
            result[key] = try Defacer(options: inbox.defacing.engineOptions(models: config.models))
        }
        return result
    }

    // MARK: start

    /// Sets watches, requeues what a previous run left in the work folders, lists every inbox,
    /// starts the timers and signal handlers, and tells systemd READY=1. Runs on `loop`.
    func start() throws(SystemError) {
        let queue = loop
        watcher = try InotifyWatcher(queue: queue) { [unowned self] events in self.handle(events) }
        EngineThreads.configure(threads: config.threadsPerJob)
        loop.sync {
            for inbox in config.inboxes { addInbox(inbox) }
            for sig in [SIGHUP, SIGTERM, SIGINT] {
                signal(sig, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: sig, queue: loop)
                source.setEventHandler { [unowned self] in
                    if sig == SIGHUP { self.reload() } else { self.stop(signal: sig) }
                }
                source.resume()
                signalSources.append(source)
            }
            signal(SIGPIPE, SIG_IGN)
            startTimers()
            if let interval = notifier.watchdogInterval {
                let timer = DispatchSource.makeTimerSource(queue: loop)
                timer.schedule(deadline: .now(), repeating: interval)
                timer.setEventHandler { [unowned self] in self.watchdogCheck() }
                timer.resume()
                watchdogTimer = timer
            }
            log.log(.ready, "ready: watching \(config.inboxes.count) inbox\(config.inboxes.count == 1 ? "" : "es"), at most \(config.maxJobs) scan\(config.maxJobs == 1 ? "" : "s") at once, \(config.threadsPerJob) engine thread\(config.threadsPerJob == 1 ? "" : "s") each",
                    [("INBOXES", config.inboxes.map(\.name).joined(separator: ",")), ("MAX_JOBS", "\(config.maxJobs)"),
                     ("THREADS_PER_JOB", "\(config.threadsPerJob)"), ("SETTLE_SECONDS", "\(config.settleSeconds)")])
            lastStatus = statusLine()
            notifier.ready(status: lastStatus)
            startJobs()
        }
    }

    private func startTimers() {
        tickTimer?.cancel(); rescanTimer?.cancel(); pollTimer?.cancel()
        let tick = min(1.0, max(0.1, config.settleSeconds / 5))
        tickTimer = makeTimer(every: tick) { [unowned self] in self.tick() }
        rescanTimer = makeTimer(every: config.rescanSeconds, startAfter: config.rescanSeconds) { [unowned self] in
            self.rescanAll(reason: "periodic")
        }
        pollTimer = makeTimer(every: config.pollSeconds, startAfter: config.pollSeconds) { [unowned self] in
            for (path, state) in self.inboxes where state.polling { self.rescan(path) }
        }
    }

    private func makeTimer(every seconds: Double, startAfter: Double = 0, _ handler: @escaping @Sendable () -> Void) -> DispatchSourceTimer {
        let timer = DispatchSource.makeTimerSource(queue: loop)
        timer.schedule(deadline: .now() + startAfter, repeating: seconds, leeway: .milliseconds(20))
        timer.setEventHandler(handler: handler)
        timer.resume()
        return timer
    }

    /// Watches an inbox (or polls it), requeues its work folder and lists it.
    private func addInbox(_ inbox: InboxConfig) {
        let fsType = dfc_filesystem_type(inbox.path)
        let network = Self.networkFileSystems[fsType]
        var state = InboxState(config: inbox, watch: nil, polling: inbox.watch == .poll || (inbox.watch == .auto && network != nil))
        var how = state.polling ? "polling every \(config.pollSeconds) s" : "inotify"
        if let network, inbox.watch == .auto { how += " (\(network) delivers no inotify events)" }
        inboxes[inbox.path] = state
        if !state.polling { setWatch(inbox.path) }
        state = inboxes[inbox.path]!
        let dicom = inbox.acceptsDicom
            ? "NIfTI files and DICOM folders (complete after \(fmtSeconds(config.dicom.settleSeconds)) s without change, or at once with a \(DicomSettings.completeMarker) file)"
            : "NIfTI files only"
        log.log(.watching, "inbox \(inbox.name): \(how); \(dicom); outbox \(inbox.outbox), failed \(inbox.failed)",
                [("INBOX", inbox.name), ("WATCH", state.polling ? "poll" : "inotify"), ("DICOM", inbox.acceptsDicom ? "yes" : "no")])
        recoverWork(inbox)
        rescan(inbox.path)
    }

    private func setWatch(_ path: String) {
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

    private func fmtSeconds(_ s: Double) -> String { s == s.rounded() ? String(Int(s)) : String(s) }

    /// statfs magic numbers of file systems whose changes on other machines inotify cannot see.
    static let networkFileSystems: [Int64: String] = [
        0x6969: "NFS", 0xFF53_4D42: "CIFS", 0xFE53_4D42: "SMB2", 0x517B: "SMB", 0x6573_5546: "FUSE",
        0x00C3_6400: "Ceph", 0x5346_414F: "AFS", 0x0BD0_0BD0: "Lustre", 0x4734_5441: "GPFS", 0x0102_1997: "9P",
    ]

    /// Requeues the scans a previous run left in an inbox's work folder.
    private func recoverWork(_ inbox: InboxConfig) {
        guard let names = DurableWrite.list(inbox.work) else { return }
        for name in names.sorted() where !name.hasPrefix(".") {
            let dir = inbox.work + "/" + name
            guard DropEntry(path: dir)?.kind == .directory else { continue }
            guard let record = JobRecord.read(folder: dir) else {
                let rest = (DurableWrite.list(dir) ?? []).filter { !$0.hasPrefix(".") && $0 != "out" }
                if rest.isEmpty { DurableWrite.removeTree(dir) } else {
                    log.log(.folderProblem, "work folder of inbox \(inbox.name): \(name) has no job record; left alone",
                            [("INBOX", inbox.name), ("SCAN_ID", name)])
                }
                continue
            }
            if record.phase == .claiming && DropEntry(path: dir + "/" + record.claimedName) == nil {
                DurableWrite.removeTree(dir)  // the rename never happened: the scan is still in the inbox
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

    // MARK: watching and settling

    private func handle(_ events: [InotifyWatcher.Event]) {
        guard !draining else { return }
        for event in events {
            if event.isOverflow {
                log.log(.overflow, "inotify queue overflowed: listing every inbox again")
                rescanAll(reason: "overflow")
                continue
            }
            guard let path = watchToInbox[event.watch] else { continue }
            if event.watchEnded {
                if event.mask & UInt32(IN_IGNORED) != 0 || event.mask & UInt32(IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT) != 0 {
                    watchToInbox[event.watch] = nil
                    inboxes[path]?.watch = nil
                    if let name = inboxes[path]?.config.name, DropEntry(path: path) == nil {
                        log.log(.folderProblem, "inbox \(name): the folder is gone; watching again when it returns", [("INBOX", name)])
                    }
                }
                continue
            }
            let key = path + "/" + event.name
            if event.nameLeft {
                if let c = candidates[key], c.state != .running { candidates[key] = nil }
                continue
            }
            note(inbox: path, name: event.name)
        }
        startJobs()
        publishStatus()
    }

    /// Starts following a name (or notes that it changed). Returns whether it is new.
    @discardableResult
    private func note(inbox: String, name: String) -> Bool {
        let key = inbox + "/" + name
        guard let entry = DropEntry(path: key) else { return false }
        let isDicom = entry.kind == .directory && isDicomFolder(inbox: inbox, name: name)
        guard isDicom || DropNames.isCandidate(name, kind: entry.kind) else { return false }
        let now = monotonicSeconds()
        if var c = candidates[key] {
            if c.state == .settling && c.entry != entry {
                c.entry = entry
                c.lastChange = now
                c.parse = .unchecked
                candidates[key] = c
            }
            return false
        }
        guard candidates.count < Self.maxTracked else {
            if !trackingFull {
                trackingFull = true
                log.log(.folderProblem, "more than \(Self.maxTracked) files waiting: the rest stay in the inboxes until the queue shortens")
            }
            return false
        }
        candidates[key] = Candidate(inbox: inbox, name: name, entry: entry, lastChange: now, isDicom: isDicom)
        return true
    }

    /// Whether a folder in an inbox is taken as DICOM: the inbox takes DICOM, the name is not
    /// hidden, partial or named like a NIfTI file, and it is not one of the inbox's own folders.
    private func isDicomFolder(inbox: String, name: String) -> Bool {
        guard let config = inboxes[inbox]?.config, config.acceptsDicom else { return false }
        return !DropNames.isIgnored(name) && !NiftiReader.hasNiftiExtension(name) && !config.isOwnFolder(name)
    }

    /// A DICOM folder is complete when its snapshot has not changed for `dicom_settle_seconds`
    /// (it is walked every tenth of that, at most every 5 s), or at once when it holds the
    /// marker file. An empty folder waits.
    private func settleFolder(_ key: String, now: Double) {
        guard var c = candidates[key] else { return }
        let settle = config.dicom.settleSeconds
        if c.folder != nil && now - c.lastWalk < min(5, max(0.1, settle / 10)) { return }
        c.lastWalk = now
        guard let snapshot = FolderSnapshot(path: key) else {
            candidates[key] = nil
            return
        }
        if snapshot != c.folder {
            c.folder = snapshot
            c.lastChange = now
        }
        candidates[key] = c
        guard snapshot.files > 0 else { return }
        if snapshot.hasMarker || now - c.lastChange >= settle { enqueue(key, now: now) }
    }

    private func rescanAll(reason: String) {
        for path in inboxes.keys.sorted() {
            let found = rescan(path)
            if found > 0, let state = inboxes[path], !state.polling {
                log.log(.rescan, "\(reason) listing of inbox \(state.config.name) found \(found) file\(found == 1 ? "" : "s") that inotify had not reported",
                        [("INBOX", state.config.name), ("FOUND", "\(found)"), ("TRIGGER", reason)])
            }
        }
        startJobs()
        publishStatus()
    }

    /// Lists an inbox: the listing is the truth, inotify only a hint. Returns the number of
    /// names it found that were not followed yet.
    @discardableResult
    private func rescan(_ path: String) -> Int {
        guard var state = inboxes[path], !draining else { return 0 }
        if state.watch == nil && !state.polling { setWatch(path); state = inboxes[path]! }
        guard let names = DurableWrite.list(path) else {
            let problem = "cannot list the folder: \(String(cString: strerror(errno)))"
            if state.problem != problem {
                log.log(.folderProblem, "inbox \(state.config.name): \(problem)", [("INBOX", state.config.name)])
                inboxes[path]?.problem = problem
            }
            return 0
        }
        if state.problem != nil { inboxes[path]?.problem = nil }
        let present = Set(names)
        for (key, c) in candidates where c.inbox == path && c.state != .running && !present.contains(c.name) {
            candidates[key] = nil
        }
        if candidates.count < Self.maxTracked { trackingFull = false }
        var found = 0
        for name in names.sorted() where note(inbox: path, name: name) { found += 1 }
        return found
    }

    private func tick() {
        let now = monotonicSeconds()
        lastTick = now
        let settle = config.settleSeconds
        for (key, var c) in candidates where c.state == .settling {
            if c.isDicom {
                settleFolder(key, now: now)
                continue
            }
            guard let entry = DropEntry(path: key) else {
                candidates[key] = nil
                continue
            }
            if entry != c.entry {
                c.entry = entry
                c.lastChange = now
                c.parse = .unchecked
                candidates[key] = c
                continue
            }
            let stable = now - c.lastChange
            guard stable >= settle else { continue }
            if entry.kind != .regular || DropNames.scanExtension(of: c.name) == nil {
                enqueue(key, now: now)  // not a scan: taken to failed with the reason
                continue
            }
            switch c.parse {
            case .unchecked:
                c.parse = .checking
                candidates[key] = c
                checkParses(key: key, entry: entry, maxVoxels: inboxes[c.inbox]?.config.defacing.maxVoxels ?? NiftiReader.defaultMaxVoxels)
            case .checking:
                break
            case .ok:
                enqueue(key, now: now)
            case .failed(_, let incomplete):
                // a file that still does not parse after another settle period is taken (and fails with the reason)
                if !incomplete || stable >= 2 * settle { enqueue(key, now: now) }
            }
        }
        startJobs()
        publishStatus()
    }

    /// Reads the whole file once (off the loop, one at a time): a file that is still being
    /// written, or cut off, does not parse to its end.
    private func checkParses(key: String, entry: DropEntry, maxVoxels: Int64) {
        parseQueue.async { [self] in
            loop.sync { parseStartedAt = monotonicSeconds() }
            var problem: NiftiError?
            do { _ = try NiftiReader(maxVoxels: maxVoxels).read(key) } catch let e as NiftiError { problem = e } catch {}
            let after = DropEntry(path: key)
            let parseProblem = problem
            loop.async { [self] in
                parseStartedAt = nil
                guard var c = candidates[key], c.state == .settling, case .checking = c.parse else { return }
                let now = monotonicSeconds()
                if after != entry || c.entry != entry {
                    c.parse = .unchecked
                    c.lastChange = now
                    if let after { c.entry = after }
                    candidates[key] = c
                    return
                }
                if let parseProblem {
                    var incomplete = false
                    switch parseProblem.code {
                    case .truncated, .corruptCompression, .emptyFile, .notNifti, .permissionDenied: incomplete = true
                    default: break
                    }
                    c.parse = .failed(at: now, incomplete: incomplete)
                    candidates[key] = c
                } else {
                    c.parse = .ok
                    candidates[key] = c
                    enqueue(key, now: now)
                    startJobs()
                    publishStatus()
                }
            }
        }
    }

    private func enqueue(_ key: String, now: Double) {
        guard var c = candidates[key] else { return }
        c.state = .queued
        c.settledAt = now
        candidates[key] = c
        queue.append(QueueItem(inbox: c.inbox, kind: .fresh(name: c.name)))
    }

    // MARK: jobs

    private var queuedCount: Int { queue.count - queueHead }

    private func startJobs() {
        while !draining && !reloading && running.count < config.maxJobs && queueHead < queue.count {
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
            if running.isEmpty, let threads = pendingThreads {
                EngineThreads.configure(threads: threads)
                pendingThreads = nil
            }
            guard let processor = processors[inbox.config.defacing.engineKey] else { continue }
            let context = JobContext(inbox: inbox.config, processor: processor, crashLimit: config.crashLimit,
                                     writeRetries: config.writeRetries, log: log, dicom: config.dicom)
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
                log.log(.jobStarted, "taking a scan from inbox \(inbox.config.name) (\(running.count) running)",
                        fields(inbox: inbox.config, name: name) + [("RUNNING", "\(running.count)"),
                                                                   ("QUEUE_WAIT_MS", "\(Int(waited * 1000))")])
                let settledAt = c.settledAt ?? now
                let folder = c.isDicom ? c.folder : nil
                workers.async { [self] in
                    var outcome = folder.map { DicomJob(context: context).runFresh(name: name, settled: $0) }
                        ?? job.runFresh(name: name, settled: settled)
                    outcome.settledAt = settledAt
                    let finished = outcome
                    loop.async { self.jobEnded(number, finished) }
                }
            case .resume(let scanID):
                queuedResumes.remove(scanID)
                running[number] = RunningJob(inbox: item.inbox, scanID: scanID, startedAt: now)
                log.log(.jobStarted, "resuming scan \(scanID) in inbox \(inbox.config.name) (\(running.count) running)",
                        [("INBOX", inbox.config.name), ("SCAN_ID", scanID), ("RUNNING", "\(running.count)")])
                workers.async { [self] in
                    let outcome = job.runResumed(scanID: scanID)
                    loop.async { self.jobEnded(number, outcome) }
                }
            }
        }
    }

    private func jobEnded(_ number: Int, _ outcome: JobOutcome) {
        guard let job = running.removeValue(forKey: number) else { return }
        let now = monotonicSeconds()
        if let key = job.candidateKey { candidates[key] = nil }
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

    private func scheduleResume(inbox: String, scanID: String?) {
        guard let scanID else { return }
        loop.asyncAfter(deadline: .now() + config.retrySeconds) { [self] in
            guard !draining, inboxes[inbox] != nil, !queuedResumes.contains(scanID) else { return }
            queuedResumes.insert(scanID)
            queue.append(QueueItem(inbox: inbox, kind: .resume(scanID: scanID)))
            startJobs()
            publishStatus()
        }
    }

    private func fields(inbox: InboxConfig, name: String) -> [(String, String)] {
        var f: [(String, String)] = [("INBOX", inbox.name), ("NAME_HASH", DropNames.nameHash(name))]
        if config.logFileNames { f.append(("FILE_NAME", name)) }
        return f
    }

    // MARK: status and health

    func statusLine() -> String {
        let settling = candidates.values.filter { $0.state == .settling }.count
        var line = "queued \(queuedCount), running \(running.count), done \(doneCount), failed \(failedCount)"
        if settling > 0 { line += ", settling \(settling)" }
        let problems = inboxes.values.filter { $0.problem != nil }.map(\.config.name).sorted()
        if !problems.isEmpty { line += "; unavailable: " + problems.joined(separator: ", ") }
        if draining { line = "stopping, waiting for \(running.count) running scan\(running.count == 1 ? "" : "s"); " + line }
        return line
    }

    private func publishStatus() {
        let line = statusLine()
        guard line != lastStatus else { return }
        lastStatus = line
        notifier.status(line)
    }

    /// The health check behind WATCHDOG=1: the loop turns (this runs on it), its timer
    /// fires, no scan has been defaced for longer than `job_timeout_seconds`, and no settle
    /// check hangs.
    func health() -> String? {
        let now = monotonicSeconds()
        let tick = min(1.0, max(0.1, config.settleSeconds / 5))
        if now - lastTick > max(10, 10 * tick) { return "the settle timer has not fired for \(Int(now - lastTick)) s" }
        if let oldest = running.values.map(\.startedAt).min(), now - oldest > config.jobTimeoutSeconds {
            return "a scan has been running for \(Int(now - oldest)) s, longer than job_timeout_seconds (\(Int(config.jobTimeoutSeconds)))"
        }
        if let started = parseStartedAt, now - started > 600 {
            return "checking a new file has taken \(Int(now - started)) s"
        }
        return nil
    }

    private func watchdogCheck() {
        if let problem = health() {
            if unhealthyReason != problem {
                unhealthyReason = problem
                log.log(.unhealthy, "health check failed: \(problem); no watchdog ping, so systemd will restart the service")
            }
            return
        }
        unhealthyReason = nil
        notifier.watchdog()
    }

    // MARK: reload and stop

    /// SIGHUP: read the config again; apply it when valid, else keep the running one and say why.
    private func reload() {
        guard !draining, !reloading else { return }
        reloading = true
        notifier.reloading()
        log.log(.reloading, "reloading \(config.sourcePath)")
        let path = config.sourcePath, current = processors, models = config.models
        DispatchQueue.global().async { [self] in
            var result: Result<(DaemonConfig, [String: Defacer]), any Error>
            do {
                let new = try ConfigLoader.load(path)
                let engines = try Self.loadProcessors(for: new, existing: current, models: models)
                result = .success((new, engines))
            } catch {
                result = .failure(error)
            }
            let outcome = result
            loop.async { [self] in self.applyReload(outcome) }
        }
    }

    private func applyReload(_ result: Result<(DaemonConfig, [String: Defacer]), any Error>) {
        reloading = false
        switch result {
        case .failure(let error):
            let text = "\(error)".replacingOccurrences(of: "\n", with: " ")
            log.log(.reloadFailed, "the new configuration is not valid; still running the old one: \(text)", [("REASON", text)])
        case .success(let (new, engines)):
            let old = config
            config = new
            config.sourcePath = old.sourcePath
            processors = engines
            let newPaths = Set(new.inboxes.map(\.path))
            for path in inboxes.keys where !newPaths.contains(path) {
                if let wd = inboxes[path]?.watch { watcher.remove(wd); watchToInbox[wd] = nil }
                inboxes[path] = nil
                for (key, c) in candidates where c.inbox == path && c.state != .running { candidates[key] = nil }
                log.log(.watching, "inbox \(DurableFile.fileName(of: path)) removed from the configuration; no longer watched")
            }
            for inbox in new.inboxes {
                if var state = inboxes[inbox.path] {
                    let wantPoll = inbox.watch == .poll || (inbox.watch == .auto && Self.networkFileSystems[dfc_filesystem_type(inbox.path)] != nil)
                    if wantPoll != state.polling {
                        if let wd = state.watch { watcher.remove(wd); watchToInbox[wd] = nil; state.watch = nil }
                        state.polling = wantPoll
                    }
                    state.config = inbox
                    inboxes[inbox.path] = state
                    if !wantPoll { setWatch(inbox.path) }
                } else {
                    addInbox(inbox)
                }
            }
            if new.threadsPerJob != old.threadsPerJob { pendingThreads = new.threadsPerJob }
            startTimers()
            log.log(.reloaded, "configuration reloaded: \(new.inboxes.count) inbox\(new.inboxes.count == 1 ? "" : "es"), at most \(new.maxJobs) scan\(new.maxJobs == 1 ? "" : "s") at once",
                    [("INBOXES", new.inboxes.map(\.name).joined(separator: ",")), ("MAX_JOBS", "\(new.maxJobs)")])
        }
        lastStatus = statusLine()
        notifier.ready(status: lastStatus)
        startJobs()
        publishStatus()
    }

    /// SIGTERM or SIGINT: take no new scans, let the running ones finish (asking systemd for
    /// more time meanwhile), then exit. Queued scans stay in their inbox or work folder.
    /// A second signal stops at once; the running scans are then resumed at the next start.
    private func stop(signal sig: Int32) {
        if draining {
            log.log(.stopped, "stopping at once (second signal); \(running.count) running scan(s) resume at the next start",
                    [("DONE", "\(doneCount)"), ("FAILED", "\(failedCount)")])
            exit(0)
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
        let timer = DispatchSource.makeTimerSource(queue: loop)
        timer.schedule(deadline: .now() + 10, repeating: 10)
        timer.setEventHandler { [unowned self] in
            // ask for more time while the running scans are within their time limit
            if self.health() == nil { self.notifier.extendTimeout(seconds: 60) }
            self.notifier.status(self.statusLine())
        }
        timer.resume()
        drainTimer = timer
    }

    private func finishStop() {
        log.log(.stopped, "stopped: \(doneCount) done, \(failedCount) failed since start",
                [("DONE", "\(doneCount)"), ("FAILED", "\(failedCount)")])
        notifier.status("stopped: done \(doneCount), failed \(failedCount)")
        exit(0)
    }
}
