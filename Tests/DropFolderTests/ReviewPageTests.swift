import Engine
import Foundation
import Glibc
import Testing
import TestSupport

/// `defacer review` and the service's `review_page`: the page opened in a real headless
/// Chromium (Debian's `chromium`), at a desktop and a narrow width.
@Suite(.serialized, .enabled(if: daemonTestsCanRun, "needs models/ and data/ from tools/setup/setup.sh"))
struct ReviewPageTests {
    static let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// Colin27 defaced once by the real binary: its report and QC picture.
    static let sample: (report: Data, picture: [UInt8])? = {
        let folder = "/tmp/defacer-daemon-tests/review-sample-\(getpid())"
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let run = try? DefacerProcess.run(["deface", Samples.colin27, "--output", folder + "/ch2_defaced.nii.gz",
                                           "--mask", folder + "/ch2_face_mask.nii.gz", "--qc", folder + "/ch2_qc.png",
                                           "--report", folder + "/ch2_deface.json"])
        guard run?.status == 0,
              let report = FileManager.default.contents(atPath: folder + "/ch2_deface.json"),
              let png = FileManager.default.contents(atPath: folder + "/ch2_qc.png") else { return nil }
        try? FileManager.default.removeItem(atPath: folder)
        return (report, [UInt8](png))
    }()

