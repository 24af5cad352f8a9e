import Engine
import Foundation

/// One scan of a batch: a NIfTI file or a DICOM folder, where its outputs go (relative to the
/// batch's output folder) and the checksum of the input when the batch was planned.
struct BatchItem: Codable, Sendable, Equatable {
    /// What the input is.
    enum Kind: String, Codable, Sendable {
        /// One NIfTI file.
        case nifti
        /// A folder of DICOM files (one series or a study), converted with dcm2niix.
        case dicom
    }

    /// Stable across reruns: derived from where the defaced scan goes.
    var id: String
    var kind: Kind
    /// The input, as an absolute path.
    var input: String
    var inputSHA256: String
    /// Output paths relative to the output folder: `defaced`, `faceMask`, `qcPicture`, `report`
    /// for a NIfTI file, `folder` for a DICOM folder.
    var outputs: [String: String]

    /// The path shown in progress lines and reports: the defaced output's relative path.
    var display: String { outputs["defaced"] ?? outputs["folder"] ?? id }

    init(kind: Kind, input: String, inputSHA256: String, outputs: [String: String]) {
        self.kind = kind
        self.input = input
        self.inputSHA256 = inputSHA256
        self.outputs = outputs
        id = String(FileHash.sha256(Array((outputs["defaced"] ?? outputs["folder"] ?? input).utf8)).prefix(16))
    }

    /// The relative paths of every output, the defaced scan (or folder) last.
    var placementOrder: [String] {
        ["faceMask", "qcPicture", "report", "defaced", "folder"].compactMap { outputs[$0] }
    }
}

/// How one item of a batch ended, written by the worker that defaced it (one file per item).
struct BatchOutcome: Codable, Sendable, Equatable {
    /// The end state.
    enum State: String, Codable, Sendable {
        case done
        case failed
    }

    var id: String
    var state: State
    /// Why it failed, in words a radiographer understands.
    var reason: String?
    /// Whether the next run tries again (a crash, a time limit, an input that changed meanwhile);
    /// a scan that cannot be defaced with confidence is not tried again unless it changes.
    var retryable = false
    var inputSHA256: String
    var seconds: Double = 0
    /// The worker's peak memory (MB), for sizing Slurm jobs.
    var peakMemoryMB: Int = 0
    var host: String = ""
    /// `JOBID_TASK` when a Slurm array task wrote it.
    var slurmTask: String?
    var finished: String = ""
}

/// Settings that shape the outputs; a batch folder keeps the ones it was started with.
struct BatchSettings: Codable, Sendable, Equatable {
    var mode: String
    var keepEars: Bool
    var marginMM: Double
    /// The HD-BET model folder (absolute).
    var models: String
    /// The DICOM converter (absolute path, or a name on PATH).
    var dcm2niix: String
    /// The converted nnU-Net face model (absolute) for `--method nnunet`, and its labels removed; nil: built-in.
    var faceModel: String?
    var removeLabels: [Int]?

    /// The arguments `defacer deface` takes for these settings.
    var defaceArguments: [String] {
        var args = ["--mode", mode, "--margin", String(marginMM), "--models", models]
        if keepEars { args.append("--keep-ears") }
        if let faceModel {
            args += ["--method", "nnunet", "--model", faceModel]
            if let labels = removeLabels, !labels.isEmpty { args += ["--remove-labels", labels.map(String.init).joined(separator: ",")] }
        }
        return args
    }

    /// Whether two settings give the same defaced images (the converter may move).
    func sameOutputs(as other: BatchSettings) -> Bool {
        mode == other.mode && keepEars == other.keepEars && marginMM == other.marginMM
            && faceModel == other.faceModel && (removeLabels ?? []) == (other.removeLabels ?? [])
    }
}
