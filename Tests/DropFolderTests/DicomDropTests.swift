import Engine
import Foundation
import Glibc
import Testing
import TestSupport

/// DICOM folders dropped into a real `defacer run` (the real binary, real inotify, real
/// dcm2niix, the real engine) and `defacer deface FOLDER`, on DICOM series written by
/// tools/fixtures/make_dicom_series.py from real heads with fake patient fields planted in every
/// header. Serialized: each test runs a daemon that uses both cores.
@Suite(.serialized, .enabled(if: daemonTestsCanRun && DicomSamples.available, "needs models/, data/ and dcm2niix from tools/setup/setup.sh"))
struct DicomDropTests {
    init() throws { try requireDaemonTestData() }

    static let t1 = "2_t1_mprage_tra_1_5mm"
    static let t2 = "3_t2_space_sag"

    /// The outputs of one defaced image `stem` (with the default outputs).
    static func outputSet(_ stem: String) -> [String] {
        [stem + "_deface.json", stem + "_defaced.json", stem + "_defaced.nii.gz", stem + "_face_mask.nii.gz", stem + "_qc.png"]
    }

    /// Copies a case into the staging folder, then renames it into the inbox (appears whole).
    static func drop(_ sample: String, as name: String, into layout: DropLayout, marker: Bool = false) throws {
        let staged = layout.root + "/staging/" + name
        try DicomSamples.copy(sample, to: staged)
        if marker { try Data().write(to: URL(fileURLWithPath: staged + "/" + ".complete")) }
        try FileManager.default.moveItem(atPath: staged, toPath: layout.inbox + "/" + name)
    }

    static func json(_ path: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
    }

    /// Nothing planted in any header reaches the outbox or the log.
    static func expectNoLeaks(outbox: String, log: String) throws {
        let leaks = try DicomSamples.leaks(in: outbox)
        #expect(leaks.isEmpty, "\(leaks)")
        let logged = DicomSamples.leaks(inLog: log)
        #expect(logged.isEmpty, "\(logged)")
    }

    @Test func singleSeriesFolderIsDefacedLikeTheEquivalentNIfTI() throws {
        let layout = try DropLayout("dicom-single")
        try layout.writeConfig(settle: 1, global: "dicom_settle_seconds = 2")
        let daemon = try DaemonProcess(config: layout.configPath)
        defer { daemon.kill9() }
        #expect(waitUntil(timeout: 30) { !daemon.events("ready").isEmpty }, "\(daemon.stderr)")
        #expect(daemon.events("started").first?["DCM2NIIX_VERSION"]?.hasPrefix("v1.") == true)
        try Self.drop("single", as: "T1-export", into: layout)
        try layout.drop(DicomSamples.root + "/single.nii.gz", as: "reference.nii.gz")
        #expect(waitUntil(timeout: 400) { daemon.events("done").count + daemon.events("failed").count >= 2 }, "\(daemon.stderr)")

        #expect(layout.names(layout.outbox) == ["T1-export"] + DropLayout.outputSet("reference"))
        let folder = layout.outbox + "/T1-export"
        #expect(layout.names(folder) == (Self.outputSet(Self.t1) + ["conversion.json"]).sorted())
        #expect(layout.names(layout.inbox).isEmpty)
        #expect(layout.names(layout.failed).isEmpty)
        #expect(waitUntil(timeout: 5) { layout.workEntries().isEmpty })
        let done = try #require(daemon.events("done").first { $0["KIND"] == "dicom" })
        #expect(done["SERIES_DEFACED"] == "1" && done["SERIES_NOT_DEFACED"] == "0")
        #expect(done["NAME_HASH"] == (try layout.nameHash("T1-export")))

        // the same face mask and the same defaced voxels as the NIfTI with the same voxels and geometry
        let dicomMask = try DicomSamples.ras(folder + "/\(Self.t1)_face_mask.nii.gz")
        let niftiMask = try DicomSamples.ras(layout.outbox + "/reference_face_mask.nii.gz")
        #expect(dicomMask.shape == niftiMask.shape)
        #expect(zip(dicomMask.spacing, niftiMask.spacing).allSatisfy { abs($0 - $1) < 1e-4 })
        let differing = zip(dicomMask.values, niftiMask.values).filter { $0 != $1 }.count
        #expect(differing == 0, "\(differing) face mask voxels differ")
        #expect(dicomMask.values.reduce(0, +) > 10_000)
        let dicomDefaced = try DicomSamples.ras(folder + "/\(Self.t1)_defaced.nii.gz")
        let niftiDefaced = try DicomSamples.ras(layout.outbox + "/reference_defaced.nii.gz")
        #expect(dicomDefaced.values == niftiDefaced.values)

        // the report and the sidecar: what was converted and what was removed
        let report = try Self.json(folder + "/\(Self.t1)_deface.json")
        #expect(report["input"] as? String == Self.t1)
        #expect(report["dicomFiles"] as? Int == 121)
        #expect(report["scanId"] as? String == done["SCAN_ID"])
        let removed = report["sidecarKeysRemoved"] as? [String] ?? []
        for key in ["InstitutionName", "InstitutionAddress", "DeviceSerialNumber", "StationName", "AcquisitionTime"] {
            #expect(removed.contains(key), "\(key)")
        }
        let sidecar = try Self.json(folder + "/\(Self.t1)_defaced.json")
        #expect(sidecar["EchoTime"] as? Double == 0.00298)
        #expect(sidecar["SeriesNumber"] as? Int == 2)
        let summary = try Self.json(folder + "/conversion.json")
        #expect(summary["files"] as? Int == 121)
        #expect((summary["converter"] as? String)?.hasPrefix("dcm2niix v1.") == true)

        try Self.expectNoLeaks(outbox: layout.outbox, log: daemon.stderr)
        daemon.signal(SIGTERM)
        #expect(daemon.waitForExit(timeout: 60) == 0)
    }

