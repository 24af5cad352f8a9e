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

    @Option(help: "Folder of the converted HD-BET model.")
    var models = ModelLocation.defaultHDBET

    @Option(help: "A real 1 mm head scan for the whole-network timing (skipped when empty).")
    var scan = "data/real/mean_reg2mean.nii.gz"

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    struct Report: Codable {
        var sgemmGFLOPS: Double
        var convolutions: [EngineBenchmarks.ConvResult]
        var convolutionShareOfSgemm: Double
        var hdbetFastSeconds: Double?
        var hdbetStages: [StageClock.Stage]?
        var peakMemoryMiB: Double
        var scanDimensions: [Int]?
    }

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
        let convs = shapes.map { EngineBenchmarks.convolution(name: $0.0, inChannels: $0.1, outChannels: $0.2, size: $0.3, stride: $0.4) }
        let totalFlops = convs.reduce(0.0) { $0 + $1.gflops * $1.seconds }
        let totalSeconds = convs.reduce(0.0) { $0 + $1.seconds }
        var report = Report(sgemmGFLOPS: sgemm, convolutions: convs,
                            convolutionShareOfSgemm: totalFlops / totalSeconds / sgemm,
                            peakMemoryMiB: 0)
        if !scan.isEmpty {
            let volume = try NiftiReader().read(scan)
            let extractor = try BrainExtractor(modelFolder: models, mode: .fast)
            let start = ContinuousClock.now
            let mask = extractor.extract(volume)
            let d = ContinuousClock.now - start
            report.hdbetFastSeconds = Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
            report.scanDimensions = volume.shape
            report.hdbetStages = mask.stages
        }
        report.peakMemoryMiB = EngineBenchmarks.peakMemoryMiB()
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
            return
        }
        print(String(format: "sgemm 1024^3 (OpenBLAS)                 %8.1f GFLOP/s", sgemm))
        for c in convs {
            print(String(format: "conv %-34@ %8.1f GFLOP/s  %6.3f s  (%3.0f%% of sgemm)",
                         c.name as NSString, c.gflops, c.seconds, 100 * c.gflops / sgemm))
        }
        print(String(format: "all convolutions                        %8.1f GFLOP/s (%3.0f%% of sgemm)",
                     totalFlops / totalSeconds, 100 * report.convolutionShareOfSgemm))
        if let t = report.hdbetFastSeconds {
            print(String(format: "HD-BET fast mode, whole head %@: %.2f s", (report.scanDimensions ?? []).map(String.init).joined(separator: "x") as NSString, t))
            for stage in report.hdbetStages ?? [] {
                print(String(format: "  %-36@ %8.2f s", stage.name as NSString, stage.seconds))
            }
        }
        print(String(format: "peak memory                             %8.0f MiB", report.peakMemoryMiB))
    }
}
