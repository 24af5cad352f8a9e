/// Connected parts of a binary mask.
public enum ConnectedComponents {
    /// Neighbourhood used to connect voxels.
    public enum Connectivity: Sendable { case faces, full }

    /// Keeps only the largest connected part of `mask` (nonzero = inside).
    public static func largest(_ mask: [UInt8], grid: Grid3D, connectivity: Connectivity = .full) -> [UInt8] {
        let (labels, sizes) = label(mask, grid: grid, connectivity: connectivity)
        guard let best = sizes.indices.dropFirst().max(by: { sizes[$0] < sizes[$1] }) else { return mask.map { _ in 0 } }
        return labels.map { $0 == Int32(best) ? 1 : 0 }
    }

    /// Labels each connected part 1, 2, ...; `sizes[label]` counts its voxels (`sizes[0]` unused).
    public static func label(_ mask: [UInt8], grid: Grid3D, connectivity: Connectivity) -> (labels: [Int32], sizes: [Int]) {
        var labels = [Int32](repeating: 0, count: grid.count)
        var sizes = [0]
        var offsets: [(Int, Int, Int)] = []
        for dz in -1...1 {
            for dy in -1...1 {
                for dx in -1...1 where (dx, dy, dz) != (0, 0, 0) {
                    if connectivity == .faces && abs(dx) + abs(dy) + abs(dz) != 1 { continue }
                    offsets.append((dx, dy, dz))
                }
            }
        }
        var stack: [Int] = []
        for start in 0..<grid.count where mask[start] != 0 && labels[start] == 0 {
            let id = Int32(sizes.count)
            var size = 0
            labels[start] = id
            stack.append(start)
            while let v = stack.popLast() {
                size += 1
                let x = v % grid.nx, y = (v / grid.nx) % grid.ny, z = v / (grid.nx * grid.ny)
                for (dx, dy, dz) in offsets {
                    let nx = x + dx, ny = y + dy, nz = z + dz
                    guard nx >= 0, ny >= 0, nz >= 0, nx < grid.nx, ny < grid.ny, nz < grid.nz else { continue }
                    let n = grid.index(nx, ny, nz)
                    if mask[n] != 0 && labels[n] == 0 {
                        labels[n] = id
                        stack.append(n)
                    }
                }
            }
            sizes.append(size)
        }
        return (labels, sizes)
    }
}
