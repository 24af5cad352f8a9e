/// One output of a defaced scan, named `<stem><suffix>` beside it or in the outbox.
public enum OutputKind: String, Sendable, Hashable, CaseIterable {
    case defaced = "defaced"
    case faceMask = "face_mask"
    case brainMask = "brain_mask"
    case qcPicture = "qc_picture"
    case report = "report"
}

/// Output file names derived from an input's name: one place for the command line, the
/// drop folders and the DICOM study defacer.
public enum OutputNames {
    /// The NIfTI extensions a stem is taken without (longest first where they overlap).
    public static let niftiExtensions = [".nii.gz", ".nii", ".hdr.gz", ".img.gz", ".hdr", ".img"]

    /// `dir/scan.nii.gz` + `_defaced` -> `dir/scan_defaced.nii.gz` (always gzipped NIfTI).
    public static func beside(_ input: String, suffix: String, extension ext: String = ".nii.gz") -> String {
        stem(of: input) + suffix + ext
    }

    /// The name or path without its NIfTI extension (a name that is only an extension is kept).
    public static func stem(of path: String) -> String {
        for ext in niftiExtensions where path.hasSuffix(ext) && path.count > ext.count {
            return String(path.dropLast(ext.count))
        }
        return path
    }

    /// The name of one output of a scan with stem `stem`, whose input ended in `ext`.
    public static func outputName(stem: String, kind: OutputKind, inputExtension ext: String) -> String {
        switch kind {
        case .defaced: stem + "_defaced" + ext
        case .faceMask: stem + "_face_mask.nii.gz"
        case .brainMask: stem + "_brain_mask.nii.gz"
        case .qcPicture: stem + "_qc.png"
        case .report: stem + "_deface.json"
        }
    }
}
