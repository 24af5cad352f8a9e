import Foundation
import Glibc
import Testing
import TestSupport

extension ServiceTests {
    /// check-config and the service with `executor = "slurm"` ask the real one-node cluster
    /// (tools/setup/slurm.sh start) whether its nodes see the work folder: a job reads a marker.
    @Suite struct SlurmFolderCheckTests {
        init() throws { try requireDaemonTestData() }

        /// The job id in "... job 123 ...".
        static func jobID(in text: String) -> String? {
            guard let range = text.range(of: #"job \d+"#, options: .regularExpression) else { return nil }
            return String(text[range].dropFirst(4))
        }

        static func jobState(_ id: String) throws -> String? {
            let said = try TestCluster.shell("scontrol -o show job \(id)").stdout
            guard let range = said.range(of: "JobState=") else { return nil }
            return String(said[range.upperBound...].prefix { !$0.isWhitespace })
        }

        /// Names of the check's marker and reply files left in `folder`.
        static func leftovers(_ folder: String) -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasPrefix(".defacer-slurm-check-") }
        }

        @Test func checkConfigSaysTheNodesSeeASharedWorkFolder() throws {
            #expect(TestCluster.ready(), "no Slurm test cluster: start it with tools/setup/slurm.sh start")
            let layout = try DropLayout("slurm-seen")
            try layout.writeConfig(global: "executor = \"slurm\"")
            let result = try DefacerProcess.run(["check-config", "--config", layout.configPath])
            #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
            let line = try #require(result.stdout.split(separator: "\n").first { $0.contains("the Slurm nodes see the work folder \(layout.work)") },
                                    "\(result.stdout)")
            let id = try #require(Self.jobID(in: String(line)))
            #expect(try Self.jobState(id) == "COMPLETED", "the check job ran on the node")
            #expect(Self.leftovers(layout.work).isEmpty)
        }

        /// The work folder on a file system only check-config's process sees: a tmpfs mounted
        /// over the drop tree in a mount namespace of its own (`unshare -m`), so the job that
        /// slurmd starts in the machine's namespace finds no marker.
        @Test func checkConfigSaysWhenTheNodesCannotSeeTheWorkFolder() throws {
            #expect(TestCluster.ready(), "no Slurm test cluster: start it with tools/setup/slurm.sh start")
            let layout = try DropLayout("slurm-hidden")
            let config = layout.root + ".toml"
            defer { unlink(config) }
            try """
            executor = "slurm"
            models = "\(DefacerProcess.repositoryRoot)/models"
            [[inbox]]
            name = "main"
            path = "\(layout.inbox)"
            outbox = "\(layout.outbox)"
            failed = "\(layout.failed)"
            """.write(toFile: config, atomically: true, encoding: .utf8)
            let script = """
            mount --make-rprivate / && mount -t tmpfs defacer-hidden '\(layout.root)' && \
            mkdir '\(layout.inbox)' '\(layout.outbox)' '\(layout.failed)' && \
            exec '\(DefacerProcess.binary)' check-config --config '\(config)' --slurm-check-seconds 120
            """
            let result = try ToolProcess.run("/usr/bin/unshare", ["-m", "/bin/sh", "-c", script])
            #expect(result.status == 1, "\(result.output)")
            let said = result.output
            #expect(said.contains("the Slurm nodes cannot see the work folder \(layout.work): "), "\(said)")
            #expect(said.contains("put the work folder on a file system shared with the nodes"), "\(said)")
            let line = try #require(said.split(separator: "\n").first { $0.contains("cannot see the work folder") })
            let id = try #require(Self.jobID(in: String(line)))
            #expect(try Self.jobState(id) == "FAILED", "the check job ran and did not find the marker")
            #expect(Self.leftovers(layout.work).isEmpty, "nothing of the check outside the namespace")
        }

        /// A partition where no job can start (State=DOWN): the check says so after its time
        /// limit, cancels its job and does not claim the folder is unseen.
        @Test func checkConfigSaysWhenNoJobStartsOnThePartition() throws {
            #expect(TestCluster.ready(), "no Slurm test cluster: start it with tools/setup/slurm.sh start")
            let partition = "defacer-down-\(getpid())"
            #expect(try TestCluster.shell("scontrol create PartitionName=\(partition) Nodes=localhost State=DOWN").status == 0)
            defer { _ = try? TestCluster.shell("scontrol delete PartitionName=\(partition)") }
            let layout = try DropLayout("slurm-down")
            try layout.writeConfig(global: "executor = \"slurm\"\nslurm_partition = \"\(partition)\"")
            let result = try DefacerProcess.run(["check-config", "--config", layout.configPath, "--slurm-check-seconds", "4"])
            let said = result.stdout + result.stderr
            #expect(result.status == 0, "a warning, not a problem: \(said)")
            #expect(said.contains("warning: no Slurm job started on partition \(partition) within 4 s"), "\(said)")
            #expect(said.contains("PartitionDown"), "squeue's reason: \(said)")
            #expect(!said.contains("cannot see"), "\(said)")
            let line = try #require(said.split(separator: "\n").first { $0.contains("no Slurm job started") })
            let id = try #require(Self.jobID(in: String(line)))
            #expect(try Self.jobState(id) == "CANCELLED", "the pending check job was cancelled")
            #expect(Self.leftovers(layout.work).isEmpty)
        }

        @Test func serviceWarnsInTheJournalWhenSlurmRefusesTheCheck() throws {
            #expect(TestCluster.ready(), "no Slurm test cluster: start it with tools/setup/slurm.sh start")
            let layout = try DropLayout("slurm-refused")
            try layout.writeConfig(global: "executor = \"slurm\"\nslurm_partition = \"no-such-partition\"")
            let daemon = try DaemonProcess(config: layout.configPath)
            defer { daemon.kill9() }
            #expect(waitUntil(timeout: 60) { !daemon.events("slurm-check").isEmpty })
            let warning = try #require(daemon.events("slurm-check").first)
            #expect(warning["WORK_FOLDER"] == layout.work)
            #expect(warning["SLURM_CHECK"] == "refused")
            #expect(warning.line.contains("invalid partition"), "\(warning.line)")
            #expect(!daemon.events("ready").isEmpty, "the service runs on")
            #expect(Self.leftovers(layout.work).isEmpty)
        }
    }
}