    @Test func studyWithALocaliserDefacesTheHeadsAndSetsTheLocaliserAside() throws {
        let layout = try DropLayout("dicom-study")
        // a long settle: the marker file makes the folder complete at once
        try layout.writeConfig(settle: 1, global: "dicom_settle_seconds = 600")
        let daemon = try DaemonProcess(config: layout.configPath)
        defer { daemon.kill9() }
        #expect(waitUntil(timeout: 30) { !daemon.events("ready").isEmpty }, "\(daemon.stderr)")
        // exported under the patient's name: the outbox folder must not carry it
        try Self.drop("study", as: "DOE_JANE_MR", into: layout, marker: true)
        #expect(waitUntil(timeout: 15) { !daemon.events("job-started").isEmpty }, "the .complete marker did not make the folder complete")
        #expect(waitUntil(timeout: 400) { !daemon.events("done").isEmpty || !daemon.events("failed").isEmpty }, "\(daemon.stderr)")
        Thread.sleep(forTimeInterval: 0.5)

        let done = try #require(daemon.events("done").first)
        let scanID = try #require(done["SCAN_ID"])
        #expect(done["SERIES_DEFACED"] == "2" && done["SERIES_NOT_DEFACED"] == "1")
        #expect(layout.names(layout.outbox) == [scanID])
        let folder = layout.outbox + "/" + scanID
        #expect(layout.names(folder) == (Self.outputSet(Self.t1) + Self.outputSet(Self.t2) + ["conversion.json"]).sorted())
        let summary = try Self.json(folder + "/conversion.json")
        let series = summary["series"] as? [[String: Any]] ?? []
        #expect(series.compactMap { $0["name"] as? String } == ["1_localizer", Self.t1, Self.t2])
        #expect(series.compactMap { $0["result"] as? String } == ["not defaced", "defaced", "defaced"])

        // the localiser's three files (and only those) are in failed, with the reason
        #expect(layout.names(layout.failed) == ["DOE_JANE_MR", "DOE_JANE_MR.reason.json"])
        let localiser = layout.names(layout.failed + "/DOE_JANE_MR")
        #expect(localiser == DicomSamples.localiserFiles)
        #expect(localiser.count == 3)
        let reason = try layout.reason("DOE_JANE_MR")
        #expect((reason["error"] as? String)?.contains("1 of 3 series not defaced") == true)
        #expect((reason["error"] as? String)?.contains("2D image") == true)
        #expect(reason["outbox"] as? String == scanID)
        let failedEvent = try #require(daemon.events("failed").first)
        #expect(failedEvent["SCAN_ID"] == scanID)
        #expect(failedEvent["REASON"]?.contains("series 1:") == true)

        #expect(layout.names(layout.inbox).isEmpty)
        #expect(waitUntil(timeout: 5) { layout.workEntries().isEmpty })
        try Self.expectNoLeaks(outbox: layout.outbox, log: daemon.stderr)
        daemon.signal(SIGTERM)
        #expect(daemon.waitForExit(timeout: 60) == 0)
    }

