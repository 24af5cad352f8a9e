import Engine
import Foundation
/// The batch's record in `DIR/.defacer-batch/manifest.json`: the settings, the sources, every
/// planned scan with its checksum and outcome, and the Slurm jobs submitted for it.
struct BatchManifest: Codable, Sendable {
    /// One Slurm array job and the items of each of its tasks.
    struct SlurmSubmission: Codable, Sendable, Equatable {
        var jobID: String
        /// Item ids per array task index.
        var tasks: [[String]]
        var submitted: String
        /// Whether this submission retries tasks of an earlier one.
        var isResubmission = false
    }

    var format = 1
    var settings: BatchSettings
    var sources: [String]
    var items: [BatchItem] = []
    /// Outcomes by item id, folded in from the outcome files.
    var outcomes: [String: BatchOutcome] = [:]
    var slurmJobs: [SlurmSubmission] = []
    var updated = ""

    static func load(_ folder: BatchFolder) throws(BatchError) -> BatchManifest? {
        guard let data = FileManager.default.contents(atPath: folder.manifest) else { return nil }
        do { return try JSONDecoder().decode(BatchManifest.self, from: data) } catch {
            throw BatchError("\(folder.manifest) is damaged (\(error)); it is not a batch this version can resume")
        }
    }

    /// Folds the outcome files into the manifest.
    mutating func collect(from folder: BatchFolder) {
        for item in items {
            if let outcome = folder.outcome(item.id) { outcomes[item.id] = outcome } else { outcomes[item.id] = nil }
        }
    }

    func save(_ folder: BatchFolder) throws(BatchError) {
        var copy = self
        copy.updated = BatchClock.timestamp()
        try BatchFolder.writeJSON(copy, to: folder.manifest)
    }

    /// Counts by state: done, failed, still to do.
    var counts: (done: Int, failed: Int, pending: Int) {
        var done = 0, failed = 0
        for item in items {
            switch outcomes[item.id]?.state {
            case .done: done += 1
            case .failed: failed += 1
            case nil: break
            }
        }
        return (done, failed, items.count - done - failed)
    }
}

/// Wall-clock helpers for batch records.
enum BatchClock {
    static func timestamp() -> String {
        ISO8601DateFormatter().string(from: Date())
    }
}
