/// Tiles of a convolution's output: blocks of `side` voxels per axis, counted per axis.
public struct Tiling: Sendable {
    /// Tiles along depth, height and width.
    public let tz: Int, ty: Int, tx: Int
    /// Output voxels per tile side.
    public let side: Int
    /// Tiles in all.
    public var count: Int { tz * ty * tx }
    /// The tiles of an `od x oh x ow` output.
    public init(od: Int, oh: Int, ow: Int, side: Int) {
        self.side = side
        tz = (od + side - 1) / side; ty = (oh + side - 1) / side; tx = (ow + side - 1) / side
    }

    /// The first output voxel (z, y, x) of tile `index`.
    func origin(_ index: Int) -> Cursor {
        Cursor(z: (index / (ty * tx)) * side, y: ((index / tx) % ty) * side, x: (index % tx) * side,
               width: tx * side, height: ty * side, side: side)
    }
}

/// A tile's first output voxel, stepped tile by tile without divisions.
struct Cursor {
    var z: Int, y: Int, x: Int
    let width: Int, height: Int, side: Int
    @inline(__always) mutating func advance() {
        x += side
        if x == width { x = 0; y += side; if y == height { y = 0; z += side } }
    }
}
