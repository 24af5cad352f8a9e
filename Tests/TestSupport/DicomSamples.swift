import Engine
import Foundation
import Glibc
import Testing

/// The DICOM series written by tools/fixtures/make_dicom_series.py into data/dicom (by tools/setup/setup.sh),
/// the identifying values planted in their headers, and checks over output folders.
package enum DicomSamples {
    package static var root: String { DefacerProcess.repositoryRoot + "/data/dicom" }

    /// Whether the series are there and dcm2niix is installed.
    package static let available: Bool = FileManager.default.fileExists(atPath: root + "/manifest.json")
        && ["/usr/bin/dcm2niix", "/usr/local/bin/dcm2niix"].contains { FileManager.default.isExecutableFile(atPath: $0) }

    /// `planted` and `plantedNames` of manifest.json, and the study's localiser files.
    package static let plantedLists: (long: [String], names: [String], localiser: [String]) = {
        guard let data = FileManager.default.contents(atPath: root + "/manifest.json"),
              let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return ([], [], []) }
        let study = ((json["cases"] as? [String: Any])?["study"] as? [String: Any])?["series"] as? [[String: Any]] ?? []
        return (json["planted"] as? [String] ?? [], json["plantedNames"] as? [String] ?? [],
                study.first?["files"] as? [String] ?? [])
    }()

    /// The file names of the study's three-plane localiser (series 1).
    package static var localiserFiles: [String] { plantedLists.localiser }

    /// Values long enough to be searched for in every output byte.
    package static var planted: [String] { plantedLists.long }
    /// Short name components, searched for case-insensitively in text, names and headers.
    package static var plantedNames: [String] { plantedLists.names }

    /// The files of a case (`single`, `study`), sorted.
    package static func files(_ name: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: root + "/" + name)) ?? []).sorted()
    }

    /// Copies a case to `destination` (which must not exist).
    package static func copy(_ name: String, to destination: String) throws {
        try FileManager.default.copyItem(atPath: root + "/" + name, toPath: destination)
    }

    /// Every regular file under `folder` (relative paths), with its bytes, gzip members
    /// decompressed.
    package static func contents(of folder: String) throws -> [(path: String, bytes: [UInt8])] {
        var result: [(String, [UInt8])] = []
        let enumerator = FileManager.default.enumerator(atPath: folder)
        while let rel = enumerator?.nextObject() as? String {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: folder + "/" + rel, isDirectory: &isDir), !isDir.boolValue else { continue }
            var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: folder + "/" + rel)))
            if rel.hasSuffix(".gz") { bytes = try gunzip(folder + "/" + rel) }
            result.append((rel, bytes))
        }
        return result.sorted { $0.0 < $1.0 }
    }

    package static func gunzip(_ path: String) throws -> [UInt8] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/gzip")
        process.arguments = ["-dc", path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return [UInt8](data)
    }

    /// Which planted values occur in `bytes`: the long ones anywhere (case-sensitive, and
    /// case-insensitively in text), the short name components in text and NIfTI headers.
    package static func plantedValues(in bytes: [UInt8], path: String) -> [String] {
        let isText = path.hasSuffix(".json") || path.hasSuffix(".bval") || path.hasSuffix(".bvec")
        let isNifti = path.hasSuffix(".nii.gz") || path.hasSuffix(".nii")
        var found: [String] = []
        let lower = isText ? bytes.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 } : []
        for value in planted {
            let v = Array(value.utf8)
            if contains(bytes, v) || (isText && contains(lower, Array(value.lowercased().utf8))) { found.append(value) }
        }
        var names = path.lowercased()
        if isText { names += String(decoding: lower, as: UTF8.self) }
        if isNifti { names += String(decoding: bytes.prefix(352), as: UTF8.self).lowercased() }
        for value in plantedNames + planted where names.contains(value.lowercased()) && !found.contains(value) {
            found.append(value)
        }
        return found
    }

    package static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, haystack.count >= needle.count else { return false }
        let first = needle[0]
        var i = 0
        while i <= haystack.count - needle.count {
            if haystack[i] == first && Array(haystack[i..<(i + needle.count)]) == needle { return true }
            i += 1
        }
        return false
    }

    /// "path: value" for every planted value found under `folder`, and whether a DICOM file is there.
    package static func leaks(in folder: String) throws -> [String] {
        var leaks: [String] = []
        for (path, bytes) in try contents(of: folder) {
            for value in plantedValues(in: bytes, path: path) { leaks.append("\(path): \(value)") }
            if path.lowercased().hasSuffix(".dcm") || (bytes.count > 132 && Array(bytes[128..<132]) == Array("DICM".utf8)) {
                leaks.append("\(path): a DICOM file")
            }
        }
        return leaks
    }

    /// Planted values in a log text (case-insensitive).
    package static func leaks(inLog text: String) -> [String] {
        let lower = text.lowercased()
        return (planted + plantedNames).filter { lower.contains($0.lowercased()) }
    }

    /// A volume's voxels in RAS+ order (first volume), with its RAS+ shape and spacing.
    package static func ras(_ path: String) throws -> (values: [Float], shape: [Int], spacing: [Double]) {
        let volume = try NiftiReader().read(path)
        let view = volume.rasReorientation
        return (view.toRAS(volume.floatValues()), view.rasShape, (0..<3).map { view.rasAffine.columnLengths[$0] })
    }
}
