import CNifti
import Glibc

/// Reads NIfTI-1, NIfTI-2 and ANALYZE images (`.nii`, `.nii.gz`, `.hdr`/`.img`, gzipped or not)
/// and turns every way a file can be wrong into a ``NiftiError``. The header is parsed and
/// checked by defacer first (``NiftiLimits``: sizes, offsets, numbers, voxel sizes), so that
/// libnifti2 only ever sees a header whose sizes are bounded, and nothing is allocated or
/// inflated beyond what the limits allow.
public struct NiftiReader: Sendable {
    /// Default largest image accepted: 2^27 voxels (a 0.5 mm whole head; 512 MiB as float32).
    public static let defaultMaxVoxels: Int64 = 1 << 27

    /// Every limit the header is checked against.
    public var limits: NiftiLimits

    /// Images with more voxels (over all volumes) than this are refused.
    public var maxVoxels: Int64 {
        get { limits.maxVoxels }
        set { limits.maxVoxels = newValue }
    }

    public init(maxVoxels: Int64 = NiftiReader.defaultMaxVoxels) {
        limits = NiftiLimits(maxVoxels: maxVoxels)
    }

    /// File name endings defacer accepts as NIfTI.
    public static let extensions = [".nii", ".nii.gz", ".hdr", ".hdr.gz", ".img", ".img.gz"]

    /// Whether a file name ends like a NIfTI file.
    public static func hasNiftiExtension(_ path: String) -> Bool {
        extensions.contains { path.hasSuffix($0) }
    }

    /// Reads and checks the header only.
    public func readHeader(_ path: String) throws(NiftiError) -> NiftiHeader {
        try readCheckedHeader(path).header
    }

    /// Reads the header and reads the data through without keeping it (nothing the size of the
    /// image is allocated): the file is whole, its gzip stream intact, and nothing follows it.
    public func check(_ path: String) throws(NiftiError) -> NiftiHeader {
        let checked = try readCheckedHeader(path)
        try checkImageFileSize(checked.imagePath, dataOffset: checked.dataOffset, byteCount: checked.byteCount, path: path)
        let status = dfc_verify_file(checked.imagePath, checked.dataOffset, nil, checked.byteCount, limits.maxTrailingBytes)
        try throwIfFailed(status, imagePath: checked.imagePath, byteCount: checked.byteCount, path: path)
        return checked.header
    }

    /// Reads a whole image: header and every voxel.
    public func read(_ path: String) throws(NiftiError) -> NiftiVolume {
        let checked = try readCheckedHeader(path)
        let (header, imagePath, byteCount) = (checked.header, checked.imagePath, checked.byteCount)
        try checkImageFileSize(imagePath, dataOffset: checked.dataOffset, byteCount: byteCount, path: path)
        var status: Int32 = 0
        let storage = [UInt8](unsafeUninitializedCapacity: Int(byteCount)) { buffer, count in
            status = dfc_read_voxels(imagePath, checked.dataOffset, buffer.baseAddress, byteCount,
                                     header.raw.swapsize, header.raw.byte_swapped, limits.maxTrailingBytes)
            count = Int(byteCount)
        }
        try throwIfFailed(status, imagePath: imagePath, byteCount: byteCount, path: path)
        return NiftiVolume(header: header, storage: storage, dataType: checked.dataType)
    }

    private func throwIfFailed(_ status: Int32, imagePath: String, byteCount: Int64, path: String) throws(NiftiError) {
        switch status {
        case Int32(DFC_READ_OK): return
        case Int32(DFC_READ_CANNOT_OPEN): throw NiftiError(.permissionDenied, path: imagePath)
        case Int32(DFC_READ_CORRUPT): throw NiftiError(.corruptCompression, path: path)
        case Int32(DFC_READ_TRAILING): throw NiftiError(.trailingData(limit: limits.maxTrailingBytes), path: path)
        default: throw NiftiError(.truncated(expectedBytes: byteCount), path: path)
        }
    }

    private struct CheckedHeader {
        var header: NiftiHeader
        var imagePath: String
        var dataType: NiftiDataType
        var dataOffset: Int64
        var byteCount: Int64
    }

