import Engine
import Foundation
import Glibc

/// Walking source folders and checksumming inputs.
enum BatchSources {
    /// A scan found in a folder: a NIfTI file, or a folder holding DICOM files.
    struct Found: Sendable {
        var relative: String
        var isDicom: Bool
    }

    static func isNifti(_ path: String) -> Bool {
        [".nii", ".nii.gz", ".hdr", ".hdr.gz"].contains { path.hasSuffix($0) }
    }

    /// Every regular file under `folder` (relative, sorted), hidden names and the top-level
    /// folders in `skipping` left out.
    static func files(under folder: String, skipping: Set<String> = []) -> [String] {
        var result: [String] = []
        walk(folder, relative: "") { relative, isFolder in
            if isFolder { return !skipping.contains(relative) }
            result.append(relative)
            return true
        }
        return result.sorted()
    }

    /// The NIfTI files and DICOM folders under `folder` (a DICOM folder is not walked further).
    static func scans(under folder: String) -> [Found] {
        if holdsDicom(folder) { return [Found(relative: "", isDicom: true)] }
        var found: [Found] = []
        walk(folder, relative: "") { relative, isFolder in
            if isFolder {
                guard holdsDicom(folder + "/" + relative) else { return true }
                found.append(Found(relative: relative, isDicom: true))
                return false
            }
            if isNifti(relative) { found.append(Found(relative: relative, isDicom: false)) }
            return true
        }
        return found.sorted { $0.relative < $1.relative }
    }

    /// Calls `visit(relative, isFolder)` for every entry not hidden; a folder is entered when
    /// `visit` returns true. Links are not followed.
    static func walk(_ root: String, relative: String, visit: (String, Bool) -> Bool) {
        let folder = relative.isEmpty ? root : root + "/" + relative
        for name in (DurableFile.list(folder) ?? []).sorted() where !name.hasPrefix(".") {
            let child = relative.isEmpty ? name : relative + "/" + name
            var st = stat()
            guard lstat(root + "/" + child, &st) == 0 else { continue }
            switch st.st_mode & S_IFMT {
            case S_IFDIR: if visit(child, true) { walk(root, relative: child, visit: visit) }
            case S_IFREG: _ = visit(child, false)
            default: continue
            }
        }
    }

    /// Whether a folder directly holds a DICOM file ("DICM" at byte 128).
    static func holdsDicom(_ folder: String) -> Bool {
        for name in (DurableFile.list(folder) ?? []).prefix(64) where !name.hasPrefix(".") {
            let fd = open(folder + "/" + name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            var magic = [UInt8](repeating: 0, count: 4)
            if pread(fd, &magic, 4, 128) == 4, magic == Array("DICM".utf8) { return true }
        }
        return false
    }

    /// The SHA-256 of a file's bytes.
    static func hash(file path: String) throws(BatchError) -> String {
        guard let digest = FileHash.sha256(ofRegularFile: path) else {
            throw BatchError("cannot read \(path): \(String(cString: strerror(errno)))")
        }
        return digest
    }

    /// The SHA-256 of a folder's files: of each relative name with its file's SHA-256, in name order.
    static func hash(folder path: String) throws(BatchError) -> String {
        var listing: [UInt8] = []
        for relative in files(under: path) {
            listing += Array(relative.utf8) + [0] + Array(try hash(file: path + "/" + relative).utf8) + [10]
        }
        return FileHash.sha256(listing)
    }
}
