import Foundation

/// Which method finds the face and ears before the guards. Whichever it is, HD-BET's brain,
/// the margin guard, the orientation check, the field-of-view handling, the removal, the report
/// and the QC picture are the same.
public enum DefaceMethod: Sendable, Hashable, CustomStringConvertible {
    /// defacer's own rules, relative to HD-BET's brain in the head's frame (`FaceRegion`, `EarRegion`).
    case builtin
    /// The labels of a converted nnU-Net v1 model (`removeLabels` empty: every label it has).
    case nnunet(model: String, removeLabels: [Int])

    /// "builtin" or "nnunet", as `--method` and the config's `method` take it.
    public var name: String {
        switch self {
        case .builtin: "builtin"
        case .nnunet: "nnunet"
        }
    }

    public var description: String {
        switch self {
        case .builtin: "builtin"
        case .nnunet(let model, let labels): "nnunet(\(model), labels \(labels.map(String.init).joined(separator: ",")))"
        }
    }
}

/// How the face region was found, in the report.
public struct FaceRegionReport: Codable, Sendable, Equatable {
    /// "builtin" or "nnunet".
    public var method: String
    /// The model folder's name, its source and licence (model.json), for a model.
    public var model: String?
    public var modelSource: String?
    public var modelLicence: String?
    /// The model's labels that were removed, with their names ("1 (face)").
    public var removedLabels: [String]?
    /// Head tissue the model marked for removal that the brain guard kept (ml).
    public var keptByGuardML: Double?

    /// The QC picture's first words for a model (the licence cut to 40 characters; the report
    /// has it whole); the built-in method's caption is unchanged.
    var caption: String {
        let model = model ?? "", licence = modelLicence ?? "not stated"
        return "method \(method) \(model) (licence: \(licence.count > 40 ? licence.prefix(39) + "~" : licence))"
    }
}

/// The face region source a `Defacer` holds: the built-in rules or a loaded model.
enum FaceRegionSource: Sendable {
    case builtin
    case model(NNUNetFaceModel)

    init(_ method: DefaceMethod) throws(ModelError) {
        switch method {
        case .builtin: self = .builtin
        case .nnunet(let folder, let labels): self = .model(try NNUNetFaceModel(folder: folder, removeLabels: labels))
        }
    }

    /// Tissue the model marked within the guard, beyond which a warning is given (ml).
    static let guardWarningML = 1.0

    /// The face and ear regions (RAS+ order) before the guards. `brain`: HD-BET's brain continued
    /// past the field of view's edges (the built-in rules place the face below it).
    func regions(volume: NiftiVolume, view: RASReorientation, head: [UInt8], brain: [UInt8], grid: Grid3D,
                 spacing: [Double], frame: HeadFrame, removeEars: Bool, input: String,
                 clock: inout StageClock) throws(DefaceError) -> Regions {
        switch self {
        case .builtin:
            return Regions(face: FaceRegion.compute(brain: brain, grid: grid, spacing: spacing, frame: frame),
                           ears: removeEars ? EarRegion.compute(head: head, grid: grid, spacing: spacing, frame: frame)
                                            : [UInt8](repeating: 0, count: grid.count))
        case .model(let model):
            do {
                let found = try model.regions(of: volume, removeEars: removeEars)
                clock.lap("face and ears (nnU-Net \(model.folderName))")
                return Regions(face: view.toRAS(found.face), ears: view.toRAS(found.ears))
            } catch {
                throw DefaceError(.model(error.code), path: input, reason: error.description)
            }
        }
    }

    /// What the report says about the source; for a model, the head tissue it marked that the
    /// guard kept (`removal` after the guard).
    func describe(regions: Regions, removal: Removal, head: [UInt8], voxelML: Double) -> FaceRegionReport {
        guard case .model(let model) = self else { return FaceRegionReport(method: "builtin") }
        var marked = 0
        for i in head.indices where head[i] != 0 && (regions.face[i] != 0 || regions.ears[i] != 0) { marked += 1 }
        return FaceRegionReport(method: "nnunet", model: model.folderName, modelSource: model.source, modelLicence: model.licence,
                                removedLabels: model.removeLabels.map(model.describe),
                                keptByGuardML: Double(max(0, marked - removal.headRemoved)) * voxelML)
    }

    /// A warning when the model marked tissue the guard had to keep.
    static func warnings(_ report: FaceRegionReport, marginMM: Double) -> [String] {
        guard let kept = report.keptByGuardML, kept >= guardWarningML else { return [] }
        return [String(format: "the model's face or ear labels reached %.1f ml of tissue within %@ mm of the brain; the guard kept it",
                       kept, plainMM(marginMM))]
    }

    /// The report's `method` line for this source.
    func methodLine(builtin: String) -> String {
        guard case .model(let model) = self else { return builtin }
        return "nnU-Net v1 model \(model.folderName), labels \(model.removeLabels.map(model.describe).joined(separator: ", ")) "
            + "resampled to the scan's grid; HD-BET brain mask continued past the field of view; orientation checked against "
            + "the anatomy; brain margin guard, and for the ears a further distance budget"
    }

    private static func plainMM(_ v: Double) -> String { v == v.rounded() ? String(Int(v)) : String(v) }
}
