import Foundation

/// Removes the face (and ears) from scans: HD-BET finds the brain, the image gives the head,
/// the face and ears are found relative to the brain in the head's own frame, and no voxel
/// within the margin of the brain is ever removed. Load once, deface many scans.
public struct Defacer: Sendable {
    public let options: DefaceOptions
    let extractor: BrainExtractor

    /// The brain probability beyond which the margin guard protects a voxel.
    static let guardProbability: Float = 0.05

    /// Plausible brain volumes (ml): newborns to large adults, with room for partial masks.
    public static let plausibleBrainML = 100.0...2500.0

    public init(options: DefaceOptions) throws(ModelError) {
        self.options = options
        extractor = try BrainExtractor(modelFolder: options.modelFolder, mode: options.mode, threads: options.threads)
    }

    /// Reads `input`, defaces it and writes the requested outputs (each under a temporary name,
    /// fsynced, renamed without replacing anything). Throws when the scan cannot be defaced
    /// with confidence; then no defaced file is left behind.
    public func deface(input: String, outputs: DefaceOutputs) throws(DefaceError) -> DefaceReport {
        var clock = StageClock()
        var volume: NiftiVolume
        do { volume = try NiftiReader(maxVoxels: options.maxVoxels).read(input) } catch {
            throw DefaceError(error, input: input)
        }
        let inputHash = FileHash.sha256(ofRegularFile: input) ?? ""
        clock.lap("read")
        let result = try analyse(volume, input: input, clock: &clock)

        let blank = volume.blankStoredValue
        let nativeRemoval = result.reorientation.toNative(result.removed)
        volume.fill(nativeRemoval, with: blank)
        clock.lap("apply")

        var report = result.report
        report.input = DurableFile.fileName(of: input)
        report.inputSHA256 = inputHash
        var written: [String] = []
        do {
            let maskWriter = NiftiWriter(descrip: "defacer \(DefacerVersion.string) face mask (1 = removed)")
            if let path = outputs.faceMask {
                written += try maskWriter.write(volume.derivedMask(nativeRemoval), to: path)
                report.outputs["faceMask"] = DurableFile.fileName(of: path)
            }
            if let path = outputs.brainMask {
                let writer = NiftiWriter(descrip: "defacer \(DefacerVersion.string) brain mask (HD-BET)")
                written += try writer.write(volume.derivedMask(result.reorientation.toNative(result.brain)), to: path)
                report.outputs["brainMask"] = DurableFile.fileName(of: path)
            }
            if let path = outputs.qcPicture {
                try DurableFile.write(result.qcPNG, to: path, replacing: false)
                written.append(path)
                report.outputs["qcPicture"] = DurableFile.fileName(of: path)
            }
            written += try NiftiWriter(descrip: "defaced by defacer \(DefacerVersion.string)").write(volume, to: outputs.defaced)
            report.outputs["defaced"] = DurableFile.fileName(of: outputs.defaced)
            clock.lap("write")
            for path in written { report.outputSHA256[DurableFile.fileName(of: path)] = FileHash.sha256(ofRegularFile: path) ?? "" }
            report.stages = clock.stages
            report.totalSeconds = clock.total
            if let path = outputs.report {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                try DurableFile.write((try? encoder.encode(report)) ?? Data(), to: path, replacing: false)
            }
        } catch let error as NiftiError {
            for path in written { unlink(path) }
            throw DefaceError(error, input: input)
        } catch {
            for path in written { unlink(path) }
            throw DefaceError(.writeFailed, path: input, reason: "an output could not be written: \(error)")
        }
        return report
    }

    /// What `analyse` found: masks on the RAS+ grid, the QC picture and the report so far.
    struct Analysis {
        var reorientation: RASReorientation
        var brain: [UInt8]
        var removed: [UInt8]
        var qcPNG: [UInt8]
        var report: DefaceReport
    }

