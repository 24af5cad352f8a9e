@testable import Engine
import Foundation
import Testing
import TestSupport

/// The QC picture shows only what is shared: checked on its pixels, read back from the file.
@Suite(.enabled(if: isReleaseBuild, "whole-network tests run with swift test -c release"), .serialized)
struct QCPictureTests {
    @Test func theQCPictureShowsNoOriginalFaceVoxel() throws {
        let folder = TestData.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let input = folder + "/colin.nii.gz"
        try FileManager.default.copyItem(atPath: TestData.real("ch2.nii.gz"), toPath: input)
        let outputs = DefaceOutputs.beside(input)
        _ = try DefaceTests.defacer.deface(input: input, outputs: outputs)
        let bytes = try #require(FileManager.default.contents(atPath: outputs.qcPicture!))
        let png = try PNGPixels(bytes: Array(bytes))
        let original = try NiftiReader().read(input)
        let view = original.rasReorientation, grid = Grid3D(view.rasShape)
        let spacing = (0..<3).map { view.rasAffine.columnLengths[$0] }
        let removed = view.toRAS(try NiftiReader().read(outputs.faceMask!).storage)
        let head = HeadMask.compute(view.toRAS(original.floatValues()), grid: grid)
        let kept = zip(head, removed).map { $0 != 0 && $1 == 0 ? UInt8(1) : 0 }
        var x0 = 0, faceMatches = 0, facePixels = 0
        var sxy = 0.0, sx = 0.0, sy = 0.0, sxx = 0.0, syy = 0.0
        for degrees in [0.0, 90, 45] {
            // the original face as a rendering, and the defaced head as one
            let face = QCPicture.surface(head, grid: grid, spacing: spacing, degrees: degrees)
            let defaced = QCPicture.surface(kept, grid: grid, spacing: spacing, degrees: degrees)
            for y in 0..<face.height {
                for x in 0..<face.width {
                    let s = (y * face.width + x) * 3, d = (y * png.width + x0 + x) * 3
                    guard face.rgb[s] != defaced.rgb[s] else { continue }
                    facePixels += 1
                    if png.rgb[d] == face.rgb[s] { faceMatches += 1 }
                    let a = Double(png.rgb[d]), b = Double(face.rgb[s])
                    sx += a; sy += b; sxx += a * a; syy += b * b; sxy += a * b
                }
            }
            x0 += face.width + QCPicture.gap
        }
        let n = Double(facePixels)
        let correlation = (sxy / n - sx * sy / (n * n)) / ((sxx / n - sx * sx / (n * n)) * (syy / n - sy * sy / (n * n))).squareRoot()
        #expect(facePixels > 5000, "the face changes the renderings")
        #expect(Double(faceMatches) < 0.1 * n, "\(faceMatches) of \(facePixels) face pixels show the original face")
        #expect(correlation < 0.3, "renderings correlate with the original face: \(correlation)")
        // the slice: on the sagittal slice shown, a pixel is the solid colour exactly where a voxel was removed
        let c = QCPicture.removedColour
        let width = Int(Double(grid.ny) * spacing[1]), height = Int(Double(grid.nz) * spacing[2])
        let top = png.height - QCPicture.captionHeight - height
        func isSolid(_ px: Int, _ py: Int) -> Bool {
            let i = ((top + py) * png.width + x0 + px) * 3
            return png.rgb[i] == c.0 && png.rgb[i + 1] == c.1 && png.rgb[i + 2] == c.2
        }
        var best = Int.max, solid = 0
        for sx in (grid.nx / 2 - 20)...(grid.nx / 2 + 20) {
            var disagree = 0
            solid = 0
            for py in 0..<height {
                let z = min(grid.nz - 1, Int(Double(height - 1 - py) / spacing[2]))
                for px in 0..<width {
                    let r = removed[grid.index(sx, min(grid.ny - 1, Int(Double(px) / spacing[1])), z)] != 0
                    if isSolid(px, py) { solid += 1 }
                    if r != isSolid(px, py) { disagree += 1 }
                }
            }
            best = min(best, disagree)
        }
        #expect(best == 0, "on the slice, \(best) pixels disagree with the removed region")
        #expect(solid > 1000, "the removed region is drawn in its solid colour")
    }
}
