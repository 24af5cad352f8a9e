/// The voxel data types defacer reads and writes (NIfTI `datatype` codes).
public enum NiftiDataType: Int32, Sendable, CaseIterable, CustomStringConvertible {
    case uint8 = 2
    case int16 = 4
    case int32 = 8
    case float32 = 16
    case float64 = 64
    case int8 = 256
    case uint16 = 512
    case uint32 = 768

    /// Bytes per voxel.
    public var byteSize: Int {
        switch self {
        case .uint8, .int8: 1
        case .int16, .uint16: 2
        case .int32, .uint32, .float32: 4
        case .float64: 8
        }
    }

    /// Whether values are stored as integers.
    public var isInteger: Bool { self != .float32 && self != .float64 }

    /// The lowest value this type can store.
    public var minimumValue: Double {
        switch self {
        case .uint8, .uint16, .uint32: 0
        case .int8: -128
        case .int16: -32768
        case .int32: -2147483648
        case .float32: -Double(Float.greatestFiniteMagnitude)
        case .float64: -Double.greatestFiniteMagnitude
        }
    }

    /// The highest value this type can store.
    public var maximumValue: Double {
        switch self {
        case .uint8: 255
        case .int8: 127
        case .int16: 32767
        case .uint16: 65535
        case .int32: 2147483647
        case .uint32: 4294967295
        case .float32: Double(Float.greatestFiniteMagnitude)
        case .float64: Double.greatestFiniteMagnitude
        }
    }

    /// Lower-case name as NIfTI tools print it.
    public var description: String {
        switch self {
        case .uint8: "uint8"
        case .int16: "int16"
        case .int32: "int32"
        case .float32: "float32"
        case .float64: "float64"
        case .int8: "int8"
        case .uint16: "uint16"
        case .uint32: "uint32"
        }
    }

    /// A readable name for any NIfTI datatype code, supported or not, for error messages.
    public static func name(ofCode code: Int32) -> String {
        if let known = NiftiDataType(rawValue: code) { return known.description }
        switch code {
        case 0: return "unknown (0)"
        case 1: return "binary (1 bit)"
        case 32: return "complex64"
        case 128: return "RGB colour (rgb24)"
        case 1024: return "int64"
        case 1280: return "uint64"
        case 1536: return "float128"
        case 1792: return "complex128"
        case 2048: return "complex256"
        case 2304: return "RGBA colour (rgba32)"
        default: return "code \(code)"
        }
    }
}
