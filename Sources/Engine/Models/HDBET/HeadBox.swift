/// The part of HD-BET's 1.5 mm grid the network runs on: the head's bounding box with a margin
/// of air around it, grown to the network's padded size (a multiple of 16, at least 128) with
/// the scan's own voxels where the grid has them, zeros beyond its upper ends otherwise. The
/// whole grid is the box that covers every voxel.
///
/// Not HD-BET's own rule and off by default (`BrainExtractor.cropsToHead`): instance norm
/// takes each layer's statistics over the whole tensor, air included, so less air changes
/// the answer. On the pydeface head the mask's Dice against the whole grid was 0.9974 with
/// this margin (1.21x less CPU), 0.9986 with 16 voxels (1.12x): README, "Speed".
public struct HeadBox: Sendable, Equatable {
    /// First voxel of the box on the resampled grid (x, y, z).
    public var lower: [Int]
    /// Voxels of the grid inside the box (x, y, z).
    public var size: [Int]
    /// The network's tensor along each axis (x, y, z): `size`, zero-padded at the upper end.
    public var padded: [Int]

    /// Air kept around the head, in network voxels (12 mm at 1.5 mm): the network sees the
    /// scalp's outer edge and background beyond it, as on a whole-head scan.
    public static let marginVoxels = 8

    /// The whole grid, zero-padded at its upper ends (HD-BET's own rule).
    public static func whole(_ grid: Grid3D, padded: (Int) -> Int) -> HeadBox {
        HeadBox(lower: [0, 0, 0], size: grid.shape, padded: grid.shape.map(padded))
    }

    /// The head's box on `grid` from the resampled intensities (before z-scoring): the
    /// largest part above the head threshold, `margin` voxels of air around it. `nil` when no
    /// head is found or the box would not be smaller than the whole grid.
    public static func around(head values: [Float], grid: Grid3D, margin: Int = marginVoxels,
                              padded: (Int) -> Int) -> HeadBox? {
        let threshold = HeadMask.threshold(values)
        let mask = ConnectedComponents.largest(values.map { $0 > threshold ? 1 : 0 }, grid: grid, connectivity: .faces)
        var lo = grid.shape, hi = [-1, -1, -1]
        for z in 0..<grid.nz {
            for y in 0..<grid.ny {
                let row = grid.index(0, y, z)
                guard let first = (0..<grid.nx).first(where: { mask[row + $0] != 0 }) else { continue }
                let last = (0..<grid.nx).last(where: { mask[row + $0] != 0 })!
                lo = [min(lo[0], first), min(lo[1], y), min(lo[2], z)]
                hi = [max(hi[0], last), max(hi[1], y), max(hi[2], z)]
            }
        }
        guard hi[0] >= 0 else { return nil }
        var box = whole(grid, padded: padded)
        for axis in 0..<3 {
            let n = grid.shape[axis]
            let a = max(0, lo[axis] - margin), b = min(n - 1, hi[axis] + margin)
            let wanted = padded(b - a + 1)
            guard wanted < n else { continue }
            box.lower[axis] = min(max(0, a - (wanted - (b - a + 1)) / 2), n - wanted)
            box.size[axis] = wanted
            box.padded[axis] = wanted
        }
        let whole = whole(grid, padded: padded)
        return box.padded.reduce(1, *) < whole.padded.reduce(1, *) ? box : nil
    }

    /// Whether any voxel of `probability` (on `grid`) above 0.5 lies within `guardVoxels` of a
    /// side of the box that cuts through the grid: the brain would reach past the box, and
    /// the network must see the whole grid instead.
    public func brainReachesCut(_ probability: [Float], grid: Grid3D, guardVoxels: Int = 3) -> Bool {
        let n = grid.shape
        // the band of voxels next to each side that cuts through the grid
        let cutLow = (0..<3).map { lower[$0] > 0 ? lower[$0] + guardVoxels : Int.min }
        let cutHigh = (0..<3).map { lower[$0] + size[$0] < n[$0] ? lower[$0] + size[$0] - guardVoxels : Int.max }
        for z in lower[2]..<(lower[2] + size[2]) {
            let zCut = z < cutLow[2] || z >= cutHigh[2]
            for y in lower[1]..<(lower[1] + size[1]) {
                let row = grid.index(0, y, z), yzCut = zCut || y < cutLow[1] || y >= cutHigh[1]
                for x in lower[0]..<(lower[0] + size[0]) where probability[row + x] > 0.5 {
                    if yzCut || x < cutLow[0] || x >= cutHigh[0] { return true }
                }
            }
        }
        return false
    }
}
