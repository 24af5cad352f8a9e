import Foundation

/// nnU-Net v1's sliding-window inference (`SegmentationNetwork._internal_predict_3D_3Dconv_tiled`
/// with `_internal_maybe_mirror_and_pred_3D`), followed by `predict_cases`' fold average: the
/// input is zero-padded (centred) to at least the patch size, tiles are placed with
/// `_compute_steps_for_sliding_window`, each tile's softmax is averaged over the mirrorings
/// (each added with weight `1 / 2^mirrorAxes.count`, in nnU-Net's order) and multiplied by a
/// Gaussian importance map, tiles are summed and divided by the summed importance, the padding
/// is cut off, and the folds' results are averaged.
public enum SlidingWindow {
    /// Tile origins per axis (`_compute_steps_for_sliding_window`): as many tiles as a step of
    /// `stepSize * patch` needs, spread evenly, origins rounded half to even as `np.round` does.
    public static func steps(patch: [Int], image: [Int], stepSize: Double) -> [[Int]] {
        (0..<patch.count).map { axis in
            let target = Double(patch[axis]) * stepSize
            let count = Int((Double(image[axis] - patch[axis]) / target).rounded(.up)) + 1
            let maxStep = image[axis] - patch[axis]
            let actual = count > 1 ? Double(maxStep) / Double(count - 1) : 99_999_999_999
            return (0..<count).map { Int((actual * Double($0)).rounded(.toNearestOrEven)) }
        }
    }

    /// `_get_gaussian`: a Gaussian with sigma = `sigmaScale * patch` centred at `patch / 2`
    /// (scipy's `gaussian_filter` of a delta: truncated at 4 sigma), scaled to a maximum of 1,
    /// as float32, zeros replaced by the smallest nonzero value. Depth-major, width fastest.
    public static func gaussianImportance(patch: [Int], sigmaScale: Double = 1.0 / 8) -> [Float] {
        let profiles: [[Double]] = patch.map { size in
            let sigma = Double(size) * sigmaScale
            let radius = Int(4.0 * sigma + 0.5)
            let center = size / 2
            return (0..<size).map { i in
                let t = i - center
                return abs(t) > radius ? 0 : Foundation.exp(-0.5 * Double(t * t) / (sigma * sigma))
            }
        }
        var map = [Float](repeating: 0, count: patch.reduce(1, *))
        var i = 0
        for a in profiles[0] {
            for b in profiles[1] {
                for c in profiles[2] {
                    map[i] = Float(a * b * c)
                    i += 1
                }
            }
        }
        if let smallest = map.filter({ $0 != 0 }).min() {
            for j in map.indices where map[j] == 0 { map[j] = smallest }
        }
        return map
    }

    /// The mirrorings nnU-Net runs for `mirrorAxes`, in its order (none, W, H, WH, D, WD, HD,
    /// WHD), as sets of tensor axes (0 depth, 1 height, 2 width).
    public static func mirrorings(axes: [Int]) -> [Set<Int>] {
        let all: [Set<Int>] = [[], [2], [1], [1, 2], [0], [0, 2], [0, 1], [0, 1, 2]]
        return all.filter { $0.isSubset(of: Set(axes)) }
    }

    /// Class probabilities for `input` (channels x spatial, already preprocessed), averaged over
    /// `networks` (folds). `network(x)` must return softmax probabilities of `classes` channels.
    public static func predict(_ input: Tensor, patch: [Int], classes: Int, stepSize: Double = 0.5,
                               mirrorAxes: [Int] = [0, 1, 2], sigmaScale: Double = 1.0 / 8,
                               networks: [@Sendable (Tensor) -> Tensor]) -> Tensor {
        precondition(!networks.isEmpty, "sliding window needs at least one network")
        var sum: Tensor?
        for network in networks {
            let p = predictOne(input, patch: patch, classes: classes, stepSize: stepSize, mirrorAxes: mirrorAxes,
                               sigmaScale: sigmaScale, network: network)
            sum = sum.map { TensorOps.add($0, p) } ?? p
        }
        var mean = sum!
        if networks.count > 1 {
            let n = Float(networks.count)
            mean.data.withUnsafeMutableBufferPointer { p in
                for i in p.indices { p[i] /= n }
            }
        }
        return mean
    }

