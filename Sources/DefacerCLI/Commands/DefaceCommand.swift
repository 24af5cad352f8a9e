import ArgumentParser
import DICOM
import Engine
import Foundation

/// `defacer deface INPUT`: removes the face and ears from one scan.
struct DefaceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deface",
        abstract: "Remove the face and ears from a scan, never touching the brain.",
        discussion: """
        Writes beside the input, unless told otherwise: <name>_defaced.nii.gz (same data type and \
        geometry), <name>_face_mask.nii.gz (1 = removed), <name>_qc.png and <name>_deface.json. \
        Exits non-zero, writing no defaced file, when the scan cannot be defaced with confidence.

        INPUT may also be a folder of DICOM files (one series, or a whole study): it is \
        converted with dcm2niix (anonymised sidecars), and every series is defaced into \
        --output (default FOLDER_defaced/): <series>_defaced.nii.gz, <series>_face_mask.nii.gz, \
        <series>_qc.png, <series>_deface.json, the sidecar <series>_defaced.json, and \
        conversion.json. Series that are not head scans (localisers, scouts) are reported and \
        skipped; the exit status is then non-zero.
        """
    )

    @Argument(help: "A NIfTI head scan (.nii, .nii.gz, .hdr/.img), 3D or 4D, or a folder of DICOM files.")
    var input: String

    @Option(help: "The defaced scan (for a DICOM folder: the folder that receives every series).")
    var output: String?

    @Option(help: "The removed region (uint8 NIfTI, 1 = removed).")
    var mask: String?

    @Option(help: "Also write the brain mask used as the guard (uint8 NIfTI).")
    var brainMask: String?

    @Option(help: "The QC picture (PNG).")
    var qc: String?

    @Option(help: "The report (JSON).")
    var report: String?


    @OptionGroup var defacing: DefacingOptions

    @OptionGroup var model: ModelOptions

    @OptionGroup var faceMethod: FaceMethodOptions

    @Option(help: "The DICOM converter (a DICOM folder only): a program on PATH or a path.")
    var dcm2niix = "dcm2niix"

    @Flag(help: "Keep acquisition dates and times in the sidecars (a DICOM folder only).")
    var keepAcquisitionTimes = false

    @Flag(help: "Also write each series' brain mask (a DICOM folder only).")
    var brainMaskOutputs = false

    func run() throws {
        var options = model.defaceOptions(marginMM: defacing.margin, removeEars: !defacing.keepEars)
        options.method = faceMethod.defaceMethod
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: input, isDirectory: &isFolder), isFolder.boolValue {
            try runDicom(options: options)
            return
        }
        var outputs = DefaceOutputs.beside(input)
        if let output { outputs.defaced = output }
        if let mask { outputs.faceMask = mask }
        if let qc { outputs.qcPicture = qc }
        if let report { outputs.report = report }
        outputs.brainMask = brainMask
        let result = try Defacer(options: options).deface(input: input, outputs: outputs)
        print(String(format: "defaced %@: removed %.1f ml (face %d voxels, ears %d), brain voxels touched: %d, %.1f s",
                     input as NSString, result.volumeRemovedML, result.faceVoxelsRemoved, result.earVoxelsRemoved,
                     result.brainVoxelsTouched, result.totalSeconds))
        if let region = result.faceRegion, let name = region.model {
            print("face and ears found by \(region.method) model \(name) (source: \(region.modelSource ?? "not stated"); licence: \(region.modelLicence ?? "not stated"))")
        }
        for warning in result.warnings { print("warning: \(warning)") }
        print("wrote \(outputs.defaced)")
    }
}
