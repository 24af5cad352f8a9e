import Foundation

/// One defaced scan as the review page shows it, read tolerantly from its report
/// (`<name>_deface.json`): a field the report does not carry is nil ("not reported"), so
/// reports of older and newer defacer versions can be reviewed side by side.
public struct ReviewScan: Sendable {
    /// One feature (eye, nose, mouth, ear...) with what the report says of it.
    public struct Feature: Sendable, Equatable {
        public var name: String
        /// Whether the method found it (nil: not reported).
        public var found: Bool?
        /// What was removed of it, in the report's own words and units (nil: not reported).
        public var removed: String?
    }

    /// The scan's name as dropped (the report's `input`), else the report's file name.
    public var name: String
    /// The report file.
    public var reportPath: String
    /// When the scan was taken for defacing (the report's `claimedAt`), else the report's time.
    public var date: Date?
    /// The QC picture's PNG bytes (nil: no picture next to the report).
    public var qcPNG: [UInt8]?
    public var removedML: Double?
    /// The smallest distance from a removed voxel to the brain, with the report's key.
    public var minDistanceMM: Double?
    public var marginMM: Double?
    public var brainVoxelsTouched: Int?
    public var earsRequested: Bool?
    public var faceVoxelsRemoved: Int?
    public var earVoxelsRemoved: Int?
    public var features: [Feature]
    /// The orientation check, in words (nil: not reported).
    public var orientationCheck: String?
    public var warnings: [String]
    public var mode: String?
    public var defacerVersion: String?

    /// Reads a report: nil when the file is not a JSON object (then it is no report).
    public init?(reportPath: String) {
        guard let data = FileManager.default.contents(atPath: reportPath),
              let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return nil }
        let folder = (reportPath as NSString).deletingLastPathComponent
        let fileName = (reportPath as NSString).lastPathComponent
        self.reportPath = reportPath
        name = json["input"] as? String ?? fileName
        date = ReviewDate.parse(json["claimedAt"] as? String) ?? ReviewDate.modification(of: reportPath)
        removedML = ReviewJSON.number(json["volumeRemovedML"])
        minDistanceMM = ReviewJSON.distance(in: json)
        marginMM = ReviewJSON.number(json["marginMM"])
        brainVoxelsTouched = ReviewJSON.number(json["brainVoxelsTouched"]).map { Int($0) }
        earsRequested = ReviewJSON.bool(json["earsRemoved"])
        faceVoxelsRemoved = ReviewJSON.number(json["faceVoxelsRemoved"]).map { Int($0) }
        earVoxelsRemoved = ReviewJSON.number(json["earVoxelsRemoved"]).map { Int($0) }
        features = ReviewJSON.features(json["features"])
        orientationCheck = ReviewJSON.orientationCheck(in: json)
        warnings = (json["warnings"] as? [Any])?.map { "\($0)" } ?? []
        mode = json["mode"] as? String
        defacerVersion = json["defacerVersion"] as? String
        let outputs = json["outputs"] as? [String: Any] ?? [:]
        let picture = (outputs["qcPicture"] ?? outputs["qc_picture"]) as? String
        let stem = fileName.hasSuffix("_deface.json") ? String(fileName.dropLast("_deface.json".count)) : nil
        let candidates = [picture, stem.map { $0 + "_qc.png" }].compactMap { $0 }
            .filter { !$0.contains("/") }.map { folder + "/" + $0 }
        qcPNG = candidates.lazy.compactMap { FileManager.default.contents(atPath: $0) }.first.map { [UInt8]($0) }
    }

    /// No ears were found, though the ears were to be removed.
    public var earsNotFound: Bool {
        if features.contains(where: { $0.name.lowercased().contains("ear") && $0.found == false }) { return true }
        if warnings.contains(where: { $0.lowercased().contains("no ears") }) { return true }
        return earsRequested == true && earVoxelsRemoved == 0
    }
}

/// A scan that could not be defaced, from `<name>.reason.json` in a failed folder.
public struct ReviewFailure: Sendable {
    public var name: String
    public var reason: String
    public var code: String?
    public var attempts: Int?
    public var date: Date?
    public var reasonPath: String

    /// Reads a reason file: nil when it is not a JSON object.
    public init?(reasonPath: String) {
        guard let data = FileManager.default.contents(atPath: reasonPath),
              let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return nil }
        let fileName = (reasonPath as NSString).lastPathComponent
        self.reasonPath = reasonPath
        name = json["storedAs"] as? String ?? json["file"] as? String ?? String(fileName.dropLast(".reason.json".count))
        reason = json["error"] as? String ?? "not reported"
        code = json["code"] as? String
        attempts = ReviewJSON.number(json["attempts"]).map { Int($0) }
        date = ReviewDate.parse(json["failedAt"] as? String) ?? ReviewDate.modification(of: reasonPath)
    }
}

