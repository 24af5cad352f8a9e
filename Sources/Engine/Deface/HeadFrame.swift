import Foundation

/// The head's own frame, found from the brain mask: origin at the brain's centre, axes turned
/// so that a tilted or obliquely scanned head lines up with a head in standard (MNI-like)
/// pose. Pitch (nodding) and yaw (turning) come from the brain's principal axes in the
/// sagittal and axial planes, relative to those of a brain in standard pose; rolling (tilting
/// sideways) from the drift of the brain's left-right middle with height.
public struct HeadFrame: Sendable {
    /// Brain centre in grid millimetres (RAS+ grid index times voxel size).
    public let centre: SIMD3<Double>
    /// Nodding angle relative to standard pose (radians; positive = nose up).
    public let pitch: Double
    /// Turning angle relative to standard pose (radians).
    public let yaw: Double
    /// Sideways tilt relative to standard pose (radians).
    public let roll: Double
    /// Extent of the brain along the head's left-right, front-back and up-down axes (mm).
    public let brainSize: SIMD3<Double>

    /// Principal-axis angles of Colin27's HD-BET brain mask in MNI space (measured: 0.199
    /// and 0.018 rad): the standard pose the frame turns heads into.
    static let referencePitch = 0.199
    static let referenceYaw = 0.018
    static let referenceRoll = 0.0

    /// Largest tilt the frame corrects; beyond it the brain's shape is not trusted.
    static let maxTilt = 0.6

    /// - Parameters:
    ///   - brain: brain mask (RAS+ order); `values`: the image (RAS+ order).
    public init(brain: [UInt8], values: [Float], grid: Grid3D, spacing: [Double], threads: Int = EngineThreads.available) {
        var sum = SIMD3<Double>(), count = 0.0
        var points: [SIMD3<Double>] = []
        points.reserveCapacity(grid.count / 8)
        for z in 0..<grid.nz {
            for y in 0..<grid.ny {
                for x in 0..<grid.nx where brain[grid.index(x, y, z)] != 0 {
                    let p = SIMD3(Double(x) * spacing[0], Double(y) * spacing[1], Double(z) * spacing[2])
                    sum += p
                    count += 1
                    points.append(p)
                }
            }
        }
        let c = count > 0 ? sum / count : SIMD3<Double>(Double(grid.nx) * spacing[0], Double(grid.ny) * spacing[1], Double(grid.nz) * spacing[2]) / 2
        var cxx = 0.0, cyy = 0.0, czz = 0.0, cxy = 0.0, cyz = 0.0
        for p in points {
            let d = p - c
            cxx += d.x * d.x; cyy += d.y * d.y; czz += d.z * d.z
            cxy += d.x * d.y; cyz += d.y * d.z
        }
        // angle of the major axis in the (y, z) plane from +y towards +z, and in (y, x)
        let sagittal = 0.5 * atan2(2 * cyz, cyy - czz)
        let axial = 0.5 * atan2(2 * cxy, cyy - cxx)
        let pitch = sagittal - Self.referencePitch, yaw = axial - Self.referenceYaw
        self.centre = c
        self.pitch = abs(pitch) <= Self.maxTilt ? pitch : 0
        self.yaw = abs(yaw) <= Self.maxTilt ? yaw : 0
        // roll: the brain is left-right symmetric; the sideways tilt is the angle of the mirror
        // plane that best maps the image onto itself
        let unrolled = HeadFrameTransform(centre: c, pitch: self.pitch, yaw: self.yaw, roll: 0)
        let roll = Self.symmetryRoll(points: points, values: values, grid: grid, spacing: spacing, frame: unrolled, threads: threads)
            - Self.referenceRoll
        self.roll = abs(roll) <= Self.maxTilt ? roll : 0
        var lo = SIMD3<Double>(repeating: .infinity), hi = SIMD3<Double>(repeating: -.infinity)
        let frame = HeadFrameTransform(centre: c, pitch: self.pitch, yaw: self.yaw, roll: self.roll)
        for p in points {
            let h = frame.toHead(p)
            lo = pointwiseMin(lo, h)
            hi = pointwiseMax(hi, h)
        }
        brainSize = count > 0 ? hi - lo : SIMD3(repeating: 0)
    }

