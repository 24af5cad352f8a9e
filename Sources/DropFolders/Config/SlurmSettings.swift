import Foundation
import TOMLKit

/// Where the service has its scans defaced.
package enum Executor: String, Sendable, Equatable, Codable {
    /// A worker process per scan on this machine (`max_jobs` at once).
    case local
    /// A Slurm job per scan (`slurm_max_running` at once), on nodes that see the work folders.
    case slurm
}

/// The `slurm_*` keys: how each scan's Slurm job is submitted.
package struct SlurmSettings: Sendable, Equatable, Codable {
    /// `--partition`; nil: the cluster's default.
    package var partition: String?
    /// `--time` in minutes; nil: `job_timeout_seconds` rounded up to minutes.
    package var timeLimitMinutes: Int?
    /// `--mem` and the worker's memory limit in MiB; nil: `memory_per_job_mb` or sized from the scan.
    package var memPerJobMB: Int?
    /// Scans submitted and not yet ended at most.
    package var maxRunning = 16
    /// How often a job's state is asked for (squeue), seconds.
    package var pollSeconds = 2.0

    package init() {}
}

extension ConfigLoader.Reader {
    /// `executor` and the `slurm_*` keys; with "slurm", Slurm's client tools must be installed.
    mutating func executor(_ table: TOMLTable, into config: inout DaemonConfig) {
        if let name = string(table, "executor", prefix: "") {
            if let executor = Executor(rawValue: name) { config.executor = executor } else {
                problem("executor", "must be \"local\" or \"slurm\", not \"\(name)\"")
            }
        }
        config.slurm.partition = string(table, "slurm_partition", prefix: "")
        if table["slurm_time_limit_minutes"] != nil {
            config.slurm.timeLimitMinutes = int(table, "slurm_time_limit_minutes", prefix: "", range: 1...10080, default: 60)
        }
        if table["slurm_mem_per_job_mb"] != nil {
            config.slurm.memPerJobMB = int(table, "slurm_mem_per_job_mb", prefix: "", range: 64...1_048_576, default: 4096)
        }
        config.slurm.maxRunning = int(table, "slurm_max_running", prefix: "", range: 1...10_000, default: config.slurm.maxRunning)
        guard config.executor == .slurm else { return }
        for tool in ["sbatch", "squeue", "scontrol"] where SlurmTools.locate(tool) == nil {
            problem("executor", "\"slurm\" needs Slurm's client tools, and \(tool) is not on PATH (Debian package slurm-client)")
        }
    }
}
