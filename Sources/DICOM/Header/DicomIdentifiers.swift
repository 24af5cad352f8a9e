import Engine

/// Values from DICOM headers that name or identify a person, an institution or a device
/// (names, IDs, birth dates, addresses, accession numbers, device serials, and acquisition
/// dates unless those are kept on purpose). They are held in memory only, to find and remove
/// any of them that survived into a sidecar, a series name or a folder name; never logged.
///
/// Matching compares upper-case letters and digits only, so `DOE^JANE`, `Jane Doe` and
/// `jane_doe` all contain the components `DOE` and `JANE`. Values shorter than three letters
/// or digits are not matched (too common to mean anything).
package struct DicomIdentifiers: Sendable, Equatable {
    private(set) var values: Set<String> = []
    private(set) var acquisitionDates: Set<String> = []

    package static let minimumLength = 3

    package var isEmpty: Bool { values.isEmpty && acquisitionDates.isEmpty }

    /// A person name (PN): each component (family, given, middle, prefix...) and the whole name.
    package mutating func addName(_ name: String) {
        for group in name.split(separator: "\\") {
            insert(String(group))
            for part in group.split(whereSeparator: { "^= ,.-'".contains($0) }) { insert(String(part)) }
        }
    }

    /// An address: the whole of it and each line (`^`, `,` or a line break between lines).
    package mutating func addAddress(_ address: String) {
        insert(address)
        for line in address.split(whereSeparator: { "^,\r\n".contains($0) }) { insert(String(line)) }
    }

    /// Any other identifying value (every value of a multi-valued element).
    package mutating func addValue(_ value: String) {
        for part in value.split(separator: "\\") { insert(String(part)) }
    }

    /// A study, series, acquisition or content date (YYYYMMDD).
    package mutating func addAcquisitionDate(_ date: String) {
        let key = Self.normalize(date)
        if key.count >= 8 { acquisitionDates.insert(key) }
    }

    package mutating func merge(_ other: DicomIdentifiers) {
        values.formUnion(other.values)
        acquisitionDates.formUnion(other.acquisitionDates)
    }

    private mutating func insert(_ value: String) {
        let key = Self.normalize(value)
        if key.count >= Self.minimumLength { values.insert(key) }
    }

    /// The identifiers to look for: acquisition dates too, unless they are kept on purpose.
    package func keys(includingAcquisitionDates: Bool) -> Set<String> {
        includingAcquisitionDates ? values.union(acquisitionDates) : values
    }

    /// Whether `text` contains any of the identifiers.
    package func occurs(in text: String, includingAcquisitionDates: Bool = true) -> Bool {
        let normalized = Self.normalize(text)
        guard normalized.count >= Self.minimumLength else { return false }
        return keys(includingAcquisitionDates: includingAcquisitionDates).contains { normalized.contains($0) }
    }

    /// Upper-case ASCII letters and digits of `text` (other letters are kept, upper-cased).
    package static func normalize(_ text: String) -> String {
        String(text.uppercased().unicodeScalars.filter { $0.properties.isAlphabetic || ("0"..."9").contains($0) }.map(Character.init))
    }
}
