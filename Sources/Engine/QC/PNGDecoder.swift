import CZlib

/// Reads back the pixels of the 8-bit RGB PNG files `PNGEncoder` writes (no interlacing; rows
/// with filter 0 or 1 or 2), so that tests and reviewers' tools can check a QC picture's pixels.
public enum PNGDecoder {
    /// Width, height and `width * height * 3` RGB bytes, or nil when the file is not such a PNG.
    public static func decode(_ png: [UInt8]) -> (width: Int, height: Int, rgb: [UInt8])? {
        guard png.count > 8, Array(png.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] else { return nil }
        var at = 8, width = 0, height = 0
        var data: [UInt8] = []
        func u32(_ i: Int) -> Int { Int(png[i]) << 24 | Int(png[i + 1]) << 16 | Int(png[i + 2]) << 8 | Int(png[i + 3]) }
        while at + 8 <= png.count {
            let length = u32(at), type = String(decoding: png[(at + 4)..<(at + 8)], as: UTF8.self)
            guard at + 12 + length <= png.count else { return nil }
            let body = Array(png[(at + 8)..<(at + 8 + length)])
            if type == "IHDR" {
                width = u32(at + 8); height = u32(at + 12)
                guard body[8] == 8, body[9] == 2, body[12] == 0 else { return nil }
            } else if type == "IDAT" {
                data += body
            }
            at += 12 + length
        }
        let stride = width * 3
        var raw = [UInt8](repeating: 0, count: (stride + 1) * height)
        var size = uLongf(raw.count)
        guard width > 0, height > 0, uncompress(&raw, &size, data, uLong(data.count)) == Z_OK, Int(size) == raw.count else { return nil }
        var rgb = [UInt8](repeating: 0, count: stride * height)
        for y in 0..<height {
            let filter = raw[y * (stride + 1)]
            for x in 0..<stride {
                var v = raw[y * (stride + 1) + 1 + x]
                if filter == 1, x >= 3 { v &+= rgb[y * stride + x - 3] }
                if filter == 2, y > 0 { v &+= rgb[(y - 1) * stride + x] }
                guard filter <= 2 else { return nil }
                rgb[y * stride + x] = v
            }
        }
        return (width, height, rgb)
    }
}
