import Engine
import Foundation
import Glibc
import Testing

/// `defacer run` as the real binary on real folders under /tmp, with real inotify and a real
/// notify socket, defacing real heads (Colin27) with the real engine. Serialized: each test
/// runs a daemon that uses both cores.
@Suite(.serialized, .enabled(if: daemonTestsCanRun, "needs models/ and data/ from tools/setup.sh"))
struct DropFolderServiceTests {
    /// The four outputs of a defaced scan `stem`.
    static func outputSet(_ stem: String, ext: String = ".nii.gz") -> [String] {
        [stem + "_deface.json", stem + "_defaced" + ext, stem + "_face_mask.nii.gz", stem + "_qc.png"].sorted()
    }

    @Test func singleScanReachesTheOutboxAndNothingElseRemains() throws {
        let layout = try DropLayout("single")
        try layout.writeConfig()
        let daemon = try DaemonProcess(config: layout.configPath)
        defer { daemon.kill9() }
        #expect(waitUntil(timeout: 30) { !daemon.events("ready").isEmpty })
        try layout.drop(Samples.colin27, as: "sub-Jane-Doe_T1w.nii.gz")
        #expect(waitUntil(timeout: 240) { !daemon.events("done").isEmpty || !daemon.events("failed").isEmpty })
        #expect(layout.names(layout.outbox) == Self.outputSet("sub-Jane-Doe_T1w"))
        #expect(layout.names(layout.inbox).isEmpty)
        #expect(layout.names(layout.failed).isEmpty)
        #expect(waitUntil(timeout: 5) { layout.workEntries().isEmpty })
        let done = try #require(daemon.events("done").first)
        #expect(done["RESULT"] == "done")
        #expect(Int(done["VOXELS_REMOVED"] ?? "") ?? 0 > 0)
        #expect(Int(done["DURATION_MS"] ?? "") ?? 0 > 0)
        #expect(done["SCAN_ID"]?.isEmpty == false)
        #expect(done["NAME_HASH"] == String(SHA256.hex(Array("sub-Jane-Doe_T1w.nii.gz".utf8)).prefix(12)))
        // file names can carry patient names: not logged unless configured
        #expect(!daemon.stderr.contains("Jane"))
        let report = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: layout.outbox + "/sub-Jane-Doe_T1w_deface.json"))) as? [String: Any])
        #expect(report["input"] as? String == "sub-Jane-Doe_T1w.nii.gz")
        #expect(report["scanId"] as? String == done["SCAN_ID"])
        #expect(report["inputSHA256"] as? String == (try Samples.sha256(Samples.colin27)))
        let sums = try #require(report["outputSHA256"] as? [String: String])
        #expect(sums["sub-Jane-Doe_T1w_defaced.nii.gz"] == (try Samples.sha256(layout.outbox + "/sub-Jane-Doe_T1w_defaced.nii.gz")))
        let info = try DefacerProcess.run(["info", "--json", layout.outbox + "/sub-Jane-Doe_T1w_defaced.nii.gz"])
        #expect(info.status == 0)
        let delay = Double(done["START_DELAY_MS"] ?? "") ?? .infinity
        print("service overhead, settled file to engine start: \(delay) ms")
        #expect(delay < 2000)
        daemon.signal(SIGTERM)
        #expect(daemon.waitForExit(timeout: 30) == 0)
    }

    @Test func burstOf200IsProcessedExactlyOnceWithinMaxJobs() throws {
        let layout = try DropLayout("burst")
        try layout.writeConfig(maxJobs: 2, settle: 1)
        let daemon = try DaemonProcess(config: layout.configPath)
        defer { daemon.kill9() }
        #expect(waitUntil(timeout: 30) { !daemon.events("ready").isEmpty })
        // 2 real heads and 198 bad inputs that fail fast, all dropped at once
        var expectedFailed: [String] = []
        let twoD = Samples.nifti2D(), truncated = try Samples.truncatedGzip(400_000)
        try layout.drop(Samples.colin27, as: "head-a.nii.gz")
        for i in 0..<198 {
            let name = String(format: "bad-%03d.nii%@", i, i % 3 == 1 ? "" : ".gz")
            switch i % 3 {
            case 0: try layout.write(Samples.randomBytes(2000 + i, seed: UInt64(i + 1)), as: name)
            case 1: try layout.write(twoD, as: name)
            default: try layout.write(truncated, as: name)
            }
            expectedFailed.append(name)
        }
        try layout.drop(Samples.colin27Nii, as: "head-b.nii")
        let ok = waitUntil(timeout: 600) {
            daemon.events("done").count + daemon.events("failed").count >= 200
        }
        #expect(ok)
        Thread.sleep(forTimeInterval: 1)
        let failedNames = layout.names(layout.failed)
        #expect(failedNames.filter { !$0.hasSuffix(".reason.json") } == expectedFailed.sorted())
        #expect(failedNames.filter { $0.hasSuffix(".reason.json") }.count == 198)
        #expect(layout.names(layout.outbox) == (Self.outputSet("head-a") + Self.outputSet("head-b", ext: ".nii")).sorted())
        #expect(layout.names(layout.inbox).isEmpty)
        #expect(layout.workEntries().isEmpty)
        // exactly once: one end per scan and name
        let ends = daemon.events("done") + daemon.events("failed")
        #expect(ends.count == 200)
        #expect(Set(ends.compactMap { $0["SCAN_ID"] }).count == 200)
        #expect(Set(ends.compactMap { $0["NAME_HASH"] }).count == 200)
        // never more than max_jobs at once, and both slots used
        let running = daemon.events("job-started").compactMap { Int($0["RUNNING"] ?? "") }
        #expect(running.count == 200)
        #expect(running.max() == 2)
        // each reason says why in plain words
        #expect((try layout.reason("bad-000.nii.gz")["error"] as? String)?.contains("not a NIfTI image") == true)
        #expect((try layout.reason("bad-001.nii")["error"] as? String)?.contains("2D image") == true)
        let cut = try layout.reason("bad-002.nii.gz")["error"] as? String ?? ""
        #expect(cut.contains("incomplete") || cut.contains("cut off"))
        daemon.signal(SIGTERM)
        #expect(daemon.waitForExit(timeout: 60) == 0)
    }

    @Test func slowWriterIsNotTakenHalfWritten() throws {
        let layout = try DropLayout("slow")
        try layout.writeConfig(settle: 3)
        let daemon = try DaemonProcess(config: layout.configPath)
        defer { daemon.kill9() }
        #expect(waitUntil(timeout: 30) { !daemon.events("ready").isEmpty })
        let bytes = try Data(contentsOf: URL(fileURLWithPath: Samples.colin27))
        let path = layout.inbox + "/slow.nii.gz"
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        let chunks = 12, size = (bytes.count + chunks - 1) / chunks
        for i in 0..<chunks {
            try handle.write(contentsOf: bytes[(i * size)..<min(bytes.count, (i + 1) * size)])
            // a pause longer than settle_seconds (3 s) half-way: the size is stable, but the
            // gzip stream does not parse to its end, so the file must still not be taken
            // (it would be after a second settle period: 6 s)
            Thread.sleep(forTimeInterval: i == chunks / 2 ? 4.5 : 0.5)
            #expect(daemon.events("job-started").isEmpty, "taken while still being written (after chunk \(i + 1))")
        }
        try handle.close()
        #expect(waitUntil(timeout: 240) { !daemon.events("done").isEmpty || !daemon.events("failed").isEmpty })
        #expect(layout.names(layout.outbox) == Self.outputSet("slow"))
        #expect(layout.names(layout.failed).isEmpty)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: layout.outbox + "/slow_deface.json"))) as? [String: Any])
        #expect(report["inputSHA256"] as? String == (try Samples.sha256(Samples.colin27)))
    }

    @Test func fileRenamedIntoTheInboxIsTakenAndPartialNamesAreIgnored() throws {
        let layout = try DropLayout("rename")
        try FileManager.default.createDirectory(atPath: layout.root + "/archive", withIntermediateDirectories: true)
        try layout.writeConfig(settle: 1, extra: "archive = \"archive\"")
        let daemon = try DaemonProcess(config: layout.configPath)
        defer { daemon.kill9() }
        #expect(waitUntil(timeout: 30) { !daemon.events("ready").isEmpty })
        // a transfer in progress under ignored names
        try FileManager.default.copyItem(atPath: Samples.colin27, toPath: layout.inbox + "/scan.nii.gz.part")
        try FileManager.default.copyItem(atPath: Samples.colin27, toPath: layout.inbox + "/.scan.nii.gz")
        try layout.write([1, 2, 3], as: "upload.tmp")
        Thread.sleep(forTimeInterval: 4)
        #expect(daemon.events("job-started").isEmpty)
        #expect(layout.names(layout.inbox) == ["scan.nii.gz.part", "upload.tmp"])
        // the transfer's final rename (IN_MOVED_TO)
        try FileManager.default.moveItem(atPath: layout.inbox + "/scan.nii.gz.part", toPath: layout.inbox + "/scan.nii.gz")
        #expect(waitUntil(timeout: 240) { !daemon.events("done").isEmpty || !daemon.events("failed").isEmpty })
        #expect(layout.names(layout.outbox) == Self.outputSet("scan"))
        #expect(layout.names(layout.inbox) == ["upload.tmp"])
        #expect(FileManager.default.fileExists(atPath: layout.inbox + "/.scan.nii.gz"))
        // the original is archived unchanged, once its outputs are in the outbox
        #expect(layout.names(layout.root + "/archive") == ["scan.nii.gz"])
        #expect(try Samples.sha256(layout.root + "/archive/scan.nii.gz") == (try Samples.sha256(Samples.colin27)))
    }

    @Test func inotifyOverflowIsFollowedByARescanAndPollingInboxesAreListed() throws {
        let layout = try DropLayout("overflow")
        let polled = layout.root + "/polled"
        for f in ["", "-outbox", "-failed"] { try FileManager.default.createDirectory(atPath: polled + f, withIntermediateDirectories: true) }
        try layout.writeConfig(settle: 1, rescan: 3600, global: "log_file_names = true", extra: """

        [[inbox]]
        name = "polled"
        path = "polled"
        outbox = "polled-outbox"
        failed = "polled-failed"
        watch = "poll"
        """)
        let daemon = try DaemonProcess(config: layout.configPath)
        defer { daemon.kill9() }
        #expect(waitUntil(timeout: 30) { !daemon.events("ready").isEmpty })
        #expect(daemon.events("watching").contains { $0["INBOX"] == "polled" && $0["WATCH"] == "poll" })
        // freeze the service, flood its inotify queue past the kernel's limit, then drop files
        // whose events are lost in the overflow
        let limit = Int((try? String(contentsOfFile: "/proc/sys/fs/inotify/max_queued_events", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 16384
        daemon.signal(SIGSTOP)
        for i in 0..<(limit / 2 + 1000) {
            let p = layout.inbox + "/.flood-\(i)"
            let fd = open(p, O_CREAT | O_WRONLY, 0o600)
            close(fd)
            unlink(p)
        }
        for i in 0..<3 { try layout.write(Samples.randomBytes(3000, seed: UInt64(100 + i)), as: "lost-\(i).nii.gz") }
        try layout.write(Samples.nifti2D(), as: "polled.nii", into: polled)
        daemon.signal(SIGCONT)
        #expect(waitUntil(timeout: 60) { daemon.events("failed").count >= 4 })
        #expect(!daemon.events("overflow").isEmpty)
        // the listing after the overflow found the files whose events were lost
        #expect(daemon.events("rescan").contains { $0["TRIGGER"] == "overflow" && $0["FOUND"] == "3" })
        #expect(layout.names(layout.failed).filter { !$0.hasSuffix(".reason.json") } == ["lost-0.nii.gz", "lost-1.nii.gz", "lost-2.nii.gz"])
        #expect(layout.names(polled + "-failed") == ["polled.nii", "polled.nii.reason.json"])
        // log_file_names = true: names are logged
        #expect(daemon.events("failed").contains { $0["FILE_NAME"] == "polled.nii" && $0["INBOX"] == "polled" })
        // and the watch still works after the overflow
        try layout.write(Samples.randomBytes(3000, seed: 7), as: "after.nii.gz")
        #expect(waitUntil(timeout: 30) { layout.names(layout.failed).contains("after.nii.gz.reason.json") })
    }

    @Test func badInputsGoToFailedWithReasonsAndTheServiceKeepsRunning() throws {
        let layout = try DropLayout("bad")
        try layout.writeConfig(settle: 1)
        let daemon = try DaemonProcess(config: layout.configPath)
        defer { daemon.kill9() }
        #expect(waitUntil(timeout: 30) { !daemon.events("ready").isEmpty })
        let random = Samples.randomBytes(5000, seed: 42)
        try layout.write(random, as: "random.nii.gz")
        try layout.write(try Samples.truncatedGzip(), as: "truncated.nii.gz")
        try layout.write(Samples.nifti2D(), as: "flat.nii")
        try layout.write(Array("not a scan".utf8), as: "notes.txt")
        try layout.write(Samples.nifti2D(), as: "pair.hdr")
        #expect(symlink("/etc/hostname", layout.inbox + "/link.nii.gz") == 0)
        #expect(mkfifo(layout.inbox + "/pipe.nii.gz", 0o644) == 0)
        try FileManager.default.createDirectory(atPath: layout.inbox + "/folder.nii.gz", withIntermediateDirectories: false)
        try layout.write(Samples.randomBytes(100, seed: 1), as: "folder.nii.gz/inside.dcm")
        let names = ["flat.nii", "folder.nii.gz", "link.nii.gz", "notes.txt", "pair.hdr", "pipe.nii.gz", "random.nii.gz", "truncated.nii.gz"]
        #expect(waitUntil(timeout: 60) { daemon.events("failed").count >= names.count })
        Thread.sleep(forTimeInterval: 0.5)
        #expect(layout.names(layout.failed) == (names + names.map { $0 + ".reason.json" }).sorted())
        #expect(layout.names(layout.inbox).isEmpty)
        #expect(layout.names(layout.outbox).isEmpty)
        func error(_ name: String) throws -> String { try layout.reason(name)["error"] as? String ?? "" }
        #expect(try error("random.nii.gz").contains("not a NIfTI image"))
        #expect(try error("truncated.nii.gz").contains("incomplete") || (try error("truncated.nii.gz")).contains("cut off"))
        #expect(try error("flat.nii").contains("2D image"))
        #expect(try error("notes.txt").contains(".nii or .nii.gz"))
        #expect(try error("pair.hdr").contains("pairs"))
        #expect(try error("link.nii.gz").contains("symbolic link pointing outside the inbox"))
        #expect(try error("pipe.nii.gz").contains("named pipe"))
        #expect(try error("folder.nii.gz").contains("folder"))
        let reason = try layout.reason("random.nii.gz")
        #expect(reason["sha256"] as? String == SHA256.hex(random))
        #expect(reason["defacerVersion"] as? String == DefacerVersion.string)
        #expect(reason["attempts"] as? Int == 1)
        #expect(reason["file"] as? String == "random.nii.gz")
        #expect(reason["sha256"] is NSNull == false)
        #expect(try layout.reason("pipe.nii.gz")["sha256"] is NSNull)
        // the link was moved, never followed
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: layout.failed + "/link.nii.gz")) == "/etc/hostname")
        #expect(FileManager.default.fileExists(atPath: layout.failed + "/folder.nii.gz/inside.dcm"))
        // still running, and still taking files; a second file of a failed name does not overwrite
        #expect(daemon.process.isRunning)
        try layout.write(Samples.randomBytes(700, seed: 9), as: "random.nii.gz")
        #expect(waitUntil(timeout: 30) { layout.names(layout.failed).contains("random-2.nii.gz.reason.json") })
        #expect(try layout.reason("random.nii.gz")["sha256"] as? String == SHA256.hex(random))
        daemon.signal(SIGTERM)
        #expect(daemon.waitForExit(timeout: 30) == 0)
    }

    @Test(.enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"),
                   "needs root to run the service as nobody"))
    func unreadableFileGoesToFailed() throws {
        let layout = try DropLayout("unreadable")
        try layout.writeConfig(settle: 1)
        for path in ["/tmp/defacer-daemon-tests", layout.root] { chmod(path, 0o755) }
        for folder in [layout.inbox, layout.outbox, layout.failed] { chmod(folder, 0o777) }
        let daemon = try DaemonProcess(config: layout.configPath, asNobody: true)
        defer { daemon.kill9() }
        #expect(waitUntil(timeout: 30) { !daemon.events("ready").isEmpty }, "\(daemon.stderr)")
        try FileManager.default.copyItem(atPath: Samples.colin27, toPath: layout.root + "/staging/secret.nii.gz")
        chmod(layout.root + "/staging/secret.nii.gz", 0o000)
        try FileManager.default.moveItem(atPath: layout.root + "/staging/secret.nii.gz", toPath: layout.inbox + "/secret.nii.gz")
        #expect(waitUntil(timeout: 60) { layout.names(layout.failed).contains("secret.nii.gz.reason.json") })
        #expect((try layout.reason("secret.nii.gz")["error"] as? String)?.contains("not allowed to read") == true)
        #expect(layout.names(layout.inbox).isEmpty)
        #expect(daemon.process.isRunning)
    }

    @Test(.enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"),
                   "needs root to run the service as nobody"))
    func outboxThatCannotBeWrittenIsRetriedWithoutDefacingAgain() throws {
        let layout = try DropLayout("retry")
        try layout.writeConfig(settle: 1, global: "retry_seconds = 2")
        for path in ["/tmp/defacer-daemon-tests", layout.root] { chmod(path, 0o755) }
        for folder in [layout.inbox, layout.outbox, layout.failed] { chmod(folder, 0o777) }
        let daemon = try DaemonProcess(config: layout.configPath, asNobody: true)
        defer { daemon.kill9() }
        #expect(waitUntil(timeout: 30) { !daemon.events("ready").isEmpty }, "\(daemon.stderr)")
        chmod(layout.outbox, 0o555)  // e.g. a full or read-only outbox
        try layout.drop(Samples.colin27, as: "later.nii.gz")
        chmod(layout.inbox + "/later.nii.gz", 0o644)
        #expect(waitUntil(timeout: 240) { !daemon.events("folder-problem").isEmpty })
        #expect(layout.names(layout.outbox).isEmpty)
        #expect(layout.workEntries().count == 1)
        chmod(layout.outbox, 0o777)
        #expect(waitUntil(timeout: 30) { !daemon.events("done").isEmpty })
        #expect(layout.names(layout.outbox) == Self.outputSet("later"))
        #expect(layout.workEntries().isEmpty)
        #expect(daemon.events("job-started").count == 2)  // the claim, then the resumed moves
        #expect(daemon.events("done").first?["ATTEMPT"] == "1")  // defaced once
    }

    @Test func killDuringProcessingThenRestartEndsEveryScanExactlyOnce() throws {
        let layout = try DropLayout("kill")
        try layout.writeConfig(settle: 1)
        var daemon = try DaemonProcess(config: layout.configPath)
        defer { daemon.kill9() }
        #expect(waitUntil(timeout: 30) { !daemon.events("ready").isEmpty })
        try layout.drop(Samples.colin27, as: "first.nii.gz")
        #expect(waitUntil(timeout: 30) { !daemon.events("job-started").isEmpty })
        try layout.drop(Samples.colin27, as: "second.nii.gz")
        try layout.write(Samples.randomBytes(4000, seed: 5), as: "broken.nii.gz")
        Thread.sleep(forTimeInterval: 4)   // inside the engine
        daemon.kill9()
        #expect(layout.names(layout.outbox).isEmpty, "no partial result may reach the outbox")
        #expect(layout.workEntries().count == 1)
        // restart: the claimed scan is requeued, the rest is found in the inbox
        daemon = try DaemonProcess(config: layout.configPath)
        #expect(waitUntil(timeout: 30) { !daemon.events("ready").isEmpty })
        #expect(daemon.events("requeued").count == 1)
        #expect(waitUntil(timeout: 400) { daemon.events("done").count + daemon.events("failed").count >= 3 })
        Thread.sleep(forTimeInterval: 0.5)
        #expect(layout.names(layout.outbox) == (Self.outputSet("first") + Self.outputSet("second")).sorted())
        #expect(layout.names(layout.failed) == ["broken.nii.gz", "broken.nii.gz.reason.json"])
        #expect(layout.names(layout.inbox).isEmpty)
        #expect(layout.workEntries().isEmpty)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: layout.outbox + "/first_deface.json"))) as? [String: Any])
        #expect(report["attempts"] as? Int == 2)
    }

    @Test func scanThatStopsTheServiceTwiceIsSetAside() throws {
        let layout = try DropLayout("crash")
        try layout.writeConfig(settle: 1)
        try layout.drop(Samples.colin27, as: "poison.nii.gz")
        for round in 1...2 {
            let daemon = try DaemonProcess(config: layout.configPath)
            #expect(waitUntil(timeout: 60) { !daemon.events("job-started").isEmpty }, "round \(round)")
            Thread.sleep(forTimeInterval: 2)
            daemon.kill9()
            #expect(layout.names(layout.outbox).isEmpty)
        }
        let daemon = try DaemonProcess(config: layout.configPath)
        defer { daemon.kill9() }
        #expect(waitUntil(timeout: 60) { !daemon.events("quarantined").isEmpty })
        Thread.sleep(forTimeInterval: 0.5)
        #expect(layout.names(layout.failed) == ["poison.nii.gz", "poison.nii.gz.reason.json"])
        let reason = try layout.reason("poison.nii.gz")
        #expect((reason["error"] as? String)?.contains("stopped the service 2 times") == true)
        #expect(reason["attempts"] as? Int == 2)
        #expect(reason["sha256"] as? String == (try Samples.sha256(Samples.colin27)))
        #expect(layout.workEntries().isEmpty)
        #expect(layout.names(layout.outbox).isEmpty)
    }

    @Test func sighupAddsASecondInboxAndAnInvalidConfigKeepsTheOldOne() throws {
        let layout = try DropLayout("reload")
        try layout.writeConfig(settle: 1)
        let notify = try NotifyListener(path: layout.root + "/notify.sock")
        defer { notify.close() }
        let daemon = try DaemonProcess(config: layout.configPath, environment: ["NOTIFY_SOCKET": notify.path])
        defer { daemon.kill9() }
        #expect(waitUntil(timeout: 30) { notify.assignments.contains("READY=1") })
        let second = layout.root + "/second"
        for f in ["", "-outbox", "-failed"] { try FileManager.default.createDirectory(atPath: second + f, withIntermediateDirectories: true) }
        try layout.writeConfig(settle: 1, extra: """

        [[inbox]]
        name = "second"
        path = "second"
        outbox = "second-outbox"
        failed = "second-failed"
        """)
        daemon.signal(SIGHUP)
        #expect(waitUntil(timeout: 30) { !daemon.events("reloaded").isEmpty })
        #expect(waitUntil(timeout: 5) { notify.assignments.filter { $0 == "READY=1" }.count == 2 })
        let assignments = notify.assignments
        let reloading = try #require(assignments.firstIndex(of: "RELOADING=1"))
        let monotonic = try #require(assignments[reloading...].first { $0.hasPrefix("MONOTONIC_USEC=") })
        #expect(UInt64(monotonic.dropFirst("MONOTONIC_USEC=".count)) ?? 0 > 0)
        #expect(assignments.lastIndex(of: "READY=1")! > reloading)
        try layout.write(Samples.nifti2D(), as: "two-d.nii", into: second)
        #expect(waitUntil(timeout: 30) { layout.names(second + "-failed") == ["two-d.nii", "two-d.nii.reason.json"] })

        // an invalid config is refused; the service keeps running the old one
        try "max_jobs = \"many\"\n".write(toFile: layout.configPath, atomically: true, encoding: .utf8)
        daemon.signal(SIGHUP)
        #expect(waitUntil(timeout: 30) { !daemon.events("reload-failed").isEmpty })
        #expect(daemon.events("reload-failed").first?["REASON"]?.contains("max_jobs") == true)
        #expect(waitUntil(timeout: 5) { notify.assignments.filter { $0 == "READY=1" }.count == 3 })
        try layout.write(Samples.nifti2D(), as: "still.nii", into: second)
        try layout.write(Samples.nifti2D(), as: "first.nii")
        #expect(waitUntil(timeout: 30) {
            layout.names(second + "-failed").contains("still.nii.reason.json") && layout.names(layout.failed).contains("first.nii.reason.json")
        })
        daemon.signal(SIGTERM)
        #expect(daemon.waitForExit(timeout: 30) == 0)
    }

    @Test func sigtermDrainsTheRunningScanAndTakesNoNewOne() throws {
        let layout = try DropLayout("term")
        try layout.writeConfig(settle: 1)
        let notify = try NotifyListener(path: layout.root + "/notify.sock")
        defer { notify.close() }
        let daemon = try DaemonProcess(config: layout.configPath, environment: ["NOTIFY_SOCKET": notify.path])
        defer { daemon.kill9() }
        #expect(waitUntil(timeout: 30) { !daemon.events("ready").isEmpty })
        try layout.drop(Samples.colin27, as: "running.nii.gz")
        #expect(waitUntil(timeout: 30) { !daemon.events("job-started").isEmpty })
        try layout.drop(Samples.colin27, as: "waiting.nii.gz")
        Thread.sleep(forTimeInterval: 2.5)  // settled and queued behind the running one
        daemon.signal(SIGTERM)
        #expect(waitUntil(timeout: 5) { notify.assignments.contains("STOPPING=1") })
        #expect(notify.assignments.contains { $0.hasPrefix("EXTEND_TIMEOUT_USEC=") })
        let status = daemon.waitForExit(timeout: 300)
        #expect(status == 0)
        #expect(layout.names(layout.outbox) == Self.outputSet("running"))
        #expect(layout.names(layout.inbox) == ["waiting.nii.gz"])
        #expect(layout.workEntries().isEmpty)
        #expect(daemon.events("job-started").count == 1)
        #expect(!daemon.events("stopped").isEmpty)
    }

    @Test func notifySocketGetsReadyStatusWatchdogAndStopping() throws {
        let layout = try DropLayout("notify")
        try layout.writeConfig(settle: 1)
        try layout.write(Samples.randomBytes(1000, seed: 11), as: "early.nii.gz")
        let notify = try NotifyListener(path: layout.root + "/notify.sock")
        defer { notify.close() }
        let daemon = try DaemonProcess(config: layout.configPath,
                                       environment: ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "1000000"])
        defer { daemon.kill9() }
        #expect(waitUntil(timeout: 30) { notify.assignments.contains("READY=1") })
        #expect(waitUntil(timeout: 10) { layout.names(layout.failed).count == 2 })
        #expect(waitUntil(timeout: 5) { notify.assignments.filter { $0 == "WATCHDOG=1" }.count >= 4 })
        let assignments = notify.assignments
        // READY comes with the first STATUS, after the startup scan queued the early file
        let ready = try #require(assignments.firstIndex(of: "READY=1"))
        #expect(assignments[ready + 1].hasPrefix("STATUS=queued 0, running 0, done 0, failed 0, settling 1"))
        #expect(!assignments[..<ready].contains("WATCHDOG=1"))
        #expect(assignments.contains("STATUS=queued 0, running 0, done 0, failed 1"))
        daemon.signal(SIGTERM)
        #expect(daemon.waitForExit(timeout: 30) == 0)
        #expect(waitUntil(timeout: 2) { notify.assignments.contains("STOPPING=1") })
    }
}

