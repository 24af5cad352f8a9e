@testable import Engine
import Testing

/// The exact RAS+ view: permutations and flips only, mapped back without loss.
@Suite struct RASReorientationTests {
    @Test func psrStorageGivesTheSameRASValuesAsTheRASFile() throws {
        let ras = try NiftiReader().read(TestData.variant("n1_int16.nii"))
        let psr = try NiftiReader().read(TestData.variant("n1_int16_psr_qform_only.nii"))
        let view = psr.rasReorientation
        #expect(view.orientation.code == "PSR")
        #expect(view.rasShape == ras.shape)
        #expect(view.toRAS(psr.floatValues()) == ras.floatValues())
        #expect(AxisOrientation(affine: view.rasAffine).code == "RAS")
    }

    @Test(arguments: ["n1_int16_psr_qform_only.nii", "n1_int16_oblique_identifying.nii.gz", "n1_uint8.nii.gz"])
    func thereAndBackIsExact(name: String) throws {
        let volume = try NiftiReader().read(TestData.variant(name))
        let view = volume.rasReorientation
        let values = volume.floatValues()
        #expect(view.toNative(view.toRAS(values)) == values)
    }

    @Test func worldCoordinatesAreKept() throws {
        let volume = try NiftiReader().read(TestData.variant("n1_int16_oblique_identifying.nii.gz"))
        let view = volume.rasReorientation
        #expect(view.orientation.code == "LPS")
        let s = view.rasShape
        for (i, j, k) in [(0, 0, 0), (s[0] - 1, 3, 5), (7, s[1] - 1, s[2] - 1)] {
            let n = view.nativeIndex(i, j, k)
            let nx = volume.shape[0], ny = volume.shape[1]
            let native = SIMD3<Double>(Double(n % nx), Double((n / nx) % ny), Double(n / (nx * ny)))
            let a = volume.header.affine.apply(native)
            let b = view.rasAffine.apply(SIMD3(Double(i), Double(j), Double(k)))
            #expect(abs(a.x - b.x) < 1e-9 && abs(a.y - b.y) < 1e-9 && abs(a.z - b.z) < 1e-9)
        }
    }
}
