import DICOM
import Engine
import Foundation
import Glibc
import TOMLKit

/// One thing wrong with a config file: the key (e.g. `inbox[2].outbox`) and what to do about it.
package struct ConfigIssue: Sendable, Equatable, CustomStringConvertible {
    package var key: String
    package var message: String
    package var description: String { key.isEmpty ? message : "\(key): \(message)" }
}

/// Reading a config file failed; `issues` says every problem found, not only the first.
package struct ConfigError: Error, Sendable, CustomStringConvertible {
    package var file: String
    package var issues: [ConfigIssue]
    package var description: String {
        "\(file): \(issues.count == 1 ? "1 problem" : "\(issues.count) problems"):\n"
            + issues.map { "  - \($0)" }.joined(separator: "\n")
    }
}

/// Reads and checks a TOML config: syntax, every key's type and range, unknown keys, and the
/// folders (present, writable, all of an inbox's folders on one file system, none shared).
package enum ConfigLoader {
    package static let globalKeys = ["root", "max_jobs", "settle_seconds", "rescan_seconds", "poll_seconds", "models",
                             "log_file_names", "name_hash_key_file", "crash_limit", "job_timeout_seconds", "retry_seconds",
                             "write_retries", "memory_per_job_mb", "executor", "slurm_partition", "slurm_time_limit_minutes",
                             "slurm_mem_per_job_mb", "slurm_max_running", "dicom_settle_seconds", "dcm2niix", "dicom_timeout_seconds",
                             "dicom_keep_acquisition_times", "review_page", "defacing", "inbox"]
    package static let defacingKeys = ["mode", "margin_mm", "remove_ears", "outputs", "max_voxels",
                                       "method", "model", "remove_labels"]
    package static let inboxKeys = ["name", "path", "outbox", "failed", "work", "archive", "watch", "dicom", "defacing",
                                    "memory_per_job_mb"]

    /// Parses, validates and checks the folders of `file`.
    package static func load(_ file: String, checkFolders: Bool = true) throws(ConfigError) -> DaemonConfig {
        let absolute = file.hasPrefix("/") ? file : FileManager.default.currentDirectoryPath + "/" + file
        guard let data = FileManager.default.contents(atPath: absolute) else {
            throw ConfigError(file: file, issues: [ConfigIssue(key: "", message: access(absolute, F_OK) == 0
                ? "the file cannot be read (check its permissions)" : "the file does not exist")])
        }
        let text = String(decoding: data, as: UTF8.self)
        let table: TOMLTable
        do { table = try TOMLTable(string: text) } catch let error as TOMLParseError {
            throw ConfigError(file: file, issues: [ConfigIssue(key: "",
                message: "not valid TOML at line \(error.source.begin.line), column \(error.source.begin.column): \(error.description)")])
        } catch {
            throw ConfigError(file: file, issues: [ConfigIssue(key: "", message: "not valid TOML: \(error)")])
        }
        var reader = Reader()
        var config = reader.read(table, configFolder: DurableFile.directory(of: absolute))
        config.sourcePath = absolute
        var issues = reader.issues
        if issues.isEmpty && checkFolders { issues += FolderCheck.check(config) }
        if !issues.isEmpty { throw ConfigError(file: file, issues: issues) }
        return config
    }

    /// Walks the TOML tables, collecting every problem.
    package struct Reader {
        package var issues: [ConfigIssue] = []
        /// The folder relative paths are resolved against (set by `read`).
        package var root = ""

        package mutating func problem(_ key: String, _ message: String) {
            issues.append(ConfigIssue(key: key, message: message))
        }

        package mutating func unknownKeys(_ table: TOMLTable, known: [String], prefix: String) {
            for key in table.keys where !known.contains(key) {
                let near = known.min { editDistance($0, key) < editDistance($1, key) }.flatMap { editDistance($0, key) <= 3 ? $0 : nil }
                problem(prefix + key, "unknown key" + (near.map { " (did you mean \($0)?)" } ?? "")
                        + "; known keys here: " + known.joined(separator: ", "))
            }
        }

        package mutating func int(_ table: TOMLTable, _ key: String, prefix: String, range: ClosedRange<Int>, default value: Int) -> Int {
            guard let raw = table[key] else { return value }
            guard let v = raw.int else {
                problem(prefix + key, "must be a whole number from \(range.lowerBound) to \(range.upperBound), not \(raw.debugDescription)")
                return value
            }
            guard range.contains(v) else {
                problem(prefix + key, "must be from \(range.lowerBound) to \(range.upperBound), not \(v)")
                return value
            }
            return v
        }

        // Deliberately alike `int(...)`: one reader per TOML type, each with its own wording.
        package mutating func double(_ table: TOMLTable, _ key: String, prefix: String, range: ClosedRange<Double>, default value: Double) -> Double {
            guard let raw = table[key] else { return value }
            guard let v = raw.double ?? raw.int.map(Double.init) else {
                problem(prefix + key, "must be a number from \(plainNumber(range.lowerBound)) to \(plainNumber(range.upperBound)), not \(raw.debugDescription)")
                return value
            }
            guard range.contains(v) else {
                problem(prefix + key, "must be from \(plainNumber(range.lowerBound)) to \(plainNumber(range.upperBound)), not \(plainNumber(v))")
                return value
            }
            return v
        }

        package mutating func bool(_ table: TOMLTable, _ key: String, prefix: String, default value: Bool) -> Bool {
            guard let raw = table[key] else { return value }
            guard let v = raw.bool else {
                problem(prefix + key, "must be true or false, not \(raw.debugDescription)")
                return value
            }
            return v
        }

        package mutating func string(_ table: TOMLTable, _ key: String, prefix: String) -> String? {
            guard let raw = table[key] else { return nil }
            guard let v = raw.string else {
                problem(prefix + key, "must be a string in quotes, not \(raw.debugDescription)")
                return nil
            }
            return v
        }

        package mutating func path(_ table: TOMLTable, _ key: String, prefix: String, root: String) -> String? {
            guard let v = string(table, key, prefix: prefix) else { return nil }
            guard !v.isEmpty else {
                problem(prefix + key, "must not be empty")
                return nil
            }
            return DurableFile.resolve(v, against: root)
        }

        package mutating func read(_ table: TOMLTable, configFolder: String) -> DaemonConfig {
            unknownKeys(table, known: ConfigLoader.globalKeys, prefix: "")
            let root = path(table, "root", prefix: "", root: configFolder) ?? configFolder
            self.root = root
            var config = DaemonConfig(models: path(table, "models", prefix: "", root: root) ?? ModelLocation.absoluteRoot)
            config.maxJobs = int(table, "max_jobs", prefix: "", range: 1...64, default: config.maxJobs)
            config.settleSeconds = double(table, "settle_seconds", prefix: "", range: 0.2...3600, default: config.settleSeconds)
            config.rescanSeconds = double(table, "rescan_seconds", prefix: "", range: 1...86400, default: config.rescanSeconds)
            config.pollSeconds = double(table, "poll_seconds", prefix: "", range: 0.2...3600, default: config.pollSeconds)
            config.logFileNames = bool(table, "log_file_names", prefix: "", default: config.logFileNames)
            config.nameHashKeyFile = path(table, "name_hash_key_file", prefix: "", root: root)
            config.crashLimit = int(table, "crash_limit", prefix: "", range: 1...100, default: config.crashLimit)
            config.jobTimeoutSeconds = double(table, "job_timeout_seconds", prefix: "", range: 10...604800, default: config.jobTimeoutSeconds)
            config.retrySeconds = double(table, "retry_seconds", prefix: "", range: 1...86400, default: config.retrySeconds)
            config.writeRetries = int(table, "write_retries", prefix: "", range: 0...1000, default: config.writeRetries)
            if table["memory_per_job_mb"] != nil {
                config.memoryPerJobMB = int(table, "memory_per_job_mb", prefix: "", range: 64...1_048_576, default: 0)
            }
            executor(table, into: &config)
            config.reviewPage = bool(table, "review_page", prefix: "", default: config.reviewPage)
            config.dicom = dicom(table, base: config.dicom, root: root)

            var defaults = DefacingSettings()
            if let raw = table["defacing"] {
                if let sub = raw.table { defaults = defacing(sub, prefix: "defacing.", base: defaults) } else {
                    problem("defacing", "must be a table ([defacing])")
                }
            }
            guard let rawInboxes = table["inbox"] else {
                problem("inbox", "no [[inbox]] table: name at least one drop folder (path, outbox, failed)")
                return config
            }
            guard let list = rawInboxes.array else {
                problem("inbox", "must be written as [[inbox]] tables (an array of tables)")
                return config
            }
            for (i, item) in list.enumerated() {
                if let inbox = self.inbox(item, number: i + 1, defaults: defaults, root: root) { config.inboxes.append(inbox) }
            }
            if list.isEmpty { problem("inbox", "no [[inbox]] table: name at least one drop folder") }
            return config
        }

        /// The DICOM settings of the global table (`dicom_*`, `dcm2niix`).
        mutating func dicom(_ table: TOMLTable, base: DicomSettings, root: String) -> DicomSettings {
            var d = base
            d.settleSeconds = double(table, "dicom_settle_seconds", prefix: "", range: 0.5...86400, default: d.settleSeconds)
            d.timeoutSeconds = double(table, "dicom_timeout_seconds", prefix: "", range: 10...86400, default: d.timeoutSeconds)
            d.keepAcquisitionTimes = bool(table, "dicom_keep_acquisition_times", prefix: "", default: d.keepAcquisitionTimes)
            if let converter = string(table, "dcm2niix", prefix: "") {
                if converter.isEmpty { problem("dcm2niix", "must not be empty") } else {
                    d.converter = converter.hasPrefix("/") || !converter.contains("/") ? converter : DurableFile.resolve(converter, against: root)
                }
            }
            d.converterPath = Dcm2niix.locate(d.converter)
            return d
        }

        /// One `[[inbox]]` table (`number` counts from 1, as the messages do); nil when a required
        /// folder is missing (the problem is recorded).
        mutating func inbox(_ item: any TOMLValueConvertible, number: Int, defaults: DefacingSettings, root: String) -> InboxConfig? {
            let prefix = "inbox[\(number)]."
            guard let sub = item.table else {
                problem("inbox[\(number)]", "must be a table")
                return nil
            }
            unknownKeys(sub, known: ConfigLoader.inboxKeys, prefix: prefix)
            let inboxPath = path(sub, "path", prefix: prefix, root: root)
            let outbox = path(sub, "outbox", prefix: prefix, root: root)
            let failed = path(sub, "failed", prefix: prefix, root: root)
            if sub["path"] == nil { problem(prefix + "path", "missing: the drop folder to watch") }
            if sub["outbox"] == nil { problem(prefix + "outbox", "missing: where defaced scans go") }
            if sub["failed"] == nil { problem(prefix + "failed", "missing: where scans that cannot be defaced go") }
            let work = path(sub, "work", prefix: prefix, root: root)
            let archive = path(sub, "archive", prefix: prefix, root: root)
            var watch = WatchMode.auto
            if let w = string(sub, "watch", prefix: prefix) {
                if let mode = WatchMode(rawValue: w) { watch = mode } else {
                    problem(prefix + "watch", "must be \"auto\", \"inotify\" or \"poll\", not \"\(w)\"")
                }
            }
            var settings = defaults
            if let raw = sub["defacing"] {
                if let t = raw.table { settings = defacing(t, prefix: prefix + "defacing.", base: defaults) } else {
                    problem(prefix + "defacing", "must be a table ([inbox.defacing])")
                }
            }
            let dicom = bool(sub, "dicom", prefix: prefix, default: true)
            guard let inboxPath, let outbox, let failed else { return nil }
            let name = string(sub, "name", prefix: prefix) ?? DurableFile.fileName(of: inboxPath)
            if name.isEmpty || name.contains(where: { $0.isWhitespace || $0 == "/" }) {
                problem(prefix + "name", "must be a short label without spaces or slashes, not \"\(name)\"")
            }
            var inbox = InboxConfig(name: name, path: inboxPath, outbox: outbox, failed: failed,
                                    work: work ?? inboxPath + "/.defacer-work", archive: archive,
                                    watch: watch, defacing: settings, acceptsDicom: dicom)
            if sub["memory_per_job_mb"] != nil {
                inbox.memoryPerJobMB = int(sub, "memory_per_job_mb", prefix: prefix, range: 64...1_048_576, default: 0)
            }
            return inbox
        }

        package mutating func defacing(_ table: TOMLTable, prefix: String, base: DefacingSettings) -> DefacingSettings {
            unknownKeys(table, known: ConfigLoader.defacingKeys, prefix: prefix)
            var s = base
            if let m = string(table, "mode", prefix: prefix) {
                if let mode = BrainExtractor.Mode(rawValue: m) { s.mode = mode } else {
                    problem(prefix + "mode", "must be \"fast\" (one network) or \"accurate\" (five networks, mirrored), not \"\(m)\"")
                }
            }
            s.marginMM = double(table, "margin_mm", prefix: prefix, range: 0...20, default: s.marginMM)
            s.removeEars = bool(table, "remove_ears", prefix: prefix, default: s.removeEars)
            let voxels = int(table, "max_voxels", prefix: prefix, range: 1...(1 << 34), default: Int(s.maxVoxels))
            s.maxVoxels = Int64(voxels)
            s.method = faceMethod(table, prefix: prefix, base: s.method)
            if let raw = table["outputs"] {
                if let list = raw.array {
                    var outputs = Set<OutputKind>()
                    for item in list {
                        if let name = item.string, let kind = OutputKind(rawValue: name) { outputs.insert(kind) } else {
                            problem(prefix + "outputs", "unknown output \(item.debugDescription); choose from "
                                    + OutputKind.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))
                        }
                    }
                    if !outputs.contains(.defaced) {
                        problem(prefix + "outputs", "must include \"defaced\" (the defaced scan is the point)")
                    }
                    s.outputs = outputs
                } else {
                    problem(prefix + "outputs", "must be a list such as [\"defaced\", \"face_mask\"]")
                }
            }
            return s
        }
    }
}

