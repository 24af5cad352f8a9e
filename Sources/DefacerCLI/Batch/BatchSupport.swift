import Engine
import Foundation
import Glibc

/// An exclusive lock on a batch folder, so that two runs never deface the same scans at once.
struct BatchLock {
    let fd: Int32

    init(_ folder: BatchFolder) throws(BatchError) {
        fd = open(folder.state + "/lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw BatchError("cannot open \(folder.state)/lock: \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw BatchError("another defacer batch is running on \(folder.output); wait for it or stop it first")
        }
    }

    func release() { close(fd) }
}

/// How many local workers fit: one per core, no more than memory allows for the measured
/// (or assumed) peak memory of a scan; the cores are shared out as engine threads.
enum BatchCapacity {
    static let assumedPeakMB = 3072

    static func workers(requested: Int?, measured: [BatchOutcome]) -> (workers: Int, threads: Int) {
        let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
        let peak = measured.filter { $0.state == .done }.map(\.peakMemoryMB).max() ?? assumedPeakMB
        let memoryMB = Int(ProcessInfo.processInfo.physicalMemory / (1 << 20))
        let fit = max(1, min(cores, memoryMB * 3 / 4 / max(peak, 256)))
        let workers = requested ?? fit
        return (workers, max(1, cores / workers))
    }
}

/// Copies a BIDS dataset's other files into the output (never over an existing file) and
/// writes the dataset descriptions: the defaced dataset's and `derivatives/defacer/`'s.
struct BatchCopier {
    var folder: BatchFolder
    var settings: BatchSettings

    func copy(_ plan: BatchPlan) throws(BatchError) {
        for copy in plan.copies {
            let target = folder.absolute(copy.to)
            if access(target, F_OK) == 0 { continue }
            try BatchFolder.makeFolders(DurableFile.directory(of: target))
            let temporary = DurableFile.temporaryName(for: target)
            do {
                try FileManager.default.copyItem(atPath: copy.from, toPath: temporary)
                try DurableFile.fsyncFile(temporary)
                try DurableFile.rename(temporary, to: target)
            } catch {
                unlink(temporary)
                throw BatchError("cannot copy \(copy.from) to \(target): \(error)")
            }
        }
        for dataset in plan.datasets {
            let root = folder.absolute(BidsLayout.prefix(dataset.root))
            let original = FileManager.default.contents(atPath: dataset.source + "/dataset_description.json")
            try writeOnce(BidsLayout.defacedDescription(original, settings: settings), to: root + "dataset_description.json")
            try BatchFolder.makeFolders(root + BidsLayout.derivativesFolder)
            try writeOnce(BidsLayout.derivativeDescription(settings: settings),
                          to: root + BidsLayout.derivativesFolder + "/dataset_description.json")
        }
    }

    func writeOnce(_ object: [String: Any], to path: String) throws(BatchError) {
        if access(path, F_OK) == 0 { return }
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]) else {
            throw BatchError("cannot encode \(path)")
        }
        do { try DurableFile.write(data + Data("\n".utf8), to: path, replacing: false) } catch {
            throw BatchError("cannot write \(path): \(error.description)")
        }
    }
}
