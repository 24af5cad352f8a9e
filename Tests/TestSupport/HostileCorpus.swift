import Foundation

/// The hostile corpus in Tests/HostileFiles (written by tools/fixtures/make_hostile_files.py),
/// shared by the command-line tests and the service's drop test.
package enum HostileCorpus {
    package static let folder = DefacerProcess.repositoryRoot + "/Tests/HostileFiles"

    /// manifest.json: each hostile file or DICOM folder and what it attacks.
    package static let manifest: [String: String] = {
        guard let data = FileManager.default.contents(atPath: folder + "/manifest.json"),
              let entries = try? JSONDecoder().decode([String: String].self, from: data) else { return [:] }
        return entries
    }()

    /// The NIfTI files to open (the .img halves of pairs are opened through their .hdr).
    package static let niftiFiles = manifest.keys.filter { $0.hasPrefix("nifti/") && !$0.hasSuffix(".img") }.sorted()
    package static let dicomFolders = manifest.keys.filter { $0.hasPrefix("dicom/") }.sorted()
}
