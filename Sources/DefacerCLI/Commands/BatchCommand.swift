import ArgumentParser
import Engine
import Foundation

/// `defacer batch SOURCE... --output DIR`: defaces a whole dataset, locally or on Slurm;
/// `defacer batch --status DIR` shows how far a batch is.
struct BatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batch",
        abstract: "Deface a whole dataset (files, folders, BIDS datasets, @LIST), here or on a Slurm cluster.",
        discussion: """
        The output mirrors the sources. A BIDS dataset stays a BIDS dataset: defaced images under \
        their own names, every other file copied (sourcedata/ and derivatives/ are left out: they \
        may show the face), face masks, QC pictures and reports under derivatives/defacer/. \
        Other scans get <name>_defaced.nii.gz, _face_mask.nii.gz, _qc.png and _deface.json; a \
        DICOM folder becomes a folder of defaced series. DIR/.defacer-batch/manifest.json records \
        every input's checksum and outcome: the same command again does only what is missing or \
        changed. Exit status: 0 all defaced, 1 some failed or left, 2 nothing could run, 130 stopped.
        """
    )

    @Argument(help: "Scan files, folders, BIDS datasets or @LIST files (one path a line).")
    var sources: [String] = []

    @Option(help: "The output folder (receives the defaced tree and the manifest).")
    var output: String?

    @Option(help: "Parallel workers (default: what the cores and memory allow).")
    var jobs: Int?

    @OptionGroup var model: ModelOptions

    @OptionGroup var defacing: DefacingOptions

    @OptionGroup var faceMethod: FaceMethodOptions

    @Option(help: "The DICOM converter: a program on PATH or a path.")
    var dcm2niix = "dcm2niix"

    @Flag(help: "Run as a Slurm array job instead of on this machine.")
    var slurm = false

    @Option(help: "Slurm partition.")
    var partition: String?

    @Option(help: "Time limit per array task in minutes (default: from measured per-scan times).")
    var timeLimit: Int?

    @Option(help: "Memory per array task in MB (default: from measured per-scan needs).")
    var memPerJob: Int?

    @Option(help: "At most this many array tasks running at once.")
    var maxRunning: Int?

    @Flag(help: "Follow the Slurm job to its end (resubmitting failed tasks once).")
    var wait = false

    @Option(help: "Show the progress of the batch in this folder and exit.")
    var status: String?

    func validate() throws {
        if status != nil { return }
        guard output != nil else { throw ValidationError("give --output DIR (or --status DIR)") }
        guard !sources.isEmpty else { throw ValidationError("give at least one SOURCE") }
        if let jobs, jobs < 1 { throw ValidationError("--jobs must be at least 1") }
        if !slurm, partition != nil || timeLimit != nil || memPerJob != nil || maxRunning != nil || wait {
            throw ValidationError("--partition, --time-limit, --mem-per-job, --max-running and --wait need --slurm")
        }
    }

    func run() throws {
        let cwd = FileManager.default.currentDirectoryPath
        if let status {
            let code = BatchStatus.show(BatchFolder(output: DurableFile.resolve(status, against: cwd)))
            if code != 0 { throw ExitCode(code) }
            return
        }
        var settings = BatchSettings(mode: model.mode.rawValue, keepEars: defacing.keepEars, marginMM: defacing.margin,
                                     models: DurableFile.resolve(model.models, against: cwd),
                                     dcm2niix: dcm2niix.contains("/") ? DurableFile.resolve(dcm2niix, against: cwd) : dcm2niix)
        if let folder = faceMethod.model, faceMethod.method == .nnunet {
            settings.faceModel = DurableFile.resolve(folder, against: cwd)
            settings.removeLabels = try faceMethod.labels()
        }
        var run = BatchRun(folder: BatchFolder(output: DurableFile.resolve(output ?? "", against: cwd)), settings: settings)
        run.jobs = jobs
        if slurm {
            run.slurm = SlurmOptions(partition: partition, timeLimitMinutes: timeLimit, memPerJobMB: memPerJob,
                                     maxRunning: maxRunning)
            run.waitForSlurm = wait
        }
        let code = run.execute(sources: sources)
        if code != 0 { throw ExitCode(code) }
    }
}
