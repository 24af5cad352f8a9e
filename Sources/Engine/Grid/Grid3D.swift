/// The size of a 3D voxel grid, x fastest, with index helpers.
public struct Grid3D: Sendable, Equatable, CustomStringConvertible {
    public var nx: Int
    public var ny: Int
    public var nz: Int

    public init(_ nx: Int, _ ny: Int, _ nz: Int) {
        self.nx = nx
        self.ny = ny
        self.nz = nz
    }

    public init(_ shape: [Int]) { self.init(shape[0], shape[1], shape[2]) }

    public var count: Int { nx * ny * nz }
    public var shape: [Int] { [nx, ny, nz] }

    @inline(__always) public func index(_ x: Int, _ y: Int, _ z: Int) -> Int { x + nx * (y + ny * z) }

    /// The index of the voxel whose centre is nearest to `p` (grid millimetres: index times
    /// `spacing`), each coordinate rounded half away from zero as `Double.rounded()` does; nil
    /// outside the grid.
    @inline(__always) public func nearestVoxel(_ p: SIMD3<Double>, spacing: [Double]) -> Int? {
        let i = Self.nearestInteger(p.x / spacing[0]), j = Self.nearestInteger(p.y / spacing[1])
        let k = Self.nearestInteger(p.z / spacing[2])
        guard i >= 0, j >= 0, k >= 0, i < nx, j < ny, k < nz else { return nil }
        return index(i, j, k)
    }

    /// `Int(x.rounded())` without a call into the C library (portable x86-64 has no rounding
    /// instruction): `x` less its integer part is exact, so the comparison with one half is too.
    @inline(__always) static func nearestInteger(_ x: Double) -> Int {
        let whole = Int(x), part = x - Double(whole)
        return part >= 0.5 ? whole + 1 : (part <= -0.5 ? whole - 1 : whole)
    }

    public var description: String { "\(nx)x\(ny)x\(nz)" }
}
