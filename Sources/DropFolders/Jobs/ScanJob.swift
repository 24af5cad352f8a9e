import CLinux
import DICOM
import Engine
import Foundation
import Glibc

/// Everything a job needs, captured when it starts (a reload does not change a running job).
/// In the service a job claims, counts the attempt, has `worker` deface the scan in a child
/// process and publishes; in that child (`defacer worker`) it has the engine (`processor`) and
/// only prepares the publishing (`defersPublishing`: the moves are recorded, not done).
package struct JobContext: Sendable {
    package var inbox: InboxConfig
    package var crashLimit: Int
    package var writeRetries: Int
    package var log: EventLog
    /// How DICOM folders are converted.
    package var dicom = DicomSettings()
    /// The service's side: how the child process is started.
    package var worker: WorkerLaunch?
    /// The child's side: the loaded engine.
    package var processor: (any ScanProcessor)?
    /// The child's side: `finish` leaves the recorded moves to the service.
    package var defersPublishing = false
}

/// What the service-side first half of an attempt decided.
package enum AttemptStart: Sendable {
    /// The attempt is counted and recorded: deface this record.
    case ready(JobRecord)
    /// The job already ended (vanished, refused, set aside, stuck).
    case ended(JobOutcome)
}

/// How a job ended.
package struct JobOutcome: Sendable, Codable {
    package enum Result: String, Sendable, Codable {
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

    package var result: Result
    package var scanID: String?
    package var originalName: String
    package var reason: String?
    package var voxelsRemoved: Int?
    package var attempts = 0
    package var warnings: [String] = []
    /// When the file was judged settled (set by the service) and when the engine started on it
    /// (CLOCK_MONOTONIC seconds): the service's own overhead is the difference.
    package var settledAt: Double?
    package var engineStartedAt: Double?
    /// For a DICOM folder: the series defaced, and those that were not (moved to failed).
    package var seriesDefaced: Int?
    package var seriesNotDefaced: Int?
}

/// One scan through claim, defacing and publishing; runs on a worker thread. Every step is
/// recorded in `work/<scan id>/job.json` first, so that a restart after a crash at any point
/// finishes the scan exactly once.
package struct ScanJob: Sendable {
    package let context: JobContext

    package var inbox: InboxConfig { context.inbox }

    /// `20261127T101500Z-3fa9c2d1`: time of claim plus 32 random bits.
    package static func makeScanID() -> String {
        var seconds = time(nil)
        var t = tm()
        gmtime_r(&seconds, &t)
        let random = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        return String(format: "%04d%02d%02dT%02d%02d%02dZ-", Int(t.tm_year) + 1900, Int(t.tm_mon) + 1, Int(t.tm_mday),
                      Int(t.tm_hour), Int(t.tm_min), Int(t.tm_sec))
            + String(repeating: "0", count: 8 - random.count) + random
    }

    package func folder(of scanID: String) -> String { inbox.work + "/" + scanID }

    // MARK: claim

    /// Claims `name` from the inbox (if it is still the file that settled) and defaces it.
    package func runFresh(name: String, settled: DropEntry) -> JobOutcome {
        let source = inbox.path + "/" + name
        guard let now = DropEntry(path: source) else { return JobOutcome(result: .vanished, originalName: name) }
        guard now == settled else { return JobOutcome(result: .changed, originalName: name) }
        let scanID = Self.makeScanID()
        let ext = DropNames.scanExtension(of: name) ?? ""
        var record = JobRecord(scanID: scanID, inbox: inbox.path, originalName: name, claimedName: scanID + ext,
                               phase: .claiming, claimedAt: EventLog.timestamp())
        if let failure = claim(source, record: &record, what: "scan") { return failure }
        TestPause.at("claimed")
        return attempt(record)
    }

    /// The claim a dropped scan and a dropped DICOM folder both go through: the job record is
    /// written and fsynced first, then `source` is renamed into the job's work folder without
    /// replacing anything, and both folders are fsynced. Returns nil once claimed (the record
    /// then says `processing`), else the outcome (`what` names the thing in messages).
    package func claim(_ source: String, record: inout JobRecord, what: String) -> JobOutcome? {
        let dir = folder(of: record.scanID)
        do {
            guard mkdir(dir, 0o750) == 0 else { throw SystemError("mkdir", path: dir, errno: errno) }
            try record.write(folder: dir)
            try DurableFile.fsyncDirectory(inbox.work)
        } catch {
            DurableFile.removeTree(dir)
            return .stuck(record, "cannot claim: \(error)")
        }
        if let e = DurableFile.moveFailure(source, to: dir + "/" + record.claimedName) {
            DurableFile.removeTree(dir)
            if e == ENOENT { return JobOutcome(result: .vanished, originalName: record.originalName) }
            return .stuck(record, "cannot move the \(what) into the work folder: \(String(cString: strerror(e)))")
        }
        try? DurableFile.fsyncDirectory(dir)
        try? DurableFile.fsyncDirectory(inbox.path)
        record.phase = .processing
        return nil
    }

    /// Continues a scan found in the work folder (after a restart or a write failure).
    package func runResumed(scanID: String) -> JobOutcome {
        let dir = folder(of: scanID)
        guard let record = JobRecord.read(folder: dir) else { return failDamagedRecord(scanID: scanID) }
        if record.source == .dicom, record.phase == .claiming || record.phase == .processing {
            return DicomJob(context: context).attempt(record)
        }
        switch record.phase {
        case .publishing, .failing: return finish(record)
        case .claiming, .processing: return attempt(record)
        }
    }

    // MARK: defacing

    /// One attempt: counted and recorded here, defaced by the worker process, published here.
    package func attempt(_ record: JobRecord) -> JobOutcome {
        if let resumed = context.worker?.reattach(record, job: self, fail: failScan) { return resumed }
        switch begin(record) {
        case .ended(let outcome): return outcome
        case .ready(let counted):
            TestPause.at("processing")
            guard let worker = context.worker else { return defaceClaimed(counted) }
            return worker.run(counted, job: self, fail: failScan)
        }
    }

    /// The service's half before the worker: the scan is still there and may be tried, and the
    /// attempt is counted in the record (so a crash at any later point counts it).
    func begin(_ recordIn: JobRecord) -> AttemptStart {
        var record = recordIn
        let dir = folder(of: record.scanID)
        let input = dir + "/" + record.claimedName
        guard let entry = DropEntry(path: input) else {
            DurableFile.removeTree(dir)
            return .ended(JobOutcome(result: .vanished, scanID: record.scanID, originalName: record.originalName,
                                     reason: "the claimed scan is no longer in the work folder"))
        }
        if let problem = Self.refusal(for: record.originalName, entry: entry, path: input, inbox: inbox.path) {
            return .ended(failScan(record, JobFailure(reason: problem, code: "notAScanFile")))
        }
        if let crashed = JobFailure.crashed(record, limit: context.crashLimit, doing: "defacing this scan") {
            return .ended(failScan(record, crashed))
        }
        record.attempts += 1
        record.phase = .processing
        DurableFile.removeTree(dir + "/out")
        do { try record.write(folder: dir) } catch {
            return .ended(.stuck(record, "cannot record the attempt: \(error)"))
        }
        return .ready(record)
    }

    /// The worker's half (`defacer worker`): defaces the claimed scan into `out/` and records
    /// where each output goes (or the failure), leaving the moves to the service.
    package func defaceClaimed(_ record: JobRecord) -> JobOutcome {
        let dir = folder(of: record.scanID)
        let input = dir + "/" + record.claimedName
        let outDir = dir + "/out"
        DurableFile.removeTree(outDir)
        guard mkdir(outDir, 0o750) == 0 else {
            return .stuck(record, "cannot make the output folder: \(SystemError("mkdir", path: outDir, errno: errno))")
        }
        guard let processor = context.processor else { return .stuck(record, "no engine loaded") }
        let ext = DropNames.scanExtension(of: record.originalName) ?? ".nii.gz"
        let wanted = inbox.defacing.outputs
        func out(_ kind: OutputKind) -> String { outDir + "/" + OutputNames.outputName(stem: record.scanID, kind: kind, inputExtension: ext) }
        var outputs = DefaceOutputs(defaced: out(.defaced))
        if wanted.contains(.faceMask) { outputs.faceMask = out(.faceMask) }
        if wanted.contains(.brainMask) { outputs.brainMask = out(.brainMask) }
        if wanted.contains(.qcPicture) { outputs.qcPicture = out(.qcPicture) }

        let report: DefaceReport
        let engineStartedAt = monotonicSeconds()
        do { report = try processor.deface(input: input, outputs: outputs) } catch {
            DurableFile.removeTree(outDir)
            switch error.code {
            case .writeFailed, .model:
                return retryLater(record, reason: error.reason, errno: error.errno, giveUp: { failures in
                    JobFailure(reason: "the outputs could not be written \(failures) times: \(error.reason)", code: "writeFailed")
                }, fail: failScan)
            default:
                return failScan(record, JobFailure(reason: error.reason, code: error.code.name))
            }
        }

        var outcome = publish(record, report: report, extension: ext)
        outcome.engineStartedAt = engineStartedAt
        outcome.voxelsRemoved = report.voxelsRemoved
        outcome.warnings = report.warnings
        return outcome
    }

    /// Names the outputs in the outbox (`<stem>_defaced.nii.gz`..., with -2, -3... when taken),
    /// writes the report with those names, records the moves, and does them.
    func publish(_ recordIn: JobRecord, report: DefaceReport, extension ext: String) -> JobOutcome {
        var record = recordIn
        let dir = folder(of: record.scanID)
        let outDir = dir + "/out"
        let wanted = inbox.defacing.outputs
        // final names in the outbox: <stem>_defaced.nii.gz ..., with -2, -3 ... when taken
        let stem = OutputNames.stem(of: record.originalName)
        let kinds = OutputKind.allCases.filter { wanted.contains($0) }
        var finalStem = stem
        for n in 1... {
            finalStem = n == 1 ? stem : "\(stem)-\(n)"
            let taken = kinds.contains { access(inbox.outbox + "/" + OutputNames.outputName(stem: finalStem, kind: $0, inputExtension: ext), F_OK) == 0 }
            if !taken { break }
        }
        var nameMap: [String: String] = [:]
        for kind in kinds {
            nameMap[OutputNames.outputName(stem: record.scanID, kind: kind, inputExtension: ext)] =
                OutputNames.outputName(stem: finalStem, kind: kind, inputExtension: ext)
        }
        if wanted.contains(.report) {
            let reportName = OutputNames.outputName(stem: record.scanID, kind: .report, inputExtension: ext)
            do {
                try DurableFile.write(Self.reportJSON(report, record: record, nameMap: nameMap),
                                       to: outDir + "/" + reportName, replacing: false)
            } catch {
                let reason = "the report could not be written: \(error)"
                return retryLater(record, reason: reason, errno: error.errno, giveUp: { failures in
                    JobFailure(reason: "the outputs could not be written \(failures) times: \(reason)", code: "writeFailed")
                }, fail: failScan)
            }
        }
        // the defaced scan moves last: when it appears in the outbox, the rest is already there
        let order: [OutputKind] = [.report, .qcPicture, .brainMask, .faceMask, .defaced]
        record.moves = order.filter { wanted.contains($0) }.map { kind in
            let name = OutputNames.outputName(stem: record.scanID, kind: kind, inputExtension: ext)
            return JobRecord.Move(from: "out/" + name, to: inbox.outbox + "/" + nameMap[name]!)
        }
        if let archive = inbox.archive {
            record.archiveTo = archive + "/" + Self.freeName(record.originalName, in: archive, also: [])
        }
        record.phase = .publishing
        do { try record.write(folder: dir) } catch {
            return .stuck(record, "cannot record the outputs: \(error)")
        }
        return finish(record)
    }

    // MARK: results out

    /// Does the moves a record lists (skipping those already done), fsyncs their folders,
    /// removes or archives the original, and removes the job folder.
    package func finish(_ recordIn: JobRecord) -> JobOutcome {
        var record = recordIn
        if context.defersPublishing { return Self.finished(record) }
        // the service's side of a worker's outcome, or its own failure: nothing moved yet
        TestPause.at(record.phase == .failing ? "failing" : "publishing")
        let dir = folder(of: record.scanID)
        var folders = Set<String>()
        for i in record.moves.indices {
            let from = dir + "/" + record.moves[i].from
            guard DropEntry(path: from) != nil else { continue } // moved before a crash
            while true {
                guard let e = DurableFile.moveFailure(from, to: record.moves[i].to) else { break }
                if e == EEXIST {
                    // something of that name appeared meanwhile: never overwrite, take another name
                    let target = record.moves[i].to
                    record.moves[i].to = DurableFile.directory(of: target) + "/" + record.scanID + "-" + DurableFile.fileName(of: target)
                    try? record.write(folder: dir)
                    continue
                }
                return .stuck(record, "cannot move a result to \(DurableFile.directory(of: record.moves[i].to)): \(String(cString: strerror(e)))")
            }
            folders.insert(DurableFile.directory(of: record.moves[i].to))
            TestPause.at("moved-\(i + 1)")
        }
        for f in folders { try? DurableFile.fsyncDirectory(f) }
        if record.phase == .publishing {
            let original = dir + "/" + record.claimedName
            if DropEntry(path: original) != nil {
                if let archiveTo = record.archiveTo {
                    var target = archiveTo
                    while let e = DurableFile.moveFailure(original, to: target) {
                        guard e == EEXIST else { return .stuck(record, "cannot move the original to \(DurableFile.directory(of: target)): \(String(cString: strerror(e)))") }
                        let folder = DurableFile.directory(of: archiveTo)
                        target = folder + "/" + Self.freeName(DurableFile.fileName(of: archiveTo), in: folder, also: [])
                    }
                    try? DurableFile.fsyncDirectory(DurableFile.directory(of: archiveTo))
                } else if DropEntry(path: original)?.kind == .directory {
                    DurableFile.removeTree(original)  // a DICOM folder
                } else {
                    unlink(original)
                }
            }
        }
        TestPause.at("finished")
        DurableFile.removeTree(dir)
        try? DurableFile.fsyncDirectory(inbox.work)
        return Self.finished(record)
    }

    /// The outcome of a record whose moves are done.
    static func finished(_ record: JobRecord) -> JobOutcome {
        JobOutcome(result: record.phase == .publishing ? .done : .failed, scanID: record.scanID,
                   originalName: record.originalName, attempts: record.attempts)
    }

    /// Moves a NIfTI scan and its reason file (with the scan's sha256) to the failed folder.
    package func failScan(_ record: JobRecord, _ failure: JobFailure) -> JobOutcome {
        let input = folder(of: record.scanID) + "/" + record.claimedName
        return fail(record, failure) { $0.sha256 = FileHash.sha256(ofRegularFile: input, followLinks: false) }
    }

    // MARK: helpers

    /// Why an entry cannot be a scan, in plain words, or nil when it can be tried.
    package static func refusal(for name: String, entry: DropEntry, path: String, inbox: String) -> String? {
        switch entry.kind {
        case .regular: break
        case .symlink:
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let n = readlink(path, &buffer, buffer.count - 1)
            let target = n > 0 ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
            let resolved = DurableFile.resolve(target, against: inbox)
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
    package static func freeName(_ name: String, in folder: String, also: [String]) -> String {
        let stem = OutputNames.stem(of: name)
        let rest = String(name.dropFirst(stem.count))
        for n in 1... {
            let candidate = n == 1 ? name : "\(stem)-\(n)\(rest)"
            let taken = ([""] + also).contains { DropEntry(path: folder + "/" + candidate + $0) != nil }
            if !taken { return candidate }
        }
        return name
    }

    /// The engine's report with the outbox names, the original file name, the scan id and attempts.
    package static func reportJSON(_ report: DefaceReport, record: JobRecord, nameMap: [String: String]) -> Data {
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

