extension NiftiVolume {
    /// The stored value that removed voxels get: the one that reads as 0 after scaling when
    /// the data type can hold it exactly, else the lowest value the type can store.
    public var blankStoredValue: Double {
        let slope = header.sclSlope == 0 ? 1 : header.sclSlope
        let inter = header.sclSlope == 0 ? 0 : header.sclInter
        let zero = -inter / slope
        if !dataType.isInteger { return zero }
        if zero == zero.rounded(), zero >= dataType.minimumValue, zero <= dataType.maximumValue { return zero }
        return dataType.minimumValue
    }

    /// Sets every voxel where `mask` (one volume, stored order) is nonzero to `value`, in
    /// every volume. Returns how many voxels per volume were set.
    @discardableResult
    public mutating func fill(_ mask: [UInt8], with value: Double) -> Int {
        precondition(mask.count == voxelsPerVolume, "mask size differs from the scan's grid")
        let n = voxelsPerVolume, volumes = volumeCount, type = dataType
        storage.withUnsafeMutableBytes { raw in
            func set<T>(_ v: T) {
                let p = raw.bindMemory(to: T.self)
                for volume in 0..<volumes {
                    let base = volume * n
                    for i in 0..<n where mask[i] != 0 { p[base + i] = v }
                }
            }
            switch type {
            case .uint8: set(UInt8(value))
            case .int8: set(Int8(value))
            case .int16: set(Int16(value))
            case .uint16: set(UInt16(value))
            case .int32: set(Int32(value))
            case .uint32: set(UInt32(value))
            case .float32: set(Float(value))
            case .float64: set(value)
            }
        }
        return mask.reduce(0) { $0 + Int($1 != 0 ? 1 : 0) }
    }
}
