/// Exact Euclidean distances on a voxel grid with any voxel size (Felzenszwalb and
/// Huttenlocher's separable lower-envelope method), in millimetres.
public enum DistanceTransform {
    /// For every voxel, the distance to the nearest voxel where `mask` is nonzero (0 there).
    public static func distance(to mask: [UInt8], grid: Grid3D, spacing: [Double]) -> [Float] {
        let big = Float(1e20)
        var d = mask.map { $0 != 0 ? Float(0) : big }
        let sizes = [grid.nx, grid.ny, grid.nz]
        let strides = [1, grid.nx, grid.nx * grid.ny]
        for axis in 0..<3 {
            let n = sizes[axis], stride = strides[axis]
            let w = Float(spacing[axis] * spacing[axis])
            var f = [Float](repeating: 0, count: n), out = f
            var v = [Int](repeating: 0, count: n), z = [Float](repeating: 0, count: n + 1)
            let others = (0..<3).filter { $0 != axis }
            for b in 0..<sizes[others[1]] {
                for a in 0..<sizes[others[0]] {
                    let base = a * strides[others[0]] + b * strides[others[1]]
                    for i in 0..<n { f[i] = d[base + i * stride] }
                    envelope(f, n: n, w: w, v: &v, z: &z, out: &out)
                    for i in 0..<n { d[base + i * stride] = out[i] }
                }
            }
        }
        for i in d.indices { d[i] = d[i].squareRoot() }
        return d
    }

    /// 1D squared distance transform of `f` with squared step `w`.
    private static func envelope(_ f: [Float], n: Int, w: Float, v: inout [Int], z: inout [Float], out: inout [Float]) {
        let inf = Float.infinity
        var k = -1
        for q in 0..<n where f[q] < 1e19 {
            if k < 0 {
                k = 0; v[0] = q; z[0] = -inf; z[1] = inf
                continue
            }
            var s: Float
            while true {
                let p = v[k]
                s = ((f[q] + w * Float(q * q)) - (f[p] + w * Float(p * p))) / (2 * w * Float(q - p))
                if s <= z[k] {
                    k -= 1
                    if k < 0 { break }
                } else { break }
            }
            k += 1
            v[k] = q
            z[k] = k == 0 ? -inf : s
            z[k + 1] = inf
        }
        if k < 0 {
            for q in 0..<n { out[q] = f[q] }
            return
        }
        var j = 0
        for q in 0..<n {
            while z[j + 1] < Float(q) { j += 1 }
            let p = v[j]
            let dq = Float(q - p)
            out[q] = w * dq * dq + f[p]
        }
    }
}
