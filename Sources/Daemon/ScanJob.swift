import CLinux
import Engine
import Foundation
import Glibc

/// Defaces a scan (the `Defacer` in production; the protocol keeps the job's file handling
/// apart from the engine).
protocol ScanProcessor: Sendable {
    func deface(input: String, outputs: DefaceOutputs) throws(DefaceError) -> DefaceReport
}

extension Defacer: ScanProcessor {}

/// Everything a job needs, captured when it starts (a reload does not change a running job).
struct JobContext: Sendable {
    var inbox: InboxConfig
    var processor: any ScanProcessor
    var crashLimit: Int
    var writeRetries: Int
    var log: EventLog
    /// How DICOM folders are converted.
    var dicom = DicomSettings()
}

/// How a job ended.
struct JobOutcome: Sendable {
    enum Result: String, Sendable {
        /// Outputs are in the outbox; the original is removed or archived.
        case done
        /// The scan and its reason file are in `failed`.
        case failed
        /// The scan crashed the service `crash_limit` times and is in `failed`.
        case quarantined
        /// An output could not be written; the scan waits in the work folder for a retry.
        case retry
        /// The inbox file was gone before it could be claimed.
        case vanished
        /// The inbox file changed after it had settled; it is settled again.
        case changed
        /// The job could not move its files (the folders are broken); the scan stays in work.
        case stuck
    }

    var result: Result
    var scanID: String?
    var originalName: String
    var reason: String?
    var voxelsRemoved: Int?
    var attempts = 0
    var warnings: [String] = []
    /// When the file was judged settled (set by the service) and when the engine started on it
    /// (CLOCK_MONOTONIC seconds): the service's own overhead is the difference.
    var settledAt: Double?
    var engineStartedAt: Double?
    /// For a DICOM folder: the series defaced, and those that were not (moved to failed).
    var seriesDefaced: Int?
    var seriesNotDefaced: Int?
}

/// One scan through claim, defacing and publishing; runs on a worker thread. Every step is
/// recorded in `work/<scan id>/job.json` first, so that a restart after a crash at any point
/// finishes the scan exactly once.
struct ScanJob: Sendable {
    let context: JobContext

    var inbox: InboxConfig { context.inbox }

    /// `20261127T101500Z-3fa9c2d1`: time of claim plus 32 random bits.
    static func makeScanID() -> String {
        var seconds = time(nil)
        var t = tm()
        gmtime_r(&seconds, &t)
        let random = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        return String(format: "%04d%02d%02dT%02d%02d%02dZ-", Int(t.tm_year) + 1900, Int(t.tm_mon) + 1, Int(t.tm_mday),
                      Int(t.tm_hour), Int(t.tm_min), Int(t.tm_sec))
            + String(repeating: "0", count: 8 - random.count) + random
    }

    func folder(of scanID: String) -> String { inbox.work + "/" + scanID }

    // MARK: claim

    /// Claims `name` from the inbox (if it is still the file that settled) and defaces it.
    func runFresh(name: String, settled: DropEntry) -> JobOutcome {
        let source = inbox.path + "/" + name
        guard let now = DropEntry(path: source) else { return JobOutcome(result: .vanished, originalName: name) }
        guard now == settled else { return JobOutcome(result: .changed, originalName: name) }
        let scanID = Self.makeScanID()
        let ext = DropNames.scanExtension(of: name) ?? ""
        var record = JobRecord(scanID: scanID, inbox: inbox.path, originalName: name, claimedName: scanID + ext,
                               phase: .claiming, claimedAt: EventLog.timestamp())
        if let failure = claim(source, record: &record, what: "scan") { return failure }
        return attempt(record)
    }

    /// The claim a dropped scan and a dropped DICOM folder both go through: the job record is
    /// written and fsynced first, then `source` is renamed into the job's work folder without
    /// replacing anything, and both folders are fsynced. Returns nil once claimed (the record
    /// then says `processing`), else the outcome (`what` names the thing in messages).
    func claim(_ source: String, record: inout JobRecord, what: String) -> JobOutcome? {
        let dir = folder(of: record.scanID)
        do {
            guard mkdir(dir, 0o750) == 0 else { throw SystemError("mkdir", path: dir, errno: errno) }
            try record.write(folder: dir)
            try DurableWrite.fsyncFolder(inbox.work)
        } catch {
            DurableWrite.removeTree(dir)
            return JobOutcome(result: .stuck, scanID: record.scanID, originalName: record.originalName, reason: "cannot claim: \(error)")
        }
        if dfc_rename_noreplace(source, dir + "/" + record.claimedName) != 0 {
            let e = errno
            DurableWrite.removeTree(dir)
            if e == ENOENT { return JobOutcome(result: .vanished, originalName: record.originalName) }
            return JobOutcome(result: .stuck, scanID: record.scanID, originalName: record.originalName,
                              reason: "cannot move the \(what) into the work folder: \(String(cString: strerror(e)))")
        }
        try? DurableWrite.fsyncFolder(dir)
        try? DurableWrite.fsyncFolder(inbox.path)
        record.phase = .processing
        return nil
    }

