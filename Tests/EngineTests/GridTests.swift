import Testing
@testable import Engine

/// The grid passes `defacer deface` runs outside the network, against the definitions they
/// implement (brute force on small random grids), and the same whatever the number of workers.
struct GridTests {
    /// A reproducible mask with about `share` of its voxels set, in blobs and single voxels.
    static func randomMask(_ grid: Grid3D, share: Double, seed: UInt64) -> [UInt8] {
        var state = seed
        func next() -> Double {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Double(state >> 11) / Double(1 << 53)
        }
        return (0..<grid.count).map { _ in next() < share ? 1 : 0 }
    }

    @Test func distancesAreTheNearestMaskVoxelsInMillimetres() {
        let grid = Grid3D(23, 17, 11), spacing = [0.9375, 1.2, 3.0]
        let mask = Self.randomMask(grid, share: 0.01, seed: 7)
        let d = DistanceTransform.distance(to: mask, grid: grid, spacing: spacing, threads: 2)
        let points = (0..<grid.count).filter { mask[$0] != 0 }
        #expect(!points.isEmpty)
        var worst = 0.0
        for z in 0..<grid.nz {
            for y in 0..<grid.ny {
                for x in 0..<grid.nx {
                    var best = Double.infinity
                    for p in points {
                        let dx = Double(x - p % grid.nx) * spacing[0], dy = Double(y - (p / grid.nx) % grid.ny) * spacing[1]
                        let dz = Double(z - p / (grid.nx * grid.ny)) * spacing[2]
                        best = min(best, dx * dx + dy * dy + dz * dz)
                    }
                    worst = max(worst, abs(Double(d[grid.index(x, y, z)]) - best.squareRoot()))
                }
            }
        }
        #expect(worst < 1e-4)
    }

    @Test func distancesAreTheSameOnOneWorkerAndOnMany() {
        let grid = Grid3D(70, 90, 40), spacing = [1.0, 1.0, 1.3]
        let mask = Self.randomMask(grid, share: 0.002, seed: 3)
        let one = DistanceTransform.distance(to: mask, grid: grid, spacing: spacing, threads: 1)
        let many = DistanceTransform.distance(to: mask, grid: grid, spacing: spacing, threads: 3)
        #expect(one == many)
        // no mask at all: every voxel infinitely far (1e10 mm, the transform's stand-in)
        let empty = DistanceTransform.distance(to: [UInt8](repeating: 0, count: grid.count), grid: grid, spacing: spacing)
        #expect(empty.allSatisfy { $0 == 1e10 })
    }

    /// Parts by flood fill from each unlabelled voxel in raster order: the definition.
    static func floodLabels(_ mask: [UInt8], grid: Grid3D, full: Bool) -> [Int32] {
        var labels = [Int32](repeating: 0, count: grid.count), next: Int32 = 0
        for start in 0..<grid.count where mask[start] != 0 && labels[start] == 0 {
            next += 1
            labels[start] = next
            var stack = [start]
            while let v = stack.popLast() {
                let x = v % grid.nx, y = (v / grid.nx) % grid.ny, z = v / (grid.nx * grid.ny)
                for dz in -1...1 { for dy in -1...1 { for dx in -1...1 {
                    let steps = abs(dx) + abs(dy) + abs(dz)
                    guard steps > 0, full || steps == 1 else { continue }
                    let (a, b, c) = (x + dx, y + dy, z + dz)
                    guard a >= 0, b >= 0, c >= 0, a < grid.nx, b < grid.ny, c < grid.nz else { continue }
                    let n = grid.index(a, b, c)
                    if mask[n] != 0 && labels[n] == 0 { labels[n] = next; stack.append(n) }
                } } }
            }
        }
        return labels
    }

    @Test(arguments: [ConnectedComponents.Connectivity.faces, .full])
    func partsAreNumberedAsAFloodFillNumbersThem(_ connectivity: ConnectedComponents.Connectivity) {
        let grid = Grid3D(31, 19, 13)
        let mask = Self.randomMask(grid, share: 0.3, seed: 11)
        let (labels, sizes) = ConnectedComponents.label(mask, grid: grid, connectivity: connectivity)
        let expected = Self.floodLabels(mask, grid: grid, full: connectivity == .full)
        #expect(labels == expected)
        #expect(sizes.count == Int(expected.max() ?? 0) + 1 && sizes.count > 2)
        for label in 1..<sizes.count { #expect(sizes[label] == expected.filter { $0 == Int32(label) }.count) }
        let largest = ConnectedComponents.largest(mask, grid: grid, connectivity: connectivity)
        let best = Int32(sizes.indices.dropFirst().max { sizes[$0] < sizes[$1] }!)
        #expect(largest == expected.map { $0 == best ? 1 : 0 })
    }

    @Test func enclosedHolesAreFilledAndOpenOnesAreNot() {
        let grid = Grid3D(12, 12, 12)
        var shell = [UInt8](repeating: 0, count: grid.count)
        for z in 2...9 { for y in 2...9 { for x in 2...9 where [x, y, z].contains(where: { $0 == 2 || $0 == 9 }) {
            shell[grid.index(x, y, z)] = 1
        } } }
        let filled = HeadMask.fillHoles(shell, grid: grid)
        #expect(filled[grid.index(5, 5, 5)] == 1 && filled[grid.index(0, 0, 0)] == 0)
        #expect(filled.filter { $0 != 0 }.count == 8 * 8 * 8)
        var open = shell
        open[grid.index(5, 5, 9)] = 0   // a hole through the top: the inside reaches the edge
        #expect(HeadMask.fillHoles(open, grid: grid) == open)
        // slice by slice the top's hole is filled (enclosed within its slice)
        #expect(HeadMask.fillAxialSlices(open, grid: grid, threads: 2)[grid.index(5, 5, 9)] == 1)
    }
}
