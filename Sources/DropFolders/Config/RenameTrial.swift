import CLinux
import Engine

/// The moves an inbox's scans make (inbox to work, work to outbox, failed and archive), each
/// tried once with a small hidden file at start-up and by `check-config`, so that a lab learns
/// which kind of move its file systems allow ("outbox on NFS: link+unlink").
package struct RenameTrial: Sendable {
    /// The folder's role ("inbox", "work", "outbox", "failed", "archive").
    package var role: String
    package var folder: String
    /// The file system's name ("ext4", "NFS"...).
    package var fileSystem: String
    /// The move that works, or nil when none does.
    package var method: MoveMethod?
    /// Why no move works (only when `method` is nil).
    package var problem: String?

    /// `outbox on NFS: link+unlink`, or the problem.
    package var line: String {
        if let method { return "\(role) on \(fileSystem): \(method.rawValue)" }
        return "\(role) on \(fileSystem): no move works (\(problem ?? "unknown")); scans cannot pass through this folder"
    }

    /// statfs magic numbers and names: the network ones the service polls, and the local ones labs use.
    static let fileSystems: [Int64: String] = DropFolderService.networkFileSystems.merging([
        0xEF53: "ext4", 0x5846_5342: "xfs", 0x9123_683E: "btrfs", 0x0102_1994: "tmpfs", 0x794C_7630: "overlay",
        0x2FC1_2FC1: "zfs",
    ]) { network, _ in network }

    /// The name of the file system holding `path` ("type 0x…" for one not in the list).
    package static func fileSystemName(of path: String) -> String {
        let type = dfc_filesystem_type(path)
        return fileSystems[type] ?? "file system type 0x\(String(type, radix: 16))"
    }

    /// Tries a move into each of the inbox's folders from the one its scans come from.
    package static func run(for inbox: InboxConfig) -> [RenameTrial] {
        var pairs = [("inbox", inbox.path, inbox.work), ("outbox", inbox.work, inbox.outbox), ("failed", inbox.work, inbox.failed)]
        if let archive = inbox.archive { pairs.append(("archive", inbox.work, archive)) }
        // the claim moves from the inbox into the work folder; the role names the folder whose file system decides
        return pairs.map { role, from, to in
            var trial = RenameTrial(role: role, folder: role == "inbox" ? from : to,
                                    fileSystem: fileSystemName(of: role == "inbox" ? from : to))
            do { trial.method = try DurableFile.trialMove(from: from, to: to) } catch {
                trial.problem = "\(error)"
            }
            return trial
        }
    }
}
