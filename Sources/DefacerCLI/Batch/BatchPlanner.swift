import Engine
import Foundation
import Glibc

/// What a batch's sources hold: the scans to deface, the files to copy as they are (a BIDS
/// dataset's other files) and the BIDS datasets whose descriptions note the defacing.
struct BatchPlan: Sendable {
    /// A file copied unchanged: absolute source, path relative to the output folder.
    struct Copy: Sendable {
        var from: String
        var to: String
    }

    /// A BIDS dataset among the sources: its folder and its place in the output.
    struct Dataset: Sendable {
        var source: String
        var root: String
    }

    var items: [BatchItem] = []
    var copies: [Copy] = []
    var datasets: [Dataset] = []
}

/// Walks the sources (files, folders, BIDS datasets, `@LIST` files) into a plan whose outputs
/// mirror the sources' layout: one folder source fills the output folder itself; several
/// sources each get a folder named after them; single files land at the top.
struct BatchPlanner {
    var settings: BatchSettings
    var workingFolder = FileManager.default.currentDirectoryPath

    func plan(_ sources: [String]) throws(BatchError) -> BatchPlan {
        let paths = try expand(sources)
        guard !paths.isEmpty else { throw BatchError("no sources given") }
        var plan = BatchPlan()
        let folders = paths.filter(Self.isFolder)
        for path in paths {
            let name = DurableFile.fileName(of: path)
            if Self.isFolder(path) {
                try walkFolder(path, root: folders.count == 1 && paths.count == 1 ? "" : name, into: &plan)
            } else if BatchSources.isNifti(path) {
                let stem = OutputNames.stem(of: name)
                plan.items.append(BatchItem(kind: .nifti, input: path, inputSHA256: try BatchSources.hash(file: path),
                                            outputs: Self.besideOutputs(stem)))
            } else {
                throw BatchError("\(path) is neither a NIfTI file (.nii, .nii.gz, .hdr) nor a folder")
            }
        }
        var seen: [String: String] = [:]
        for item in plan.items {
            for output in item.placementOrder.reversed() {  // the defaced scan first, for the message
                if let other = seen[output] {
                    throw BatchError("\(item.input) and \(other) would both be written to \(output); give them as separate batches")
                }
                seen[output] = item.input
            }
        }
        return plan
    }

    /// Absolute paths of the sources, `@LIST` files read (one path a line, `#` comments).
    func expand(_ sources: [String]) throws(BatchError) -> [String] {
        var paths: [String] = []
        for source in sources {
            if source.hasPrefix("@") {
                let list = DurableFile.resolve(String(source.dropFirst()), against: workingFolder)
                guard let text = try? String(contentsOfFile: list, encoding: .utf8) else {
                    throw BatchError("cannot read the list \(list)")
                }
                let base = DurableFile.directory(of: list)
                for line in text.split(whereSeparator: \.isNewline) {
                    let entry = line.trimmingCharacters(in: .whitespaces)
                    if entry.isEmpty || entry.hasPrefix("#") { continue }
                    paths.append(DurableFile.resolve(entry, against: base))
                }
            } else {
                paths.append(DurableFile.resolve(source, against: workingFolder))
            }
        }
        for path in paths where access(path, R_OK) != 0 {
            throw BatchError("\(path) cannot be read: \(String(cString: strerror(errno)))")
        }
        return paths
    }

    /// A folder: a BIDS dataset, a DICOM folder, or a tree walked for both kinds of scans.
    func walkFolder(_ folder: String, root: String, into plan: inout BatchPlan) throws(BatchError) {
        if BidsLayout.isDataset(folder) {
            plan.datasets.append(.init(source: folder, root: root))
            for relative in BatchSources.files(under: folder, skipping: BidsLayout.notCopied) {
                let path = folder + "/" + relative
                if let suffix = BidsLayout.faceSuffix(of: relative) {
                    plan.items.append(BatchItem(kind: .nifti, input: path, inputSHA256: try BatchSources.hash(file: path),
                                                outputs: BidsLayout.outputs(relative: relative, suffix: suffix, root: root)))
                } else if relative != "dataset_description.json" {
                    plan.copies.append(.init(from: path, to: BidsLayout.prefix(root) + relative))
                }
            }
            return
        }
        for scan in BatchSources.scans(under: folder) {
            let path = scan.relative.isEmpty ? folder : folder + "/" + scan.relative
            let target = BidsLayout.prefix(root) + scan.relative
            if scan.isDicom {
                let out = target.isEmpty ? DurableFile.fileName(of: folder) + "_defaced" : target
                plan.items.append(BatchItem(kind: .dicom, input: path, inputSHA256: try BatchSources.hash(folder: path),
                                            outputs: ["folder": out]))
            } else {
                plan.items.append(BatchItem(kind: .nifti, input: path, inputSHA256: try BatchSources.hash(file: path),
                                            outputs: Self.besideOutputs(OutputNames.stem(of: target))))
            }
        }
    }

    /// The names `defacer deface` writes beside a scan, for a stem relative to the output folder.
    static func besideOutputs(_ stem: String) -> [String: String] {
        ["defaced": stem + "_defaced.nii.gz", "faceMask": stem + "_face_mask.nii.gz",
         "qcPicture": stem + "_qc.png", "report": stem + "_deface.json"]
    }

    static func isFolder(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && st.st_mode & S_IFMT == S_IFDIR
    }
}
