import Engine
import Foundation

/// Removes from a dcm2niix BIDS sidecar every key that names or identifies the patient, the
/// staff, the site or the device (`-ba y` already drops the patient's own fields; institution
/// names and addresses, station names, device serial numbers and free-text comments stay in
/// it), acquisition dates and times unless they are kept on purpose, and any key whose value
/// still contains an identifying value read from the DICOM headers.
package struct SidecarScrubber: Sendable {
    package var identifiers: DicomIdentifiers
    package var keepAcquisitionTimes: Bool

    /// Keys removed by name.
    package static let identifyingKeys: Set<String> = [
        "AccessionNumber", "InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName",
        "StationName", "DeviceSerialNumber", "ReferringPhysicianName", "PerformingPhysicianName",
        "OperatorsName", "PhysiciansOfRecord", "NameOfPhysiciansReadingStudy", "RequestingPhysician",
        "StudyID", "RequestedProcedureID", "PerformedProcedureStepID", "ScheduledProcedureStepID",
        "AdmissionID", "MedicalRecordLocator", "OtherPatientIDs", "OtherPatientNames",
        "AdditionalPatientHistory",
    ]
    /// Parts of key names that always mean an identifying value.
    package static let identifyingParts = ["Physician", "Operator", "Institution", "Address", "Telephone", "SerialNumber",
                                   "BirthDate", "Accession", "Comment", "UID"]
    /// Dates and times of the acquisition (removed unless `keepAcquisitionTimes`).
    package static let timeKeys: Set<String> = [
        "AcquisitionDateTime", "AcquisitionDate", "AcquisitionTime", "StudyDate", "StudyTime", "SeriesDate",
        "SeriesTime", "ContentDate", "ContentTime", "InstanceCreationDate", "InstanceCreationTime",
        "PerformedProcedureStepStartDate", "PerformedProcedureStepStartTime", "PerformedProcedureStepEndDate",
        "PerformedProcedureStepEndTime", "DateOfLastCalibration", "TimeOfLastCalibration", "TimeOfLastRescale",
    ]

    /// Whether a key is removed whatever its value.
    package func removesKey(_ key: String) -> Bool {
        if Self.identifyingKeys.contains(key) { return true }
        if key.hasPrefix("Patient") && key != "PatientPosition" { return true }
        if Self.identifyingParts.contains(where: { key.contains($0) }) { return true }
        if !keepAcquisitionTimes && (Self.timeKeys.contains(key) || key.contains("Date")) { return true }
        return false
    }

    /// The scrubbed sidecar (pretty, sorted keys) and the names of the keys removed; nil when
    /// `data` is not a JSON object.
    package func scrub(_ data: Data) -> (json: Data, removed: [String])? {
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return nil }
        var kept: [String: Any] = [:]
        var removed: [String] = []
        for (key, value) in object {
            if removesKey(key) || containsIdentifier(value) { removed.append(key) } else { kept[key] = value }
        }
        guard let out = try? JSONSerialization.data(withJSONObject: kept, options: [.prettyPrinted, .sortedKeys]) else { return nil }
        return (out, removed.sorted())
    }

    /// Whether a value, or any string inside it, contains an identifying value.
    package func containsIdentifier(_ value: Any) -> Bool {
        switch value {
        case let s as String: identifiers.occurs(in: s, includingAcquisitionDates: !keepAcquisitionTimes)
        case let list as [Any]: list.contains { containsIdentifier($0) }
        case let object as [String: Any]: object.contains { removesKey($0.key) || containsIdentifier($0.value) }
        default: false
        }
    }
}

/// Names for the series of a dropped folder and for its outbox folder, free of identifying values.
package enum SeriesNaming {
    /// `<SeriesNumber>_<description>` with only letters, digits, `-` and `_`; words that
    /// contain an identifier are dropped (and the whole description when one remains).
    package static func name(number: Int?, description: String, identifiers: DicomIdentifiers, fallback: String) -> String {
        let words = description.split(whereSeparator: { !isNameCharacter($0) || $0 == "_" })
            .map(String.init)
            .filter { !identifiers.occurs(in: $0) }
        var text = String(words.joined(separator: "_").prefix(48))
        while text.hasSuffix("_") || text.hasSuffix("-") { text.removeLast() }
        if identifiers.occurs(in: text) { text = "" }
        let prefix = number.map { "\($0)" } ?? fallback
        return text.isEmpty ? prefix : prefix + "_" + text
    }

    /// The suffix dcm2niix gave one of several images of a series (`a`, `_e2`, `_ph`,
    /// `_i00001`), restricted to letters, digits, `-` and `_`.
    package static func converterSuffix(of image: String) -> String {
        var stem = DurableFile.fileName(of: image)
        if stem.hasSuffix(".nii.gz") { stem.removeLast(7) }
        let suffix = stem.dropFirst(Dcm2niix.outputBase.count)
        let clean = String(suffix.filter(isNameCharacter))
        return clean.isEmpty || clean.hasPrefix("_") ? clean : "_" + clean
    }

    /// Letters, digits, `-` and `_` (ASCII only).
    package static func isNameCharacter(_ c: Character) -> Bool {
        guard c.isASCII else { return false }
        return c.isLetter || c.isNumber || c == "-" || c == "_"
    }

    /// The outbox folder's name: the dropped folder's name unless it contains an identifying
    /// value, then the scan id.
    package static func folderName(_ dropped: String, identifiers: DicomIdentifiers, scanID: String) -> String {
        identifiers.occurs(in: dropped) ? scanID : dropped
    }
}
