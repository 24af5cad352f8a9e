/// Where the brain reaches a face of the image volume it is taken to continue past it: a
/// network's probability fades in the last slices, so a brain cut by the field of view ends a
/// few voxels short of the edge in its mask. Each line of voxels running into a face of the
/// volume is filled from the face up to the brain when the brain comes within `reach` of
/// that face along the line, so no voxel beside a cut-off brain looks far from it.
public enum FieldOfViewEdges {
    /// The six faces, named as they are in the report.
    static let faceNames = ["right", "left", "front", "back", "top", "bottom"]

    /// The extended brain mask (RAS+ order) and the faces (e.g. "bottom") the brain reached.
    public static func extend(_ brain: [UInt8], grid: Grid3D, spacing: [Double], reach: Double) -> (mask: [UInt8], faces: [String]) {
        var out = brain
        var touched = Set<String>()
        let shape = grid.shape, strides = [1, grid.nx, grid.nx * grid.ny]
        for axis in 0..<3 {
            let steps = max(1, Int((reach / spacing[axis]).rounded(.up)))
            let others = (0..<3).filter { $0 != axis }
            for fromHighEnd in [true, false] {
                let name = faceNames[axis * 2 + (fromHighEnd ? 0 : 1)]
                for b in 0..<shape[others[1]] {
                    for a in 0..<shape[others[0]] {
                        let base = a * strides[others[0]] + b * strides[others[1]]
                        for s in 0..<min(steps, shape[axis]) {
                            let k = fromHighEnd ? shape[axis] - 1 - s : s
                            guard brain[base + k * strides[axis]] != 0 else { continue }
                            for f in 0...s {
                                out[base + (fromHighEnd ? shape[axis] - 1 - f : f) * strides[axis]] = 1
                            }
                            touched.insert(name)
                            break
                        }
                    }
                }
            }
        }
        return (out, faceNames.filter { touched.contains($0) })
    }
}
