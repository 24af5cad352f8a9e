import Foundation

/// A safetensors file (8-byte little-endian header length, a JSON header naming each tensor's
/// dtype, shape and byte range, then raw little-endian data), read whole into memory.
public struct Safetensors: Sendable {
    /// One tensor's entry in the header.
    public struct Entry: Sendable, Equatable {
        public var dtype: String
        public var shape: [Int]
        public var begin: Int
        public var end: Int
    }

    public let path: String
    public let metadata: [String: String]
    public let entries: [String: Entry]
    private let bytes: [UInt8]
    private let dataStart: Int

    /// Reads and validates a file's header and byte ranges.
    public init(path: String) throws(ModelError) {
        self.path = path
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ModelError(.missingFile, path: path)
        }
        let bytes = [UInt8](data)
        guard bytes.count >= 8 else { throw ModelError(.malformed("shorter than its 8-byte header length"), path: path) }
        let headerLength = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        guard headerLength > 1, 8 + headerLength <= bytes.count else {
            throw ModelError(.malformed("header length \(headerLength) does not fit the file"), path: path)
        }
        let json: [String: Any]
        do {
            json = try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + headerLength)])) as? [String: Any] ?? [:]
        } catch {
            throw ModelError(.malformed("the JSON header cannot be parsed"), path: path)
        }
        var metadata: [String: String] = [:]
        var entries: [String: Entry] = [:]
        let payload = bytes.count - 8 - headerLength
        for (name, value) in json {
            if name == "__metadata__" {
                metadata = value as? [String: String] ?? [:]
                continue
            }
            guard let fields = value as? [String: Any], let dtype = fields["dtype"] as? String,
                  let shape = fields["shape"] as? [Int], let offsets = fields["data_offsets"] as? [Int],
                  offsets.count == 2, offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= payload
            else { throw ModelError(.malformed("the entry for \(name) is invalid"), path: path) }
            let elementSize = dtype == "F32" ? 4 : (dtype == "F16" || dtype == "BF16" ? 2 : 0)
            if elementSize > 0, shape.reduce(1, *) * elementSize != offsets[1] - offsets[0] {
                throw ModelError(.malformed("tensor \(name) has \(offsets[1] - offsets[0]) bytes for shape \(shape)"), path: path)
            }
            entries[name] = Entry(dtype: dtype, shape: shape, begin: offsets[0], end: offsets[1])
        }
        self.metadata = metadata
        self.entries = entries
        self.bytes = bytes
        self.dataStart = 8 + headerLength
    }

    /// The float32 values of tensor `name`, checked against the expected shape.
    public func floats(_ name: String, shape expected: [Int]) throws(ModelError) -> [Float] {
        guard let entry = entries[name] else { throw ModelError(.missingTensor(name), path: path) }
        guard entry.shape == expected else {
            throw ModelError(.wrongShape(name: name, expected: expected, found: entry.shape), path: path)
        }
        guard entry.dtype == "F32" else { throw ModelError(.wrongDataType(name: name, found: entry.dtype), path: path) }
        let count = (entry.end - entry.begin) / 4
        return bytes.withUnsafeBytes { raw in
            (0..<count).map { i in
                Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: dataStart + entry.begin + 4 * i, as: UInt32.self)))
            }
        }
    }
}

extension Safetensors {
    /// The raw little-endian bytes of tensor `name` stored with `dtype` (e.g. "U8", "I32", "F64").
    public func rawBytes(_ name: String, dtype: String) throws(ModelError) -> [UInt8] {
        guard let entry = entries[name] else { throw ModelError(.missingTensor(name), path: path) }
        guard entry.dtype == dtype else { throw ModelError(.wrongDataType(name: name, found: entry.dtype), path: path) }
        return Array(bytes[(dataStart + entry.begin)..<(dataStart + entry.end)])
    }
}

/// Hands out a file's tensors by name and shape, and at the end insists that every tensor
/// in the file was used: weights of another network never load silently.
public final class WeightReader {
    private let file: Safetensors
    private var used: Set<String> = []

    public init(_ file: Safetensors) { self.file = file }

    public func callAsFunction(_ name: String, _ shape: [Int]) throws(ModelError) -> [Float] {
        used.insert(name)
        return try file.floats(name, shape: shape)
    }

    /// Whether the file holds a tensor of that name (for optional parts such as biases).
    public func has(_ name: String) -> Bool { file.entries[name] != nil }

    /// Fails when the file holds tensors that were never asked for.
    public func finish() throws(ModelError) {
        let extra = Set(file.entries.keys).subtracting(used).sorted()
        if !extra.isEmpty { throw ModelError(.unexpectedTensors(extra), path: file.path) }
    }
}

extension Safetensors {
    /// Writes float32 tensors (name, shape, values) as a safetensors file.
    public static func write(_ tensors: [(name: String, shape: [Int], values: [Float])], to path: String) throws {
        var header: [String: Any] = [:]
        var offset = 0
        for t in tensors {
            header[t.name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + 4 * t.values.count]]
            offset += 4 * t.values.count
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        var out = Data()
        var length = UInt64(json.count).littleEndian
        out.append(Data(bytes: &length, count: 8))
        out.append(json)
        for t in tensors { t.values.withUnsafeBytes { out.append(contentsOf: $0) } }
        try out.write(to: URL(fileURLWithPath: path))
    }
}
