import Foundation

/// The defaced and failed scans of some outboxes, with the unusual ones picked out: a reviewer
/// looks at those first.
public struct ReviewBatch: Sendable {
    /// A defaced scan and why it needs a look (empty: nothing unusual).
    public struct Entry: Sendable {
        public var scan: ReviewScan
        public var concerns: [String]
    }

    /// Unusual scans first (most concerns first), then by date, newest first.
    public var entries: [Entry]
    /// Failed scans, newest first.
    public var failures: [ReviewFailure]
    /// The median removed volume and the spread used to call a volume unusual (nil: too few scans).
    public var typicalRemovedML: (median: Double, limit: Double)?

    /// Reads every `*_deface.json` in the outboxes (and one level of subfolders, where DICOM
    /// drops put their series) and every `*.reason.json` in the failed folders.
    public init(outboxes: [String], failedFolders: [String], since: Date? = nil) {
        var scans = outboxes.flatMap { Self.files(in: $0, ending: "_deface.json", depth: 1) }.compactMap(ReviewScan.init(reportPath:))
        var failed = failedFolders.flatMap { Self.files(in: $0, ending: ".reason.json", depth: 1) }.compactMap(ReviewFailure.init(reasonPath:))
        if let since {
            scans = scans.filter { ($0.date ?? .distantPast) >= since }
            failed = failed.filter { ($0.date ?? .distantPast) >= since }
        }
        self.init(scans: scans, failures: failed)
    }

    /// Ranks scans already read.
    public init(scans: [ReviewScan], failures: [ReviewFailure]) {
        let volumes = scans.compactMap(\.removedML)
        typicalRemovedML = Self.typical(volumes)
        let typical = typicalRemovedML
        entries = scans.map { Entry(scan: $0, concerns: Self.concerns($0, typical: typical)) }
            .sorted { a, b in
                if a.concerns.count != b.concerns.count { return a.concerns.count > b.concerns.count }
                return (a.scan.date ?? .distantPast, a.scan.name) > (b.scan.date ?? .distantPast, b.scan.name)
            }
        self.failures = failures.sorted { ($0.date ?? .distantPast, $0.name) > ($1.date ?? .distantPast, $1.name) }
    }

    /// The median and the limit beyond which a removed volume is unusual: 3 median absolute
    /// deviations, at least 10% of the median (a batch of near-identical scans would otherwise
    /// call every small difference unusual). Needs 3 scans.
    static func typical(_ volumes: [Double]) -> (median: Double, limit: Double)? {
        guard volumes.count >= 3 else { return nil }
        let median = Self.median(volumes)
        let mad = Self.median(volumes.map { abs($0 - median) })
        return (median, max(3 * mad, 0.1 * median))
    }

    static func median(_ values: [Double]) -> Double {
        let s = values.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    /// Why a scan needs a look, in words.
    static func concerns(_ scan: ReviewScan, typical: (median: Double, limit: Double)?) -> [String] {
        var out: [String] = []
        if !scan.warnings.isEmpty { out.append(scan.warnings.count == 1 ? "1 warning" : "\(scan.warnings.count) warnings") }
        if let ml = scan.removedML, let typical, abs(ml - typical.median) > typical.limit {
            out.append(String(format: "removed volume %.0f ml, far from the batch's typical %.0f ml", ml, typical.median))
        }
        if scan.earsNotFound { out.append("ears not found") }
        if let touched = scan.brainVoxelsTouched, touched > 0 { out.append("\(touched) brain voxels touched") }
        if scan.features.contains(where: { $0.found == false && !$0.name.lowercased().contains("ear") }) {
            out.append("a face feature not found")
        }
        if scan.qcPNG == nil { out.append("no QC picture") }
        return out
    }

    /// Regular files under `folder` (and `depth` levels of subfolders, not hidden ones) whose
    /// names end in `suffix`, sorted; links are not followed.
    static func files(in folder: String, ending suffix: String, depth: Int) -> [String] {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: folder) else { return [] }
        var out: [String] = []
        for name in names.sorted() where !name.hasPrefix(".") {
            let path = folder + "/" + name
            guard let type = (try? fm.attributesOfItem(atPath: path))?[.type] as? FileAttributeType else { continue }
            if type == .typeRegular, name.hasSuffix(suffix) { out.append(path) }
            if type == .typeDirectory, depth > 0 { out += files(in: path, ending: suffix, depth: depth - 1) }
        }
        return out
    }
}
