import Foundation

/// The sizes and numbers a scan's header may hold before defacer reads any further: every
/// product and sum is overflow-checked, and every check runs before anything is allocated.
public struct NiftiLimits: Sendable, Equatable {
    /// Images with more voxels (over all volumes) than this are refused.
    public var maxVoxels: Int64
    /// Most bytes allowed before the image data (header and extensions).
    public var maxHeaderBytes: Int64 = 16 << 20
    /// Most bytes allowed after the image data (decompressed).
    public var maxTrailingBytes: Int64 = 64 << 10
    /// Plausible edge of one voxel of a head scan, in millimetres.
    public var voxelSizeMM: ClosedRange<Double> = 0.05...20
    /// Largest plausible field of view along one axis, in millimetres: a head with its neck fits;
    /// the HD-BET grid, and so the memory, grows with it (a 300 mm cube: about 4.6 GB).
    public var maxFieldOfViewMM: Double = 300

    public init(maxVoxels: Int64) { self.maxVoxels = maxVoxels }

    /// Checks the header as stored; returns the voxel count, the data's byte count and
    /// where the data starts in the image file. `isPair` for a .hdr/.img pair.
    func check(_ h: NiftiRawHeader, isPair: Bool) throws(NiftiError.Code)
        -> (voxels: Int64, bytes: Int64, dataOffset: Int64, dataType: NiftiDataType)
    {
        let voxels = try checkAxes(h.dim)
        guard voxels <= maxVoxels else { throw .tooManyVoxels(count: voxels, limit: maxVoxels) }
        guard let dataType = NiftiDataType(rawValue: h.datatype) else {
            throw .unsupportedDataType(NiftiDataType.name(ofCode: h.datatype))
        }
        // within float range too: libnifti writes NIfTI-1 (floats) whenever the sizes fit, and a
        // NIfTI-2 double beyond it would come back as infinity (found by the fuzzer)
        if let bad = h.floats.first(where: { !$0.value.isFinite || abs($0.value) > Double(Float.greatestFiniteMagnitude) }) {
            throw .notANumber(field: bad.name)
        }
        let (bytes, overflow) = voxels.multipliedReportingOverflow(by: Int64(dataType.byteSize))
        guard !overflow else { throw .tooManyVoxels(count: voxels, limit: maxVoxels) }
        let offset = try dataOffset(h, isPair: isPair)
        try checkVoxelSizes(h)
        return (voxels, bytes, offset, dataType)
    }

    /// Where the data starts: vox_offset, a whole number of bytes within `maxHeaderBytes`.
    private func dataOffset(_ h: NiftiRawHeader, isPair: Bool) throws(NiftiError.Code) -> Int64 {
        let value = h.voxOffset
        guard value >= 0 else { throw .invalidDimensions("the offset of the image data (vox_offset) is negative") }
        guard value <= Double(maxHeaderBytes) else {
            throw .headerTooLarge(bytes: h.voxOffset64 ?? Int64(exactly: value) ?? .max, limit: maxHeaderBytes)
        }
        guard let stored = h.voxOffset64 ?? Int64(exactly: value) else {
            throw .invalidDimensions("the offset of the image data (vox_offset \(value)) is not a whole number of bytes")
        }
        // libnifti reads a single file's data right after the header when vox_offset is smaller
        return isPair ? stored : max(stored, h.headerSize)
    }

    /// dim[0] and every used axis; returns the voxel count, overflow-checked.
    private func checkAxes(_ dim: [Int64]) throws(NiftiError.Code) -> Int64 {
        let n = dim[0]
        guard (1...7).contains(n) else { throw .invalidDimensions("the number of dimensions is \(n) (it must be 1 to 7)") }
        for axis in 1...Int(n) where dim[axis] <= 0 {
            throw .invalidDimensions("axis \(axis) has size \(dim[axis])")
        }
        let used = dim[1...Int(n)]
        let spatial = used.prefix(3).filter { $0 > 1 }.count
        if n < 3 || spatial < 3 { throw .notThreeDimensional(dimensions: spatial) }
        if used.dropFirst(4).contains(where: { $0 > 1 }) { throw .tooManyAxes(used.filter { $0 > 1 }.count) }
        var voxels: Int64 = 1
        for size in used {
            let (product, overflow) = voxels.multipliedReportingOverflow(by: size)
            guard !overflow else {
                throw .invalidDimensions("the sizes \(used.map(String.init).joined(separator: " x ")) multiply to more voxels than any computer holds")
            }
            voxels = product
        }
        return voxels
    }

    /// pixdim[1...3] in millimetres (after xyz_units) and the field of view they give.
    private func checkVoxelSizes(_ h: NiftiRawHeader) throws(NiftiError.Code) {
        guard let scale = h.millimetresPerUnit else {
            throw .implausibleVoxelSize("its unit (xyz_units code \(h.spaceUnits)) is not one NIfTI defines")
        }
        for axis in 1...3 {
            try checkAxis(axis, sizeMM: abs(h.pixdim[axis]) * scale, count: h.dim[axis], source: "pixdim")
        }
    }

    /// The least |det| of the voxel-to-world matrix over the product of its voxel edges that a
    /// scan may have: 0.2 admits a gantry tilt or shear of up to 78 degrees.
    static let minimumAxisSquareness = 0.2

    /// One axis: the voxel edge within `voxelSizeMM`, and `count` voxels within the field of view.
    func checkAxis(_ axis: Int, sizeMM: Double, count: Int64, source: String) throws(NiftiError.Code) {
        let size = String(format: "%.4g", sizeMM)
        guard voxelSizeMM.contains(sizeMM) else {
            throw .implausibleVoxelSize("\(size) mm along axis \(axis) (\(source)); a head scan's voxels are \(voxelSizeMM.lowerBound) to \(voxelSizeMM.upperBound) mm (is the unit in xyz_units right?)")
        }
        let fov = sizeMM * Double(count)
        guard fov <= maxFieldOfViewMM else {
            throw .implausibleVoxelSize("\(count) voxels of \(size) mm span \(String(format: "%.4g", fov)) mm along axis \(axis) (\(source)), more than the \(String(format: "%g", maxFieldOfViewMM)) mm any head scan needs")
        }
    }
}

extension NiftiRawHeader {
    /// Millimetres per stored unit: unknown units are read as millimetres, as every NIfTI
    /// tool does; nil for a code NIfTI does not define.
    var millimetresPerUnit: Double? {
        switch spaceUnits {
        case 0, 2: 1
        case 1: 1000
        case 3: 0.001
        default: nil
        }
    }
}

/// The limit checks throw the bare code; the reader adds the file it is about.
extension NiftiError.Code: Error {}
