import Engine
import Foundation
import Glibc

/// Defaces one batch item with `defacer deface`'s own path into a work folder, moves the outputs
/// into the output tree (the defaced scan last) and records the outcome. A scan that fails
/// leaves nothing in the output tree.
struct BatchWorker {
    var folder: BatchFolder
    var settings: BatchSettings

    /// Defaces `item` unless its outcome says it is done; returns the recorded outcome.
    @discardableResult
    func run(_ item: BatchItem) throws(BatchError) -> BatchOutcome {
        if let earlier = folder.outcome(item.id), earlier.state == .done { return earlier }
        let started = monotonicSeconds()
        var outcome = BatchOutcome(id: item.id, state: .done, inputSHA256: item.inputSHA256)
        do {
            try deface(item)
        } catch {
            outcome.state = .failed
            outcome.reason = error.message
            outcome.retryable = error.retryable
        }
        outcome.seconds = monotonicSeconds() - started
        outcome.peakMemoryMB = Self.peakMemoryMB()
        outcome.host = ProcessInfo.processInfo.hostName
        let env = ProcessInfo.processInfo.environment
        if let job = env["SLURM_ARRAY_JOB_ID"], let task = env["SLURM_ARRAY_TASK_ID"] { outcome.slurmTask = "\(job)_\(task)" }
        outcome.finished = BatchClock.timestamp()
        try folder.record(outcome)
        return outcome
    }

    /// Why one item failed.
    struct Failure: Error {
        var message: String
        var retryable = false
    }

    func deface(_ item: BatchItem) throws(Failure) {
        let current: String
        do {
            current = item.kind == .dicom ? try BatchSources.hash(folder: item.input) : try BatchSources.hash(file: item.input)
        } catch { throw Failure(message: error.message, retryable: true) }
        guard current == item.inputSHA256 else {
            throw Failure(message: "the input changed after the batch was planned; run the batch again", retryable: true)
        }
        let staging = folder.work + "/" + item.id  // one worker per item at a time
        DurableFile.removeTree(staging)
        do { try BatchFolder.makeFolders(staging) } catch { throw Failure(message: error.message, retryable: true) }
        defer { DurableFile.removeTree(staging) }
        let staged = { (key: String) in staging + "/" + DurableFile.fileName(of: item.outputs[key] ?? key) }
        var arguments = [item.input]
        switch item.kind {
        case .nifti:
            arguments += ["--output", staged("defaced"), "--mask", staged("faceMask"), "--qc", staged("qcPicture"),
                          "--report", staged("report")]
        case .dicom:
            arguments += ["--output", staged("folder"), "--dcm2niix", settings.dcm2niix]
        }
        do {
            let command = try DefaceCommand.parse(arguments + settings.defaceArguments)
            try command.run()
        } catch let failure as CommandFailure {
            var message = failure.message
            if message.hasPrefix(item.input + ": ") { message.removeFirst(item.input.count + 2) }
            throw Failure(message: message)
        } catch {
            throw Failure(message: "\(error)")
        }
        try place(item, from: staging)
    }

    /// Moves the staged outputs to their places (the defaced scan last). Leftovers of an earlier,
    /// unfinished try of this same item are removed first; a finished item is never touched.
    func place(_ item: BatchItem, from staging: String) throws(Failure) {
        for relative in item.placementOrder {
            let target = folder.absolute(relative)
            let parent = DurableFile.directory(of: target)
            do {
                try BatchFolder.makeFolders(parent)
                if access(target, F_OK) == 0 { DurableFile.removeTree(target); unlink(target) }
                try DurableFile.rename(staging + "/" + DurableFile.fileName(of: relative), to: target)
                try DurableFile.fsyncDirectory(parent)
            } catch let error as SystemError {
                throw Failure(message: "cannot place \(relative): \(error.description)", retryable: true)
            } catch {
                throw Failure(message: "cannot place \(relative): \(error)", retryable: true)
            }
        }
    }

    static func peakMemoryMB() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_maxrss / 1024
    }
}