/// Levenshtein distance, for "did you mean" hints.
package func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.lowercased().replacingOccurrences(of: "-", with: "_")), b = Array(b.lowercased().replacingOccurrences(of: "-", with: "_"))
    var previous = Array(0...b.count)
    for i in 1...max(1, a.count) where !a.isEmpty {
        var current = [i] + [Int](repeating: 0, count: b.count)
        for j in 1...max(1, b.count) where !b.isEmpty {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return a.isEmpty ? b.count : previous[b.count]
}


/// Checks the folders a config names: inboxes, outboxes, failed, work and archive folders.
package enum FolderCheck {
    package static func check(_ config: DaemonConfig) -> [ConfigIssue] {
        var issues: [ConfigIssue] = []
        if access(config.models + "/hdbet/model.json", R_OK) != 0 {
            issues.append(ConfigIssue(key: "models", message:
                "\(config.models)/hdbet/model.json is missing or unreadable: install the models (tools/setup/setup.sh, tools/setup/install.sh) or fix the path"))
        }
        if let file = config.nameHashKeyFile {
            do throws(NameHashKeyError) { _ = try NameHasher.read(file) } catch {
                issues.append(ConfigIssue(key: "name_hash_key_file", message: error.description))
            }
        }
        issues += FaceModelCheck.check(config)
        if let problem = config.dicom.converterProblem, config.inboxes.contains(where: \.acceptsDicom) {
            issues.append(ConfigIssue(key: "dcm2niix", message: problem))
        }
        var seenInbox: [String: Int] = [:], seenWork: [String: Int] = [:]
        for (i, inbox) in config.inboxes.enumerated() {
            let prefix = "inbox[\(i + 1)]."
            if let other = seenInbox[inbox.path] {
                issues.append(ConfigIssue(key: prefix + "path", message: "the same folder as inbox[\(other)]'s"))
            }
            seenInbox[inbox.path] = i + 1
            if let other = seenWork[inbox.work] {
                issues.append(ConfigIssue(key: prefix + "work", message: "the same folder as inbox[\(other)]'s work folder: each inbox needs its own"))
            }
            seenWork[inbox.work] = i + 1
            if config.inboxes.contains(where: { $0.name == inbox.name && $0.path != inbox.path }) {
                issues.append(ConfigIssue(key: prefix + "name", message: "\"\(inbox.name)\" is used by another inbox: give each a name"))
            }
            var folders: [(String, String)] = [("path", inbox.path), ("outbox", inbox.outbox), ("failed", inbox.failed)]
            if let archive = inbox.archive { folders.append(("archive", archive)) }
            for (key, folder) in folders where key != "path" && folder == inbox.path {
                issues.append(ConfigIssue(key: prefix + key, message: "must not be the inbox itself"))
            }
            for other in config.inboxes {
                for (key, folder) in folders where key != "path" && folder == other.path {
                    issues.append(ConfigIssue(key: prefix + key, message: "is the inbox \(other.path): outputs would be taken as new scans"))
                }
            }
            var devices: [(String, UInt64)] = []
            for (key, folder) in folders {
                switch folderState(folder) {
                case .ok(let dev): devices.append((key, dev))
                case .problem(let message): issues.append(ConfigIssue(key: prefix + key, message: "\(folder): \(message)"))
                }
            }
            // the work folder is created when missing (its parent must exist)
            if access(inbox.work, F_OK) != 0 {
                if mkdir(inbox.work, 0o750) != 0 && errno != EEXIST {
                    issues.append(ConfigIssue(key: prefix + "work", message: "\(inbox.work) does not exist and cannot be created: \(String(cString: strerror(errno)))"))
                }
            }
            switch folderState(inbox.work) {
            case .ok(let dev): devices.append(("work", dev))
            case .problem(let message): issues.append(ConfigIssue(key: prefix + "work", message: "\(inbox.work): \(message)"))
            }
            if let first = devices.first {
                for (key, dev) in devices.dropFirst() where dev != first.1 {
                    issues.append(ConfigIssue(key: prefix + key, message:
                        "is on another file system than the inbox's \(first.0): scans move between these folders by rename, which cannot cross file systems"))
                }
            }
        }
        return issues
    }

    package enum State { case ok(UInt64), problem(String) }

    package static func folderState(_ path: String) -> State {
        var st = stat()
        guard stat(path, &st) == 0 else {
            return .problem(errno == ENOENT ? "does not exist (create it, e.g. with systemd-tmpfiles --create)"
                                            : "cannot be reached: \(String(cString: strerror(errno)))")
        }
        guard st.st_mode & S_IFMT == S_IFDIR else { return .problem("is not a folder") }
        guard access(path, W_OK | X_OK | R_OK) == 0 else {
            return .problem("this service (uid \(geteuid())) cannot read and write it (check owner, group and mode)")
        }
        return .ok(UInt64(st.st_dev))
    }
}

extension ModelLocation {
    /// `root`, made absolute.
    package static var absoluteRoot: String {
        DurableFile.resolve(root, against: FileManager.default.currentDirectoryPath)
    }
}
