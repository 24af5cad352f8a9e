import Engine
import Glibc

/// Which names in a drop folder are scans, which are ignored, and how outputs are named.
package enum DropNames {
    /// The input forms taken from drop folders: single-file NIfTI (a `.hdr`/`.img` pair is two
    /// files that arrive separately, so pairs go to `failed` with a reason).
    package static let scanExtensions = [".nii.gz", ".nii"]

    /// Names that are never looked at: hidden files (including defacer's own temporary names
    /// and the default work folder) and the usual partial-transfer names.
    package static func isIgnored(_ name: String) -> Bool {
        name.hasPrefix(".") || name.hasSuffix(".part") || name.hasSuffix(".partial") || name.hasSuffix(".tmp")
            || name.hasSuffix("~") || name.hasSuffix(".crdownload") || name.hasSuffix(".filepart")
    }

    /// The scan extension of a name (`.nii.gz` or `.nii`), if it has one.
    package static func scanExtension(of name: String) -> String? {
        scanExtensions.first { name.hasSuffix($0) && name.count > $0.count }
    }

    /// Whether a folder entry of this kind and name is something for the service: a scan, or
    /// something that has to be moved to `failed` with a reason. Folders that are not named like
    /// a scan are left alone (subfolders are not watched).
    package static func isCandidate(_ name: String, kind: DropEntry.Kind?) -> Bool {
        guard !isIgnored(name) else { return false }
        if kind == .directory { return NiftiReader.hasNiftiExtension(name) }
        return true
    }
}
