/// The face and ear regions before the guards, and what the guards let go.
struct Regions {
    var face: [UInt8]
    var ears: [UInt8]
    /// The face's second condition (`FaceBudget`, 1 = allowed); set before `remove`.
    var faceBudget: [UInt8] = []

    /// Voxels removed and the counts the report gives. A voxel goes when it lies further than
    /// `margin` from the guarded brain (`distance`: HD-BET above 5%); a face voxel must also lie
    /// within the face budget; an ear voxel (already
    /// confined to the outside of the head's smooth outline and a thin layer under it) must also
    /// lie further than `earLimit` from the network's brain itself (`brainDistance`: above 50%).
    func remove(head: [UInt8], brain: [UInt8], distance: [Float], brainDistance: [Float],
                margin: Float, earLimit: Float) -> Removal {
        var r = Removal(removed: [UInt8](repeating: 0, count: head.count))
        for i in head.indices {
            if head[i] != 0 { r.headCount += 1 }
            guard distance[i] > margin else { continue }
            if face[i] != 0, faceBudget[i] == 0, head[i] != 0 { r.heldByBudget += 1 }
            let isFace = face[i] != 0 && faceBudget[i] != 0
            let isEar = ears[i] != 0 && brainDistance[i] > earLimit
            guard isFace || isEar else { continue }
            r.removed[i] = 1
            r.count += 1
            if brain[i] != 0 { r.touched += 1 }
            guard head[i] != 0 else { continue }
            r.headRemoved += 1
            r.minDistance = min(r.minDistance, distance[i])
            if isFace { r.faceCount += 1 } else { r.earCount += 1 }
        }
        return r
    }
}

/// The removed voxels (RAS+ order) and their counts.
struct Removal {
    var removed: [UInt8]
    var count = 0, headCount = 0, headRemoved = 0, faceCount = 0, earCount = 0, touched = 0
    /// Head voxels of the face region that the HD-BET guard let go but the face budget kept.
    var heldByBudget = 0
    /// Smallest distance (mm) from a removed head voxel to the guarded brain.
    var minDistance = Float.infinity
}

/// Evaluation only: makes HD-BET's brain miss the underside of the temporal lobes, as the
/// network does on some heads, so that the evaluation shows what the second condition holds.
enum SimulatedBrainMiss {
    /// Takes `millimetres` off the brain mask (and its probability) below the brain's middle
    /// and beside its central fifth, on both sides.
    static func apply(to brain: inout BrainMask, millimetres: Double, spacing: [Double], frame: HeadFrame) {
        let grid = brain.grid, t = frame.transform, size = frame.brainSize
        let outside = brain.mask.map { $0 == 0 ? UInt8(1) : 0 }
        let depth = DistanceTransform.distance(to: outside, grid: grid, spacing: spacing)
        FaceRegion.forEachVoxel(grid, spacing) { i, p in
            let h = t.toHead(p)
            guard h.z < -0.05 * size.z, abs(h.x) > 0.2 * size.x, h.y < 0.3 * size.y,
                  Double(depth[i]) <= millimetres else { return }
            brain.mask[i] = 0
            brain.probability[i] = 0
        }
    }
}