    private func readCheckedHeader(_ path: String) throws(NiftiError) -> CheckedHeader {
        guard Self.hasNiftiExtension(path) else { throw NiftiError(.unsupportedFileName, path: path) }
        try checkReadableFile(path)
        let headerPath = Self.headerFile(path)
        if headerPath != path { try checkReadableFile(headerPath) }
        // defacer's own look at the stored header comes first: libnifti reads extensions and
        // quietly repairs sizes and numbers before any check of ours could run
        let stored = try readRawHeader(headerPath, reportAs: path)
        let isPair = !headerPath.hasSuffix(".nii") && !headerPath.hasSuffix(".nii.gz")
        let sizes: (voxels: Int64, bytes: Int64, dataOffset: Int64, dataType: NiftiDataType)
        do { sizes = try limits.check(stored, isPair: isPair) } catch { throw NiftiError(error, path: path) }
        if isPair, !headerPath.hasSuffix(".gz"), let size = fileSize(headerPath), size > limits.maxHeaderBytes {
            throw NiftiError(.headerTooLarge(bytes: size, limit: limits.maxHeaderBytes), path: path)
        }
        var raw = dfc_nifti_header()
        var imagePathBuffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard dfc_nifti_read_header(path, &raw, &imagePathBuffer, imagePathBuffer.count) == 0 else {
            throw NiftiError(.notNifti, path: path)
        }
        let imagePath = String(decoding: imagePathBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if imagePath != path { try checkReadableFile(imagePath) }
        let header = NiftiHeader(raw: raw)
        // libnifti must have read the same sizes, type and offset as defacer did
        guard Array(tupleArray(raw.dim, as: Int64.self)[0...Int(stored.dim[0])]) == Array(stored.dim[0...Int(stored.dim[0])]),
              raw.datatype == stored.datatype, raw.data_offset == sizes.dataOffset else {
            throw NiftiError(.invalidDimensions("libnifti reads this header differently from the bytes stored in it"), path: path)
        }
        try checkGeometry(header, path: path)
        return CheckedHeader(header: header, imagePath: imagePath, dataType: sizes.dataType,
                             dataOffset: sizes.dataOffset, byteCount: sizes.bytes)
    }

    /// The first bytes of the header file, parsed by ``NiftiRawHeader``.
    private func readRawHeader(_ headerPath: String, reportAs path: String) throws(NiftiError) -> NiftiRawHeader {
        var prefix = [UInt8](repeating: 0, count: NiftiRawHeader.maxHeaderSize)
        let got = dfc_read_prefix(headerPath, &prefix, Int64(prefix.count))
        guard got >= 0 else { throw NiftiError(.permissionDenied, path: headerPath) }
        guard let stored = NiftiRawHeader.parse(Array(prefix.prefix(Int(got)))) else {
            throw NiftiError(got < 348 && got > 0 && Self.startsLikeHeader(prefix) ? .truncated(expectedBytes: 348) : .notNifti,
                             path: path)
        }
        return stored
    }

    /// Whether bytes start with a NIfTI-1 or NIfTI-2 size field (in either byte order).
    private static func startsLikeHeader(_ b: [UInt8]) -> Bool {
        let le = UInt32(b[0]) | UInt32(b[1]) << 8 | UInt32(b[2]) << 16 | UInt32(b[3]) << 24
        return [348, 540].contains(le) || [348, 540].contains(le.byteSwapped)
    }

    /// The file that holds the header: the .hdr of a pair named by its .img.
    static func headerFile(_ path: String) -> String {
        for (image, header) in [(".img.gz", ".hdr.gz"), (".img", ".hdr")] where path.hasSuffix(image) {
            return String(path.dropLast(image.count)) + header
        }
        return path
    }

    /// The affine's voxel sizes (in millimetres) are plausible for a head, and the matrix can
    /// be inverted.
    private func checkGeometry(_ header: NiftiHeader, path: String) throws(NiftiError) {
        let a = header.affine
        let det = a[0, 0] * (a[1, 1] * a[2, 2] - a[1, 2] * a[2, 1])
            - a[0, 1] * (a[1, 0] * a[2, 2] - a[1, 2] * a[2, 0])
            + a[0, 2] * (a[1, 0] * a[2, 1] - a[1, 1] * a[2, 0])
        if !det.isFinite || det == 0 || a.rowMajor.contains(where: { !$0.isFinite }) {
            throw NiftiError(.invalidDimensions("the voxel-to-world matrix (\(header.affineSource)) is degenerate, so voxel size and orientation are unknown"), path: path)
        }
        let dims = header.dimensions
        var edges: [Double] = []
        for axis in 0..<3 {
            let edge = (0..<3).map { a[$0, axis] * a[$0, axis] }.reduce(0, +).squareRoot()
            do { try limits.checkAxis(axis + 1, sizeMM: edge, count: Int64(dims[axis]), source: header.affineSource) } catch {
                throw NiftiError(error, path: path)
            }
            edges.append(edge)
        }
        // The volume of the unit voxel's box: 1 for square axes, cos(tilt) for a gantry tilt;
        // near 0 the axes are nearly parallel and no scanner made the grid (a few digits of
        // rounding, as any writer that stores the matrix as float does, make it singular).
        let squareness = abs(det) / (edges[0] * edges[1] * edges[2])
        if !(squareness >= NiftiLimits.minimumAxisSquareness) {
            throw NiftiError(.invalidDimensions("the voxel axes in the voxel-to-world matrix (\(header.affineSource)) are nearly parallel (\(String(format: "%.2g", squareness)) of a square grid), so voxel size and orientation are unknown"), path: path)
        }
    }

    /// Before anything is allocated: a plain image file holds the data and little more; a
    /// gzipped one is large enough to inflate to it (deflate cannot compress beyond 1032:1).
    private func checkImageFileSize(_ imagePath: String, dataOffset: Int64, byteCount: Int64, path: String) throws(NiftiError) {
        let dataEnd = dataOffset + byteCount  // both bounded by the limits
        guard let size = fileSize(imagePath) else { throw NiftiError(.fileNotFound, path: imagePath) }
        if imagePath.hasSuffix(".gz") {
            let (most, overflow) = size.multipliedReportingOverflow(by: 1032)
            if !overflow, most + 1024 < dataEnd { throw NiftiError(.truncated(expectedBytes: byteCount), path: path) }
        } else if size < dataEnd {
            throw NiftiError(.truncated(expectedBytes: byteCount), path: path)
        } else if size - dataEnd > limits.maxTrailingBytes {
            throw NiftiError(.trailingData(limit: limits.maxTrailingBytes), path: path)
        }
    }

    private func checkReadableFile(_ path: String) throws(NiftiError) {
        var st = stat()
        if stat(path, &st) != 0 {
            throw NiftiError(errno == EACCES ? .permissionDenied : .fileNotFound, path: path)
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw NiftiError(.notARegularFile, path: path) }
        guard st.st_size > 0 else { throw NiftiError(.emptyFile, path: path) }
        guard access(path, R_OK) == 0 else { throw NiftiError(.permissionDenied, path: path) }
    }

    private func fileSize(_ path: String) -> Int64? {
        var st = stat()
        return stat(path, &st) == 0 ? Int64(st.st_size) : nil
    }
}
