/// The ears: thin protrusions of the head surface (what a morphological opening with a ball
/// removes) beside and below the temporal lobes, within a box scaled to the brain, widened a
/// little into the head to take the ear's base. The smooth side of the head, with the
/// temporalis muscle above the ear, is not a protrusion and stays.
public enum EarRegion {
    /// Voxels to remove for the ears (1 = ear), before the brain guard is applied.
    public static func compute(head: [UInt8], grid: Grid3D, spacing: [Double], frame: HeadFrame) -> [UInt8] {
        let size = frame.brainSize
        // ball radius scaled to the head: about 8 mm on an adult brain 140 mm wide
        let radius = max(4.0, 0.057 * size.x)
        let outside = head.map { $0 == 0 ? UInt8(1) : 0 }
        let depth = DistanceTransform.distance(to: outside, grid: grid, spacing: spacing)
        let core = depth.map { $0 > Float(radius) ? UInt8(1) : 0 }
        let fromCore = DistanceTransform.distance(to: core, grid: grid, spacing: spacing)
        let t = frame.transform
        var ears = [UInt8](repeating: 0, count: grid.count)
        var any = false
        FaceRegion.forEachVoxel(grid, spacing) { index, p in
            guard head[index] != 0, fromCore[index] > Float(radius) else { return }
            let h = t.toHead(p)
            if abs(h.x) > 0.36 * size.x,
               h.y > -0.32 * size.y, h.y < 0.08 * size.y,
               h.z > -0.55 * size.z, h.z < 0.10 * size.z {
                ears[index] = 1
                any = true
            }
        }
        guard any else { return ears }
        // the ear's base: head tissue within 4 mm of a protrusion, still lateral to the brain
        let near = DistanceTransform.distance(to: ears, grid: grid, spacing: spacing)
        FaceRegion.forEachVoxel(grid, spacing) { index, p in
            guard head[index] != 0, ears[index] == 0, near[index] <= 4 else { return }
            if abs(t.toHead(p).x) > 0.40 * size.x { ears[index] = 1 }
        }
        return ears
    }
}
