import CZlib
import Foundation

/// The pixels of an 8-bit RGB or RGBA PNG (what Chromium's screenshots and our QC pictures
/// are), decoded with zlib and the five PNG row filters, so that tests can look at them
/// (the one PNG reader: the product only writes PNGs).
package struct PNGPixels {
    package var width: Int
    package var height: Int
    /// RGB, rows top to bottom (alpha dropped).
    package var rgb: [UInt8]

    package struct Unsupported: Error, CustomStringConvertible { package var description: String }

    package init(contentsOf path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw Unsupported(description: "\(path): cannot be read") }
        try self.init(bytes: [UInt8](data))
    }

    package init(bytes: [UInt8]) throws {
        guard bytes.count > 8, bytes[0..<8].elementsEqual([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) else {
            throw Unsupported(description: "not a PNG file")
        }
        var offset = 8, idat: [UInt8] = [], header: [UInt8] = []
        func be32(_ i: Int) -> Int { Int(bytes[i]) << 24 | Int(bytes[i + 1]) << 16 | Int(bytes[i + 2]) << 8 | Int(bytes[i + 3]) }
        while offset + 8 <= bytes.count {
            let length = be32(offset)
            let type = String(decoding: bytes[(offset + 4)..<(offset + 8)], as: UTF8.self)
            guard offset + 12 + length <= bytes.count else { throw Unsupported(description: "a PNG chunk runs past the end of the file") }
            let body = Array(bytes[(offset + 8)..<(offset + 8 + length)])
            if type == "IHDR" { header = body }
            if type == "IDAT" { idat += body }
            offset += 12 + length
        }
        guard header.count == 13 else { throw Unsupported(description: "no IHDR chunk") }
        width = Int(header[0]) << 24 | Int(header[1]) << 16 | Int(header[2]) << 8 | Int(header[3])
        height = Int(header[4]) << 24 | Int(header[5]) << 16 | Int(header[6]) << 8 | Int(header[7])
        let channels: Int
        switch (header[8], header[9], header[12]) {
        case (8, 2, 0): channels = 3
        case (8, 6, 0): channels = 4
        default: throw Unsupported(description: "bit depth \(header[8]), colour type \(header[9]), interlace \(header[12])")
        }
        let stride = width * channels
        var raw = [UInt8](repeating: 0, count: (stride + 1) * height)
        var size = uLongf(raw.count)
        let rc = uncompress(&raw, &size, idat, uLong(idat.count))
        guard rc == Z_OK, Int(size) == raw.count else { throw Unsupported(description: "zlib error \(rc)") }
        var pixels = [UInt8](repeating: 0, count: stride * height)
        for y in 0..<height {
            let filter = raw[y * (stride + 1)]
            for x in 0..<stride {
                let v = Int(raw[y * (stride + 1) + 1 + x])
                let a = x >= channels ? Int(pixels[y * stride + x - channels]) : 0
                let b = y > 0 ? Int(pixels[(y - 1) * stride + x]) : 0
                let c = x >= channels && y > 0 ? Int(pixels[(y - 1) * stride + x - channels]) : 0
                let predicted: Int
                switch filter {
                case 0: predicted = 0
                case 1: predicted = a
                case 2: predicted = b
                case 3: predicted = (a + b) / 2
                case 4:
                    let p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                    predicted = pa <= pb && pa <= pc ? a : (pb <= pc ? b : c)
                default: throw Unsupported(description: "row filter \(filter)")
                }
                pixels[y * stride + x] = UInt8((v + predicted) & 0xff)
            }
        }
        rgb = channels == 3 ? pixels : (0..<(width * height)).flatMap { Array(pixels[($0 * 4)..<($0 * 4 + 3)]) }
    }

    /// Bounding boxes (x0, y0, x1, y1) of the 4-connected regions of pixels for which `test`
    /// holds that have at least `minimumArea` pixels.
    package func regions(minimumArea: Int, where test: (UInt8, UInt8, UInt8) -> Bool) -> [(x0: Int, y0: Int, x1: Int, y1: Int)] {
        var label = [Int32](repeating: 0, count: width * height)
        var boxes: [(x0: Int, y0: Int, x1: Int, y1: Int)] = []
        var stack: [Int] = []
        for start in 0..<(width * height) where label[start] == 0 && test(rgb[start * 3], rgb[start * 3 + 1], rgb[start * 3 + 2]) {
            label[start] = 1
            stack = [start]
            var area = 0, box = (x0: width, y0: height, x1: -1, y1: -1)
            while let i = stack.popLast() {
                area += 1
                let x = i % width, y = i / width
                box = (min(box.x0, x), min(box.y0, y), max(box.x1, x), max(box.y1, y))
                for (nx, ny) in [(x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1)] where nx >= 0 && ny >= 0 && nx < width && ny < height {
                    let j = ny * width + nx
                    if label[j] == 0 && test(rgb[j * 3], rgb[j * 3 + 1], rgb[j * 3 + 2]) {
                        label[j] = 1
                        stack.append(j)
                    }
                }
            }
            if area >= minimumArea { boxes.append(box) }
        }
        return boxes
    }
}
