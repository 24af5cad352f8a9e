import Engine

/// What defacer reads from one DICOM file's header: enough to group files into series, to
/// check a series' slice geometry, to name it, and to know which values identify the patient,
/// the staff or the site (so that they can be kept out of every output). Values stay in
/// memory; they are never logged.
package struct DicomHeader: Sendable {
    package var transferSyntax = ""
    package var sopClassUID = ""
    package var seriesUID = ""
    package var seriesNumber: Int?
    package var seriesDescription = ""
    /// (0020,0037): row and column direction cosines.
    package var orientation: [Double]?
    /// (0020,0032): the position of the first pixel (mm, LPS).
    package var position: [Double]?
    /// (0028,0008): frames in this file (enhanced multi-frame files hold a whole series).
    package var frames = 1
    /// Whether the file holds pixel data (DICOMDIR, reports and presentation states do not).
    package var hasPixelData = false
    /// Values that name or identify a person, an institution or a device.
    package var identifiers = DicomIdentifiers()
}

/// Why a file is not a complete DICOM file, in plain words (without its name or contents).
/// Deliberately shaped like `NiftiError` (a code and its words).
package struct DicomReadError: Error, Sendable, Equatable, CustomStringConvertible {
    package enum Code: String, Sendable {
        /// Not DICOM at all (no DICM marker and no plausible first element).
        case notDicom
        /// Cut off: an element or the pixel data runs past the end of the file.
        case cutOff
        /// The element structure is broken (bad VR, lengths that do not add up).
        case damaged
        /// A form defacer cannot read (deflated data sets).
        case unsupported
        /// The file cannot be opened or read.
        case unreadable
    }

    package var code: Code
    package var reason: String

    package init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    package var description: String { reason }
}

/// Tags that defacer reads, as `group << 16 | element`.
package enum DicomTag {
    package static let transferSyntax: UInt32 = 0x0002_0010
    package static let mediaStorageSOPClass: UInt32 = 0x0002_0002
    package static let sopClass: UInt32 = 0x0008_0016
    package static let seriesUID: UInt32 = 0x0020_000E
    package static let seriesNumber: UInt32 = 0x0020_0011
    package static let seriesDescription: UInt32 = 0x0008_103E
    package static let imagePosition: UInt32 = 0x0020_0032
    package static let imageOrientation: UInt32 = 0x0020_0037
    package static let numberOfFrames: UInt32 = 0x0028_0008
    package static let pixelData: UInt32 = 0x7FE0_0010
    package static let floatPixelData: UInt32 = 0x7FE0_0008
    package static let doublePixelData: UInt32 = 0x7FE0_0009

    // Deliberately alike: the tag tables below are sets of tags, each with its keyword.

    /// Person names (PN): split into their components when matched.
    package static let personNames: Set<UInt32> = [
        0x0010_0010, // PatientName
        0x0010_1001, // OtherPatientNames
        0x0010_1005, // PatientBirthName
        0x0010_1060, // PatientMotherBirthName
        0x0008_0090, // ReferringPhysicianName
        0x0008_1048, // PhysiciansOfRecord
        0x0008_1050, // PerformingPhysicianName
        0x0008_1060, // NameOfPhysiciansReadingStudy
        0x0008_1070, // OperatorsName
        0x0032_1032, // RequestingPhysician
        0x0040_A123, // PersonName (in structured content)
        0x0040_0006, // ScheduledPerformingPhysicianName
    ]

    /// Identifiers, addresses, institutions and devices: matched as whole values.
    package static let identifying: Set<UInt32> = [
        0x0010_0020, // PatientID
        0x0010_1000, // OtherPatientIDs
        0x0010_1040, // PatientAddress
        0x0010_2154, // PatientTelephoneNumbers
        0x0010_1090, // MedicalRecordLocator
        0x0008_0050, // AccessionNumber
        0x0008_0080, // InstitutionName
        0x0008_0081, // InstitutionAddress
        0x0008_0092, // ReferringPhysicianAddress
        0x0008_0094, // ReferringPhysicianTelephoneNumbers
        0x0008_1010, // StationName
        0x0008_1040, // InstitutionalDepartmentName
        0x0018_1000, // DeviceSerialNumber
        0x0020_0010, // StudyID
        0x0040_1001, // RequestedProcedureID
        0x0040_0009, // ScheduledProcedureStepID
        0x0040_0253, // PerformedProcedureStepID
        0x0040_2016, // PlacerOrderNumberImagingServiceRequest
        0x0040_2017, // FillerOrderNumberImagingServiceRequest
        0x0038_0010, // AdmissionID
    ]

    /// Addresses: matched as a whole and line by line.
    package static let addresses: Set<UInt32> = [0x0010_1040, 0x0008_0081, 0x0008_0092]

    /// The birth date: always an identifier.
    package static let birthDate: UInt32 = 0x0010_0030

    /// Acquisition dates (DA, or the date part of a DT): identifiers unless acquisition
    /// date-times are kept on purpose.
    package static let acquisitionDates: Set<UInt32> = [
        0x0008_0020, // StudyDate
        0x0008_0021, // SeriesDate
        0x0008_0022, // AcquisitionDate
        0x0008_0023, // ContentDate
        0x0008_002A, // AcquisitionDateTime
    ]

    /// Whether the value of `tag` is needed (so that it is read at all).
    package static func isWanted(_ tag: UInt32) -> Bool {
        personNames.contains(tag) || identifying.contains(tag) || acquisitionDates.contains(tag) || tag == birthDate
            || [sopClass, seriesUID, seriesNumber, seriesDescription, imagePosition, imageOrientation, numberOfFrames].contains(tag)
    }
}
