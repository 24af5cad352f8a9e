import ArgumentParser
import Engine
import Foundation

/// `defacer brain INPUT`: HD-BET's brain mask (and probability) on the scan's own grid.
struct BrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "brain",
        abstract: "Find the brain with HD-BET and write its mask on the scan's own grid."
    )

    @Argument(help: "A NIfTI head scan.")
    var input: String

    @Option(help: "Where to write the brain mask (uint8 NIfTI). Default: <name>_brain_mask.nii.gz beside the input.")
    var mask: String?

    @Option(help: "Also write the brain probability (float32 NIfTI) here.")
    var probability: String?

    @OptionGroup var model: ModelOptions

    @Option(help: .hidden)
    var saveNetworkInput: String?

    /// Runs the network on the head's box only (`HeadBox`; for speed comparisons).
    @Flag(help: .hidden)
    var cropToHead = false

    func run() throws {
        let mode = model.mode
        let volume = try NiftiReader().read(input)
        var extractor = try BrainExtractor(modelFolder: model.models, mode: mode)
        extractor.cropsToHead = cropToHead
        if let saveNetworkInput {
            let view = volume.rasReorientation
            let prepared = extractor.prepare(view.toRAS(volume.floatValues()), grid: Grid3D(view.rasShape),
                                             spacing: (0..<3).map { view.rasAffine.columnLengths[$0] })
            let t = prepared.input
            try Safetensors.write([("input", [t.channels, t.depth, t.height, t.width], t.data),
                                   ("unpadded", [3], prepared.grid.shape.map(Float.init))], to: saveNetworkInput)
        }
        let brain = extractor.extract(volume)
        let writer = NiftiWriter(descrip: "brain mask by defacer \(DefacerVersion.string) (HD-BET \(mode.rawValue))",
                                 replaceExisting: true, threads: EngineThreads.available)
        let maskPath = mask ?? OutputNames.beside(input, suffix: "_brain_mask")
        try writer.write(volume.derivedMask(brain.reorientation.toNative(brain.mask)), to: maskPath)
        if let probability {
            try writer.write(volume.derivedFloatMap(brain.reorientation.toNative(brain.probability)), to: probability)
        }
        print(String(format: "brain volume %.0f ml; mask written to %@", brain.volumeML, maskPath))
    }
}
