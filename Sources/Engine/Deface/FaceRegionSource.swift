import Foundation

/// Which method finds the face and ears before the guards. Whichever it is, HD-BET's brain,
/// the margin guard, the orientation check, the field-of-view handling, the removal, the report
/// and the QC picture are the same.
public enum DefaceMethod: Sendable, Hashable, Codable, CustomStringConvertible {
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
    /// Head tissue the model marked for removal that the guards (margin and the model budget) kept (ml).
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

    /// A model's labels are not trusted near the brain: besides the margin guard, its voxels must
    /// lie further than the margin plus this from HD-BET's brain (its 50% mask continued past the
    /// field of view), as the built-in ears must (with 4 mm) and the built-in face does by its
    /// clearance under the brain. Measured: a model whose face label is everything but the face
    /// took 1.6 ml of Colin27's reference brain (ch2bet) at the temporal and frontal base, up to
    /// 10.6 mm outside HD-BET's mask, with the margin guard alone; 150 voxels with 4 mm more, none
    /// with 8 mm.
    static let modelBudgetMM = 8.0

    /// The face and ear regions (RAS+ order) before the guards, and the head voxels they hold
    /// (for a model: before its budget). `brain`: HD-BET's brain continued past the field of
    /// view's edges (the built-in rules place the face below it).
    func regions(volume: NiftiVolume, view: RASReorientation, head: [UInt8], brain: [UInt8], grid: Grid3D,
                 spacing: [Double], frame: HeadFrame, removeEars: Bool, marginMM: Double, input: String,
                 threads: Int = EngineThreads.available, clock: inout StageClock) throws(DefaceError) -> (regions: Regions, markedHead: Int) {
        switch self {
        case .builtin:
            return (Regions(face: FaceRegion.compute(brain: brain, grid: grid, spacing: spacing, frame: frame, threads: threads),
                            ears: removeEars ? EarRegion.compute(head: head, grid: grid, spacing: spacing, frame: frame, threads: threads)
                                             : [UInt8](repeating: 0, count: grid.count)), 0)
        case .model(let model):
            let found: (face: [UInt8], ears: [UInt8], stages: [StageClock.Stage])
            do { found = try model.regions(of: volume, removeEars: removeEars) } catch {
                throw DefaceError(.model(error.code), path: input, reason: error.description)
            }
            clock.lap("face and ears (nnU-Net \(model.folderName))")
            var face = view.toRAS(found.face), ears = view.toRAS(found.ears), marked = 0
            // read only where a label is (elsewhere 0: at the brain, the label cleared)
            let fromBrain = DistanceTransform.distance(to: brain, grid: grid, spacing: spacing, threads: threads,
                                                       box: VoxelBox.around([face, ears], grid: grid, threads: threads))
            let limit = Float(marginMM + (spacing.max() ?? 1) / 2 + Self.modelBudgetMM)
            for i in face.indices where face[i] != 0 || ears[i] != 0 {
                if head[i] != 0 { marked += 1 }
                if fromBrain[i] <= limit { (face[i], ears[i]) = (0, 0) }
            }
            return (Regions(face: face, ears: ears), marked)
        }
    }

    /// What the report says about the source; for a model, the head tissue it marked that the
    /// guards kept (`markedHead`: its head voxels before the budget; `removal` after the guard).
    func describe(markedHead marked: Int, removal: Removal, voxelML: Double) -> FaceRegionReport {
        guard case .model(let model) = self else { return FaceRegionReport(method: "builtin") }
        return FaceRegionReport(method: "nnunet", model: model.folderName, modelSource: model.source, modelLicence: model.licence,
                                removedLabels: model.removeLabels.map(model.describe),
                                keptByGuardML: Double(max(0, marked - removal.headRemoved)) * voxelML)
    }

    /// A warning when the model marked tissue the guard had to keep.
    static func warnings(_ report: FaceRegionReport, marginMM: Double) -> [String] {
        guard let kept = report.keptByGuardML, kept >= guardWarningML else { return [] }
        return [String(format: "the model's face or ear labels reached %.1f ml of tissue within %@ mm of the brain; the guard kept it",
                       kept, plainMM(marginMM + modelBudgetMM))]
    }

    /// The report's `method` line for this source.
    func methodLine(builtin: String) -> String {
        guard case .model(let model) = self else { return builtin }
        return "nnU-Net v1 model \(model.folderName), labels \(model.removeLabels.map(model.describe).joined(separator: ", ")) "
            + "resampled to the scan's grid; HD-BET brain mask continued past the field of view; orientation checked against "
            + "the anatomy; brain margin guard, and for the model's labels a further distance budget of \(Self.plainMM(Self.modelBudgetMM)) mm"
    }

    private static func plainMM(_ v: Double) -> String { v == v.rounded() ? String(Int(v)) : String(v) }
}
