import ArgumentParser
import DropFolders
import Engine
import Foundation

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

/// `--method`, `--model` and `--remove-labels`, shared by `deface` and `batch`: where the face
/// and ears come from (the brain guard and every check after it are the same).
struct FaceMethodOptions: ParsableArguments {
    enum Name: String, ExpressibleByArgument, CaseIterable { case builtin, nnunet }

    @Option(help: "builtin: defacer's own rules around the brain; nnunet: the labels of the converted nnU-Net v1 model given with --model")
    var method: Name = .builtin

    @Option(help: "Folder of the converted nnU-Net v1 face model (model.json, fold*.safetensors), for --method nnunet.")
    var model: String?

    @Option(help: "The model's labels to remove, e.g. 1,2 (default: every label it has).")
    var removeLabels: String?

    func validate() throws {
        if method == .nnunet, model == nil { throw ValidationError("--method nnunet needs --model DIR (a converted nnU-Net v1 model)") }
        if method == .builtin, model != nil || removeLabels != nil {
            throw ValidationError("--model and --remove-labels need --method nnunet")
        }
        _ = try labels()
    }

    func labels() throws -> [Int] {
        try (removeLabels ?? "").split(separator: ",").map { item in
            guard let label = Int(item.trimmingCharacters(in: .whitespaces)), label > 0 else {
                throw ValidationError("--remove-labels takes label numbers separated by commas, such as 1,2 (not \"\(item)\")")
            }
            return label
        }
    }

    /// The engine's method for these options.
    var defaceMethod: DefaceMethod {
        guard method == .nnunet, let model else { return .builtin }
        return .nnunet(model: model, removeLabels: (try? labels()) ?? [])
    }
}