    func analyse(_ volume: NiftiVolume, input: String, clock: inout StageClock) throws(DefaceError) -> Analysis {
        let brainMask = extractor.extract(volume)
        clock.lap("brain (HD-BET \(options.mode.rawValue))")
        let view = brainMask.reorientation, grid = brainMask.grid
        let spacing = (0..<3).map { view.rasAffine.columnLengths[$0] }
        guard Self.plausibleBrainML.contains(brainMask.volumeML) else {
            throw DefaceError(.implausibleBrain, path: input, reason: String(
                format: "the brain found measures %.0f ml, outside the plausible %.0f-%.0f ml: is this a head scan?",
                brainMask.volumeML, Self.plausibleBrainML.lowerBound, Self.plausibleBrainML.upperBound))
        }
        let values = view.toRAS(volume.floatValues())
        var head = HeadMask.compute(values, grid: grid)
        for i in head.indices where brainMask.mask[i] != 0 { head[i] = 1 }
        let frame = HeadFrame(brain: brainMask.mask, values: values, grid: grid, spacing: spacing)
        clock.lap("head and frame")

        // the brain must not run off the front of the field of view
        var frontTouch = 0
        for z in 0..<grid.nz {
            for x in 0..<grid.nx where brainMask.mask[grid.index(x, grid.ny - 1, z)] != 0 { frontTouch += 1 }
        }
        if Double(frontTouch) * spacing[0] * spacing[2] > 100 {
            throw DefaceError(.brainCutByFieldOfView, path: input, reason:
                "the brain reaches the front edge of the field of view, so the face cannot be located safely")
        }

        let face = FaceRegion.compute(brain: brainMask.mask, grid: grid, spacing: spacing, frame: frame)
        let ears = options.removeEars ? EarRegion.compute(head: head, grid: grid, spacing: spacing, frame: frame)
                                      : [UInt8](repeating: 0, count: grid.count)
        // the guard: the margin is measured from wherever HD-BET gives the brain a chance
        // above 5%, a little wider than its 50% mask
        let guarded = brainMask.probability.map { $0 > Self.guardProbability ? UInt8(1) : 0 }
        let distanceToBrain = DistanceTransform.distance(to: guarded, grid: grid, spacing: spacing)
        // measured between voxel edges, not centres: a 5 mm slice whose centre is 5 mm from the
        // brain reaches to within 2.5 mm of it
        let margin = Float(options.marginMM + (spacing.max() ?? 1) / 2)
        var removed = [UInt8](repeating: 0, count: grid.count)
        var faceCount = 0, earCount = 0, headCount = 0, removedHead = 0, touched = 0
        for i in removed.indices {
            if head[i] != 0 { headCount += 1 }
            guard distanceToBrain[i] > margin, face[i] != 0 || ears[i] != 0 else { continue }
            removed[i] = 1
            if head[i] != 0 {
                removedHead += 1
                if face[i] != 0 { faceCount += 1 } else { earCount += 1 }
            }
            if brainMask.mask[i] != 0 { touched += 1 }
        }
        clock.lap("face and ears")
        let voxelML = spacing.reduce(1, *) / 1000
        if Double(removedHead) > 0.5 * Double(headCount) {
            throw DefaceError(.implausibleFace, path: input, reason: String(
                format: "the region to remove would be %.0f%% of the head, far more than a face: the head or brain was not found correctly",
                100 * Double(removedHead) / Double(max(1, headCount))))
        }
        var warnings: [String] = []
        let faceInView = Double(faceCount) * voxelML >= 1
        if !faceInView {
            // under 1 ml of tissue where a face would be: a slab above the face; take nothing
            for i in removed.indices where removed[i] != 0 && face[i] != 0 && ears[i] == 0 { removed[i] = 0 }
            faceCount = 0
            warnings.append("no face in the field of view: nothing of the face was removed")
        }
        let removedCount = removed.reduce(0) { $0 + Int($1) }
        if options.removeEars && earCount == 0 {
            warnings.append("no ears found in the field of view")
        }
        let qc = QCPicture.render(values: values, head: head, removed: removed, brain: brainMask.mask, grid: grid,
                                  spacing: spacing, sagittalX: min(grid.nx - 1, max(0, Int(frame.centre.x / spacing[0]))))
        clock.lap("QC picture")
        let report = DefaceReport(
            model: extractor.descriptor.name, modelSource: extractor.descriptor.source, mode: options.mode.rawValue,
            input: input, inputSHA256: "", dimensions: volume.header.dimensions, voxelSizeMM: volume.header.voxelSize,
            volumes: volume.volumeCount, orientation: view.orientation.code, marginMM: options.marginMM,
            earsRemoved: options.removeEars, brainVolumeML: brainMask.volumeML,
            headTiltDegrees: ["pitch": frame.pitch * 180 / .pi, "yaw": frame.yaw * 180 / .pi, "roll": frame.roll * 180 / .pi],
            voxelsRemoved: removedCount, faceVoxelsRemoved: faceCount, earVoxelsRemoved: earCount,
            volumeRemovedML: Double(removedCount) * voxelML, brainVoxelsTouched: touched,
            faceInFieldOfView: faceInView, warnings: warnings)
        return Analysis(reorientation: view, brain: brainMask.mask, removed: removed, qcPNG: qc, report: report)
    }
}
