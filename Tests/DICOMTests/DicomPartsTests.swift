@testable import DICOM
@testable import DropFolders
import Engine
import Foundation
import Glibc
import Testing
import TestSupport

/// The DICOM parts on their own, on the real DICOM series of data/dicom: the header reader,
/// the folder inventory (series, broken files, missing slices), the sidecar scrubber, the
/// names, the folder snapshots and the config keys. Fast: no defacing.
@Suite(.enabled(if: DicomSamples.available, "needs data/dicom and dcm2niix from tools/setup/setup.sh"))
struct DicomPartsTests {
    static func scratch(_ label: String) throws -> String {
        let path = "/tmp/defacer-daemon-tests/\(label)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func headerReaderFindsTheSeriesTheGeometryAndTheIdentifiers() throws {
        let header = try DicomParser.read(DicomSamples.root + "/single/IM-0002-0001.dcm")
        #expect(header.transferSyntax == "1.2.840.10008.1.2.1")
        #expect(header.sopClassUID == "1.2.840.10008.5.1.4.1.1.4")
        #expect(header.seriesNumber == 2)
        #expect(header.seriesDescription == "t1_mprage_tra_1.5mm")
        #expect(header.orientation == [1, 0, 0, 0, 1, 0])
        #expect(header.position?.count == 3)
        #expect(header.hasPixelData)
        let ids = header.identifiers
        for text in ["DOE^JANE", "Jane Doe", "jane", "PID84721193", "st elsewhere childrens hospital", "4512769",
                     "ACC99887766", "19750314", "Gregory House", "12 Larkspur Crescent", "MRCSTELSEW1"] {
            #expect(ids.occurs(in: text), "\(text)")
        }
        #expect(ids.occurs(in: "20240611", includingAcquisitionDates: true))
        #expect(!ids.occurs(in: "20240611", includingAcquisitionDates: false))
        for text in ["t1_mprage_tra", "HFS", "Prisma", "HeadNeck_20", "*tfl3d1_16ns"] {
            #expect(!ids.occurs(in: text), "\(text)")
        }
    }

    @Test func studyFolderGroupsIntoThreeSeriesIncludingTheImplicitVRLocaliser() {
        let inventory = DicomInventory.scan(DicomSamples.root + "/study")
        #expect(inventory.folderProblem == nil)
        #expect(inventory.broken.isEmpty)
        #expect(inventory.series.map(\.number) == [1, 2, 3])
        #expect(inventory.series.map(\.files.count) == [3, 121, 118])
        #expect(inventory.series.allSatisfy { $0.geometryProblem == nil })
        #expect(inventory.fileCount == 242)
    }

