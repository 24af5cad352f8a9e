/// The method's own estimate of where each facial feature is and how much of it was removed:
/// the feature's place in Colin27 relative to the brain's centre, as a fraction of the brain's
/// size, carried into the scan's head frame. A feature is "found" when head tissue fills at
/// least a fifth of the ball around its estimated place.
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

    /// Estimates for every feature (RAS+ ordered masks).
    static func estimate(head: [UInt8], removed: [UInt8], grid: Grid3D, spacing: [Double],
                         frame: HeadFrame) -> [String: FeatureEstimate] {
        let t = frame.transform, scale = frame.brainSize.x / 143
        var out: [String: FeatureEstimate] = [:]
        for place in places {
            let centre = t.toGrid(place.at * frame.brainSize), r = place.radius * scale
            var inBall = 0, tissue = 0, gone = 0
            let lo = (0..<3).map { max(0, Int(((centre[$0] - r) / spacing[$0]).rounded(.down))) }
            let hi = (0..<3).map { min(grid.shape[$0] - 1, Int(((centre[$0] + r) / spacing[$0]).rounded(.up))) }
            if lo[0] <= hi[0], lo[1] <= hi[1], lo[2] <= hi[2] {
                for z in lo[2]...hi[2] {
                    for y in lo[1]...hi[1] {
                        for x in lo[0]...hi[0] {
                            let d = SIMD3(Double(x) * spacing[0], Double(y) * spacing[1], Double(z) * spacing[2]) - centre
                            guard (d * d).sum() <= r * r else { continue }
                            inBall += 1
                            let i = grid.index(x, y, z)
                            guard head[i] != 0 else { continue }
                            tissue += 1
                            if removed[i] != 0 { gone += 1 }
                        }
                    }
                }
            }
            let found = inBall > 0 && Double(tissue) >= 0.2 * Double(inBall)
            out[place.name] = FeatureEstimate(found: found, removedFraction: tissue == 0 ? 0 : Double(gone) / Double(tissue))
        }
        return out
    }
}
