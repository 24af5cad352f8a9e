/// A dense float32 feature map of one image: `channels x depth x height x width`,
/// width fastest (the layout of a PyTorch `[1, C, D, H, W]` tensor).
public struct Tensor: Sendable, Equatable {
    public var channels: Int
    public var depth: Int
    public var height: Int
    public var width: Int
    /// `channels * depth * height * width` values.
    public var data: [Float]

    public init(channels: Int, depth: Int, height: Int, width: Int, data: [Float]) {
        precondition(data.count == channels * depth * height * width, "tensor data does not match its shape")
        self.channels = channels
        self.depth = depth
        self.height = height
        self.width = width
        self.data = data
    }

    /// A tensor filled with `value`.
    public init(channels: Int, depth: Int, height: Int, width: Int, repeating value: Float = 0) {
        self.init(channels: channels, depth: depth, height: height, width: width,
                  data: [Float](repeating: value, count: channels * depth * height * width))
    }

    /// A tensor whose values are left as memory had them, for a layer that writes every one.
    /// Its pages are mapped up front on `threads` workers (``FreshMemory``).
    init(uninitializedChannels channels: Int, depth: Int, height: Int, width: Int, threads: Int) {
        self.init(channels: channels, depth: depth, height: height, width: width,
                  data: FreshMemory.floats(channels * depth * height * width, threads: threads))
    }

    /// Voxels per channel.
    public var spatialCount: Int { depth * height * width }

    /// `[C, D, H, W]`.
    public var shape: [Int] { [channels, depth, height, width] }
}
