import ArgumentParser
import Engine
import Foundation

/// `defacer bench`: this machine's sgemm speed, the engine's convolution speed on HD-BET's
/// layer shapes, and HD-BET fast mode on a real head, in one run.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure matrix-product and convolution speed and HD-BET's time on a real head."
    )

    @OptionGroup var model: ModelFolderOption

    @Option(help: "A real 1 mm head scan for the whole-network timing (skipped when empty).")
    var scan = "data/real/mean_reg2mean.nii.gz"

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    @Option(help: "Engine threads (default: the cores, or DEFACER_THREADS).")
    var threads = EngineThreads.available

    @Flag(help: "Also run accurate mode on the scan and time it (40 network passes: minutes on a small machine).")
    var accurate = false

    struct Report: Codable {
        var sgemmGFLOPS: Double
        var convolutions: [EngineBenchmarks.ConvResult]
        var convolutionShareOfSgemm: Double
        var threads: Int
        /// The build of the Winograd tile transforms this processor ran: "avx2" or "portable".
        var tileTransforms: String
        /// HD-BET fast mode on the scan: the median of ``hdbetFastRuns`` runs (one noisy run on a
        /// shared machine moves it by no more than the run beside it), each run's seconds, and
        /// the median run's stages.
        var hdbetFastSeconds: Double?
        var hdbetFastRunSeconds: [Double]?
        var hdbetStages: [StageClock.Stage]?
        /// Direct-convolution FLOPs of one network pass on the bench head, in GFLOP, and per layer kind.
        var networkGFLOP: Double?
        var networkGFLOPByKind: [String: Double]?
        /// Seconds per layer kind in the network pass, with each convolution kind's effective GFLOP/s.
        var networkStages: [EngineBenchmarks.LayerKindTime]?
        /// Network GFLOP divided by the network's seconds, and that over the sgemm rate.
        var networkEffectiveGFLOPS: Double?
        var networkRateOverSgemm: Double?
        /// Accurate mode (40 passes), estimated as fast mode with its network stage taken 40 times.
        var hdbetAccurateEstimatedSeconds: Double?
        /// Accurate mode measured on the same scan (`--accurate`), its stages, and the peak memory after it.
        var hdbetAccurateSeconds: Double?
        var hdbetAccurateStages: [StageClock.Stage]?
        var accuratePeakMemoryMiB: Double?
        var defaceSeconds: Double?
        var defaceStages: [StageClock.Stage]?
        /// Reading and writing the bench head with zlib level 1, one thread, one gzip stream.
        var gzipRoundTripSeconds: Double?
        /// The same, written as `defacer deface` writes (gzip members on `threads` workers).
        var gzipRoundTripMembersSeconds: Double?
        /// The one-stream round trip at zlib's default level 6, as `defacer` wrote before it
        /// moved to level 1 (the baseline issue 12 recorded as 1.16 s).
        var gzipRoundTripLevel6Seconds: Double?
        var peakMemoryMiB: Double
        var scanDimensions: [Int]?
    }

    /// HD-BET fast mode runs on the scan, of which the median is reported.
    static let hdbetFastRuns = 3

    func run() throws {
        let sgemm = EngineBenchmarks.sgemmGFLOPS()
        // HD-BET's shapes (base 21 filters) on a head at 1.5 mm padded to 128x176x144
        let shapes: [(String, Int, Int, [Int], Int)] = [
            ("level 1 context (21->21)", 21, 21, [64, 88, 72], 1),
            ("end conv (42->42)", 42, 42, [64, 88, 72], 1),
            ("level 2 context (42->42)", 42, 42, [64, 88, 72], 1),
            ("downsample (42->84, stride 2)", 42, 84, [64, 88, 72], 2),
            ("level 3 context (84->84)", 84, 84, [32, 44, 36], 1),
            ("level 4 context (168->168)", 168, 168, [16, 22, 18], 1),
        ]
        let convs = shapes.map { EngineBenchmarks.convolution(name: $0.0, inChannels: $0.1, outChannels: $0.2, size: $0.3,
                                                              stride: $0.4, threads: threads) }
        let totalFlops = convs.reduce(0.0) { $0 + $1.gflops * $1.seconds }
        let totalSeconds = convs.reduce(0.0) { $0 + $1.seconds }
        var report = Report(sgemmGFLOPS: sgemm, convolutions: convs,
                            convolutionShareOfSgemm: totalFlops / totalSeconds / sgemm, threads: threads,
                            tileTransforms: EngineBenchmarks.tileTransforms, peakMemoryMiB: 0)
        if !scan.isEmpty {
            let volume = try NiftiReader().read(scan)
            let extractor = try BrainExtractor(modelFolder: model.models, mode: .fast, threads: threads)
            // each run's mask dropped before the next (its probability map is not kept)
            let runs = (0..<Self.hdbetFastRuns).map { _ in
                let start = ContinuousClock.now
                var mask = extractor.extract(volume)
                let seconds = (ContinuousClock.now - start).inSeconds
                mask.probability = []
                mask.mask = []
                return (seconds: seconds, mask: mask)
            }
            let (seconds, mask) = runs.sorted { $0.seconds < $1.seconds }[runs.count / 2]
            report.hdbetFastSeconds = seconds
            report.hdbetFastRunSeconds = runs.map(\.seconds)
            report.scanDimensions = volume.shape
            report.hdbetStages = mask.stages
            let costs = extractor.convolutionCosts(shape: mask.networkInputShape)
            networkFigures(costs, mask.stages, sgemm: sgemm, into: &report)
            report.networkStages = EngineBenchmarks.layerKinds(mask.networkStages, costs: costs)
            // end to end: `defacer deface` beside the time to just read and write the same file
            let folder = NSTemporaryDirectory() + "defacer-bench-\(getpid())"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: folder) }
            // the baseline: zlib level 1 read and write on one thread, one gzip stream; beside it
            // the same with the writer `defacer deface` uses (gzip members on `threads` workers)
            // (and at zlib's default level 6, as defacer wrote when issue 12 recorded its baseline)
            func roundTrip(_ writer: NiftiWriter) -> Double {
                EngineBenchmarks.bestTime(repeats: 3) {
                    _ = try? writer.write(try! NiftiReader().read(scan), to: folder + "/roundtrip-\(UUID().uuidString).nii.gz")
                }
            }
            report.gzipRoundTripSeconds = roundTrip(NiftiWriter(descrip: "bench", gzipBlockBytes: nil, threads: 1))
            report.gzipRoundTripMembersSeconds = roundTrip(NiftiWriter(descrip: "bench", threads: threads))
            report.gzipRoundTripLevel6Seconds = roundTrip(NiftiWriter(descrip: "bench", gzipBlockBytes: nil, threads: 1, gzipLevel: 6))
            let defacer = try Defacer(options: DefaceOptions(modelFolder: model.models, threads: threads))
            report.defaceSeconds = EngineBenchmarks.bestTime(repeats: 1) {
                let stem = folder + "/deface-\(UUID().uuidString)"
                report.defaceStages = try? defacer.deface(input: scan, outputs: DefaceOutputs(defaced: stem + "_defaced.nii.gz", faceMask: stem + "_mask.nii.gz",
                                                                           qcPicture: stem + "_qc.png", report: stem + ".json")).stages
            }
        }
        report.peakMemoryMiB = EngineBenchmarks.peakMemoryMiB()
        if accurate && !scan.isEmpty {
            let volume = try NiftiReader().read(scan)
            let extractor = try BrainExtractor(modelFolder: model.models, mode: .accurate, threads: threads)
            var stages: [StageClock.Stage] = []
            report.hdbetAccurateSeconds = EngineBenchmarks.bestTime(repeats: 1) { stages = extractor.extract(volume).stages }
            report.hdbetAccurateStages = stages
            report.accuratePeakMemoryMiB = EngineBenchmarks.peakMemoryMiB()
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
            return
        }
        printTable(report)
    }

    /// The report as a table, one line per measurement.
    private func printTable(_ report: Report) {
        let sgemm = report.sgemmGFLOPS
        let totalFlops = report.convolutions.reduce(0.0) { $0 + $1.gflops * $1.seconds }
        let totalSeconds = report.convolutions.reduce(0.0) { $0 + $1.seconds }
        print(String(format: "sgemm 1024^3 (OpenBLAS)                 %8.1f GFLOP/s; tile transforms: %@", sgemm,
                     report.tileTransforms as NSString))
        for c in report.convolutions {
            print(String(format: "conv %@ %8.1f GFLOP/s  %6.3f s  (%3.0f%% of sgemm; im2col %6.3f s)",
                         c.name.padding(toLength: 34, withPad: " ", startingAt: 0) as NSString, c.gflops, c.seconds,
                         100 * c.gflops / sgemm, c.directSeconds))
        }
        print(String(format: "all convolutions                        %8.1f GFLOP/s (%3.0f%% of sgemm)",
                     totalFlops / totalSeconds, 100 * report.convolutionShareOfSgemm))
        if let t = report.hdbetFastSeconds {
            let runs = (report.hdbetFastRunSeconds ?? []).map { String(format: "%.2f", $0) }.joined(separator: ", ")
            print(String(format: "HD-BET fast mode, whole head %@: %.2f s (median of %@ s)",
                         (report.scanDimensions ?? []).map(String.init).joined(separator: "x") as NSString, t, runs as NSString))
            for stage in report.hdbetStages ?? [] {
                print(String(format: "  %@ %8.2f s", stage.name.padding(toLength: 36, withPad: " ", startingAt: 0) as NSString, stage.seconds))
            }
        }
        for stage in report.networkStages ?? [] {
            let rate = stage.effectiveGFLOPS.map { String(format: "%8.1f GFLOP/s", $0) } ?? ""
            print(String(format: "    %@ %8.2f s %@", stage.kind.padding(toLength: 34, withPad: " ", startingAt: 0) as NSString,
                         stage.seconds, rate as NSString))
        }
        if let g = report.networkGFLOP, let r = report.networkEffectiveGFLOPS {
            print(String(format: "network: %.1f GFLOP (direct count), effective %.1f GFLOP/s beside sgemm's %.1f: %.2fx",
                         g, r, sgemm, report.networkRateOverSgemm ?? 0))
        }
        if let a = report.hdbetAccurateSeconds {
            print(String(format: "HD-BET accurate mode (measured): %.1f s, peak memory %.0f MiB", a, report.accuratePeakMemoryMiB ?? 0))
        } else if let a = report.hdbetAccurateEstimatedSeconds {
            print(String(format: "HD-BET accurate mode: about %.0f s (estimated from fast mode; --accurate measures it)", a))
        }
        if let d = report.defaceSeconds, let g = report.gzipRoundTripSeconds {
            print(String(format: "defacer deface end to end: %.2f s; read + write the same file: %.2f s (%.1fx)", d, g, d / g))
            if let m = report.gzipRoundTripMembersSeconds {
                print(String(format: "  read + write with gzip members on %d threads (as deface writes): %.2f s", threads, m))
            }
            if let six = report.gzipRoundTripLevel6Seconds {
                print(String(format: "  read + write at zlib's default level 6 (as defacer wrote before): %.2f s (%.1fx)", six, d / six))
            }
        }
        print(String(format: "peak memory                             %8.0f MiB", report.peakMemoryMiB))
    }

    /// The network's FLOPs on the bench head, its effective rate, and accurate mode's estimate.
    private func networkFigures(_ costs: [HDBETNetwork.ConvolutionCost], _ stages: [StageClock.Stage], sgemm: Double,
                                into report: inout Report) {
        let gflop = costs.reduce(0.0) { $0 + $1.flops } / 1e9
        report.networkGFLOP = gflop
        report.networkGFLOPByKind = Dictionary(costs.map { ($0.kind, $0.flops / 1e9) }, uniquingKeysWith: +)
        guard let network = stages.first(where: { $0.name == "brain: network" })?.seconds else { return }
        report.networkEffectiveGFLOPS = gflop / network
        report.networkRateOverSgemm = gflop / network / sgemm
        report.hdbetAccurateEstimatedSeconds = stages.reduce(0.0) { $0 + $1.seconds } + 39 * network
    }
}
