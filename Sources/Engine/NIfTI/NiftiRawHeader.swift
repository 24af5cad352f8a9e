/// The fields of a NIfTI-1, NIfTI-2 or ANALYZE 7.5 header exactly as stored, parsed by
/// defacer itself from the first bytes of the file (before libnifti sees it), so that every
/// size and number can be checked before anything is allocated or computed from it.
public struct NiftiRawHeader: Sendable, Equatable {
    /// NIfTI-1 (or ANALYZE, 348 bytes) or NIfTI-2 (540 bytes).
    public var version: NiftiFileForm.Version
    /// Whether the file's byte order is the reverse of the reading order tried first.
    public var byteSwapped: Bool
    /// `dim[0...7]` as stored.
    public var dim: [Int64]
    public var datatype: Int32
    /// `pixdim[0...7]` as stored (`pixdim[0]` is qfac).
    public var pixdim: [Double]
    /// `vox_offset` as stored (a float in NIfTI-1, an integer in NIfTI-2).
    public var voxOffset: Double
    /// NIfTI-2's integer `vox_offset` (nil for NIfTI-1 and ANALYZE).
    public var voxOffset64: Int64?
    /// `xyzt_units & 7`: 0 unknown, 1 metre, 2 millimetre, 3 micrometre.
    public var spaceUnits: Int
    /// Every floating-point field by name, for the finite-number check.
    public var floats: [(name: String, value: Double)]

    public static func == (a: NiftiRawHeader, b: NiftiRawHeader) -> Bool {
        a.version == b.version && a.dim == b.dim && a.datatype == b.datatype && a.pixdim == b.pixdim
            && a.voxOffset64 == b.voxOffset64 && a.spaceUnits == b.spaceUnits
    }

    /// Size of the header itself.
    public var headerSize: Int64 { version == .nifti2 ? 540 : 348 }

    /// Bytes needed to parse any header.
    public static let maxHeaderSize = 540

    /// Parses `bytes` (the start of a header file, decompressed). Returns nil when they do
    /// not start like any of the three header forms (wrong size field, or too short).
    public static func parse(_ bytes: [UInt8]) -> NiftiRawHeader? {
        guard bytes.count >= 348 else { return nil }
        for swapped in [false, true] {
            let r = ByteReader(bytes: bytes, swapped: swapped)
            switch r.i32(0) {
            case 348: return nifti1(r)
            case 540 where bytes.count >= 540: return nifti2(r)
            default: continue
            }
        }
        return nil
    }

    private static func nifti1(_ r: ByteReader) -> NiftiRawHeader {
        let magic = Array(r.bytes[344..<348])
        let isNifti = magic == Array("n+1\0".utf8) || magic == Array("ni1\0".utf8)
        func f(_ name: String, _ offset: Int) -> (String, Double) { (name, Double(r.f32(offset))) }
        var floats = [f("intent_p1", 56), f("intent_p2", 60), f("intent_p3", 64)]
        floats += (0..<8).map { f("pixdim[\($0)]", 76 + 4 * $0) }
        floats += [f("vox_offset", 108), f("scl_slope", 112), f("scl_inter", 116), f("cal_max", 124),
                   f("cal_min", 128), f("slice_duration", 132), f("toffset", 136)]
        if isNifti {
            floats += [f("quatern_b", 256), f("quatern_c", 260), f("quatern_d", 264),
                       f("qoffset_x", 268), f("qoffset_y", 272), f("qoffset_z", 276)]
            floats += (0..<12).map { f("srow_\(["x", "y", "z"][$0 / 4])[\($0 % 4)]", 280 + 4 * $0) }
        }
        return NiftiRawHeader(
            version: isNifti ? .nifti1 : .analyze, byteSwapped: r.swapped,
            dim: (0..<8).map { Int64(r.i16(40 + 2 * $0)) }, datatype: Int32(r.i16(70)),
            pixdim: (0..<8).map { Double(r.f32(76 + 4 * $0)) }, voxOffset: Double(r.f32(108)), voxOffset64: nil,
            spaceUnits: isNifti ? Int(r.bytes[123] & 7) : 2, floats: floats)
    }

    private static func nifti2(_ r: ByteReader) -> NiftiRawHeader? {
        guard Array(r.bytes[4..<8]) == Array("n+2\0".utf8) || Array(r.bytes[4..<8]) == Array("ni2\0".utf8) else {
            return nil
        }
        func f(_ name: String, _ offset: Int) -> (String, Double) { (name, r.f64(offset)) }
        var floats = [f("intent_p1", 80), f("intent_p2", 88), f("intent_p3", 96)]
        floats += (0..<8).map { f("pixdim[\($0)]", 104 + 8 * $0) }
        floats += [f("scl_slope", 176), f("scl_inter", 184), f("cal_max", 192), f("cal_min", 200),
                   f("slice_duration", 208), f("toffset", 216),
                   f("quatern_b", 352), f("quatern_c", 360), f("quatern_d", 368),
                   f("qoffset_x", 376), f("qoffset_y", 384), f("qoffset_z", 392)]
        floats += (0..<12).map { f("srow_\(["x", "y", "z"][$0 / 4])[\($0 % 4)]", 400 + 8 * $0) }
        let offset = r.i64(168)
        return NiftiRawHeader(
            version: .nifti2, byteSwapped: r.swapped, dim: (0..<8).map { r.i64(16 + 8 * $0) },
            datatype: Int32(r.i16(12)), pixdim: (0..<8).map { r.f64(104 + 8 * $0) },
            voxOffset: Double(offset), voxOffset64: offset, spaceUnits: Int(r.i32(500) & 7), floats: floats)
    }
}

/// Little- or big-endian numbers at byte offsets of a header that is known to be long enough.
private struct ByteReader {
    let bytes: [UInt8]
    let swapped: Bool

    private func load<T: FixedWidthInteger>(_ offset: Int, _: T.Type) -> T {
        var value: T = 0
        withUnsafeMutableBytes(of: &value) { $0.copyBytes(from: bytes[offset..<offset + MemoryLayout<T>.size]) }
        return swapped ? value.byteSwapped : value
    }

    func i16(_ offset: Int) -> Int16 { load(offset, Int16.self) }
    func i32(_ offset: Int) -> Int32 { load(offset, Int32.self) }
    func i64(_ offset: Int) -> Int64 { load(offset, Int64.self) }
    func f32(_ offset: Int) -> Float { Float(bitPattern: load(offset, UInt32.self)) }
    func f64(_ offset: Int) -> Double { Double(bitPattern: load(offset, UInt64.self)) }
}
