import DICOM
import Engine
import Foundation

/// The drop-folder service's settings, read from a TOML file (see `etc/defacer.toml`, which
/// documents every key with its default). Relative paths are resolved against `root`, which
/// itself defaults to the config file's folder.
package struct DaemonConfig: Sendable, Equatable {
    /// Scans defaced at once. Each job gets the cores divided by the scans at hand, at most
    /// `max_jobs` (``threadsPerJob(scansAtHand:)``).
    package var maxJobs = 2
    /// A file must keep its size, mtime and inode this long (and parse) before it is taken.
    package var settleSeconds = 5.0
    /// Full listing of every inbox, besides inotify, this often.
    package var rescanSeconds = 60.0
    /// Listing interval for inboxes that inotify cannot see (NFS, CIFS, FUSE) or `watch = "poll"`.
    package var pollSeconds = 5.0
    /// Folder holding the converted models (`hdbet/`).
    package var models: String
    /// Log file names; otherwise only a short hash of each name (file names can carry patient names).
    package var logFileNames = false
    /// The secret key of the logged name hashes (`NAME_HASH`); nil: `name-hash.key` in the
    /// service's state folder, made on first start (see `NameHasher`).
    package var nameHashKeyFile: String?
    /// A scan that stopped the service this many times while being defaced goes to `failed`.
    package var crashLimit = 2
    /// A scan still being defaced after this long makes the health check fail (systemd's
    /// watchdog then restarts the service, and the crash count sets the scan aside).
    package var jobTimeoutSeconds = 3600.0
    /// The memory limit of each scan's worker process (setrlimit RLIMIT_DATA), in MiB; nil: sized
    /// from the scan (`WorkerLaunch.memoryLimitMB`).
    package var memoryPerJobMB: Int?
    /// Where scans are defaced: worker processes here, or Slurm jobs (`executor`).
    package var executor = Executor.local
    package var slurm = SlurmSettings()
    /// After an output could not be written (disk full, permissions), retry the scan this much later.
    package var retrySeconds = 60.0
    /// Write failures tolerated before the scan goes to `failed`.
    package var writeRetries = 5
    /// Keep `review.html` (see `defacer review`) current in each outbox, rewritten after each scan.
    package var reviewPage = false
    /// How dropped DICOM folders are settled and converted.
    package var dicom = DicomSettings()
    /// The inboxes, in file order.
    package var inboxes: [InboxConfig] = []
    /// The file this was read from (absolute).
    package var sourcePath = ""

    package init(models: String) {
        self.models = models
    }

    /// How often the service checks what is settling: a fifth of `settle_seconds`, 0.1 to 1 s.
    package var tickSeconds: Double { min(1.0, max(0.1, settleSeconds / 5)) }

    /// Scans defaced at once: ``jobsAtOnce`` here, `slurm_max_running` on Slurm.
    package var jobSlots: Int { executor == .slurm ? slurm.maxRunning : jobsAtOnce }

    /// `max_jobs`, or fewer where this machine's memory would not hold them (``jobsMemoryAllows(physicalMiB:perJobMiB:)``).
    package var jobsAtOnce: Int {
        min(maxJobs, Self.jobsMemoryAllows(physicalMiB: Self.machineMemoryMiB, perJobMiB: memoryPerJobMB))
    }

    /// This machine's memory, MiB (read once: the job queue asks at every job it starts).
    static let machineMemoryMiB = Int(ProcessInfo.processInfo.physicalMemory >> 20)

    /// The scans a machine with `physicalMiB` of memory can deface at once: 1.5 GiB each (or
    /// `memory_per_job_mb` when set; a whole head in fast mode peaked at 1.1 GiB) beside 0.5 GiB
    /// for the system, and always at least one.
    package static func jobsMemoryAllows(physicalMiB: Int, perJobMiB: Int? = nil) -> Int {
        max(1, (physicalMiB - 512) / max(1, perJobMiB ?? 1536))
    }

    /// Why fewer than `max_jobs` run at once, or nil: "this machine's 3.0 GiB of memory allows 1".
    package var jobsAtOnceLimit: String? {
        guard executor == .local, jobsAtOnce < maxJobs else { return nil }
        return String(format: "this machine's %.1f GiB of memory allows %d", Double(Self.machineMemoryMiB) / 1024, jobsAtOnce)
    }

    /// Engine threads per job when ``jobsAtOnce`` scans run at once: jobs x threads never exceeds the cores.
    package var threadsPerJob: Int { threadsPerJob(scansAtHand: jobsAtOnce) }

    /// How the cores are shared, in words: "2 engine threads for a scan alone, 1 each when 2 run at once".
    package var threadDescription: String {
        let alone = threadsPerJob(scansAtHand: 1), shared = threadsPerJob
        func threads(_ n: Int) -> String { "\(n) engine thread\(n == 1 ? "" : "s")" }
        return alone == shared ? "\(threads(shared)) per scan" : "\(threads(alone)) for a scan alone, \(shared) each when \(jobsAtOnce) run at once"
    }

    /// Engine threads for a job that starts while `scansAtHand` scans (itself, those running
    /// and those queued or settling in the inboxes) are to be defaced: the cores divided by as
    /// many of them as run at once, so a scan dropped alone gets every core and a batch gets
    /// `max_jobs` jobs that share them (on Slurm, always `cores / max_jobs`, as submitted).
    package func threadsPerJob(scansAtHand: Int) -> Int {
        let atOnce = executor == .slurm ? maxJobs : min(jobsAtOnce, max(1, scansAtHand))
        return max(1, ProcessInfo.processInfo.activeProcessorCount / atOnce)
    }
}

