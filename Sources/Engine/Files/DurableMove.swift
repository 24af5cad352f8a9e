import CLinux
import Glibc

/// How a move that never replaces a file was done on a pair of folders.
public enum MoveMethod: String, Sendable {
    /// `renameat2(RENAME_NOREPLACE)`: atomic, the usual case on local file systems.
    case rename = "rename"
    /// `link` then `unlink` (link fails when the target exists): where RENAME_NOREPLACE is
    /// refused (NFS, some FUSE and overlay file systems).
    case link = "link+unlink"
    /// A copy under a temporary name in the target folder, fsynced and verified (size and
    /// SHA-256), linked into place, then the source removed: across bind mounts (EXDEV).
    case copy = "copy+verify"
}

/// Moves that work on every file system a lab uses and never replace an existing file.
extension DurableFile {
    /// Moves `from` to `to` without ever replacing anything there (EEXIST when `to` exists
    /// and is another file), by rename where the file system allows it, else by link and
    /// unlink, else (across mounts) by a verified copy. A file that is already at `to` (the
    /// same inode, or the same bytes: a move that a crash stopped half-way) completes the
    /// move. Folders (DICOM series) move too. The folders are fsynced only on the copy path;
    /// callers fsync both folders as they did after a rename.
    /// `move`, for callers that look at C's errno: nil once moved, else the reason.
    public static func moveFailure(_ from: String, to: String) -> Int32? {
        do { try move(from, to: to); return nil } catch { return error.errno }
    }

    @discardableResult
    public static func move(_ from: String, to: String) throws(SystemError) -> MoveMethod {
        if dfc_rename_noreplace(from, to) == 0 { return .rename }
        let first = Glibc.errno
        switch first {
        case EEXIST:
            if try completeIfAlreadyThere(from, to) { return .rename }
            throw SystemError("rename", path: to, errno: EEXIST)
        case EINVAL, ENOSYS, ENOTSUP, EPERM:
            return try moveWithoutRename(from, to: to, renameError: first)
        case EXDEV:
            try copyMove(from, to: to)
            return .copy
        default:
            throw SystemError("rename", path: to, errno: first)
        }
    }

    /// RENAME_NOREPLACE refused: a file is linked then unlinked; a folder is moved over an
    /// empty folder made for it (mkdir fails when the name is taken; rename(2) replaces only
    /// an empty folder).
    private static func moveWithoutRename(_ from: String, to: String, renameError: Int32) throws(SystemError) -> MoveMethod {
        if DropEntry(path: from)?.kind == .directory {
            guard mkdir(to, 0o750) == 0 else { throw SystemError("mkdir", path: to, errno: Glibc.errno) }
            guard Glibc.rename(from, to) == 0 else {
                let e = Glibc.errno
                rmdir(to)
                if e == EXDEV { try copyMove(from, to: to); return .copy }
                throw SystemError("rename", path: to, errno: e)
            }
            return .rename
        }
        if link(from, to) == 0 {
            guard unlink(from) == 0 || Glibc.errno == ENOENT else { throw SystemError("unlink", path: from, errno: Glibc.errno) }
            return .link
        }
        let e = Glibc.errno
        switch e {
        case EEXIST:
            if try completeIfAlreadyThere(from, to) { return .link }
            throw SystemError("link", path: to, errno: EEXIST)
        case EXDEV:
            try copyMove(from, to: to)
            return .copy
        case EPERM, ENOTSUP, ENOSYS:
            throw SystemError("rename", path: to, errno: renameError)  // neither rename nor link: nothing safe is left
        default:
            throw SystemError("link", path: to, errno: e)
        }
    }

    /// Whether `to` already holds what `from` holds (one inode, or a regular file with the same
    /// size and SHA-256: a move a crash stopped between link or copy and unlink): then `from`
    /// is removed and the move is complete.
    public static func completeIfAlreadyThere(_ from: String, _ to: String) throws(SystemError) -> Bool {
        guard let a = DropEntry(path: from), let b = DropEntry(path: to), a.kind == .regular, b.kind == .regular else { return false }
        func sameContent() -> Bool {
            guard a.size == b.size, let digest = FileHash.sha256(ofRegularFile: from, followLinks: false) else { return false }
            return digest == FileHash.sha256(ofRegularFile: to, followLinks: false)
        }
        guard (a.device == b.device && a.inode == b.inode) || sameContent() else { return false }
        guard unlink(from) == 0 || Glibc.errno == ENOENT else { throw SystemError("unlink", path: from, errno: Glibc.errno) }
        return true
    }

