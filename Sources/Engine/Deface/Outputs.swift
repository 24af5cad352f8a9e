/// Output file names derived from an input's name.
enum OutputNames {
    /// `dir/scan.nii.gz` + `_defaced` -> `dir/scan_defaced.nii.gz` (always gzipped NIfTI).
    static func beside(_ input: String, suffix: String, extension ext: String = ".nii.gz") -> String {
        stem(of: input) + suffix + ext
    }

    /// The input path without its NIfTI extension.
    static func stem(of path: String) -> String {
        for ext in [".nii.gz", ".hdr.gz", ".img.gz", ".nii", ".hdr", ".img"] where path.hasSuffix(ext) {
            return String(path.dropLast(ext.count))
        }
        return path
    }
}
