import ArgumentParser
import Engine

/// The `defacer` command: removes faces and ears from brain MRI scans.
///
/// Deliberate duplicates: the subcommands' `configuration` and `@Argument`/`@Option` declarations
/// share one shape (ArgumentParser's declarative style); what they share in meaning is in `ModelOptions`.
@main
struct DefacerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "defacer",
        abstract: "Removes faces and ears from brain MRI scans so that they can be shared.",
        version: "defacer \(DefacerVersion.string)",
        subcommands: [DefaceCommand.self, BatchCommand.self, BatchTaskCommand.self, InfoCommand.self, BrainCommand.self,
                      BenchCommand.self, EvaluateCommand.self, RunCommand.self, CheckConfigCommand.self, SegmentCommand.self,
                      ReviewCommand.self, WorkerCommand.self]
    )
}
