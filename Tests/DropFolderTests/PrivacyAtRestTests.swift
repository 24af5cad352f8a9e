import Engine
import Foundation
import Glibc
import Testing
import TestSupport

/// What the running service keeps from other users: no core file or debugger view of its
/// memory (it makes itself non-dumpable), and file-name hashes under a key of its own.
@Suite(.enabled(if: daemonTestsCanRun, "needs the models and test scans"))
struct PrivacyAtRestTests {
    init() throws { try requireDaemonTestData() }

    /// Linux gives the /proc files of a non-dumpable process to root: run as nobody, the
    /// service's /proc/PID belongs to root, so nobody else of its user can read its memory,
    /// and no core file is written.
    @Test(.enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"),
                   "needs root to run the service as nobody"))
    func serviceIsNotDumpable() throws {
        let layout = try DropLayout("dumpable")
        try layout.writeConfig(settle: 1)
        for path in ["/tmp/defacer-daemon-tests", layout.root] { chmod(path, 0o755) }
        for folder in [layout.inbox, layout.outbox, layout.failed] { chmod(folder, 0o777) }
        let daemon = try DaemonProcess(config: layout.configPath, asNobody: true)
        defer { daemon.kill9() }
        #expect(waitUntil(timeout: 60) { !daemon.events("ready").isEmpty }, "\(daemon.stderr)")
        var st = stat()
        #expect(stat("/proc/\(daemon.process.processIdentifier)/mem", &st) == 0)
        #expect(st.st_uid == 0, "the service runs as nobody (65534) and its /proc files belong to uid \(st.st_uid)")
        // the control: a process of nobody that did not call prctl keeps its /proc files
        let control = try ToolProcess.run("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups",
                                                               "/bin/sh", "-c", "stat -c %u /proc/self/mem"])
        #expect(control.output.trimmingCharacters(in: .whitespacesAndNewlines) == "65534", "\(control.output)")
    }

    /// Without `name_hash_key_file` the service makes `name-hash.key` in its state folder on
    /// first start (only its user can read it) and keeps using it after a restart.
    @Test func keyIsMadeInTheStateFolderOnceAndKept() throws {
        let layout = try DropLayout("state-key")
        try layout.writeConfig(settle: 1)
        let name = "Doe-Jane-19700101.nii.gz"
        var hashes: [String] = []
        var keys: [[UInt8]] = []
        for _ in 0..<2 {
            let daemon = try DaemonProcess(config: layout.configPath)
            defer { daemon.kill9() }
            #expect(waitUntil(timeout: 60) { !daemon.events("ready").isEmpty }, "\(daemon.stderr)")
            try layout.write(Samples.randomBytes(2000, seed: 7), as: name)
            #expect(waitUntil(timeout: 30) { !daemon.events("failed").isEmpty }, "\(daemon.stderr)")
            hashes.append(daemon.events("failed").first?["NAME_HASH"] ?? "")
            keys.append(try layout.nameHashKey())
            #expect(!daemon.stderr.contains("Doe-Jane"))
            for entry in layout.names(layout.failed) { try FileManager.default.removeItem(atPath: layout.failed + "/" + entry) }
        }
        var st = stat()
        #expect(stat(layout.root + "/state/name-hash.key", &st) == 0)
        #expect(st.st_mode & 0o777 == 0o600)
        #expect(keys[0].count == 64 && keys[1] == keys[0])
        #expect(hashes[0].count == 16 && hashes[1] == hashes[0])
        #expect(hashes[0] == (try layout.nameHash(name)))
        #expect(!FileHash.sha256(Array(name.utf8)).hasPrefix(hashes[0]))
    }

    /// A named key file that is missing or readable by every user stops the start, with the
    /// fix in the message; no unkeyed hash is ever logged.
    @Test func missingOrOpenKeyFileStopsTheStart() throws {
        let layout = try DropLayout("bad-key")
        let keyFile = layout.root + "/name-hash.key"
        try layout.writeConfig(settle: 1, global: "name_hash_key_file = \"\(keyFile)\"")
        let missing = try DefacerProcess.run(["run", "--config", layout.configPath, "--log", "stderr"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("name-hash key \(keyFile) cannot be read") && missing.stderr.contains("od -An"), "\(missing.stderr)")
        try DurableFile.write(Array(String(repeating: "ab", count: 32).utf8), to: keyFile, replacing: false, mode: 0o644)
        chmod(keyFile, 0o644)
        let open = try DefacerProcess.run(["run", "--config", layout.configPath, "--log", "stderr"])
        #expect(open.status == 1)
        #expect(open.stderr.contains("readable by every user") && open.stderr.contains("chmod o-rwx"), "\(open.stderr)")
        #expect(!open.stderr.contains("NAME_HASH"))
    }
}
