/// The ears, found relative to the brain so that the rule scales with the head: in a box
/// beside and below the temporal lobes, everything within a shell as deep as the head is
/// scaled (about 8 mm on an adult) from the head's outer surface, plus the air around it. The
/// pinna is thin, so all of it lies in that shell. The box reaches up to the top of the ear,
/// found as the highest thin protrusion of the head surface there (what an opening with a ball
/// removes), so the temporalis muscle above the ear stays.
public enum EarRegion {
    /// Voxels to remove for the ears (1 = ear), before the brain guard is applied.
    public static func compute(head: [UInt8], grid: Grid3D, spacing: [Double], frame: HeadFrame) -> [UInt8] {
        let size = frame.brainSize
        let shell = Float(max(4.0, 0.072 * size.x))
        let outside = head.map { $0 == 0 ? UInt8(1) : 0 }
        let depth = DistanceTransform.distance(to: outside, grid: grid, spacing: spacing)
        let core = depth.map { $0 > shell ? UInt8(1) : 0 }
        let fromCore = DistanceTransform.distance(to: core, grid: grid, spacing: spacing)
        let t = frame.transform
        func inBox(_ h: SIMD3<Double>) -> Bool {
            abs(h.x) > 0.36 * size.x && h.y > -0.32 * size.y && h.y < 0.12 * size.y && h.z > -0.60 * size.z
        }
        // the top of each ear: the highest protrusion in the box
        var top = [-Double.infinity, -Double.infinity]
        FaceRegion.forEachVoxel(grid, spacing) { index, p in
            guard head[index] != 0, fromCore[index] > shell else { return }
            let h = t.toHead(p)
            guard inBox(h), h.z < 0 else { return }
            let side = h.x < 0 ? 0 : 1
            top[side] = max(top[side], h.z)
        }
        // an ear's top sits between 0.12 and 0.02 of the brain's height below its centre
        // (Colin27: 0.13); the protrusions only move it within that band
        let limit = top.map { min(-0.02 * size.z, max(-0.12 * size.z, $0.isFinite ? $0 + 3 : -.infinity)) }
        var ears = [UInt8](repeating: 0, count: grid.count)
        FaceRegion.forEachVoxel(grid, spacing) { index, p in
            guard depth[index] < shell else { return }
            let h = t.toHead(p)
            if inBox(h), h.z <= limit[h.x < 0 ? 0 : 1] { ears[index] = 1 }
        }
        return ears
    }
}
