extension Defacer {
    /// Compares the header's front and top with the anatomy. Returns the check in words for
    /// the report; throws when the anatomy says the header is wrong, or when the header has
    /// no orientation and the anatomy cannot tell.
    static func checkOrientation(_ anatomy: AnatomyOrientation, header: NiftiHeader, code: String, input: String,
                                 warnings: inout [String]) throws(DefaceError) -> String {
        let hasOrientation = header.qformCode > 0 || header.sformCode > 0
        let details = anatomy.summary
        if anatomy.anterior < 0 || anatomy.superior < 0 {
            let what = anatomy.anterior < 0 ? "the face is at the back of the head" : "the neck is at the top of the head"
            let says = hasOrientation ? "the header says the voxels are stored \(code)" : "the header has no orientation (voxel order taken as \(code))"
            throw DefaceError(.orientationDisagrees, path: input, reason:
                "\(says), but \(what) (\(details)); the orientation must be corrected before defacing")
        }
        if hasOrientation {
            if anatomy.anterior == 0 || anatomy.superior == 0 {
                return "header orientation \(code) kept; the anatomy could not confirm it all (\(details))"
            }
            return "header orientation \(code) agrees with the anatomy (\(details))"
        }
        // without the header, up is taken only where two independent signs agree on it
        guard anatomy.anterior > 0, anatomy.superiorAgreed else {
            throw DefaceError(.orientationDisagrees, path: input, reason:
                "the header has no orientation and the anatomy does not show clearly where the front and the top are (\(details))")
        }
        warnings.append("the header has no orientation: front and top were taken from the anatomy (left and right do not matter for defacing)")
        return "no orientation in the header; front and top taken from the anatomy (\(details))"
    }

    /// Typical head tissue removed from an adult (ml): Colin27 and pydeface's template
    /// remove about 200 to 400 ml of tissue. Far outside this range is reported.
    static let typicalRemovedML = 60.0...900.0

    /// Warnings for results out of the ordinary.
    static func unusual(removal: Removal, features: [String: FeatureEstimate], faceInView: Bool, voxelML: Double) -> [String] {
        var warnings: [String] = []
        let ml = Double(removal.headRemoved) * voxelML
        if faceInView, !typicalRemovedML.contains(ml) {
            warnings.append(String(format: "%.0f ml of head removed, outside the usual %.0f-%.0f ml", ml,
                                   typicalRemovedML.lowerBound, typicalRemovedML.upperBound))
        }
        let kept = Double(removal.heldByBudget) * voxelML
        if kept > FaceBudget.disagreementML {
            // kept, not refused: the budget only ever keeps tissue, and the eye and nose
            // estimates below say whether the face still went
            warnings.append(String(format: "the brain mask and the face budget disagree: %.0f ml of the face region kept that the brain mask alone would have removed; check the brain outline in the QC picture", kept))
        }
        for name in ["ear_left", "ear_right"] where features[name]?.found != true {
            warnings.append("\(name.replacingOccurrences(of: "_", with: " ")) not found in the field of view")
        }
        for name in ["eye_left", "eye_right", "nose", "mouth", "ear_left", "ear_right"] {
            guard faceInView || name.hasPrefix("ear"), let f = features[name], f.found else { continue }
            let target = name.hasPrefix("ear") ? 0.8 : 0.9
            if f.removedFraction < target {
                warnings.append(String(format: "%@: an estimated %.0f%% of it removed", name.replacingOccurrences(of: "_", with: " "),
                                       100 * f.removedFraction))
            }
        }
        return warnings
    }

    func makeReport(volume: NiftiVolume, input: String, view: RASReorientation, brainML: Double, frame: HeadFrame,
                    removal: Removal, voxelML: Double, faceInView: Bool, warnings: [String]) -> DefaceReport {
        var report = DefaceReport(
            model: extractor.descriptor.name, modelSource: extractor.descriptor.source, mode: options.mode.rawValue,
            input: input, inputSHA256: "", dimensions: volume.header.dimensions, voxelSizeMM: volume.header.voxelSize,
            volumes: volume.volumeCount, orientation: view.orientation.code, marginMM: options.marginMM,
            earsRemoved: options.removeEars, brainVolumeML: brainML,
            headTiltDegrees: ["pitch": frame.pitch * 180 / .pi, "yaw": frame.yaw * 180 / .pi, "roll": frame.roll * 180 / .pi],
            voxelsRemoved: removal.count, faceVoxelsRemoved: removal.faceCount, earVoxelsRemoved: removal.earCount,
            volumeRemovedML: Double(removal.count) * voxelML, brainVoxelsTouched: removal.touched,
            faceInFieldOfView: faceInView, warnings: warnings)
        report.headVolumeRemovedML = Double(removal.headRemoved) * voxelML
        report.headRemovedPercent = 100 * Double(removal.headRemoved) / Double(max(1, removal.headCount))
        report.minDistanceToBrainMM = removal.minDistance.isFinite ? Double(removal.minDistance) : nil
        report.earBudgetMM = Self.earBudgetMM
        report.faceBudgetKeptML = Double(removal.heldByBudget) * voxelML
        return report
    }
}
