import Foundation

/// The picture a reviewer checks a defaced scan with, made only of what is shared: surface
/// renderings of the DEFACED head from the front, the patient's right and the front-right
/// three-quarter view, a mid-sagittal slice of the defaced image with the brain outlined in
/// green and the removed region a solid colour, and one line of figures. Nothing in it is
/// drawn from original voxels that were removed. One pixel per millimetre.
public enum QCPicture {
    /// The solid colour of removed voxels in the slice panel.
    public static let removedColour: (UInt8, UInt8, UInt8) = (200, 30, 160)
    /// The colour of the brain's outline in the slice panel.
    static let brainColour: (UInt8, UInt8, UInt8) = (40, 220, 60)
    static let background: UInt8 = 24
    static let gap = 6, captionHeight = 16

    /// An RGB picture and where each panel lies in it.
    public struct Composed: Sendable {
        public var width: Int, height: Int
        /// `width * height * 3` bytes, rows top to bottom.
        public var rgb: [UInt8]
        /// Panels in order front, side, three-quarter, slice: (x, y, width, height).
        public var panels: [(x: Int, y: Int, width: Int, height: Int)]
    }

    /// PNG bytes of the picture (see `compose`).
    public static func render(values: [Float], head: [UInt8], removed: [UInt8], brain: [UInt8],
                              grid: Grid3D, spacing: [Double], sagittalX: Int, caption: String,
                              threads: Int = EngineThreads.available) -> [UInt8] {
        let c = compose(values: values, head: head, removed: removed, brain: brain, grid: grid,
                        spacing: spacing, sagittalX: sagittalX, caption: caption, threads: threads)
        return PNGEncoder.encode(width: c.width, height: c.height, rgb: c.rgb)
    }

    /// The panels side by side with the caption below them. `head` is the original head; only
    /// what is left of it after removal is rendered.
    public static func compose(values: [Float], head: [UInt8], removed: [UInt8], brain: [UInt8],
                               grid: Grid3D, spacing: [Double], sagittalX: Int, caption: String,
                               threads: Int = EngineThreads.available) -> Composed {
        let after = zip(head, removed).map { $0 != 0 && $1 == 0 ? UInt8(1) : 0 }
        let panels = [
            surface(after, grid: grid, spacing: spacing, degrees: 0, threads: threads),
            surface(after, grid: grid, spacing: spacing, degrees: 90, threads: threads),
            surface(after, grid: grid, spacing: spacing, degrees: 45, threads: threads),
            slice(values: values, removed: removed, brain: brain, grid: grid, spacing: spacing, x: sagittalX),
        ]
        let panelHeight = panels.map(\.height).max()!
        let width = max(panels.reduce(0) { $0 + $1.width } + gap * (panels.count - 1), QCFont.width(of: caption) + 8)
        let height = panelHeight + captionHeight
        var rgb = [UInt8](repeating: background, count: width * height * 3)
        var x0 = 0
        var placed: [(x: Int, y: Int, width: Int, height: Int)] = []
        for p in panels {
            let y0 = panelHeight - p.height
            for y in 0..<p.height {
                let d = ((y + y0) * width + x0) * 3, s = y * p.width * 3
                rgb.replaceSubrange(d..<(d + p.width * 3), with: p.rgb[s..<(s + p.width * 3)])
            }
            placed.append((x0, y0, p.width, p.height))
            x0 += p.width + gap
        }
        QCFont.draw(caption, into: &rgb, width: width, x0: 4, y0: panelHeight + 3, colour: (235, 235, 235))
        return Composed(width: width, height: height, rgb: rgb, panels: placed)
    }

    struct Panel { var width: Int, height: Int, rgb: [UInt8] }

    /// Grey shading from the depth map's slopes (nearer surfaces facing the viewer are brighter).
    static func shaded(_ depth: [Double], width: Int, height: Int) -> Panel {
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

    /// A sagittal slice of the defaced image (face to the right): grey values, removed voxels
    /// in the solid removed colour (never their original value), the brain's outline in green.
    static func slice(values: [Float], removed: [UInt8], brain: [UInt8], grid: Grid3D, spacing: [Double], x: Int) -> Panel {
        let width = max(1, Int(Double(grid.ny) * spacing[1])), height = max(1, Int(Double(grid.nz) * spacing[2]))
        var sample: [Float] = []
        for z in stride(from: 0, to: grid.nz, by: 2) {
            for y in stride(from: 0, to: grid.ny, by: 2) where removed[grid.index(x, y, z)] == 0 {
                sample.append(values[grid.index(x, y, z)])
            }
        }
        sample.sort()
        let top = max(sample.isEmpty ? 1 : sample[sample.count * 99 / 100], 1e-6)
        func voxel(_ px: Int, _ py: Int) -> Int {
            let z = min(grid.nz - 1, Int(Double(height - 1 - py) / spacing[2]))
            return grid.index(x, min(grid.ny - 1, Int(Double(px) / spacing[1])), z)
        }
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        for py in 0..<height {
            for px in 0..<width {
                let index = voxel(px, py), i = (py * width + px) * 3
                var colour: (UInt8, UInt8, UInt8)
                if removed[index] != 0 {
                    colour = removedColour
                } else {
                    let g = UInt8(max(0, min(1, values[index] / top)) * 255)
                    colour = (g, g, g)
                    if brain[index] != 0, [(-1, 0), (1, 0), (0, -1), (0, 1)].contains(where: { dx, dy in
                        let qx = px + dx, qy = py + dy
                        return qx < 0 || qy < 0 || qx >= width || qy >= height || brain[voxel(qx, qy)] == 0
                    }) { colour = brainColour }
                }
                rgb[i] = colour.0; rgb[i + 1] = colour.1; rgb[i + 2] = colour.2
            }
        }
        return Panel(width: width, height: height, rgb: rgb)
    }
}
