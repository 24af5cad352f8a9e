import DICOM
import DropFolders
import Engine
import Foundation
import Testing
import TestSupport

/// The memory limit of a DICOM folder's worker is sized from the bytes of the snapshot the
/// folder settled with (kept in its job record), not from a second walk of the folder.
@Suite(.enabled(if: DicomSamples.available, "needs data/dicom from tools/setup/setup.sh"))
struct WorkerMemorySizeTests {
    @Test func aDicomFolderIsSizedFromItsSettledSnapshot() throws {
        let layout = try DropLayout("worker-size")
        let dir = layout.root + "/work/scan1"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try DicomSamples.copy("study", to: dir + "/scan1.dicom")
        var bytes: Int64 = 0
        for name in DicomSamples.files("study") {
            let size = try FileManager.default.attributesOfItem(atPath: dir + "/scan1.dicom/" + name)[.size] as? Int64
            bytes += try #require(size)
        }
        let snapshot = try #require(FolderSnapshot(path: dir + "/scan1.dicom"))
        #expect(snapshot.bytes == bytes)

        // a job record as an earlier version wrote it (no folderBytes)
        let json = #"{"format": 1, "scanID": "scan1", "inbox": "/srv/inbox", "originalName": "STUDY", "claimedName": "scan1.dicom", "#
            + #""phase": "processing", "attempts": 1, "writeFailures": 0, "claimedAt": "2026-11-29T00:00:00Z", "moves": [], "source": "dicom"}"#
        var record = try JSONDecoder().decode(JobRecord.self, from: Data(json.utf8))
        // a record from before the bytes were kept: the claimed folder is walked once
        #expect(WorkerLaunch.voxels(of: record, in: dir, maxVoxels: 1 << 40) == bytes / 2)
        // with the settled bytes in the record (kept across a restart) the folder is not walked:
        // emptied, it would count nothing
        record.folderBytes = snapshot.bytes
        try record.write(folder: dir)
        let reread = try #require(JobRecord.read(folder: dir))
        #expect(reread.folderBytes == bytes)
        try FileManager.default.removeItem(atPath: dir + "/scan1.dicom")
        try FileManager.default.createDirectory(atPath: dir + "/scan1.dicom", withIntermediateDirectories: false)
        #expect(WorkerLaunch.voxels(of: reread, in: dir, maxVoxels: 1 << 40) == bytes / 2)
        #expect(WorkerLaunch.voxels(of: reread, in: dir, maxVoxels: 1000) == 1000, "max_voxels still caps it")
    }
}
