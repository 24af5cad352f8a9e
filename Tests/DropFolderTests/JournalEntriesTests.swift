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

    @Test func eachEventIsAStructuredJournalEntryWithItsMessageID() throws {
        let layout = try DropLayout("journal")
        try layout.writeConfig(settle: 1)
        try FileManager.default.createDirectory(atPath: layout.root + "/journal", withIntermediateDirectories: true)
        let journal = try NotifyListener(path: layout.root + "/journal/socket")
        defer { journal.close() }
        let script = "mount -t tmpfs none /run/systemd && mkdir /run/systemd/journal && "
            + "mount --bind '\(layout.root)/journal' /run/systemd/journal && "
            + "exec '\(DefacerProcess.binary)' run --config '\(layout.configPath)' --log journal"
        let daemon = try DaemonProcess(config: layout.configPath, command: ["/usr/bin/unshare", "-m", "/bin/bash", "-c", script])
        defer { daemon.kill9() }
        #expect(waitUntil(timeout: 30) { journal.messages.contains { $0.contains("DEFACER_EVENT=ready\n") } }, "\(daemon.stderr)")
        try layout.write(Samples.randomBytes(2000, seed: 99), as: "patient-name.nii.gz")
        #expect(waitUntil(timeout: 30) { journal.messages.contains { $0.contains("DEFACER_EVENT=failed\n") } })
        func entry(_ event: String) -> [String: String] {
            let text = journal.messages.first { $0.contains("DEFACER_EVENT=\(event)\n") } ?? ""
            var fields: [String: String] = [:]
            for line in text.split(separator: "\n") {
                if let eq = line.firstIndex(of: "=") { fields[String(line[..<eq])] = String(line[line.index(after: eq)...]) }
            }
            return fields
        }
        let ready = entry("ready")
        #expect(ready["MESSAGE_ID"] == "8b2d4f6a1c3e4b5d9f7a0c2e4b6d8f13")
        #expect(ready["SYSLOG_IDENTIFIER"] == "defacer")
        let failed = entry("failed")
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
}
