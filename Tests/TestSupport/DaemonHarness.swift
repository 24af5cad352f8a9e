import Engine
import Foundation
import Glibc
import Testing

/// A drop-folder layout under a fresh temporary folder: inbox, outbox, failed (work defaults
/// to inbox/.defacer-work), a config file, and helpers to look at the folders.
package final class DropLayout: @unchecked Sendable {
    package let root: String

    package init(_ label: String) throws {
        root = "/tmp/defacer-daemon-tests/\(label)-\(UUID().uuidString.prefix(8))"
        for folder in ["inbox", "outbox", "failed", "staging"] {
            try FileManager.default.createDirectory(atPath: root + "/" + folder, withIntermediateDirectories: true)
        }
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    package var inbox: String { root + "/inbox" }
    package var outbox: String { root + "/outbox" }
    package var failed: String { root + "/failed" }
    package var work: String { inbox + "/.defacer-work" }
    package var configPath: String { root + "/defacer.toml" }

    /// The four outputs of a defaced scan `stem`, sorted.
    package static func outputSet(_ stem: String, ext: String = ".nii.gz") -> [String] {
        [stem + "_deface.json", stem + "_defaced" + ext, stem + "_face_mask.nii.gz", stem + "_qc.png"].sorted()
    }

    /// A second inbox, `second` beside the first with `second-outbox` and `second-failed`: its
    /// folders made, its path and its `[[inbox]]` table (for `writeConfig`'s `extra`) returned.
    package func makeSecondInbox() throws -> (path: String, table: String) {
        let second = root + "/second"
        for f in ["", "-outbox", "-failed"] { try FileManager.default.createDirectory(atPath: second + f, withIntermediateDirectories: true) }
        return (second, "\n[[inbox]]\nname = \"second\"\npath = \"second\"\noutbox = \"second-outbox\"\nfailed = \"second-failed\"\n")
    }

    /// Writes a config with one inbox (plus `extra` TOML appended).
    package func writeConfig(maxJobs: Int = 1, settle: Double = 1, rescan: Double = 600, global: String = "", extra: String = "") throws {
        let text = """
        max_jobs = \(maxJobs)
        settle_seconds = \(settle)
        rescan_seconds = \(rescan)
        poll_seconds = 1
        models = "\(DefacerProcess.repositoryRoot)/models"
        \(global)

        [[inbox]]
        name = "main"
        path = "inbox"
        outbox = "outbox"
        failed = "failed"
        \(extra)
        """
        try text.write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    /// The name-hash key the service made on first start (`DaemonProcess` gives it `state/`
    /// beside the config as its state folder), or the one at `keyFile`.
    package func nameHashKey(_ keyFile: String? = nil) throws -> [UInt8] {
        let text = try String(contentsOfFile: keyFile ?? root + "/state/name-hash.key", encoding: .utf8)
        return Array(text.trimmingCharacters(in: .whitespacesAndNewlines).utf8)
    }

    /// What the service logs as NAME_HASH for `name`: the first 16 hex digits of HMAC-SHA256
    /// under its key, worked out here with swift-crypto (as `openssl dgst -hmac` would).
    package func nameHash(_ name: String, keyFile: String? = nil) throws -> String {
        String(FileHash.hmacSHA256(Array(name.utf8), key: try nameHashKey(keyFile)).prefix(16))
    }

    /// Visible names in a folder (no dotfiles), sorted.
    package func names(_ folder: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
    }

    /// Entries of the work folder (job folders still there).
    package func workEntries() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: work)) ?? []).sorted()
    }

    package func reason(_ name: String, in folder: String? = nil) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: (folder ?? failed) + "/" + name + ".reason.json"))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// Copies a real scan into the inbox under `name` (written beside it, then renamed in).
    package func drop(_ source: String, as name: String, into folder: String? = nil) throws {
        let staged = root + "/staging/" + name
        try? FileManager.default.removeItem(atPath: staged)
        try FileManager.default.copyItem(atPath: source, toPath: staged)
        try FileManager.default.moveItem(atPath: staged, toPath: (folder ?? inbox) + "/" + name)
    }

    package func write(_ bytes: [UInt8], as name: String, into folder: String? = nil) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: (folder ?? inbox) + "/" + name))
    }
}