    /// Continues a scan found in the work folder (after a restart or a write failure).
    func runResumed(scanID: String) -> JobOutcome {
        let dir = folder(of: scanID)
        guard let record = JobRecord.read(folder: dir) else {
            return JobOutcome(result: .stuck, scanID: scanID, originalName: "?", reason: "its job record is missing or damaged")
        }
        if record.source == .dicom, record.phase == .claiming || record.phase == .processing {
            return DicomJob(context: context).attempt(record)
        }
        switch record.phase {
        case .publishing, .failing: return finish(record)
        case .claiming, .processing: return attempt(record)
        }
    }

    // MARK: defacing

    func attempt(_ recordIn: JobRecord) -> JobOutcome {
        var record = recordIn
        let dir = folder(of: record.scanID)
        let input = dir + "/" + record.claimedName
        guard let entry = DropEntry(path: input) else {
            DurableWrite.removeTree(dir)
            return JobOutcome(result: .vanished, scanID: record.scanID, originalName: record.originalName,
                              reason: "the claimed scan is no longer in the work folder")
        }
        if let problem = Self.refusal(for: record.originalName, entry: entry, path: input, inbox: inbox.path) {
            return fail(record, reason: problem, code: "notAScanFile")
        }
        if record.attempts >= context.crashLimit {
            return fail(record, reason: "defacing this scan stopped the service \(record.attempts) times (a crash, a kill or a power cut); it was set aside so that it cannot stop the service again",
                        code: "crashedService", result: .quarantined)
        }
        record.attempts += 1
        record.phase = .processing
        let outDir = dir + "/out"
        DurableWrite.removeTree(outDir)
        do {
            guard mkdir(outDir, 0o750) == 0 else { throw SystemError("mkdir", path: outDir, errno: errno) }
            try record.write(folder: dir)
        } catch {
            return JobOutcome(result: .stuck, scanID: record.scanID, originalName: record.originalName,
                              reason: "cannot record the attempt: \(error)", attempts: record.attempts)
        }
        let ext = DropNames.scanExtension(of: record.originalName) ?? ".nii.gz"
        let wanted = inbox.defacing.outputs
        func out(_ kind: OutputKind) -> String { outDir + "/" + DropNames.outputName(stem: record.scanID, kind: kind, inputExtension: ext) }
        var outputs = DefaceOutputs(defaced: out(.defaced))
        if wanted.contains(.faceMask) { outputs.faceMask = out(.faceMask) }
        if wanted.contains(.brainMask) { outputs.brainMask = out(.brainMask) }
        if wanted.contains(.qcPicture) { outputs.qcPicture = out(.qcPicture) }

        let report: DefaceReport
        let engineStartedAt = monotonicSeconds()
        do { report = try context.processor.deface(input: input, outputs: outputs) } catch {
            DurableWrite.removeTree(outDir)
            switch error.code {
            case .writeFailed, .model:
                // not the scan's fault: try again later, and do not count it as a crash
                record.attempts -= 1
                record.writeFailures += 1
                if record.writeFailures > context.writeRetries {
                    return fail(record, reason: "the outputs could not be written \(record.writeFailures) times: \(error.reason)", code: "writeFailed")
                }
                try? record.write(folder: dir)
                return JobOutcome(result: .retry, scanID: record.scanID, originalName: record.originalName,
                                  reason: error.reason, attempts: record.attempts)
            default:
                return fail(record, reason: error.reason, code: Self.codeName(error.code))
            }
        }

        // final names in the outbox: <stem>_defaced.nii.gz ..., with -2, -3 ... when taken
        let stem = DropNames.stem(of: record.originalName)
        let kinds = OutputKind.allCases.filter { wanted.contains($0) }
        var finalStem = stem
        for n in 1... {
            finalStem = n == 1 ? stem : "\(stem)-\(n)"
            let taken = kinds.contains { access(inbox.outbox + "/" + DropNames.outputName(stem: finalStem, kind: $0, inputExtension: ext), F_OK) == 0 }
            if !taken { break }
        }
        var nameMap: [String: String] = [:]
        for kind in kinds {
            nameMap[DropNames.outputName(stem: record.scanID, kind: kind, inputExtension: ext)] =
                DropNames.outputName(stem: finalStem, kind: kind, inputExtension: ext)
        }
        if wanted.contains(.report) {
            let reportName = DropNames.outputName(stem: record.scanID, kind: .report, inputExtension: ext)
            do {
                try DurableWrite.write(Self.reportJSON(report, record: record, nameMap: nameMap),
                                       to: outDir + "/" + reportName, replacing: false)
            } catch {
                record.attempts -= 1
                record.writeFailures += 1
                try? record.write(folder: dir)
                return JobOutcome(result: .retry, scanID: record.scanID, originalName: record.originalName,
                                  reason: "the report could not be written: \(error)", attempts: record.attempts)
            }
        }
        // the defaced scan moves last: when it appears in the outbox, the rest is already there
        let order: [OutputKind] = [.report, .qcPicture, .brainMask, .faceMask, .defaced]
        record.moves = order.filter { wanted.contains($0) }.map { kind in
            let name = DropNames.outputName(stem: record.scanID, kind: kind, inputExtension: ext)
            return JobRecord.Move(from: "out/" + name, to: inbox.outbox + "/" + nameMap[name]!)
        }
        if let archive = inbox.archive {
            record.archiveTo = archive + "/" + Self.freeName(record.originalName, in: archive, also: [])
        }
        record.phase = .publishing
        do { try record.write(folder: dir) } catch {
            return JobOutcome(result: .stuck, scanID: record.scanID, originalName: record.originalName,
                              reason: "cannot record the outputs: \(error)", attempts: record.attempts)
        }
        var outcome = finish(record)
        outcome.engineStartedAt = engineStartedAt
        outcome.voxelsRemoved = report.voxelsRemoved
        outcome.warnings = report.warnings
        return outcome
    }

