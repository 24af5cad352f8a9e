import CLinux
import DICOM
import Dispatch
import Engine
import Foundation

/// The drop-folder service: watches the inboxes, decides when a file has settled
/// (`Settling.swift`), keeps a first-in-first-out queue and runs at most `max_jobs` scans at
/// once on worker threads (`JobQueue.swift`), requeues what an earlier run left behind
/// (`RestartRecovery.swift`), and talks to systemd through start, reload and stop
/// (`Lifecycle.swift`). An actor on the `loop` queue: Dispatch handlers on that queue enter
/// it with `assumeIsolated`; jobs run on a concurrent queue and report back to `loop`.
package actor DropFolderService {
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
        /// When its last walk ended (monotonic seconds).
        var lastWalk = 0.0
        /// The walk under way (its number), nil when none is.
        var walk: Int?
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

    nonisolated let executor: LoopExecutor
    nonisolated var loop: DispatchQueue { executor.queue }
    package nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    nonisolated let parseQueue = DispatchQueue(label: "defacer.settle-check")
    /// DICOM folder walks (`settleFolder`), one at a time, off the loop.
    nonisolated let walkQueue = DispatchQueue(label: "defacer.folder-walk", qos: .utility)
    nonisolated let workers = DispatchQueue(label: "defacer.jobs", qos: .utility, attributes: .concurrent)
    nonisolated let log: EventLog
    nonisolated let notifier = ServiceNotifier()
    let watcher: InotifyWatcher
    /// Signalled when the service has stopped: `run()` then returns.
    nonisolated let stopped = DispatchSemaphore(value: 0)

    var config: DaemonConfig
    /// Keyed hashes of file names for the log (`NAME_HASH`).
    var nameHasher: NameHasher
    /// The engine settings (`DefacingSettings.engineKey`) whose models were loaded and checked at
    /// start or reload; the models themselves are loaded by each scan's worker, not kept here.
    var verifiedEngines: Set<String>
    var inboxes: [String: InboxState] = [:]
    var watchToInbox: [Int32: String] = [:]
    var candidates: [String: Candidate] = [:]
    var queue: [QueueItem] = []
    var queueHead = 0
    var queuedResumes = Set<String>()
    var running: [Int: RunningJob] = [:]
    /// With `executor = "slurm"`: the state of each running scan's Slurm job, by scan id.
    var slurmStates: [String: String] = [:]
    var nextJob = 0
    var doneCount = 0, failedCount = 0
    var draining = false, reloading = false
    var tickTimer: DispatchSourceTimer?
    var rescanTimer: DispatchSourceTimer?
    var pollTimer: DispatchSourceTimer?
    var watchdogTimer: DispatchSourceTimer?
    var drainTimer: DispatchSourceTimer?
    var signalSources: [DispatchSourceSignal] = []
    var lastTick = monotonicSeconds()
    var lastStatus = ""
    var parseStartedAt: Double?
    var walkStartedAt: Double?
    var nextWalk = 0
    var trackingFull = false
    var unhealthyReason: String?

    /// Opens inotify; nothing is watched or started until `run()`.
    package init(config: DaemonConfig, verifiedEngines: Set<String>, nameHasher: NameHasher, log: EventLog) throws(SystemError) {
        self.config = config
        self.nameHasher = nameHasher
        self.verifiedEngines = verifiedEngines
        self.log = log
        let executor = LoopExecutor(label: "defacer.service")
        self.executor = executor
        watcher = try InotifyWatcher(queue: executor.queue)
    }

    /// Loads every engine a config needs once, to check its models (a missing or damaged weights
    /// file stops start-up or a reload with the reason), and lets it go: workers load their own,
    /// so the service does not hold the networks' memory. Keys in `existing` are not checked
    /// again while the models folder is the same.
    package static func verifyEngines(for config: DaemonConfig, existing: Set<String> = [], models: String? = nil)
        throws(ModelError) -> Set<String>
    {
        var result: Set<String> = []
        for inbox in config.inboxes {
            let key = inbox.defacing.engineKey
            if result.contains(key) { continue }
            if models != config.models || !existing.contains(key) {
                _ = try Defacer(options: inbox.defacing.engineOptions(models: config.models, threads: 1))
            }
            result.insert(key)
        }
        _ = dfc_release_free_memory()  // hand the freed weights back to the system, not to the heap's free lists
        return result
    }

    /// Starts the service (see `start()`) and returns once it has stopped after SIGTERM or SIGINT.
    package nonisolated func run() {
        loop.sync { self.assumeIsolated { $0.start() } }
        stopped.wait()
    }

    /// The log fields naming a scan: its inbox and a keyed hash of its name (the name itself only
    /// when `log_file_names` is set).
    func fields(inbox: InboxConfig, name: String) -> [(String, String)] {
        var f: [(String, String)] = [("INBOX", inbox.name), ("NAME_HASH", nameHasher.hash(name))]
        if config.logFileNames { f.append(("FILE_NAME", name)) }
        return f
    }

    // MARK: status and health

    func statusLine() -> String {
        let settling = candidates.values.filter { $0.state == .settling }.count
        var line = "queued \(queuedCount), running \(running.count), done \(doneCount), failed \(failedCount)"
        if settling > 0 { line += ", settling \(settling)" }
        if config.executor == .slurm {
            let pending = slurmStates.values.filter { $0 == "PENDING" }.count
            line += "; in Slurm: queued \(pending), running \(slurmStates.count - pending)"
        }
        let problems = inboxes.values.filter { $0.problem != nil }.map(\.config.name).sorted()
        if !problems.isEmpty { line += "; unavailable: " + problems.joined(separator: ", ") }
        if draining { line = "stopping, waiting for \(running.count) running scan\(running.count == 1 ? "" : "s"); " + line }
        return line
    }

    func publishStatus() {
        let line = statusLine()
        guard line != lastStatus else { return }
        lastStatus = line
        notifier.status(line)
    }

    /// The health check behind WATCHDOG=1: the loop turns (this runs on it), its timer
    /// fires, no job outlives `job_timeout_seconds` by more than 10 minutes (its worker is
    /// killed at the limit; a job still running long after has hung in the service itself), and
    /// no settle check hangs.
    func health() -> String? {
        let now = monotonicSeconds()
        if now - lastTick > max(10, 10 * config.tickSeconds) { return "the settle timer has not fired for \(Int(now - lastTick)) s" }
        // (a Slurm job may wait in the cluster's queue for as long as the cluster likes)
        if config.executor == .local, let oldest = running.values.map(\.startedAt).min(), now - oldest > config.jobTimeoutSeconds + 600 {
            return "a scan has been running for \(Int(now - oldest)) s, 10 minutes past job_timeout_seconds (\(Int(config.jobTimeoutSeconds))) when its worker was stopped"
        }
        if let started = parseStartedAt, now - started > 600 {
            return "checking a new file has taken \(Int(now - started)) s"
        }
        if let started = walkStartedAt, now - started > 600 {
            return "looking through a new DICOM folder has taken \(Int(now - started)) s"
        }
        return nil
    }

    func watchdogCheck() {
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
}
