/// The head (everything that is not air) found from the image itself: a threshold from the
/// intensity histogram, the largest connected part, and enclosed holes filled.
public enum HeadMask {
    /// A head mask (1 = head) for RAS+ ordered values.
    public static func compute(_ values: [Float], grid: Grid3D, threads: Int = EngineThreads.available) -> [UInt8] {
        let threshold = self.threshold(values)
        var mask = values.map { $0 > threshold ? UInt8(1) : 0 }
        mask = ConnectedComponents.largest(mask, grid: grid, connectivity: .faces)
        mask = fillHoles(mask, grid: grid)
        return fillAxialSlices(mask, grid: grid, threads: threads)
    }

    /// Half of Otsu's threshold between the 1st and 99.5th percentiles of the nonzero
    /// values: low enough for dim skin on T2w and FLAIR, high enough for background noise.
    public static func threshold(_ values: [Float]) -> Float {
        var sample = [Float]()
        let step = max(1, values.count / 400_000)
        var i = 0
        while i < values.count {
            if values[i] != 0 && values[i].isFinite { sample.append(values[i]) }
            i += step
        }
        guard sample.count > 100 else { return 0 }
        sample.sort()
        let lo = sample[sample.count / 100], hi = sample[sample.count * 995 / 1000]
        guard hi > lo else { return lo }
        let bins = 256
        var histogram = [Double](repeating: 0, count: bins)
        for v in sample {
            let b = min(bins - 1, max(0, Int(Float(bins) * (v - lo) / (hi - lo))))
            histogram[b] += 1
        }
        let total = histogram.reduce(0, +)
        let weighted = histogram.enumerated().reduce(0.0) { $0 + Double($1.offset) * $1.element }
        var best = 0, bestVariance = -1.0, w0 = 0.0, s0 = 0.0
        for t in 0..<bins {
            w0 += histogram[t]
            s0 += Double(t) * histogram[t]
            let w1 = total - w0
            guard w0 > 0, w1 > 0 else { continue }
            let m0 = s0 / w0, m1 = (weighted - s0) / w1
            let between = w0 * w1 * (m0 - m1) * (m0 - m1)
            if between > bestVariance { bestVariance = between; best = t }
        }
        let otsu = lo + (hi - lo) * (Float(best) + 0.5) / Float(bins)
        return max(lo, otsu * 0.5)
    }

    /// Fills, slice by axial slice, the background enclosed by the scalp: where the field of
    /// view cuts the head open (below the nose, say), dark skull, air sinuses and CSF reach
    /// the open end in 3D and would otherwise stay outside the head. Slices are filled in
    /// parallel, each on its own.
    public static func fillAxialSlices(_ mask: [UInt8], grid: Grid3D, threads: Int = EngineThreads.available) -> [UInt8] {
        var out = mask
        let plane = Grid3D(grid.nx, grid.ny, 1)
        out.withUnsafeMutableBufferPointer { buffer in
            let o = UnsafeShared(buffer.baseAddress!)
            ParallelSlices.forEach(grid.nz, threads: threads) { z in
                let slice = Array(mask[(z * plane.count)..<((z + 1) * plane.count)])
                guard slice.contains(1) else { return }
                let filled = fillHoles(slice, grid: plane)
                for i in 0..<plane.count where filled[i] != 0 { o.pointer[z * plane.count + i] = 1 }
            }
        }
        return out
    }

    /// Fills every background part that does not reach the edge of the grid.
    public static func fillHoles(_ mask: [UInt8], grid: Grid3D) -> [UInt8] {
        ConnectedComponents.fillHoles(mask, grid: grid)
    }
}
