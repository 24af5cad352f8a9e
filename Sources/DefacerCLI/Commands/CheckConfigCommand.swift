import ArgumentParser
import DICOM
import DropFolders
import Engine
import Foundation

/// `defacer check-config --config FILE`: validates a configuration and explains each problem.
struct CheckConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Check a drop-folder service configuration and explain each problem.",
        discussion: """
        Checks the TOML syntax, every key's type and range, unknown keys, the models folder, \
        dcm2niix (when an inbox takes DICOM folders), and the folders: present, readable and writable by the user running this command (run it as \
        the service's user: sudo -u defacer defacer check-config), each inbox's folders on one \
        file system, no folder shared where it must not be, and which move each folder allows (rename; link+unlink where RENAME_NOREPLACE is refused, as on NFS; a verified copy across bind mounts). A missing work folder is created. \
        With executor = "slurm": Slurm's client tools are installed, and a tiny job on the configured partition reads a \
        marker written into each work folder, to show that the nodes see it; --slurm-check-seconds bounds how long it may take.
        """
    )

    @Option(help: "The TOML configuration.")
    var config = "/etc/defacer/defacer.toml"

    @Option(help: "With executor = \"slurm\": how long the check job may wait for a node and run, seconds.")
    var slurmCheckSeconds = 120.0

    func run() throws {
        let settings = try ConfigLoader.load(config)
        var problems: [String] = []
        print("\(settings.sourcePath): valid")
        print("  max_jobs \(settings.maxJobs)\(settings.jobsAtOnceLimit.map { ", but \($0)" } ?? "") (\(settings.threadDescription)), settle \(settings.settleSeconds) s, rescan every \(settings.rescanSeconds) s")
        print("  models \(settings.models)")
        if settings.inboxes.contains(where: \.acceptsDicom), let converter = settings.dicom.dcm2niix {
            let d = settings.dicom
            print("  DICOM folders: dcm2niix \(converter.version() ?? "(version unknown: does it run?)") at \(converter.executable); complete after \(d.settleSeconds) s without change or at once with a \(DicomSettings.completeMarker) file; conversion time limit \(d.timeoutSeconds) s; acquisition dates and times \(d.keepAcquisitionTimes ? "kept" : "removed")")
        }
        for inbox in settings.inboxes {
            let d = inbox.defacing
            print("  inbox \(inbox.name): \(inbox.path)\(inbox.acceptsDicom ? " (NIfTI files and DICOM folders)" : " (NIfTI files only)")")
            print("    outbox \(inbox.outbox), failed \(inbox.failed), work \(inbox.work)\(inbox.archive.map { ", archive \($0)" } ?? "")")
            print("    \(d.mode.rawValue) mode, margin \(d.marginMM) mm, ears \(d.removeEars ? "removed" : "kept"), outputs \(OutputKind.allCases.filter { d.outputs.contains($0) }.map(\.rawValue).joined(separator: ", "))")
            if case .nnunet(let folder, let labels) = d.method {
                print("    face and ears: nnU-Net model \(folder), labels \(labels.isEmpty ? "all" : labels.map(String.init).joined(separator: ", "))")
            }
            let trials = RenameTrial.run(for: inbox)
            print("    moves: " + trials.map(\.line).joined(separator: "; "))
            problems += trials.filter { $0.method == nil }.map { "inbox \(inbox.name): \($0.line)" }
        }
        if settings.executor == .slurm {
            print("  executor slurm: \(settings.slurm.partition.map { "partition \($0)" } ?? "default partition"), at most \(settings.slurm.maxRunning) scans at once")
            let check = SlurmFolderCheck(settings: settings.slurm, timeoutSeconds: slurmCheckSeconds)
            for finding in check.run(folders: settings.inboxes.map(\.work)) {
                if finding.isProblem { problems.append(finding.message) } else {
                    print("    " + (finding.verdict == .visible ? "" : "warning: ") + finding.message)
                }
            }
        }
        if !problems.isEmpty {
            for problem in problems { FileHandle.standardError.write(Data("defacer: \(problem)\n".utf8)) }
            throw ExitCode(1)
        }
    }
}
