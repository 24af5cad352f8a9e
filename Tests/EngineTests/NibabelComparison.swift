@testable import Engine
import Testing

/// Checks that defacer's reading of a file agrees with nibabel's, field by field.
func expectMatchesNibabel(_ volume: NiftiVolume, _ ref: NibabelSummary, _ name: String) {
    let header = volume.header
    #expect(header.dimensions == ref.shape, "\(name): dimensions")
    #expect(header.pixdim.count == ref.zooms.count, "\(name): number of voxel sizes")
    for (a, b) in zip(header.pixdim, ref.zooms) {
        #expect(abs(a - b) < 1e-6, "\(name): voxel size \(a) vs nibabel \(b)")
    }
    #expect(volume.dataType.description == ref.dtype, "\(name): data type")
    for r in 0..<4 {
        for c in 0..<4 {
            #expect(abs(header.affine[r, c] - ref.affine[r][c]) < 1e-5,
                    "\(name): affine[\(r),\(c)] \(header.affine[r, c]) vs nibabel \(ref.affine[r][c])")
        }
    }
    #expect(header.sformCode == ref.sform_code, "\(name): sform code")
    #expect(header.qformCode == ref.qform_code, "\(name): qform code")
    #expect(AxisOrientation(affine: header.affine).code == ref.axcodes, "\(name): orientation")
    if let slope = ref.scl_slope, slope.isFinite {
        #expect(abs(header.sclSlope - slope) < 1e-9, "\(name): scl_slope")
        #expect(abs(header.sclInter - (ref.scl_inter ?? 0)) < 1e-9, "\(name): scl_inter")
    }
    let (nx, ny, nz) = (volume.shape[0], volume.shape[1], volume.shape[2])
    for sample in ref.samples {
        let i = sample.index
        let index = i[0] + nx * (i[1] + ny * i[2])
        #expect(volume.storedValue(at: index) == sample.stored, "\(name): stored value at \(i)")
    }
    _ = nz
    #expect(FileHash.sha256(volume.storage) == ref.data_sha256, "\(name): every stored voxel value")
}
