import Engine
import Foundation
import Glibc
import Testing
import TestSupport

/// Whether this process may make a private mount namespace and mount over /run/systemd in it.
let canMountNamespace: Bool = {
    guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare"),
          FileManager.default.fileExists(atPath: "/run/systemd") else { return false }
    let probe = Process()
    probe.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
    probe.arguments = ["-m", "/bin/sh", "-c", "mount -t tmpfs none /run/systemd"]
    probe.standardError = FileHandle.nullDevice
    guard (try? probe.run()) != nil else { return false }
    probe.waitUntilExit()
    return probe.terminationStatus == 0
}()

/// Journal entries through sd_journal_sendv, caught on a socket of the test's own mounted at
/// /run/systemd/journal inside a private mount namespace (needs root and unshare).
@Suite(.enabled(if: daemonTestsCanRun && canMountNamespace, "needs root and unshare -m"))
struct JournalEntriesTests {
    init() throws { try requireDaemonTestData() }

    /// `defacer run --log journal` in a private mount namespace whose /run/systemd/journal is a
    /// socket of the test's own: its entries as they arrive.
    final class JournaledDaemon {
        let journal: NotifyListener
        let daemon: DaemonProcess

        init(_ layout: DropLayout) throws {
            try FileManager.default.createDirectory(atPath: layout.root + "/journal", withIntermediateDirectories: true)
            journal = try NotifyListener(path: layout.root + "/journal/socket")
            let script = "mount -t tmpfs none /run/systemd && mkdir /run/systemd/journal && "
                + "mount --bind '\(layout.root)/journal' /run/systemd/journal && "
                + "exec '\(DefacerProcess.binary)' run --config '\(layout.configPath)' --log journal"
            daemon = try DaemonProcess(config: layout.configPath, command: ["/usr/bin/unshare", "-m", "/bin/bash", "-c", script])
        }

        func stop() {
            daemon.kill9()
            journal.close()
        }

        /// The fields of the first entry of `event`.
        func entry(_ event: String) -> [String: String] {
            let text = journal.messages.first { $0.contains("DEFACER_EVENT=\(event)\n") } ?? ""
            var fields: [String: String] = [:]
            for line in text.split(separator: "\n") {
                if let eq = line.firstIndex(of: "=") { fields[String(line[..<eq])] = String(line[line.index(after: eq)...]) }
            }
            return fields
        }

        func waitFor(_ event: String) -> Bool {
            waitUntil(timeout: 30) { journal.messages.contains { $0.contains("DEFACER_EVENT=\(event)\n") } }
        }
    }

    @Test func eachEventIsAStructuredJournalEntryWithItsMessageID() throws {
        let layout = try DropLayout("journal")
        try layout.writeConfig(settle: 1)
        let run = try JournaledDaemon(layout)
        defer { run.stop() }
        let journal = run.journal, daemon = run.daemon
        #expect(run.waitFor("ready"), "\(daemon.stderr)")
        try layout.write(Samples.randomBytes(2000, seed: 99), as: "patient-name.nii.gz")
        #expect(run.waitFor("failed"))
        let ready = run.entry("ready")
        #expect(ready["MESSAGE_ID"] == "8b2d4f6a1c3e4b5d9f7a0c2e4b6d8f13")
        #expect(ready["SYSLOG_IDENTIFIER"] == "defacer")
        let failed = run.entry("failed")
        #expect(failed["MESSAGE_ID"] == "d0f2b4c6e8a04d2f6b8c0e2a4f6b8da5")
        #expect(failed["PRIORITY"] == "3")
        #expect(failed["INBOX"] == "main")
        #expect(failed["RESULT"] == "failed")
        #expect(failed["SCAN_ID"]?.isEmpty == false)
        #expect(Int(failed["DURATION_MS"] ?? "") != nil)
        #expect(failed["REASON"]?.contains("not a NIfTI image") == true)
        #expect(failed["MESSAGE"]?.contains("moved to failed") == true)
        #expect(failed["FILE_NAME"] == nil)
        #expect(!journal.messages.joined().contains("patient-name"))
        // nothing went to stderr instead
        #expect(daemon.entries.isEmpty)
        #expect(Set(journal.messages.compactMap { m in m.split(separator: "\n").first { $0.hasPrefix("MESSAGE_ID=") } }).count >= 5)
    }

    /// NAME_HASH is HMAC-SHA256 under the install-time key of `name_hash_key_file`: not the plain
    /// sha256 of the name (which a list of patient names would reverse), and the same after a restart.
    @Test func nameHashIsKeyedAndStableAcrossRestarts() throws {
        let layout = try DropLayout("journal-key")
        let keyFile = layout.root + "/name-hash.key"
        var generator = SystemRandomNumberGenerator()
        let key = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
        try DurableFile.write(Array(key.utf8), to: keyFile, replacing: false, mode: 0o640)
        try layout.writeConfig(settle: 1, global: "name_hash_key_file = \"\(keyFile)\"")
        let name = "Doe-Jane-19700101.nii.gz"
        var hashes: [String] = []
        for _ in 0..<2 {
            let run = try JournaledDaemon(layout)
            defer { run.stop() }
            #expect(run.waitFor("ready"), "\(run.daemon.stderr)")
            try layout.write(Samples.randomBytes(2000, seed: 7), as: name)
            #expect(run.waitFor("failed"), "\(run.daemon.stderr)")
            hashes.append(run.entry("failed")["NAME_HASH"] ?? "")
            #expect(!run.journal.messages.joined().contains("Doe-Jane"))
            // an empty failed folder again, so that the second run sets the same name aside
            for entry in layout.names(layout.failed) { try FileManager.default.removeItem(atPath: layout.failed + "/" + entry) }
        }
        let hash = hashes[0]
        #expect(hash.count == 16 && hash.allSatisfy(\.isHexDigit), "\(hash)")
        #expect(hashes[1] == hash)
        #expect(hash == (try layout.nameHash(name, keyFile: keyFile)))
        let plain = FileHash.sha256(Array(name.utf8))
        #expect(!plain.hasPrefix(hash) && !hash.hasPrefix(plain.prefix(12)), "\(hash) vs sha256 \(plain)")
        // no key made in the state folder when the configuration names one
        #expect(!FileManager.default.fileExists(atPath: layout.root + "/state/name-hash.key"))
    }
}
