import Engine
import Glibc

/// What `lstat` says about a name in a drop folder: enough to tell whether it is still being
/// written (size, mtime, inode) and what kind of thing it is. Symbolic links are not followed.
struct DropEntry: Sendable, Equatable {
    enum Kind: String, Sendable { case regular, directory, symlink, fifo, other }

    var device: UInt64
    var inode: UInt64
    var size: Int64
    var mtimeNanoseconds: Int64
    var kind: Kind

    init?(path: String) {
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

/// Which names in a drop folder are scans, which are ignored, and how outputs are named.
enum DropNames {
    /// The input forms taken from drop folders: single-file NIfTI (a `.hdr`/`.img` pair is two
    /// files that arrive separately, so pairs go to `failed` with a reason).
    static let scanExtensions = [".nii.gz", ".nii"]

    /// Names that are never looked at: hidden files (including defacer's own temporary names
    /// and the default work folder) and the usual partial-transfer names.
    static func isIgnored(_ name: String) -> Bool {
        name.hasPrefix(".") || name.hasSuffix(".part") || name.hasSuffix(".partial") || name.hasSuffix(".tmp")
            || name.hasSuffix("~") || name.hasSuffix(".crdownload") || name.hasSuffix(".filepart")
    }

    /// The scan extension of a name (`.nii.gz` or `.nii`), if it has one.
    static func scanExtension(of name: String) -> String? {
        scanExtensions.first { name.hasSuffix($0) && name.count > $0.count }
    }

    /// Whether a folder entry of this kind and name is something for the service: a scan, or
    /// something that has to be moved to `failed` with a reason. Folders that are not named like
    /// a scan are left alone (subfolders are not watched).
    static func isCandidate(_ name: String, kind: DropEntry.Kind?) -> Bool {
        guard !isIgnored(name) else { return false }
        if kind == .directory { return NiftiReader.hasNiftiExtension(name) }
        return true
    }

    /// The name without its scan extension.
    static func stem(of name: String) -> String {
        for ext in scanExtensions + [".hdr.gz", ".img.gz", ".hdr", ".img"] where name.hasSuffix(ext) && name.count > ext.count {
            return String(name.dropLast(ext.count))
        }
        return name
    }

    /// The outbox name of one output of a scan with stem `stem`, whose input ended in `ext`.
    static func outputName(stem: String, kind: OutputKind, inputExtension ext: String) -> String {
        switch kind {
        case .defaced: stem + "_defaced" + ext
        case .faceMask: stem + "_face_mask.nii.gz"
        case .brainMask: stem + "_brain_mask.nii.gz"
        case .qcPicture: stem + "_qc.png"
        case .report: stem + "_deface.json"
        }
    }

    /// A short, stable hash of a file name for logs (`printf %s NAME | sha256sum | cut -c1-12`).
    static func nameHash(_ name: String) -> String {
        String(SHA256.hex(Array(name.utf8)).prefix(12))
    }
}
