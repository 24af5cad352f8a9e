import Engine
import Foundation
import Glibc
import Testing
import TestSupport

/// `defacer deface` on a real head with the fault shim: the Nth write, fsync, rename or close
/// under the output folder fails (ENOSPC, EIO, EINVAL, EXDEV). For every fault tried, either
/// the run exits non-zero with no output in place (not even a partial or temporary one), or it
/// exits 0 with every output whole; the input is never touched; and once the fault is gone the
/// same command in the same folder succeeds. One run counts the calls first. Each run is a real
/// HD-BET inference, so a sample of N is tried: DEFACER_FAULT_SAMPLES=all tries more.
@Suite(.enabled(if: daemonTestsCanRun && FaultShim.library != nil, "needs the real head, the models and clang"))
struct FaultInjectionTests {
    static let models = DefacerProcess.repositoryRoot + "/models/hdbet"
    let root = "/tmp/defacer-fault-tests/\(UUID().uuidString.prefix(8))"

    init() throws { try requireDaemonTestData() }

    func deface(_ input: String, into out: String, fault: String?, countFile: String? = nil) throws -> DefacerProcess.Result {
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        return try DefacerProcess.run(["deface", input, "--mode", "fast", "--models", Self.models,
                                       "--output", out + "/head_defaced.nii.gz", "--mask", out + "/head_face_mask.nii.gz",
                                       "--qc", out + "/head_qc.png", "--report", out + "/head_deface.json"],
                                      environment: FaultShim.environment(fault: fault, prefix: out, countFile: countFile))
    }

    /// What a user checks after a run: on success every output is whole (its SHA-256 is the
    /// one in the report and the defaced scan reads back); on failure no output, partial or
    /// temporary, is in the folder and the message names what failed.
    func expectWholeOrNothing(_ result: DefacerProcess.Result, in out: String, fault: String) throws {
        #expect(!result.signalled, "\(fault): \(result.stderr)")
        let names = try FileManager.default.contentsOfDirectory(atPath: out).sorted()
        if result.status == 0 {
            #expect(names == ["head_deface.json", "head_defaced.nii.gz", "head_face_mask.nii.gz", "head_qc.png"], "\(fault): \(names)")
            let report = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/head_deface.json"))) as? [String: Any])
            let sums = try #require(report["outputSHA256"] as? [String: String], "\(fault)")
            for (name, sum) in sums {
                #expect(FileHash.sha256(ofRegularFile: out + "/" + DurableFile.fileName(of: name)) == sum, "\(fault): \(name)")
            }
            let info = try DefacerProcess.run(["info", out + "/head_defaced.nii.gz"])
            #expect(info.status == 0, "\(fault): \(info.stderr)")
        } else {
            // nothing at all: no defaced scan, no mask or picture of a failed run, no temporary file
            #expect(names.isEmpty, "\(fault): left after a failed run: \(names)")
            let errno = fault.split(separator: ":")[1]
            #expect(result.stderr.contains("failed: ") && result.stderr.contains("(\(errno): "),
                    "\(fault): the message names the operation and the errno: \(result.stderr)")
        }
    }

    @Test func everyInjectedFaultEndsWithWholeOutputsOrNone() throws {
        let input = root + "/in/head.nii.gz"
        try FileManager.default.createDirectory(atPath: root + "/in", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.copyItem(atPath: Samples.colin27, toPath: input)
        let original = try Samples.sha256(Samples.colin27)

        let countFile = root + "/counts"
        let clean = try deface(input, into: root + "/out-count", fault: nil, countFile: countFile)
        try #require(clean.status == 0, "\(clean.stderr)")
        let counts = FaultShim.counts(countFile)
        try #require((counts["write"] ?? 0) > 0 && (counts["renameat2"] ?? 0) > 0, "\(counts)")

        var faults: [String] = []
        let all = ProcessInfo.processInfo.environment["DEFACER_FAULT_SAMPLES"] == "all"
        for (fn, errno) in [("write", "ENOSPC"), ("fsync", "EIO"), ("close", "EIO"), ("renameat2", "EINVAL"), ("renameat2", "EXDEV")] {
            let n = counts[fn] ?? 0
            guard n > 0 else { continue }
            let picks = all ? Array(1...n) : (fn == "write" ? [n / 2 + 1] : fn == "renameat2" && errno == "EXDEV" ? [n] : [1])
            faults += Set(picks).sorted().map { "\(fn):\(errno):\($0)" }
        }
        if !all { faults = Array(faults.prefix(4)) }  // each is a full inference: write, fsync, close, a refused rename
        var rerunDone = false
        for (i, fault) in faults.enumerated() {
            let out = root + "/out-\(i)"
            let result = try deface(input, into: out, fault: fault)
            try expectWholeOrNothing(result, in: out, fault: fault)
            // a failed write, fsync or close fails the run; a refused rename has its fallback
            #expect((result.status == 0) == fault.hasPrefix("renameat2:"), "\(fault): exit \(result.status): \(result.stderr)")
            #expect(try Samples.sha256(input) == original, "\(fault): the input changed")
            if result.status != 0 && !rerunDone {
                // the fault is gone: the same command in the same folder finishes the scan
                let again = try deface(input, into: out, fault: nil)
                #expect(again.status == 0, "after \(fault): \(again.stderr)")
                try expectWholeOrNothing(again, in: out, fault: fault + " cleared")
                rerunDone = true
            }
        }
    }
}
