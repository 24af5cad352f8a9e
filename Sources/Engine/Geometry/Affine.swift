import Foundation

/// A 4x4 voxel-to-world matrix (row-major), world coordinates in RAS+ millimetres.
public struct Affine: Sendable, Equatable, CustomStringConvertible {
    /// 16 values, row by row.
    public var rowMajor: [Double]

    public init(rowMajor: [Double]) {
        precondition(rowMajor.count == 16, "an affine has 16 values")
        self.rowMajor = rowMajor
    }

    /// The identity matrix.
    public static let identity = Affine(rowMajor: [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1])

    public subscript(row: Int, column: Int) -> Double {
        get { rowMajor[row * 4 + column] }
        set { rowMajor[row * 4 + column] = newValue }
    }

    /// Matrix product `self * other`.
    public func multiplied(by other: Affine) -> Affine {
        var out = [Double](repeating: 0, count: 16)
        for r in 0..<4 {
            for c in 0..<4 {
                var s = 0.0
                for k in 0..<4 { s += self[r, k] * other[k, c] }
                out[r * 4 + c] = s
            }
        }
        return Affine(rowMajor: out)
    }

    /// Maps a voxel coordinate to world millimetres.
    public func apply(_ p: SIMD3<Double>) -> SIMD3<Double> {
        SIMD3(
            self[0, 0] * p.x + self[0, 1] * p.y + self[0, 2] * p.z + self[0, 3],
            self[1, 0] * p.x + self[1, 1] * p.y + self[1, 2] * p.z + self[1, 3],
            self[2, 0] * p.x + self[2, 1] * p.y + self[2, 2] * p.z + self[2, 3])
    }

    /// Length of each of the first three columns: the voxel size the matrix implies.
    public var columnLengths: SIMD3<Double> {
        var out = SIMD3<Double>()
        for c in 0..<3 {
            out[c] = (0..<3).map { self[$0, c] * self[$0, c] }.reduce(0, +).squareRoot()
        }
        return out
    }

    public var description: String {
        (0..<4).map { r in
            (0..<4).map { c in String(format: "%10.4f", self[r, c]) }.joined(separator: " ")
        }.joined(separator: "\n")
    }
}
