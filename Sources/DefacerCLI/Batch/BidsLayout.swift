import Engine
import Foundation

/// BIDS naming for a batch: which anatomical images may show a face, and the derivative names of
/// the face mask, QC picture and report under `derivatives/defacer/`.
enum BidsLayout {
    /// `anat/` images that hold no face, copied as they are. Every other `anat/` image is
    /// defaced (fail closed: T1w, T2w, FLAIR, PDw, T2starw, inplaneT1/T2, angio, but also
    /// MP2RAGE, MPM, VFA... show the face).
    static let noFaceSuffixes: Set<String> = ["defacemask"]

    /// Top-level folders never copied: raw DICOMs and earlier derivatives may show the face.
    static let notCopied: Set<String> = ["sourcedata", "derivatives"]

    /// Entities that come after `mod` in BIDS's entity order.
    static let entitiesAfterMod = ["echo", "flip", "inv", "mt", "part", "chunk"]

    static let derivativesFolder = "derivatives/defacer"

    static func isDataset(_ folder: String) -> Bool {
        FileManager.default.fileExists(atPath: folder + "/dataset_description.json")
    }

    /// The suffix (`T1w`) of a BIDS image under `sub-*/[ses-*/]anat/` that may show a face;
    /// nil for every other file.
    static func faceSuffix(of relative: String) -> String? {
        let parts = relative.split(separator: "/")
        guard parts.count >= 3, parts[parts.count - 2] == "anat", parts[0].hasPrefix("sub-") else { return nil }
        let name = String(parts[parts.count - 1])
        guard name.hasSuffix(".nii.gz") || name.hasSuffix(".nii") else { return nil }
        let stem = OutputNames.stem(of: name)
        guard let underscore = stem.lastIndex(of: "_") else { return nil }
        let suffix = String(stem[stem.index(after: underscore)...])
        return noFaceSuffixes.contains(suffix) ? nil : suffix
    }

    /// The outputs of a BIDS anatomical image: the defaced image under its own name, and the mask
    /// (`…_mod-T1w_defacemask.nii.gz`), the QC picture (`.png`) and the report (its `.json`
    /// sidecar) under `derivatives/defacer/` at the same place in the tree.
    static func outputs(relative: String, suffix: String, root: String) -> [String: String] {
        let folder = DurableFile.directory(of: relative)
        let stem = OutputNames.stem(of: DurableFile.fileName(of: relative))
        var entities = stem.dropLast(suffix.count + 1).split(separator: "_").map(String.init)
        let position = entities.firstIndex { entity in entitiesAfterMod.contains { entity.hasPrefix($0 + "-") } }
        entities.insert("mod-\(suffix)", at: position ?? entities.count)
        let base = prefix(root) + derivativesFolder + "/" + folder + "/" + entities.joined(separator: "_") + "_defacemask"
        return [
            "defaced": prefix(root) + OutputNames.stem(of: relative) + ".nii.gz",
            "faceMask": base + ".nii.gz",
            "qcPicture": base + ".png",
            "report": base + ".json",
        ]
    }

    /// `root/` for a non-empty root.
    static func prefix(_ root: String) -> String { root.isEmpty ? "" : root + "/" }

    /// The dataset's own description with the defacing noted in `GeneratedBy`.
    static func defacedDescription(_ original: Data?, settings: BatchSettings) -> [String: Any] {
        var description = (original.flatMap { try? JSONSerialization.jsonObject(with: $0) } as? [String: Any]) ?? [:]
        if description["Name"] == nil { description["Name"] = "Defaced dataset" }
        if description["BIDSVersion"] == nil { description["BIDSVersion"] = "1.8.0" }
        var generated = description["GeneratedBy"] as? [[String: Any]] ?? []
        generated.append(generatedBy(settings))
        description["GeneratedBy"] = generated
        return description
    }

    /// `derivatives/defacer/dataset_description.json`.
    static func derivativeDescription(settings: BatchSettings) -> [String: Any] {
        [
            "Name": "defacer face masks, QC pictures and reports",
            "BIDSVersion": "1.8.0",
            "DatasetType": "derivative",
            "GeneratedBy": [generatedBy(settings)],
        ]
    }

    static func generatedBy(_ settings: BatchSettings) -> [String: Any] {
        [
            "Name": "defacer",
            "Version": DefacerVersion.string,
            "Description": "Face\(settings.keepEars ? "" : " and ears") removed from the anatomical images "
                + "(HD-BET \(settings.mode) brain mask, \(settings.marginMM) mm brain margin kept)",
        ]
    }
}
