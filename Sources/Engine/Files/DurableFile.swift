import CLinux
import Glibc

/// File-system steps that survive a crash or power loss: fsync a file, fsync a folder,
/// and rename without ever replacing what is already there.
public enum DurableFile {
    /// Why a durable file step failed: the call, the path and the system's reason.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var operation: String
        public var path: String
        public var errno: Int32

        public var description: String {
            "\(operation) \(path): \(String(cString: strerror(errno)))"
        }
    }

    /// Flushes a file's data and metadata to disk; an error of fsync or of the close (where
    /// NFS reports failed writes) is reported.
    public static func fsyncFile(_ path: String) throws(Failure) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure(operation: "open", path: path, errno: errno) }
        guard fsync(fd) == 0 else {
            let failure = Failure(operation: "fsync", path: path, errno: errno)
            close(fd)
            throw failure
        }
        guard close(fd) == 0 else { throw Failure(operation: "close", path: path, errno: errno) }
    }

    /// Flushes a folder's entries (new names, removals) to disk.
    public static func fsyncDirectory(_ path: String) throws(Failure) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure(operation: "open", path: path, errno: errno) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw Failure(operation: "fsync", path: path, errno: errno) }
    }

    /// Renames `from` to `to` atomically; fails with EEXIST when `to` exists, unless
    /// `replacing` is set.
    public static func rename(_ from: String, to: String, replacing: Bool = false) throws(Failure) {
        let rc = replacing ? Glibc.rename(from, to) : dfc_rename_noreplace(from, to)
        guard rc == 0 else { throw Failure(operation: "rename", path: to, errno: errno) }
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

    /// A hidden temporary name in the same folder as `path`, keeping its file name (and so
    /// its extension) at the end: watchers ignore it, and the final rename stays on one
    /// file system.
    public static func temporaryName(for path: String) -> String {
        let tag = String(UInt64.random(in: 0...UInt64.max), radix: 36)
        return directory(of: path) + "/.defacer-tmp-\(getpid())-\(tag)-" + fileName(of: path)
    }
}
