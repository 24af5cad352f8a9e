import Foundation

extension Defacer {
    /// What `analyse` found: masks on the RAS+ grid, the QC picture and the report so far.
    struct Analysis {
        var reorientation: RASReorientation
        var brain: [UInt8]
        var removed: [UInt8]
        var qcPNG: [UInt8]
        var report: DefaceReport
    }

    /// Ear voxels must lie further than the margin plus this from the network's brain (its
    /// 50% mask): the second condition, which holds where the network stops short of the
    /// brain's surface by up to 8 mm. Measured: Colin27's scored ear tissue lies 14 mm or more
    /// from its reference brain, 9.4 mm on the child-like form; 6 mm beyond the margin from
    /// the 5% mask instead cost the child-like form 12% of its ears.
    static let earBudgetMM = 4.0

    func analyse(_ volume: NiftiVolume, input: String, clock: inout StageClock) throws(DefaceError) -> Analysis {
        // the image in RAS+ order, for the network and the head alike
        let values = volume.rasReorientation.toRAS(volume.floatValues())
        var brainMask = extractor.extract(volume, rasValues: values)
        clock.lap("brain (HD-BET \(options.mode.rawValue))")
        let view = brainMask.reorientation, grid = brainMask.grid
        let spacing = (0..<3).map { view.rasAffine.columnLengths[$0] }
        guard Self.plausibleBrainML.contains(brainMask.volumeML) else {
            throw DefaceError(.implausibleBrain, path: input, reason: String(
                format: "the brain found measures %.0f ml, outside the plausible %.0f-%.0f ml: is this a head scan?",
                brainMask.volumeML, Self.plausibleBrainML.lowerBound, Self.plausibleBrainML.upperBound))
        }
        var head = HeadMask.compute(values, grid: grid, threads: options.threads)
        for i in head.indices where brainMask.mask[i] != 0 { head[i] = 1 }
        var warnings: [String] = []
        let anatomy = AnatomyOrientation(brain: brainMask.mask, head: head, grid: grid, spacing: spacing)
        let orientation = try Self.checkOrientation(anatomy, header: volume.header, code: view.orientation.code,
                                                    input: input, warnings: &warnings)
        let frame = HeadFrame(brain: brainMask.mask, values: values, grid: grid, spacing: spacing, threads: options.threads)
        if options.simulatedBrainMissMM > 0 {
            SimulatedBrainMiss.apply(to: &brainMask, millimetres: options.simulatedBrainMissMM, spacing: spacing, frame: frame)
        }
        clock.lap("head, frame and orientation")
        try Self.checkFront(brainMask.mask, grid: grid, spacing: spacing, input: input)
        let edges = FieldOfViewEdges.extend(brainMask.mask, grid: grid, spacing: spacing, reach: 10)
        let found = try regionSource.regions(volume: volume, view: view, head: head, brain: edges.mask, grid: grid, spacing: spacing,
                                             frame: frame, removeEars: options.removeEars, marginMM: options.marginMM, input: input,
                                             threads: options.threads, clock: &clock)
        var regions = found.regions
        // the face's second condition holds whichever method found the face (read only where
        // the face region is)
        let faceBox = VoxelBox.around([regions.face], grid: grid, threads: options.threads)
        regions.faceBudget = FaceBudget.mask(grid: grid, spacing: spacing, frame: frame, box: faceBox, threads: options.threads)
        let (distance, brainDistance) = guardDistances(probability: brainMask.probability, brain: edges.mask, ears: regions.ears,
                                                       faceBox: faceBox, grid: grid, spacing: spacing)
        // measured between voxel edges, not centres: a 5 mm slice whose centre is 5 mm from the
        // brain reaches to within 2.5 mm of it
        let margin = Float(options.marginMM + (spacing.max() ?? 1) / 2)
        var removal = regions.remove(head: head, brain: brainMask.mask, distance: distance, brainDistance: brainDistance,
                                     margin: margin, earLimit: margin + Float(Self.earBudgetMM))
        clock.lap("face and ears")
        let voxelML = spacing.reduce(1, *) / 1000
        if Double(removal.headRemoved) > 0.5 * Double(removal.headCount) {
            throw DefaceError(.implausibleFace, path: input, reason: String(
                format: "the region to remove would be %.0f%% of the head, far more than a face: the head or brain was not found correctly",
                100 * Double(removal.headRemoved) / Double(max(1, removal.headCount))))
        }
        let faceInView = Double(removal.faceCount) * voxelML >= 1
        if !faceInView {
            // under 1 ml of tissue where a face would be: a slab above the face; take nothing of it
            regions.face = [UInt8](repeating: 0, count: grid.count)
            removal = regions.remove(head: head, brain: brainMask.mask, distance: distance, brainDistance: brainDistance,
                                     margin: margin, earLimit: margin + Float(Self.earBudgetMM))
            warnings.append("no face in the field of view: nothing of the face was removed")
        }
        if !edges.faces.isEmpty {
            warnings.append("the brain reaches the \(edges.faces.joined(separator: ", ")) edge of the field of view; it was taken to continue past it")
        }
        let faceRegion = regionSource.describe(markedHead: found.markedHead, removal: removal, voxelML: voxelML)
        warnings += FaceRegionSource.warnings(faceRegion, marginMM: options.marginMM)
        let features = FeatureEstimate.estimate(head: head, removed: removal.removed, grid: grid, spacing: spacing, frame: frame)
        warnings += Self.unusual(removal: removal, features: features, faceInView: faceInView, voxelML: voxelML)
        var report = makeReport(volume: volume, input: input, view: view, brainML: brainMask.volumeML, frame: frame,
                                removal: removal, voxelML: voxelML, faceInView: faceInView, warnings: warnings)
        report.orientationCheck = orientation
        report.faceRegion = faceRegion
        report.method = regionSource.methodLine(builtin: report.method)
        report.features = features
        report.fieldOfViewEdgesReached = edges.faces
        let caption = Self.caption(report)
        let qc = QCPicture.render(values: values, head: head, removed: removal.removed, brain: brainMask.mask, grid: grid,
                                  spacing: spacing, sagittalX: min(grid.nx - 1, max(0, Int(frame.centre.x / spacing[0]))),
                                  caption: caption, threads: options.threads)
        clock.lap("QC picture")
        return Analysis(reorientation: view, brain: brainMask.mask, removed: removal.removed, qcPNG: qc, report: report)
    }

