/// nnU-Net v1's Generic_UNet (3D, as `nnUNetTrainerV2.initialize_network` builds it), described
/// by an ``NNUNetPlan``: stages of conv (bias) - instance norm (affine, the input's own
/// statistics) - leaky ReLU blocks, downsampling by a strided first convolution in each stage
/// after the first, transposed-convolution upsampling (kernel = stride = the pool kernel, no
/// bias), the upsampled map concatenated before the skip, and a 1x1x1 segmentation convolution
/// with softmax. Dropout is 0 at inference. Only the last deep-supervision head is computed; the
/// others are loaded and checked, then ignored.
public struct NNUNetNetwork: Sendable {
    /// One conv - instance norm - leaky ReLU block.
    struct Block: Sendable {
        var conv: Conv3D
        var norm: InstanceNorm
    }

    public let plan: NNUNetPlan
    /// Encoder stages, then the bottleneck (its two stacks joined).
    let encoder: [[Block]]
    let upsampling: [TransposedConv3D]
    /// Decoder levels, deepest first.
    let decoder: [[Block]]
    let segmentation: Conv3D

    /// Builds the network from a fold's weights (PyTorch state-dict names); every tensor's name
    /// and shape is checked against what the plan describes.
    public init(weights w: WeightReader, plan: NNUNetPlan) throws(ModelError) {
        self.plan = plan
        let features = plan.stageFeatures
        let pools = plan.poolKernels, kernels = plan.convKernels, n = plan.poolCount
        let epsilon = plan.normEpsilon

        /// `StackedConvLayers`: `max(1, count)` blocks, the first with `firstStride`.
        func stacked(_ prefix: String, _ cin: Int, _ cout: Int, count: Int, kernel: [Int],
                     firstStride: [Int] = [1, 1, 1]) throws(ModelError) -> [Block] {
            var blocks: [Block] = []
            for i in 0..<max(1, count) {
                let name = "\(prefix).blocks.\(i)", c = i == 0 ? cin : cout
                let conv = Conv3D(inChannels: c, outChannels: cout, kernel: kernel, stride: i == 0 ? firstStride : [1, 1, 1],
                                  padding: NNUNetPlan.padding(for: kernel),
                                  weight: try w("\(name).conv.weight", [cout, c] + kernel),
                                  bias: try w("\(name).conv.bias", [cout]))
                let norm = InstanceNorm(weight: try w("\(name).instnorm.weight", [cout]),
                                        bias: try w("\(name).instnorm.bias", [cout]), epsilon: epsilon)
                blocks.append(Block(conv: conv, norm: norm))
            }
            return blocks
        }

        var encoder: [[Block]] = []
        var cin = plan.inputChannels
        for d in 0..<n {
            encoder.append(try stacked("conv_blocks_context.\(d)", cin, features[d], count: plan.convsPerStage,
                                       kernel: kernels[d], firstStride: d == 0 ? [1, 1, 1] : pools[d - 1]))
            cin = features[d]
        }
        encoder.append(try stacked("conv_blocks_context.\(n).0", cin, features[n], count: plan.convsPerStage - 1,
                                   kernel: kernels[n], firstStride: pools[n - 1])
                       + stacked("conv_blocks_context.\(n).1", features[n], features[n], count: 1, kernel: kernels[n]))
        self.encoder = encoder

        var upsampling: [TransposedConv3D] = [], decoder: [[Block]] = []
        var down = features[n]
        for u in 0..<n {
            let skip = features[n - 1 - u], pool = pools[n - 1 - u]
            upsampling.append(TransposedConv3D(inChannels: down, outChannels: skip, strides: pool,
                                               weight: try w("tu.\(u).weight", [down, skip] + pool), bias: nil))
            // nnU-Net v1 gives decoder level u the kernel conv_kernel_sizes[-(u + 1)]: one level deeper
            // than the encoder stage it mirrors
            let kernel = kernels[n - u]
            decoder.append(try stacked("conv_blocks_localization.\(u).0", 2 * skip, skip, count: plan.convsPerStage - 1, kernel: kernel)
                           + stacked("conv_blocks_localization.\(u).1", skip, skip, count: 1, kernel: kernel))
            down = skip
        }
        self.upsampling = upsampling
        self.decoder = decoder
        var heads: [Conv3D] = []
        for u in 0..<n {
            let c = features[n - 1 - u]
            heads.append(Conv3D(inChannels: c, outChannels: plan.classes, kernel: 1,
                                weight: try w("seg_outputs.\(u).weight", [plan.classes, c, 1, 1, 1]), bias: nil))
        }
        segmentation = heads[n - 1]
        try w.finish()
    }

    /// Raw class scores for an input of `inputChannels` channels whose size is a multiple of the
    /// pooling (the patch size is).
    public func logits(_ input: Tensor) -> Tensor {
        let slope = plan.leakySlope
        func apply(_ blocks: [Block], _ x: Tensor) -> Tensor {
            blocks.reduce(x) { y, block in block.norm(block.conv(y), leakySlope: slope) }
        }
        var x = input
        var skips: [Tensor] = []
        for stage in encoder.dropLast() {
            x = apply(stage, x)
            skips.append(x)
        }
        x = apply(encoder[encoder.count - 1], x)
        for u in 0..<decoder.count {
            x = TensorOps.concatChannels(upsampling[u](x), skips.removeLast())
            x = apply(decoder[u], x)
        }
        return segmentation(x)
    }

    /// Class probabilities (softmax over the logits).
    public func callAsFunction(_ input: Tensor) -> Tensor {
        TensorOps.softmaxChannels(logits(input))
    }
}
