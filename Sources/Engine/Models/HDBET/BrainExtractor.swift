import Foundation

/// Brain masks from HD-BET: reorientation to RAS+, resampling to the network's 1.5 mm grid,
/// z-scoring, padding, the network (one fold, or five folds times eight mirrorings), and the
/// probability mapped back onto the scan's own voxels.
public struct BrainExtractor: Sendable {
    /// `fast`: fold 0, no mirroring. `accurate`: every fold, mirrored along all three axes.
    public enum Mode: String, Sendable, CaseIterable { case fast, accurate }

    public let mode: Mode
    /// Worker threads the network's layers use.
    public let threads: Int
    public let descriptor: ModelDescriptor
    /// Whether `extract` runs the network on the head's box only (`HeadBox`) rather than the
    /// whole resampled grid; the probability outside the box is zero. Off: it changes the
    /// mask slightly (instance norm sees less air), see `HeadBox`.
    public var cropsToHead = false
    let networks: [HDBETNetwork]

    /// Loads the folds the mode needs from a converted model folder (`models/hdbet`); the
    /// network runs on `threads` workers.
    public init(modelFolder: String, mode: Mode = .fast, threads: Int = EngineThreads.available) throws(ModelError) {
        let descriptor = try ModelDescriptor(path: modelFolder + "/model.json")
        guard descriptor.architecture == "hdbet" else {
            throw ModelError(.unsupportedArchitecture(descriptor.architecture), path: modelFolder + "/model.json")
        }
        let files = mode == .fast ? Array(descriptor.folds.prefix(1)) : descriptor.folds
        var networks: [HDBETNetwork] = []
        for file in files {
            let weights = WeightReader(try Safetensors(path: modelFolder + "/" + file))
            networks.append(try HDBETNetwork(weights: weights, hyperparameters: descriptor.hdbetHyperparameters))
        }
        self.mode = mode
        self.threads = max(1, threads)
        self.descriptor = descriptor
        self.networks = networks
    }

    /// The network's input for RAS+ ordered values: resampled, z-scored, padded.
    public struct Prepared: Sendable {
        public var input: Tensor
        /// The resampled grid before padding.
        public var grid: Grid3D
        /// The part of `grid` the input holds (the whole grid unless cropped to the head).
        public var box: HeadBox
    }

    /// Resamples RAS+ values with voxel sizes `spacing` to the network's spacing, z-scores
    /// them (over the whole image) and pads the upper ends with zeros to a multiple of 16 (at
    /// least 128). With `cropToHead`, only the head's box goes in (`HeadBox`). The network was
    /// trained on FSL's standard orientation (first axis towards Left), so the tensor's width
    /// axis runs right to left.
    public func prepare(_ values: [Float], grid: Grid3D, spacing: [Double], cropToHead: Bool = false) -> Prepared {
        let target = descriptor.targetSpacing
        let resampledGrid = Grid3D((0..<3).map { max(1, Int((Double(grid.shape[$0]) * spacing[$0] / target[$0]).rounded())) })
        var resampled = Resample.linear(values, from: grid, to: resampledGrid, threads: threads)
        let multiple = descriptor.padMultiple, minimum = descriptor.minimumSize
        let padded = { (s: Int) in max(minimum, (s + multiple - 1) / multiple * multiple) }
        let box = (cropToHead ? HeadBox.around(head: resampled, grid: resampledGrid, padded: padded) : nil)
            ?? HeadBox.whole(resampledGrid, padded: padded)
        let n = Double(resampled.count)
        let mean = resampled.reduce(0.0) { $0 + Double($1) } / n
        let variance = resampled.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / n
        let std = max(variance.squareRoot(), 1e-8)
        for i in resampled.indices { resampled[i] = Float((Double(resampled[i]) - mean) / std) }
        let p = Grid3D(box.padded)
        var data = [Float](repeating: 0, count: p.count)
        let (x0, y0, z0) = (box.lower[0], box.lower[1], box.lower[2])
        for z in 0..<box.size[2] {
            for y in 0..<box.size[1] {
                let src = resampledGrid.index(x0, y0 + y, z0 + z), dst = p.index(0, y, z)
                for x in 0..<box.size[0] { data[dst + box.size[0] - 1 - x] = resampled[src + x] }
            }
        }
        return Prepared(input: Tensor(channels: 1, depth: p.nz, height: p.ny, width: p.nx, data: data),
                        grid: resampledGrid, box: box)
    }

