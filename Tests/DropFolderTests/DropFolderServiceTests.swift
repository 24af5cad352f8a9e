import Engine
import Foundation
import Glibc
import Testing
import TestSupport

extension ServiceTests {
    /// `defacer run` as the real binary on real folders under /tmp, with real inotify and a real
    /// notify socket, defacing real heads (Colin27) with the real engine. Scans arriving, settling and queued. Serialized: each test
    /// runs a daemon that uses both cores.
    @Suite struct DropFolderServiceTests {
        init() throws { try requireDaemonTestData() }

        @Test func singleScanReachesTheOutboxAndNothingElseRemains() throws {
            let layout = try DropLayout("single")
            try layout.writeConfig()
            let daemon = try DaemonProcess(config: layout.configPath)
            defer { daemon.kill9() }
            #expect(waitUntil(timeout: 30) { !daemon.events("ready").isEmpty })
            try layout.drop(Samples.colin27, as: "sub-Jane-Doe_T1w.nii.gz")
            #expect(waitUntil(timeout: 240) { !daemon.events("done").isEmpty || !daemon.events("failed").isEmpty })
            #expect(layout.names(layout.outbox) == DropLayout.outputSet("sub-Jane-Doe_T1w"))
            #expect(layout.names(layout.inbox).isEmpty)
            #expect(layout.names(layout.failed).isEmpty)
            #expect(waitUntil(timeout: 5) { layout.workEntries().isEmpty })
            let done = try #require(daemon.events("done").first)
            #expect(done["RESULT"] == "done")
            #expect(Int(done["VOXELS_REMOVED"] ?? "") ?? 0 > 0)
            #expect(Int(done["DURATION_MS"] ?? "") ?? 0 > 0)
            #expect(done["SCAN_ID"]?.isEmpty == false)
            #expect(done["NAME_HASH"] == (try layout.nameHash("sub-Jane-Doe_T1w.nii.gz")))
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
            #expect(layout.names(layout.outbox) == (DropLayout.outputSet("head-a") + DropLayout.outputSet("head-b", ext: ".nii")).sorted())
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
            #expect(layout.names(layout.outbox) == DropLayout.outputSet("slow"))
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
            #expect(layout.names(layout.outbox) == DropLayout.outputSet("scan"))
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
    }
}
