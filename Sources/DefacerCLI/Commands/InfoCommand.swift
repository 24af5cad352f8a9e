import ArgumentParser
import Engine
import Foundation

/// `defacer info FILE`: prints a scan's geometry, data type and scaling.
struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Show a scan's dimensions, voxel size, data type, scaling and orientation."
    )

    @Argument(help: "A NIfTI file (.nii, .nii.gz, .hdr/.img).")
    var file: String

    @Flag(help: "Print JSON instead of text.")
    var json = false

    func run() throws {
        let header = try NiftiReader(maxVoxels: .max).check(file)  // the data is read through, not kept
        let info = ScanInfo(file: file, header: header)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(info), as: UTF8.self))
        } else {
            print(Self.text(info))
        }
    }

    static func text(_ i: ScanInfo) -> String {
        func list(_ v: [Double]) -> String { v.map { String(format: "%g", $0) }.joined(separator: " x ") }
        let rows = i.affine.map { row in row.map { String(format: "%10.4f", $0) }.joined(separator: " ") }
        return """
        file:         \(i.file)
        format:       \(i.format)
        dimensions:   \(i.dimensions.map(String.init).joined(separator: " x "))
        voxel size:   \(list(i.voxelSizeMM)) mm
        data type:    \(i.dataType)
        scaling:      slope \(String(format: "%g", i.sclSlope)), intercept \(String(format: "%g", i.sclInter))
        orientation:  \(i.orientation)
        volumes:      \(i.volumes)
        sform code:   \(i.sformCode)
        qform code:   \(i.qformCode)
        extensions:   \(i.headerExtensions)
        affine (\(i.affineSource)):
        \(rows.joined(separator: "\n"))
        """
    }
}
