/// What `defacer info` shows about a scan: geometry, data type and scaling, from the header.
public struct ScanInfo: Codable, Sendable, Equatable {
    public var file: String
    public var format: String
    public var dimensions: [Int]
    public var voxelSizeMM: [Double]
    public var dataType: String
    public var sclSlope: Double
    public var sclInter: Double
    public var orientation: String
    public var affineSource: String
    /// The voxel-to-world affine, four rows of four.
    public var affine: [[Double]]
    public var qformCode: Int
    public var sformCode: Int
    public var volumes: Int
    public var headerExtensions: Int

    public init(file: String, header: NiftiHeader) {
        self.file = file
        format = header.fileForm.description + (file.hasSuffix(".gz") ? " gzipped" : "")
        dimensions = header.dimensions
        voxelSizeMM = header.voxelSize
        dataType = header.dataType?.description ?? NiftiDataType.name(ofCode: header.dataTypeCode)
        sclSlope = header.sclSlope
        sclInter = header.sclInter
        orientation = AxisOrientation(affine: header.affine).code
        affineSource = header.affineSource
        let a = header.affine
        affine = (0..<4).map { r in (0..<4).map { c in a[r, c] } }
        qformCode = header.qformCode
        sformCode = header.sformCode
        volumes = header.volumeCount
        headerExtensions = header.extensionCount
    }
}
