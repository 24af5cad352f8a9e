import CLinux
import DICOM
import Engine
import Foundation
import Glibc

/// One dropped DICOM folder through claim, conversion, defacing and publishing; runs on a
/// worker thread. The same durable steps as `ScanJob` (job record first, claim by rename,
/// attempt counted before the work, moves recorded before they are done), with a folder:
///
/// - the whole folder is renamed into `work/<scan id>/<scan id>.dicom`, so files that arrive
///   later under the same name start a new job instead of joining this one;
/// - the defaced series are published as one folder (`outbox/<name>/`, one rename: when it
///   appears, it is complete); its name is the dropped folder's unless that contains an
///   identifying value from the headers (then the scan id);
/// - the files of series that were not defaced go to `failed/<name>/` (their original
///   relative paths) with `<name>.reason.json`; the rest of the original is removed, or moved
///   to the archive; when nothing was defaced the whole folder goes to `failed`.
package struct DicomJob: Sendable {
    package let context: JobContext

    package var inbox: InboxConfig { context.inbox }
    private var scanJob: ScanJob { ScanJob(context: context) }

    /// Claims the folder `name` from the inbox (unless it changed since it settled) and defaces it.
    package func runFresh(name: String, settled: FolderSnapshot) -> JobOutcome {
        let source = inbox.path + "/" + name
        guard DropEntry(path: source)?.kind == .directory else { return JobOutcome(result: .vanished, originalName: name) }
        if !settled.hasMarker && FolderSnapshot(path: source) != settled {
            return JobOutcome(result: .changed, originalName: name)
        }
        let scanID = ScanJob.makeScanID()
        var record = JobRecord(scanID: scanID, inbox: inbox.path, originalName: name, claimedName: scanID + ".dicom",
                               phase: .claiming, claimedAt: EventLog.timestamp())
        record.source = .dicom
        record.folderBytes = settled.bytes
        if let failure = scanJob.claim(source, record: &record, what: "folder") { return failure }
        return attempt(record)
    }

    // MARK: converting and defacing

    /// One attempt: counted and recorded here, converted and defaced by the worker process,
    /// published here.
    package func attempt(_ record: JobRecord) -> JobOutcome {
        if let resumed = context.worker?.reattach(record, job: scanJob, fail: { failWhole($0, nil, $1) }) { return resumed }
        switch begin(record) {
        case .ended(let outcome): return outcome
        case .ready(let counted):
            guard let worker = context.worker else { return convertAndDeface(counted) }
            return worker.run(counted, job: scanJob) { failWhole($0, nil, $1) }
        }
    }

    /// The service's half before the worker (see `ScanJob.begin`).
    func begin(_ recordIn: JobRecord) -> AttemptStart {
        var record = recordIn
        let dir = scanJob.folder(of: record.scanID)
        let claimed = dir + "/" + record.claimedName
        guard DropEntry(path: claimed)?.kind == .directory else {
            DurableFile.removeTree(dir)
            return .ended(JobOutcome(result: .vanished, scanID: record.scanID, originalName: record.originalName,
                                     reason: "the claimed folder is no longer in the work folder"))
        }
        if let crashed = JobFailure.crashed(record, limit: context.crashLimit, doing: "converting or defacing this folder") {
            return .ended(failWhole(record, nil, crashed))
        }
        record.attempts += 1
        record.phase = .processing
        for sub in ["out", "convert", "failed-part"] { DurableFile.removeTree(dir + "/" + sub) }
        do { try record.write(folder: dir) } catch {
            return .ended(.stuck(record, "cannot record the attempt: \(error)"))
        }
        return .ready(record)
    }

    /// The worker's half (`defacer worker`): converts and defaces the claimed folder and records
    /// where the results go (or the failure), leaving the moves to the service.
    package func convertAndDeface(_ record: JobRecord) -> JobOutcome {
        let dir = scanJob.folder(of: record.scanID)
        let claimed = dir + "/" + record.claimedName
        guard let processor = context.processor else { return .stuck(record, "no engine loaded") }
        for sub in ["out", "convert", "failed-part"] { DurableFile.removeTree(dir + "/" + sub) }
        let pipeline = DicomStudyDefacer(settings: context.dicom, processor: processor, outputs: inbox.defacing.outputs)
        let engineStartedAt = monotonicSeconds()
        let result = pipeline.run(folder: claimed, work: dir + "/convert", output: dir + "/out",
                                  context: .init(scanID: record.scanID, attempts: record.attempts, claimedAt: record.claimedAt))
        DurableFile.removeTree(dir + "/convert")
        if let failure = result.failure {
            DurableFile.removeTree(dir + "/out")
            guard failure.retry else { return failWhole(record, result, JobFailure(reason: failure.reason, code: failure.code)) }
            return scanJob.retryLater(record, reason: failure.reason, giveUp: { failures in
                JobFailure(reason: "tried \(failures) times: \(failure.reason)", code: failure.code)
            }, fail: { failWhole($0, result, $1) })
        }
        guard result.defacedCount > 0 else {
            DurableFile.removeTree(dir + "/out")
            return failWhole(record, result, JobFailure(reason: "no series could be defaced: " + Self.seriesReasons(result), code: "noSeriesDefaced"))
        }
        var outcome = publish(record, result)
        outcome.engineStartedAt = engineStartedAt
        return outcome
    }

    /// `series 1: reason; series 4: reason` for the series that were not defaced (our own
    /// words and the engine's, never a header value).
    package static func seriesReasons(_ result: DicomStudyDefacer.Result) -> String {
        result.series.enumerated().filter { !$0.element.defaced }.map { index, s in
            "series \(s.number.map(String.init) ?? "#\(index + 1)"): \(s.failure ?? "")"
        }.joined(separator: "; ")
    }

    // MARK: results out

    private func publish(_ recordIn: JobRecord, _ result: DicomStudyDefacer.Result) -> JobOutcome {
        var record = recordIn
        let dir = scanJob.folder(of: record.scanID)
        let outName = SeriesNaming.folderName(record.originalName, identifiers: result.identifiers, scanID: record.scanID)
        var moves: [JobRecord.Move] = []
        let notDefaced = result.series.filter { !$0.defaced }
        var failedName: String?
        do {
            if !notDefaced.isEmpty {
                // the files of the series that were not defaced leave the original for failed/
                let part = dir + "/failed-part"
                guard mkdir(part, 0o750) == 0 else { throw SystemError("mkdir", path: part, errno: errno) }
                for series in notDefaced {
                    for file in series.files {
                        try Self.makeParents(of: file, under: part)
                        moves.append(JobRecord.Move(from: record.claimedName + "/" + file, to: part + "/" + file))
                    }
                }
                let name = ScanJob.freeName(record.originalName, in: inbox.failed, also: [".reason.json"])
                failedName = name
                let reason = "\(notDefaced.count) of \(result.series.count) series not defaced: " + Self.seriesReasons(result)
                let reasonName = record.scanID + ".reason.json"
                var reasonFile = FailureRecord(record, inbox: inbox.name, failure: JobFailure(reason: reason, code: "seriesNotDefaced"),
                                               storedAs: name)
                Self.describe(result, outbox: outName, into: &reasonFile)
                try DurableFile.write(reasonFile.json, to: dir + "/" + reasonName, replacing: true)
                moves.append(JobRecord.Move(from: "out", to: inbox.outbox + "/" + ScanJob.freeName(outName, in: inbox.outbox, also: [])))
                moves.append(JobRecord.Move(from: "failed-part", to: inbox.failed + "/" + name))
                moves.append(JobRecord.Move(from: reasonName, to: inbox.failed + "/" + name + ".reason.json"))
            } else {
                moves.append(JobRecord.Move(from: "out", to: inbox.outbox + "/" + ScanJob.freeName(outName, in: inbox.outbox, also: [])))
            }
            if let archive = inbox.archive {
                record.archiveTo = archive + "/" + ScanJob.freeName(record.originalName, in: archive, also: [])
            }
            record.moves = moves
            record.phase = .publishing
            try record.write(folder: dir)
        } catch {
            DurableFile.removeTree(dir + "/failed-part")
            return .stuck(record, "cannot record the outputs: \(error)")
        }
        var outcome = scanJob.finish(record)
        outcome.voxelsRemoved = result.series.reduce(0) { $0 + $1.voxelsRemoved }
        outcome.warnings = result.series.flatMap(\.warnings)
        outcome.seriesDefaced = result.defacedCount
        outcome.seriesNotDefaced = notDefaced.count
        if failedName != nil, outcome.result == .done {
            outcome.reason = "\(notDefaced.count) of \(result.series.count) series not defaced (moved to failed): " + Self.seriesReasons(result)
        }
        return outcome
    }

    /// Moves the whole folder and `<name>.reason.json` to the failed folder.
    package func failWhole(_ record: JobRecord, _ result: DicomStudyDefacer.Result?, _ failure: JobFailure) -> JobOutcome {
        var outcome = scanJob.fail(record, failure) { Self.describe(result, outbox: nil, into: &$0) }
        if outcome.result != .stuck {
            outcome.seriesDefaced = 0
            outcome.seriesNotDefaced = result?.series.count
        }
        return outcome
    }

    /// What a DICOM folder's reason file adds: each series and what became of it, the broken
    /// files, and the converter's messages (our own words and the converter's, never a header value).
    static func describe(_ result: DicomStudyDefacer.Result?, outbox: String?, into file: inout FailureRecord) {
        file.kind = "DICOM folder"
        file.outbox = outbox
        guard let result else { return }
        file.files = result.fileCount
        file.series = result.series.map { s in
            FailureRecord.Series(name: s.name, result: s.defaced ? "defaced" : "not defaced", dicomFiles: s.files.count,
                                 files: s.defaced ? nil : s.files, seriesNumber: s.number, reason: s.failure)
        }
        if let failure = result.failure, !failure.brokenFiles.isEmpty {
            file.brokenFiles = failure.brokenFiles.map { FailureRecord.BrokenFile(path: $0.path, reason: $0.reason) }
        }
        if !result.converterLog.isEmpty { file.converterLog = String(result.converterLog.suffix(16_384)) }
    }

    /// Creates the folders above `relative` inside `root`.
    package static func makeParents(of relative: String, under root: String) throws(SystemError) {
        var path = root
        for part in relative.split(separator: "/").dropLast() {
            path += "/" + part
            if mkdir(path, 0o750) != 0 && errno != EEXIST { throw SystemError("mkdir", path: path, errno: errno) }
        }
    }
}