/// How scans of an inbox are defaced, and which outputs are written.
package struct DefacingSettings: Sendable, Hashable, Codable {
    package var mode: BrainExtractor.Mode = .fast
    package var marginMM = DefaceOptions.defaultMarginMM
    package var removeEars = true
    package var outputs: Set<OutputKind> = [.defaced, .faceMask, .qcPicture, .report]
    package var maxVoxels: Int64 = NiftiReader.defaultMaxVoxels
    /// Where the face and ears come from (`method`, `model`, `remove_labels`).
    package var method: DefaceMethod = .builtin

    /// The engine options for these settings, on `threads` workers (outputs are the daemon's business).
    package func engineOptions(models: String, threads: Int) -> DefaceOptions {
        var options = DefaceOptions(modelFolder: models + "/hdbet", mode: mode, marginMM: marginMM, removeEars: removeEars,
                                    maxVoxels: maxVoxels, threads: threads)
        options.method = method
        return options
    }

    /// Settings that need their own loaded `Defacer` (outputs do not).
    package var engineKey: String { "\(mode.rawValue)|\(marginMM)|\(removeEars)|\(maxVoxels)|\(method)" }
}

/// How an inbox is watched.
package enum WatchMode: String, Sendable, Equatable, Codable {
    /// inotify, unless the folder is on a network file system (then polling).
    case auto
    case inotify
    case poll
}

/// One `[[inbox]]` table.
package struct InboxConfig: Sendable, Equatable, Codable {
    /// A short label for logs and STATUS (default: the inbox folder's name).
    package var name: String
    /// The drop folder.
    package var path: String
    /// Where defaced scans and their masks, pictures and reports appear.
    package var outbox: String
    /// Where scans that cannot be defaced go, each with `<name>.reason.json`.
    package var failed: String
    /// Claimed scans while they are defaced; same file system as the inbox.
    package var work: String
    /// When set, originals are moved here after their outputs are in the outbox (else removed).
    package var archive: String?
    package var watch: WatchMode = .auto
    package var defacing: DefacingSettings
    /// Folders dropped here are taken as DICOM series or studies (converted with dcm2niix).
    package var acceptsDicom = true
    /// This inbox's `memory_per_job_mb` (else the global one, else sized from the scan).
    package var memoryPerJobMB: Int?

    /// Whether this inbox is listed every `poll_seconds` rather than watched with inotify:
    /// when asked to, or (`auto`) when it is on a network file system (`network`, its name).
    package func polls(network: String?) -> Bool {
        watch == .poll || (watch == .auto && network != nil)
    }

    /// Whether `name` in this inbox is one of the inbox's own folders (work, outbox...), which
    /// are never taken as dropped folders.
    package func isOwnFolder(_ name: String) -> Bool {
        let path = self.path + "/" + name
        return [outbox, failed, work, archive].contains(path)
    }
}

// the worker's settings file (`WorkerSpec`) carries an inbox's settings to the child process
extension BrainExtractor.Mode: Codable {}
extension OutputKind: Codable {}

/// `5` for 5.0, `0.5` for 0.5: numbers in messages as a config file would have them.
package func plainNumber(_ v: Double) -> String { v == v.rounded() ? String(Int(v)) : String(v) }
