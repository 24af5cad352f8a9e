/// A scan in memory: its header and the voxel values exactly as stored in the file
/// (native byte order), in the file's voxel order, x fastest, volume after volume.
public struct NiftiVolume: Sendable {
    /// The header as read (geometry, data type, scaling).
    public var header: NiftiHeader
    /// Stored voxel bytes; `header.voxelCount * dataType.byteSize` of them.
    public var storage: [UInt8]
    /// The data type of `storage`.
    public let dataType: NiftiDataType

    init(header: NiftiHeader, storage: [UInt8], dataType: NiftiDataType) {
        self.header = header
        self.storage = storage
        self.dataType = dataType
    }

    /// The three spatial sizes.
    public var shape: [Int] {
        let d = header.dimensions
        return [d[0], d.count > 1 ? d[1] : 1, d.count > 2 ? d[2] : 1]
    }

    /// Voxels in one 3D volume.
    public var voxelsPerVolume: Int { shape.reduce(1, *) }

    /// Number of 3D volumes (1 for a 3D scan).
    public var volumeCount: Int { header.volumeCount }

    /// The stored value of voxel `index` (counted over all volumes), before scaling.
    public func storedValue(at index: Int) -> Double {
        storage.withUnsafeBytes { raw in
            switch dataType {
            case .uint8: Double(raw.load(fromByteOffset: index, as: UInt8.self))
            case .int8: Double(raw.load(fromByteOffset: index, as: Int8.self))
            case .int16: Double(raw.loadUnaligned(fromByteOffset: index * 2, as: Int16.self))
            case .uint16: Double(raw.loadUnaligned(fromByteOffset: index * 2, as: UInt16.self))
            case .int32: Double(raw.loadUnaligned(fromByteOffset: index * 4, as: Int32.self))
            case .uint32: Double(raw.loadUnaligned(fromByteOffset: index * 4, as: UInt32.self))
            case .float32: Double(raw.loadUnaligned(fromByteOffset: index * 4, as: Float.self))
            case .float64: raw.loadUnaligned(fromByteOffset: index * 8, as: Double.self)
            }
        }
    }

    /// The value of voxel `index` with `scl_slope`/`scl_inter` applied.
    public func scaledValue(at index: Int) -> Double {
        let v = storedValue(at: index)
        return header.sclSlope == 0 ? v : v * header.sclSlope + header.sclInter
    }

    /// One volume's values with scaling applied, as Float, in stored voxel order.
    public func floatValues(volume: Int = 0) -> [Float] {
        let n = voxelsPerVolume
        let start = volume * n
        let slope = header.sclSlope == 0 ? 1.0 : header.sclSlope
        let inter = header.sclSlope == 0 ? 0.0 : header.sclInter
        return storage.withUnsafeBytes { raw in
            func convert<T: BinaryInteger>(_ type: T.Type) -> [Float] {
                let p = raw.bindMemory(to: T.self)
                return (start..<start + n).map { Float(Double(p[$0]) * slope + inter) }
            }
            switch dataType {
            case .uint8: return convert(UInt8.self)
            case .int8: return convert(Int8.self)
            case .int16: return convert(Int16.self)
            case .uint16: return convert(UInt16.self)
            case .int32: return convert(Int32.self)
            case .uint32: return convert(UInt32.self)
            case .float32:
                let p = raw.bindMemory(to: Float.self)
                return (start..<start + n).map { Float(Double(p[$0]) * slope + inter) }
            case .float64:
                let p = raw.bindMemory(to: Double.self)
                return (start..<start + n).map { Float(p[$0] * slope + inter) }
            }
        }
    }

    /// The exact RAS+ view of this scan's voxel grid.
    public var rasReorientation: RASReorientation {
        RASReorientation(nativeShape: shape, affine: header.affine)
    }
}
