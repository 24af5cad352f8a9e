@testable import Engine
import Testing

/// The shortcuts `defacer deface` takes in its distance transforms give the values of the plain
/// computation bit for bit: zero runs entering the lower envelope by their ends only, and the
/// ear region's opening run on the boxes that decide it.
struct DistanceShortcutTests {
    /// Felzenszwalb and Huttenlocher's transform as the paper gives it, with the same float
    /// arithmetic as `DistanceTransform` and no shortcut: every parabola enters the envelope,
    /// every axis (x too) goes through it, square roots at the end.
    static func plainDistance(to mask: [UInt8], grid: Grid3D, spacing: [Double]) -> [Float] {
        var f = mask.map { $0 != 0 ? Float(0) : 1e20 }
        let strides = [1, grid.nx, grid.nx * grid.ny], shape = grid.shape
        for axis in 0..<3 {
            let n = shape[axis], w = Float(spacing[axis] * spacing[axis])
            let others = (0..<3).filter { $0 != axis }
            for b in 0..<shape[others[1]] {
                for a in 0..<shape[others[0]] {
                    let base = a * strides[others[0]] + b * strides[others[1]]
                    let line = (0..<n).map { f[base + $0 * strides[axis]] }
                    let out = plainEnvelope(line, w: w)
                    for q in 0..<n { f[base + q * strides[axis]] = out[q] }
                }
            }
        }
        return f.map { $0.squareRoot() }
    }

    static func plainEnvelope(_ f: [Float], w: Float) -> [Float] {
        let n = f.count
        var v = [Int](repeating: 0, count: n), z = [Float](repeating: 0, count: n + 1), g = [Float](repeating: 0, count: n)
        var k = -1
        for q in 0..<n where f[q] < 1e19 {
            g[q] = f[q] + w * Float(q * q)
            if k < 0 {
                k = 0; v[0] = q; z[0] = -.infinity; z[1] = .infinity
                continue
            }
            var s: Float = 0
            while k >= 0 {
                s = (g[q] - g[v[k]]) / (2 * w * Float(q - v[k]))
                if s <= z[k] { k -= 1 } else { break }
            }
            k += 1
            v[k] = q
            z[k] = k == 0 ? -.infinity : s
            z[k + 1] = .infinity
        }
        guard k >= 0 else { return f }
        var j = 0
        return (0..<n).map { q in
            while z[j + 1] < Float(q) { j += 1 }
            let dq = Float(q - v[j])
            return w * dq * dq + f[v[j]]
        }
    }

    /// A head-like mask: an ellipsoid with a knob on each side, a hollow inside it, and a
    /// sprinkling of single voxels (long runs of ones and of zeros on every axis).
    static func blobMask(_ grid: Grid3D, seed: UInt64) -> [UInt8] {
        let noise = GridTests.randomMask(grid, share: 0.01, seed: seed)
        var mask = [UInt8](repeating: 0, count: grid.count)
        let c = SIMD3(Double(grid.nx), Double(grid.ny), Double(grid.nz)) / 2
        for z in 0..<grid.nz {
            for y in 0..<grid.ny {
                for x in 0..<grid.nx {
                    let d = (SIMD3(Double(x), Double(y), Double(z)) - c) / (c * 0.8)
                    let r = (d * d).sum()
                    let knob = (d.x.magnitude - 1.05) * (d.x.magnitude - 1.05) + d.y * d.y + d.z * d.z < 0.04
                    let hollow = r < 0.1
                    let i = grid.index(x, y, z)
                    mask[i] = ((r < 1 && !hollow) || knob || noise[i] != 0) ? 1 : 0
                }
            }
        }
        return mask
    }

    @Test(arguments: [[1.0, 1.0, 1.0], [0.9375, 1.2, 3.0], [1.1, 0.7, 1.3]])
    func zeroRunsChangeNoDistance(spacing: [Double]) {
        let grid = Grid3D(41, 37, 29)
        let masks = [Self.blobMask(grid, seed: 5), Self.blobMask(grid, seed: 6).map { 1 - $0 },
                     GridTests.randomMask(grid, share: 0.6, seed: 9), GridTests.randomMask(grid, share: 0.02, seed: 10)]
        for (m, mask) in masks.enumerated() {
            let plain = Self.plainDistance(to: mask, grid: grid, spacing: spacing)
            for threads in [1, 3] {
                let fast = DistanceTransform.distance(to: mask, grid: grid, spacing: spacing, threads: threads)
                let differing = zip(plain, fast).filter { $0.bitPattern != $1.bitPattern }.count
                #expect(differing == 0, "mask \(m), \(threads) threads: \(differing) voxels differ from the plain transform")
            }
        }
    }

    @Test(arguments: [[1.0, 1.0, 1.0], [0.9375, 1.2, 3.0]])
    func theEarOpeningOnItsBoxesIsTheWholeGridsOpening(spacing: [Double]) {
        let grid = Grid3D(64, 72, 48)
        let head = Self.blobMask(grid, seed: 21)
        for ball: Float in [2.5, 7.2] {
            let outside = head.map { $0 == 0 ? UInt8(1) : 0 }
            let depth = Self.plainDistance(to: outside, grid: grid, spacing: spacing)
            let core = depth.map { $0 > ball ? UInt8(1) : 0 }
            let plain = Self.plainDistance(to: core, grid: grid, spacing: spacing).map { $0 <= ball ? UInt8(1) : 0 }
            let boxed = EarRegion.smoothOutline(head: head, grid: grid, spacing: spacing, ball: ball, threads: 2)
            #expect(core.contains(1) && plain.contains(0) && plain.contains(1))
            #expect(boxed == plain, "ball \(ball) mm")
        }
        // no core at all (a head thinner than the ball): nothing is inside the outline
        let thin = EarRegion.smoothOutline(head: GridTests.randomMask(grid, share: 0.05, seed: 2), grid: grid,
                                           spacing: spacing, ball: 5, threads: 2)
        #expect(!thin.contains(1))
    }

    @Test func aMaskMadeInABoxIsTheWholeMaskThere() {
        let grid = Grid3D(30, 20, 10), spacing = [0.9, 1.1, 2.0]
        let box = VoxelBox(lower: SIMD3(3, 4, 2), upper: SIMD3(25, 11, 9))
        let test: (Int, SIMD3<Double>) -> Bool = { i, p in (i % 7 == 0) != (p.x + p.y > p.z * 3) }
        let whole = FaceRegion.voxelMask(grid, spacing, threads: 1, test)
        let boxed = FaceRegion.voxelMask(grid, spacing, box: box, threads: 3, test)
        for z in 0..<grid.nz {
            for y in 0..<grid.ny {
                for x in 0..<grid.nx {
                    let i = grid.index(x, y, z)
                    #expect(boxed[i] == (box.contains(x, y, z) ? whole[i] : 0))
                }
            }
        }
        #expect(FaceRegion.voxelMask(grid, spacing, box: .empty, threads: 2, test).allSatisfy { $0 == 0 })
    }
}
