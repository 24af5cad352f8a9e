@testable import Engine
import Foundation
import Testing

/// HD-BET on the head's box only (`HeadBox`): the box holds the head with its margin of air,
/// the network's input shrinks, and the brain mask is the one the whole grid gives. On the
/// pydeface head (air above the head and in front of the face); on Colin27 the box is the
/// whole grid (its 1.5 mm grid is already at the 128 minimum or the head's size).
@Suite struct HeadBoxTests {
    static let models = TestData.repositoryRoot + "/models/hdbet"

    /// A real head on RAS+ voxels, as `extract` reads it.
    static func scan(_ name: String) throws -> (volume: NiftiVolume, values: [Float], grid: Grid3D, spacing: [Double]) {
        let volume = try NiftiReader().read(TestData.real(name))
        let view = volume.rasReorientation
        return (volume, view.toRAS(volume.floatValues()), Grid3D(view.rasShape), (0..<3).map { view.rasAffine.columnLengths[$0] })
    }

    @Test func boxHoldsTheHeadAndItsMargin() throws {
        let scan = try Self.scan("mean_reg2mean.nii.gz")
        let extractor = try BrainExtractor(modelFolder: Self.models, mode: .fast)
        let whole = extractor.prepare(scan.values, grid: scan.grid, spacing: scan.spacing)
        let cropped = extractor.prepare(scan.values, grid: scan.grid, spacing: scan.spacing, cropToHead: true)
        #expect(cropped.input.spatialCount < whole.input.spatialCount, "the head's box is no smaller than the whole grid")
        for n in cropped.box.padded { #expect(n % 16 == 0 && n >= 128, "network axis of \(n) voxels") }
        // every head voxel (on the resampled grid) lies in the box, with the margin where the grid has room
        let g = cropped.grid
        let resampled = Resample.linear(scan.values, from: scan.grid, to: g)
        let threshold = HeadMask.threshold(resampled)  // once: it sorts the whole grid
        let head = ConnectedComponents.largest(resampled.map { $0 > threshold ? 1 : 0 }, grid: g, connectivity: .faces)
        let box = cropped.box, m = HeadBox.marginVoxels
        var outside = 0
        for z in 0..<g.nz {
            for y in 0..<g.ny {
                for x in 0..<g.nx where head[g.index(x, y, z)] != 0 {
                    let v = [x, y, z]
                    let inside = (0..<3).allSatisfy { a in
                        let upper = box.lower[a] + box.size[a]
                        return (box.lower[a] == 0 || v[a] - m >= box.lower[a]) && (upper == g.shape[a] || v[a] + m < upper)
                    }
                    if !inside { outside += 1 }
                }
            }
        }
        #expect(outside == 0, "\(outside) head voxels closer than the margin to the box's sides")
        // inside the box the input holds the same values as the whole grid's
        let p = Grid3D(box.padded), w = Grid3D(whole.box.padded)
        let (x, y, z) = (box.size[0] / 2, box.size[1] / 2, box.size[2] / 2)
        let gx = box.lower[0] + x
        #expect(cropped.input.data[p.index(box.size[0] - 1 - x, y, z)]
                == whole.input.data[w.index(g.nx - 1 - gx, box.lower[1] + y, box.lower[2] + z)])
    }

    @Test func brainAtACutSideIsCaught() {
        let grid = Grid3D(40, 40, 40)
        let box = HeadBox(lower: [4, 0, 6], size: [32, 40, 30], padded: [32, 40, 30])
        var probability = [Float](repeating: 0, count: grid.count)
        probability[grid.index(20, 0, 20)] = 0.9  // against the grid's own edge: not a cut
        #expect(!box.brainReachesCut(probability, grid: grid))
        probability[grid.index(20, 20, 34)] = 0.9  // 1 voxel from the upper z cut
        #expect(box.brainReachesCut(probability, grid: grid))
        #expect(!HeadBox.whole(grid, padded: { $0 }).brainReachesCut(probability, grid: grid))
    }

    @Test func colin27IsTheWholeGrid() throws {
        let scan = try Self.scan("ch2.nii.gz")
        let extractor = try BrainExtractor(modelFolder: Self.models, mode: .fast)
        let cropped = extractor.prepare(scan.values, grid: scan.grid, spacing: scan.spacing, cropToHead: true)
        #expect(cropped.box == HeadBox.whole(cropped.grid, padded: { max(128, ($0 + 15) / 16 * 16) }),
                "the parity test's head (Colin27) must not be cropped: its golden is the whole grid")
    }

    /// Measures what the crop changes (it is off by default because it is not within 0.999).
    @Test(.enabled(if: isReleaseBuild, "whole-network tests run with swift test -c release"))
    func croppedMaskStaysCloseToTheWholeGridOnThePydefaceHead() throws {
        let scan = try Self.scan("mean_reg2mean.nii.gz")
        var extractor = try BrainExtractor(modelFolder: Self.models, mode: .fast)
        #expect(!extractor.cropsToHead, "the whole grid is the default (HD-BET's own rule)")
        let whole = extractor.extract(scan.volume)
        extractor.cropsToHead = true
        let cropped = extractor.extract(scan.volume)
        #expect(cropped.networkInputShape.reduce(1, *) < whole.networkInputShape.reduce(1, *))
        var both = 0, a = 0, b = 0
        var worst: Float = 0
        for i in whole.mask.indices {
            if cropped.mask[i] != 0 { a += 1 }
            if whole.mask[i] != 0 { b += 1 }
            if cropped.mask[i] != 0 && whole.mask[i] != 0 { both += 1 }
            worst = max(worst, abs(cropped.probability[i] - whole.probability[i]))
        }
        let dice = 2 * Double(both) / Double(a + b)
        #expect(dice >= 0.995, "mask Dice \(dice) between the head's box and the whole grid")
        print("pydeface head: head box \(cropped.networkInputShape) vs whole \(whole.networkInputShape): mask Dice \(dice), max abs probability difference \(worst)")
    }
}