/// Test inputs.
package enum Samples {
    package static var colin27: String { DefacerProcess.repositoryRoot + "/data/real/ch2.nii.gz" }
    /// Colin27 uncompressed (`.nii`), made once with gzip.
    package static let colin27Nii: String = {
        let path = "/tmp/defacer-daemon-tests/colin27.nii"
        if !FileManager.default.fileExists(atPath: path) {
            let partial = path + ".\(getpid()).partial"
            try? FileManager.default.createDirectory(atPath: "/tmp/defacer-daemon-tests", withIntermediateDirectories: true)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/gzip")
            process.arguments = ["-dc", colin27]
            _ = FileManager.default.createFile(atPath: partial, contents: nil)
            process.standardOutput = FileHandle(forWritingAtPath: partial)
            try? process.run()
            process.waitUntilExit()
            rename(partial, path)
        }
        return path
    }()

    package static func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0..<count).map { _ in
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return UInt8(truncatingIfNeeded: state)
        }
    }

    /// The first `bytes` of the gzipped Colin27 head: a cut-off gzip stream.
    package static func truncatedGzip(_ bytes: Int = 1_000_000) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: colin27)).prefix(bytes))
    }

    /// A valid NIfTI-1 2D image (64 x 64 uint8), which defacing must refuse.
    package static func nifti2D() -> [UInt8] {
        var header = [UInt8](repeating: 0, count: 352)
        func put<T>(_ value: T, at offset: Int) {
            withUnsafeBytes(of: value) { raw in for (i, b) in raw.enumerated() { header[offset + i] = b } }
        }
        put(Int32(348), at: 0)
        for (i, d) in [Int16(2), 64, 64, 1, 1, 1, 1, 1].enumerated() { put(d, at: 40 + 2 * i) }
        put(Int16(2), at: 70)   // uint8
        put(Int16(8), at: 72)
        for i in 0..<8 { put(Float(1), at: 76 + 4 * i) }
        put(Float(352), at: 108)
        put(Float(1), at: 112)
        for (i, c) in "n+1".utf8.enumerated() { header[344 + i] = c }
        return header + (0..<(64 * 64)).map { UInt8($0 % 251) }
    }

    package static func sha256(_ path: String) throws -> String {
        FileHash.sha256(try Data(contentsOf: URL(fileURLWithPath: path)))
    }
}

/// A datagram socket standing in for systemd's NOTIFY_SOCKET (or the journal's socket):
/// collects every message.
package final class NotifyListener: @unchecked Sendable {
    package let path: String
    private let fd: Int32
    private let lock = NSLock()
    private var received: [(at: Double, text: String)] = []
    private var thread: Thread?
    private var stopped = false

    package init(path: String) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        precondition(bytes.count < MemoryLayout.size(ofValue: address.sun_path))
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else { throw POSIXError(.EADDRINUSE) }
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let t = Thread { [unowned self] in self.receive() }
        thread = t
        t.start()
    }

    private func receive() {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            lock.lock(); let stop = stopped; lock.unlock()
            if stop { return }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                let text = String(decoding: buffer[0..<n], as: UTF8.self)
                let at = ProcessInfo.processInfo.systemUptime
                lock.lock(); received.append((at, text)); lock.unlock()
            }
        }
    }

    /// Every datagram so far, in order.
    package var messages: [String] { arrivals.map(\.text) }

    /// Every datagram so far with when it arrived (`systemUptime` seconds), in order.
    package var arrivals: [(at: Double, text: String)] {
        lock.lock(); defer { lock.unlock() }
        return received
    }

    /// Each `KEY=value` line of every datagram, in order.
    package var assignments: [String] { messages.flatMap { $0.split(separator: "\n").map(String.init) } }

    package func close() {
        lock.lock(); stopped = true; lock.unlock()
        Thread.sleep(forTimeInterval: 0.3)
        Glibc.close(fd)
        unlink(path)
    }
}