    @Test func cutOffForeignAndMissingSlicesAreTold() throws {
        let folder = try Self.scratch("inventory") + "/series"
        try DicomSamples.copy("single", to: folder)
        let slice = folder + "/IM-0002-0050.dcm"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: slice))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: slice))
        try Data(Samples.randomBytes(3000, seed: 3)).write(to: URL(fileURLWithPath: folder + "/IM-0002-9999.dcm"))
        try Data("exported by PACS\n".utf8).write(to: URL(fileURLWithPath: folder + "/README.txt"))
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: folder + "/" + DicomSettings.completeMarker))
        let inventory = DicomInventory.scan(folder)
        #expect(inventory.broken.map(\.path) == ["IM-0002-0050.dcm", "IM-0002-9999.dcm"])
        #expect(inventory.broken.first?.reason.contains("cut off") == true)
        #expect(inventory.broken.last?.reason.contains("not a DICOM file") == true)
        #expect(inventory.skipped == [DicomSettings.completeMarker, "README.txt"])

        // a slice missing from the middle: the stack has a gap
        let gap = try Self.scratch("gap") + "/series"
        try DicomSamples.copy("single", to: gap)
        try FileManager.default.removeItem(atPath: gap + "/IM-0002-0060.dcm")
        let uneven = DicomInventory.scan(gap)
        #expect(uneven.broken.isEmpty)
        #expect(uneven.series.first?.geometryProblem?.contains("not evenly spaced") == true)

        // a link inside the folder is never followed
        #expect(symlink("/etc/hostname", gap + "/link.dcm") == 0)
        #expect(DicomInventory.scan(gap).folderProblem?.contains("symbolic link") == true)
    }

    @Test func sidecarScrubberRemovesIdentifyingKeysTimesAndValues() throws {
        var ids = DicomIdentifiers()
        ids.addName("DOE^JANE")
        ids.addValue("St Elsewhere Childrens Hospital")
        ids.addAcquisitionDate("20240611")
        let sidecar: [String: Any] = [
            "EchoTime": 0.00298, "RepetitionTime": 2.3, "InversionTime": 0.9, "PatientPosition": "HFS",
            "InstitutionName": "St Elsewhere Childrens Hospital", "DeviceSerialNumber": "4512769", "StationName": "MR1",
            "AcquisitionTime": "10:16:2.000000", "AcquisitionDateTime": "2024-06-11T10:16:02", "PatientName": "x",
            "ImageComments": "fine", "ProtocolName": "t1 for jane doe", "SeriesDescription": "t1_mprage",
            "ReferringPhysicianName": "HOUSE", "SeriesInstanceUID": "1.2.3", "ImageType": ["ORIGINAL", "PRIMARY"],
            "ProcedureStepDescription": "MRI head ST ELSEWHERE CHILDRENS HOSPITAL",
        ]
        let data = try JSONSerialization.data(withJSONObject: sidecar)
        let (json, removed) = try #require(SidecarScrubber(identifiers: ids, keepAcquisitionTimes: false).scrub(data))
        let kept = try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
        #expect(kept.keys.sorted() == ["EchoTime", "ImageType", "InversionTime", "PatientPosition", "RepetitionTime", "SeriesDescription"])
        #expect(removed.contains("ProtocolName") && removed.contains("AcquisitionTime") && removed.contains("ImageComments"))
        let keeping = try #require(SidecarScrubber(identifiers: ids, keepAcquisitionTimes: true).scrub(data))
        let withTimes = try #require(try JSONSerialization.jsonObject(with: keeping.json) as? [String: Any])
        #expect(withTimes["AcquisitionTime"] as? String == "10:16:2.000000")
        #expect(withTimes["AcquisitionDateTime"] != nil)
        #expect(withTimes["InstitutionName"] == nil)
    }

    @Test func seriesAndFolderNamesCarryNoIdentifier() {
        var ids = DicomIdentifiers()
        ids.addName("DOE^JANE")
        ids.addValue("PID84721193")
        #expect(SeriesNaming.name(number: 3, description: "t2_space_sag DOE JANE PID84721193", identifiers: ids, fallback: "s") == "3_t2_space_sag")
        #expect(SeriesNaming.name(number: 2, description: "t1_mprage_tra_1.5mm", identifiers: ids, fallback: "s") == "2_t1_mprage_tra_1_5mm")
        #expect(SeriesNaming.name(number: nil, description: "Jane/Doe", identifiers: ids, fallback: "series4") == "series4")
        #expect(SeriesNaming.name(number: 7, description: "../../etc", identifiers: ids, fallback: "s") == "7_etc")
        #expect(SeriesNaming.converterSuffix(of: "/w/seriesa.nii.gz") == "_a")
        #expect(SeriesNaming.converterSuffix(of: "/w/series_e2.nii.gz") == "_e2")
        #expect(SeriesNaming.converterSuffix(of: "/w/series.nii.gz") == "")
        #expect(SeriesNaming.folderName("DOE_JANE_MR", identifiers: ids, scanID: "ID") == "ID")
        #expect(SeriesNaming.folderName("study-0042", identifiers: ids, scanID: "ID") == "study-0042")
    }

    @Test func folderSnapshotSeesEveryChangeAndTheMarker() throws {
        let folder = try Self.scratch("snapshot")
        try FileManager.default.createDirectory(atPath: folder + "/sub", withIntermediateDirectories: true)
        try Data([1]).write(to: URL(fileURLWithPath: folder + "/sub/a.dcm"))
        let first = try #require(FolderSnapshot(path: folder))
        #expect(first.files == 1 && !first.hasMarker)
        #expect(FolderSnapshot(path: folder) == first)
        try Data([1, 2]).write(to: URL(fileURLWithPath: folder + "/sub/a.dcm"))
        let grown = try #require(FolderSnapshot(path: folder))
        #expect(grown != first)
        try Data().write(to: URL(fileURLWithPath: folder + "/" + DicomSettings.completeMarker))
        #expect(FolderSnapshot(path: folder)?.hasMarker == true)
        #expect(FolderSnapshot(path: folder + "/sub/a.dcm") == nil)
    }

    @Test(.enabled(if: daemonTestsCanRun, "needs models/ from tools/setup/setup.sh"))
    func checkConfigSaysClearlyWhenDcm2niixIsMissing() throws {
        let layout = try DropLayout("dcm2niix")
        try layout.writeConfig(global: "dcm2niix = \"dcm2niix-not-installed\"\ndicom_settle_seconds = 30")
        let missing = try DefacerProcess.run(["check-config", "--config", layout.configPath])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("dcm2niix: dcm2niix-not-installed is not installed"), "\(missing.stderr)")
        #expect(missing.stderr.contains("apt-get install dcm2niix"))
        // the service refuses to start for the same reason
        let run = try DaemonProcess(config: layout.configPath)
        defer { run.kill9() }
        let status = run.waitForExit(timeout: 30)
        #expect(status != nil && status != 0)
        #expect(run.stderr.contains("not starting") && run.stderr.contains("dcm2niix-not-installed is not installed"), "\(run.stderr)")
        // an inbox that takes only NIfTI does not need it
        try layout.writeConfig(global: "dcm2niix = \"dcm2niix-not-installed\"", extra: "dicom = false")
        let nifti = try DefacerProcess.run(["check-config", "--config", layout.configPath])
        #expect(nifti.status == 0, "\(nifti.stderr)")
        #expect(nifti.stdout.contains("(NIfTI files only)"))
        // and with dcm2niix installed, its version and the settings are shown
        try layout.writeConfig(global: "dicom_settle_seconds = 30\ndicom_timeout_seconds = 120")
        let ok = try DefacerProcess.run(["check-config", "--config", layout.configPath])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout.contains("DICOM folders: dcm2niix v1."), "\(ok.stdout)")
        #expect(ok.stdout.contains("complete after 30.0 s"))
    }
}