    /// The roll angle whose mirror plane (through the brain's centre, containing the
    /// front-back axis) makes the image most similar to its mirror image, searched over
    /// +-30 degrees in 2-degree steps, then refined to 0.5 degrees.
    static func symmetryRoll(points: [SIMD3<Double>], values: [Float], grid: Grid3D, spacing: [Double],
                             frame: HeadFrameTransform, threads: Int) -> Double {
        guard points.count > 1000 else { return 0 }
        let step = max(1, points.count / 60_000)
        let sample = stride(from: 0, to: points.count, by: step).map { frame.toHead(points[$0]) }
        func value(_ h: SIMD3<Double>) -> Float? {
            grid.nearestVoxel(frame.toGrid(h), spacing: spacing).map { values[$0] }
        }
        let own = sample.map { value($0) ?? 0 }
        func score(_ angle: Double) -> Double {
            let n = SIMD3(cos(angle), 0, -sin(angle))
            // where every mirrored sample falls first (arithmetic only), then the image's values
            // there, read back to back, summed in the samples' order
            let mirrored = sample.map { h in grid.nearestVoxel(frame.toGrid(h - 2 * (h * n).sum() * n), spacing: spacing) ?? -1 }
            var sa = 0.0, sb = 0.0, saa = 0.0, sbb = 0.0, sab = 0.0, count = 0.0
            for (at, a) in zip(mirrored, own) where at >= 0 {
                let x = Double(a), y = Double(values[at])
                sa += x; sb += y; saa += x * x; sbb += y * y; sab += x * y; count += 1
            }
            guard count > 100 else { return -1 }
            let cov = sab / count - sa * sb / (count * count)
            let va = saa / count - sa * sa / (count * count), vb = sbb / count - sb * sb / (count * count)
            return cov / max(1e-12, (va * vb).squareRoot())
        }
        // every angle's score on its own worker; the choice runs in the angles' order as before
        func scores(_ degrees: [Double]) -> [Double] {
            var out = [Double](repeating: 0, count: degrees.count)
            out.withUnsafeMutableBufferPointer { buffer in
                let o = UnsafeShared(buffer.baseAddress!)
                ParallelSlices.forEach(degrees.count, threads: threads) { o.pointer[$0] = score(degrees[$0] * .pi / 180) }
            }
            return out
        }
        let coarse = Array(stride(from: -30.0, through: 30.0, by: 2.0))
        var best = 0.0, bestScore = score(0)
        for (degrees, s) in zip(coarse, scores(coarse)) where s > bestScore { bestScore = s; best = degrees }
        var refined = best
        let fine = Array(stride(from: best - 1.5, through: best + 1.5, by: 0.5))
        for (degrees, s) in zip(fine, scores(fine)) where s > bestScore { bestScore = s; refined = degrees }
        return refined * .pi / 180
    }

    /// The coordinate mapping for this frame.
    public var transform: HeadFrameTransform { HeadFrameTransform(centre: centre, pitch: pitch, yaw: yaw, roll: roll) }
}

/// Grid millimetres to head-frame millimetres and back.
public struct HeadFrameTransform: Sendable {
    let centre: SIMD3<Double>
    let cp: Double, sp: Double, cy: Double, sy: Double, cr: Double, sr: Double

    init(centre: SIMD3<Double>, pitch: Double, yaw: Double, roll: Double) {
        self.centre = centre
        cp = cos(pitch); sp = sin(pitch); cy = cos(yaw); sy = sin(yaw); cr = cos(roll); sr = sin(roll)
    }

    /// Head-frame coordinates (left-right, back-front, down-up) of a grid point.
    @inline(__always) public func toHead(_ p: SIMD3<Double>) -> SIMD3<Double> {
        let d = p - centre
        // undo yaw in the (y, x) plane, then pitch in the (y, z) plane
        let y1 = cy * d.y + sy * d.x, x1 = -sy * d.y + cy * d.x
        let y2 = cp * y1 + sp * d.z, z2 = -sp * y1 + cp * d.z
        // then roll in the (x, z) plane
        let x3 = cr * x1 - sr * z2, z3 = sr * x1 + cr * z2
        return SIMD3(x3, y2, z3)
    }

    /// Grid millimetres of a head-frame point (the inverse of `toHead`).
    @inline(__always) public func toGrid(_ h: SIMD3<Double>) -> SIMD3<Double> {
        let x1 = cr * h.x + sr * h.z, z2 = -sr * h.x + cr * h.z
        let y1 = cp * h.y - sp * z2, dz = sp * h.y + cp * z2
        let dy = cy * y1 - sy * x1, dx = sy * y1 + cy * x1
        return centre + SIMD3(dx, dy, dz)
    }
}
