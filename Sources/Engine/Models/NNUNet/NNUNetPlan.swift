import Foundation

/// An nnU-Net v1 3d_fullres model as `tools/defacer_tools/convert_nnunet.py` describes it in `model.json`:
/// the Generic_UNet built from the plans' last stage, the preprocessing and the sliding-window
/// settings. Axis lists (patch, kernels, spacing) are in the plan's axis order, which is the
/// SimpleITK array order (z, y, x of the stored voxels) permuted by `transposeForward`.
public struct NNUNetPlan: Sendable, Equatable {
    /// The `architecture` value of such a model.
    public static let architecture = "nnunet-v1-generic-unet"

    /// CT intensity statistics of one input channel (nnU-Net's `intensityproperties`).
    public struct IntensityProperties: Sendable, Equatable {
        public var mean: Double
        public var sd: Double
        /// 0.5th and 99.5th percentile of the training foreground.
        public var lower: Double
        public var upper: Double
    }

    public var name: String
    /// Weight files, one per fold, relative to the model folder.
    public var folds: [String]
    public var source: String
    public var licence: String
    public var trainer: String
    /// Names of the labels (`labels` in model.json, written by the converter's `--labels`); may be empty.
    public var labelNames: [Int: String]

    public var inputChannels: Int
    /// Output classes, background included.
    public var classes: Int
    public var baseFeatures: Int
    public var maxFeatures: Int
    public var featureMultiplier: Double
    public var convsPerStage: Int
    public var patchSize: [Int]
    /// Pooling (= strided convolution and transposed convolution) kernel of each down step.
    public var poolKernels: [[Int]]
    /// Convolution kernel of each encoder stage and the bottleneck (`poolKernels.count + 1`).
    public var convKernels: [[Int]]
    public var leakySlope: Float
    public var normEpsilon: Float

    /// Per input channel: "nonCT", "CT" or "noNorm".
    public var normalizationSchemes: [String]
    /// Per input channel: z-score only inside the nonzero mask, zero outside.
    public var useMaskForNorm: [Bool]
    /// Per input channel, for "CT" channels.
    public var intensityProperties: [IntensityProperties?]
    /// Voxel size (mm) the network works at, plan axis order.
    public var targetSpacing: [Double]
    public var transposeForward: [Int]
    public var transposeBackward: [Int]

    public var stepSize: Double
    public var gaussianSigmaScale: Double
    /// Spatial axes (plan order) mirrored at test time; empty for none.
    public var mirrorAxes: [Int]

    /// Number of down steps.
    public var poolCount: Int { poolKernels.count }

    /// Output features of each encoder stage and of the bottleneck, as Generic_UNet computes them.
    public var stageFeatures: [Int] {
        var out: [Int] = [], f = baseFeatures
        for _ in 0...poolCount {
            out.append(f)
            f = min(Int((Double(f) * featureMultiplier).rounded(.toNearestOrEven)), maxFeatures)
        }
        return out
    }

    /// Generic_UNet's padding: 1 where the kernel is 3, else 0.
    public static func padding(for kernel: [Int]) -> [Int] { kernel.map { $0 == 3 ? 1 : 0 } }

    /// Reads and checks `model.json`.
    public init(path: String) throws(ModelError) {
        let descriptor = try ModelDescriptor(path: path)
        guard descriptor.architecture == Self.architecture else {
            throw ModelError(.unsupportedArchitecture(descriptor.architecture), path: path)
        }
        // ModelDescriptor has read the file once already
        let json = (try? JSONSerialization.jsonObject(with: FileManager.default.contents(atPath: path) ?? Data())) as? [String: Any] ?? [:]
        try self.init(json: json, descriptor: descriptor, path: path)
    }

