import TestSupport
import Engine
import Foundation
import Glibc
import Testing

/// `defacer batch` with the real binary on real heads: a BIDS dataset and a folder defaced
/// locally (stopped with Ctrl-C and resumed), then through the real Slurm test cluster with a
/// task cancelled mid-run, with identical outputs; a rerun does nothing; a non-scan fails with
/// its reason and stays out of the output tree.
@Suite("defacer batch", .serialized)
struct BatchTests {
    /// The images and pictures that must be identical however the batch ran.
    static let compared = [
        "bids/sub-01/anat/sub-01_T1w.nii.gz",
        "bids/sub-02/ses-1/anat/sub-02_ses-1_T1w.nii.gz",
        "bids/derivatives/defacer/sub-01/anat/sub-01_mod-T1w_defacemask.nii.gz",
        "bids/derivatives/defacer/sub-02/ses-1/anat/sub-02_ses-1_mod-T1w_defacemask.nii.gz",
        "bids/derivatives/defacer/sub-01/anat/sub-01_mod-T1w_defacemask.png",
        "scans/site1/t1_defaced.nii.gz",
        "scans/site1/t1_face_mask.nii.gz",
        "scans/site1/t1_qc.png",
    ]

    @Test("locally (stopped, resumed, rerun), then on Slurm with a cancelled task: identical outputs")
    func localAndSlurm() throws {
        let fixture = try BatchFixture("both")
        let local = fixture.path("out-local")
        try runStoppedAndResumed(fixture, output: local)
        try checkOutputTree(fixture, output: local)
        try checkRerunDoesNothing(fixture, output: local)
        try checkBidsValidator(local + "/bids")

        #expect(TestCluster.ready(), "no Slurm test cluster: start it with tools/setup/slurm.sh start")
        let slurm = fixture.path("out-slurm")
        try runOnSlurmWithCancel(fixture, output: slurm)
        try checkOutputTree(fixture, output: slurm)
        for relative in Self.compared {
            #expect(BatchFixture.sha256(local + "/" + relative) == BatchFixture.sha256(slurm + "/" + relative),
                    "\(relative) differs between the local and the Slurm run")
        }
        #expect(BatchFixture.files(under: local) == BatchFixture.files(under: slurm))
        let status = try DefacerProcess.run(["batch", "--status", slurm])
        #expect(status.status == 1)
        #expect(status.stdout.contains("4 scan(s): 3 defaced, 1 failed, 0 to do"), "\(status.stdout)")
    }

    /// Ctrl-C while the workers run: exit 130, nothing half-written in the tree; the same command
    /// then finishes the batch (exit 1: one input is not a scan) and reports scans/hour.
    func runStoppedAndResumed(_ fixture: BatchFixture, output: String) throws {
        let arguments = ["batch", fixture.bids, fixture.scans, "--output", output, "--jobs", "2"]
        let process = Process()
        process.executableURL = URL(fileURLWithPath: DefacerProcess.binary)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let logs = output + "/.defacer-batch/logs"
        for _ in 0..<600 where ((try? FileManager.default.contentsOfDirectory(atPath: logs)) ?? []).count < 2 {
            usleep(50_000)
        }
        sleep(2)
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        #expect(process.terminationStatus == 130)
        let manifest = try BatchFixture.manifest(output)
        let done = (manifest["outcomes"] as? [String: [String: Any]] ?? [:]).values.filter { $0["state"] as? String == "done" }
        let defacedNow = BatchFixture.files(under: output).filter { $0.hasSuffix("_T1w.nii.gz") || $0.hasSuffix("_defaced.nii.gz") }
        #expect(defacedNow.count == done.count, "a defaced file without a finished outcome: \(defacedNow)")
        #expect(done.count < 3, "the stop came after every scan had finished; the test did not test stopping")

        let resumed = try DefacerProcess.run(arguments)
        #expect(resumed.status == 1, "\(resumed.stdout)\(resumed.stderr)")
        #expect(resumed.stdout.contains("scans/hour"))
        #expect(resumed.stdout.contains("4 scan(s): 3 defaced, 1 failed, 0 to do"), "\(resumed.stdout)")
        #expect(resumed.stdout.contains("failed: \(fixture.scans)/site1/notes.nii.gz: "), "\(resumed.stdout)")
    }

    /// What a user checks in the output: BIDS names, copied sidecars, notes on the defacing,
    /// derivatives, the failed input nowhere, checksums in the manifest.
    func checkOutputTree(_ fixture: BatchFixture, output: String) throws {
        let files = BatchFixture.files(under: output)
        for relative in Self.compared + ["bids/derivatives/defacer/sub-01/anat/sub-01_mod-T1w_defacemask.json",
                                         "scans/site1/t1_deface.json"] {
            #expect(files.contains(relative), "\(relative) missing")
        }
        for copied in ["README", "participants.tsv", "sub-01/anat/sub-01_T1w.json",
                       "sub-02/ses-1/func/sub-02_ses-1_task-rest_bold.nii.gz", "sub-02/ses-1/func/sub-02_ses-1_task-rest_bold.json"] {
            #expect(BatchFixture.sha256(output + "/bids/" + copied) == BatchFixture.sha256(fixture.bids + "/" + copied), "\(copied)")
        }
        #expect(BatchFixture.sha256(output + "/bids/sub-01/anat/sub-01_T1w.nii.gz")
                != BatchFixture.sha256(fixture.bids + "/sub-01/anat/sub-01_T1w.nii.gz"), "the T1w was copied, not defaced")
        #expect(!files.contains { $0.contains("sourcedata") || $0.contains("notes") }, "\(files)")
        let description = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: output + "/bids/dataset_description.json"))) as? [String: Any]
        #expect((description?["GeneratedBy"] as? [[String: Any]])?.first?["Name"] as? String == "defacer")
        #expect(description?["Name"] as? String == "defacer batch test")
        let derivative = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: output + "/bids/derivatives/defacer/dataset_description.json"))) as? [String: Any]
        #expect(derivative?["DatasetType"] as? String == "derivative")

        let manifest = try BatchFixture.manifest(output)
        let items = manifest["items"] as? [[String: Any]] ?? []
        #expect(items.count == 4)
        for item in items {
            let input = item["input"] as? String ?? ""
            #expect(item["inputSHA256"] as? String == BatchFixture.sha256(input), "\(input)")
        }
        let outcomes = manifest["outcomes"] as? [String: [String: Any]] ?? [:]
        let failed = outcomes.values.filter { $0["state"] as? String == "failed" }
        #expect(failed.count == 1)
        let reason = failed.first?["reason"] as? String
        #expect(reason?.contains("not a NIfTI image") == true, "\(failed)")
    }

    /// The same command again defaces nothing and touches no finished file.
    func checkRerunDoesNothing(_ fixture: BatchFixture, output: String) throws {
        let defaced = output + "/bids/sub-01/anat/sub-01_T1w.nii.gz"
        var before = stat()
        stat(defaced, &before)
        let logs = try FileManager.default.contentsOfDirectory(atPath: output + "/.defacer-batch/logs").count
        let started = Date()
        let rerun = try DefacerProcess.run(["batch", fixture.bids, fixture.scans, "--output", output])
        #expect(rerun.status == 1, "one input is still not a scan")
        #expect(rerun.stdout.contains("nothing to do"), "\(rerun.stdout)")
        #expect(Date().timeIntervalSince(started) < 15)
        var after = stat()
        stat(defaced, &after)
        #expect(after.st_ino == before.st_ino && after.st_mtim.tv_sec == before.st_mtim.tv_sec)
        #expect(try FileManager.default.contentsOfDirectory(atPath: output + "/.defacer-batch/logs").count == logs)
    }

    /// Every file of the defaced dataset passes the BIDS validator's file-name checks (PyPI
    /// bids-validator, installed by tools/setup.sh; DEFACER_BIDS_PYTHON names another Python).
    func checkBidsValidator(_ dataset: String) throws {
        let python = ProcessInfo.processInfo.environment["DEFACER_BIDS_PYTHON"] ?? DefacerProcess.repositoryRoot + "/.venv/bin/python"
        let script = """
        import os, sys
        from bids_validator import BIDSValidator
        root = sys.argv[1]
        bad = [p for d, _, fs in os.walk(root) for f in fs
               for p in ["/" + os.path.relpath(os.path.join(d, f), root)]
               if not p.startswith("/.") and not BIDSValidator().is_bids(p)]
        print("not BIDS:", bad) if bad else print("all BIDS")
        sys.exit(1 if bad else 0)
        """
        let result = try TestCluster.shell("'\(python)' -c '\(script)' '\(dataset)'")
        #expect(result.status == 0, "\(result.stdout) (tools/setup.sh installs bids-validator)")
    }
}