    @Test func slicesArrivingOverTwentySecondsAreTakenOnlyOnceQuiet() throws {
        let layout = try DropLayout("dicom-arriving")
        try layout.writeConfig(settle: 1, global: "dicom_settle_seconds = 4")
        let daemon = try DaemonProcess(config: layout.configPath)
        defer { daemon.kill9() }
        #expect(waitUntil(timeout: 30) { !daemon.events("ready").isEmpty }, "\(daemon.stderr)")
        // a receiver writing one slice after another into a nested folder, with a pause of 3 s
        // (shorter than the settle time) half-way
        let target = layout.inbox + "/arriving/MR"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        let files = DicomSamples.files("single")
        let started = Date()
        for (i, file) in files.enumerated() {
            try FileManager.default.copyItem(atPath: DicomSamples.root + "/single/" + file, toPath: target + "/" + file)
            Thread.sleep(forTimeInterval: i == files.count / 2 ? 3 : 17.0 / Double(files.count))
            if i % 10 == 0 { #expect(daemon.events("job-started").isEmpty, "taken while slices were arriving (after \(i + 1))") }
        }
        let last = Date()
        #expect(last.timeIntervalSince(started) >= 19)
        #expect(daemon.events("job-started").isEmpty)
        #expect(waitUntil(timeout: 30) { !daemon.events("job-started").isEmpty })
        let quiet = Date().timeIntervalSince(last)
        #expect(quiet >= 3.5, "taken \(quiet) s after the last slice")
        #expect(waitUntil(timeout: 300) { !daemon.events("done").isEmpty || !daemon.events("failed").isEmpty }, "\(daemon.stderr)")
        #expect(layout.names(layout.outbox) == ["arriving"])
        #expect(layout.names(layout.outbox + "/arriving") == (Self.outputSet(Self.t1) + ["conversion.json"]).sorted())
        #expect(try Self.json(layout.outbox + "/arriving/conversion.json")["files"] as? Int == files.count)
        #expect(layout.names(layout.inbox).isEmpty)
        #expect(layout.names(layout.failed).isEmpty)
    }

    @Test func corruptSliceAndRepeatedDropsNeitherMergeNorStopTheService() throws {
        let layout = try DropLayout("dicom-repeat")
        try FileManager.default.createDirectory(atPath: layout.root + "/archive", withIntermediateDirectories: true)
        try layout.writeConfig(settle: 1, global: "dicom_settle_seconds = 2", extra: "archive = \"archive\"")
        let daemon = try DaemonProcess(config: layout.configPath)
        defer { daemon.kill9() }
        #expect(waitUntil(timeout: 30) { !daemon.events("ready").isEmpty }, "\(daemon.stderr)")

        // a folder with one slice cut off: nothing is converted, the whole folder goes to failed
        let corrupt = layout.root + "/staging/corrupt"
        try DicomSamples.copy("single", to: corrupt)
        let slice = corrupt + "/IM-0002-0061.dcm"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: slice))
        try bytes.prefix(bytes.count - 5000).write(to: URL(fileURLWithPath: slice))
        try FileManager.default.moveItem(atPath: corrupt, toPath: layout.inbox + "/corrupt")
        #expect(waitUntil(timeout: 60) { layout.names(layout.failed).contains("corrupt.reason.json") }, "\(daemon.stderr)")
        #expect(layout.names(layout.failed + "/corrupt") == DicomSamples.files("single"))
        let reason = try layout.reason("corrupt")
        #expect((reason["error"] as? String)?.contains("1 of 121 files is not a complete DICOM file") == true, "\(reason)")
        #expect((reason["error"] as? String)?.contains("cut off") == true)
        #expect((reason["brokenFiles"] as? [[String: String]])?.first?["path"] == "IM-0002-0061.dcm")
        #expect(layout.names(layout.outbox).isEmpty)
        #expect(daemon.process.isRunning)

