/// The multiply-adds of HD-BET's convolutions, as a direct convolution counts them (two
/// floating-point operations per multiply-add, bias not counted), per layer kind.
extension HDBETNetwork {
    /// One convolution of the forward pass on a given input size.
    public struct ConvolutionCost: Sendable, Codable, Equatable {
        /// `3x3x3 winograd F(4,3)` (or `F(2,3)`), `3x3x3 im2col`, `3x3x3 stride 2` or `1x1x1`.
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
            let kind = conv.kernelSize == [1, 1, 1] ? "1x1x1"
                : conv.stride == 2 ? "3x3x3 stride 2" : conv.usesWinograd ? "3x3x3 " + conv.algorithm : "3x3x3 im2col"
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
}
