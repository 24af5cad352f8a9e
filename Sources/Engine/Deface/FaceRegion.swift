/// The face: everything in front of the brain's centre and below the surface that follows
/// the brain's underside, worked out in the head's own frame so that it adapts to head size,
/// proportions and tilt. In front of the brain the surface continues at the height of the
/// frontal lobe's underside, so eyes, nose, mouth and chin fall below it and the forehead
/// above the brows stays.
public enum FaceRegion {
    /// Side of the square cells of the underside map (mm).
    static let cell = 2.0
    /// Clearance kept below the brain's underside (mm), on top of the margin guard: the
    /// olfactory tracts and gyri recti sit lowest between the orbits, and a brain mask's
    /// underside is its least certain edge (at Colin27's orbital apex HD-BET stops 2-3 mm short
    /// of the reference brain). Over the eyes (from 0.40 to 0.46 of the brain's length in front
    /// of its centre; Colin27's eyes: 0.47) it may narrow to `eyeClearance`; measured, a 2 mm
    /// clearance there left removed tissue 1.0 mm from Colin27's reference brain on a grid
    /// oblique by 20 degrees, so it stays 5 mm until a second signal (the orbital roof) can
    /// confirm a thinner one.
    static let clearance = 5.0, eyeClearance = 5.0
    /// Extra clearance under the brain along the midline, where the olfactory bulbs lie on the
    /// cribriform plate below the gyri recti (brain masks such as HD-BET's leave them out).
    static let olfactoryClearance = 4.0

    /// Voxels to remove for the face (1 = face; tissue and the air around it alike), before the
    /// brain guard is applied. The region begins `start` (a fraction of the brain's front-back
    /// length) in front of the brain's centre, clear of the temporal lobes and the brainstem.
    public static func compute(brain: [UInt8], grid: Grid3D, spacing: [Double],
                               frame: HeadFrame, start: Double = 0.30, threads: Int = EngineThreads.available) -> [UInt8] {
        let t = frame.transform
        let half = 160.0
        let n = Int(2 * half / cell)
        func cellIndex(_ h: SIMD3<Double>) -> Int? {
            let u = Int((h.x + half) / cell), v = Int((h.y + half) / cell)
            guard u >= 0, v >= 0, u < n, v < n else { return nil }
            return v * n + u
        }
        // lowest brain point per (left-right, front-back) cell
        let partials = ParallelSlices.reduce(grid.nz, threads: threads, initial: [Double](repeating: .infinity, count: n * n)) { z, bottom in
            forEachVoxel(inSlice: z, grid, spacing) { index, p in
                guard brain[index] != 0 else { return }
                let h = t.toHead(p)
                if let c = cellIndex(h), h.z < bottom[c] { bottom[c] = h.z }
            }
        }
        var bottom = partials[0]
        for partial in partials.dropFirst() {
            for c in bottom.indices { bottom[c] = min(bottom[c], partial[c]) }
        }
        let footprint = bottom.map { $0.isFinite }
        // forwards beyond the brain: the highest underside of the front 10 mm of each row
        let front = Int(10 / cell)
        for u in 0..<n {
            var lastBrainV = -1
            for v in 0..<n where footprint[v * n + u] { lastBrainV = v }
            guard lastBrainV >= 0 else { continue }
            var level = -Double.infinity
            for v in max(0, lastBrainV - front + 1)...lastBrainV where footprint[v * n + u] {
                level = max(level, bottom[v * n + u])
            }
            for v in (lastBrainV + 1)..<n { bottom[v * n + u] = level }
        }
        // sideways beyond the brain: carry each row's outermost value outwards
        for v in 0..<n {
            let filled = (0..<n).filter { bottom[v * n + $0].isFinite }
            guard let first = filled.first, let last = filled.last else { continue }
            for u in 0..<first { bottom[v * n + u] = bottom[v * n + first] }
            for u in (last + 1)..<n { bottom[v * n + u] = bottom[v * n + last] }
        }
        let limit = start * frame.brainSize.y
        // only grid voxels that can lie in front of `limit` can be face
        let inFront = VoxelBox.covering(headLow: SIMD3(-.infinity, limit, -.infinity), headHigh: SIMD3(repeating: .infinity),
                                        frame: t, grid: grid, spacing: spacing)
        return voxelMask(grid, spacing, box: inFront, threads: threads) { _, p in
            let h = t.toHead(p)
            guard h.y > limit, let c = cellIndex(h) else { return false }
            let midline = footprint[c] ? max(0, min(1, (0.12 - abs(h.x) / frame.brainSize.x) / 0.06)) : 0
            let overEyes = max(0, min(1, (h.y / frame.brainSize.y - 0.40) / 0.06))
            let lateral = clearance - (clearance - eyeClearance) * overEyes
            return h.z < bottom[c] - lateral - olfactoryClearance * midline
        }
    }

    /// Calls `body` with each voxel's index and grid-millimetre position.
    static func forEachVoxel(_ grid: Grid3D, _ spacing: [Double], _ body: (Int, SIMD3<Double>) -> Void) {
        for z in 0..<grid.nz { forEachVoxel(inSlice: z, grid, spacing, body) }
    }

    /// `forEachVoxel` over the axial slice `z` only (within `box`'s rows and columns when given).
    @inline(__always)
    static func forEachVoxel(inSlice z: Int, _ grid: Grid3D, _ spacing: [Double], box: VoxelBox? = nil,
                             _ body: (Int, SIMD3<Double>) -> Void) {
        let box = box ?? .whole(grid)
        guard !box.isEmpty else { return }
        for y in box.lower.y..<box.upper.y {
            var index = (z * grid.ny + y) * grid.nx + box.lower.x
            for x in box.lower.x..<box.upper.x {
                body(index, SIMD3(Double(x) * spacing[0], Double(y) * spacing[1], Double(z) * spacing[2]))
                index += 1
            }
        }
    }

    /// A mask (1 where `test` holds) made slice by slice on `threads` workers; `test` sees one
    /// voxel's index and grid-millimetre position at a time and must only read shared data.
    /// With `box`, only the voxels in it are tested (the others are 0).
    static func voxelMask(_ grid: Grid3D, _ spacing: [Double], box: VoxelBox? = nil, threads: Int,
                          _ test: (Int, SIMD3<Double>) -> Bool) -> [UInt8] {
        var mask = [UInt8](repeating: 0, count: grid.count)
        let box = box ?? .whole(grid)
        guard !box.isEmpty else { return mask }
        mask.withUnsafeMutableBufferPointer { buffer in
            let out = UnsafeShared(buffer.baseAddress!)
            ParallelSlices.forEach(box.upper.z - box.lower.z, threads: threads) { slice in
                forEachVoxel(inSlice: box.lower.z + slice, grid, spacing, box: box) { index, p in
                    if test(index, p) { out.pointer[index] = 1 }
                }
            }
        }
        return mask
    }
}
