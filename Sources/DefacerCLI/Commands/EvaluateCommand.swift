import ArgumentParser
import Engine
import Foundation

/// `defacer evaluate MANIFEST`: defaces the annotated evaluation cases and scores each target.
struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Deface annotated evaluation cases (tools/fixtures/make_eval_cases.py) and score them."
    )

    @Argument(help: "manifest.json written by tools/fixtures/make_eval_cases.py.")
    var manifest: String

    @Option(help: "Only cases whose file name contains one of these (comma-separated).")
    var only: String?

    @Option(help: "Folder for the outputs.")
    var work = "/tmp/defacer-eval"

    @OptionGroup var model: ModelOptions

    @Flag(help: "Print JSON.")
    var json = false

    @Flag(help: "Also check against HD-BET's accurate mode (5 networks x 8 mirrorings: about 40 times slower).")
    var accurateCheck = false

    func run() throws {
        let evaluation = try Evaluation(manifest: manifest)
        let defacer = try Defacer(options: model.defaceOptions())
        let accurate = accurateCheck ? try BrainExtractor(modelFolder: model.models, mode: .accurate) : nil
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let filters = only?.split(separator: ",").map(String.init) ?? []
        var scores: [Evaluation.Score] = []
        for c in evaluation.cases where filters.isEmpty || filters.contains(where: { c.file.contains($0) }) {
            let score = evaluation.run(c, defacer: defacer, workFolder: work, accurate: accurate)
            scores.append(score)
            if !json {
                let parts = score.removedFraction.sorted { $0.key < $1.key }.map { String(format: "%@ %.0f%%", $0.key, 100 * $0.value) }
                print(String(format: "%@ %-40@ %5.1f s  brain touched %@  %@", score.passed ? "PASS" : "MISS", score.name as NSString,
                             score.seconds, (score.brainVoxelsTouched.map(String.init) ?? "-") as NSString, parts.joined(separator: ", ") as NSString))
                print(String(format: "     head removed %@%%, nearest removed tissue to the reference brain %@ mm",
                             score.headRemovedPercent.map { String(format: "%.2f", $0) } ?? "-",
                             score.minDistanceToReferenceMM.map { String(format: "%.1f", $0) } ?? "-"))
                for w in score.warnings { print("     warning: \(w)") }
                if let t = score.accurateBrainVoxelsTouched { print("     HD-BET accurate brain voxels touched: \(t)") }
                if let e = score.error { print("     error: \(e)") }
                for m in score.misses { print("     miss: \(m)") }
                fflush(nil)  // one line per case as it finishes, also into a file
            }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(scores), as: UTF8.self))
        } else {
            print("\(scores.filter(\.passed).count) of \(scores.count) cases meet every target")
        }
    }
}
