import Foundation

/// A converted nnU-Net v1 model used to find the face and ears: the loaded predictor, the labels
/// whose voxels are removed, and where the model comes from (model.json's `source`, `licence`
/// and `labels`). A label whose name contains "ear" counts as ears (kept with `--keep-ears`,
/// held to the ears' distance budget); every other label counts as face.
public struct NNUNetFaceModel: Sendable {
    public let predictor: NNUNetPredictor
    /// The labels removed, ascending.
    public let removeLabels: [Int]

    /// Loads the model in `folder`; `removeLabels` empty means every label the model has.
    public init(folder: String, removeLabels: [Int]) throws(ModelError) {
        let predictor = try NNUNetPredictor(modelFolder: folder)
        self.removeLabels = try Self.checkedLabels(removeLabels, plan: predictor.plan, folder: folder)
        self.predictor = predictor
    }

    /// Checks a model folder and the labels asked for without loading the weights (check-config):
    /// model.json readable and runnable, every fold file present, every label the model's.
    public static func check(folder: String, removeLabels: [Int]) throws(ModelError) {
        let plan = try NNUNetPlan(path: folder + "/model.json")
        for file in plan.folds where access(folder + "/" + file, R_OK) != 0 {
            throw ModelError(.missingFile, path: folder + "/" + file)
        }
        _ = try checkedLabels(removeLabels, plan: plan, folder: folder)
    }

    static func checkedLabels(_ labels: [Int], plan: NNUNetPlan, folder: String) throws(ModelError) -> [Int] {
        let available = Array(1..<plan.classes)
        let unknown = labels.filter { !available.contains($0) }
        guard unknown.isEmpty else {
            let names = available.map { label in plan.labelNames[label].map { "\(label) (\($0))" } ?? "\(label)" }
            throw ModelError(.unknownLabels("asked for \(unknown.map(String.init).joined(separator: ", ")); the model's labels are "
                                            + names.joined(separator: ", ")), path: folder + "/model.json")
        }
        return labels.isEmpty ? available : Array(Set(labels)).sorted()
    }

    public var plan: NNUNetPlan { predictor.plan }
    /// The model folder's own name (what reports and QC captions call the model).
    public var folderName: String { DurableFile.fileName(of: predictor.modelFolder) }
    /// The licence from model.json, or "not stated".
    public var licence: String { plan.licence.isEmpty ? "not stated" : plan.licence }
    /// The source from model.json, or "not stated".
    public var source: String { plan.source.isEmpty ? "not stated" : plan.source }

    /// Whether `label` counts as ears.
    public func isEar(_ label: Int) -> Bool { plan.labelNames[label]?.lowercased().contains("ear") == true }

    /// `label` with its name, e.g. "1 (face)".
    public func describe(_ label: Int) -> String { plan.labelNames[label].map { "\(label) (\($0))" } ?? "\(label)" }

    /// Face and ear masks (1 = the model's removed labels) on the volume's stored voxel grid, and
    /// the time each step took.
    public func regions(of volume: NiftiVolume, removeEars: Bool) throws(ModelError) -> (face: [UInt8], ears: [UInt8], stages: [StageClock.Stage]) {
        let segmentation = try predictor.segment(volume: volume)
        var face = [UInt8](repeating: 0, count: segmentation.labels.count), ears = face
        let removed = Set(removeLabels.filter { removeEars || !isEar($0) })
        for (i, label) in segmentation.labels.enumerated() where removed.contains(Int(label)) {
            if isEar(Int(label)) { ears[i] = 1 } else { face[i] = 1 }
        }
        return (face, ears, segmentation.stages)
    }
}