    /// Millimetres to the guard over the face and ear boxes, and to the brain itself over the
    /// ear box. The guard is wherever HD-BET gives the brain a chance above 5% (a little wider
    /// than its 50% mask) plus `brain` (the mask continued past the field of view's edges).
    /// Both are read only where the face or the ears are (elsewhere they read 0: at the brain,
    /// nothing removed).
    func guardDistances(probability: [Float], brain: [UInt8], ears: [UInt8], faceBox: VoxelBox, grid: Grid3D,
                        spacing: [Double]) -> (toGuard: [Float], toBrain: [Float]) {
        var guarded = probability.map { $0 > Self.guardProbability ? UInt8(1) : 0 }
        for i in guarded.indices where brain[i] != 0 { guarded[i] = 1 }
        let earBox = VoxelBox.around([ears], grid: grid, threads: options.threads)
        return (DistanceTransform.distance(to: guarded, grid: grid, spacing: spacing, threads: options.threads,
                                           box: earBox.union(faceBox)),
                DistanceTransform.distance(to: brain, grid: grid, spacing: spacing, threads: options.threads, box: earBox))
    }

    /// The brain must not run off the front of the field of view: the face cannot be placed.
    static func checkFront(_ brain: [UInt8], grid: Grid3D, spacing: [Double], input: String) throws(DefaceError) {
        var frontTouch = 0
        for z in 0..<grid.nz {
            for x in 0..<grid.nx where brain[grid.index(x, grid.ny - 1, z)] != 0 { frontTouch += 1 }
        }
        if Double(frontTouch) * spacing[0] * spacing[2] > 100 {
            throw DefaceError(.brainCutByFieldOfView, path: input, reason:
                "the brain reaches the front edge of the field of view, so the face cannot be located safely")
        }
    }

    /// One line of figures for the QC picture.
    static func caption(_ r: DefaceReport) -> String {
        func count(_ names: [String]) -> String {
            "\(names.filter { r.features[$0]?.found == true }.count)/\(names.count)"
        }
        let method = r.faceRegion?.model == nil ? "" : (r.faceRegion?.caption ?? "") + "  "
        return method + String(format: "removed %.1f ml  brain touched %d  min dist %.1f mm  eyes %@  nose %@  mouth %@  ears %@  warnings %d",
                      r.headVolumeRemovedML, r.brainVoxelsTouched, r.minDistanceToBrainMM ?? 0,
                      count(["eye_left", "eye_right"]), count(["nose"]), count(["mouth"]),
                      count(["ear_left", "ear_right"]), r.warnings.count)
    }
}
