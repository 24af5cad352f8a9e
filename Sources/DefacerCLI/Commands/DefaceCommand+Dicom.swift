import DICOM
import DropFolders
import Engine
import Foundation
import Glibc

extension DefaceCommand {
    /// `defacer deface FOLDER`: a DICOM series or study folder, converted with dcm2niix, each
    /// series defaced into `--output` (default `FOLDER_defaced/`), which must not exist yet.
    func runDicom(options: DefaceOptions) throws {
        guard mask == nil, qc == nil, report == nil, brainMask == nil else {
            throw CommandFailure(message: "\(input) is a folder (DICOM): --mask, --qc, --report and --brain-mask name single files; use --output FOLDER, which receives every series' outputs")
        }
        var settings = DicomSettings()
        settings.converter = dcm2niix
        settings.converterPath = Dcm2niix.locate(dcm2niix)
        settings.keepAcquisitionTimes = keepAcquisitionTimes
        if let problem = settings.converterProblem { throw CommandFailure(message: problem) }
        var folder = input
        while folder.count > 1 && folder.hasSuffix("/") { folder.removeLast() }
        let target = output ?? folder + "_defaced"
        if access(target, F_OK) == 0 {
            throw CommandFailure(message: "\(target) already exists; defacer never overwrites (choose another --output)")
        }
        let parent = DurableFile.directory(of: DurableFile.resolve(target, against: FileManager.default.currentDirectoryPath))
        var template = Array((parent + "/.defacer-dicom-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else {
            throw CommandFailure(message: "cannot create a work folder in \(parent): \(String(cString: strerror(errno)))")
        }
        let work = String(cString: made)
        defer { DurableFile.removeTree(work) }

        let defacer = try Defacer(options: options)
        var outputs: Set<OutputKind> = [.defaced, .faceMask, .qcPicture, .report]
        if brainMaskOutputs { outputs.insert(.brainMask) }
        let pipeline = DicomStudyDefacer(settings: settings, processor: defacer, outputs: outputs)
        let result = pipeline.run(folder: folder, work: work + "/convert", output: target)
        if let failure = result.failure {
            DurableFile.removeTree(target)
            var message = "\(folder): not defaced: \(failure.reason)"
            for file in failure.brokenFiles.prefix(20) { message += "\n  \(file.path) \(file.reason)" }
            throw CommandFailure(message: message)
        }
        for series in result.series {
            let label = "series \(series.number.map(String.init) ?? "?") (\(series.name))"
            if let reason = series.failure {
                print("not defaced \(label): \(reason)")
            } else {
                print("defaced \(label): \(series.written.filter { $0.hasSuffix("_defaced.nii.gz") }.joined(separator: ", ")), \(series.voxelsRemoved) voxels removed")
                for warning in series.warnings { print("warning: \(label): \(warning)") }
            }
        }
        guard result.defacedCount > 0 else {
            DurableFile.removeTree(target)
            throw CommandFailure(message: "\(folder): no series could be defaced")
        }
        print("wrote \(target)/")
        let missing = result.series.count - result.defacedCount
        if missing > 0 {
            throw CommandFailure(message: "\(missing) of \(result.series.count) series were not defaced (see above); the others are in \(target)/")
        }
    }
}