    /// One fold: `_internal_predict_3D_3Dconv_tiled` with Gaussian weighting.
    static func predictOne(_ input: Tensor, patch: [Int], classes: Int, stepSize: Double, mirrorAxes: [Int],
                           sigmaScale: Double, network: (Tensor) -> Tensor) -> Tensor {
        let size = [input.depth, input.height, input.width]
        // pad_nd_image: constant zeros, half below (rounded down), the rest above
        let padded = (0..<3).map { max(size[$0], patch[$0]) }
        let below = (0..<3).map { (padded[$0] - size[$0]) / 2 }
        let data = place(input, in: padded, at: below)
        let steps = steps(patch: patch, image: padded, stepSize: stepSize)
        let tiles = steps.reduce(1) { $0 * $1.count }
        let importance = tiles > 1 ? gaussianImportance(patch: patch, sigmaScale: sigmaScale)
                                   : [Float](repeating: 1, count: patch.reduce(1, *))
        let mirrorings = mirrorings(axes: mirrorAxes)
        let weight = 1 / Float(mirrorings.count)

        var aggregated = Tensor(channels: classes, depth: padded[0], height: padded[1], width: padded[2])
        var counts = [Float](repeating: 0, count: padded.reduce(1, *))
        for z in steps[0] {
            for y in steps[1] {
                for x in steps[2] {
                    let tile = cut(data, at: [z, y, x], size: patch)
                    var result = Tensor(channels: classes, depth: patch[0], height: patch[1], width: patch[2])
                    for axes in mirrorings {
                        let prediction = TensorOps.flip(network(TensorOps.flip(tile, axes: axes)), axes: axes)
                        precondition(prediction.shape == result.shape, "network output \(prediction.shape) for a patch \(patch)")
                        result.data.withUnsafeMutableBufferPointer { r in
                            prediction.data.withUnsafeBufferPointer { p in
                                for i in r.indices { r[i] += weight * p[i] }
                            }
                        }
                    }
                    if tiles > 1 {
                        let n = importance.count
                        result.data.withUnsafeMutableBufferPointer { r in
                            for c in 0..<classes {
                                for i in 0..<n { r[c * n + i] *= importance[i] }
                            }
                        }
                    }
                    accumulate(result, into: &aggregated, counts: &counts, weights: importance, at: [z, y, x])
                }
            }
        }
        // cut the padding off, then divide by the summed importance
        var out = cut(aggregated, at: below, size: size)
        let kept = cut(Tensor(channels: 1, depth: padded[0], height: padded[1], width: padded[2], data: counts),
                       at: below, size: size).data
        let n = kept.count
        out.data.withUnsafeMutableBufferPointer { o in
            for c in 0..<classes {
                for i in 0..<n { o[c * n + i] /= kept[i] }
            }
        }
        return out
    }

    /// `x` placed at `origin` in a zero tensor of spatial size `size`.
    static func place(_ x: Tensor, in size: [Int], at origin: [Int]) -> Tensor {
        if size == [x.depth, x.height, x.width] { return x }
        var out = Tensor(channels: x.channels, depth: size[0], height: size[1], width: size[2])
        for c in 0..<x.channels {
            for z in 0..<x.depth {
                for y in 0..<x.height {
                    let src = ((c * x.depth + z) * x.height + y) * x.width
                    let dst = ((c * size[0] + z + origin[0]) * size[1] + y + origin[1]) * size[2] + origin[2]
                    out.data.replaceSubrange(dst..<(dst + x.width), with: x.data[src..<(src + x.width)])
                }
            }
        }
        return out
    }

    /// The block of `x` of spatial size `size` starting at `origin`.
    static func cut(_ x: Tensor, at origin: [Int], size: [Int]) -> Tensor {
        if origin == [0, 0, 0] && size == [x.depth, x.height, x.width] { return x }
        var data = [Float]()
        data.reserveCapacity(x.channels * size.reduce(1, *))
        for c in 0..<x.channels {
            for z in 0..<size[0] {
                for y in 0..<size[1] {
                    let src = ((c * x.depth + z + origin[0]) * x.height + y + origin[1]) * x.width + origin[2]
                    data.append(contentsOf: x.data[src..<(src + size[2])])
                }
            }
        }
        return Tensor(channels: x.channels, depth: size[0], height: size[1], width: size[2], data: data)
    }

    /// Adds a tile's weighted prediction and its weights at `origin`.
    static func accumulate(_ tile: Tensor, into aggregated: inout Tensor, counts: inout [Float], weights: [Float], at origin: [Int]) {
        let (d, h, w) = (aggregated.depth, aggregated.height, aggregated.width)
        let n = tile.spatialCount
        tile.data.withUnsafeBufferPointer { t in
            aggregated.data.withUnsafeMutableBufferPointer { a in
                counts.withUnsafeMutableBufferPointer { k in
                    var i = 0
                    for z in 0..<tile.depth {
                        for y in 0..<tile.height {
                            let row = ((z + origin[0]) * h + y + origin[1]) * w + origin[2]
                            for x in 0..<tile.width {
                                for c in 0..<tile.channels { a[c * d * h * w + row + x] += t[c * n + i] }
                                k[row + x] += weights[i]
                                i += 1
                            }
                        }
                    }
                }
            }
        }
    }
}
