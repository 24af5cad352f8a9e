import Engine
import Foundation
import Glibc

/// The batch's own files inside the output folder, under `.defacer-batch/` (hidden, so a BIDS
/// dataset stays valid): the manifest, one outcome file per scan, workers' logs, work folders
/// and Slurm's files.
struct BatchFolder: Sendable {
    /// The output folder (absolute).
    let output: String

    init(output: String) {
        self.output = output
    }

    var state: String { output + "/.defacer-batch" }
    var manifest: String { state + "/manifest.json" }
    var outcomes: String { state + "/outcomes" }
    var logs: String { state + "/logs" }
    var work: String { state + "/work" }
    var slurm: String { state + "/slurm" }

    func outcomePath(_ id: String) -> String { outcomes + "/\(id).json" }
    func logPath(_ id: String) -> String { logs + "/\(id).log" }
    func absolute(_ relative: String) -> String { output + "/" + relative }

    /// Creates the folders (and the output folder itself).
    func prepare() throws(BatchError) {
        for path in [output, state, outcomes, logs, work, slurm] {
            try Self.makeFolders(path)
        }
    }

    /// The outcome a worker recorded for an item, if any.
    func outcome(_ id: String) -> BatchOutcome? {
        guard let data = FileManager.default.contents(atPath: outcomePath(id)) else { return nil }
        return try? JSONDecoder().decode(BatchOutcome.self, from: data)
    }

    /// Records an item's outcome durably (replacing an earlier one of an unfinished try).
    func record(_ outcome: BatchOutcome) throws(BatchError) {
        try Self.writeJSON(outcome, to: outcomePath(outcome.id))
    }

    /// Forgets an item's outcome, so that the next run defaces it again.
    func forget(_ id: String) {
        unlink(outcomePath(id))
    }

    /// `mkdir -p`, failing with a readable reason.
    static func makeFolders(_ path: String) throws(BatchError) {
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw BatchError("cannot create the folder \(path): \(error.localizedDescription)")
        }
    }

    /// Writes a value as pretty JSON under a temporary name, fsynced, renamed over the old file.
    static func writeJSON<T: Encodable>(_ value: T, to path: String) throws(BatchError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data: Data
        do { data = try encoder.encode(value) } catch { throw BatchError("cannot encode \(path): \(error)") }
        do { try DurableFile.write(data, to: path, replacing: true) } catch {
            throw BatchError("cannot write \(path): \(error)")
        }
    }
}

/// A batch problem shown to the user as is.
struct BatchError: Error, CustomStringConvertible, Sendable {
    var message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}

extension BatchError {
    /// Writes a line on standard error.
    static func warn(_ line: String) {
        FileHandle.standardError.write(Data(line.utf8))
    }
}
