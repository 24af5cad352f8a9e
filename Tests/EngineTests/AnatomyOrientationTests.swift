@testable import Engine
import Foundation
import Testing

/// Up and down from the anatomy on the real Colin27, whose brain comes within 10 mm of the
/// field of view's bottom (so the head below the brain says nothing): the head's outline must
/// tell the top from the bottom, twice and independently, before a scan without orientation
/// codes is defaced; a slab that looks the same either way up is refused.
struct AnatomyOrientationTests {
    /// Colin27 (stored RAS) and its reference brain ch2bet, RAS ordered, with the head mask as
    /// the defacer makes it.
    struct Head {
        var values: [Float], brain: [UInt8], grid: Grid3D
        var header: NiftiHeader

        init() throws {
            let volume = try NiftiReader().read(TestData.real("ch2.nii.gz"))
            let reference = try NiftiReader().read(TestData.real("ch2bet.nii.gz"))
            let view = RASReorientation(nativeShape: Array(volume.shape.prefix(3)), affine: volume.header.affine)
            values = view.toRAS(volume.floatValues())
            brain = view.toRAS(reference.floatValues()).map { $0 > 0 ? 1 : 0 }
            grid = Grid3D(view.rasShape)
            header = volume.header
        }

        /// Slices `range` of the head, in that order (a reversed range turns it upside down).
        func slices(_ range: [Int]) -> Head {
            var out = self
            let n = grid.nx * grid.ny
            out.values = range.flatMap { values[($0 * n)..<(($0 + 1) * n)] }
            out.brain = range.flatMap { brain[($0 * n)..<(($0 + 1) * n)] }
            out.grid = Grid3D([grid.nx, grid.ny, range.count])
            return out
        }

        var anatomy: AnatomyOrientation {
            var head = HeadMask.compute(values, grid: grid)
            for i in head.indices where brain[i] != 0 { head[i] = 1 }
            return AnatomyOrientation(brain: brain, head: head, grid: grid, spacing: [1, 1, 1])
        }

        /// The orientation check with the header's codes set to 0 (as ANALYZE).
        func checkWithoutCodes(_ anatomy: AnatomyOrientation, warnings: inout [String]) throws(DefaceError) -> String {
            var bare = header
            bare.raw.qform_code = 0
            bare.raw.sform_code = 0
            return try Defacer.checkOrientation(anatomy, header: bare, code: "RAS", input: "colin.nii", warnings: &warnings)
        }
    }

    @Test func colinWithoutCodesIsTakenUpFromItsOutline() throws {
        let colin = try Head()
        let anatomy = colin.anatomy
        // the sign that abstains where the brain reaches the bottom: the reason ch2_nocodes was refused
        #expect(anatomy.headBelowBrain == 0, "\(anatomy.summary)")
        #expect(anatomy.headClosesAtTop == 1 && anatomy.headWiderBelow == 1, "\(anatomy.summary)")
        var warnings: [String] = []
        let check = try colin.checkWithoutCodes(anatomy, warnings: &warnings)
        #expect(check.hasPrefix("no orientation in the header; front and top taken from the anatomy"))
        #expect(warnings.contains { $0.contains("the header has no orientation") })
    }

    @Test func colinUpsideDownIsRefusedWithOrWithoutCodes() throws {
        let colin = try Head()
        let flipped = colin.slices(Array((0..<colin.grid.nz).reversed()))
        let anatomy = flipped.anatomy
        #expect(anatomy.headClosesAtTop == -1 && anatomy.headWiderBelow == -1, "\(anatomy.summary)")
        var warnings: [String] = []
        #expect(throws: DefaceError.self) {
            try Defacer.checkOrientation(anatomy, header: colin.header, code: "RAS", input: "colin.nii", warnings: &warnings)
        }
        #expect(throws: DefaceError.self) { try flipped.checkWithoutCodes(anatomy, warnings: &warnings) }
    }

    /// A slab 35 mm either side of the brain's centre, the mean of itself and its mirror image:
    /// nothing in it says which way is up, so without codes it is refused.
    @Test func aSlabTheSameEitherWayUpIsRefusedWithoutCodes() throws {
        let colin = try Head()
        var zs = 0, count = 0
        for i in colin.brain.indices where colin.brain[i] != 0 {
            zs += i / (colin.grid.nx * colin.grid.ny)
            count += 1
        }
        let centre = zs / max(1, count)
        let slab = colin.slices(Array((centre - 35)...(centre + 35)))
        let mirror = colin.slices(Array(((centre - 35)...(centre + 35)).reversed()))
        var symmetric = slab
        symmetric.values = zip(slab.values, mirror.values).map { ($0 + $1) / 2 }
        symmetric.brain = zip(slab.brain, mirror.brain).map { $0 | $1 }
        let anatomy = symmetric.anatomy
        #expect(anatomy.superior == 0 && !anatomy.superiorAgreed, "\(anatomy.summary)")
        var warnings: [String] = []
        do {
            _ = try symmetric.checkWithoutCodes(anatomy, warnings: &warnings)
            Issue.record("the symmetric slab was not refused")
        } catch {
            #expect(error.code == .orientationDisagrees)
            #expect(error.reason.contains("the anatomy does not show clearly where the front and the top are"))
        }
    }
}