    // MARK: results out

    /// Does the moves a record lists (skipping those already done), fsyncs their folders,
    /// removes or archives the original, and removes the job folder.
    func finish(_ recordIn: JobRecord) -> JobOutcome {
        var record = recordIn
        let dir = folder(of: record.scanID)
        var folders = Set<String>()
        for i in record.moves.indices {
            let from = dir + "/" + record.moves[i].from
            guard DropEntry(path: from) != nil else { continue } // moved before a crash
            while true {
                if dfc_rename_noreplace(from, record.moves[i].to) == 0 { break }
                let e = errno
                if e == EEXIST {
                    // something of that name appeared meanwhile: never overwrite, take another name
                    let target = record.moves[i].to
                    record.moves[i].to = DurableFile.directory(of: target) + "/" + record.scanID + "-" + DurableFile.fileName(of: target)
                    try? record.write(folder: dir)
                    continue
                }
                return JobOutcome(result: .stuck, scanID: record.scanID, originalName: record.originalName,
                                  reason: "cannot move a result to \(DurableFile.directory(of: record.moves[i].to)): \(String(cString: strerror(e)))",
                                  attempts: record.attempts)
            }
            folders.insert(DurableFile.directory(of: record.moves[i].to))
        }
        for f in folders { try? DurableWrite.fsyncFolder(f) }
        if record.phase == .publishing {
            let original = dir + "/" + record.claimedName
            if DropEntry(path: original) != nil {
                if let archiveTo = record.archiveTo {
                    var target = archiveTo
                    while dfc_rename_noreplace(original, target) != 0 {
                        guard errno == EEXIST else { break }
                        target = DurableFile.directory(of: archiveTo) + "/" + record.scanID + "-" + DurableFile.fileName(of: archiveTo)
                        if access(target, F_OK) == 0 { break }
                    }
                    try? DurableWrite.fsyncFolder(DurableFile.directory(of: archiveTo))
                } else if DropEntry(path: original)?.kind == .directory {
                    DurableWrite.removeTree(original)  // a DICOM folder
                } else {
                    unlink(original)
                }
            }
        }
        DurableWrite.removeTree(dir)
        try? DurableWrite.fsyncFolder(inbox.work)
        return JobOutcome(result: record.phase == .publishing ? .done : .failed, scanID: record.scanID,
                          originalName: record.originalName, attempts: record.attempts)
    }

