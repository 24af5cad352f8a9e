import Foundation

/// Scores defacing on annotated cases (tools/fixtures/make_eval_cases.py): eyes, nose and mouth at least
/// 95% removed, ears at least 90%, cases without a face under 1% of the head, mislabelled
/// heads refused, the temporalis muscle kept, no brain voxel touched,
/// and the output's geometry and data type identical to the input's.
public struct Evaluation: Sendable {
    /// One case of the manifest.
    public struct Case: Codable, Sendable {
        public var `case`: String
        public var head: String
        public var file: String
        public var landmarks: [String: [Double]?]
        public var brain_reference: String?
        /// Evaluation only: HD-BET's brain made to miss this much of the temporal lobes' underside.
        public var simulate_brain_miss_mm: Double?
        /// "refused": the scan must not be defaced (e.g. voxels flipped, header unchanged).
        public var expect: String?
        /// No face in the field of view: under 1% of the head may be removed.
        public var no_face: Bool?
    }

    /// The scores of one case.
    public struct Score: Codable, Sendable {
        public var name: String
        /// Fraction of the tissue around each landmark that was removed.
        public var removedFraction: [String: Double] = [:]
        public var brainVoxelsTouched: Int?
        /// Smallest distance (mm) from removed tissue to the reference brain.
        public var minDistanceToReferenceMM: Double?
        /// Head tissue removed, as a percentage of the head (the method's own count).
        public var headRemovedPercent: Double?
        /// The method's warnings.
        public var warnings: [String] = []
        /// The method's own estimate per feature (found, fraction removed), from its report.
        public var estimates: [String: FeatureEstimate] = [:]
        /// Removed voxels inside HD-BET's accurate-mode brain mask (when asked for).
        public var accurateBrainVoxelsTouched: Int?
        public var geometryKept = false
        public var dataTypeKept = false
        public var seconds = 0.0
        public var error: String?
        /// Which targets failed, in words.
        public var misses: [String] = []
        public var passed: Bool { error == nil && misses.isEmpty }
    }

    /// Radius (mm) of the tissue scored around each kind of landmark.
    static let radius: [String: Double] = ["eye": 6, "nose": 5, "mouth": 6, "ear": 8, "temporalis": 4]

    public let folder: String
    public let cases: [Case]

    public init(manifest: String) throws {
        folder = DurableFile.directory(of: manifest)
        struct Manifest: Codable { var cases: [Case] }
        let data = try Data(contentsOf: URL(fileURLWithPath: manifest))
        cases = try JSONDecoder().decode(Manifest.self, from: data).cases
    }

    /// Defaces one case into `workFolder` and scores it.
    /// `accurate`, when given, also counts removed voxels inside its brain mask.
    public func run(_ c: Case, defacer: Defacer, workFolder: String, accurate: BrainExtractor? = nil) -> Score {
        var score = Score(name: c.file)
        let input = folder + "/" + c.file
        let stem = workFolder + "/" + DefaceOutputs.stem(of: c.file)
        let outputs = DefaceOutputs(defaced: stem + "_defaced.nii.gz", faceMask: stem + "_face_mask.nii.gz",
                                    qcPicture: stem + "_qc.png")
        for path in [outputs.defaced, outputs.faceMask!, outputs.qcPicture!] { unlink(path) }
        let start = ContinuousClock.now
        let miss = c.simulate_brain_miss_mm ?? 0
        let used = miss > 0 ? defacer.with { $0.simulatedBrainMissMM = miss } : defacer
        do {
            let report = try used.deface(input: input, outputs: outputs)
            score.headRemovedPercent = report.headRemovedPercent
            score.warnings = report.warnings
            score.estimates = report.features
        } catch {
            if c.expect == "refused", case .orientationDisagrees = error.code { return score }
            score.error = error.description
            return score
        }
        if c.expect == "refused" { score.misses.append("defaced, but this scan must be refused") }
        if c.no_face == true, let p = score.headRemovedPercent, p >= 1 {
            score.misses.append(String(format: "%.1f%% of the head removed from a scan without a face (target under 1%%)", p))
        }
        let d = ContinuousClock.now - start
        score.seconds = d.inSeconds
        do {
            let original = try NiftiReader().read(input)
            let defaced = try NiftiReader().read(outputs.defaced)
            let mask = try NiftiReader().read(outputs.faceMask!)
            score.geometryKept = original.header.dimensions == defaced.header.dimensions
                && original.header.affine == defaced.header.affine
                && original.header.qform == defaced.header.qform
                && original.header.sformCode == defaced.header.sformCode
                && original.header.qformCode == defaced.header.qformCode
            score.dataTypeKept = original.dataType == defaced.dataType
                && original.header.sclSlope == defaced.header.sclSlope && original.header.sclInter == defaced.header.sclInter
            let values = original.floatValues()
            let removed = mask.storage
            let tissue = Self.tissueThreshold(values)
            for (name, point) in c.landmarks {
                guard let point, let kind = Self.radius.keys.first(where: { name.hasPrefix($0) }) else { continue }
                let r = Self.radius[kind]!
                var total = 0, gone = 0
                Self.forEachVoxel(near: SIMD3(point[0], point[1], point[2]), radius: r, in: original) { i in
                    guard values[i] > tissue else { return }
                    total += 1
                    if removed[i] != 0 { gone += 1 }
                }
                score.removedFraction[name] = total == 0 ? .nan : Double(gone) / Double(total)
            }
            if let accurate {
                let brain = accurate.extract(original)
                let native = brain.reorientation.toNative(brain.mask)
                score.accurateBrainVoxelsTouched = zip(native, removed).reduce(0) { $0 + ($1.0 != 0 && $1.1 != 0 ? 1 : 0) }
            }
            if let ref = c.brain_reference {
                let brain = try NiftiReader().read(folder + "/" + ref)
                score.brainVoxelsTouched = zip(brain.storage, removed).reduce(0) { $0 + ($1.0 != 0 && $1.1 != 0 ? 1 : 0) }
                let grid = Grid3D(Array(brain.shape.prefix(3)))
                let distance = DistanceTransform.distance(to: brain.storage.map { $0 != 0 ? 1 : 0 }, grid: grid,
                                                          spacing: (0..<3).map { brain.header.affine.columnLengths[$0] })
                var nearest = Float.infinity
                for i in removed.indices where removed[i] != 0 && values[i] > tissue { nearest = min(nearest, distance[i]) }
                score.minDistanceToReferenceMM = nearest.isFinite ? Double(nearest) : nil
            }
        } catch {
            score.error = "scoring failed: \(error)"
            return score
        }
        Self.judge(&score, c)
        return score
    }

