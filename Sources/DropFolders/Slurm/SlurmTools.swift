import Engine
import Foundation

/// The Slurm client programs (`sbatch`, `squeue`, `scontrol`) run as a user would: the one Slurm
/// client of `defacer batch --slurm` and of the service's `executor = "slurm"`.
package enum SlurmTools {
    /// A Slurm command that failed, with what it said.
    package struct Failure: Error, CustomStringConvertible {
        package var description: String
    }

    /// The program's path on PATH, or nil.
    package static func locate(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for folder in path.split(separator: ":") {
            let candidate = "\(folder)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Runs a Slurm client program; returns its standard output.
    package static func run(_ name: String, _ arguments: [String]) throws(Failure) -> String {
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
            // one line (a journal entry, a reason file): Slurm's tools often say two
            let said = String(decoding: stderr, as: UTF8.self).split(whereSeparator: \.isNewline)
                .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.joined(separator: "; ")
            throw Failure(description: "\(name) failed (status \(process.terminationStatus)): \(said)")
        }
        return String(decoding: stdout, as: UTF8.self)
    }

    /// `sbatch --parsable ...`: the new job's id.
    package static func submit(_ arguments: [String]) throws(Failure) -> String {
        let said = try run("sbatch", ["--parsable"] + arguments).trimmingCharacters(in: .whitespacesAndNewlines)
        let id = said.split(separator: ";").first.map(String.init) ?? ""
        guard !id.isEmpty, id.allSatisfy(\.isNumber) else { throw Failure(description: "sbatch said \"\(said)\", not a job id") }
        return id
    }

    /// The array tasks of `jobIDs` still known to `squeue` (pending or running), by `JOB_TASK`.
    package static func activeTasks(_ jobIDs: [String]) throws(Failure) -> [String: String] {
        try listed(jobIDs, ["-r"])
    }

    /// The state of each of `jobIDs` (jobs, not arrays) that Slurm still remembers, by job id:
    /// pending and running jobs and, until `MinJobAge` lets Slurm forget them, ended ones
    /// (COMPLETED, FAILED, CANCELLED, TIMEOUT, OUT_OF_MEMORY, NODE_FAIL...). One `squeue` for all.
    package static func states(_ jobIDs: [String]) throws(Failure) -> [String: String] {
        try listed(jobIDs, ["-t", "all"])
    }

    /// `squeue -j jobIDs` with `options`: each listed job's state by `%i`.
    private static func listed(_ jobIDs: [String], _ options: [String]) throws(Failure) -> [String: String] {
        guard !jobIDs.isEmpty else { return [:] }
        let text: String
        do { text = try run("squeue", ["-h"] + options + ["-j", jobIDs.joined(separator: ","), "-o", "%i %T"]) } catch {
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

    /// Why a pending job waits (squeue's reason: Resources, Priority, PartitionDown...), or nil.
    package static func pendingReason(job: String) -> String? {
        guard let said = try? run("squeue", ["-h", "-t", "all", "-j", job, "-o", "%r"]) else { return nil }
        let reason = said.trimmingCharacters(in: .whitespacesAndNewlines)
        return reason.isEmpty || reason == "None" ? nil : reason
    }

    /// `scancel job`; whether Slurm took it.
    @discardableResult
    package static func cancel(job: String) -> Bool { (try? run("scancel", [job])) != nil }

    /// A finished task's state from `scontrol show job` (while Slurm still remembers it).
    package static func finalState(job: String, task: Int) -> String? {
        scontrolState("\(job)_\(task)")
    }

    private static func scontrolState(_ id: String) -> String? {
        guard let text = try? run("scontrol", ["show", "job", id]), let range = text.range(of: "JobState=") else { return nil }
        return String(text[range.upperBound...].prefix { !$0.isWhitespace })
    }

    /// The ids of the jobs named `name` that `squeue` lists (pending or running).
    package static func activeJobs(named name: String) throws(Failure) -> [String] {
        try run("squeue", ["-h", "-n", name, "-o", "%i"]).split(whereSeparator: \.isNewline).map(String.init)
    }

    /// `text` in single quotes for the shell of `sbatch --wrap`.
    package static func quoted(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }
}
