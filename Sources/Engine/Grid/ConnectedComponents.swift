/// Connected parts of a binary mask.
public enum ConnectedComponents {
    /// Neighbourhood used to connect voxels.
    public enum Connectivity: Sendable { case faces, full }

    /// Keeps only the largest connected part of `mask` (nonzero = inside); of parts of equal
    /// size, the one whose first voxel comes first.
    public static func largest(_ mask: [UInt8], grid: Grid3D, connectivity: Connectivity = .full) -> [UInt8] {
        let parts = RunComponents(mask, grid: grid, connectivity: connectivity, inside: true)
        var out = [UInt8](repeating: 0, count: grid.count)
        guard let best = parts.sizes.indices.dropFirst().max(by: { parts.sizes[$0] < parts.sizes[$1] }) else { return out }
        parts.fill(&out) { $0 == best ? 1 : nil }
        return out
    }

    /// Labels each connected part 1, 2, ... in the order of its first voxel; `sizes[label]`
    /// counts its voxels (`sizes[0]` unused).
    public static func label(_ mask: [UInt8], grid: Grid3D, connectivity: Connectivity) -> (labels: [Int32], sizes: [Int]) {
        let parts = RunComponents(mask, grid: grid, connectivity: connectivity, inside: true)
        var labels = [Int32](repeating: 0, count: grid.count)
        parts.fill(&labels) { Int32($0) }
        return (labels, parts.sizes)
    }

    /// `mask` (as 0 and 1) with every background part that does not reach the grid's edge
    /// filled (background parts connected by faces; a one-slice grid's top and bottom are no edge).
    public static func fillHoles(_ mask: [UInt8], grid: Grid3D) -> [UInt8] {
        let background = RunComponents(mask, grid: grid, connectivity: .faces, inside: false)
        var outside = [Bool](repeating: false, count: background.sizes.count)
        for r in background.runs.indices {
            let row = Int(background.runs[r].row), y = row % grid.ny, z = row / grid.ny
            let edgeRow = y == 0 || y == grid.ny - 1 || (grid.nz > 1 && (z == 0 || z == grid.nz - 1))
            if edgeRow || background.runs[r].start == 0 || Int(background.runs[r].end) == grid.nx {
                outside[Int(background.label[r])] = true
            }
        }
        var out = mask.map { $0 != 0 ? UInt8(1) : 0 }
        background.fill(&out) { outside[$0] ? nil : 1 }
        return out
    }
}

/// The connected parts of a mask found run by run: the runs of voxels along x in raster
/// order, runs joined (union-find) with the touching runs of the rows before them, and each
/// part numbered 1, 2, ... in the order of its first run (so of its first voxel).
struct RunComponents {
    struct Run { var row: Int32, start: Int32, end: Int32 }
    var runs: [Run] = []
    /// Each run's part (1-based).
    var label: [Int32] = []
    /// Voxels in each part (`sizes[0]` unused).
    var sizes = [0]
    let nx: Int

    /// Parts of the voxels where `mask` is nonzero (`inside`) or zero (not `inside`).
    init(_ mask: [UInt8], grid: Grid3D, connectivity: ConnectedComponents.Connectivity, inside: Bool) {
        nx = grid.nx
        let rows = grid.ny * grid.nz
        var rowFirst = [Int](repeating: 0, count: rows + 1)
        mask.withUnsafeBufferPointer { m in
            for row in 0..<rows {
                rowFirst[row] = runs.count
                let line = m.baseAddress! + row * nx
                var x = 0
                while x < nx {
                    while x < nx && (line[x] != 0) != inside { x += 1 }
                    guard x < nx else { break }
                    let start = x
                    while x < nx && (line[x] != 0) == inside { x += 1 }
                    runs.append(Run(row: Int32(row), start: Int32(start), end: Int32(x)))
                }
            }
        }
        rowFirst[rows] = runs.count
        var parent = (0..<Int32(runs.count)).map { $0 }
        let reach: Int32 = connectivity == .full ? 1 : 0
        let earlier: [(dy: Int, dz: Int)] = connectivity == .full
            ? [(-1, 0), (-1, -1), (0, -1), (1, -1)] : [(-1, 0), (0, -1)]
        for z in 0..<grid.nz {
            for y in 0..<grid.ny {
                let row = y + grid.ny * z
                for (dy, dz) in earlier {
                    let ey = y + dy, ez = z + dz
                    guard ey >= 0, ey < grid.ny, ez >= 0 else { continue }
                    let other = ey + grid.ny * ez
                    // the two rows' runs, merged by position: join those that overlap (by faces)
                    // or touch (diagonally too, with full connectivity)
                    var a = rowFirst[row], b = rowFirst[other]
                    while a < rowFirst[row + 1] && b < rowFirst[other + 1] {
                        if runs[a].start < runs[b].end + reach && runs[b].start < runs[a].end + reach {
                            Self.union(a, b, &parent)
                        }
                        if runs[a].end < runs[b].end { a += 1 } else { b += 1 }
                    }
                }
            }
        }
        label = [Int32](repeating: 0, count: runs.count)
        for r in runs.indices {
            let root = Self.find(r, &parent)
            if root == r {
                label[r] = Int32(sizes.count)
                sizes.append(0)
            } else {
                label[r] = label[root]
            }
            sizes[Int(label[r])] += Int(runs[r].end - runs[r].start)
        }
    }

    /// Writes `value(part)` over every run of the parts it gives one for.
    func fill<T>(_ out: inout [T], value: (Int) -> T?) {
        out.withUnsafeMutableBufferPointer { o in
            for r in runs.indices {
                guard let v = value(Int(label[r])) else { continue }
                let base = Int(runs[r].row) * nx
                for x in Int(runs[r].start)..<Int(runs[r].end) { o[base + x] = v }
            }
        }
    }

    /// The root of run `r`: the first run of its part (roots are always the smaller index).
    private static func find(_ r: Int, _ parent: inout [Int32]) -> Int {
        var root = r
        while Int(parent[root]) != root { root = Int(parent[root]) }
        var i = r
        while Int(parent[i]) != root {
            let next = Int(parent[i])
            parent[i] = Int32(root)
            i = next
        }
        return root
    }

    private static func union(_ a: Int, _ b: Int, _ parent: inout [Int32]) {
        let ra = find(a, &parent), rb = find(b, &parent)
        if ra < rb { parent[rb] = Int32(ra) } else if rb < ra { parent[ra] = Int32(rb) }
    }
}