    /// Lists the targets a scored case missed, in words.
    static func judge(_ score: inout Score, _ c: Case) {
        for (name, f) in score.removedFraction.sorted(by: { $0.key < $1.key }) where !f.isNaN {
            if c.no_face == true, !name.hasPrefix("ear") { continue }
            if name.hasPrefix("eye") || name.hasPrefix("nose") || name.hasPrefix("mouth"), f < 0.95 {
                score.misses.append(String(format: "%@ %.0f%% removed (target 95%%)", name, 100 * f))
            } else if name.hasPrefix("ear"), f < 0.9 {
                score.misses.append(String(format: "%@ %.0f%% removed (target 90%%)", name, 100 * f))
            } else if name.hasPrefix("temporalis"), 1 - f < 0.95 {
                score.misses.append(String(format: "%@ %.0f%% kept (target 95%%)", name, 100 * (1 - f)))
            }
        }
        if let t = score.brainVoxelsTouched, t > 0 { score.misses.append("\(t) reference brain voxels removed") }
        if let t = score.accurateBrainVoxelsTouched, t > 0 { score.misses.append("\(t) voxels of HD-BET's accurate brain mask removed") }
        if !score.geometryKept { score.misses.append("output geometry differs from the input") }
        if !score.dataTypeKept { score.misses.append("output data type or scaling differs from the input") }
    }

    /// Values above this are tissue worth scoring (5% of the 99th percentile).
    static func tissueThreshold(_ values: [Float]) -> Float {
        var sample = stride(from: 0, to: values.count, by: max(1, values.count / 200_000)).map { values[$0] }
        sample.sort()
        return 0.05 * sample[sample.count * 99 / 100]
    }

    /// Visits the stored indices of voxels within `radius` mm of a world point.
    static func forEachVoxel(near p: SIMD3<Double>, radius: Double, in volume: NiftiVolume, _ body: (Int) -> Void) {
        let a = volume.header.affine
        let shape = volume.shape
        // world -> voxel through the inverse of the 3x3 part
        let m = (0..<3).map { r in (0..<3).map { c in a[r, c] } }
        let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
        var inv = [[Double]](repeating: [0, 0, 0], count: 3)
        for r in 0..<3 {
            for c in 0..<3 {
                let r1 = (c + 1) % 3, r2 = (c + 2) % 3, c1 = (r + 1) % 3, c2 = (r + 2) % 3
                inv[r][c] = (m[r1][c1] * m[r2][c2] - m[r1][c2] * m[r2][c1]) / det
            }
        }
        let d = SIMD3(p.x - a[0, 3], p.y - a[1, 3], p.z - a[2, 3])
        let centre = (0..<3).map { r in inv[r][0] * d.x + inv[r][1] * d.y + inv[r][2] * d.z }
        let sizes = a.columnLengths
        let reach = (0..<3).map { Int((radius / sizes[$0]).rounded(.up)) + 1 }
        let lo = (0..<3).map { max(0, Int(centre[$0].rounded()) - reach[$0]) }
        let hi = (0..<3).map { min(shape[$0] - 1, Int(centre[$0].rounded()) + reach[$0]) }
        guard lo[0] <= hi[0], lo[1] <= hi[1], lo[2] <= hi[2] else { return }
        for k in lo[2]...hi[2] {
            for j in lo[1]...hi[1] {
                for i in lo[0]...hi[0] {
                    let w = a.apply(SIMD3(Double(i), Double(j), Double(k)))
                    let e = w - p
                    if (e * e).sum() <= radius * radius { body(i + shape[0] * (j + shape[1] * k)) }
                }
            }
        }
    }
}
