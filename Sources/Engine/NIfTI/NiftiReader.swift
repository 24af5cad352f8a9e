import CNifti
import Glibc

/// Reads NIfTI-1, NIfTI-2 and ANALYZE images (`.nii`, `.nii.gz`, `.hdr`/`.img`, gzipped or not)
/// through libnifti2, and turns every way a file can be wrong into a ``NiftiError``.
public struct NiftiReader: Sendable {
    /// Default largest image accepted: 2^28 voxels (1 GiB as float32).
    public static let defaultMaxVoxels: Int64 = 1 << 28

    /// Images with more voxels (over all volumes) than this are refused.
    public var maxVoxels: Int64

    public init(maxVoxels: Int64 = NiftiReader.defaultMaxVoxels) {
        self.maxVoxels = maxVoxels
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

    /// Reads a whole image: header and every voxel.
    public func read(_ path: String) throws(NiftiError) -> NiftiVolume {
        let (header, imagePath, dataType) = try readCheckedHeader(path)
        let byteCount = header.voxelCount * Int64(dataType.byteSize)
        if !imagePath.hasSuffix(".gz"), let size = fileSize(imagePath),
           size < header.raw.data_offset + byteCount {
            throw NiftiError(.truncated(expectedBytes: byteCount), path: path)
        }
        var status: Int32 = 0
        let storage = [UInt8](unsafeUninitializedCapacity: Int(byteCount)) { buffer, count in
            status = dfc_read_voxels(imagePath, header.raw.data_offset, buffer.baseAddress,
                                     byteCount, header.raw.swapsize, header.raw.byte_swapped)
            count = Int(byteCount)
        }
        switch status {
        case Int32(DFC_READ_OK): break
        case Int32(DFC_READ_CANNOT_OPEN): throw NiftiError(.permissionDenied, path: imagePath)
        case Int32(DFC_READ_CORRUPT): throw NiftiError(.corruptCompression, path: path)
        default: throw NiftiError(.truncated(expectedBytes: byteCount), path: path)
        }
        return NiftiVolume(header: header, storage: storage, dataType: dataType)
    }

    private func readCheckedHeader(_ path: String) throws(NiftiError)
        -> (header: NiftiHeader, imagePath: String, dataType: NiftiDataType)
    {
        guard Self.hasNiftiExtension(path) else { throw NiftiError(.unsupportedFileName, path: path) }
        try checkReadableFile(path)
        // libnifti quietly turns sizes <= 0 into 1, so look at the stored sizes first
        var storedDims = [Int64](repeating: 0, count: 8)
        var storedType: Int32 = 0
        if dfc_nifti_raw_dims(path, &storedDims, &storedType) >= 0 {
            try checkDimensions(dims: storedDims, path: path)
        }
        var raw = dfc_nifti_header()
        var imagePathBuffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        if dfc_nifti_read_header(path, &raw, &imagePathBuffer, imagePathBuffer.count) != 0 {
            throw diagnoseRejectedHeader(path)
        }
        let imagePath = String(decoding: imagePathBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if imagePath != path { try checkReadableFile(imagePath) }
        let header = NiftiHeader(raw: raw)
        try checkDimensions(dims: tupleArray(raw.dim, as: Int64.self), path: path)
        guard let dataType = header.dataType else {
            throw NiftiError(.unsupportedDataType(NiftiDataType.name(ofCode: raw.datatype)), path: path)
        }
        if header.voxelCount > maxVoxels {
            throw NiftiError(.tooManyVoxels(count: header.voxelCount, limit: maxVoxels), path: path)
        }
        let a = header.affine
        let det = a[0, 0] * (a[1, 1] * a[2, 2] - a[1, 2] * a[2, 1])
            - a[0, 1] * (a[1, 0] * a[2, 2] - a[1, 2] * a[2, 0])
            + a[0, 2] * (a[1, 0] * a[2, 1] - a[1, 1] * a[2, 0])
        if !det.isFinite || det == 0 || a.rowMajor.contains(where: { !$0.isFinite }) {
            throw NiftiError(.invalidDimensions("the voxel-to-world matrix (\(header.affineSource)) is degenerate, so voxel size and orientation are unknown"), path: path)
        }
        return (header, imagePath, dataType)
    }

    /// Explains why libnifti refused a header: bad dimensions, or not NIfTI at all.
    private func diagnoseRejectedHeader(_ path: String) -> NiftiError {
        var dims = [Int64](repeating: 0, count: 8)
        var datatype: Int32 = 0
        let version = dfc_nifti_raw_dims(path, &dims, &datatype)
        if version >= 1 {
            if NiftiDataType(rawValue: datatype) == nil {
                return NiftiError(.unsupportedDataType(NiftiDataType.name(ofCode: datatype)), path: path)
            }
        }
        return NiftiError(.notNifti, path: path)
    }

    private func checkDimensions(dims: [Int64], path: String) throws(NiftiError) {
        let n = dims[0]
        guard (1...7).contains(n) else {
            throw NiftiError(.invalidDimensions("the number of dimensions is \(n) (it must be 1 to 7)"), path: path)
        }
        for axis in 1...Int(n) where dims[axis] <= 0 {
            throw NiftiError(.invalidDimensions("axis \(axis) has size \(dims[axis])"), path: path)
        }
        let spatial = (1...min(3, Int(n))).filter { dims[$0] > 1 }.count
        if n < 3 || spatial < 3 {
            throw NiftiError(.notThreeDimensional(dimensions: spatial), path: path)
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