/// The real `defacer run` as a child process, with its stderr log collected and parsed.
package final class DaemonProcess: @unchecked Sendable {
    package let process = Process()
    private let lock = NSLock()
    private var output = Data()
    private var reader: Thread?

    /// One log line's fields: EVENT, SCAN_ID, INBOX, RESULT, ... and "MESSAGE".
    package struct Entry {
        package var fields: [String: String]
        package var line: String
        package subscript(_ key: String) -> String? { fields[key] }
    }

    /// `command` replaces the plain `defacer run --config CONFIG --log stderr` (e.g. to run it in
    /// a mount namespace).
    package init(config: String, environment extra: [String: String] = [:], asNobody: Bool = false, command: [String]? = nil) throws {
        var env = ProcessInfo.processInfo.environment
        env["NOTIFY_SOCKET"] = nil
        env["WATCHDOG_USEC"] = nil
        env["WATCHDOG_PID"] = nil
        env["JOURNAL_STREAM"] = nil
        // the name-hash key made on first start goes beside the config, not into the tester's home
        // (the folder made here, as systemd's StateDirectory is, owned by the user the service runs as)
        let state = DurableFile.directory(of: config) + "/state"
        env["STATE_DIRECTORY"] = state
        if mkdir(state, 0o700) == 0, asNobody { chown(state, 65534, 65534) }
        for (k, v) in extra { env[k] = v }
        if asNobody {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            process.arguments = ["--reuid=65534", "--regid=65534", "--clear-groups", DefacerProcess.binary,
                                 "run", "--config", config, "--log", "stderr"]
        } else {
            process.executableURL = URL(fileURLWithPath: DefacerProcess.binary)
            process.arguments = ["run", "--config", config, "--log", "stderr"]
        }
        if let command {
            process.executableURL = URL(fileURLWithPath: command[0])
            process.arguments = Array(command.dropFirst())
        }
        process.environment = env
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let handle = pipe.fileHandleForReading
        let t = Thread { [unowned self] in
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { return }
                self.lock.lock(); self.output.append(chunk); self.lock.unlock()
            }
        }
        reader = t
        t.start()
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    package var stderr: String {
        lock.lock(); defer { lock.unlock() }
        return String(decoding: output, as: UTF8.self)
    }

    /// The parsed log entries so far.
    package var entries: [Entry] {
        stderr.split(separator: "\n").compactMap { line -> Entry? in
            guard let open = line.range(of: " [EVENT=", options: .backwards), line.hasSuffix("]") else { return nil }
            var fields: [String: String] = ["MESSAGE": String(line[..<open.lowerBound])]
            var rest = Substring(line[line.index(open.lowerBound, offsetBy: 2)..<line.index(before: line.endIndex)])
            while !rest.isEmpty {
                guard let eq = rest.firstIndex(of: "=") else { break }
                let key = String(rest[..<eq])
                rest = rest[rest.index(after: eq)...]
                var value: Substring
                if rest.first == "\"" {
                    rest = rest.dropFirst()
                    let end = rest.firstIndex(of: "\"") ?? rest.endIndex
                    value = rest[..<end]
                    rest = end < rest.endIndex ? rest[rest.index(after: end)...] : ""
                } else {
                    let end = rest.firstIndex(of: " ") ?? rest.endIndex
                    value = rest[..<end]
                    rest = rest[end...]
                }
                fields[key] = String(value)
                rest = rest.drop { $0 == " " }
            }
            return Entry(fields: fields, line: String(line))
        }
    }

    package func events(_ name: String) -> [Entry] { entries.filter { $0["EVENT"] == name } }

    package func signal(_ sig: Int32) { kill(process.processIdentifier, sig) }

    /// Waits for the process to exit; returns its status (nil on timeout).
    package func waitForExit(timeout: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        if process.isRunning { return nil }
        Thread.sleep(forTimeInterval: 0.2)  // let the reader take the last lines
        return process.terminationStatus
    }

    /// The `defacer worker` children of this service.
    package func workers() -> [pid_t] {
        workerProcesses { $0 == process.processIdentifier }
    }

    /// Stops (SIGSTOP) the first `defacer worker` child once it has run for `after` seconds,
    /// so that a kill that follows lands mid-deface however fast the engine is; nil when no
    /// worker appeared within `timeout` or it had already ended.
    package func freezeWorker(after seconds: Double, timeout: Double = 60) -> pid_t? {
        var worker: pid_t?
        guard waitUntil(timeout: timeout, { worker = workers().first; return worker != nil }), let worker else { return nil }
        Thread.sleep(forTimeInterval: seconds)
        return kill(worker, SIGSTOP) == 0 && processIsAlive(worker) ? worker : nil
    }

    /// Kills with SIGKILL and waits.
    package func kill9() {
        signal(SIGKILL)
        _ = waitForExit(timeout: 10)
    }
}

