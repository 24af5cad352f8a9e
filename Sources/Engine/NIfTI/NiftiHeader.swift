import CNifti

/// A NIfTI header as libnifti parsed it: dimensions, voxel sizes, data type, scaling,
/// qform and sform. It carries every field that defacer writes back unchanged.
public struct NiftiHeader: Sendable {
    var raw: dfc_nifti_header

    init(raw: dfc_nifti_header) { self.raw = raw }

    /// Number of used dimensions (`dim[0]`).
    public var dimensionCount: Int { Int(raw.ndim) }

    /// `dim[1...dim[0]]`: the size along each used axis.
    public var dimensions: [Int] {
        let all = tupleArray(raw.dim, as: Int64.self)
        return (1...max(1, dimensionCount)).map { Int(all[$0]) }
    }

    /// `pixdim[1...dim[0]]`: voxel size along each used axis (mm, and seconds for time).
    public var pixdim: [Double] {
        let all = tupleArray(raw.pixdim, as: Double.self)
        return (1...max(1, dimensionCount)).map { all[$0] }
    }

    /// The three spatial voxel sizes in millimetres (pixdim in the unit of `xyz_units`).
    public var voxelSize: [Double] {
        let all = tupleArray(raw.pixdim, as: Double.self)
        return [all[1], all[2], all[3]].map { $0 * millimetresPerUnit }
    }

    /// Millimetres per unit of the spatial fields (`xyz_units`: metres, millimetres,
    /// micrometres; unknown is read as millimetres).
    public var millimetresPerUnit: Double {
        switch raw.xyz_units {
        case 1: 1000
        case 3: 0.001
        default: 1
        }
    }

    /// The raw datatype code.
    public var dataTypeCode: Int32 { raw.datatype }

    /// The data type, when it is one defacer supports.
    public var dataType: NiftiDataType? { NiftiDataType(rawValue: raw.datatype) }

    /// `scl_slope`; 0 means "no scaling" (as in the NIfTI standard).
    public var sclSlope: Double { raw.scl_slope }
    /// `scl_inter`.
    public var sclInter: Double { raw.scl_inter }
    /// Whether stored values are scaled (`scl_slope` neither 0 nor 1, or an intercept).
    public var isScaled: Bool { raw.scl_slope != 0 && (raw.scl_slope != 1 || raw.scl_inter != 0) }

    /// `qform_code` (0 = no qform).
    public var qformCode: Int { Int(raw.qform_code) }
    /// `sform_code` (0 = no sform).
    public var sformCode: Int { Int(raw.sform_code) }

    /// The qform matrix (libnifti: diagonal of the voxel sizes when `qform_code` is 0).
    public var qform: Affine { Affine(rowMajor: tupleArray(raw.qto_xyz, as: Double.self)) }
    /// The sform matrix as stored (meaningful when `sform_code` > 0).
    public var sform: Affine { Affine(rowMajor: tupleArray(raw.sto_xyz, as: Double.self)) }

    /// The voxel-to-world affine in millimetres: the sform when its code is > 0, else the qform
    /// when its code is > 0, else the voxel sizes on the diagonal; scaled by `xyz_units`.
    public var affine: Affine {
        var a = raw.sform_code > 0 ? sform : qform
        let scale = millimetresPerUnit
        if scale != 1 { for i in 0..<12 { a.rowMajor[i] *= scale } }
        return a
    }

    /// Which of the three matrices `affine` came from.
    public var affineSource: String {
        raw.sform_code > 0 ? "sform" : (raw.qform_code > 0 ? "qform" : "pixdim")
    }

    /// Number of 3D volumes (the product of dim[4...]).
    public var volumeCount: Int {
        guard dimensionCount > 3 else { return 1 }
        return dimensions[3...].reduce(1, *)
    }

    /// Number of header extensions found in the file (never written back).
    public var extensionCount: Int { Int(raw.num_ext) }

    /// The `descrip` text.
    public var descrip: String {
        get { tupleString(raw.descrip) }
        set { setTupleString(&raw.descrip, newValue) }
    }
    /// The `aux_file` text.
    public var auxFile: String {
        get { tupleString(raw.aux_file) }
        set { setTupleString(&raw.aux_file, newValue) }
    }
    /// The `intent_name` text.
    public var intentName: String {
        get { tupleString(raw.intent_name) }
        set { setTupleString(&raw.intent_name, newValue) }
    }

    /// File layout as read.
    public var fileForm: NiftiFileForm { NiftiFileForm(niftiType: raw.nifti_type, path: "") }

    /// Total number of voxels over all volumes (the reader checked that this product fits).
    public var voxelCount: Int64 {
        dimensions.reduce(Int64(1)) { $0.multipliedReportingOverflow(by: Int64($1)).partialValue }
    }
}

func tupleArray<T, E>(_ tuple: T, as: E.Type) -> [E] {
    withUnsafeBytes(of: tuple) { Array($0.bindMemory(to: E.self)) }
}

func tupleString<T>(_ tuple: T) -> String {
    withUnsafeBytes(of: tuple) { bytes in
        let chars = bytes.prefix { $0 != 0 }
        return String(decoding: chars, as: UTF8.self)
    }
}

func setTupleString<T>(_ tuple: inout T, _ value: String) {
    withUnsafeMutableBytes(of: &tuple) { bytes in
        bytes.initializeMemory(as: UInt8.self, repeating: 0)
        let utf8 = Array(value.utf8.prefix(bytes.count - 1))
        bytes.copyBytes(from: utf8)
    }
}
