import COpenBLAS
import Foundation

/// Measurements for `defacer bench`: raw sgemm speed and the engine's convolution speed.
public enum EngineBenchmarks {
    /// The build of the Winograd tile transforms this process runs ("avx2" or "portable").
    public static var tileTransforms: String { TileTransformCode.preferred == .avx2 ? "avx2" : "portable" }

    /// Seconds taken by `body`, best of `repeats`.
    public static func bestTime(repeats: Int, _ body: () -> Void) -> Double {
        var best = Double.infinity
        for _ in 0..<repeats {
            let start = ContinuousClock.now
            body()
            let d = ContinuousClock.now - start
            best = min(best, d.inSeconds)
        }
        return best
    }

    /// GFLOP/s of one `n x n x n` single-precision matrix product on OpenBLAS.
    public static func sgemmGFLOPS(n: Int = 1024, repeats: Int = 5) -> Double {
        let a = (0..<(n * n)).map { Float(($0 % 17) - 8) * 0.01 }
        let b = (0..<(n * n)).map { Float(($0 % 13) - 6) * 0.01 }
        var c = [Float](repeating: 0, count: n * n)
        // the machine's rate: OpenBLAS on all the engine's cores, then back to one per worker
        openblas_set_num_threads(Int32(EngineThreads.available))
        defer { openblas_set_num_threads(1) }
        let seconds = bestTime(repeats: repeats) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n),
                        1, a, Int32(n), b, Int32(n), 0, &c, Int32(n))
        }
        return 2 * Double(n * n * n) / seconds / 1e9
    }

    /// One convolution shape's effective speed: the engine's algorithm beside im2col's.
    public struct ConvResult: Sendable, Codable {
        public var name: String
        public var inChannels: Int
        public var outChannels: Int
        public var size: [Int]
        public var stride: Int
        /// `winograd F(4,3)`, `winograd F(2,3)` or `im2col`: what the engine runs for this shape.
        public var algorithm: String
        public var seconds: Double
        /// Direct-convolution FLOPs divided by the engine's time.
        public var gflops: Double
        /// The same shape as im2col times the filters (every multiply).
        public var directSeconds: Double
        public var directGFLOPS: Double
    }

    /// Effective GFLOP/s of the engine's 3x3x3 convolution (multiply-adds counted on the
    /// output voxels, as a direct convolution does them) on a given shape, beside im2col's.
    public static func convolution(name: String, inChannels: Int, outChannels: Int, size: [Int], stride: Int = 1,
                                   threads: Int = EngineThreads.available, repeats: Int = 3) -> ConvResult {
        let x = Tensor(channels: inChannels, depth: size[0], height: size[1], width: size[2],
                       data: (0..<(inChannels * size.reduce(1, *))).map { Float(($0 % 23) - 11) * 0.05 })
        let conv = Conv3D(inChannels: inChannels, outChannels: outChannels, kernel: 3, stride: stride, padding: 1,
                          weight: (0..<(outChannels * inChannels * 27)).map { Float(($0 % 7) - 3) * 0.01 },
                          bias: [Float](repeating: 0.1, count: outChannels))
        var out: Tensor?
        let seconds = bestTime(repeats: repeats) { out = conv(x, threads: threads) }
        let directSeconds = conv.runsWinograd ? bestTime(repeats: repeats) { out = conv.direct(x, threads: threads) } : seconds
        let voxels = Double(out!.spatialCount)
        let flops = 2 * Double(outChannels * inChannels * 27) * voxels
        return ConvResult(name: name, inChannels: inChannels, outChannels: outChannels, size: size, stride: stride,
                          algorithm: conv.algorithm, seconds: seconds, gflops: flops / seconds / 1e9,
                          directSeconds: directSeconds, directGFLOPS: flops / directSeconds / 1e9)
    }

    /// One layer kind's share of a network pass: its seconds and, for convolutions, the
    /// direct-convolution FLOPs and the effective rate (those FLOPs over its seconds).
    public struct LayerKindTime: Sendable, Codable, Equatable {
        public var kind: String
        public var seconds: Double
        public var gflop: Double?
        public var effectiveGFLOPS: Double?
    }

    /// The network's time per layer kind (a ``LayerClock``'s stages) beside the FLOPs of the
    /// convolutions of that kind; slowest first.
    public static func layerKinds(_ stages: [StageClock.Stage], costs: [HDBETNetwork.ConvolutionCost]) -> [LayerKindTime] {
        let flops = Dictionary(costs.map { ($0.kind, $0.flops) }, uniquingKeysWith: +)
        return stages.map { stage in
            let gflop = flops[stage.name].map { $0 / 1e9 }
            return LayerKindTime(kind: stage.name, seconds: stage.seconds, gflop: gflop,
                                 effectiveGFLOPS: gflop.map { $0 / max(stage.seconds, 1e-9) })
        }.sorted { $0.seconds > $1.seconds }
    }

    /// Peak resident memory of this process so far, in MiB.
    public static func peakMemoryMiB() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024
    }
}
