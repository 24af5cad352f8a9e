import CSystemd
import Engine
import Foundation
import Glibc

/// The kinds of log entry the service writes, each with a fixed journal MESSAGE_ID so that
/// `journalctl MESSAGE_ID=...` finds every entry of one kind.
package enum LogEvent: String, Sendable, CaseIterable {
    case started = "started"
    case ready = "ready"
    case reloading = "reloading"
    case reloaded = "reloaded"
    case reloadFailed = "reload-failed"
    case watching = "watching"
    case rescan = "rescan"
    case overflow = "overflow"
    case jobStarted = "job-started"
    case done = "done"
    case failed = "failed"
    case retry = "retry"
    case requeued = "requeued"
    case quarantined = "quarantined"
    case folderProblem = "folder-problem"
    case unhealthy = "unhealthy"
    case stopping = "stopping"
    case stopped = "stopped"
    /// A scan's Slurm job was submitted or changed state (queued, running).
    case slurmJob = "slurm-job"
    /// With `executor = "slurm"`: the start-up check found that the nodes do not see a work
    /// folder, or could not tell (`SlurmFolderCheck`).
    case slurmCheck = "slurm-check"
    /// At start: temporaries that an interrupted write or copy left in a folder of the service were removed.
    case cleanedUp = "cleaned-up"

    /// Fixed 128-bit ids (generated once for defacer; never change them).
    package var messageID: String {
        switch self {
        case .started: "3f0c6a1e5b7d4c2a9e8f1b0d6c4a2e71"
        case .ready: "8b2d4f6a1c3e4b5d9f7a0c2e4b6d8f13"
        case .reloading: "c5e7a9b1d3f54a6c8e0b2d4f6a8c0e25"
        case .reloaded: "1d3f5b7c9e0a4c2e8b6d4f2a0c8e6b37"
        case .reloadFailed: "e9a1c3b5d7f94e2c8a6b4d2f0e8c6a49"
        case .watching: "7f5d3b1a9c8e4d6f2b0a8c6e4d2f0b5b"
        case .rescan: "2a4c6e8f0b1d4f3a9c7e5b3d1f9a7c6d"
        case .overflow: "b6d8f0a2c4e64b8d0f2a4c6e8b0d2f7f"
        case .jobStarted: "4e6a8c0b2d4f4a6c8e0a2c4e6f8a0c81"
        case .done: "9c1e3a5b7d9f4c2e6a8b0d2f4a6c8e93"
        case .failed: "d0f2b4c6e8a04d2f6b8c0e2a4f6b8da5"
        case .retry: "5a7c9e1b3d5f4e7a9c1b3d5f7e9a1cb7"
        case .requeued: "f3b5d7e9a1c34f5b7d9e1a3c5f7b9dc9"
        case .quarantined: "0b2d4f6e8a0c4b2d6f8e0a2c4b6d8fdb"
        case .folderProblem: "6c8e0a2d4f6b4c8e0a2d4f6b8c0e2aed"
        case .unhealthy: "a8c0e2f4b6d84a0c2e4f6b8d0a2c4eff"
        case .stopping: "3b5d7f9a1c3e4b5d7f9a1c3e5b7d9a02"
        case .stopped: "e2f4a6c8b0d24e6f8a0c2b4d6e8f0a14"
        case .slurmJob: "e7cdca52d76046c58ddc6db8b49ee3a4"
        case .slurmCheck: "6cab7290340c9c6c6d2d2e64031506df"
        case .cleanedUp: "5d0b8e3a6f1c4a2d9e7b3c5f1a8d6e42"
        }
    }

    /// syslog priority.
    package var priority: Int32 {
        switch self {
        case .failed, .quarantined, .reloadFailed, .folderProblem, .unhealthy: 3
        case .overflow, .retry, .slurmCheck: 4
        case .started, .ready, .reloaded, .stopping, .stopped, .requeued, .cleanedUp: 5
        default: 6
        }
    }
}

/// Structured log: journal entries through `sd_journal_sendv` when stderr is connected to
/// the journal (JOURNAL_STREAM), else one plain line per entry on stderr, ending with the
/// same fields as `KEY=value` pairs.
package final class EventLog: Sendable {
    package enum Target: String, Sendable { case journal, stderr }
    package let target: Target

    package init(target: Target? = nil) {
        self.target = target ?? (Self.stderrIsJournal() ? .journal : .stderr)
    }

    /// Whether stderr is the journal stream systemd gave this process.
    package static func stderrIsJournal() -> Bool {
        guard let value = ProcessInfo.processInfo.environment["JOURNAL_STREAM"] else { return false }
        let parts = value.split(separator: ":")
        guard parts.count == 2, let dev = UInt64(parts[0]), let ino = UInt64(parts[1]) else { return false }
        var st = stat()
        guard fstat(2, &st) == 0 else { return false }
        return UInt64(st.st_dev) == dev && UInt64(st.st_ino) == ino
    }

    package func log(_ event: LogEvent, _ message: String, _ fields: [(String, String)] = []) {
        if target == .journal, sendToJournal(event, message, fields) { return }
        var line = Self.timestamp() + " defacer[\(getpid())]: " + message + " [EVENT=\(event.rawValue)"
        for (key, value) in fields {
            line += " \(key)=" + (value.contains(where: { $0 == " " || $0 == "]" || $0 == "\"" }) ? "\"" + value.replacingOccurrences(of: "\"", with: "'") + "\"" : value)
        }
        line += "]\n"
        var bytes = Array(line.utf8)
        bytes.withUnsafeMutableBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(2, raw.baseAddress! + offset, raw.count - offset)
                if n <= 0 { if errno == EINTR { continue } else { break } }
                offset += n
            }
        }
    }

    private func sendToJournal(_ event: LogEvent, _ message: String, _ fields: [(String, String)]) -> Bool {
        var entries = ["MESSAGE=" + message, "MESSAGE_ID=" + event.messageID, "PRIORITY=\(event.priority)",
                       "SYSLOG_IDENTIFIER=defacer", "DEFACER_EVENT=" + event.rawValue]
        for (key, value) in fields { entries.append(key + "=" + value) }
        let buffers = entries.map { Array($0.utf8) }
        let pointers: [UnsafeMutableRawPointer] = buffers.map { buffer in
            let p = UnsafeMutableRawPointer.allocate(byteCount: max(1, buffer.count), alignment: 1)
            buffer.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: buffer.count) }
            return p
        }
        defer { for p in pointers { p.deallocate() } }
        var iov = (0..<buffers.count).map { iovec(iov_base: pointers[$0], iov_len: buffers[$0].count) }
        let rc = iov.withUnsafeMutableBufferPointer { sd_journal_sendv($0.baseAddress, Int32($0.count)) }
        return rc >= 0
    }

    package static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = tm()
        var seconds = ts.tv_sec
        gmtime_r(&seconds, &t)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(t.tm_year) + 1900, Int(t.tm_mon) + 1,
                      Int(t.tm_mday), Int(t.tm_hour), Int(t.tm_min), Int(t.tm_sec), Int(ts.tv_nsec / 1_000_000))
    }
}
