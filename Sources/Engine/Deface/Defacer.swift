import Foundation

/// Removes the face (and ears) from scans: HD-BET finds the brain, the image gives the head,
/// the face and ears are found relative to the brain in the head's own frame, and no voxel
/// within the margin of the brain is ever removed. Load once, deface many scans.
public struct Defacer: Sendable {
    public let options: DefaceOptions
    let extractor: BrainExtractor
    let regionSource: FaceRegionSource

    /// The brain probability beyond which the margin guard protects a voxel.
    static let guardProbability: Float = 0.05

    /// Plausible brain volumes (ml): newborns to large adults, with room for partial masks.
    public static let plausibleBrainML = 100.0...2500.0

    public init(options: DefaceOptions) throws(ModelError) {
        self.options = options
        extractor = try BrainExtractor(modelFolder: options.modelFolder, mode: options.mode, threads: options.threads)
        regionSource = try FaceRegionSource(options.method)
    }

    init(options: DefaceOptions, extractor: BrainExtractor, regionSource: FaceRegionSource) {
        self.options = options
        self.extractor = extractor
        self.regionSource = regionSource
    }

    /// The same defacer (same loaded networks) with other options; the model settings stay.
    public func with(_ change: (inout DefaceOptions) -> Void) -> Defacer {
        var o = options
        change(&o)
        o.modelFolder = options.modelFolder
        o.mode = options.mode
        o.method = options.method
        return Defacer(options: o, extractor: extractor, regionSource: regionSource)
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
            let maskWriter = NiftiWriter(descrip: "defacer \(DefacerVersion.string) face mask (1 = removed)", threads: options.threads)
            if let path = outputs.faceMask {
                written += try maskWriter.write(volume.derivedMask(nativeRemoval), to: path)
                report.outputs["faceMask"] = DurableFile.fileName(of: path)
            }
            if let path = outputs.brainMask {
                let writer = NiftiWriter(descrip: "defacer \(DefacerVersion.string) brain mask (HD-BET)", threads: options.threads)
                written += try writer.write(volume.derivedMask(result.reorientation.toNative(result.brain)), to: path)
                report.outputs["brainMask"] = DurableFile.fileName(of: path)
            }
            if let path = outputs.qcPicture {
                try DurableFile.write(result.qcPNG, to: path, replacing: false)
                written.append(path)
                report.outputs["qcPicture"] = DurableFile.fileName(of: path)
            }
            written += try NiftiWriter(descrip: "defaced by defacer \(DefacerVersion.string)", threads: options.threads).write(volume, to: outputs.defaced)
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
            var failure = DefaceError(.writeFailed, path: input, reason: "an output could not be written: \(error)")
            failure.errno = (error as? SystemError)?.errno
            throw failure
        }
        return report
    }
}
