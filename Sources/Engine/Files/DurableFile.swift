import CLinux
import Glibc
import SystemPackage

/// File-system steps that survive a crash or power loss: write a file whole or not at all,
/// fsync a file or a folder, and rename without ever replacing what is already there.
/// Every writer in defacer (NIfTI outputs, reports, job records, DICOM outputs) goes through here.
public enum DurableFile {
    /// Writes bytes under a hidden temporary name, fsyncs, renames to `path` (replacing an
    /// existing file only when `replacing` is set), and fsyncs the folder. On failure nothing
    /// is left behind. The file's mode is `mode` (0666 unless given) less the umask (UMask=0027
    /// under systemd).
    public static func write(_ bytes: some Sequence<UInt8>, to path: String, replacing: Bool, mode: mode_t = 0o666) throws(SystemError) {
        let tmp = temporaryName(for: path)
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(FilePath(tmp), .writeOnly, options: [.create, .exclusiveCreate, .closeOnExec],
                                         permissions: FilePermissions(rawValue: mode))
        } catch {
            throw SystemError("open", path: tmp, thrown: error)
        }
        do throws(SystemError) {
            try closing(fd, path: tmp) { fd throws(SystemError) in
                do { _ = try fd.writeAll(bytes) } catch { throw SystemError("write", path: tmp, thrown: error) }
                try sync(fd, path: tmp)
            }
            try rename(tmp, to: path, replacing: replacing)
        } catch {
            unlink(tmp)
            throw error
        }
        do { try fsyncDirectory(directory(of: path)) } catch {
            if !replacing { unlink(path) }  // a new file whose name may not survive: none rather than maybe
            throw error
        }
    }

    /// Flushes a file's data and metadata to disk; an error of fsync or of the close (where
    /// NFS reports failed writes) is reported.
    public static func fsyncFile(_ path: String) throws(SystemError) {
        try withDescriptor(path, options: [.closeOnExec]) { fd throws(SystemError) in try sync(fd, path: path) }
    }

    /// Flushes a folder's entries (new names, removals) to disk.
    public static func fsyncDirectory(_ path: String) throws(SystemError) {
        try withDescriptor(path, options: [.directory, .closeOnExec]) { fd throws(SystemError) in try sync(fd, path: path, call: "fsync folder") }
    }

    /// Renames `from` to `to`; fails with EEXIST when `to` exists, unless `replacing` is set.
    /// Without `replacing` it is `move` (atomic where the file system allows RENAME_NOREPLACE,
    /// else link and unlink, or a verified copy across mounts).
    public static func rename(_ from: String, to: String, replacing: Bool = false) throws(SystemError) {
        guard replacing else { try move(from, to: to); return }
        guard Glibc.rename(from, to) == 0 else { throw SystemError("rename", path: to, errno: Glibc.errno) }
    }

    /// The folder part of a path ("." when there is none).
    public static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// The last component of a path.
    public static func fileName(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    /// `path` made absolute against `root`, without `.` or `..` steps or a trailing slash.
    public static func resolve(_ path: String, against root: String) -> String {
        let joined = path.hasPrefix("/") ? path : root + "/" + path
        var parts: [Substring] = []
        for part in joined.split(separator: "/") {
            if part == "." || part.isEmpty { continue }
            if part == ".." { _ = parts.popLast() } else { parts.append(part) }
        }
        return "/" + parts.joined(separator: "/")
    }

    /// A hidden temporary name in the same folder as `path`, keeping its file name (and so
    /// its extension) at the end: watchers ignore it, and the final rename stays on one
    /// file system.
    public static func temporaryName(for path: String) -> String {
        let tag = String(UInt64.random(in: 0...UInt64.max), radix: 36)
        return directory(of: path) + "/" + temporaryPrefix + "\(getpid())-\(tag)-" + fileName(of: path)
    }

    /// How every temporary name begins; the writing process's id follows.
    public static let temporaryPrefix = ".defacer-tmp-"

    private static func withDescriptor(_ path: String, options: FileDescriptor.OpenOptions,
                                       _ body: (FileDescriptor) throws(SystemError) -> Void) throws(SystemError) {
        let fd: FileDescriptor
        do { fd = try FileDescriptor.open(FilePath(path), .readOnly, options: options) } catch {
            throw SystemError("open", path: path, thrown: error)
        }
        try closing(fd, path: path, body)
    }

    /// Runs `body` on `fd`, then closes it once, reporting the close's error (where NFS reports
    /// failed writes) when `body` succeeded.
    private static func closing(_ fd: FileDescriptor, path: String,
                                _ body: (FileDescriptor) throws(SystemError) -> Void) throws(SystemError) {
        do { try body(fd) } catch {
            try? fd.close()
            throw error
        }
        do { try fd.close() } catch { throw SystemError("close", path: path, thrown: error) }
    }

    private static func sync(_ fd: FileDescriptor, path: String, call: String = "fsync") throws(SystemError) {
        guard fsync(fd.rawValue) == 0 else { throw SystemError(call, path: path, errno: Glibc.errno) }
    }
}
