@testable import Engine
import Testing

/// Faster ways `defacer deface` computes what it computed before, checked against the plain way:
/// rounding without the C library, whole-row copies into RAS+ order, resampling on several workers.
struct ExactShortcutTests {
    @Test func nearestIntegerRoundsAsDoubleRoundedDoes() {
        var cases: [Double] = [0, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.49999999999999994, -0.49999999999999994,
                               1e15 + 0.5, -(1e15 + 0.5), 4503599627370495.5, 4503599627370497, 123.456, -77.5000001]
        var state: UInt64 = 17
        for _ in 0..<100_000 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let x = (Double(state >> 11) / Double(1 << 53) - 0.5) * 600
            cases += [x, x.rounded(.down) + 0.5, x.rounded(.down) - 0.5, x.nextUp, x.nextDown]
        }
        let wrong = cases.filter { Grid3D.nearestInteger($0) != Int($0.rounded()) }
        #expect(wrong.isEmpty, "\(wrong.prefix(5))")
    }

    @Test(arguments: ["n1_int16.nii", "n1_int16_psr_qform_only.nii", "n1_int16_oblique_identifying.nii.gz", "n1_uint8.nii.gz"])
    func rasOrderTakesEveryVoxelFromItsStoredPlace(name: String) throws {
        let volume = try NiftiReader().read(TestData.variant(name))
        let view = volume.rasReorientation, values = volume.floatValues(), s = view.rasShape
        let ras = view.toRAS(values)
        var n = 0, same = 0
        for k in 0..<s[2] {
            for j in 0..<s[1] {
                for i in 0..<s[0] {
                    if ras[n].bitPattern == values[view.nativeIndex(i, j, k)].bitPattern { same += 1 }
                    n += 1
                }
            }
        }
        #expect(ras.count == values.count && same == values.count, "\(view.orientation.code)")
    }

    @Test func resamplingOnSeveralWorkersGivesTheSameValues() throws {
        let scan = try NiftiReader().read(TestData.real("ch2.nii.gz"))
        let view = scan.rasReorientation, grid = Grid3D(view.rasShape)
        let values = view.toRAS(scan.floatValues())
        for target in [Grid3D(121, 145, 121), Grid3D(grid.nx * 2 / 3, grid.ny, grid.nz + 7)] {
            let one = Resample.linear(values, from: grid, to: target)
            let many = Resample.linear(values, from: grid, to: target, threads: 3)
            #expect(one.count == target.count)
            #expect(zip(one, many).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(target)")
            // every 97th voxel from scikit-image's definition, written out here
            func source(_ o: Int, _ n: Int, _ m: Int) -> (Int, Int, Float) {
                let s = min(max((Double(o) + 0.5) * Double(n) / Double(m) - 0.5, 0), Double(n - 1))
                return (Int(s), min(Int(s) + 1, n - 1), Float(s - Double(Int(s))))
            }
            for o in stride(from: 0, to: target.count, by: 97) {
                let (x0, x1, tx) = source(o % target.nx, grid.nx, target.nx)
                let (y0, y1, ty) = source((o / target.nx) % target.ny, grid.ny, target.ny)
                let (z0, z1, tz) = source(o / (target.nx * target.ny), grid.nz, target.nz)
                func v(_ x: Int, _ y: Int, _ z: Int) -> Float { values[grid.index(x, y, z)] }
                let c00 = v(x0, y0, z0) * (1 - tx) + v(x1, y0, z0) * tx, c01 = v(x0, y1, z0) * (1 - tx) + v(x1, y1, z0) * tx
                let c10 = v(x0, y0, z1) * (1 - tx) + v(x1, y0, z1) * tx, c11 = v(x0, y1, z1) * (1 - tx) + v(x1, y1, z1) * tx
                let expected = (c00 * (1 - ty) + c01 * ty) * (1 - tz) + (c10 * (1 - ty) + c11 * ty) * tz
                #expect(many[o].bitPattern == expected.bitPattern, "voxel \(o) of \(target)")
            }
            let back = Resample.linear(one, from: target, to: grid, threads: 2)
            #expect(zip(back, Resample.linear(one, from: target, to: grid)).allSatisfy { $0.bitPattern == $1.bitPattern })
        }
    }

    @Test func eachSlicesBoxHoldsExactlyThatSlicesVoxels() {
        let grid = Grid3D(33, 21, 12)
        var mask = GridTests.randomMask(grid, share: 0.003, seed: 4)
        for i in (5 * grid.nx * grid.ny)..<(6 * grid.nx * grid.ny) { mask[i] = 0 }   // one empty slice
        let boxes = VoxelBox.slices(around: mask, grid: grid, threads: 3)
        for z in 0..<grid.nz {
            var lo = SIMD3(Int.max, Int.max, z), hi = SIMD3(-1, -1, z)
            for y in 0..<grid.ny {
                for x in 0..<grid.nx where mask[grid.index(x, y, z)] != 0 {
                    lo = pointwiseMin(lo, SIMD3(x, y, z))
                    hi = pointwiseMax(hi, SIMD3(x, y, z))
                }
            }
            let expected = hi.x < 0 ? VoxelBox.empty : VoxelBox(lower: lo, upper: hi &+ 1)
            #expect(boxes[z] == expected, "slice \(z)")
        }
        #expect(boxes[5].isEmpty)
    }
}
