import Engine
import Glibc

/// What a dropped folder looks like right now, in one comparable value: every name under it
/// with its size, modification time, inode and kind (links are not followed). A folder counts
/// as complete when its snapshot has not changed for `dicom_settle_seconds`, or at once when
/// it holds the marker file `.complete`.
package struct FolderSnapshot: Sendable, Equatable {
    /// Regular files under the folder (hidden ones and the marker included).
    package var files = 0
    package var bytes: Int64 = 0
    /// FNV-1a over every entry's relative path, size, mtime, inode and kind, in name order.
    package var digest: UInt64 = 0xCBF2_9CE4_8422_2325
    /// Whether the marker file is in the folder itself.
    package var hasMarker = false
    /// More than `maxEntries` entries or `maxDepth` levels: the rest was not looked at.
    package var truncated = false

    package static let maxEntries = 200_000
    package static let maxDepth = 16

    /// The snapshot of `path`, or nil when it is not a folder (any more).
    package init?(path: String) {
        guard DropEntry(path: path)?.kind == .directory else { return nil }
        var entries = 0
        walk(path, relative: "", depth: 0, entries: &entries)
        hasMarker = DropEntry(path: path + "/" + DicomSettings.completeMarker)?.kind == .regular
    }

    private mutating func walk(_ folder: String, relative: String, depth: Int, entries: inout Int) {
        guard depth <= Self.maxDepth, let names = DurableFile.list(folder) else {
            truncated = true
            return
        }
        for name in names.sorted() {
            entries += 1
            guard entries <= Self.maxEntries else {
                truncated = true
                return
            }
            let path = folder + "/" + name
            let rel = relative.isEmpty ? name : relative + "/" + name
            guard let entry = DropEntry(path: path) else { continue }
            mix(Array(rel.utf8))
            mix(entry.size, entry.mtimeNanoseconds, Int64(bitPattern: entry.inode), Int64(entry.kind.hashCode))
            switch entry.kind {
            case .directory: walk(path, relative: rel, depth: depth + 1, entries: &entries)
            case .regular:
                files += 1
                bytes += entry.size
            default: break
            }
        }
    }

    private mutating func mix(_ bytes: [UInt8]) {
        for b in bytes + [0] {
            digest ^= UInt64(b)
            digest &*= 0x0100_0000_01B3
        }
    }

    private mutating func mix(_ values: Int64...) {
        for v in values {
            withUnsafeBytes(of: v.littleEndian) { raw in mix(Array(raw)) }
        }
    }
}

extension DropEntry.Kind {
    /// A fixed number per kind, for digests.
    package var hashCode: Int {
        switch self {
        case .regular: 1
        case .directory: 2
        case .symlink: 3
        case .fifo: 4
        case .other: 5
        }
    }
}
