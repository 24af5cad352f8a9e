@testable import Engine
import Testing

/// Distance transforms limited to a box (`defacer deface` reads its distances only where the
/// face and ears are): inside the box every value is the whole grid's, bit for bit.
struct VoxelBoxTests {
    @Test(arguments: [[1.0, 1.0, 1.0], [0.9375, 1.2, 3.0]])
    func aBoxGetsTheWholeGridsDistancesBitForBit(spacing: [Double]) {
        let grid = Grid3D(61, 47, 39)
        let mask = GridTests.randomMask(grid, share: 0.004, seed: 11)
        let whole = DistanceTransform.distance(to: mask, grid: grid, spacing: spacing, threads: 2)
        let boxes = [VoxelBox(lower: SIMD3(5, 9, 3), upper: SIMD3(40, 30, 20)),
                     VoxelBox(lower: SIMD3(0, 0, 38), upper: SIMD3(61, 1, 39)),
                     VoxelBox(lower: SIMD3(60, 20, 0), upper: SIMD3(61, 47, 39)),
                     .whole(grid)]
        for box in boxes {
            let part = DistanceTransform.distance(to: mask, grid: grid, spacing: spacing, threads: 3, box: box, elsewhere: -7)
            var inside = 0, same = 0, marked = 0
            for z in 0..<grid.nz {
                for y in 0..<grid.ny {
                    for x in 0..<grid.nx {
                        let i = grid.index(x, y, z)
                        if box.contains(x, y, z) {
                            inside += 1
                            if part[i].bitPattern == whole[i].bitPattern { same += 1 }
                        } else if part[i] == -7 {
                            marked += 1
                        }
                    }
                }
            }
            #expect(inside == (0..<3).reduce(1) { $0 * (box.upper[$1] - box.lower[$1]) })
            #expect(same == inside, "box \(box): every value inside the box as on the whole grid")
            #expect(marked == grid.count - inside, "box \(box): every value outside it set to `elsewhere`")
        }
        let none = DistanceTransform.distance(to: mask, grid: grid, spacing: spacing, box: .empty, elsewhere: 3)
        #expect(none.allSatisfy { $0 == 3 })
    }

    @Test func theBoxAroundMasksHoldsExactlyTheirVoxels() {
        let grid = Grid3D(30, 20, 10)
        var a = [UInt8](repeating: 0, count: grid.count), b = a
        a[grid.index(4, 7, 2)] = 1
        a[grid.index(9, 3, 5)] = 1
        b[grid.index(20, 15, 8)] = 1
        #expect(VoxelBox.around([a], grid: grid, threads: 3) == VoxelBox(lower: SIMD3(4, 3, 2), upper: SIMD3(10, 8, 6)))
        #expect(VoxelBox.around([a, b], grid: grid) == VoxelBox(lower: SIMD3(4, 3, 2), upper: SIMD3(21, 16, 9)))
        #expect(VoxelBox.around([[UInt8](repeating: 0, count: grid.count)], grid: grid).isEmpty)
    }

    @Test(arguments: [(0.0, 0.0, 0.0), (0.3, -0.2, 0.25), (-0.5, 0.4, -0.35)])
    func aHeadFrameBoxCoversEveryVoxelInIt(pitch: Double, yaw: Double, roll: Double) {
        let grid = Grid3D(40, 48, 36), spacing = [1.0, 1.2, 2.5]
        let frame = HeadFrameTransform(centre: SIMD3(21, 25, 40), pitch: pitch, yaw: yaw, roll: roll)
        let low = SIMD3(-Double.infinity, -12, -30), high = SIMD3(Double.infinity, 5, 0)
        let box = VoxelBox.covering(headLow: low, headHigh: high, frame: frame, grid: grid, spacing: spacing)
        var inRegion = 0, missed = 0
        FaceRegion.forEachVoxel(grid, spacing) { i, p in
            let h = frame.toHead(p)
            guard h.y >= low.y, h.y <= high.y, h.z >= low.z, h.z <= high.z else { return }
            inRegion += 1
            let (x, y, z) = (i % grid.nx, (i / grid.nx) % grid.ny, i / (grid.nx * grid.ny))
            if !box.contains(x, y, z) { missed += 1 }
        }
        #expect(inRegion > 100)
        #expect(missed == 0)
        if pitch == 0 && yaw == 0 && roll == 0 {
            #expect(box.upper.y - box.lower.y < grid.ny / 2 && box.upper.z - box.lower.z < grid.nz, "the box leaves part of the grid out")
        }
    }
}
