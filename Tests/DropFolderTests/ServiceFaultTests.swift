import DropFolders
import Engine
import Foundation
import Glibc
import Testing
import TestSupport

extension ServiceTests {
    /// The service under the fault shim (`Tests/FaultShim`): the Nth write, fsync, rename,
    /// renameat2 or close under the outbox or the work folder fails once with ENOSPC or EIO.
    /// The shim is in the service only: the worker process starts with an environment of its
    /// own (no LD_PRELOAD), and its writes are tried by `FaultInjectionTests` on
    /// `defacer deface`. For every N tried the scan is never lost (at every moment it is in the
    /// inbox, the work folder, the outbox or failed), nothing partial is in the outbox, and
    /// once the fault has passed the scan ends in the outbox exactly once. N are counted in a
    /// first run; a sample is tried (about 3-4 minutes), every N with DEFACER_FAULT_SAMPLES=all.
    @Suite struct ServiceFaultTests {
        init() throws { try requireDaemonTestData() }

        static let stem = "sub-07_T1w"

        /// What one run under the shim showed.
        struct Run {
            var violations: [String] = []
            var fired: [String] = []
            var counts: [String: Int] = [:]
            var retries = 0
            var seconds = 0.0
        }

        /// Where the scan is now: one entry per place that holds it (inbox, work, outbox,
        /// failed), listed in the order it passes them so that a move between two listings is
        /// seen in one of the two.
        static func places(_ layout: DropLayout) -> [String] {
            var found: [String] = []
            if layout.names(layout.inbox).contains(stem + ".nii.gz") { found.append("inbox") }
            for job in layout.workEntries() where !ScanJob.claimedEntries(layout.work + "/" + job).isEmpty { found.append("work/" + job) }
            if layout.names(layout.outbox).contains(stem + "_defaced.nii.gz") { found.append("outbox") }
            if layout.names(layout.failed).contains(stem + ".nii.gz") { found.append("failed") }
            return found
        }

        /// Drops the head into a service run under the shim with `fault` and follows it until
        /// it is in the outbox (or `timeout` passes), checking the folders every 0.1 s.
        static func run(fault: String?, counting: Bool = false, timeout: Double = 240) throws -> Run {
            let layout = try DropLayout("service-fault")
            try layout.writeConfig(settle: 1, global: "retry_seconds = 1")
            try FileManager.default.createDirectory(atPath: layout.work, withIntermediateDirectories: true)
            let countFile = layout.root + "/counts", firedFile = layout.root + "/fired"
            var env = FaultShim.environment(fault: fault, prefix: layout.outbox + ":" + layout.work, countFile: counting ? countFile : nil)
            env["DEFACER_FAULT_FIRED"] = firedFile
            let shim = env.filter { $0.key.hasPrefix("DEFACER_FAULT") || $0.key == "LD_PRELOAD" }
            var result = Run()
            let started = Date()
            let daemon = try DaemonProcess(config: layout.configPath, environment: shim)
            defer { daemon.kill9() }
            guard waitUntil(timeout: 60, { !daemon.events("ready").isEmpty }) else {
                result.violations.append("the service did not start: \(daemon.stderr)")
                return result
            }
            try layout.drop(Samples.colin27, as: stem + ".nii.gz")
            let all = DropLayout.outputSet(stem)
            let finished = waitUntil(timeout: timeout) {
                let places = places(layout)
                if places.isEmpty { result.violations.append("the scan is nowhere") }
                if places.count > 1 && !(places.count == 2 && places[0].hasPrefix("work/") && places[1] == "outbox") {
                    result.violations.append("the scan is in two places: \(places)")
                }
                let out = layout.names(layout.outbox)
                if !Set(out).isSubset(of: all) { result.violations.append("the outbox holds \(out)") }
                // the defaced scan is published last: when it is there, everything is
                if out.contains(stem + "_defaced.nii.gz") && out != all { result.violations.append("partial outputs in the outbox: \(out)") }
                return out == all && layout.workEntries().isEmpty && layout.names(layout.inbox).isEmpty
            }
            result.seconds = Date().timeIntervalSince(started)
            if !finished { result.violations.append("not in the outbox after \(Int(timeout)) s: \(places(layout)); \(daemon.stderr.suffix(3000))") }
            Thread.sleep(forTimeInterval: 0.5)
            if layout.names(layout.outbox) != all || !layout.names(layout.failed).isEmpty || !layout.names(layout.inbox).isEmpty {
                result.violations.append("at the end: outbox \(layout.names(layout.outbox)), failed \(layout.names(layout.failed)), inbox \(layout.names(layout.inbox))")
            }
            if let data = FileManager.default.contents(atPath: layout.outbox + "/" + stem + "_deface.json"),
               let report = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
               let sums = report["outputSHA256"] as? [String: String], !sums.isEmpty {
                for (name, sum) in sums where FileHash.sha256(ofRegularFile: layout.outbox + "/" + name) != sum {
                    result.violations.append("\(name) in the outbox is not what was written")
                }
            } else if finished {
                result.violations.append("the report in the outbox cannot be read")
            }
            if let hidden = try? FileManager.default.contentsOfDirectory(atPath: layout.outbox).filter({ $0.hasPrefix(".") }), !hidden.isEmpty {
                result.violations.append("temporaries left in the outbox: \(hidden.count)")
            }
            result.retries = daemon.events("retry").count + daemon.events("folder-problem").count
            daemon.signal(SIGTERM)  // the shim writes its counts at a normal exit
            if daemon.waitForExit(timeout: 60) != 0 { result.violations.append("the service did not stop cleanly") }
            result.counts = FaultShim.counts(countFile)
            result.fired = ((try? String(contentsOfFile: firedFile, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
            return result
        }

        @Test func aWriteFaultInTheServiceNeverLosesOrLeaksAScan() throws {
            try #require(FaultShim.library != nil, "clang could not build the fault shim")
            let counted = try Self.run(fault: nil, counting: true)
            #expect(counted.violations.isEmpty, "\(counted.violations)")
            let counts = counted.counts
            print("ServiceFault: counted in the service under the outbox and work folders: \(counts.sorted { $0.key < $1.key })")
            let all = ProcessInfo.processInfo.environment["DEFACER_FAULT_SAMPLES"] == "all"
            var faults: [String] = []
            for fn in ["write", "fsync", "rename", "renameat2", "close"] {
                let n = counts[fn] ?? 0
                #expect(n > 0, "no \(fn) counted under the outbox and work folders")
                guard n > 0 else { continue }
                // the sample: the middle write and the last one (the outputs' moves come last),
                // the last fsync, rename (a job record) and renameat2 (a move), the middle close
                let picks = all ? Array(1...n) : fn == "write" ? [n / 2 + 1, n] : fn == "close" ? [n / 2 + 1] : [n]
                for (i, pick) in Set(picks).sorted().enumerated() {
                    let errno = all ? ["ENOSPC", "EIO"] : [(faults.count + i) % 2 == 0 ? "ENOSPC" : "EIO"]
                    faults += errno.map { "\(fn):\($0):\(pick)" }
                }
            }
            print("ServiceFault: trying \(faults.count) faults: \(faults.joined(separator: " "))")
            for fault in faults {
                let run = try Self.run(fault: fault)
                print("ServiceFault: \(fault): \(run.fired.joined(separator: "; ")); retries or problems logged \(run.retries); \(Int(run.seconds)) s")
                #expect(run.fired.count == 1, "\(fault): the fault was made \(run.fired.count) times")
                #expect(run.violations.isEmpty, "\(fault): \(run.violations)")
            }
        }
    }
}
