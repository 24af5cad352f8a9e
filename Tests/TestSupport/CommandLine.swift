import Foundation

/// Runs the built `defacer` executable, as a user would from a shell.
package struct DefacerProcess {
    package struct Result {
        package var status: Int32
        /// True when the process died of a signal (then `status` is the signal's number).
        package var signalled: Bool = false
        package var stdout: String
        package var stderr: String

        package init(status: Int32, signalled: Bool = false, stdout: String, stderr: String) {
            self.status = status
            self.signalled = signalled
            self.stdout = stdout
            self.stderr = stderr
        }
    }

    /// The `defacer` binary beside the test bundle in the build folder.
    package static let binary: String = {
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        while url.path != "/" {
            url.deleteLastPathComponent()
            let candidate = url.appendingPathComponent("defacer").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        fatalError("defacer binary not found near \(CommandLine.arguments[0])")
    }()

    package static let repositoryRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    package static func run(_ arguments: [String], environment: [String: String]? = nil) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus,
                      signalled: process.terminationReason == .uncaughtSignal,
                      stdout: String(decoding: stdout, as: UTF8.self),
                      stderr: String(decoding: stderr, as: UTF8.self))
    }
}

/// Runs any program (a shell, apt-get, systemd-analyze) with its standard output and error
/// merged, as a person at a terminal sees them.
package enum ToolProcess {
    package static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                            in folder: String? = nil) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        if let folder { process.currentDirectoryURL = URL(fileURLWithPath: folder) }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

/// The one-node test cluster (tools/setup/slurm.sh start) and its client tools.
package enum TestCluster {
    package static func ready() -> Bool {
        guard let result = try? shell("sinfo -h -o %T") else { return false }
        return result.status == 0 && ["idle", "mix", "alloc"].contains { result.stdout.contains($0) }
    }

    package static func shell(_ command: String) throws -> DefacerProcess.Result {
        let result = try ToolProcess.run("/bin/sh", ["-c", command])
        return .init(status: result.status, stdout: result.output, stderr: "")
    }
}
