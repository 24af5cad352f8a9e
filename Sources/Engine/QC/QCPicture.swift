/// The picture a reviewer checks a defaced scan with: surface renderings of the head from
/// the front and from the side, before and after, and a mid-sagittal slice with the removed
/// region in red and the brain in green. One pixel per millimetre.
public enum QCPicture {
    /// PNG bytes of the five panels side by side.
    public static func render(values: [Float], head: [UInt8], removed: [UInt8], brain: [UInt8],
                              grid: Grid3D, spacing: [Double], sagittalX: Int) -> [UInt8] {
        let after = zip(head, removed).map { $0 != 0 && $1 == 0 ? UInt8(1) : 0 }
        let panels = [
            surface(head, grid: grid, spacing: spacing, view: .front),
            surface(after, grid: grid, spacing: spacing, view: .front),
            surface(head, grid: grid, spacing: spacing, view: .side),
            surface(after, grid: grid, spacing: spacing, view: .side),
            slice(values: values, removed: removed, brain: brain, grid: grid, spacing: spacing, x: sagittalX),
        ]
        let gap = 6
        let height = panels.map(\.height).max()!
        let width = panels.reduce(0) { $0 + $1.width } + gap * (panels.count - 1)
        var rgb = [UInt8](repeating: 24, count: width * height * 3)
        var x0 = 0
        for p in panels {
            for y in 0..<p.height {
                for x in 0..<p.width {
                    let d = ((y + height - p.height) * width + x0 + x) * 3
                    let s = (y * p.width + x) * 3
                    rgb[d] = p.rgb[s]; rgb[d + 1] = p.rgb[s + 1]; rgb[d + 2] = p.rgb[s + 2]
                }
            }
            x0 += p.width + gap
        }
        return PNGEncoder.encode(width: width, height: height, rgb: rgb)
    }

    struct Panel { var width: Int, height: Int, rgb: [UInt8] }
    enum View { case front, side }

    /// Depth-shaded surface of a mask seen from the front (looking backwards, the patient's
    /// right on the left) or from the patient's right side (face to the right).
    static func surface(_ mask: [UInt8], grid: Grid3D, spacing: [Double], view: View) -> Panel {
        let across = view == .front ? 0 : 1       // grid axis along the picture's width
        let depthAxis = view == .front ? 1 : 0    // grid axis we look along
        let extent = { (axis: Int) in Double(grid.shape[axis]) * spacing[axis] }
        let width = max(1, Int(extent(across))), height = max(1, Int(extent(2)))
        var depth = [Double](repeating: .nan, count: width * height)
        for py in 0..<height {
            let z = min(grid.nz - 1, Int(Double(height - 1 - py) / spacing[2]))
            for px in 0..<width {
                let a = min(grid.shape[across] - 1, Int(Double(view == .front ? width - 1 - px : px) / spacing[across]))
                // march from the viewer's side: +y for the front, +x (patient's right) for the side
                var d = grid.shape[depthAxis] - 1
                while d >= 0 {
                    let index = view == .front ? grid.index(a, d, z) : grid.index(d, a, z)
                    if mask[index] != 0 { break }
                    d -= 1
                }
                if d >= 0 { depth[py * width + px] = Double(d) * spacing[depthAxis] }
            }
        }
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        for py in 0..<height {
            for px in 0..<width {
                let here = depth[py * width + px]
                guard !here.isNaN else { continue }
                func at(_ x: Int, _ y: Int) -> Double {
                    guard x >= 0, y >= 0, x < width, y < height else { return here }
                    let v = depth[y * width + x]
                    return v.isNaN ? here - 4 : v
                }
                let gx = (at(px + 1, py) - at(px - 1, py)) / 2, gy = (at(px, py + 1) - at(px, py - 1)) / 2
                let shade = 1 / (1 + gx * gx + gy * gy).squareRoot()
                let v = UInt8(max(0, min(255, 40 + 215 * shade)))
                let i = (py * width + px) * 3
                rgb[i] = v; rgb[i + 1] = v; rgb[i + 2] = UInt8(Double(v) * 0.92)
            }
        }
        return Panel(width: width, height: height, rgb: rgb)
    }

    /// A sagittal slice (face to the right): grey values, removed voxels red, brain green.
    static func slice(values: [Float], removed: [UInt8], brain: [UInt8], grid: Grid3D, spacing: [Double], x: Int) -> Panel {
        let width = max(1, Int(Double(grid.ny) * spacing[1])), height = max(1, Int(Double(grid.nz) * spacing[2]))
        var sample: [Float] = []
        for z in stride(from: 0, to: grid.nz, by: 2) {
            for y in stride(from: 0, to: grid.ny, by: 2) { sample.append(values[grid.index(x, y, z)]) }
        }
        sample.sort()
        let top = max(sample.isEmpty ? 1 : sample[sample.count * 99 / 100], 1e-6)
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        for py in 0..<height {
            let z = min(grid.nz - 1, Int(Double(height - 1 - py) / spacing[2]))
            for px in 0..<width {
                let y = min(grid.ny - 1, Int(Double(px) / spacing[1]))
                let index = grid.index(x, y, z)
                let g = Double(max(0, min(1, values[index] / top))) * 255
                var (r, gr, b) = (g, g, g)
                if removed[index] != 0 { (r, gr, b) = (0.5 * g + 127, 0.5 * g, 0.5 * g) }
                else if brain[index] != 0 { (r, gr, b) = (0.75 * g, 0.75 * g + 50, 0.75 * g) }
                let i = (py * width + px) * 3
                rgb[i] = UInt8(min(255, r)); rgb[i + 1] = UInt8(min(255, gr)); rgb[i + 2] = UInt8(min(255, b))
            }
        }
        return Panel(width: width, height: height, rgb: rgb)
    }
}