/// Throughput of the service with max_jobs 1 against 2 on the same four real heads. Opt-in
/// (DEFACER_DAEMON_BENCH=1): it takes several minutes and measures, rather than checks.
@Suite(.serialized, .enabled(if: daemonTestsCanRun && ProcessInfo.processInfo.environment["DEFACER_DAEMON_BENCH"] == "1",
                             "set DEFACER_DAEMON_BENCH=1 to measure"))
struct DropFolderThroughputBenchmark {
    @Test(arguments: [1, 2])
    func throughput(maxJobs: Int) throws {
        let layout = try DropLayout("bench\(maxJobs)")
        try layout.writeConfig(maxJobs: maxJobs, settle: 1)
        let daemon = try DaemonProcess(config: layout.configPath)
        defer { daemon.kill9() }
        #expect(waitUntil(timeout: 30) { !daemon.events("ready").isEmpty })
        let start = Date()
        for i in 0..<4 { try layout.drop(Samples.colin27, as: "head-\(i).nii.gz") }
        #expect(waitUntil(timeout: 900) { daemon.events("done").count + daemon.events("failed").count >= 4 })
        let seconds = Date().timeIntervalSince(start)
        let delays = daemon.events("done").compactMap { Double($0["START_DELAY_MS"] ?? "") }
        print(String(format: "max_jobs %d: 4 heads in %.1f s (%.2f scans/min); settled-to-engine delay %@ ms",
                     maxJobs, seconds, 4 / seconds * 60, delays.map { String(format: "%.1f", $0) }.joined(separator: ", ")))
        #expect(daemon.events("done").count == 4)
    }
}

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
