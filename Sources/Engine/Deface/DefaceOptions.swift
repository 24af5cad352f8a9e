/// How a scan is defaced.
public struct DefaceOptions: Sendable, Equatable {
    /// Folder of the converted HD-BET model (`model.json`, `fold*.safetensors`).
    public var modelFolder: String
    /// HD-BET fast (one network) or accurate (five networks, mirrored).
    public var mode: BrainExtractor.Mode
    /// No voxel closer than this to the brain mask is ever removed (millimetres). The one
    /// default everywhere (command line, daemon configuration, README): 4 mm.
    public var marginMM: Double
    public static let defaultMarginMM = 4.0
    /// Evaluation only: HD-BET's brain is made to miss this many millimetres of the temporal
    /// lobes' underside before the guards, to show that the second condition protects it.
    public var simulatedBrainMissMM: Double = 0
    /// Remove the ears as well as the face.
    public var removeEars: Bool
    /// Largest image accepted, in voxels over all volumes.
    public var maxVoxels: Int64
    /// Where the face and ears come from: the built-in rules or a model's labels (the guards are the same).
    public var method: DefaceMethod = .builtin
    /// Worker threads for the brain network (the service gives each job its share of the cores).
    public var threads: Int

    public init(modelFolder: String, mode: BrainExtractor.Mode = .fast, marginMM: Double = DefaceOptions.defaultMarginMM, removeEars: Bool = true,
                maxVoxels: Int64 = NiftiReader.defaultMaxVoxels, threads: Int = EngineThreads.available) {
        self.modelFolder = modelFolder
        self.mode = mode
        self.marginMM = marginMM
        self.removeEars = removeEars
        self.maxVoxels = maxVoxels
        self.threads = threads
    }
}

/// Where `Defacer.deface` writes its results; nil skips an output.
public struct DefaceOutputs: Sendable, Equatable {
    /// The defaced scan (same form, data type and geometry as the input).
    public var defaced: String
    /// The removed region as uint8 (1 = removed).
    public var faceMask: String?
    /// The brain mask used as the guard (uint8).
    public var brainMask: String?
    /// The QC picture (PNG).
    public var qcPicture: String?
    /// The report (JSON).
    public var report: String?

    public init(defaced: String, faceMask: String? = nil, brainMask: String? = nil,
                qcPicture: String? = nil, report: String? = nil) {
        self.defaced = defaced
        self.faceMask = faceMask
        self.brainMask = brainMask
        self.qcPicture = qcPicture
        self.report = report
    }

    /// The default names beside the input: `<name>_defaced.nii.gz`, `<name>_face_mask.nii.gz`,
    /// `<name>_qc.png`, `<name>_deface.json` (keeping `.nii` for an uncompressed input, and
    /// the `.hdr` pair form for a pair).
    public static func beside(_ input: String) -> DefaceOutputs {
        let stem = stem(of: input)
        let ext = input.hasSuffix(".nii") ? ".nii" : (input.hasSuffix(".hdr") || input.hasSuffix(".img") ? ".hdr" : ".nii.gz")
        let extGz = input.hasSuffix(".hdr.gz") || input.hasSuffix(".img.gz") ? ".hdr.gz" : ext
        return DefaceOutputs(defaced: stem + "_defaced" + extGz, faceMask: stem + "_face_mask.nii.gz",
                             qcPicture: stem + "_qc.png", report: stem + "_deface.json")
    }

    /// A path without its NIfTI extension (`OutputNames.stem`, kept for the evaluation's callers).
    public static func stem(of path: String) -> String { OutputNames.stem(of: path) }
}
