/// Which world direction each voxel axis runs along, read off an affine: the closest
/// permutation-and-flip of RAS+ (as nibabel's `aff2axcodes` reports it).
public struct AxisOrientation: Sendable, Equatable, CustomStringConvertible {
    /// For voxel axis i: the world axis it runs along (0 = left-right, 1 = posterior-anterior,
    /// 2 = inferior-superior).
    public var worldAxis: [Int]
    /// For voxel axis i: +1 when increasing indices go towards R, A or S; -1 towards L, P or I.
    public var sign: [Int]

    public init(worldAxis: [Int], sign: [Int]) {
        self.worldAxis = worldAxis
        self.sign = sign
    }

    /// The orientation of an affine's first three columns. Oblique matrices get the
    /// nearest axis-aligned orientation: the largest direction cosines are taken greedily.
    public init(affine: Affine) {
        var cosines = [[Double]](repeating: [0, 0, 0], count: 3)  // [world][voxel]
        let lengths = affine.columnLengths
        for v in 0..<3 {
            for w in 0..<3 {
                cosines[w][v] = lengths[v] > 0 ? affine[w, v] / lengths[v] : 0
            }
        }
        var worldAxis = [-1, -1, -1]
        var sign = [1, 1, 1]
        var freeWorld: Set<Int> = [0, 1, 2]
        var freeVoxel: Set<Int> = [0, 1, 2]
        for _ in 0..<3 {
            var best = (w: freeWorld.min()!, v: freeVoxel.min()!, value: -1.0)
            for w in freeWorld.sorted() {
                for v in freeVoxel.sorted() where abs(cosines[w][v]) > best.value {
                    best = (w, v, abs(cosines[w][v]))
                }
            }
            worldAxis[best.v] = best.w
            sign[best.v] = cosines[best.w][best.v] < 0 ? -1 : 1
            freeWorld.remove(best.w)
            freeVoxel.remove(best.v)
        }
        self.worldAxis = worldAxis
        self.sign = sign
    }

    /// Three letters such as "RAS" or "LPS": the direction each voxel axis points to.
    public var code: String {
        let letters: [[Character]] = [["L", "R"], ["P", "A"], ["I", "S"]]
        return String((0..<3).map { letters[worldAxis[$0]][sign[$0] > 0 ? 1 : 0] })
    }

    public var description: String { code }

    /// The voxel axis that runs along world axis `w`.
    public func voxelAxis(alongWorld w: Int) -> Int { worldAxis.firstIndex(of: w)! }
}