        // the same series dropped, and while it is being defaced the sender writes it again
        // under the same folder name: a second job, never merged into the first
        try Self.drop("single", as: "series-a", into: layout, marker: true)
        #expect(waitUntil(timeout: 30) { daemon.events("job-started").count >= 2 })
        // "job-started" is logged when the job is taken from the queue; the folder leaves the inbox
        // a moment later, when the job claims it (a sender writing into it before that is still
        // writing the first copy)
        let again = layout.inbox + "/series-a"
        #expect(waitUntil(timeout: 30) { !FileManager.default.fileExists(atPath: again) }, "the first copy was not claimed")
        try FileManager.default.createDirectory(atPath: again, withIntermediateDirectories: false)
        for file in DicomSamples.files("single") {
            try FileManager.default.copyItem(atPath: DicomSamples.root + "/single/" + file, toPath: again + "/" + file)
        }
        #expect(waitUntil(timeout: 600) { daemon.events("done").count >= 2 }, "\(daemon.stderr)")
        Thread.sleep(forTimeInterval: 0.5)
        #expect(layout.names(layout.outbox) == ["series-a", "series-a-2"])
        for name in ["series-a", "series-a-2"] {
            #expect(layout.names(layout.outbox + "/" + name) == (Self.outputSet(Self.t1) + ["conversion.json"]).sorted())
            let series = try Self.json(layout.outbox + "/\(name)/conversion.json")["series"] as? [[String: Any]] ?? []
            #expect(series.map { $0["dicomFiles"] as? Int } == [121])
        }
        #expect(try Samples.sha256(layout.outbox + "/series-a/\(Self.t1)_face_mask.nii.gz")
                == Samples.sha256(layout.outbox + "/series-a-2/\(Self.t1)_face_mask.nii.gz"))
        // the originals are archived whole, each under its own name
        #expect(layout.names(layout.root + "/archive") == ["series-a", "series-a-2"])
        #expect(layout.names(layout.root + "/archive/series-a") == DicomSamples.files("single"))
        #expect(layout.names(layout.failed) == ["corrupt", "corrupt.reason.json"])
        #expect(layout.names(layout.inbox).isEmpty)
        #expect(daemon.events("job-started").count == 3)
        try Self.expectNoLeaks(outbox: layout.outbox, log: daemon.stderr)
        daemon.signal(SIGTERM)
        #expect(daemon.waitForExit(timeout: 60) == 0)
    }

    @Test func defaceCommandTakesADicomFolder() throws {
        let layout = try DropLayout("dicom-cli")
        let out = layout.root + "/out"
        let result = try DefacerProcess.run(["deface", DicomSamples.root + "/single/", "--output", out, "--margin", "3"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("defaced series 2 (\(Self.t1))"))
        #expect(layout.names(out) == (Self.outputSet(Self.t1) + ["conversion.json"]).sorted())
        try Self.expectNoLeaks(outbox: out, log: result.stdout + result.stderr)
        #expect(layout.names(layout.root).filter { $0.hasPrefix(".defacer-dicom") }.isEmpty)  // work folder removed
        // never overwrites; per-file options do not apply to a folder; a missing converter is named
        let again = try DefacerProcess.run(["deface", DicomSamples.root + "/single", "--output", out])
        #expect(again.status != 0 && again.stderr.contains("already exists"))
        let mask = try DefacerProcess.run(["deface", DicomSamples.root + "/single", "--mask", layout.root + "/m.nii.gz"])
        #expect(mask.status != 0 && mask.stderr.contains("is a folder (DICOM)"))
        let missing = try DefacerProcess.run(["deface", DicomSamples.root + "/single", "--output", layout.root + "/x",
                                              "--dcm2niix", "/nonexistent/dcm2niix"])
        #expect(missing.status != 0 && missing.stderr.contains("install the Debian package dcm2niix"))
    }
}
