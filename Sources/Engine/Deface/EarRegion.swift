/// The outer ears: what protrudes from the head's smooth outline in a box beside and below
/// the temporal lobes, plus a thin layer under that outline around the ear canal's opening.
/// The smooth outline is the head opened with a ball wider than the pinna is thick (what the
/// ball cannot enter is a thin protrusion: the pinna; the skull is never thin enough), so the
/// region follows the outside of the head and is never carved inwards through scalp and bone.
/// Everything scales with the brain's width.
public enum EarRegion {
    /// Radius of the opening ball and depth of the layer under the outline, as fractions of
    /// the brain's width (Colin27, 143 mm wide: 7.2 mm and 10 mm). Measured on our heads:
    /// 95% of the scored ear tissue lies within 7.6 mm of the smooth outline (pydeface's
    /// template, whose averaged ears barely protrude), all of Colin27's within 4.2 mm; a layer
    /// of 5.5% left the child-like Colin27 87% of one ear, 7% removes 97% and 99%.
    static let ballFraction = 0.05, layerFraction = 0.07
    /// How far inside the box's walls the layer under the outline reaches its full depth, as a
    /// fraction of the brain's size along each axis: the layer's floor rises smoothly (no kink at
    /// either end) to the outline towards the walls, so the region meets the head's surface at a
    /// slope and no box wall shows in a rendering of the defaced head.
    static let taperFraction = 0.12

    /// Voxels to remove for the ears (1 = ear; tissue and the air around it), before the guards.
    public static func compute(head: [UInt8], grid: Grid3D, spacing: [Double], frame: HeadFrame,
                               threads: Int = EngineThreads.available) -> [UInt8] {
        let size = frame.brainSize
        let ball = Float(max(4.0, ballFraction * size.x)), layer = Float(max(4.0, layerFraction * size.x))
        let smooth = smoothOutline(head: head, grid: grid, spacing: spacing, ball: ball, threads: threads)
        let t = frame.transform
        // the layer's depth is read only in the box below (both sides, below the brain's
        // centre); elsewhere it reads as infinitely deep, which leaves nothing there
        let earBox = VoxelBox.covering(headLow: SIMD3(-.infinity, -0.32 * size.y, -0.60 * size.z),
                                       headHigh: SIMD3(.infinity, 0.12 * size.y, 0), frame: t, grid: grid, spacing: spacing)
        let underOutline = DistanceTransform.distance(to: smooth.map { 1 - $0 }, grid: grid, spacing: spacing, threads: threads,
                                                      box: earBox, elsewhere: .infinity)
        func inBox(_ h: SIMD3<Double>) -> Bool {
            abs(h.x) > 0.36 * size.x && h.y > -0.32 * size.y && h.y < 0.12 * size.y && h.z > -0.60 * size.z
        }
        // the layer's depth at a point of the box: full depth from `taperFraction` inside its walls
        func layerDepth(_ h: SIMD3<Double>, top: Double) -> Float {
            let taper = taperFraction * size
            let inside = [(abs(h.x) - 0.36 * size.x) / taper.x, (h.y + 0.32 * size.y) / taper.y,
                          (0.12 * size.y - h.y) / taper.y, (h.z + 0.60 * size.z) / taper.z, (top - h.z) / taper.z]
            let s = max(0, min(1, inside.min() ?? 0))
            return layer * Float(s * s * (3 - 2 * s))
        }
        // the top of each ear: the highest protrusion in the box
        // (nothing outside `earBox` is in the box: it maps the whole of it to the grid)
        let partials = ParallelSlices.reduce(earBox.isEmpty ? 0 : earBox.upper.z - earBox.lower.z, threads: threads,
                                             initial: (top: [-Double.infinity, -Double.infinity], protruding: [0, 0])) { slice, found in
            FaceRegion.forEachVoxel(inSlice: earBox.lower.z + slice, grid, spacing, box: earBox) { index, p in
                guard head[index] != 0, smooth[index] == 0 else { return }
                let h = t.toHead(p)
                guard inBox(h), h.z < 0 else { return }
                let side = h.x < 0 ? 0 : 1
                found.top[side] = max(found.top[side], h.z)
                found.protruding[side] += 1
            }
        }
        let top = (0..<2).map { side in partials.map { $0.top[side] }.max() ?? -.infinity }
        let protruding = (0..<2).map { side in partials.reduce(0) { $0 + $1.protruding[side] } }
        // no pinna on a side (under 0.5 ml protruding: the ear is outside the field of view):
        // nothing is removed there
        let voxelML = spacing.reduce(1, *) / 1000
        let present = protruding.map { Double($0) * voxelML >= 0.5 }
        // an ear's top sits between 0.12 and 0.02 of the brain's height below its centre
        // (Colin27: 0.13); the protrusions only move it within that band
        let limit = top.map { min(-0.02 * size.z, max(-0.12 * size.z, $0.isFinite ? $0 + 3 : -.infinity)) }
        return FaceRegion.voxelMask(grid, spacing, box: earBox, threads: threads) { index, p in
            // outside the smooth outline (pinna and air), or a thin layer under it
            guard smooth[index] == 0 || underOutline[index] <= layer else { return false }
            let h = t.toHead(p)
            let side = h.x < 0 ? 0 : 1
            guard present[side], inBox(h), h.z <= limit[side] else { return false }
            return smooth[index] == 0 || underOutline[index] <= layerDepth(h, top: limit[side])
        }
    }

    /// The head opened with a ball of radius `ball` (mm): 1 where the head's core (deeper than
    /// `ball`) lies within `ball`. The two distance transforms run on the boxes whose values
    /// decide the result (`VoxelBox`, bit for bit the whole grid's): the depth within the head's
    /// box (outside it every voxel is air, depth 0), the distance from the core within the core's
    /// box widened by the ball and a voxel (further out the core is more than `ball` away).
    static func smoothOutline(head: [UInt8], grid: Grid3D, spacing: [Double], ball: Float,
                              threads: Int = EngineThreads.available) -> [UInt8] {
        let outside = head.map { $0 == 0 ? UInt8(1) : 0 }
        let depth = DistanceTransform.distance(to: outside, grid: grid, spacing: spacing, threads: threads,
                                               box: VoxelBox.around([head], grid: grid, threads: threads), elsewhere: 0)
        let core = depth.map { $0 > ball ? UInt8(1) : 0 }
        let reach = SIMD3((0..<3).map { Int((Double(ball) / spacing[$0]).rounded(.up)) + 1 })
        let coreBox = VoxelBox.around([core], grid: grid, threads: threads).widened(by: reach, within: grid)
        let fromCore = DistanceTransform.distance(to: core, grid: grid, spacing: spacing, threads: threads,
                                                  box: coreBox, elsewhere: .infinity)
        return fromCore.map { $0 <= ball ? UInt8(1) : 0 }
    }
}
