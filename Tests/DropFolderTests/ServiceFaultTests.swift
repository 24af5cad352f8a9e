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
    /// `defacer deface`. For every fault made the scan is never lost (at every moment it is in
    /// the inbox, the work folder, the outbox or failed), nothing partial is in the outbox, and
    /// once the fault has passed the scan ends in the outbox exactly once. N are counted in a
    /// first run; each run defaces the head once (about 50 s), so the sample is three runs of up
    /// to four faults each (`faultPlan`: 11 faults here), every N alone with
    /// DEFACER_FAULT_SAMPLES=all (104 runs, well over an hour).
    @Suite struct ServiceFaultTests {
        init() throws { try requireDaemonTestData() }

        static let stem = "sub-07_T1w"

        /// What one run under the shim showed.
        struct Run {
            var violations: [String] = []
            var fired: [String] = []
            var counts: [String: Int] = [:]
            /// With `counting`: every call counted, "function N path".
            var trace: [String] = []
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
            let countFile = layout.root + "/counts", firedFile = layout.root + "/fired", traceFile = layout.root + "/trace"
            var env = FaultShim.environment(fault: fault, prefix: layout.outbox + ":" + layout.work, countFile: counting ? countFile : nil)
            env["DEFACER_FAULT_FIRED"] = firedFile
            if counting { env["DEFACER_FAULT_TRACE"] = traceFile }
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
            result.trace = ((try? String(contentsOfFile: traceFile, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
            return result
        }

        /// The faults to try, from the calls counted (`trace`: "function N path" lines): by
        /// default three runs of up to four faults at once (the shim's limit), each made once
        /// and then cleared: the middle call of each function (ENOSPC), the last (EIO), and
        /// each function's first call in the outbox after the start-up move trial (the publishing
        /// moves; ENOSPC, EIO). With
        /// DEFACER_FAULT_SAMPLES=all: one run for every N of every function and both errnos.
        static func faultPlan(_ counts: [String: Int], trace: [String], all: Bool) -> [String] {
            let functions = ["write", "fsync", "rename", "renameat2", "close"]
            if all {
                return functions.flatMap { fn in (1...max(1, counts[fn] ?? 0)).flatMap { n in ["ENOSPC", "EIO"].map { "\(fn):\($0):\(n)" } } }
            }
            let middle = ["write", "fsync", "renameat2", "close"].map { fn in "\(fn):ENOSPC:\((counts[fn] ?? 0) / 2 + 1)" }
            let last = ["write", "fsync", "renameat2", "rename"].map { fn in "\(fn):EIO:\(max(1, counts[fn] ?? 0))" }
            var publishing: [String] = []
            for fn in functions where publishing.count < 4 {
                let first = trace.map { $0.split(separator: " ", maxSplits: 2).map(String.init) }
                    .first { $0.count == 3 && $0[0] == fn && $0[2].contains("/outbox") && !$0[2].hasSuffix("-trial") }
                if let first { publishing.append("\(fn):\(publishing.count % 2 == 0 ? "ENOSPC" : "EIO"):\(first[1])") }
            }
            return [middle, last, publishing].filter { !$0.isEmpty }.map { $0.joined(separator: ",") }
        }

        @Test func writeFaultsInTheServiceNeverLoseOrLeakAScan() throws {
            try #require(FaultShim.library != nil, "clang could not build the fault shim")
            let counted = try Self.run(fault: nil, counting: true)
            #expect(counted.violations.isEmpty, "\(counted.violations)")
            let counts = counted.counts
            print("ServiceFault: counted in the service under the outbox and work folders: \(counts.sorted { $0.key < $1.key })")
            for fn in ["write", "fsync", "rename", "renameat2", "close"] {
                #expect(counts[fn] ?? 0 > 0, "no \(fn) counted under the outbox and work folders")
            }
            let plan = Self.faultPlan(counts, trace: counted.trace, all: ProcessInfo.processInfo.environment["DEFACER_FAULT_SAMPLES"] == "all")
            print("ServiceFault: \(plan.count) runs: \(plan.joined(separator: " | "))")
            #expect(plan.count >= 3, "no call in the outbox was counted: \(counted.trace)")
            for fault in plan {
                let run = try Self.run(fault: fault)
                print("ServiceFault: \(fault): made \(run.fired.joined(separator: "; ")); retries or problems logged \(run.retries); \(Int(run.seconds)) s")
                let wanted = fault.split(separator: ",").count
                #expect(run.fired.count == wanted, "\(fault): \(run.fired.count) of \(wanted) faults were made")
                #expect(run.violations.isEmpty, "\(fault): \(run.violations)")
            }
        }
    }
}