    init(json: [String: Any], descriptor: ModelDescriptor, path: String) throws(ModelError) {
        func bad(_ detail: String) -> ModelError { ModelError(.malformed(detail), path: path) }
        func section(_ key: String) throws(ModelError) -> [String: Any] {
            guard let s = json[key] as? [String: Any] else { throw bad("model.json lacks its \"\(key)\" section") }
            return s
        }
        func ints(_ s: [String: Any], _ key: String) throws(ModelError) -> [Int] {
            guard let v = s[key] as? [Int] else { throw bad("\(key) must be a list of integers") }
            return v
        }
        func int(_ s: [String: Any], _ key: String) throws(ModelError) -> Int {
            guard let v = s[key] as? Int else { throw bad("\(key) must be an integer") }
            return v
        }
        func number(_ s: [String: Any], _ key: String) throws(ModelError) -> Double {
            guard let v = s[key] as? Double else { throw bad("\(key) must be a number") }
            return v
        }
        func kernels(_ s: [String: Any], _ key: String) throws(ModelError) -> [[Int]] {
            guard let v = s[key] as? [[Int]], v.allSatisfy({ $0.count == 3 && $0.allSatisfy { $0 >= 1 } }) else {
                throw bad("\(key) must be a list of 3-axis kernel sizes")
            }
            return v
        }
        let network = try section("network"), pre = try section("preprocessing"), inference = try section("inference")

        name = descriptor.name
        folds = descriptor.folds
        source = descriptor.source
        licence = descriptor.licence
        trainer = json["trainer"] as? String ?? ""
        labelNames = Dictionary(((json["labels"] as? [String: String]) ?? [:]).compactMap { key, name in Int(key).map { ($0, name) } },
                                uniquingKeysWith: { a, _ in a })

        inputChannels = try int(network, "input_channels")
        classes = try int(network, "num_classes")
        baseFeatures = try int(network, "base_num_features")
        maxFeatures = try int(network, "max_num_features")
        featureMultiplier = try number(network, "feat_map_mul_on_downscale")
        convsPerStage = try int(network, "conv_per_stage")
        patchSize = try ints(network, "patch_size")
        poolKernels = try kernels(network, "pool_op_kernel_sizes")
        convKernels = try kernels(network, "conv_kernel_sizes")
        leakySlope = Float(try number(network, "leaky_relu_slope"))
        let norm = network["instance_norm"] as? [String: Any] ?? [:]
        normEpsilon = Float(try number(norm, "eps"))

        // the variants of Generic_UNet this engine does not build
        let flags: [(String, Bool)] = [("convolutional_pooling", true), ("convolutional_upsampling", true),
                                       ("upscale_logits", false), ("seg_output_use_bias", false)]
        var unsupported = flags.filter { network[$0.0] as? Bool != $0.1 }.map { "\($0.0) = \(network[$0.0] ?? "missing")" }
        if network["dropout_p"] as? Double != 0 { unsupported.append("dropout_p = \(network["dropout_p"] ?? "missing")") }
        if network["final_nonlin"] as? String != "softmax" { unsupported.append("final_nonlin = \(network["final_nonlin"] ?? "missing")") }
        if norm["affine"] as? Bool != true { unsupported.append("instance norm without affine parameters") }
        if let first = unsupported.first {
            throw ModelError(.unsupportedArchitecture("\(Self.architecture) with \(first)"), path: path)
        }

        normalizationSchemes = pre["normalization_schemes"] as? [String] ?? []
        useMaskForNorm = pre["use_mask_for_norm"] as? [Bool] ?? []
        let properties = pre["intensity_properties"] as? [Any] ?? []
        intensityProperties = (0..<inputChannels).map { c -> IntensityProperties? in
            guard c < properties.count, let p = properties[c] as? [String: Any],
                  let mean = p["mean"] as? Double, let sd = p["sd"] as? Double,
                  let lower = p["percentile_00_5"] as? Double, let upper = p["percentile_99_5"] as? Double else { return nil }
            return IntensityProperties(mean: mean, sd: sd, lower: lower, upper: upper)
        }
        guard let spacing = pre["target_spacing"] as? [Double] else { throw bad("target_spacing must be a list of numbers") }
        targetSpacing = spacing
        transposeForward = try ints(pre, "transpose_forward")
        transposeBackward = try ints(pre, "transpose_backward")

        stepSize = try number(inference, "step_size")
        gaussianSigmaScale = try number(inference, "gaussian_sigma_scale")
        mirrorAxes = try ints(inference, "mirror_axes")

        if let problem = validationProblem() { throw bad(problem) }
    }

    /// What makes the plan unusable, if anything.
    func validationProblem() -> String? {
        if inputChannels < 1 || classes < 2 || baseFeatures < 1 || maxFeatures < baseFeatures || convsPerStage < 1 {
            return "channel, class or feature counts out of range"
        }
        if poolKernels.isEmpty || convKernels.count != poolKernels.count + 1 {
            return "\(poolKernels.count) pool kernels need \(poolKernels.count + 1) conv kernels, found \(convKernels.count)"
        }
        if convKernels.contains(where: { $0.contains { $0 != 1 && $0 != 3 } }) {
            return "conv kernel sizes \(convKernels): Generic_UNet pads only kernels of 3"
        }
        if patchSize.count != 3 { return "patch_size \(patchSize) is not 3D" }
        for axis in 0..<3 {
            let divisor = poolKernels.reduce(1) { $0 * $1[axis] }
            if patchSize[axis] < 1 || patchSize[axis] % divisor != 0 {
                return "patch size \(patchSize) is not divisible by the pooling \(divisor) along axis \(axis)"
            }
        }
        if transposeForward.sorted() != [0, 1, 2] || (0..<3).map({ transposeForward.firstIndex(of: $0)! }) != transposeBackward {
            return "transpose_forward \(transposeForward) and transpose_backward \(transposeBackward) are not inverse permutations"
        }
        if targetSpacing.count != 3 || targetSpacing.contains(where: { !($0 > 0) }) { return "target_spacing \(targetSpacing) is invalid" }
        if normalizationSchemes.count != inputChannels || useMaskForNorm.count != inputChannels {
            return "normalization_schemes and use_mask_for_norm need one entry per input channel"
        }
        for (c, scheme) in normalizationSchemes.enumerated() {
            switch scheme {
            case "nonCT", "noNorm": continue
            case "CT": if intensityProperties[c] == nil { return "CT channel \(c) lacks intensity_properties" }
            default: return "normalization scheme \(scheme) is not supported"
            }
        }
        if !(stepSize > 0 && stepSize <= 1) || !(gaussianSigmaScale > 0) { return "step_size or gaussian_sigma_scale out of range" }
        if mirrorAxes.contains(where: { !(0..<3).contains($0) }) || Set(mirrorAxes).count != mirrorAxes.count {
            return "mirror_axes \(mirrorAxes) is invalid"
        }
        return nil
    }
}