    /// Moves the scan and `<name>.reason.json` to the failed folder.
    func fail(_ recordIn: JobRecord, reason: String, code: String, result: JobOutcome.Result = .failed) -> JobOutcome {
        var record = recordIn
        let dir = folder(of: record.scanID)
        DurableWrite.removeTree(dir + "/out")
        let input = dir + "/" + record.claimedName
        let hash = Self.sha256(ofRegularFile: input)
        let name = Self.freeName(record.originalName, in: inbox.failed, also: [".reason.json"])
        let reasonName = record.scanID + ".reason.json"
        var json: [String: Any] = [
            "file": record.originalName, "scanId": record.scanID, "inbox": inbox.name, "error": reason, "code": code,
            "attempts": record.attempts, "defacerVersion": DefacerVersion.string, "failedAt": EventLog.timestamp(),
            "claimedAt": record.claimedAt,
        ]
        json["sha256"] = hash ?? NSNull()
        if name != record.originalName { json["storedAs"] = name }
        let data = (try? JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys])) ?? Data()
        do {
            try DurableWrite.write(data, to: dir + "/" + reasonName, replacing: true)
            record.phase = .failing
            // the scan first, its reason last: a reason file means the entry is complete
            record.moves = [JobRecord.Move(from: record.claimedName, to: inbox.failed + "/" + name),
                            JobRecord.Move(from: reasonName, to: inbox.failed + "/" + name + ".reason.json")]
            try record.write(folder: dir)
        } catch {
            return JobOutcome(result: .stuck, scanID: record.scanID, originalName: record.originalName,
                              reason: "cannot record the failure: \(error)", attempts: record.attempts)
        }
        var outcome = finish(record)
        if outcome.result == .failed {
            outcome.result = result
            outcome.reason = reason
        }
        return outcome
    }

    // MARK: helpers

    /// Why an entry cannot be a scan, in plain words, or nil when it can be tried.
    static func refusal(for name: String, entry: DropEntry, path: String, inbox: String) -> String? {
        switch entry.kind {
        case .regular: break
        case .symlink:
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let n = readlink(path, &buffer, buffer.count - 1)
            let target = n > 0 ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
            let resolved = ConfigLoader.resolve(target, against: inbox)
            let where_ = resolved.hasPrefix(inbox + "/") ? "to another name in the inbox" : "outside the inbox"
            return "this is a symbolic link pointing \(where_); defacer takes only regular files, so that a drop folder can never be used to read files elsewhere: copy the scan itself into the inbox"
        case .directory:
            return "this is a folder named like a NIfTI scan; drop the scan file itself (folders are taken as DICOM series only when their name does not end in .nii or .nii.gz)"
        case .fifo:
            return "this is a named pipe (FIFO), not a file"
        case .other:
            return "this is a device or socket, not a file"
        }
        if DropNames.scanExtension(of: name) == nil {
            if [".hdr", ".img", ".hdr.gz", ".img.gz"].contains(where: { name.hasSuffix($0) }) {
                return "ANALYZE/NIfTI pairs (.hdr + .img) cannot be taken from a drop folder, because the two files arrive separately: convert the pair to one .nii.gz file, or deface it with `defacer deface`"
            }
            return "the file name must end in .nii or .nii.gz (DICOM: drop the whole series or study as a folder; other formats: convert to NIfTI first)"
        }
        return nil
    }

    /// `name` if free in `folder` (with each of `also` appended too), else `stem-2.ext`, `stem-3.ext`...
    static func freeName(_ name: String, in folder: String, also: [String]) -> String {
        let stem = DropNames.stem(of: name)
        let rest = String(name.dropFirst(stem.count))
        for n in 1... {
            let candidate = n == 1 ? name : "\(stem)-\(n)\(rest)"
            let taken = ([""] + also).contains { DropEntry(path: folder + "/" + candidate + $0) != nil }
            if !taken { return candidate }
        }
        return name
    }

    static func codeName(_ code: DefaceError.Code) -> String {
        switch code {
        case .unreadable(let c):
            let text = "\(c)"
            return "unreadable." + String(text.prefix { $0 != "(" })
        case .model(let c): return "model.\(c)"
        case .implausibleBrain: return "implausibleBrain"
        case .brainCutByFieldOfView: return "brainCutByFieldOfView"
        case .implausibleFace: return "implausibleFace"
        case .orientationDisagrees: return "orientationDisagrees"
        case .writeFailed: return "writeFailed"
        }
    }

    /// sha256 of a regular file that can be read, else nil (never follows links or opens pipes).
    static func sha256(ofRegularFile path: String) -> String? {
        guard let entry = DropEntry(path: path), entry.kind == .regular else { return nil }
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var hash = SHA256()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { return nil }
            if n == 0 { break }
            hash.update(buffer[0..<n])
        }
        return hash.hexDigest()
    }

    /// The engine's report with the outbox names, the original file name, the scan id and attempts.
    static func reportJSON(_ report: DefaceReport, record: JobRecord, nameMap: [String: String]) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        guard let data = try? encoder.encode(report),
              var json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return Data() }
        json["input"] = record.originalName
        if let outputs = json["outputs"] as? [String: String] {
            json["outputs"] = outputs.mapValues { nameMap[$0] ?? $0 }
        }
        if let sums = json["outputSHA256"] as? [String: String] {
            json["outputSHA256"] = Dictionary(uniqueKeysWithValues: sums.map { (nameMap[$0.key] ?? $0.key, $0.value) })
        }
        json["scanId"] = record.scanID
        json["attempts"] = record.attempts
        json["claimedAt"] = record.claimedAt
        return (try? JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys])) ?? data
    }
}