    /// Across mounts: a copy under a temporary name in the target folder, fsynced and checked
    /// against the source (size and SHA-256), put in place without replacing anything, both
    /// folders fsynced, and only then the source removed.
    private static func copyMove(_ from: String, to: String) throws(SystemError) {
        // across mounts the kernel says EXDEV before it looks at the target
        if DropEntry(path: to) != nil {
            if try completeIfAlreadyThere(from, to) { return }
            throw SystemError("rename", path: to, errno: EEXIST)
        }
        let tmp = temporaryName(for: to)
        do throws(SystemError) {
            try copyVerified(from, to: tmp)
            try placeCopy(tmp, at: to)
        } catch {
            removeTree(tmp)
            throw error
        }
        try fsyncDirectory(directory(of: to))
        if DropEntry(path: from)?.kind == .directory { removeTree(from) } else {
            guard unlink(from) == 0 || Glibc.errno == ENOENT else { throw SystemError("unlink", path: from, errno: Glibc.errno) }
        }
        try fsyncDirectory(directory(of: from))
    }

    /// Puts the verified copy `tmp` at `to` (same folder, so same file system) without replacing.
    private static func placeCopy(_ tmp: String, at to: String) throws(SystemError) {
        if dfc_rename_noreplace(tmp, to) == 0 { return }
        let e = Glibc.errno
        guard e == EINVAL || e == ENOSYS || e == ENOTSUP else { throw SystemError("rename", path: to, errno: e) }
        _ = try moveWithoutRename(tmp, to: to, renameError: e)
    }

    /// Copies a regular file (or a folder of them, recursively) to `to`, which must not exist;
    /// every file is fsynced and re-read against its source.
    private static func copyVerified(_ from: String, to: String) throws(SystemError) {
        guard let entry = DropEntry(path: from) else { throw SystemError("open", path: from, errno: Glibc.errno) }
        switch entry.kind {
        case .directory:
            guard mkdir(to, 0o750) == 0 else { throw SystemError("mkdir", path: to, errno: Glibc.errno) }
            guard let names = list(from) else { throw SystemError("opendir", path: from, errno: Glibc.errno) }
            for name in names { try copyVerified(from + "/" + name, to: to + "/" + name) }
            try fsyncDirectory(to)
        case .regular:
            try copyFile(from, to: to)
        default:
            throw SystemError("copy", path: from, errno: EINVAL)  // links, pipes: never followed or read
        }
    }
}

extension DurableFile {
    /// Copies one regular file in 1 MiB pieces to a new `to` (same mode), fsyncs and closes it
    /// (errors checked), then compares its size and SHA-256 with the source's.
    static func copyFile(_ from: String, to: String) throws(SystemError) {
        let src = open(from, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard src >= 0 else { throw SystemError("open", path: from, errno: Glibc.errno) }
        defer { Glibc.close(src) }
        var st = stat()
        guard fstat(src, &st) == 0 else { throw SystemError("stat", path: from, errno: Glibc.errno) }
        let dst = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st.st_mode & 0o7777)
        guard dst >= 0 else { throw SystemError("open", path: to, errno: Glibc.errno) }
        var failure: SystemError?
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        copying: while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(src, $0.baseAddress, $0.count) }
            if n < 0 && Glibc.errno == EINTR { continue }
            if n < 0 { failure = SystemError("read", path: from, errno: Glibc.errno); break }
            if n == 0 { break }
            var done = 0
            while done < n {
                let w = buffer.withUnsafeBytes { Glibc.write(dst, $0.baseAddress! + done, n - done) }
                if w < 0 && Glibc.errno == EINTR { continue }
                if w <= 0 { failure = SystemError("write", path: to, errno: w < 0 ? Glibc.errno : EIO); break copying }
                done += w
            }
        }
        if failure == nil, fsync(dst) != 0 { failure = SystemError("fsync", path: to, errno: Glibc.errno) }
        if Glibc.close(dst) != 0, failure == nil { failure = SystemError("close", path: to, errno: Glibc.errno) }
        if let failure { unlink(to); throw failure }
        let copied = DropEntry(path: to)
        guard copied?.size == Int64(st.st_size),
              let want = FileHash.sha256(ofRegularFile: from, followLinks: false),
              FileHash.sha256(ofRegularFile: to, followLinks: false) == want else {
            unlink(to)
            throw SystemError("verify", path: to, errno: EIO)  // the copy does not read back as the source
        }
    }

    /// Which move works from folder `from` to folder `to` (the same folder for a rename within
    /// it), tried with a small file of defacer's own, hidden, removed afterwards.
    public static func trialMove(from: String, to: String) throws(SystemError) -> MoveMethod {
        let source = temporaryName(for: from + "/trial")
        try write([UInt8]("defacer rename trial\n".utf8), to: source, replacing: false)
        let target = temporaryName(for: to + "/trial")
        defer { unlink(source); unlink(target) }
        return try move(source, to: target)
    }
}
