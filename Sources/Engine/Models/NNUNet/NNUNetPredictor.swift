import Foundation

/// Runs a converted nnU-Net v1 3d_fullres model (`tools/defacer_tools/convert_nnunet.py`): class
/// probabilities for a preprocessed input, or a whole segmentation of a scan with nnU-Net's own
/// preprocessing and export.
///
/// `segment(volume:)` follows nnU-Net's `predict_cases`: the stored voxel array in SimpleITK's
/// (z, y, x) order, cropped to the bounding box of its nonzero voxels (holes of the nonzero mask
/// filled), transposed by `transpose_forward`, resampled to the plan's spacing, normalised per
/// channel, predicted with ``SlidingWindow``, transposed back, resampled to the cropped grid,
/// argmax, and zero (background) outside the box. One deviation: every resampling here is
/// trilinear (``Resample/linear(_:from:to:threads:)``, skimage `resize` order 1). nnU-Net resamples the
/// image with third-order splines (and, when the spacing is more than 3x anisotropic, in-plane
/// only with nearest neighbour along the thick axis); the probabilities back with order 1 (also
/// nearest along a thick axis). When the scan's spacing already rounds to the plan's grid
/// nothing is resampled, and the result is nnU-Net's.
public struct NNUNetPredictor: Sendable {
    /// The model's plan; its preprocessing fields may be changed before `segment`.
    public var plan: NNUNetPlan
    /// One network per fold.
    public let networks: [NNUNetNetwork]
    /// The converted model folder it was loaded from.
    public let modelFolder: String

    /// Loads `model.json` and the folds (the first `foldLimit` of them when given) from a
    /// converted model folder.
    public init(modelFolder: String, foldLimit: Int? = nil) throws(ModelError) {
        let plan = try NNUNetPlan(path: modelFolder + "/model.json")
        var networks: [NNUNetNetwork] = []
        for file in plan.folds.prefix(foldLimit ?? plan.folds.count) {
            let weights = WeightReader(try Safetensors(path: modelFolder + "/" + file))
            networks.append(try NNUNetNetwork(weights: weights, plan: plan))
        }
        self.plan = plan
        self.networks = networks
        self.modelFolder = modelFolder
    }

    /// Class probabilities (`classes` channels) for a preprocessed input: normalised, at the
    /// plan's spacing, in the plan's axis order; folds averaged, mirrored along the plan's
    /// mirror axes unless `mirroring` is false.
    public func predict(_ input: Tensor, mirroring: Bool = true) -> Tensor {
        precondition(input.channels == plan.inputChannels, "the model expects \(plan.inputChannels) input channels")
        return SlidingWindow.predict(input, patch: plan.patchSize, classes: plan.classes, stepSize: plan.stepSize,
                                     mirrorAxes: mirroring ? plan.mirrorAxes : [], sigmaScale: plan.gaussianSigmaScale,
                                     networks: networks.map { network in { network($0) } })
    }

    /// Segments one volume of a single-channel scan; labels are on the scan's own voxel grid.
    public func segment(volume: NiftiVolume, volumeIndex: Int = 0, mirroring: Bool = true) throws(ModelError) -> NNUNetSegmentation {
        guard plan.inputChannels == 1 else {
            throw ModelError(.unsupportedArchitecture("\(NNUNetPlan.architecture) with \(plan.inputChannels) input channels (defacer gives it one scan)"),
                             path: modelFolder + "/model.json")
        }
        let shape = volume.shape
        let spacing = volume.header.voxelSize.map { abs($0) }
        return segment(values: volume.floatValues(volume: volumeIndex), grid: Grid3D(shape), spacing: spacing, mirroring: mirroring)
    }

    /// Segments values in stored voxel order (x fastest) on `grid` with voxel sizes `spacing`
    /// (x, y, z, mm).
    public func segment(values: [Float], grid: Grid3D, spacing: [Double], mirroring: Bool = true) -> NNUNetSegmentation {
        var clock = StageClock()
        let values = values.map { $0.isNaN ? 0 : $0 }
        var labels = [UInt8](repeating: 0, count: grid.count)
        guard let box = NonzeroBox(values, grid: grid) else {
            clock.lap("nnunet: preprocess")
            return NNUNetSegmentation(grid: grid, labels: labels, classes: plan.classes, stages: clock.stages)
        }
        // SimpleITK's array order: depth = z, height = y, width = x
        let cropped = Tensor(channels: 1, depth: box.size[2], height: box.size[1], width: box.size[0], data: box.crop(values, grid: grid))
        let mask = Tensor(channels: 1, depth: box.size[2], height: box.size[1], width: box.size[0],
                          data: box.filledMask(values, grid: grid).map(Float.init))
        let forward = plan.transposeForward
        var data = TensorOps.permuteSpatial(cropped, order: forward)
        var inside = TensorOps.permuteSpatial(mask, order: forward)
        let arraySpacing = [spacing[2], spacing[1], spacing[0]]
        let planSpacing = forward.map { arraySpacing[$0] }
        let size = [data.depth, data.height, data.width]
        let target = (0..<3).map { max(1, Int((planSpacing[$0] / plan.targetSpacing[$0] * Double(size[$0])).rounded(.toNearestOrEven))) }
        if target != size {
            data = Self.resample(data, to: target)
            inside = Self.resample(inside, to: target)
            for i in inside.data.indices { inside.data[i] = inside.data[i] >= 0.5 ? 1 : 0 }
        }
        normalize(&data, inside: inside)
        clock.lap("nnunet: preprocess")

        var probabilities = TensorOps.permuteSpatial(predict(data, mirroring: mirroring), order: plan.transposeBackward)
        clock.lap("nnunet: network")
        let croppedSize = [box.size[2], box.size[1], box.size[0]]
        if [probabilities.depth, probabilities.height, probabilities.width] != croppedSize {
            probabilities = Self.resample(probabilities, to: croppedSize)
        }
        let n = probabilities.spatialCount
        probabilities.data.withUnsafeBufferPointer { p in
            var i = 0
            for z in 0..<box.size[2] {
                for y in 0..<box.size[1] {
                    for x in 0..<box.size[0] {
                        var best = 0, bestValue = p[i]
                        for c in 1..<plan.classes where p[c * n + i] > bestValue {
                            best = c
                            bestValue = p[c * n + i]
                        }
                        labels[grid.index(box.lower[0] + x, box.lower[1] + y, box.lower[2] + z)] = UInt8(best)
                        i += 1
                    }
                }
            }
        }
        clock.lap("nnunet: back to scan grid")
        return NNUNetSegmentation(grid: grid, labels: labels, classes: plan.classes, stages: clock.stages)
    }