/// A process's state letter ("R", "S", "T" stopped, "Z" zombie...) and parent, from
/// /proc/PID/stat; nil when there is no such process.
package func processStat(_ pid: pid_t) -> (state: Substring, parent: pid_t)? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")") else { return nil }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    guard fields.count > 2, let parent = pid_t(fields[1]) else { return nil }
    return (fields[0], parent)
}

/// The running `defacer worker` processes whose parent passes `parent` (all of them by
/// default: a Slurm job's worker is a child of slurmstepd), found by their command lines in /proc.
package func workerProcesses(jobsUnder root: String? = nil, parent: (pid_t) -> Bool = { _ in true }) -> [pid_t] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap { pid_t($0) }.filter { pid in
        guard let stat = processStat(pid), stat.state != "Z", parent(stat.parent),
              let cmdline = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
        let arguments = cmdline.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        return arguments.count > 2 && arguments[1] == "worker" && (root.map { arguments[2].hasPrefix($0) } ?? true)
    }
}

/// Whether `pid` is a live process (not gone, not a zombie waiting to be reaped).
package func processIsAlive(_ pid: pid_t) -> Bool {
    kill(pid, 0) == 0 && processStat(pid).map { $0.state != "Z" } == true
}

/// Polls `condition` every 0.1 s until it holds or `timeout` passes; returns whether it held.
@discardableResult
package func waitUntil(timeout: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if condition() { return true }
        Thread.sleep(forTimeInterval: 0.1)
    }
    return condition()
}

/// Whether models/ and real scans are set up here (tools/setup/setup.sh).
package let daemonTestDataPresent = FileManager.default.fileExists(atPath: DefacerProcess.repositoryRoot + "/models/hdbet/model.json")
    && FileManager.default.fileExists(atPath: DefacerProcess.repositoryRoot + "/data/real/ch2.nii.gz")

/// Whether the service tests run: where their models and scans are set up, and always in CI
/// (`CI` set), where missing ones fail them (`requireDaemonTestData`) instead of skipping them.
package let daemonTestsCanRun = daemonTestDataPresent || ProcessInfo.processInfo.environment["CI"] != nil

/// Why a service test cannot run.
package struct MissingTestData: Error, CustomStringConvertible {
    package var description: String {
        "models/hdbet or data/real/ch2.nii.gz is missing: run tools/setup/setup.sh (in CI the service tests must run)"
    }
}

/// Fails the calling test when the models or real scans are missing (the suites' `init`).
package func requireDaemonTestData() throws {
    guard daemonTestDataPresent else { throw MissingTestData() }
}
