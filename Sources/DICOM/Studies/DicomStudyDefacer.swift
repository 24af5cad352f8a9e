import Engine
import Foundation
import Glibc

/// One dropped DICOM folder through checking, conversion and defacing, shared by the service
/// and `defacer deface FOLDER`: every file is read and checked (a cut-off or damaged file fails
/// the whole folder), the images are grouped into series, each series is converted on its own
/// by dcm2niix and each image it gives is defaced by the same engine as a dropped NIfTI scan.
/// A series that is not a head scan, or cannot be defaced, fails alone; the others go on.
///
/// Written into the output folder, per image: `<series>_defaced.nii.gz`,
/// `<series>_face_mask.nii.gz`, `<series>_qc.png`, `<series>_deface.json` (as configured),
/// the scrubbed sidecar `<series>_defaced.json` (and `.bval`/`.bvec` for diffusion), and
/// `conversion.json` for the folder. Never a DICOM file, never an identifying value.
package struct DicomStudyDefacer: Sendable {
    package var settings: DicomSettings
    package var processor: any ScanProcessor
    package var outputs: Set<OutputKind>

    package init(settings: DicomSettings, processor: any ScanProcessor, outputs: Set<OutputKind>) {
        self.settings = settings
        self.processor = processor
        self.outputs = outputs
    }

    /// What became of one series.
    package struct SeriesOutcome: Sendable {
        package var number: Int?
        /// The identifier-free name its output files start with.
        package var name: String
        /// Its files in the dropped folder, relative (for the failed folder; never logged).
        package var files: [String]
        /// Output file names (empty when it failed).
        package var written: [String] = []
        package var failure: String?
        package var failureCode: String?
        package var voxelsRemoved = 0
        package var warnings: [String] = []
        package var defaced: Bool { failure == nil }
    }

    /// Why the folder as a whole was not converted.
    package struct FolderFailure: Error, Sendable {
        package var reason: String
        package var code: String
        /// Not the folder's fault (converter missing, outputs not writable): try again later.
        package var retry = false
        package var brokenFiles: [DicomInventory.BrokenFile] = []
    }

    /// What the run did.
    package struct Result: Sendable {
        package var series: [SeriesOutcome] = []
        package var fileCount = 0
        package var skippedFiles = 0
        package var identifiers = DicomIdentifiers()
        package var converterVersion: String?
        /// dcm2niix's messages (for the failed folder's reason file only: never logged).
        package var converterLog = ""
        package var failure: FolderFailure?
        package var defacedCount: Int { series.filter(\.defaced).count }
    }

    /// Job details written into the reports (the service's scan id and attempts).
    package struct ReportContext: Sendable {
        package var scanID: String?
        package var attempts: Int?
        package var claimedAt: String?

        package init(scanID: String? = nil, attempts: Int? = nil, claimedAt: String? = nil) {
            self.scanID = scanID
            self.attempts = attempts
            self.claimedAt = claimedAt
        }
    }

    /// Checks, converts and defaces `folder` (never modified), working in `work` and writing
    /// into `output` (both created when missing).
    package func run(folder: String, work: String, output: String, context: ReportContext = ReportContext()) -> Result {
        var result = Result()
        let inventory = DicomInventory.scan(folder)
        result.fileCount = inventory.fileCount
        result.skippedFiles = inventory.skipped.count
        result.identifiers = inventory.identifiers
        if let problem = inventory.folderProblem {
            result.failure = FolderFailure(reason: problem, code: "notADicomFolder")
            return result
        }
        if inventory.series.isEmpty && !inventory.broken.isEmpty && inventory.broken.allSatisfy({ $0.code == .notDicom }) {
            let n = inventory.broken.count
            result.failure = FolderFailure(
                reason: "the folder holds no DICOM files (\(n == 1 ? "its file is" : "its \(n) files are") not DICOM; NIfTI scans are dropped as files, not in a folder)",
                code: "noDicomImages", brokenFiles: inventory.broken)
            return result
        }
        if !inventory.broken.isEmpty {
            let n = inventory.broken.count
            result.failure = FolderFailure(
                reason: "\(n) of \(inventory.fileCount) files \(n == 1 ? "is not a complete DICOM file" : "are not complete DICOM files") (the first \(inventory.broken[0].reason)); nothing was converted: send the folder again",
                code: "brokenDicom", brokenFiles: inventory.broken)
            return result
        }
        guard !inventory.series.isEmpty else {
            result.failure = FolderFailure(
                reason: inventory.fileCount == 0 ? "the folder holds no files" : "the folder holds no DICOM images (\(inventory.fileCount) other file\(inventory.fileCount == 1 ? "" : "s"))",
                code: "noDicomImages")
            return result
        }
        guard let converter = settings.dcm2niix else {
            result.failure = FolderFailure(reason: settings.converterProblem ?? "dcm2niix is missing", code: "converterMissing", retry: true)
            return result
        }
        result.converterVersion = converter.version()
        for path in [work, output] where mkdir(path, 0o750) != 0 && errno != EEXIST {
            result.failure = FolderFailure(reason: "cannot create \(path): \(String(cString: strerror(errno)))", code: "writeFailed", retry: true)
            return result
        }
        let deadline = monotonicSeconds() + settings.timeoutSeconds
        var taken = Set<String>()
        for (index, series) in inventory.series.enumerated() {
            do {
                let outcome = try process(series, index: index, folder: folder, work: work, output: output, converter: converter,
                                          deadline: deadline, identifiers: inventory.identifiers, taken: &taken,
                                          log: &result.converterLog, context: context)
                result.series.append(outcome)
            } catch {
                result.failure = error
                return result
            }
        }
        do {
            try DurableFile.write(summaryJSON(result, context: context), to: output + "/conversion.json", replacing: false)
        } catch {
            result.failure = FolderFailure(reason: "the conversion summary could not be written: \(error)", code: "writeFailed", retry: true)
        }
        return result
    }

    // MARK: one series

    private func process(_ series: DicomInventory.Series, index: Int, folder: String, work: String, output: String,
                         converter: Dcm2niix, deadline: Double, identifiers: DicomIdentifiers, taken: inout Set<String>,
                         log: inout String, context: ReportContext) throws(FolderFailure) -> SeriesOutcome {
        var name = SeriesNaming.name(number: series.number, description: series.description, identifiers: identifiers,
                                     fallback: "series\(index + 1)")
        if taken.contains(name) {
            var n = 2
            while taken.contains("\(name)-\(n)") { n += 1 }
            name = "\(name)-\(n)"
        }
        taken.insert(name)
        var outcome = SeriesOutcome(number: series.number, name: name, files: series.files)
        func fail(_ reason: String, _ code: String) -> SeriesOutcome {
            for file in outcome.written { unlink(output + "/" + file) }
            outcome.written = []
            outcome.failure = reason
            outcome.failureCode = code
            return outcome
        }
        if let problem = series.geometryProblem { return fail(problem, "unevenSlices") }

        let dir = work + "/series\(index + 1)"
        defer { DurableFile.removeTree(dir) }  // the converted images still show the face
        for path in [dir, dir + "/dicom", dir + "/nifti"] where mkdir(path, 0o750) != 0 {
            throw FolderFailure(reason: "cannot create \(path): \(String(cString: strerror(errno)))", code: "writeFailed", retry: true)
        }
        for (k, file) in series.files.enumerated() {
            let target = dir + "/dicom/" + String(format: "%06d.dcm", k + 1)
            if link(folder + "/" + file, target) != 0 {
                // another file system (the command line) or a protected link: copy instead
                guard (try? FileManager.default.copyItem(atPath: folder + "/" + file, toPath: target)) != nil else {
                    throw FolderFailure(reason: "the series' files cannot be linked or copied into the work folder for conversion (disk full? permissions?)",
                                        code: "writeFailed", retry: true)
                }
            }
        }
        let remaining = deadline - monotonicSeconds()
        guard remaining > 0 else {
            throw FolderFailure(reason: "dcm2niix did not finish the folder within \(Int(settings.timeoutSeconds)) s (dicom_timeout_seconds)", code: "conversionTimedOut")
        }
        let images: [String]
        do {
            defer { log += "--- series \(index + 1)\n" + Subprocess.tail(of: dir + "/dcm2niix.log") }
            images = try converter.convert(input: dir + "/dicom", output: dir + "/nifti", log: dir + "/dcm2niix.log", timeout: remaining)
        } catch {
            switch error.code {
            case .notStarted: throw FolderFailure(reason: error.reason, code: "converterMissing", retry: true)
            case .timedOut: throw FolderFailure(reason: error.reason, code: "conversionTimedOut")
            case .failed, .noImage: return fail(error.reason, "conversionFailed")
            }
        }
        if images.contains(where: { $0.contains("_Eq_") || $0.contains("_Tilt_") }) {
            return fail("dcm2niix found the slices unevenly spaced or tilted: a slice is missing or the series is incomplete", "unevenSlices")
        }
        for image in images {
            let imageName = name + SeriesNaming.converterSuffix(of: image)
            do {
                let written = try deface(image, as: imageName, into: output, series: series, identifiers: identifiers, context: context, outcome: &outcome)
                outcome.written += written
            } catch let error as FolderFailure {
                _ = fail("", "")
                throw error
            } catch let error as SeriesFailure {
                return fail(images.count > 1 ? "image \(imageName): \(error.reason)" : error.reason, error.code)
            } catch {
                return fail("\(error)", "failed")
            }
        }
        return outcome
    }

    /// Why one image of a series was not defaced.
    package struct SeriesFailure: Error {
        package var reason: String
        package var code: String
    }

    /// Defaces one converted image; returns the names written into `output`.
    private func deface(_ image: String, as imageName: String, into output: String, series: DicomInventory.Series,
                        identifiers: DicomIdentifiers, context: ReportContext, outcome: inout SeriesOutcome) throws -> [String] {
        let header: NiftiHeader
        do { header = try NiftiReader().readHeader(image) } catch {
            throw SeriesFailure(reason: error.reason, code: "unreadable")
        }
        if let problem = Self.notAHeadScan(header) { throw SeriesFailure(reason: problem, code: "notAHeadScan") }
        func path(_ kind: OutputKind) -> String {
            output + "/" + OutputNames.outputName(stem: imageName, kind: kind, inputExtension: ".nii.gz")
        }
        var engineOutputs = DefaceOutputs(defaced: path(.defaced))
        if outputs.contains(.faceMask) { engineOutputs.faceMask = path(.faceMask) }
        if outputs.contains(.brainMask) { engineOutputs.brainMask = path(.brainMask) }
        if outputs.contains(.qcPicture) { engineOutputs.qcPicture = path(.qcPicture) }
        let report: DefaceReport
        do { report = try processor.deface(input: image, outputs: engineOutputs) } catch {
            switch error.code {
            case .writeFailed, .model: throw FolderFailure(reason: error.reason, code: error.code.name, retry: true)
            default: throw SeriesFailure(reason: error.reason, code: error.code.name)
            }
        }
        var written = [engineOutputs.defaced, engineOutputs.faceMask, engineOutputs.brainMask, engineOutputs.qcPicture]
            .compactMap { $0.map(DurableFile.fileName(of:)) }
        outcome.voxelsRemoved += report.voxelsRemoved
        outcome.warnings += report.warnings
        var removedKeys: [String] = []
        let stem = String(image.dropLast(".nii.gz".count))
        do {
            if let data = FileManager.default.contents(atPath: stem + ".json") {
                let scrubber = SidecarScrubber(identifiers: identifiers, keepAcquisitionTimes: settings.keepAcquisitionTimes)
                if let (json, removed) = scrubber.scrub(data) {
                    let name = imageName + "_defaced.json"
                    try DurableFile.write(json, to: output + "/" + name, replacing: false)
                    written.append(name)
                    removedKeys = removed
                } else {
                    outcome.warnings.append("the converter's sidecar could not be read and was left out")
                }
            }
            for ext in ["bval", "bvec"] {
                if let data = FileManager.default.contents(atPath: stem + "." + ext) {
                    let name = imageName + "_defaced." + ext
                    try DurableFile.write(data, to: output + "/" + name, replacing: false)
                    written.append(name)
                }
            }
            if outputs.contains(.report) {
                let name = DurableFile.fileName(of: path(.report))
                try DurableFile.write(Self.reportJSON(report, imageName: imageName, series: series, removedKeys: removedKeys, context: context),
                                       to: output + "/" + name, replacing: false)
                written.append(name)
            }
        } catch {
            for file in written { unlink(output + "/" + file) }
            throw FolderFailure(reason: "an output could not be written: \(error)", code: "writeFailed", retry: true)
        }
        return written
    }

    /// Why a converted image cannot be a 3D head scan (a localiser, a scout, a 2D image, a
    /// screenshot), or nil when it can be tried.
    package static func notAHeadScan(_ header: NiftiHeader) -> String? {
        if header.dataTypeCode == 128 || header.dataTypeCode == 2304 {
            return "an RGB picture (a screenshot or secondary capture), not a scan"
        }
        let dims = header.dimensions + [1, 1, 1]
        let sizes = header.voxelSize
        for axis in 0..<3 where dims[axis] < 16 {
            return "only \(dims[axis]) \(axis == 2 ? "slice" : "pixel")\(dims[axis] == 1 ? "" : "s") along one axis: a localiser, scout or 2D image, not a 3D head scan"
        }
        for axis in 0..<3 {
            let extent = Double(dims[axis]) * abs(sizes[axis])
            if extent < 60 {
                return String(format: "covers only %.0f mm along one axis: too small for a whole head (a localiser or a slab)", extent)
            }
        }
        return nil
    }

    // MARK: reports

    package static func reportJSON(_ report: DefaceReport, imageName: String, series: DicomInventory.Series, removedKeys: [String],
                           context: ReportContext) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        guard let data = try? encoder.encode(report),
              var json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return Data() }
        json["input"] = imageName
        json["source"] = "DICOM series converted by dcm2niix"
        json["dicomFiles"] = series.files.count
        if let number = series.number { json["seriesNumber"] = number }
        json["sidecarKeysRemoved"] = removedKeys
        if let id = context.scanID { json["scanId"] = id }
        if let attempts = context.attempts { json["attempts"] = attempts }
        if let claimed = context.claimedAt { json["claimedAt"] = claimed }
        return (try? JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys])) ?? data
    }

    /// `conversion.json`: every series and what became of it, without identifying values.
    package func summaryJSON(_ result: Result, context: ReportContext) -> Data {
        var json: [String: Any] = [
            "defacerVersion": DefacerVersion.string,
            "converter": "dcm2niix " + (result.converterVersion ?? "(version unknown)"),
            "files": result.fileCount, "skippedFiles": result.skippedFiles,
            "seriesDefaced": result.defacedCount, "seriesNotDefaced": result.series.count - result.defacedCount,
            "acquisitionTimesKept": settings.keepAcquisitionTimes,
        ]
        json["series"] = result.series.map { s -> [String: Any] in
            var entry: [String: Any] = ["name": s.name, "dicomFiles": s.files.count,
                                        "result": s.defaced ? "defaced" : "not defaced"]
            if let number = s.number { entry["seriesNumber"] = number }
            if let reason = s.failure { entry["reason"] = reason }
            if s.defaced { entry["outputs"] = s.written.sorted() }
            if !s.warnings.isEmpty { entry["warnings"] = s.warnings }
            return entry
        }
        if let id = context.scanID { json["scanId"] = id }
        if let attempts = context.attempts { json["attempts"] = attempts }
        if let claimed = context.claimedAt { json["claimedAt"] = claimed }
        return (try? JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys])) ?? Data()
    }
}
