import Engine
import Foundation

/// The drop-folder service's settings, read from a TOML file (see `etc/defacer.toml`, which
/// documents every key with its default). Relative paths are resolved against `root`, which
/// itself defaults to the config file's folder.
struct DaemonConfig: Sendable, Equatable {
    /// Scans defaced at once. Each job gets `cores / max_jobs` engine threads.
    var maxJobs = 1
    /// A file must keep its size, mtime and inode this long (and parse) before it is taken.
    var settleSeconds = 5.0
    /// Full listing of every inbox, besides inotify, this often.
    var rescanSeconds = 60.0
    /// Listing interval for inboxes that inotify cannot see (NFS, CIFS, FUSE) or `watch = "poll"`.
    var pollSeconds = 5.0
    /// Folder holding the converted models (`hdbet/`).
    var models: String
    /// Log file names; otherwise only a short hash of each name (file names can carry patient names).
    var logFileNames = false
    /// A scan that stopped the service this many times while being defaced goes to `failed`.
    var crashLimit = 2
    /// A scan still being defaced after this long makes the health check fail (systemd's
    /// watchdog then restarts the service, and the crash count sets the scan aside).
    var jobTimeoutSeconds = 3600.0
    /// After an output could not be written (disk full, permissions), retry the scan this much later.
    var retrySeconds = 60.0
    /// Write failures tolerated before the scan goes to `failed`.
    var writeRetries = 5
    /// How dropped DICOM folders are settled and converted.
    var dicom = DicomSettings()
    /// The inboxes, in file order.
    var inboxes: [InboxConfig] = []
    /// The file this was read from (absolute).
    var sourcePath = ""

    init(models: String) {
        self.models = models
    }

    /// Engine threads per job so that jobs x threads never exceeds the cores.
    var threadsPerJob: Int {
        max(1, ProcessInfo.processInfo.activeProcessorCount / maxJobs)
    }
}

/// How scans of an inbox are defaced, and which outputs are written.
struct DefacingSettings: Sendable, Hashable {
    var mode: BrainExtractor.Mode = .fast
    var marginMM = DefaceOptions.defaultMarginMM
    var removeEars = true
    var outputs: Set<OutputKind> = [.defaced, .faceMask, .qcPicture, .report]
    var maxVoxels: Int64 = NiftiReader.defaultMaxVoxels

    /// The engine options for these settings (outputs are the daemon's business).
    func engineOptions(models: String) -> DefaceOptions {
        var options = DefaceOptions(modelFolder: models + "/hdbet")
        options.mode = mode
        options.marginMM = marginMM
        options.removeEars = removeEars
        options.maxVoxels = maxVoxels
        return options
    }

    /// Settings that need their own loaded `Defacer` (outputs do not).
    var engineKey: String { "\(mode.rawValue)|\(marginMM)|\(removeEars)|\(maxVoxels)" }
}

/// One output of a defaced scan, named `<stem><suffix>` in the outbox.
enum OutputKind: String, Sendable, Hashable, CaseIterable {
    case defaced = "defaced"
    case faceMask = "face_mask"
    case brainMask = "brain_mask"
    case qcPicture = "qc_picture"
    case report = "report"
}

/// How an inbox is watched.
enum WatchMode: String, Sendable, Equatable {
    /// inotify, unless the folder is on a network file system (then polling).
    case auto
    case inotify
    case poll
}

/// One `[[inbox]]` table.
struct InboxConfig: Sendable, Equatable {
    /// A short label for logs and STATUS (default: the inbox folder's name).
    var name: String
    /// The drop folder.
    var path: String
    /// Where defaced scans and their masks, pictures and reports appear.
    var outbox: String
    /// Where scans that cannot be defaced go, each with `<name>.reason.json`.
    var failed: String
    /// Claimed scans while they are defaced; same file system as the inbox.
    var work: String
    /// When set, originals are moved here after their outputs are in the outbox (else removed).
    var archive: String?
    var watch: WatchMode = .auto
    var defacing: DefacingSettings
    /// Folders dropped here are taken as DICOM series or studies (converted with dcm2niix).
    var acceptsDicom = true

    /// Whether `name` in this inbox is one of the inbox's own folders (work, outbox...), which
    /// are never taken as dropped folders.
    func isOwnFolder(_ name: String) -> Bool {
        let path = self.path + "/" + name
        return [outbox, failed, work, archive].contains(path)
    }
}