/// Tolerant readers for report fields whose names and shapes change between versions.
enum ReviewJSON {
    static func number(_ value: Any?) -> Double? {
        guard let n = value as? NSNumber, !isBool(n) else { return nil }
        return n.doubleValue
    }

    /// JSON's true and false (NSNumber 0 and 1 also cast to Bool, so the type tells them apart).
    static func isBool(_ n: NSNumber) -> Bool { String(cString: n.objCType) == "c" }

    static func bool(_ value: Any?) -> Bool? {
        guard let n = value as? NSNumber, isBool(n) else { return nil }
        return n.boolValue
    }

    /// The minimum distance to the brain: a numeric key naming a distance (e.g.
    /// `minDistanceToBrainMM`), also inside a `distances` or `guard` object.
    static func distance(in json: [String: Any]) -> Double? {
        let nested = ["distances", "guard", "brainGuard"].compactMap { json[$0] as? [String: Any] }
        for table in [json] + nested {
            for key in table.keys.sorted() where key.lowercased().contains("distance") {
                if let v = number(table[key]) { return v }
            }
        }
        return nil
    }

    /// Features as an object (`{"nose": {"found": true, "removedFraction": 0.98}}`, or
    /// `{"nose": true}`) or as a list of objects with a `name`.
    static func features(_ value: Any?) -> [ReviewScan.Feature] {
        if let table = value as? [String: Any] {
            return table.keys.sorted().map { feature(name: $0, table[$0]) }
        }
        if let list = value as? [[String: Any]] {
            return list.enumerated().map { i, item in
                feature(name: item["name"] as? String ?? item["feature"] as? String ?? "feature \(i + 1)", item)
            }
        }
        return []
    }

    static func feature(name: String, _ value: Any?) -> ReviewScan.Feature {
        if let found = bool(value) { return ReviewScan.Feature(name: name, found: found, removed: nil) }
        guard let item = value as? [String: Any] else { return ReviewScan.Feature(name: name, found: nil, removed: nil) }
        let removedKeys = item.keys.sorted().filter { $0.lowercased().contains("removed") }
        let removed = removedKeys.compactMap { key -> String? in
            // fractions as percentages; a single removed-field needs no label
            let fraction = key.lowercased().contains("fraction") ? number(item[key]) : nil
            guard let text = fraction.map({ String(format: "%.0f%%", $0 * 100) }) ?? describe(item[key]) else { return nil }
            return removedKeys.count == 1 ? text : "\(key) \(text)"
        }
        return ReviewScan.Feature(name: name, found: bool(item["found"]), removed: removed.isEmpty ? nil : removed.joined(separator: ", "))
    }

    /// The orientation check: any key naming one besides the plain axis code `orientation`.
    static func orientationCheck(in json: [String: Any]) -> String? {
        let key = json.keys.sorted().first { $0 != "orientation" && $0.lowercased().contains("orientation") }
        return key.flatMap { describe(json[$0]) }
    }

    /// A short text for a JSON value (objects as `key value, ...`).
    static func describe(_ value: Any?) -> String? {
        switch value {
        case let n as NSNumber: return isBool(n) ? (n.boolValue ? "yes" : "no") : format(n.doubleValue)
        case let s as String: return s
        case let list as [Any]: return list.compactMap { describe($0) }.joined(separator: ", ")
        case let table as [String: Any]:
            return table.keys.sorted().compactMap { k in describe(table[k]).map { "\(k) \($0)" } }.joined(separator: ", ")
        default: return nil
        }
    }

    static func format(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e9 ? String(Int(v)) : String(format: "%.3g", v)
    }
}

/// Dates of reports and reasons: ISO 8601 times written by the service, else file times.
public enum ReviewDate {
    /// `2026-11-29T10:15:00.123Z`, `2026-11-29T10:15:00Z` or `2026-11-29` (local midnight).
    public static func parse(_ text: String?) -> Date? {
        guard let text, !text.isEmpty else { return nil }
        let full = ISO8601DateFormatter()
        full.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let d = full.date(from: text) { return d }
        full.formatOptions = [.withInternetDateTime]
        if let d = full.date(from: text) { return d }
        let day = DateFormatter()
        day.locale = Locale(identifier: "en_US_POSIX")
        day.timeZone = TimeZone.current
        day.dateFormat = "yyyy-MM-dd"
        return day.date(from: text)
    }

    static func modification(of path: String) -> Date? {
        (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
    }
}
