/// A box of voxels on a grid: `lower` (inclusive) to `upper` (exclusive) along x, y and z.
/// Where only part of a grid's result is ever read, a pass can be limited to this box.
public struct VoxelBox: Sendable, Equatable {
    public var lower: SIMD3<Int>
    public var upper: SIMD3<Int>

    public init(lower: SIMD3<Int>, upper: SIMD3<Int>) {
        self.lower = lower
        self.upper = upper
    }

    /// Every voxel of the grid.
    public static func whole(_ grid: Grid3D) -> VoxelBox {
        VoxelBox(lower: .zero, upper: SIMD3(grid.nx, grid.ny, grid.nz))
    }

    /// No voxel at all.
    public static let empty = VoxelBox(lower: .zero, upper: .zero)

    public var isEmpty: Bool { any(upper .<= lower) }

    /// Whether voxel (x, y, z) lies in the box.
    @inline(__always) public func contains(_ x: Int, _ y: Int, _ z: Int) -> Bool {
        x >= lower.x && x < upper.x && y >= lower.y && y < upper.y && z >= lower.z && z < upper.z
    }

    /// The smallest box holding every voxel where any of `masks` is nonzero (`empty` if none is).
    public static func around(_ masks: [[UInt8]], grid: Grid3D, threads: Int = EngineThreads.available) -> VoxelBox {
        let partials = ParallelSlices.reduce(grid.nz, threads: threads, initial: empty) { z, box in
            box = box.union(around(masks, slice: z, grid: grid))
        }
        return partials.reduce(empty) { $0.union($1) }
    }

    /// Each axial slice's box of the voxels where `mask` is nonzero (`empty` for a slice without any).
    public static func slices(around mask: [UInt8], grid: Grid3D, threads: Int = EngineThreads.available) -> [VoxelBox] {
        var boxes = [VoxelBox](repeating: empty, count: grid.nz)
        boxes.withUnsafeMutableBufferPointer { buffer in
            let out = UnsafeShared(buffer.baseAddress!)
            ParallelSlices.forEach(grid.nz, threads: threads) { z in out.pointer[z] = around([mask], slice: z, grid: grid) }
        }
        return boxes
    }

    /// The box of the voxels of axial slice `z` where any of `masks` is nonzero.
    static func around(_ masks: [[UInt8]], slice z: Int, grid: Grid3D) -> VoxelBox {
        var box = empty
        let plane = grid.nx * grid.ny
        for y in 0..<grid.ny {
            let row = z * plane + y * grid.nx
            var first = -1, last = -1
            for mask in masks {
                mask.withUnsafeBufferPointer { m in
                    let r = m.baseAddress! + row
                    if let f = (0..<grid.nx).first(where: { r[$0] != 0 }) {
                        first = first < 0 ? f : min(first, f)
                        last = max(last, (0..<grid.nx).last(where: { r[$0] != 0 })!)
                    }
                }
            }
            guard first >= 0 else { continue }
            box = box.union(VoxelBox(lower: SIMD3(first, y, z), upper: SIMD3(last + 1, y + 1, z + 1)))
        }
        return box
    }

    /// The grid voxels whose grid-millimetre positions can lie in the head-frame box from `low`
    /// to `high` (millimetres; infinite bounds are clipped to the grid's reach from the frame's
    /// centre), with one voxel to spare, within the grid.
    public static func covering(headLow low: SIMD3<Double>, headHigh high: SIMD3<Double>, frame: HeadFrameTransform,
                                grid: Grid3D, spacing: [Double]) -> VoxelBox {
        let s = SIMD3(spacing[0], spacing[1], spacing[2])
        let far = SIMD3(Double(grid.nx), Double(grid.ny), Double(grid.nz)) * s
        // every grid point lies within `reach` of the centre, and a turn keeps distances
        var reach = 0.0
        for corner in 0..<8 {
            let p = SIMD3(corner & 1 == 0 ? 0 : far.x, corner & 2 == 0 ? 0 : far.y, corner & 4 == 0 ? 0 : far.z)
            reach = max(reach, ((p - frame.centre) * (p - frame.centre)).sum().squareRoot())
        }
        let lo = pointwiseMax(low, SIMD3(repeating: -reach)), hi = pointwiseMin(high, SIMD3(repeating: reach))
        guard all(lo .<= hi) else { return empty }
        var a = SIMD3<Double>(repeating: .infinity), b = SIMD3<Double>(repeating: -.infinity)
        for corner in 0..<8 {
            let h = SIMD3(corner & 1 == 0 ? lo.x : hi.x, corner & 2 == 0 ? lo.y : hi.y, corner & 4 == 0 ? lo.z : hi.z)
            let g = frame.toGrid(h) / s
            a = pointwiseMin(a, g)
            b = pointwiseMax(b, g)
        }
        let n = SIMD3(grid.nx, grid.ny, grid.nz)
        let lower = SIMD3(Int(max(-1, a.x.rounded(.down))), Int(max(-1, a.y.rounded(.down))), Int(max(-1, a.z.rounded(.down)))) &- 1
        let upper = SIMD3(Int(min(Double(n.x) + 1, b.x.rounded(.up))), Int(min(Double(n.y) + 1, b.y.rounded(.up))),
                          Int(min(Double(n.z) + 1, b.z.rounded(.up)))) &+ 2
        return VoxelBox(lower: pointwiseMax(lower, .zero), upper: pointwiseMin(upper, n))
    }

    /// The box grown by `margin` voxels on every side, within the grid (`empty` stays empty).
    public func widened(by margin: SIMD3<Int>, within grid: Grid3D) -> VoxelBox {
        guard !isEmpty else { return self }
        return VoxelBox(lower: pointwiseMax(lower &- margin, .zero),
                        upper: pointwiseMin(upper &+ margin, SIMD3(grid.nx, grid.ny, grid.nz)))
    }

    /// The smallest box holding both.
    public func union(_ other: VoxelBox) -> VoxelBox {
        if isEmpty { return other }
        if other.isEmpty { return self }
        return VoxelBox(lower: pointwiseMin(lower, other.lower), upper: pointwiseMax(upper, other.upper))
    }
}
