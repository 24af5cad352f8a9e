import Glibc

/// What `lstat` says about a name in a drop folder: enough to tell whether it is still being
/// written (size, mtime, inode) and what kind of thing it is. Symbolic links are not followed.
public struct DropEntry: Sendable, Equatable {
    public enum Kind: String, Sendable { case regular, directory, symlink, fifo, other }

    public var device: UInt64
    public var inode: UInt64
    public var size: Int64
    public var mtimeNanoseconds: Int64
    public var kind: Kind

    public init?(path: String) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
        size = Int64(st.st_size)
        mtimeNanoseconds = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
        switch st.st_mode & S_IFMT {
        case S_IFREG: kind = .regular
        case S_IFDIR: kind = .directory
        case S_IFLNK: kind = .symlink
        case S_IFIFO: kind = .fifo
        default: kind = .other
        }
    }
}
