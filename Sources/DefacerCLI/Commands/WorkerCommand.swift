import ArgumentParser
import DropFolders
import Engine
import Foundation
import Glibc

/// `defacer worker JOB_DIR`: defaces the one scan the service claimed into JOB_DIR, in a process
/// of its own (started by the service; see `WorkerRun`). Exit 0 once `result.json` is written.
struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Deface one claimed scan of the drop-folder service (run by the service).",
        shouldDisplay: false
    )

    @Argument(help: "The scan's job folder in the work folder.")
    var folder: String

    @Option(help: "The memory limit in MiB (RLIMIT_DATA).")
    var memoryMb: Int?

    @Option(help: "The service's process id: the worker ends when it does.")
    var parent: Int32?

    func run() throws {
        do {
            try WorkerRun.limit(memoryMB: memoryMb, parent: parent)
            try WorkerRun.run(folder: DurableFile.resolve(folder, against: FileManager.default.currentDirectoryPath))
        } catch {
            throw CommandFailure(message: "worker: \(error)")
        }
    }
}
