extension NiftiVolume {
    /// A 3D image on this scan's grid and geometry holding `values` (stored voxel order)
    /// as uint8, e.g. a face or brain mask.
    public func derivedMask(_ values: [UInt8]) -> NiftiVolume {
        precondition(values.count == voxelsPerVolume, "mask size differs from the scan's grid")
        return NiftiVolume(header: derivedHeader(dataType: .uint8), storage: values, dataType: .uint8)
    }

    /// A 3D float32 image on this scan's grid and geometry, e.g. a probability map.
    public func derivedFloatMap(_ values: [Float]) -> NiftiVolume {
        precondition(values.count == voxelsPerVolume, "map size differs from the scan's grid")
        let bytes = values.withUnsafeBytes { Array($0) }
        return NiftiVolume(header: derivedHeader(dataType: .float32), storage: bytes, dataType: .float32)
    }

    private func derivedHeader(dataType: NiftiDataType) -> NiftiHeader {
        var h = header
        h.raw.ndim = 3
        withUnsafeMutableBytes(of: &h.raw.dim) { raw in
            let dims = raw.bindMemory(to: Int64.self)
            dims[0] = 3
            for i in 4..<8 { dims[i] = 1 }
        }
        h.raw.datatype = dataType.rawValue
        h.raw.nbyper = Int32(dataType.byteSize)
        h.raw.swapsize = Int32(dataType.byteSize)
        h.raw.scl_slope = 1
        h.raw.scl_inter = 0
        h.raw.cal_min = 0
        h.raw.cal_max = 0
        h.raw.intent_code = 0
        return h
    }
}
