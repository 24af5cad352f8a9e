import Foundation
import Glibc

/// The LD_PRELOAD fault shim (`Tests/FaultShim/faultshim.c`), built with clang once per test
/// process: makes the Nth `write`, `fsync`, `rename`, `renameat2`, `link` or `close` of the real
/// `defacer` fail with a chosen errno, counts those calls, or slows its fsyncs down.
package enum FaultShim {
    /// The built library, or nil when clang is missing or the build failed.
    package static let library: String? = {
        let source = DefacerProcess.repositoryRoot + "/Tests/FaultShim/faultshim.c"
        let output = "/tmp/defacer-faultshim-\(getpid()).so"
        let clang = ["/usr/bin/clang", "/opt/swift/usr/bin/clang"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let clang, let built = try? ToolProcess.run(clang, ["-shared", "-fPIC", "-O1", "-o", output, source, "-ldl"]),
              built.status == 0 else { return nil }
        return output
    }()

    /// The environment for a `defacer` run under the shim: `fault` is `function:ERRNO:N` (N or
    /// `*` for every call), `prefix` limits it to paths under a folder, `countFile` collects
    /// the number of calls of each function at exit, `slowSyncMS` makes every fsync under the
    /// prefix that much slower.
    package static func environment(fault: String? = nil, prefix: String? = nil, countFile: String? = nil,
                                    slowSyncMS: Int? = nil) -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["LD_PRELOAD"] = library
        env["DEFACER_FAULT"] = fault
        env["DEFACER_FAULT_PREFIX"] = prefix
        env["DEFACER_FAULT_COUNT"] = countFile
        env["DEFACER_FAULT_SLOW_MS"] = slowSyncMS.map(String.init)
        return env
    }

    /// The calls counted in `file` ("write 12" lines), summed over the processes that wrote it.
    package static func counts(_ file: String) -> [String: Int] {
        let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
        var counts: [String: Int] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2, let n = Int(parts[1]) { counts[String(parts[0]), default: 0] += n }
        }
        return counts
    }
}

/// Whether this process may bind-mount and mount tmpfs file systems (root on these machines).
package let canMount: Bool = getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/mount")

/// Waits until process `pid` is stopped (state T in /proc, as after SIGSTOP).
package func waitUntilStopped(_ pid: Int32, timeout: Double) -> Bool {
    waitUntil(timeout: timeout) { processStat(pid)?.state == "T" }
}
