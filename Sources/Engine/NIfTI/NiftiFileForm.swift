/// How a NIfTI image is laid out on disk: header version, one file or a pair, compression.
public struct NiftiFileForm: Sendable, Equatable, CustomStringConvertible {
    /// NIfTI-1 (348-byte header), NIfTI-2 (540-byte header) or the older ANALYZE 7.5.
    public enum Version: Int, Sendable { case analyze = 0, nifti1 = 1, nifti2 = 2 }

    public var version: Version
    /// `true` for a `.hdr`/`.img` pair, `false` for a single `.nii`.
    public var isPair: Bool
    /// `true` when the files are gzipped.
    public var isCompressed: Bool

    public init(version: Version, isPair: Bool, isCompressed: Bool) {
        self.version = version
        self.isPair = isPair
        self.isCompressed = isCompressed
    }

    /// libnifti's `nifti_type` code for this form (ANALYZE is written as a NIfTI-1 pair).
    var niftiType: Int32 {
        switch (version, isPair) {
        case (.nifti2, false): 4
        case (.nifti2, true): 5
        case (_, false): 1
        case (_, true): 2
        }
    }

    init(niftiType: Int32, path: String) {
        switch niftiType {
        case 1: version = .nifti1; isPair = false
        case 2: version = .nifti1; isPair = true
        case 4: version = .nifti2; isPair = false
        case 5: version = .nifti2; isPair = true
        default: version = .analyze; isPair = true
        }
        isCompressed = path.hasSuffix(".gz")
    }

    public var description: String {
        let name = switch version {
        case .analyze: "ANALYZE 7.5"
        case .nifti1: "NIfTI-1"
        case .nifti2: "NIfTI-2"
        }
        return name + (isPair ? " .hdr/.img" : " .nii") + (isCompressed ? " gzipped" : "")
    }
}
