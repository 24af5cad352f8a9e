import ArgumentParser
import Engine
import Foundation
/// `defacer batch-task DIR --item ID` (a local worker) or `defacer batch-task DIR --submission N`
/// (a Slurm array task; the task index comes from `--task` or `SLURM_ARRAY_TASK_ID`): defaces
/// its share of a batch planned by `defacer batch` and records each outcome in DIR.
struct BatchTaskCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batch-task",
        abstract: "Deface one share of a planned batch (run by `defacer batch`, locally or as a Slurm task).",
        shouldDisplay: false
    )

    @Argument(help: "The batch's output folder.")
    var folder: String

    @Option(help: "The id of the one item to deface.")
    var item: String?

    @Option(help: "The Slurm submission number whose task list to read.")
    var submission: Int?

    @Option(help: "The array task index (default: $SLURM_ARRAY_TASK_ID).")
    var task: Int?

    func run() throws {
        let batch = BatchFolder(output: DurableFile.resolve(folder, against: FileManager.default.currentDirectoryPath))
        guard let manifest = try BatchManifest.load(batch) else {
            throw CommandFailure(message: "\(batch.output) holds no batch manifest")
        }
        let ids = try share(batch)
        let items = Dictionary(uniqueKeysWithValues: manifest.items.map { ($0.id, $0) })
        let worker = BatchWorker(folder: batch, settings: manifest.settings)
        var failed = 0
        for id in ids {
            guard let entry = items[id] else { throw CommandFailure(message: "item \(id) is not in the manifest") }
            let outcome = try worker.run(entry)
            print("\(outcome.state.rawValue) \(entry.display)\(outcome.reason.map { ": \($0)" } ?? "")")
            if outcome.state == .failed { failed += 1 }
        }
        if failed > 0 { throw ExitCode(1) }
    }

    /// The item ids this process defaces.
    func share(_ batch: BatchFolder) throws -> [String] {
        if let item { return [item] }
        guard let submission else { throw CommandFailure(message: "give --item or --submission") }
        let index = task ?? ProcessInfo.processInfo.environment["SLURM_ARRAY_TASK_ID"].flatMap(Int.init)
        guard let index else { throw CommandFailure(message: "no --task and no SLURM_ARRAY_TASK_ID") }
        let plan = try SlurmSubmissionFile.load(batch, number: submission)
        guard plan.tasks.indices.contains(index) else {
            throw CommandFailure(message: "submission \(submission) has no task \(index)")
        }
        return plan.tasks[index]
    }
}
