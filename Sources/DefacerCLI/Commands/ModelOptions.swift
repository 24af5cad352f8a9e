import ArgumentParser
import DropFolders
import Engine

/// `--models`: the folder of the converted HD-BET model (`bench`; with `--mode` in `ModelOptions`).
struct ModelFolderOption: ParsableArguments {
    @Option(help: "Folder of the converted HD-BET model.")
    var models = ModelLocation.defaultHDBET
}

/// `--models` and `--mode`, shared by `brain`, `deface` and `evaluate`.
struct ModelOptions: ParsableArguments {
    @OptionGroup var folder: ModelFolderOption

    @Option(help: "fast (one network) or accurate (five networks, each mirrored eight ways).")
    var mode: BrainExtractor.Mode = .fast

    var models: String { folder.models }

    /// The engine's options with these models (the margin and ears as `deface` takes them).
    func defaceOptions(marginMM: Double = DefaceOptions.defaultMarginMM, removeEars: Bool = true) -> DefaceOptions {
        DefaceOptions(modelFolder: models, mode: mode, marginMM: marginMM, removeEars: removeEars)
    }
}

/// `--keep-ears` and `--margin`, shared by `deface` and `batch`.
struct DefacingOptions: ParsableArguments {
    @Flag(help: "Keep the ears (remove the face only).")
    var keepEars = false

    @Option(help: "Never remove anything closer than this to the brain (mm).")
    var margin: Double = DefaceOptions.defaultMarginMM

    func validate() throws {
        guard margin >= 0, margin <= 20 else { throw ValidationError("--margin must be between 0 and 20 mm") }
    }
}

extension BrainExtractor.Mode: ExpressibleByArgument {}
