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

    public var description: String { "\(nx)x\(ny)x\(nz)" }
}
