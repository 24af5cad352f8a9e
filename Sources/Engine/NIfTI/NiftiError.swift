/// Why a scan could not be read or written, in words a radiographer understands.
/// Every error names the file it is about.
public struct NiftiError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kind of problem, for code that reacts to it.
    public enum Code: Sendable, Equatable {
        case fileNotFound
        case notARegularFile
        case permissionDenied
        case emptyFile
        case notNifti
        case unsupportedFileName
        case truncated(expectedBytes: Int64)
        case corruptCompression
        case invalidDimensions(String)
        case notThreeDimensional(dimensions: Int)
        case tooManyVoxels(count: Int64, limit: Int64)
        case unsupportedDataType(String)
        case tooManyAxes(Int)
        case notANumber(field: String)
        case headerTooLarge(bytes: Int64, limit: Int64)
        case trailingData(limit: Int64)
        case implausibleVoxelSize(String)
        case outputExists
        case writeFailed(String)
    }

    public var code: Code
    /// The file the error is about.
    public var path: String
    /// For a write that failed in a system call: its errno (ENOSPC...), for code that reacts to it.
    public var errno: Int32?

    public init(_ code: Code, path: String) {
        self.code = code
        self.path = path
    }

    /// The reason in plain words, without the file name.
    public var reason: String {
        switch code {
        case .fileNotFound:
            return "the file does not exist"
        case .notARegularFile:
            return "this is not a regular file (a folder or a device?)"
        case .permissionDenied:
            return "defacer is not allowed to read or write it (check the file's permissions)"
        case .emptyFile:
            return "the file is empty (0 bytes): the copy or export may have failed"
        case .notNifti:
            return "this is not a NIfTI image (no valid NIfTI-1, NIfTI-2 or ANALYZE header was found)"
        case .unsupportedFileName:
            return "the file name must end in .nii, .nii.gz, .hdr, .hdr.gz, .img or .img.gz"
        case .truncated(let expected):
            return "the file ends before all of its image data (\(expected) bytes expected): it is incomplete, perhaps still being copied, or damaged"
        case .corruptCompression:
            return "the gzip compression is damaged or cut off: the file is incomplete or corrupt"
        case .invalidDimensions(let detail):
            return "the header's image dimensions are invalid: \(detail)"
        case .notThreeDimensional(let n):
            return "this is a \(n)D image; defacing needs a 3D (or 4D) head volume"
        case .tooManyVoxels(let count, let limit):
            return "the image has \(count) voxels, more than the configured limit of \(limit)"
        case .unsupportedDataType(let name):
            return "its data type \(name) is not supported (supported: uint8, int8, int16, uint16, int32, uint32, float32, float64)"
        case .tooManyAxes(let n):
            return "this image has \(n) axes with more than one value; defacer takes 3D head scans (or 4D: several volumes of one head)"
        case .notANumber(let field):
            return "the header field \(field) is not a finite number (NaN, infinity, or beyond 3.4e38): the file is damaged or was not written by an imaging program"
        case .headerTooLarge(let bytes, let limit):
            return "the header and its extensions take \(bytes) bytes before the image data, more than the limit of \(limit): the file is damaged or not a scan"
        case .trailingData(let limit):
            return "the file holds more than \(limit) bytes after the image its header describes: the header's dimensions are wrong, or the file is damaged or inflated on purpose"
        case .implausibleVoxelSize(let detail):
            return "the voxel size is not plausible for a head scan: \(detail)"
        case .outputExists:
            return "an output file of that name already exists; defacer never overwrites files"
        case .writeFailed(let detail):
            return "the image could not be written: \(detail)"
        }
    }

    public var description: String { "\(path): \(reason)" }
}
