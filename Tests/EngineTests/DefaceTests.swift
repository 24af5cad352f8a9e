@testable import Engine
import Foundation
import Testing

/// Whole defacing runs on real heads (release builds only: each takes HD-BET's time).
@Suite(.enabled(if: isReleaseBuild, "whole-network tests run with swift test -c release"), .serialized)
struct DefaceTests {
    static let defacer: Defacer = {
        try! Defacer(options: DefaceOptions(modelFolder: TestData.repositoryRoot + "/models/hdbet"))
    }()

    @Test func smallEvaluationMeetsEveryTarget() throws {
        let evaluation = try Evaluation(manifest: TestData.repositoryRoot + "/data/eval-small/manifest.json")
        #expect(evaluation.cases.count >= 8)
        let work = TestData.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: work) }
        for c in evaluation.cases {
            let score = evaluation.run(c, defacer: Self.defacer, workFolder: work)
            #expect(score.error == nil, "\(c.file): \(score.error ?? "")")
            #expect(score.misses.isEmpty, "\(c.file): \(score.misses.joined(separator: "; "))")
            if c.brain_reference != nil { #expect(score.brainVoxelsTouched == 0) }
        }
    }

    /// The report's own estimates agree with the evaluation's landmark scores: a feature the
    /// annotations place out of view (Colin27 has no mouth in view; the slab no eyes or nose) is
    /// not found, and one in view is found with about the removed fraction the landmarks give.
    @Test func featureEstimatesFollowTheAnatomy() throws {
        let evaluation = try Evaluation(manifest: TestData.repositoryRoot + "/data/eval-small/manifest.json")
        let names = ["ch2_original.nii.gz", "ch2_child.nii.gz", "ch2_slabfrontal.nii.gz", "mean_reg2mean_original.nii.gz"]
        let work = TestData.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: work) }
        for c in evaluation.cases where names.contains(c.file) {
            let score = evaluation.run(c, defacer: Self.defacer, workFolder: work)
            for feature in ["eye_left", "eye_right", "nose", "mouth", "ear_left", "ear_right"] {
                let estimate = try #require(score.estimates[feature], "\(c.file) \(feature)")
                guard let landmark = c.landmarks[feature], landmark != nil, let scored = score.removedFraction[feature] else {
                    #expect(!estimate.found, "\(c.file): \(feature) is not in view but was reported found")
                    continue
                }
                #expect(estimate.found, "\(c.file): \(feature) is in view but was not found")
                #expect(abs(estimate.removedFraction - scored) <= 0.1,
                        "\(c.file): \(feature) estimated \(estimate.removedFraction) removed, landmarks \(scored)")
            }
        }
    }

    @Test func outputsBesideTheInputAndAnHonestReport() throws {
        let folder = TestData.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let input = folder + "/colin.nii.gz"
        try FileManager.default.copyItem(atPath: TestData.real("ch2.nii.gz"), toPath: input)
        let outputs = DefaceOutputs.beside(input)
        #expect(outputs.defaced == folder + "/colin_defaced.nii.gz")
        let report = try Self.defacer.deface(input: input, outputs: outputs)
        for path in [outputs.defaced, outputs.faceMask!, outputs.qcPicture!, outputs.report!] {
            #expect(FileManager.default.fileExists(atPath: path), "\(path) written")
        }
        #expect(report.brainVoxelsTouched == 0)
        #expect(report.faceInFieldOfView)
        // Colin27's ears are in view (the field of view cuts only the pinnae's outer rims) and go:
        // the report says so, and warns about neither
        for ear in ["ear_left", "ear_right"] {
            let estimate = try #require(report.features[ear])
            #expect(estimate.found && estimate.removedFraction >= 0.9, "\(ear): \(estimate)")
        }
        #expect(!report.warnings.contains { $0.contains("ear") }, "\(report.warnings)")
        #expect(report.inputSHA256 == FileHash.sha256(try #require(FileManager.default.contents(atPath: input))))
        let defaced = try NiftiReader().read(outputs.defaced)
        let original = try NiftiReader().read(input)
        #expect(defaced.header.descrip.hasPrefix("defaced by defacer"))
        #expect(defaced.dataType == original.dataType && defaced.header.affine == original.header.affine)
        let mask = try NiftiReader().read(outputs.faceMask!)
        #expect(mask.dataType == .uint8 && mask.header.affine == original.header.affine)
        // exactly the masked voxels changed, and they are blank
        var changedOutsideMask = 0, maskedNotBlank = 0
        for i in 0..<original.voxelsPerVolume {
            if mask.storage[i] != 0 {
                if defaced.storedValue(at: i) != 0 { maskedNotBlank += 1 }
            } else if defaced.storedValue(at: i) != original.storedValue(at: i) {
                changedOutsideMask += 1
            }
        }
        #expect(changedOutsideMask == 0 && maskedNotBlank == 0)
        #expect(report.voxelsRemoved == mask.storage.reduce(0) { $0 + Int($1) })
        let png = try #require(FileManager.default.contents(atPath: outputs.qcPicture!))
        #expect(png.prefix(8) == Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]))
    }

    @Test func aSlabAboveTheEyesPassesWithNothingOfTheFaceRemoved() throws {
        let folder = TestData.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // Colin27 from above the eyes and brows upwards (z >= +5 mm)
        var volume = try NiftiReader().read(TestData.real("ch2.nii.gz"))
        let (nx, ny, nz) = (volume.shape[0], volume.shape[1], volume.shape[2])
        let first = 76  // z = -71 + 76 = +5 mm
        var slab = [UInt8]()
        for k in first..<nz { slab += volume.storage[(k * nx * ny)..<((k + 1) * nx * ny)] }
        volume.storage = slab
        volume.header.raw.dim.3 = Int64(nz - first)
        volume.header.raw.sto_xyz.11 += Double(first)  // sform z offset
        volume.header.raw.qoffset_z += Double(first)
        let input = folder + "/slab.nii.gz"
        try NiftiWriter(descrip: "slab").write(volume, to: input)
        let report = try Self.defacer.deface(input: input, outputs: DefaceOutputs.beside(input))
        #expect(!report.faceInFieldOfView)
        #expect(report.faceVoxelsRemoved == 0)
        #expect(report.warnings.contains { $0.contains("no face") })
        #expect(report.headRemovedPercent < 1, "\(report.headRemovedPercent)% of the head removed from a slab without a face")
    }

    @Test func aHeadStoredBackToFrontUnderAnUnchangedHeaderIsRefused() throws {
        let folder = TestData.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // Colin27 with its rows reversed front-to-back; the header still says front is +y
        var volume = try NiftiReader().read(TestData.real("ch2.nii.gz"))
        let (nx, ny, nz) = (volume.shape[0], volume.shape[1], volume.shape[2])
        let original = volume.storage
        for k in 0..<nz {
            for j in 0..<ny {
                let from = (k * ny + (ny - 1 - j)) * nx, to = (k * ny + j) * nx
                volume.storage.replaceSubrange(to..<(to + nx), with: original[from..<(from + nx)])
            }
        }
        let input = folder + "/flipped.nii.gz"
        try NiftiWriter(descrip: "flipped").write(volume, to: input)
        let outputs = DefaceOutputs.beside(input)
        do {
            _ = try Self.defacer.deface(input: input, outputs: outputs)
            Issue.record("a head stored back to front was defaced")
        } catch {
            #expect(error.code == .orientationDisagrees)
            #expect(error.reason.contains("the face is at the back of the head"), "\(error.reason)")
        }
        #expect(!FileManager.default.fileExists(atPath: outputs.defaced))
    }

    @Test func aScanWithoutAHeadFailsClosed() throws {
        let folder = TestData.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // a 3D image of smooth noise: no brain to find
        var volume = try NiftiReader().read(TestData.real("ch2.nii.gz"))
        var state: UInt64 = 12345
        for i in volume.storage.indices {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            volume.storage[i] = UInt8(truncatingIfNeeded: state >> 56) / 4
        }
        let input = folder + "/noise.nii.gz"
        try NiftiWriter(descrip: "noise").write(volume, to: input)
        let outputs = DefaceOutputs.beside(input)
        #expect(throws: DefaceError.self) { try Self.defacer.deface(input: input, outputs: outputs) }
        #expect(!FileManager.default.fileExists(atPath: outputs.defaced))
        #expect(!FileManager.default.fileExists(atPath: outputs.faceMask!))
    }
}
