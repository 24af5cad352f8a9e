/// What a defacing run did, written as `<name>_deface.json` and logged by the daemon.
public struct DefaceReport: Codable, Sendable {
    public var defacerVersion = DefacerVersion.string
    public var method = "HD-BET brain mask continued past the field of view; orientation checked against the anatomy; face below the brain's underside in the head's own frame; outer ears outside the head's smooth outline; brain margin guard, and as a second condition an anatomical budget for the face (nothing above the eyes' level behind the eyes) and a further distance budget for the ears"
    public var model: String
    public var modelSource: String
    public var mode: String
    public var input: String
    public var inputSHA256: String
    public var outputs: [String: String] = [:]
    /// sha256 of each output file, by output name.
    public var outputSHA256: [String: String] = [:]
    public var dimensions: [Int]
    public var voxelSizeMM: [Double]
    public var volumes: Int
    public var orientation: String
    public var marginMM: Double
    public var earsRemoved: Bool
    public var brainVolumeML: Double
    public var headTiltDegrees: [String: Double]
    /// Voxels set to blank (tissue and the air around the face and ears).
    public var voxelsRemoved: Int
    /// Head-tissue voxels removed from the face and from the ears.
    public var faceVoxelsRemoved: Int
    public var earVoxelsRemoved: Int
    public var volumeRemovedML: Double
    /// Brain-mask voxels that were removed (always 0: the guard forbids it).
    public var brainVoxelsTouched: Int
    public var faceInFieldOfView: Bool
    /// Head tissue removed (ml) and as a percentage of the head in view.
    public var headVolumeRemovedML = 0.0
    public var headRemovedPercent = 0.0
    /// Smallest distance (mm) from removed head tissue to the guarded brain (HD-BET above 5%).
    public var minDistanceToBrainMM: Double?
    /// How much further than the margin ear voxels must stay from the brain (mm).
    public var earBudgetMM = 0.0
    /// Head tissue (ml) of the face region that the brain guard let go but the face budget kept.
    public var faceBudgetKeptML = 0.0
    /// The header's orientation against the anatomy, in words.
    public var orientationCheck = ""
    /// Faces of the image volume the brain reached (it was taken to continue past them).
    public var fieldOfViewEdgesReached: [String] = []
    /// Each feature (both eyes, nose, mouth, both ears): found, and the estimated fraction removed.
    public var features: [String: FeatureEstimate] = [:]
    /// How the face and ears were found (the method; for a model its name, source and licence).
    public var faceRegion: FaceRegionReport?
    public var warnings: [String] = []
    public var stages: [StageClock.Stage] = []
    public var totalSeconds: Double = 0
}
