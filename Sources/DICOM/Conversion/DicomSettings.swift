import Engine

/// How DICOM folders are taken and converted (global keys of the config; `dicom` per inbox
/// says whether an inbox takes folders at all).
package struct DicomSettings: Sendable, Equatable {
    /// A dropped folder is taken once nothing in it has changed for this long (PACS-side tools
    /// use 60 s), or at once when it holds the marker file `.complete`.
    package var settleSeconds = 60.0
    /// The converter as configured: a program name looked up on PATH, or a path.
    package var converter = "dcm2niix"
    /// The converter's absolute path; nil when it was not found.
    package var converterPath: String?
    /// dcm2niix is stopped (and the folder goes to failed) after this long for one folder.
    package var timeoutSeconds = 600.0
    /// Keep acquisition dates and times in the sidecars (they are removed by default).
    package var keepAcquisitionTimes = false

    /// The defaults (as documented in etc/defacer.toml).
    package init() {}

    /// The marker file a sender may write last: the folder is complete at once.
    package static let completeMarker = ".complete"

    /// The converter, when it was found.
    package var dcm2niix: Dcm2niix? { converterPath.map { Dcm2niix(executable: $0) } }

    /// Why DICOM folders cannot be converted, in plain words, or nil when they can.
    package var converterProblem: String? {
        guard converterPath == nil else { return nil }
        return converter.contains("/")
            ? "\(converter) is not an executable program: DICOM folders cannot be converted (install the Debian package dcm2niix, fix the dcm2niix key, or set dicom = false in inboxes that take only NIfTI)"
            : "\(converter) is not installed (not found on PATH): DICOM folders cannot be converted (install the Debian package dcm2niix: apt-get install dcm2niix, or set dicom = false in inboxes that take only NIfTI)"
    }
}
