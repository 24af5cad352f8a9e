import Foundation

/// The review page: one self-contained HTML file (pictures as data: URIs, no scripts, nothing
/// fetched) with a card per defaced scan, unusual ones first, and the failed scans with their
/// reasons. Every text from a report or a file name is escaped.
public enum ReviewPage {
    /// The page for `batch`; `title` names what is reviewed (e.g. the outboxes).
    public static func html(_ batch: ReviewBatch, title: String, generated: Date = Date()) -> String {
        let unusual = batch.entries.filter { !$0.concerns.isEmpty }
        let usual = batch.entries.filter { $0.concerns.isEmpty }
        var body = "<header><h1>Defacing review</h1><p class=\"what\">\(escape(title))</p>"
        body += "<p class=\"summary\">\(batch.entries.count) defaced, \(unusual.count) to look at first, \(batch.failures.count) failed"
        if let typical = batch.typicalRemovedML {
            body += String(format: "; typical removed volume %.0f ml (unusual beyond &plusmn;%.0f ml)", typical.median, typical.limit)
        }
        body += ". Page written \(escape(stamp(generated))).</p></header>\n"
        body += section("Look at these first", id: "unusual", unusual.map(card), empty: "Nothing unusual.")
        body += section("Not defaced", id: "failed", batch.failures.map(failureCard), empty: "No failed scans.")
        body += section("Defaced as expected", id: "usual", usual.map(card), empty: "None.")
        return """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
        <title>Defacing review</title>
        <style>\(style)</style></head>
        <body>
        \(body)</body></html>

        """
    }

    static let style = """
    body{font-family:system-ui,sans-serif;margin:0 auto;padding:1rem;max-width:1400px;background:#f4f4f2;color:#1c1c1c}\
    h1{margin:.2rem 0}h2{margin:1.5rem 0 .5rem;border-bottom:2px solid #bbb}.what{color:#555;word-break:break-all}\
    .cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,560px),1fr));gap:1rem}\
    .card{background:#fff;border:1px solid #ccc;border-radius:6px;padding:.8rem;overflow:hidden}\
    .card.unusual{border-left:6px solid #d08000}.card.failed{border-left:6px solid #b00020}\
    .card h3{margin:0 0 .4rem;font-size:1.05rem;word-break:break-all}\
    .card img{display:block;width:100%;height:auto;background:#181818;image-rendering:auto}\
    .concerns{margin:.3rem 0;padding:0;list-style:none}.concerns li{display:inline-block;background:#fde6b8;\
    border-radius:3px;padding:.1rem .4rem;margin:0 .3rem .3rem 0;font-size:.9rem}\
    dl{display:grid;grid-template-columns:max-content 1fr;gap:.15rem .8rem;margin:.5rem 0;font-size:.92rem}\
    dt{color:#555}dd{margin:0;word-break:break-word}.none{color:#888;font-style:italic}\
    .warnings{margin:.3rem 0 0;padding-left:1.2rem;color:#8a4b00}.nopicture{padding:2rem;text-align:center;background:#eee}
    """

    static func section(_ heading: String, id: String, _ cards: [String], empty: String) -> String {
        "<section id=\"\(id)\"><h2>\(escape(heading)) (\(cards.count))</h2>"
            + (cards.isEmpty ? "<p class=\"none\">\(escape(empty))</p>" : "<div class=\"cards\">\n" + cards.joined(separator: "\n") + "\n</div>")
            + "</section>\n"
    }

    static func card(_ entry: ReviewBatch.Entry) -> String {
        let s = entry.scan
        var html = "<article class=\"card scan\(entry.concerns.isEmpty ? "" : " unusual")\">"
        html += "<h3>\(escape(s.name))</h3>"
        if !entry.concerns.isEmpty {
            html += "<ul class=\"concerns\">" + entry.concerns.map { "<li>\(escape($0))</li>" }.joined() + "</ul>"
        }
        if let png = s.qcPNG {
            html += "<img class=\"qc\" alt=\"QC picture of \(escape(s.name))\" src=\"data:image/png;base64,\(Data(png).base64EncodedString())\">"
        } else {
            html += "<div class=\"nopicture\">no QC picture beside the report</div>"
        }
        var facts: [(String, String?)] = [
            ("Removed", s.removedML.map { String(format: "%.1f ml", $0) }),
            ("Distance to the brain", s.minDistanceMM.map { String(format: "%.1f mm at the closest", $0) }),
            ("Margin", s.marginMM.map { String(format: "%.1f mm", $0) }),
            ("Brain voxels touched", s.brainVoxelsTouched.map(String.init)),
        ]
        if s.features.isEmpty {
            facts.append(("Features", nil))
            facts.append(("Face tissue removed", s.faceVoxelsRemoved.map { "\($0) voxels" }))
            facts.append(("Ears", s.earsRequested.map { wanted in
                wanted ? (s.earVoxelsRemoved.map { "\($0) voxels of ear tissue removed" } ?? "to be removed") : "kept (not asked to remove)" }))
        } else {
            for f in s.features {
                let found = f.found.map { $0 ? "found" : "NOT found" } ?? "found: not reported"
                facts.append((f.name, found + "; removed: " + (f.removed ?? "not reported")))
            }
        }
        facts.append(("Orientation check", s.orientationCheck))
        facts.append(("Taken", s.date.map(stamp)))
        facts.append(("Mode, version", [s.mode, s.defacerVersion.map { "defacer " + $0 }].compactMap { $0 }.joined(separator: ", ")))
        html += definitionList(facts)
        if !s.warnings.isEmpty {
            html += "<ul class=\"warnings\">" + s.warnings.map { "<li>\(escape($0))</li>" }.joined() + "</ul>"
        }
        return html + "</article>"
    }

    static func failureCard(_ f: ReviewFailure) -> String {
        var html = "<article class=\"card failed\"><h3>\(escape(f.name))</h3>"
        html += "<p class=\"reason\">\(escape(f.reason))</p>"
        html += definitionList([("Code", f.code), ("Attempts", f.attempts.map(String.init)), ("Failed", f.date.map(stamp)),
                                ("Reason file", (f.reasonPath as NSString).lastPathComponent)])
        return html + "</article>"
    }

    static func definitionList(_ facts: [(String, String?)]) -> String {
        "<dl>" + facts.map { key, value in
            "<dt>\(escape(key))</dt><dd>" + (value.flatMap { $0.isEmpty ? nil : escape($0) } ?? "<span class=\"none\">not reported</span>") + "</dd>"
        }.joined() + "</dl>"
    }

    /// `2026-11-29 10:15 UTC`.
    static func stamp(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd HH:mm 'UTC'"
        return f.string(from: date)
    }

    /// Text made safe for HTML element content and quoted attribute values.
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for c in text.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default:
                // control characters other than tab and newline have no place in a page
                if c.value < 0x20 && c != "\t" && c != "\n" || c.value == 0x7f { out += "\u{FFFD}" } else { out.unicodeScalars.append(c) }
            }
        }
        return out
    }
}
