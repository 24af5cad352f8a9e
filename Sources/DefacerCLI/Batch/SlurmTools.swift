import Engine
import Foundation
/// The Slurm client programs (`sbatch`, `squeue`, `scontrol`) run as a user would.
enum SlurmTools {
    /// A Slurm command that failed, with what it said.
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The program's path on PATH, or nil.
    static func locate(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for folder in path.split(separator: ":") {
            let candidate = "\(folder)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Runs a Slurm client program; returns its standard output.
    static func run(_ name: String, _ arguments: [String]) throws(Failure) -> String {
        guard let program = locate(name) else {
            throw Failure(description: "\(name) is not installed here (Slurm's client tools, Debian package slurm-client)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        do { try process.run() } catch { throw Failure(description: "cannot run \(program): \(error)") }
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let said = String(decoding: stderr, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw Failure(description: "\(name) failed (status \(process.terminationStatus)): \(said)")
        }
        return String(decoding: stdout, as: UTF8.self)
    }

    /// `sbatch --parsable ...`: the new job's id.
    static func submit(_ arguments: [String]) throws(Failure) -> String {
        let said = try run("sbatch", ["--parsable"] + arguments).trimmingCharacters(in: .whitespacesAndNewlines)
        let id = said.split(separator: ";").first.map(String.init) ?? ""
        guard !id.isEmpty, id.allSatisfy(\.isNumber) else { throw Failure(description: "sbatch said \"\(said)\", not a job id") }
        return id
    }

    /// The array tasks of `jobIDs` still known to `squeue` (pending or running), by `JOB_TASK`.
    static func activeTasks(_ jobIDs: [String]) throws(Failure) -> [String: String] {
        guard !jobIDs.isEmpty else { return [:] }
        let text: String
        do { text = try run("squeue", ["-h", "-r", "-j", jobIDs.joined(separator: ","), "-o", "%i %T"]) } catch {
            if error.description.contains("Invalid job id") { return [:] }  // every job purged already
            throw error
        }
        var tasks: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            let parts = line.split(separator: " ")
            if parts.count == 2 { tasks[String(parts[0])] = String(parts[1]) }
        }
        return tasks
    }

    /// A finished task's state from `scontrol show job` (while Slurm still remembers it).
    static func finalState(job: String, task: Int) -> String? {
        guard let text = try? run("scontrol", ["show", "job", "\(job)_\(task)"]) else { return nil }
        guard let range = text.range(of: "JobState=") else { return nil }
        return String(text[range.upperBound...].prefix { !$0.isWhitespace })
    }
}
