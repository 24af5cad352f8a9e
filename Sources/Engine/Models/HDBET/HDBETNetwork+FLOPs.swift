/// The multiply-adds of HD-BET's convolutions, as a direct convolution counts them (two
/// floating-point operations per multiply-add, bias not counted), per layer kind.
extension HDBETNetwork {
    /// One convolution of the forward pass on a given input size.
    public struct ConvolutionCost: Sendable, Codable, Equatable {
        /// The layer kind (``HDBETNetwork/kind(of:)``): `3x3x3 winograd F(4,3)` (or `F(2,3)`),
        /// `3x3x3 im2col`, `3x3x3 stride 2`, `1x1x1`, the init conv or the segmentation layer.
        public var kind: String
        public var inChannels: Int
        public var outChannels: Int
        /// Output voxels.
        public var voxels: Int
        /// Direct-convolution FLOPs.
        public var flops: Double
    }

    /// Every convolution of `callAsFunction` on an input of `depth x height x width`, in order.
    public func convolutionCosts(depth: Int, height: Int, width: Int) -> [ConvolutionCost] {
        var costs: [ConvolutionCost] = []
        var voxels = depth * height * width
        func add(_ conv: Conv3D) {
            let kind = self.kind(of: conv)
            if conv.stride == 2 { voxels /= 8 }
            let taps = conv.kernelSize.reduce(1, *)
            costs.append(ConvolutionCost(kind: kind, inChannels: conv.inChannels, outChannels: conv.outChannels, voxels: voxels,
                                         flops: 2 * Double(conv.inChannels * conv.outChannels * taps) * Double(voxels)))
        }
        add(initConv)
        for level in 0..<contexts.count {
            if level > 0 { add(downs[level - 1].conv) }
            add(contexts[level].conv1)
            add(contexts[level].conv2)
        }
        for step in 0..<ups.count {
            voxels *= 8
            add(ups[step].conv)
            if step < localizations.count {
                add(localizations[step].conv1)
                add(localizations[step].conv2)
            }
        }
        add(endConv1)
        add(endConv2)
        add(segmentation)
        return costs
    }

    /// The kind a convolution of this network is timed and counted under.
    func kind(of conv: Conv3D) -> String {
        if conv.inChannels == 1 { return LayerKind.initConv }
        if conv.outChannels == hyperparameters.classes && conv.kernelSize == [1, 1, 1] { return LayerKind.segmentation }
        return conv.kernelSize == [1, 1, 1] ? "1x1x1"
            : conv.stride == 2 ? "3x3x3 stride 2" : "3x3x3 " + conv.algorithm
    }

    /// Names of the network's timed stages that are not one convolution algorithm.
    public enum LayerKind {
        public static let initConv = "init conv (1 channel, stencil)"
        public static let segmentation = "segmentation 1x1x1 + softmax"
        public static let norm = "instance norm + leaky ReLU"
        public static let upsampling = "upsampling + concatenation"
        public static let slabCopies = "slab copies + residual adds"
    }
}
