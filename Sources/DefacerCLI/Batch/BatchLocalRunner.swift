import DICOM
import Dispatch
import Engine
import Foundation
import Glibc
/// Runs a batch's items on this machine: `jobs` workers, each scan in its own child process of
/// the same binary (`defacer batch-task DIR --item ID`), so that a crash costs one scan.
/// SIGINT/SIGTERM stop the workers; the scans they held stay to do for the next run.
final class BatchLocalRunner: @unchecked Sendable {
    let folder: BatchFolder
    let binary: String
    let jobs: Int
    let threadsPerWorker: Int
    let progress: BatchProgress
    private let lock = NSLock()
    private var queue: [BatchItem]
    private var children: Set<pid_t> = []
    private(set) var stopped = false

    init(folder: BatchFolder, items: [BatchItem], binary: String, jobs: Int, threadsPerWorker: Int, progress: BatchProgress) {
        self.folder = folder
        queue = items.reversed()
        self.binary = binary
        self.jobs = jobs
        self.threadsPerWorker = threadsPerWorker
        self.progress = progress
    }

    /// Defaces every item; returns when all are done or after a stop.
    func run() {
        let signals = [SIGINT, SIGTERM].map { sig -> DispatchSourceSignal in
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [self] in stop() }
            source.resume()
            return source
        }
        defer { signals.forEach { $0.cancel() } }
        let group = DispatchGroup()
        for _ in 0..<jobs {
            group.enter()
            Thread.detachNewThread { [self] in
                while let item = next() { runChild(item) }
                group.leave()
            }
        }
        group.wait()
    }

    /// Stops taking items and ends the running workers.
    func stop() {
        lock.withLock {
            guard !stopped else { return }
            stopped = true
            for pid in children { kill(-pid, SIGTERM) }
        }
        progress.note("stopping: the scans in progress are left for the next run")
    }

    private func next() -> BatchItem? {
        lock.withLock { stopped ? nil : queue.popLast() }
    }

    private func runChild(_ item: BatchItem) {
        let environment = ["PATH=" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"), "LANG=C.UTF-8",
                           "DEFACER_THREADS=\(threadsPerWorker)"]
        let started: pid_t? = lock.withLock {
            guard !stopped else { return nil }
            switch Subprocess.start(binary, ["batch-task", folder.output, "--item", item.id],
                                    outputFile: folder.logPath(item.id), environment: environment) {
            case .success(let pid):
                children.insert(pid)
                return pid
            case .failure(let failure):
                BatchError.warn("cannot start \(binary): \(String(cString: strerror(failure.code)))\n")
                return nil
            }
        }
        guard let pid = started else { return }
        let ending = Subprocess.wait(for: pid, timeout: 24 * 3600)
        let interrupted = lock.withLock { () -> Bool in
            children.remove(pid)
            return stopped
        }
        if let outcome = folder.outcome(item.id) {
            progress.finished(item, outcome: outcome)
            return
        }
        if interrupted { return }
        let outcome = BatchOutcome(id: item.id, state: .failed, reason: Self.describe(ending, log: folder.logPath(item.id)),
                                   retryable: true, inputSHA256: item.inputSHA256, finished: BatchClock.timestamp())
        try? folder.record(outcome)
        progress.finished(item, outcome: outcome)
    }

    /// Why a worker ended without recording an outcome.
    static func describe(_ ending: Subprocess.Ending, log: String) -> String {
        let how: String
        switch ending {
        case .signalled(let sig): how = "the worker was killed by signal \(sig) (\(String(cString: strsignal(sig))))"
        case .exited(let code): how = "the worker exited with status \(code) without a result"
        case .timedOut: how = "the worker ran past its time limit"
        case .notStarted(let code): how = "the worker could not start: \(String(cString: strerror(code)))"
        }
        return how + "; log: \(log)"
    }
}
