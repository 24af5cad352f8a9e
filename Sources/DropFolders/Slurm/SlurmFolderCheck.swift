import Foundation
import Glibc

/// Whether the Slurm nodes see the work folders, asked of the nodes themselves (`executor =
/// "slurm"`): a marker file holding a random token is written into each work folder, and one
/// tiny job on the configured partition copies each marker into a reply file beside it. A reply
/// with the token means the nodes see that folder at the same path; no reply, or another token
/// (a node's own folder of that name), means they do not. A job that does not start or end in
/// time proves nothing either way, and says so. Markers and replies are removed afterwards.
package struct SlurmFolderCheck: Sendable {
    /// What the check found for one work folder.
    package struct Finding: Sendable {
        /// What the check could tell.
        package enum Verdict: Sendable, Equatable {
            /// The nodes read the marker.
            case visible
            /// The job ran and could not read the marker: the folder is not shared with the nodes.
            case notVisible
            /// Slurm refused the check's job (a wrong partition, a limit).
            case refused
            /// The job did not start or end in time, or ended for another reason: not known.
            case unknown
        }

        package var folder: String
        package var verdict: Verdict
        /// The finding in words, for check-config and the journal.
        package var message: String

        /// Whether check-config refuses the configuration for it.
        package var isProblem: Bool { verdict == .notVisible || verdict == .refused }
    }

    package var settings: SlurmSettings
    /// How long the job may take to start and end, seconds.
    package var timeoutSeconds: Double

    package init(settings: SlurmSettings, timeoutSeconds: Double) {
        self.settings = settings
        self.timeoutSeconds = timeoutSeconds
    }

    /// Markers older than this are a killed check's leftovers, removed by the next check.
    static let staleSeconds = 3600.0
    static let markerPrefix = ".defacer-slurm-check-"

    /// Runs the check on `folders` (existing work folders): one finding per folder.
    package func run(folders: [String]) -> [Finding] {
        let token = Self.randomToken()
        var findings: [Finding] = []
        var probed: [(folder: String, marker: String, reply: String)] = []
        for folder in Set(folders).sorted() {
            Self.removeStaleMarkers(in: folder)
            let marker = folder + "/" + Self.markerPrefix + token
            do { try Data((token + "\n").utf8).write(to: URL(fileURLWithPath: marker)) } catch {
                findings.append(Finding(folder: folder, verdict: .unknown, message:
                    "cannot write the Slurm check's marker into the work folder \(folder) (\(error.localizedDescription)): whether the Slurm nodes see it is not known"))
                continue
            }
            probed.append((folder, marker, marker + ".reply"))
        }
        defer { for p in probed { unlink(p.marker); unlink(p.reply) } }
        guard !probed.isEmpty else { return findings }
        let ran = runJob(probed.map { ($0.marker, $0.reply) })
        for p in probed {
            let replied = (try? String(contentsOfFile: p.reply, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            findings.append(finding(p.folder, replied: replied, token: token, ran: ran))
        }
        return findings.sorted { $0.folder < $1.folder }
    }

    /// How the check's job went: its id and final state, or why it did not run to its end.
    enum JobRun {
        case ended(id: String, state: String?)
        case refused(String)
        case notStarted(id: String, reason: String?)
        case notEnded(id: String)

        var jobID: String? {
            switch self {
            case .ended(let id, _), .notStarted(let id, _), .notEnded(let id): id
            case .refused: nil
            }
        }
    }

    private var partitionWords: String { settings.partition.map { "partition \($0)" } ?? "the cluster's default partition" }

    func finding(_ folder: String, replied: String?, token: String, ran: JobRun) -> Finding {
        let unknown = "whether the Slurm nodes see the work folder \(folder) is not known"
        if replied == token {
            let job = ran.jobID.map { "job \($0)" } ?? "a job"
            return Finding(folder: folder, verdict: .visible, message: "the Slurm nodes see the work folder \(folder) (checked with \(job) on \(partitionWords))")
        }
        switch ran {
        case .ended(let id, let state) where state == "COMPLETED" || state == "FAILED":
            let found = replied == nil ? "found no marker there" : "found another marker there (a node's own folder of that name)"
            return Finding(folder: folder, verdict: .notVisible, message:
                "the Slurm nodes cannot see the work folder \(folder): a job on \(partitionWords) (job \(id)) \(found); put the work folder on a file system shared with the nodes, at the same path on every node (the work key of its inbox)")
        case .ended(let id, let state):
            return Finding(folder: folder, verdict: .unknown, message: "the Slurm check job \(id) ended \(state ?? "unknown to Slurm") before it could look: \(unknown)")
        case .refused(let why):
            return Finding(folder: folder, verdict: .refused, message: "Slurm refused the check job on \(partitionWords): \(why); \(unknown)")
        case .notStarted(let id, let reason):
            return Finding(folder: folder, verdict: .unknown, message:
                "no Slurm job started on \(partitionWords) within \(plainNumber(timeoutSeconds)) s (job \(id) still pending\(reason.map { ": \($0)" } ?? "")): \(unknown)")
        case .notEnded(let id):
            return Finding(folder: folder, verdict: .unknown, message: "the Slurm check job \(id) started but did not end within \(plainNumber(timeoutSeconds)) s: \(unknown)")
        }
    }


    /// Submits the job that copies each marker into its reply and follows it (with the
    /// service's one `SlurmPoller`) until it ends or the time is up (then it is cancelled).
    func runJob(_ pairs: [(marker: String, reply: String)]) -> JobRun {
        let copies = pairs.map { "cat \(SlurmTools.quoted($0.marker)) > \(SlurmTools.quoted($0.reply)) || s=1" }
        var arguments = ["--job-name=defacer-folder-check", "--time=1", "--mem=64M", "--cpus-per-task=1", "--ntasks=1",
                         "--output=/dev/null", "--error=/dev/null", "--chdir=/tmp"]
        if let partition = settings.partition { arguments.append("--partition=\(partition)") }
        arguments.append("--wrap=s=0; " + copies.joined(separator: "; ") + "; exit $s")
        let id: String
        do { id = try SlurmTools.submit(arguments) } catch { return .refused(error.description) }
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        switch SlurmPoller.shared.wait(for: id, every: settings.pollSeconds, until: deadline) {
        case .ended(let state):
            return .ended(id: id, state: state)
        case .stillActive(let state):
            let reason = SlurmTools.pendingReason(job: id)
            SlurmTools.cancel(job: id)
            return state == "RUNNING" || state == "COMPLETING" ? .notEnded(id: id) : .notStarted(id: id, reason: reason)
        }
    }

    static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<4).map { _ in String(generator.next() as UInt64, radix: 16) }.joined()
    }

    /// Removes markers and replies that a check killed midway left (older than `staleSeconds`).
    static func removeStaleMarkers(in folder: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
        for name in names where name.hasPrefix(markerPrefix) {
            var st = stat()
            guard lstat(folder + "/" + name, &st) == 0, Double(time(nil) - st.st_mtim.tv_sec) > staleSeconds else { continue }
            unlink(folder + "/" + name)
        }
    }
}
