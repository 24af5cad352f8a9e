import DropFolders
import Engine
import Foundation
import Glibc
import Testing
import TestSupport

extension ServiceTests {
    /// Nothing slow on the service's loop: a DICOM study of 120,000 real files is
    /// walked off the loop while the watchdog pings stay on time and a NIfTI scan dropped at
    /// the same time is taken (the real binary, a real NOTIFY_SOCKET listener, a real walk).
    @Suite struct LoopOnTimeTests {
        init() throws { try requireDaemonTestData() }

        /// A study of `copies` folders, each holding the sample study's files as hard links (real
        /// DICOM files under their own names; the walk looks at every one). Returns the number
        /// of files and their bytes.
        static func bigStudy(at path: String, copies: Int, layout: DropLayout) throws -> (files: Int, bytes: Int64) {
            let original = layout.root + "/study-original"
            try DicomSamples.copy("study", to: original)
            let names = DicomSamples.files("study")
            var bytes: Int64 = 0
            for name in names { bytes += DropEntry(path: original + "/" + name)?.size ?? 0 }
            for copy in 0..<copies {
                let folder = path + String(format: "/%04d", copy)
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                for name in names { guard link(original + "/" + name, folder + "/" + name) == 0 else { throw POSIXError(.EIO) } }
            }
            return (names.count * copies, bytes * Int64(copies))
        }

        /// The WATCHDOG=1 pings `notify` received up to `ended`, and the largest gap between two.
        static func watchdogPings(_ notify: NotifyListener, until ended: Double) -> (count: Int, largestGap: Double) {
            let pings = notify.arrivals.filter { $0.text.split(separator: "\n").contains("WATCHDOG=1") }.map(\.at).filter { $0 <= ended }
            return (pings.count, zip(pings.dropFirst(), pings).map { $0 - $1 }.max() ?? .infinity)
        }

        @Test func watchdogStaysOnTimeAndANiftiIsTakenWhileAStudyOf120000FilesIsWalked() throws {
            guard DicomSamples.available else { return }
            let layout = try DropLayout("loop-walk")
            // the study is walked again 0.2 s after each walk (0.7-1.9 s each for 121,000 files
            // here) and taken after 2 s without change: at least two walks; the NIfTI file settles
            // in 0.3 s and parses in less
            try layout.writeConfig(maxJobs: 2, settle: 0.3, global: "dicom_settle_seconds = 2")
            let staged = layout.root + "/staging/BIG_STUDY"
            let study = try Self.bigStudy(at: staged, copies: 500, layout: layout)
            #expect(study.files >= 120_000)
            let notify = try NotifyListener(path: layout.root + "/notify.sock")
            defer { notify.close() }
            let watchdogSec = 2.0
            let daemon = try DaemonProcess(config: layout.configPath,
                                           environment: ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "\(Int(watchdogSec * 1e6))"])
            defer { daemon.kill9() }
            #expect(waitUntil(timeout: 30) { notify.assignments.contains("READY=1") })
            Thread.sleep(forTimeInterval: 2.5)  // pings before the drop, for the baseline
            let dropped = ProcessInfo.processInfo.systemUptime
            #expect(rename(staged, layout.inbox + "/BIG_STUDY") == 0)
            try layout.drop(Samples.colin27, as: "head.nii.gz")
            #expect(waitUntil(timeout: 300) { daemon.events("job-started").count == 2 }, "\(daemon.stderr)")
            let studyTaken = ProcessInfo.processInfo.systemUptime - dropped
            Thread.sleep(forTimeInterval: 2.5)  // pings after the walk
            let ended = ProcessInfo.processInfo.systemUptime

            // the NIfTI scan was taken first, while the study was still being looked through
            let started = daemon.events("job-started")
            #expect(started.count == 2)
            #expect(started.first?["NAME_HASH"] == (try layout.nameHash("head.nii.gz")), "\(daemon.stderr)")
            #expect(started.last?["NAME_HASH"] == (try layout.nameHash("BIG_STUDY")))
            // the study's worker was sized from the settled snapshot's bytes
            var record: JobRecord?
            waitUntil(timeout: 20) {
                record = layout.workEntries().compactMap { JobRecord.read(folder: layout.work + "/" + $0) }.first { $0.source == .dicom }
                return record != nil
            }
            #expect(record?.folderBytes == study.bytes)

            // every ping came on time: the service pings every WatchdogSec/2
            let (pings, largest) = Self.watchdogPings(notify, until: ended)
            print("LoopOnTime: \(study.files) files; study taken after \(String(format: "%.2f", studyTaken)) s; \(pings) pings, largest gap \(String(format: "%.3f", largest)) s (interval \(watchdogSec / 2) s)")
            #expect(pings >= Int((ended - dropped) / (watchdogSec / 2)) - 1)
            // no ping more than WatchdogSec/8 late (the walk on the loop made them 0.59 s late here)
            #expect(largest < watchdogSec / 2 + watchdogSec / 8, "a ping came \(largest - watchdogSec / 2) s late: the loop was blocked")
        }

        /// A reload that adds an inbox on a slow file system (every fsync under it 0.5 s late,
        /// through the fault shim): its moves are tried and its work folder read off the loop,
        /// so the watchdog pings stay on time, and the moves are still logged.
        @Test func watchdogStaysOnTimeWhileAReloadTriesTheMovesOfASlowNewInbox() throws {
            try #require(FaultShim.library != nil, "the fault shim could not be built (clang)")
            let layout = try DropLayout("loop-reload")
            try layout.writeConfig(settle: 1)
            let (second, table) = try layout.makeSecondInbox()
            let notify = try NotifyListener(path: layout.root + "/notify.sock")
            defer { notify.close() }
            let watchdogSec = 2.0
            var environment = FaultShim.environment(prefix: second, slowSyncMS: 500)
            environment["NOTIFY_SOCKET"] = notify.path
            environment["WATCHDOG_USEC"] = "\(Int(watchdogSec * 1e6))"
            let daemon = try DaemonProcess(config: layout.configPath, environment: environment)
            defer { daemon.kill9() }
            #expect(waitUntil(timeout: 30) { notify.assignments.contains("READY=1") })
            Thread.sleep(forTimeInterval: 2.5)  // pings before the reload, for the baseline
            try layout.writeConfig(settle: 1, extra: table)
            let reloaded = ProcessInfo.processInfo.systemUptime
            daemon.signal(SIGHUP)
            #expect(waitUntil(timeout: 60) { !daemon.events("reloaded").isEmpty }, "\(daemon.stderr)")
            let took = ProcessInfo.processInfo.systemUptime - reloaded
            Thread.sleep(forTimeInterval: 2.5)  // pings after it
            let ended = ProcessInfo.processInfo.systemUptime
            let moves = daemon.events("watching").first { $0["INBOX"] == "second" && $0["MOVES"] != nil }
            #expect(moves?["MOVES"] == "inbox=rename,outbox=rename,failed=rename", "\(moves?.line ?? daemon.stderr)")
            // the moves were slow (several fsyncs each): on the loop they would have held it this long
            #expect(took > watchdogSec, "the reload took \(took) s: the shim did not slow the moves down")
            let (pings, largest) = Self.watchdogPings(notify, until: ended)
            print("LoopOnTime: reload with a slow new inbox took \(String(format: "%.2f", took)) s; \(pings) pings, largest gap \(String(format: "%.3f", largest)) s")
            #expect(largest < watchdogSec / 2 + watchdogSec / 8, "a ping came \(largest - watchdogSec / 2) s late: the loop was blocked")
        }
    }
}
