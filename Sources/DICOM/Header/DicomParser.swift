import Engine
import Glibc

/// Reads the header of one DICOM file (Part 10 with its preamble, or a bare data set as old
/// exports write them) element by element with `pread`, without loading the pixel data, and
/// checks that every element, every sequence and the pixel data fit in the file: a cut-off or
/// damaged slice is told apart from a complete one before any converter sees it.
package struct DicomParser {
    private let fd: Int32
    private let size: Int
    private var cache: [UInt8] = []
    private var cacheStart = 0
    private var littleEndian = true
    private var elementCount = 0
    private(set) var header = DicomHeader()

    package static let undefinedLength: UInt32 = 0xFFFF_FFFF
    /// Explicit VRs whose length takes 4 bytes after 2 reserved ones.
    package static let longVRs: Set<String> = ["OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"]

    private init(fd: Int32, size: Int) {
        self.fd = fd
        self.size = size
    }

    /// Reads the header of the regular file at `path` (links are not followed).
    package static func read(_ path: String) throws(DicomReadError) -> DicomHeader {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw DicomReadError(.unreadable, "cannot be opened: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
            throw DicomReadError(.unreadable, "is not a regular file")
        }
        var parser = DicomParser(fd: fd, size: Int(st.st_size))
        try parser.parse()
        return parser.header
    }

    // MARK: structure

    private struct Element {
        package var tag: UInt32
        package var vr: String
        package var length: UInt32
        package var valueOffset: Int
    }

    private mutating func parse() throws(DicomReadError) {
        var offset = 0
        if size >= 132, let magic = try bytes(128, 4), Array(magic) == [0x44, 0x49, 0x43, 0x4D] {
            offset = try parseMeta(at: 132)
        } else {
            guard size >= 8, let first = try bytes(0, 8) else {
                throw DicomReadError(.notDicom, "is not a DICOM file (too short, no DICM marker)")
            }
            let group = u16(first, 0)
            guard group == 0x0002 || group == 0x0008 else {
                throw DicomReadError(.notDicom, "is not a DICOM file (no DICM marker, and it does not start like a DICOM data set)")
            }
            if group == 0x0002 {
                offset = try parseMeta(at: 0)
            } else {
                let explicit = Self.isUpper(first[first.startIndex + 4]) && Self.isUpper(first[first.startIndex + 5])
                header.transferSyntax = explicit ? "1.2.840.10008.1.2.1" : "1.2.840.10008.1.2"
            }
        }
        var explicit = true
        switch header.transferSyntax {
        case "": throw DicomReadError(.damaged, "has no transfer syntax in its file meta information")
        case "1.2.840.10008.1.2": explicit = false
        case "1.2.840.10008.1.2.2": littleEndian = false
        case "1.2.840.10008.1.2.1.99":
            throw DicomReadError(.unsupported, "uses the deflated transfer syntax, which defacer cannot check")
        default: break
        }
        _ = try parseDataset(from: offset, end: size, explicit: explicit, depth: 0)
        if header.sopClassUID.isEmpty { header.sopClassUID = mediaStorageClass }
    }

    private var mediaStorageClass = ""

    /// The file meta group (always explicit VR little endian); returns where the data set starts.
    private mutating func parseMeta(at start: Int) throws(DicomReadError) -> Int {
        var offset = start
        while let head = try bytes(offset, 2), u16(head, 0) == 0x0002 {
            let e = try element(at: offset, explicit: true)
            guard e.length != Self.undefinedLength else { throw DicomReadError(.damaged, "has a damaged file meta group") }
            let end = e.valueOffset + Int(e.length)
            guard end <= size else { throw DicomReadError(.cutOff, "is cut off in its file meta group") }
            if e.tag == DicomTag.transferSyntax || e.tag == DicomTag.mediaStorageSOPClass, e.length <= 256,
               let value = try bytes(e.valueOffset, Int(e.length)) {
                if e.tag == DicomTag.transferSyntax { header.transferSyntax = Self.text(value) } else { mediaStorageClass = Self.text(value) }
            }
            offset = end
        }
        return offset
    }

    private mutating func element(at offset: Int, explicit: Bool) throws(DicomReadError) -> Element {
        guard let head = try bytes(offset, 8) else {
            throw DicomReadError(.cutOff, "is cut off: the file ends in the middle of an element")
        }
        let tag = UInt32(u16(head, 0)) << 16 | UInt32(u16(head, 2))
        if tag >> 16 == 0xFFFE || !explicit {
            return Element(tag: tag, vr: "", length: u32(head, 4), valueOffset: offset + 8)
        }
        let c0 = head[head.startIndex + 4], c1 = head[head.startIndex + 5]
        guard Self.isUpper(c0), Self.isUpper(c1) else {
            throw DicomReadError(.damaged, "is damaged: an element has no valid value representation")
        }
        let vr = String(UnicodeScalar(c0)) + String(UnicodeScalar(c1))
        if Self.longVRs.contains(vr) {
            guard let more = try bytes(offset + 8, 4) else {
                throw DicomReadError(.cutOff, "is cut off: the file ends in the middle of an element")
            }
            return Element(tag: tag, vr: vr, length: u32(more, 0), valueOffset: offset + 12)
        }
        return Element(tag: tag, vr: vr, length: UInt32(u16(head, 6)), valueOffset: offset + 8)
    }

    /// Walks the elements from `start` to `end`, or to an item delimiter when `end` is nil;
    /// returns the offset after the last element (after the delimiter).
    private mutating func parseDataset(from start: Int, end: Int?, explicit: Bool, depth: Int) throws(DicomReadError) -> Int {
        guard depth <= 16 else { throw DicomReadError(.damaged, "is damaged: sequences are nested too deeply") }
        var offset = start
        while true {
            if let end {
                if offset == end { return offset }
                guard offset < end else { throw DicomReadError(.damaged, "is damaged: an element runs past the end of its item") }
            }
            elementCount += 1
            guard elementCount < 1_000_000 else { throw DicomReadError(.damaged, "is damaged: it has too many elements") }
            let e = try element(at: offset, explicit: explicit)
            if e.tag == 0xFFFE_E00D {
                guard end == nil else { throw DicomReadError(.damaged, "is damaged: an item delimiter where none belongs") }
                return e.valueOffset
            }
            guard e.tag >> 16 != 0xFFFE else { throw DicomReadError(.damaged, "is damaged: a delimiter where an element belongs") }
            if depth == 0 && [DicomTag.pixelData, DicomTag.floatPixelData, DicomTag.doublePixelData].contains(e.tag) {
                header.hasPixelData = true
                offset = try skipPixelData(e)
                continue
            }
            if e.vr == "SQ" || (e.vr == "UN" && e.length == Self.undefinedLength) || (!explicit && e.length == Self.undefinedLength) {
                offset = try parseSequence(e, explicit: explicit && e.vr != "UN", depth: depth + 1)
                continue
            }
            guard e.length != Self.undefinedLength else {
                throw DicomReadError(.damaged, "is damaged: an element of undefined length that is not a sequence")
            }
            let valueEnd = e.valueOffset + Int(e.length)
            guard valueEnd <= size else {
                throw DicomReadError(.cutOff, "is cut off: the file ends in the middle of an element")
            }
            if !explicit && e.length >= 8, try startsWithItem(e.valueOffset) {
                // implicit VR: a sequence of defined length (its value starts with an item)
                offset = try parseSequence(e, explicit: false, depth: depth + 1)
                continue
            }
            if DicomTag.isWanted(e.tag), e.length <= 4096, let value = try bytes(e.valueOffset, Int(e.length)) {
                try take(e.tag, Self.text(value), depth: depth)
            }
            offset = valueEnd
        }
    }

    private mutating func startsWithItem(_ offset: Int) throws(DicomReadError) -> Bool {
        guard let b = try bytes(offset, 4) else { return false }
        return u16(b, 0) == 0xFFFE && u16(b, 2) == 0xE000
    }

    /// The items of a sequence; returns the offset after it.
    private mutating func parseSequence(_ e: Element, explicit: Bool, depth: Int) throws(DicomReadError) -> Int {
        var offset = e.valueOffset
        let end: Int? = e.length == Self.undefinedLength ? nil : e.valueOffset + Int(e.length)
        if let end, end > size { throw DicomReadError(.cutOff, "is cut off: the file ends in the middle of a sequence") }
        while true {
            if let end {
                if offset == end { return end }
                guard offset < end else { throw DicomReadError(.damaged, "is damaged: a sequence item runs past its sequence") }
            }
            let item = try element(at: offset, explicit: explicit)
            if item.tag == 0xFFFE_E0DD {
                guard end == nil else { throw DicomReadError(.damaged, "is damaged: a sequence delimiter in a sequence of defined length") }
                return item.valueOffset
            }
            guard item.tag == 0xFFFE_E000 else {
                throw DicomReadError(.damaged, "is damaged: a sequence holds something other than items")
            }
            if item.length == Self.undefinedLength {
                offset = try parseDataset(from: item.valueOffset, end: nil, explicit: explicit, depth: depth)
            } else {
                let itemEnd = item.valueOffset + Int(item.length)
                guard itemEnd <= size else { throw DicomReadError(.cutOff, "is cut off: the file ends in the middle of a sequence") }
                offset = try parseDataset(from: item.valueOffset, end: itemEnd, explicit: explicit, depth: depth)
            }
        }
    }

    /// Checks that the pixel data (native, or compressed frames) ends within the file.
    private mutating func skipPixelData(_ e: Element) throws(DicomReadError) -> Int {
        if e.length != Self.undefinedLength {
            let end = e.valueOffset + Int(e.length)
            guard end <= size else {
                throw DicomReadError(.cutOff, "is cut off: its pixel data ends \(end - size) bytes after the end of the file")
            }
            return end
        }
        var offset = e.valueOffset
        while true {
            let item = try element(at: offset, explicit: false)
            if item.tag == 0xFFFE_E0DD { return item.valueOffset }
            guard item.tag == 0xFFFE_E000, item.length != Self.undefinedLength else {
                throw DicomReadError(.damaged, "is damaged: its compressed pixel data is not a list of frames")
            }
            offset = item.valueOffset + Int(item.length)
            guard offset <= size else { throw DicomReadError(.cutOff, "is cut off: a compressed frame ends after the end of the file") }
        }
    }

    private mutating func take(_ tag: UInt32, _ text: String, depth: Int) throws(DicomReadError) {
        if depth == 0 {
            switch tag {
            case DicomTag.sopClass: header.sopClassUID = text
            case DicomTag.seriesUID: header.seriesUID = text
            case DicomTag.seriesNumber: header.seriesNumber = Int(text)
            case DicomTag.seriesDescription: header.seriesDescription = text
            case DicomTag.imagePosition:
                header.position = try Self.geometry(text, count: 3, within: Self.maxPositionMM, name: "image position")
            case DicomTag.imageOrientation:
                header.orientation = try Self.geometry(text, count: 6, within: Self.maxDirectionCosine, name: "image orientation")
            case DicomTag.numberOfFrames: header.frames = max(1, Int(text) ?? 1)
            default: break
            }
        }
        if DicomTag.personNames.contains(tag) {
            header.identifiers.addName(text)
        } else if DicomTag.addresses.contains(tag) {
            header.identifiers.addAddress(text)
        } else if DicomTag.identifying.contains(tag) {
            header.identifiers.addValue(text)
        } else if tag == DicomTag.birthDate {
            header.identifiers.addValue(text)
        } else if DicomTag.acquisitionDates.contains(tag) {
            header.identifiers.addAcquisitionDate(String(text.prefix(8)))
        }
    }

    // MARK: bytes

    /// `count` bytes at `offset`, or nil when the file ends before them.
    private mutating func bytes(_ offset: Int, _ count: Int) throws(DicomReadError) -> ArraySlice<UInt8>? {
        guard offset >= 0, count >= 0, offset + count <= size else { return nil }
        if offset < cacheStart || offset + count > cacheStart + cache.count {
            let n = min(max(count, 1 << 16), size - offset)
            var buffer = [UInt8](repeating: 0, count: n)
            var done = 0
            while done < n {
                let got = buffer.withUnsafeMutableBytes { raw in pread(fd, raw.baseAddress! + done, n - done, off_t(offset + done)) }
                if got < 0 && errno == EINTR { continue }
                guard got > 0 else {
                    throw DicomReadError(.unreadable, "cannot be read: \(got < 0 ? String(cString: strerror(errno)) : "it shrank while being read")")
                }
                done += got
            }
            cache = buffer
            cacheStart = offset
        }
        let start = offset - cacheStart
        return cache[start..<(start + count)]
    }

    private func u16(_ b: ArraySlice<UInt8>, _ at: Int) -> UInt16 {
        let i = b.startIndex + at
        return littleEndian ? UInt16(b[i]) | UInt16(b[i + 1]) << 8 : UInt16(b[i]) << 8 | UInt16(b[i + 1])
    }

    private func u32(_ b: ArraySlice<UInt8>, _ at: Int) -> UInt32 {
        let lo = UInt32(u16(b, at)), hi = UInt32(u16(b, at + 2))
        return littleEndian ? lo | hi << 16 : lo << 16 | hi
    }

    package static func isUpper(_ c: UInt8) -> Bool { c >= 0x41 && c <= 0x5A }

    /// A DICOM string value: UTF-8 when valid, else Latin-1; without padding.
    package static func text(_ bytes: ArraySlice<UInt8>) -> String {
        let raw = Array(bytes)
        let decoded = String(validating: raw, as: UTF8.self) ?? String(String.UnicodeScalarView(raw.map { Unicode.Scalar($0) }))
        return decoded.trimming(" \0")
    }

    package static func numbers(_ text: String, count: Int) -> [Double]? {
        let values = text.split(separator: "\\").compactMap { Double(String($0).trimming(" ")) }
        return values.count == count ? values : nil
    }

    /// Largest plausible coordinate of an image position (mm): a scanner's bore is under 1 m.
    static let maxPositionMM = 100_000.0
    /// Direction cosines are at most 1 (a little more is rounding in the file).
    static let maxDirectionCosine = 1.01

    /// Position or orientation numbers: nil when absent or not `count` numbers (the series
    /// is then left to the converter); an error when a number is not finite or out of range,
    /// so that no slice arithmetic ever sees NaN, infinity or 1e20.
    static func geometry(_ text: String, count: Int, within limit: Double, name: String) throws(DicomReadError) -> [Double]? {
        guard let values = numbers(text, count: count) else { return nil }
        guard values.allSatisfy({ $0.isFinite && abs($0) <= limit }) else {
            throw DicomReadError(.damaged, "is damaged: its \(name) holds a value that is not a finite number within \(limit)")
        }
        return values
    }
}

extension String {
    /// The string without leading and trailing characters of `set`.
    package func trimming(_ set: String) -> String {
        let drop = Set(set)
        var s = Substring(self)
        while let c = s.first, drop.contains(c) { s = s.dropFirst() }
        while let c = s.last, drop.contains(c) { s = s.dropLast() }
        return String(s)
    }
}