    /// nnU-Net's `GenericPreprocessor` normalisation of each channel (`inside`: the resampled
    /// nonzero mask).
    func normalize(_ data: inout Tensor, inside: Tensor) {
        let n = data.spatialCount
        for c in 0..<data.channels {
            let useMask = plan.useMaskForNorm[c]
            data.data.withUnsafeMutableBufferPointer { all in
                let v = UnsafeMutableBufferPointer(rebasing: all[(c * n)..<((c + 1) * n)])
                switch plan.normalizationSchemes[c] {
                case "CT":
                    let p = plan.intensityProperties[c]!
                    for i in v.indices {
                        v[i] = Float((min(max(Double(v[i]), p.lower), p.upper) - p.mean) / p.sd)
                        if useMask && inside.data[i] == 0 { v[i] = 0 }
                    }
                case "nonCT":
                    var count = 0.0, sum = 0.0, sumSq = 0.0
                    for i in v.indices where !useMask || inside.data[i] != 0 {
                        let x = Double(v[i])
                        count += 1
                        sum += x
                        sumSq += x * x
                    }
                    let mean = sum / max(count, 1)
                    let std = max(0, sumSq / max(count, 1) - mean * mean).squareRoot()
                    for i in v.indices {
                        v[i] = useMask && inside.data[i] == 0 ? 0 : Float((Double(v[i]) - mean) / (std + 1e-8))
                    }
                default:
                    break
                }
            }
        }
    }

    /// Every channel resized trilinearly to `size` (depth, height, width).
    static func resample(_ x: Tensor, to size: [Int]) -> Tensor {
        let from = Grid3D(x.width, x.height, x.depth), to = Grid3D(size[2], size[1], size[0])
        var data: [Float] = []
        data.reserveCapacity(x.channels * to.count)
        for c in 0..<x.channels {
            data += Resample.linear(Array(x.data[(c * from.count)..<((c + 1) * from.count)]), from: from, to: to)
        }
        return Tensor(channels: x.channels, depth: size[0], height: size[1], width: size[2], data: data)
    }
}

/// The bounding box of a scan's nonzero voxels (nnU-Net's `crop_to_nonzero`), x, y, z.
struct NonzeroBox {
    var lower: [Int]
    var size: [Int]

    init?(_ values: [Float], grid: Grid3D) {
        var lo = [Int.max, Int.max, Int.max], hi = [-1, -1, -1]
        var i = 0
        for z in 0..<grid.nz {
            for y in 0..<grid.ny {
                for x in 0..<grid.nx {
                    if values[i] != 0 {
                        lo = [min(lo[0], x), min(lo[1], y), min(lo[2], z)]
                        hi = [max(hi[0], x), max(hi[1], y), max(hi[2], z)]
                    }
                    i += 1
                }
            }
        }
        guard hi[0] >= 0 else { return nil }
        lower = lo
        size = (0..<3).map { hi[$0] - lo[$0] + 1 }
    }

    var grid: Grid3D { Grid3D(size) }

    /// The values inside the box, x fastest.
    func crop<T>(_ values: [T], grid full: Grid3D) -> [T] {
        var out: [T] = []
        out.reserveCapacity(grid.count)
        for z in 0..<size[2] {
            for y in 0..<size[1] {
                let start = full.index(lower[0], lower[1] + y, lower[2] + z)
                out += values[start..<(start + size[0])]
            }
        }
        return out
    }

    /// The nonzero mask inside the box with its holes filled (scipy's `binary_fill_holes`:
    /// background not connected through faces to the border becomes foreground).
    func filledMask(_ values: [Float], grid full: Grid3D) -> [UInt8] {
        let box = grid
        let mask = crop(values, grid: full).map { $0 != 0 ? UInt8(1) : 0 }
        let (labels, sizes) = ConnectedComponents.label(mask.map { 1 - $0 }, grid: box, connectivity: .faces)
        var outside = [Bool](repeating: false, count: sizes.count)
        for z in 0..<box.nz {
            for y in 0..<box.ny {
                for x in 0..<box.nx where x == 0 || y == 0 || z == 0 || x == box.nx - 1 || y == box.ny - 1 || z == box.nz - 1 {
                    outside[Int(labels[box.index(x, y, z)])] = true
                }
            }
        }
        return zip(mask, labels).map { $0 == 1 || !outside[Int($1)] ? 1 : 0 }
    }
}

/// An nnU-Net segmentation on a scan's voxel grid.
public struct NNUNetSegmentation: Sendable {
    /// The scan's grid (stored voxel order, x fastest).
    public var grid: Grid3D
    /// Class per voxel (0 = background), stored voxel order.
    public var labels: [UInt8]
    /// Number of classes, background included.
    public var classes: Int
    /// Seconds spent in each step.
    public var stages: [StageClock.Stage]
}
