import Engine
import Foundation
import Glibc

/// The durable state of one claimed scan, `work/<scan id>/job.json`: written (fsynced) before
/// the claiming rename, updated before each attempt (so a scan that keeps crashing the service
/// is set aside) and before its results move out (so a crash half-way through finishes the
/// moves instead of defacing again). Removed last, when the scan is done or failed.
struct JobRecord: Codable, Sendable, Equatable {
    enum Phase: String, Codable, Sendable {
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
    enum Source: String, Codable, Sendable {
        case nifti
        case dicom
    }

    /// One rename still to do: from a name in the job folder to an absolute path.
    struct Move: Codable, Sendable, Equatable {
        var from: String
        var to: String
    }

    var format = 1
    var scanID: String
    /// The inbox's folder (the record lives in that inbox's work folder).
    var inbox: String
    /// The file's name in the inbox (never given to a library or logged unless configured).
    var originalName: String
    /// `<scan id><ext>`: the claimed scan in the job folder.
    var claimedName: String
    var phase: Phase
    /// Times defacing this scan was started.
    var attempts = 0
    /// Times an output could not be written (disk full...), retried later.
    var writeFailures = 0
    var claimedAt: String
    var moves: [Move] = []
    /// After the moves: remove the original, or move it to this path.
    var archiveTo: String?
    /// `dicom` for a dropped folder (`claimedName` is then the folder); nil or `nifti` for a file.
    var source: Source?

    static let fileName = "job.json"

    /// Reads `folder/job.json`.
    static func read(folder: String) -> JobRecord? {
        guard let data = FileManager.default.contents(atPath: folder + "/" + fileName) else { return nil }
        return try? JSONDecoder().decode(JobRecord.self, from: data)
    }

    /// Writes `folder/job.json` durably: temporary name, fsync, rename over the old one, fsync the folder.
    func write(folder: String) throws(SystemError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = (try? encoder.encode(self)) ?? Data()
        try DurableWrite.write(data, to: folder + "/" + Self.fileName, replacing: true)
    }
}

/// Small durable file steps on top of the Engine's `DurableFile`.
enum DurableWrite {
    /// Writes bytes under a hidden temporary name, fsyncs, renames (replacing or not), fsyncs the folder.
    static func write(_ data: Data, to path: String, replacing: Bool) throws(SystemError) {
        let tmp = DurableFile.temporaryName(for: path)
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)  // the umask decides (UMask=0027 under systemd)
        guard fd >= 0 else { throw SystemError("open", path: tmp, errno: errno) }
        var failure: SystemError?
        data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = SystemError("write", path: tmp, errno: errno)
                    return
                }
                offset += n
            }
        }
        if failure == nil, fsync(fd) != 0 { failure = SystemError("fsync", path: tmp, errno: errno) }
        close(fd)
        if let failure {
            unlink(tmp)
            throw failure
        }
        do {
            try DurableFile.rename(tmp, to: path, replacing: replacing)
            try DurableFile.fsyncDirectory(DurableFile.directory(of: path))
        } catch {
            unlink(tmp)
            throw SystemError(error.operation, path: error.path, errno: error.errno)
        }
    }

    static func fsyncFolder(_ path: String) throws(SystemError) {
        do { try DurableFile.fsyncDirectory(path) } catch {
            throw SystemError(error.operation, path: error.path, errno: error.errno)
        }
    }

    /// Removes a folder and everything in it (job folders only: no links are followed).
    static func removeTree(_ path: String) {
        if let dir = opendir(path) {
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                }
                if name == "." || name == ".." { continue }
                let child = path + "/" + name
                var st = stat()
                if lstat(child, &st) == 0, st.st_mode & S_IFMT == S_IFDIR { removeTree(child) } else { unlink(child) }
            }
            closedir(dir)
        }
        rmdir(path)
    }

    /// The names in a folder (without `.` and `..`), or nil when it cannot be listed.
    static func list(_ path: String) -> [String]? {
        guard let dir = opendir(path) else { return nil }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}
