import Engine
import Foundation
import Glibc

/// What a dropped folder holds: its DICOM images grouped into series (by SeriesInstanceUID),
/// the files that are not complete DICOM files, the companions that are skipped (DICOMDIR,
/// reports, text files), and the identifying values of every header. Walks the folder without
/// following links; paths are relative to the folder and never logged.
package struct DicomInventory: Sendable {
    /// The images of one series.
    package struct Series: Sendable {
        package var uid: String
        package var number: Int?
        package var description: String
        /// Relative paths, sorted.
        package var files: [String]
        /// Why the slices do not make one evenly spaced volume (a missing slice), or nil.
        package var geometryProblem: String?
    }

    /// A file that is not a complete DICOM file.
    package struct BrokenFile: Sendable {
        package var path: String
        package var reason: String
        package var code: DicomReadError.Code
    }

    package var series: [Series] = []
    package var broken: [BrokenFile] = []
    /// Files that are not images: DICOMDIR, structured reports, text files, hidden files.
    package var skipped: [String] = []
    package var fileCount = 0
    package var identifiers = DicomIdentifiers()
    /// A problem with the folder itself (a link, a pipe, too many files); nil when fine.
    package var folderProblem: String?

    package static let maxFiles = 100_000
    package static let maxDepth = 16
    /// Extensions of files that travel with DICOM exports but are not DICOM.
    package static let companionExtensions: Set<String> = [
        "txt", "xml", "html", "htm", "pdf", "json", "inf", "ini", "exe", "dll", "jpg", "jpeg", "png", "gif",
        "bmp", "log", "csv", "md5", "sha1", "sha256", "css", "js", "db", "url", "lnk", "zip", "cfg", "bat", "sh",
    ]

    /// Lists and reads every file under `root`.
    package static func scan(_ root: String) -> DicomInventory {
        var inventory = DicomInventory()
        var headers: [(path: String, header: DicomHeader)] = []
        inventory.walk(root, relative: "", depth: 0, headers: &headers)
        var groups: [String: Series] = [:]
        var geometry: [String: [DicomHeader]] = [:]
        for (path, header) in headers {
            var s = groups[header.seriesUID] ?? Series(uid: header.seriesUID, number: header.seriesNumber,
                                                        description: header.seriesDescription, files: [])
            s.files.append(path)
            groups[header.seriesUID] = s
            geometry[header.seriesUID, default: []].append(header)
        }
        inventory.series = groups.values.map { s in
            var s = s
            s.files.sort()
            s.geometryProblem = Self.geometryProblem(geometry[s.uid] ?? [])
            return s
        }.sorted { ($0.number ?? Int.max, $0.uid) < ($1.number ?? Int.max, $1.uid) }
        inventory.broken.sort { $0.path < $1.path }
        inventory.skipped.sort()
        return inventory
    }

    private mutating func walk(_ folder: String, relative: String, depth: Int, headers: inout [(path: String, header: DicomHeader)]) {
        guard folderProblem == nil else { return }
        guard depth <= Self.maxDepth else {
            folderProblem = "the folder is nested more than \(Self.maxDepth) levels deep"
            return
        }
        guard let names = DurableFile.list(folder) else {
            folderProblem = "a subfolder cannot be listed: \(String(cString: strerror(errno)))"
            return
        }
        for name in names.sorted() {
            let path = folder + "/" + name
            let rel = relative.isEmpty ? name : relative + "/" + name
            guard let entry = DropEntry(path: path) else { continue }
            switch entry.kind {
            case .directory:
                walk(path, relative: rel, depth: depth + 1, headers: &headers)
                continue
            case .symlink:
                folderProblem = "the folder holds a symbolic link; defacer takes only regular files, so that a drop folder can never be used to read files elsewhere"
                return
            case .fifo, .other:
                folderProblem = "the folder holds a named pipe, device or socket, not only files"
                return
            case .regular:
                break
            }
            fileCount += 1
            guard fileCount <= Self.maxFiles else {
                folderProblem = "the folder holds more than \(Self.maxFiles) files"
                return
            }
            let ext = name.split(separator: ".").count > 1 ? String(name.split(separator: ".").last!).lowercased() : ""
            if name.hasPrefix(".") || Self.companionExtensions.contains(ext) {
                skipped.append(rel)
                continue
            }
            do {
                let header = try DicomParser.read(path)
                identifiers.merge(header.identifiers)
                if header.hasPixelData { headers.append((rel, header)) } else { skipped.append(rel) }
            } catch {
                broken.append(BrokenFile(path: rel, reason: error.reason, code: error.code))
            }
        }
    }

    /// Why the slices of a series do not make one evenly spaced stack, or nil. Series whose
    /// slices lie in several orientations (three-plane localisers), or that are multi-frame
    /// files, are left to the converter.
    package static func geometryProblem(_ headers: [DicomHeader]) -> String? {
        guard headers.count >= 3, headers.allSatisfy({ $0.frames == 1 }),
              let first = headers.first?.orientation,
              headers.allSatisfy({ h in h.orientation.map { o in zip(o, first).allSatisfy { abs($0 - $1) < 1e-3 } } ?? false }),
              headers.allSatisfy({ $0.position != nil }) else { return nil }
        let normal = [first[1] * first[5] - first[2] * first[4],
                      first[2] * first[3] - first[0] * first[5],
                      first[0] * first[4] - first[1] * first[3]]
        var counts: [Int: Int] = [:]   // position along the normal (0.01 mm steps) -> images there
        for h in headers {
            guard let p = h.position else { return nil }
            // the parser bounds positions (1e5 mm) and cosines (1.01): |d| < 1e6, so this fits an Int
            let d = p[0] * normal[0] + p[1] * normal[1] + p[2] * normal[2]
            guard d.isFinite, abs(d) < 1e12 else { return "the slice positions are not numbers in range" }
            counts[Int((d * 100).rounded()), default: 0] += 1
        }
        let levels = counts.keys.sorted()
        guard levels.count >= 3 else { return nil }
        if Set(counts.values).count > 1 {
            return "the series has \(counts.values.min()!) image\(counts.values.min()! == 1 ? "" : "s") at some slice positions and \(counts.values.max()!) at others: images are missing"
        }
        let gaps = zip(levels.dropFirst(), levels).map { Double($0 - $1) / 100 }
        let typical = gaps.sorted()[gaps.count / 2]
        if let odd = gaps.first(where: { abs($0 - typical) > max(0.02, 0.1 * typical) }) {
            return String(format: "the slices are not evenly spaced (a gap of %.2f mm where the others are %.2f mm): a slice is missing or the series is incomplete", odd, typical)
        }
        return nil
    }
}