    /// The brain channel of `probabilities` (the network's output for `prepared`) on the
    /// resampled grid: the box's voxels, zero outside it.
    func brainProbability(_ probabilities: Tensor, prepared: Prepared) -> [Float] {
        let g = prepared.grid, box = prepared.box
        let padded = Grid3D(probabilities.width, probabilities.height, probabilities.depth)
        let channel = probabilities.spatialCount
        var brain = [Float](repeating: 0, count: g.count)
        for z in 0..<box.size[2] {
            for y in 0..<box.size[1] {
                let dst = g.index(box.lower[0], box.lower[1] + y, box.lower[2] + z), src = channel + padded.index(0, y, z)
                for x in 0..<box.size[0] { brain[dst + x] = probabilities.data[src + box.size[0] - 1 - x] }
            }
        }
        return brain
    }

    /// Brain probability on the padded network grid, averaged over folds and mirrorings; each
    /// layer kind's time added to `clock` when given.
    public func predict(_ input: Tensor, clock: LayerClock? = nil) -> Tensor {
        let mirrorings = self.mirrorings
        var sum: Tensor?
        for network in networks {
            for axes in mirrorings {
                let p = TensorOps.flip(network(TensorOps.flip(input, axes: axes), threads: threads, clock: clock), axes: axes)
                sum = sum.map { TensorOps.add($0, p) } ?? p
            }
        }
        var mean = sum!
        let scale = 1 / Float(networks.count * mirrorings.count)
        for i in mean.data.indices { mean.data[i] *= scale }
        return mean
    }

    /// The convolutions of one network pass on an input of `shape` (depth, height, width);
    /// the mode runs `passes` of them.
    public func convolutionCosts(shape: [Int]) -> [HDBETNetwork.ConvolutionCost] {
        networks[0].convolutionCosts(depth: shape[0], height: shape[1], width: shape[2])
    }

    /// The axes each pass mirrors: none in fast mode, every combination in accurate mode.
    var mirrorings: [Set<Int>] { mode == .fast ? [[]] : [[], [2], [1], [1, 2], [0], [0, 2], [0, 1], [0, 1, 2]] }

    /// Network passes per scan: folds times mirrorings (1 fast, 40 accurate).
    public var passes: Int { networks.count * mirrorings.count }

    /// A brain mask for one volume of a scan; `rasValues`: that volume's values in RAS+ order
    /// when the caller has them already (`volume.rasReorientation.toRAS(volume.floatValues(...))`).
    public func extract(_ volume: NiftiVolume, volumeIndex: Int = 0, rasValues: [Float]? = nil) -> BrainMask {
        var clock = StageClock()
        let view = volume.rasReorientation
        let grid = Grid3D(view.rasShape)
        let spacing = (0..<3).map { view.rasAffine.columnLengths[$0] }
        let values = rasValues ?? view.toRAS(volume.floatValues(volume: volumeIndex))
        var prepared = prepare(values, grid: grid, spacing: spacing, cropToHead: cropsToHead)
        clock.lap("brain: preprocess")
        let layers = LayerClock()
        var probabilities = predict(prepared.input, clock: layers)
        var brain = brainProbability(probabilities, prepared: prepared)
        if prepared.box.brainReachesCut(brain, grid: prepared.grid) {
            // the brain reaches the side of the head's box: run the network on the whole grid
            prepared = prepare(values, grid: grid, spacing: spacing)
            probabilities = predict(prepared.input, clock: layers)
            brain = brainProbability(probabilities, prepared: prepared)
        }
        clock.lap("brain: network")
        let networkInputShape = probabilities.shape.dropFirst().map { $0 }
        let g = prepared.grid
        let probability = Resample.linear(brain, from: g, to: grid, threads: threads)
        clock.lap("brain: back to scan grid")
        let mask = ConnectedComponents.largest(probability.map { $0 > 0.5 ? 1 : 0 }, grid: grid)
        clock.lap("brain: largest component")
        let voxelML = spacing.reduce(1, *) / 1000
        return BrainMask(grid: grid, reorientation: view, probability: probability, mask: mask,
                         volumeML: Double(mask.reduce(0) { $0 + Int($1) }) * voxelML, stages: clock.stages,
                         networkInputShape: networkInputShape, networkStages: layers.stages)
    }
}

/// A brain mask on a scan's RAS+ voxel grid.
public struct BrainMask: Sendable {
    public var grid: Grid3D
    /// Maps the RAS+ grid back to the scan's stored voxel order.
    public var reorientation: RASReorientation
    /// Brain probability per voxel (RAS+ order).
    public var probability: [Float]
    /// 1 = brain (RAS+ order), the largest connected part.
    public var mask: [UInt8]
    /// Brain volume in millilitres.
    public var volumeML: Double
    /// Seconds spent in each step.
    public var stages: [StageClock.Stage]
    /// The padded grid the network ran on (depth, height, width).
    public var networkInputShape: [Int] = []
    /// Seconds per layer kind inside the network's passes (``LayerClock``).
    public var networkStages: [StageClock.Stage] = []
}
