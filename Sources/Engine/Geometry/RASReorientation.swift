/// An exact mapping between a volume's stored voxel order and RAS+ order (first axis
/// towards Right, then Anterior, then Superior): permutations and flips only, never
/// interpolation, so mapping there and back returns every value unchanged.
public struct RASReorientation: Sendable, Equatable {
    /// Size of each stored axis (x fastest).
    public let nativeShape: [Int]
    /// The orientation of the stored axes.
    public let orientation: AxisOrientation
    /// Size of each axis in RAS+ order.
    public let rasShape: [Int]
    /// The voxel-to-world affine of the RAS+ ordered grid.
    public let rasAffine: Affine

    private let base: Int
    private let steps: [Int]

    public init(nativeShape: [Int], affine: Affine) {
        precondition(nativeShape.count == 3)
        self.nativeShape = nativeShape
        let orientation = AxisOrientation(affine: affine)
        self.orientation = orientation
        let strides = [1, nativeShape[0], nativeShape[0] * nativeShape[1]]
        var rasShape = [0, 0, 0]
        var steps = [0, 0, 0]
        var base = 0
        // native index = permutation * ras index + offset
        var toNative = Affine(rowMajor: [Double](repeating: 0, count: 16))
        toNative[3, 3] = 1
        for w in 0..<3 {
            let v = orientation.voxelAxis(alongWorld: w)
            rasShape[w] = nativeShape[v]
            if orientation.sign[v] > 0 {
                steps[w] = strides[v]
                toNative[v, w] = 1
            } else {
                steps[w] = -strides[v]
                base += (nativeShape[v] - 1) * strides[v]
                toNative[v, w] = -1
                toNative[v, 3] = Double(nativeShape[v] - 1)
            }
        }
        self.rasShape = rasShape
        self.steps = steps
        self.base = base
        self.rasAffine = affine.multiplied(by: toNative)
    }

    /// Number of voxels in one volume.
    public var voxelCount: Int { nativeShape.reduce(1, *) }

    /// The stored (native) linear index of RAS+ voxel (i, j, k).
    @inline(__always)
    public func nativeIndex(_ i: Int, _ j: Int, _ k: Int) -> Int {
        base + i * steps[0] + j * steps[1] + k * steps[2]
    }

    /// Reorders one volume's values from stored order into RAS+ order (x fastest); rows stored
    /// in RAS+ order already are copied whole.
    public func toRAS<T>(_ native: [T]) -> [T] {
        precondition(native.count == voxelCount)
        let nx = rasShape[0]
        return [T](unsafeUninitializedCapacity: native.count) { dst, count in
            native.withUnsafeBufferPointer { src in
                var n = 0
                for k in 0..<rasShape[2] {
                    for j in 0..<rasShape[1] {
                        let row = src.baseAddress! + base + j * steps[1] + k * steps[2], out = dst.baseAddress! + n
                        if steps[0] == 1 {
                            out.initialize(from: row, count: nx)
                        } else {
                            for i in 0..<nx { (out + i).initialize(to: row[i * steps[0]]) }
                        }
                        n += nx
                    }
                }
            }
            count = native.count
        }
    }

    /// Reorders one volume's values from RAS+ order back into stored order.
    public func toNative<T>(_ ras: [T]) -> [T] {
        precondition(ras.count == voxelCount)
        return [T](unsafeUninitializedCapacity: ras.count) { dst, count in
            ras.withUnsafeBufferPointer { src in
                var n = 0
                for k in 0..<rasShape[2] {
                    for j in 0..<rasShape[1] {
                        let row = base + j * steps[1] + k * steps[2]
                        for i in 0..<rasShape[0] {
                            (dst.baseAddress! + row + i * steps[0]).initialize(to: src[n])
                            n += 1
                        }
                    }
                }
            }
            count = ras.count
        }
    }
}
