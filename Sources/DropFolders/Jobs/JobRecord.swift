import Engine
import Foundation
import Glibc

/// The durable state of one claimed scan, `work/<scan id>/job.json`: written (fsynced) before
/// the claiming rename, updated before each attempt (so a scan that keeps crashing the service
/// is set aside) and before its results move out (so a crash half-way through finishes the
/// moves instead of defacing again). Removed last, when the scan is done or failed.
package struct JobRecord: Codable, Sendable, Equatable {
    package enum Phase: String, Codable, Sendable {
        /// Written before the rename from the inbox; the scan may or may not be in the work folder.
        case claiming
        /// Being defaced (attempts counts the starts).
        case processing
        /// Outputs are complete in the work folder; `moves` says where each goes.
        case publishing
        /// The scan and its reason file go to `failed` as `moves` says.
        case failing
    }

    /// What was dropped: a NIfTI file, or a folder of DICOM files.
    package enum Source: String, Codable, Sendable {
        case nifti
        case dicom
    }

    /// One rename still to do: from a name in the job folder to an absolute path.
    package struct Move: Codable, Sendable, Equatable {
        package var from: String
        package var to: String
    }

    package var format = 1
    package var scanID: String
    /// The inbox's folder (the record lives in that inbox's work folder).
    package var inbox: String
    /// The file's name in the inbox (never given to a library or logged unless configured).
    package var originalName: String
    /// `<scan id><ext>`: the claimed scan in the job folder.
    package var claimedName: String
    package var phase: Phase
    /// Times defacing this scan was started.
    package var attempts = 0
    /// Times an output could not be written (disk full...), retried later.
    package var writeFailures = 0
    package var claimedAt: String
    package var moves: [Move] = []
    /// After the moves: remove the original, or move it to this path.
    package var archiveTo: String?
    /// `dicom` for a dropped folder (`claimedName` is then the folder); nil or `nifti` for a file.
    package var source: Source?
    /// A DICOM folder's bytes in regular files when it settled (its snapshot's count): the
    /// worker's memory limit is sized from it without walking the folder again.
    package var folderBytes: Int64?
    /// With `executor = "slurm"`: the Slurm job of the current attempt (a restart waits for it
    /// instead of submitting the scan again).
    package var slurmJobID: String?

    package static let fileName = "job.json"

    /// Reads `folder/job.json`.
    package static func read(folder: String) -> JobRecord? {
        guard let data = FileManager.default.contents(atPath: folder + "/" + fileName) else { return nil }
        return try? JSONDecoder().decode(JobRecord.self, from: data)
    }

    /// Writes `folder/job.json` durably: temporary name, fsync, rename over the old one, fsync the folder.
    package func write(folder: String) throws(SystemError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = (try? encoder.encode(self)) ?? Data()
        try DurableFile.write(data, to: folder + "/" + Self.fileName, replacing: true)
    }
}
