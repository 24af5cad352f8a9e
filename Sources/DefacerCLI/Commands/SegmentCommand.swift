import ArgumentParser
import Engine
import Foundation

/// `defacer segment --model DIR SCAN`: runs a converted nnU-Net v1 3d_fullres model (for
/// example the published pediatric defacing model, converted with tools/defacer_tools/convert_nnunet.py).
struct SegmentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "segment",
        abstract: "Run a converted nnU-Net v1 3d_fullres model on a scan and write its labels."
    )

    @Option(help: "Folder of the converted nnU-Net model (model.json, fold*.safetensors).")
    var model: String

    @Argument(help: "A single-channel NIfTI scan.")
    var input: String

    @Option(help: "The label image (uint8 NIfTI). Default: <name>_labels.nii.gz beside the input.")
    var output: String?

    @Option(help: "Use only the first N folds (faster, less accurate).")
    var folds: Int?

    @Flag(help: "Skip test-time mirroring (8 times faster).")
    var noMirroring = false

    func run() throws {
        let predictor = try NNUNetPredictor(modelFolder: model, foldLimit: folds)
        let volume = try NiftiReader().read(input)
        let segmentation = try predictor.segment(volume: volume, mirroring: !noMirroring)
        let path = output ?? OutputNames.beside(input, suffix: "_labels")
        try NiftiWriter(descrip: "labels by defacer \(DefacerVersion.string) (nnU-Net v1)", threads: EngineThreads.available).write(
            volume.derivedMask(segmentation.labels), to: path)
        let counts = (1..<segmentation.classes).map { c in segmentation.labels.reduce(0) { $0 + ($1 == c ? 1 : 0) } }
        print("wrote \(path): voxels per class \(counts.enumerated().map { "\($0.offset + 1): \($0.element)" }.joined(separator: ", "))")
    }
}