    static func chromiumRun(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let home = "/tmp/defacer-daemon-tests/chromium-home"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        return try ServiceFilesTests.run(chromium!, ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                                                    "--user-data-dir=" + home + "/profile-\(UUID().uuidString.prefix(8))",
                                                    "--no-first-run", "--disable-extensions"] + arguments)
    }

    static func count(_ needle: String, in text: String) -> Int { text.components(separatedBy: needle).count - 1 }

    /// The embedded pictures of a page, in page order.
    static func embeddedPictures(_ html: String) -> [[UInt8]] {
        html.components(separatedBy: "src=\"data:image/png;base64,").dropFirst().compactMap { part in
            Data(base64Encoded: String(part.prefix { $0 != "\"" })).map { [UInt8]($0) }
        }
    }

    @Test func serviceKeepsThePageCurrentInTheOutbox() throws {
        let layout = try DropLayout("review-service")
        try layout.writeConfig(global: "review_page = true")
        let daemon = try DaemonProcess(config: layout.configPath)
        defer { daemon.kill9() }
        #expect(waitUntil(timeout: 30) { !daemon.events("ready").isEmpty })
        try layout.write(Samples.nifti2D(), as: "flat.nii.gz")
        #expect(waitUntil(timeout: 60) { !daemon.events("failed").isEmpty })
        let page = layout.outbox + "/review.html"
        #expect(waitUntil(timeout: 30) { FileManager.default.fileExists(atPath: page) })
        let first = try String(contentsOfFile: page, encoding: .utf8)
        #expect(Self.count("class=\"card failed\"", in: first) == 1)
        #expect(first.contains("flat.nii.gz"))
        try layout.drop(Samples.colin27, as: "sub-01_T1w.nii.gz")
        #expect(waitUntil(timeout: 300) { !daemon.events("done").isEmpty })
        #expect(waitUntil(timeout: 30) {
            ((try? String(contentsOfFile: page, encoding: .utf8)) ?? "").contains("sub-01_T1w.nii.gz")
        })
        let html = try String(contentsOfFile: page, encoding: .utf8)
        #expect(Self.count("class=\"card scan", in: html) == 1)
        #expect(Self.count("class=\"card failed\"", in: html) == 1)
        let picture = try [UInt8](Data(contentsOf: URL(fileURLWithPath: layout.outbox + "/sub-01_T1w_qc.png")))
        #expect(Self.embeddedPictures(html) == [picture])
        // written under a temporary name and renamed: nothing else is left in the outbox
        #expect(waitUntil(timeout: 10) {
            ((try? FileManager.default.contentsOfDirectory(atPath: layout.outbox)) ?? []).sorted()
                == (DropLayout.outputSet("sub-01_T1w") + ["review.html"]).sorted()
        })
        daemon.signal(SIGTERM)
        #expect(daemon.waitForExit(timeout: 30) == 0)
    }

    /// An outbox of reports made from the real one (volumes, warnings, names and fields changed
    /// to make some scans unusual), one report of an older format, and two failed scans.
    static func makeBatch(in root: String, sample: (report: Data, picture: [UInt8])) throws -> (outbox: String, failed: String) {
        var real = try #require(try JSONSerialization.jsonObject(with: sample.report) as? [String: Any])
        // the usual scan: the real report without what makes Colin27 itself worth a look (its
        // field of view ends below the nose, so its mouth is not found and it has warnings)
        real["warnings"] = [String]()
        if let features = real["features"] as? [String: [String: Any]] {
            real["features"] = features.mapValues { feature -> [String: Any] in
                var feature = feature
                feature["found"] = true
                return feature
            }
        }
        let outbox = root + "/outbox", failed = root + "/failed"
        for f in [outbox, failed] { try FileManager.default.createDirectory(atPath: f, withIntermediateDirectories: true) }
        let ml = real["volumeRemovedML"] as? Double ?? 100
        let variants: [(String, [String: Any])] = [
            ("sub-01_T1w", [:]),
            ("sub-02_T1w", ["volumeRemovedML": ml * 1.02]),
            ("sub-03_T1w", ["volumeRemovedML": ml * 0.98]),
            ("sub-04_T1w", ["volumeRemovedML": ml * 3]),
            ("sub-05", ["warnings": ["no ears found in the field of view"],
                        "input": "sub-05 <script>alert(1)</script> & \"Jo's\".nii.gz"]),
            ("sub-06_T1w", ["minDistanceToBrainMM": 4.26, "orientationCheck": "qform and sform agree",
                            "features": ["leftEye": ["found": true, "removedFraction": 1.0],
                                         "nose": ["found": true, "removedFraction": 0.97],
                                         "leftEar": ["found": false, "removedFraction": 0.0]]]),
        ]
        for (stem, changes) in variants {
            var report = real
            report["input"] = stem + ".nii.gz"
            for (k, v) in changes { report[k] = v }
            report["outputs"] = ["qcPicture": stem + "_qc.png", "defaced": stem + "_defaced.nii.gz"]
            try Data(sample.picture).write(to: URL(fileURLWithPath: outbox + "/" + stem + "_qc.png"))
            try JSONSerialization.data(withJSONObject: report).write(to: URL(fileURLWithPath: outbox + "/" + stem + "_deface.json"))
        }
        try #"{"input": "sub-07_old.nii.gz", "defacerVersion": "0.0.9"}"#.write(toFile: outbox + "/sub-07_old_deface.json", atomically: true, encoding: .utf8)
        try "not json".write(toFile: outbox + "/broken_deface.json", atomically: true, encoding: .utf8)
        let reasons: [(String, String)] = [
            ("sub-08_flat.nii.gz", "the image is 2D (64 x 64): defacing needs a 3D head scan"),
            ("sub-09.nii.gz", "no brain found <img src=x onerror=alert(1)>"),
        ]
        for (name, error) in reasons {
            let json: [String: Any] = ["file": name, "error": error, "code": "implausibleBrain", "attempts": 1,
                                       "failedAt": "2026-11-29T10:00:00.000Z", "defacerVersion": DefacerVersion.string]
            try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: failed + "/" + name + ".reason.json"))
        }
        return (outbox, failed)
    }

    @Test(.enabled(if: chromium != nil, "chromium is not installed (apt-get install chromium)"))
    func pageShowsEveryCardAndPictureInChromium() throws {
        let sample = try #require(Self.sample, "defacing Colin27 failed")
        let root = "/tmp/defacer-daemon-tests/review-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (outbox, failed) = try Self.makeBatch(in: root, sample: sample)
        let page = root + "/review.html"
        let run = try DefacerProcess.run(["review", outbox, "--failed", failed, "--output", page])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("7 defaced (4 to look at first), 2 failed"), "\(run.stdout)")
        let html = try String(contentsOfFile: page, encoding: .utf8)
        // self-contained: nothing fetched, no scripts
        #expect(!html.contains("http://") && !html.contains("https://") && !html.lowercased().contains("<script"))

        // the DOM as Chromium built it: every card, the unusual ones first, names escaped
        let dom = try Self.chromiumRun(["--dump-dom", "file://" + page])
        #expect(dom.status == 0)
        #expect(Self.count("class=\"card scan", in: dom.output) == 7)
        #expect(Self.count("class=\"card scan unusual\"", in: dom.output) == 4)
        #expect(Self.count("class=\"card failed\"", in: dom.output) == 2)
        #expect(Self.count("<img class=\"qc\"", in: dom.output) == 6)
        #expect(!dom.output.contains("<script>alert") && !dom.output.contains("<img src=\"x\""))
        #expect(dom.output.contains("sub-05 &lt;script&gt;alert(1)&lt;/script&gt; &amp;"))
        func position(_ stem: String) -> String.Index? { dom.output.range(of: "<h3>" + stem)?.lowerBound }
        let unusual = ["sub-04_T1w", "sub-05", "sub-06_T1w", "sub-07_old"].map(position)
        let failedCards = ["sub-08_flat", "sub-09"].map(position)
        let usual = ["sub-01_T1w", "sub-02_T1w", "sub-03_T1w"].map(position)
        #expect((unusual + failedCards + usual).allSatisfy { $0 != nil })
        let u = unusual.compactMap { $0 }, f = failedCards.compactMap { $0 }, n = usual.compactMap { $0 }
        #expect(u.max()! < f.min()! && f.max()! < n.min()!, "unusual scans first, then failed, then the rest")
        #expect(html.contains("ears not found") && html.contains("far from the batch"))
        #expect(html.contains("4.3 mm at the closest") && html.contains("NOT found") && html.contains("found; removed: 97%") && html.contains("qform and sform agree"))
        #expect(html.contains("not reported"))
        #expect(Self.count("<dt>Brain voxels touched</dt><dd>0</dd>", in: html) == 6)
        #expect(Self.embeddedPictures(html).allSatisfy { $0 == sample.picture } && Self.embeddedPictures(html).count == 6)

        // screenshots: each QC picture drawn whole, found as a dark region (its background and
        // the gaps between its panels) of the picture's shape, at a desktop and a phone's width
        let dark: (UInt8, UInt8, UInt8) -> Bool = { r, g, b in max(r, g, b) <= 48 }
        let qc = try PNGPixels(bytes: sample.picture)
        let frame = try #require(qc.regions(minimumArea: 100, where: dark).max { ($0.x1 - $0.x0) < ($1.x1 - $1.x0) })
        try #require(frame.x1 - frame.x0 + 1 >= qc.width * 95 / 100 && frame.y1 - frame.y0 + 1 >= qc.height * 9 / 10,
                     "the QC picture has no dark background spanning it, which this test looks for")
        let aspect = Double(qc.width) / Double(qc.height)
        for (width, height) in [(1280, 4000), (412, 9000)] {
            let shot = root + "/review-\(width).png"
            let result = try Self.chromiumRun(["--screenshot=" + shot, "--window-size=\(width),\(height)", "file://" + page])
            #expect(result.status == 0, "\(result.output)")
            let pixels = try PNGPixels(contentsOf: shot)
            let regions = pixels.regions(minimumArea: 1500, where: dark)
            let pictures = regions.filter { box in
                let w = Double(box.x1 - box.x0 + 1), h = Double(box.y1 - box.y0 + 1)
                return w >= Double(min(300, width - 60)) && abs(w / h - aspect) / aspect < 0.15
            }
            #expect(pictures.count == 6, "\(width) px wide: \(regions)")
            let painted = pixels.rgb.enumerated().filter { $0.offset % 3 == 0 && $0.element < 200 }.count
            #expect(Double(painted) / Double(pixels.width * pixels.height) > 0.02, "the screenshot is nearly blank")
            let kept = "/tmp/defacer-daemon-tests/review-\(width).png"
            try? FileManager.default.removeItem(atPath: kept)
            try FileManager.default.copyItem(atPath: shot, toPath: kept)
            print("review page at \(width) px: \(kept)")
        }
    }

    @Test func sinceLeavesOutOlderScansAndBadDatesAreRefused() throws {
        let root = "/tmp/defacer-daemon-tests/review-since-\(UUID().uuidString.prefix(8))"
        let outbox = root + "/outbox"
        try FileManager.default.createDirectory(atPath: outbox, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        for (name, date) in [("old", "2026-01-10T08:00:00.000Z"), ("new", "2026-11-20T08:00:00.000Z")] {
            try #"{"input": "\#(name).nii.gz", "claimedAt": "\#(date)", "volumeRemovedML": 120.5}"#
                .write(toFile: outbox + "/\(name)_deface.json", atomically: true, encoding: .utf8)
        }
        let run = try DefacerProcess.run(["review", outbox, "--since", "2026-06-01", "--output", root + "/page.html"])
        #expect(run.status == 0, "\(run.stderr)")
        let html = try String(contentsOfFile: root + "/page.html", encoding: .utf8)
        #expect(html.contains("new.nii.gz") && !html.contains("old.nii.gz"))
        #expect(html.contains("120.5 ml"))
        let bad = try DefacerProcess.run(["review", outbox, "--since", "last week"])
        #expect(bad.status != 0 && bad.stderr.contains("not a date"))
        let missing = try DefacerProcess.run(["review", root + "/nowhere"])
        #expect(missing.status != 0 && missing.stderr.contains("not a folder"))
    }
}
