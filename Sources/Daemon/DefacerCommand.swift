import ArgumentParser
import Engine

/// The `defacer` command: removes faces and ears from brain MRI scans.
@main
struct DefacerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "defacer",
        abstract: "Removes faces and ears from brain MRI scans so that they can be shared.",
        version: "defacer \(DefacerVersion.string)",
        subcommands: [DefaceCommand.self, BatchCommand.self, BatchTaskCommand.self, InfoCommand.self, BrainCommand.self,
                      BenchCommand.self, EvaluateCommand.self, RunCommand.self, CheckConfigCommand.self, SegmentCommand.self]
    )
}
