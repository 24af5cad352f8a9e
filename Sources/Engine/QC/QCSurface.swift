import Foundation

extension QCPicture {
    /// Depth-shaded surface of a mask seen from `degrees` around the vertical axis: 0 = from
    /// the front (the patient's right on the left), 90 = from the patient's right (face to the
    /// right), 45 = from the front-right. Each pixel's ray is marched from the near side in
    /// 0.7 mm steps until it meets the mask; the steps outside the slice's bounding rectangle
    /// of the mask are skipped (the mask is empty there), the others taken as before; picture
    /// rows are split over workers.
    static func surface(_ mask: [UInt8], grid: Grid3D, spacing: [Double], degrees: Double,
                        threads: Int = EngineThreads.available) -> Panel {
        let a = degrees * .pi / 180
        let view = SIMD2(sin(a), cos(a)), right = SIMD2(-cos(a), sin(a))
        let size = SIMD2(Double(grid.nx) * spacing[0], Double(grid.ny) * spacing[1])
        let centre = size / 2, reach = (size * size).sum().squareRoot() / 2
        let width = max(1, Int(2 * reach)), height = max(1, Int(Double(grid.nz) * spacing[2]))
        // the march's positions along the ray, accumulated exactly as the march takes them
        var steps: [Double] = []
        var position = reach
        while position > -reach {
            steps.append(position)
            position -= 0.7
        }
        let boxes = sliceBoxes(mask, grid: grid, spacing: spacing, threads: threads)
        var depth = [Double](repeating: .nan, count: width * height)
        depth.withUnsafeMutableBufferPointer { buffer in
            let out = UnsafeShared(buffer.baseAddress!)
            ParallelSlices.forEach(height, threads: threads) { py in
                let z = min(grid.nz - 1, Int(Double(height - 1 - py) / spacing[2]))
                guard let box = boxes[z] else { return }
                for px in 0..<width {
                    let across = centre + (Double(px) - reach) * right
                    let range = stepRange(through: box, from: across, along: view, reach: reach, steps: steps.count)
                    for k in range {
                        let t = steps[k], p = across + t * view
                        let i = Int(p.x / spacing[0]), j = Int(p.y / spacing[1])
                        if p.x >= 0, p.y >= 0, i < grid.nx, j < grid.ny, mask[grid.index(i, j, z)] != 0 {
                            out.pointer[py * width + px] = t
                            break
                        }
                    }
                }
            }
        }
        return shaded(depth, width: width, height: height)
    }

    /// Each axial slice's bounding rectangle of the mask in millimetres (lower corner, upper
    /// corner), nil for an empty slice.
    static func sliceBoxes(_ mask: [UInt8], grid: Grid3D, spacing: [Double],
                           threads: Int = EngineThreads.available) -> [(SIMD2<Double>, SIMD2<Double>)?] {
        let found = VoxelBox.slices(around: mask, grid: grid, threads: threads)
        return found.map { box in
            box.isEmpty ? nil : (SIMD2(Double(box.lower.x) * spacing[0], Double(box.lower.y) * spacing[1]),
                                 SIMD2(Double(box.upper.x) * spacing[0], Double(box.upper.y) * spacing[1]))
        }
    }

    /// The steps (indices into the march's positions `reach - 0.7 k`) whose points may fall in
    /// `box`, with two steps and a millimetre to spare on either side.
    static func stepRange(through box: (SIMD2<Double>, SIMD2<Double>), from across: SIMD2<Double>, along view: SIMD2<Double>,
                          reach: Double, steps: Int) -> Range<Int> {
        var tLo = -Double.infinity, tHi = Double.infinity
        for axis in 0..<2 {
            let lo = box.0[axis] - 1, hi = box.1[axis] + 1
            if abs(view[axis]) < 1e-9 {
                if across[axis] < lo || across[axis] > hi { return 0..<0 }
                continue
            }
            let t0 = (lo - across[axis]) / view[axis], t1 = (hi - across[axis]) / view[axis]
            tLo = max(tLo, min(t0, t1))
            tHi = min(tHi, max(t0, t1))
        }
        guard tLo <= tHi else { return 0..<0 }
        let first = tHi.isFinite ? max(0, Int(((reach - tHi) / 0.7).rounded(.down)) - 2) : 0
        let last = tLo.isFinite ? min(steps, Int(((reach - tLo) / 0.7).rounded(.up)) + 3) : steps
        return first < last ? first..<last : 0..<0
    }
}
