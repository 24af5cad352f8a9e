/// The face region's second condition, which does not rest on where HD-BET draws the brain's
/// surface: an anatomical budget in the head's frame, measured from the brain mask's shape
/// (its centre and extent) only. Behind the back of the eyeballs and under the brain (within
/// `medialHalfWidth` of the midline), and between the eyes behind their centres, the face
/// reaches no higher than the eyes' centres: what lies above there is the orbital apex, the
/// optic nerves, the ethmoid and the tissue under the gyri recti and olfactory bulbs, none of
/// it part of the face that renderings show (the nasal bridge lies further forward). Measured on Colin27 against its reference
/// brain (ch2bet): HD-BET (every one of the five folds: fold agreement does not help here) stops
/// 3.6 mm short of ch2bet at the orbital apex, where the face region came within 2.2 mm of it
/// (1.4 mm on the FLAIR-like form); with the budget the nearest is 3.6 mm (3.3 mm FLAIR-like),
/// at the nasal midline and over the eyes, where the eyes must go whole.
enum FaceBudget {
    /// Height of the eyes' centres and their depth in front of the brain's centre, as fractions
    /// of the brain's height and length (Colin27, as in `FeatureEstimate`).
    static let eyeLevel = -0.31, eyeDepth = 0.466
    /// An adult eyeball's radius (mm, scaled with the brain's width like `FeatureEstimate`),
    /// with a millimetre of room.
    static let eyeRadiusMM = 13.0
    /// Half-width (fraction of the brain's width) of the band under the frontal lobes.
    static let medialHalfWidth = 0.30
    /// Half-width of the band between the eyes (Colin27's eyes' inner edges: 0.14 of the width).
    static let interocularHalfWidth = 0.10
    /// How far (fraction of the brain's height) below the eyes' centres the band between the
    /// eyes stops: on oblique grids (Colin27 turned 30 degrees about z and 10 about x; 20 about y)
    /// the head frame's few degrees of error let the nearest removed tissue (at the midline,
    /// 3-4 mm above the eyes' centres, 3.0 and 3.6 mm from ch2bet) through. The band is 14 mm
    /// either side of the midline and behind the eyes' centres: the ethmoid, no eye (inner
    /// edges 21 mm out) and no nose (in front of the eyes) in it.
    static let interocularDrop = 0.04

    /// Whether a face voxel at head-frame position `h` lies within the budget.
    static func allows(_ h: SIMD3<Double>, brainSize size: SIMD3<Double>) -> Bool {
        let scale = size.x / 143
        let behindEyes = h.y < eyeDepth * size.y - eyeRadiusMM * scale && abs(h.x) < medialHalfWidth * size.x
        let betweenEyes = h.y < eyeDepth * size.y && abs(h.x) < interocularHalfWidth * size.x
        guard behindEyes || betweenEyes else { return true }
        return h.z < (betweenEyes ? eyeLevel - interocularDrop : eyeLevel) * size.z
    }

    /// The budget as a mask on the grid (1 = a face voxel may go there); with `box`, only there
    /// (0 elsewhere: the budget is read only where the face region is).
    static func mask(grid: Grid3D, spacing: [Double], frame: HeadFrame, box: VoxelBox? = nil,
                     threads: Int = EngineThreads.available) -> [UInt8] {
        let t = frame.transform, size = frame.brainSize
        return FaceRegion.voxelMask(grid, spacing, box: box, threads: threads) { _, p in allows(t.toHead(p), brainSize: size) }
    }

    /// Head tissue (ml) that the HD-BET guard would let go but the budget keeps beyond which
    /// the two conditions are said to disagree: Colin27's forms keep about 5-8 ml.
    static let disagreementML = 30.0
}
