/// The method's own estimate of where each facial feature is and how much of it was removed:
/// the feature's place in Colin27 relative to the brain's centre, as a fraction of the brain's
/// size, carried into the scan's head frame; the nose and the mouth, which stand out of the
/// face, are then looked for on the face's surface straight in front of that place, and count
/// only where the face goes on below them. A feature is "found" when the ball around its place
/// lies inside the field of view and head tissue fills at least a tenth of it; the fraction
/// removed is that of the head tissue in the ball. For an ear, what the field of view's left or
/// right edge cuts off beyond it is the pinna's rim and the air past it, not a missing ear:
/// that part of the ball is left out (Colin27's field of view ends 90 mm either side of the
/// midline and cut about 15% of each ear's ball off, which made both ears "not found").
public struct FeatureEstimate: Codable, Sendable, Equatable {
    public var found: Bool
    /// Fraction of the head tissue around the estimated place that was removed.
    public var removedFraction: Double

    /// Places relative to the brain's centre as fractions of its width, length and height
    /// (Colin27's eyes, nose and ears; the mouth from pydeface's template), and ball radii (mm, adult).
    static let places: [(name: String, at: SIMD3<Double>, radius: Double)] = [
        ("eye_left", SIMD3(-0.235, 0.466, -0.310), 8), ("eye_right", SIMD3(0.227, 0.466, -0.310), 8),
        ("nose", SIMD3(0, 0.589, -0.396), 8), ("mouth", SIMD3(0, 0.533, -0.575), 10),
        ("ear_left", SIMD3(-0.599, -0.070, -0.317), 10), ("ear_right", SIMD3(0.583, -0.082, -0.317), 10),
    ]
    /// Features found on the face's surface in front of their place, and how far (mm, adult)
    /// in front of and behind the place the surface is looked for.
    static let onSurface: Set<String> = ["nose", "mouth"], surfaceSearchMM = 40.0
    /// Least share of the ball inside the field of view, and of head tissue in it, for "found".
    static let inView = 0.9, tissueShare = 0.1

    /// Estimates for every feature (RAS+ ordered masks).
    static func estimate(head: [UInt8], removed: [UInt8], grid: Grid3D, spacing: [Double],
                         frame: HeadFrame) -> [String: FeatureEstimate] {
        let t = frame.transform, scale = frame.brainSize.x / 143
        var out: [String: FeatureEstimate] = [:]
        for place in places {
            var at = place.at * frame.brainSize
            let r = place.radius * scale
            var continues = true
            if onSurface.contains(place.name) {
                func surface(_ p: SIMD3<Double>) -> Double? {
                    surfaceDepth(in: head, grid: grid, spacing: spacing, frame: t, at: p, reach: surfaceSearchMM * scale)
                }
                if let y = surface(at) { at.y = y - r / 2 }
                // the face goes on below it (the upper lip under the nose, the chin under the
                // mouth): a feature at the lower end of what was imaged is not whole in view
                continues = surface(at - SIMD3(0, 0, 1.5 * r)) != nil
            }
            let ball = Ball(centre: t.toGrid(at), radius: r)
            let counts = ball.count(head: head, removed: removed, grid: grid, spacing: spacing,
                                    sideEdgesCutAir: place.name.hasPrefix("ear"))
            let found = continues && counts.all > 0 && Double(counts.inGrid) >= inView * Double(counts.all)
                && Double(counts.tissue) >= tissueShare * Double(counts.inGrid)
            out[place.name] = FeatureEstimate(found: found,
                                              removedFraction: counts.tissue == 0 ? 0 : Double(counts.gone) / Double(counts.tissue))
        }
        return out
    }

    /// The front-most head tissue (head-frame y, mm) on the line through `at` along the front-back
    /// axis, looked for from `reach` in front of `at` to `reach` behind it; nil where there is none.
    static func surfaceDepth(in head: [UInt8], grid: Grid3D, spacing: [Double], frame t: HeadFrameTransform,
                             at: SIMD3<Double>, reach: Double) -> Double? {
        var y = at.y + reach
        while y >= at.y - reach {
            let p = t.toGrid(SIMD3(at.x, y, at.z))
            if let i = grid.nearestVoxel(p, spacing: spacing), head[i] != 0 { return y }
            y -= 1
        }
        return nil
    }

    /// A ball in grid millimetres.
    struct Ball {
        var centre: SIMD3<Double>, radius: Double

        /// Voxel centres in the ball: all of them (inside the grid or not; with `sideEdgesCutAir`,
        /// less those beyond only the grid's left or right face), inside the grid, head tissue,
        /// and removed head tissue.
        func count(head: [UInt8], removed: [UInt8], grid: Grid3D, spacing: [Double], sideEdgesCutAir: Bool)
            -> (all: Int, inGrid: Int, tissue: Int, gone: Int) {
            var all = 0, inGrid = 0, tissue = 0, gone = 0
            let lo = (0..<3).map { Int(((centre[$0] - radius) / spacing[$0]).rounded(.down)) }
            let hi = (0..<3).map { Int(((centre[$0] + radius) / spacing[$0]).rounded(.up)) }
            for z in lo[2]...hi[2] {
                for y in lo[1]...hi[1] {
                    for x in lo[0]...hi[0] {
                        let d = SIMD3(Double(x) * spacing[0], Double(y) * spacing[1], Double(z) * spacing[2]) - centre
                        guard (d * d).sum() <= radius * radius else { continue }
                        let inYZ = y >= 0 && z >= 0 && y < grid.ny && z < grid.nz
                        guard x >= 0, x < grid.nx else {
                            if !(sideEdgesCutAir && inYZ) { all += 1 }
                            continue
                        }
                        all += 1
                        guard inYZ else { continue }
                        inGrid += 1
                        let i = grid.index(x, y, z)
                        guard head[i] != 0 else { continue }
                        tissue += 1
                        if removed[i] != 0 { gone += 1 }
                    }
                }
            }
            return (all, inGrid, tissue, gone)
        }
    }
}
