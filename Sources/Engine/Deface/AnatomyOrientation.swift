/// Checks the header's front and top against the anatomy before anything is removed: the
/// face sticks out in front of the brain much further than the scalp behind it, the
/// cerebellum (the brain's lowest part) lies behind the brain's middle; the neck and face
/// hang below the brain while only scalp covers its top, the head closes in a rounded cap at
/// the top while the neck runs out of the field of view at the bottom, and the head is wider
/// across the brain's lower part (face, ears) than across its upper part (the vertex).
public struct AnatomyOrientation: Sendable, Codable {
    /// What one sign says about an axis: +1 agrees with the grid, -1 says it is reversed, 0 unclear.
    public var faceInFront: Int
    public var cerebellumBehind: Int
    public var headBelowBrain: Int
    /// The head closes at the grid's top edge (its cap in view) and is cut open at the bottom edge.
    public var headClosesAtTop: Int
    /// The head is wider across the brain's lower part than across its upper part.
    public var headWiderBelow: Int
    /// Millimetres of head in front of / behind the brain, and below / above it.
    public var frontMM: Double, backMM: Double, belowMM: Double, aboveMM: Double
    /// Mean front-back position of the brain's lowest 15%, as a fraction of its length (negative = behind).
    public var lowestBrainOffset: Double
    /// Head area in the grid's bottom and top slices, as fractions of its largest slice.
    public var bottomEdgeShare = 0.0, topEdgeShare = 0.0
    /// Head area at 15% of the brain's height from its bottom over that at 15% from its top.
    public var widthRatio = 1.0

    /// The verdict on anterior (+1 agrees, -1 reversed, 0 unclear): one sign saying reversed
    /// while none agrees, or both saying reversed, is reversed; signs contradicting each other are unclear.
    public var anterior: Int { Self.combine([faceInFront, cerebellumBehind]) }
    /// The verdict on superior, as for anterior.
    public var superior: Int { Self.combine(upSigns) }
    /// Up is clear enough to be taken from the anatomy alone (no orientation in the header):
    /// at least two independent signs say so and none says otherwise.
    public var superiorAgreed: Bool { !upSigns.contains(-1) && upSigns.filter { $0 == 1 }.count >= 2 }
    var upSigns: [Int] { [headBelowBrain, headClosesAtTop, headWiderBelow] }

    static func combine(_ votes: [Int]) -> Int {
        if votes.contains(1) && votes.contains(-1) { return 0 }
        return votes.contains(1) ? 1 : (votes.contains(-1) ? -1 : 0)
    }

    /// Measures the signs on RAS+ ordered masks. The head above the brain says "reversed" only
    /// beyond what scalp and skull explain (35 mm; Colin27: 15 mm), since a field of view that
    /// cuts the neck off leaves no head below the brain in a head the right way up.
    public init(brain: [UInt8], head: [UInt8], grid: Grid3D, spacing: [Double]) {
        var zs: [Int] = [], ys: [Int] = []
        var lo = [Int.max, Int.max, Int.max], hi = [Int.min, Int.min, Int.min]
        for z in 0..<grid.nz {
            for y in 0..<grid.ny {
                for x in 0..<grid.nx where brain[grid.index(x, y, z)] != 0 {
                    zs.append(z); ys.append(y)
                    lo[0] = min(lo[0], x); lo[1] = min(lo[1], y); lo[2] = min(lo[2], z)
                    hi[0] = max(hi[0], x); hi[1] = max(hi[1], y); hi[2] = max(hi[2], z)
                }
            }
        }
        guard !zs.isEmpty else {
            self.init(votes: (0, 0, 0), mm: (0, 0, 0, 0), lowest: 0, outline: .unclear)
            return
        }
        let centreZ = zs.reduce(0, +) / zs.count, centreY = Double(ys.reduce(0, +)) / Double(ys.count)
        // head in front of and behind the brain, between the brain's bottom and its middle
        var headLo = [Int.max, Int.max], headHi = [Int.min, Int.min]   // y, z
        var area = [Int](repeating: 0, count: grid.nz)
        for z in 0..<grid.nz {
            for y in 0..<grid.ny {
                for x in 0..<grid.nx where head[grid.index(x, y, z)] != 0 {
                    area[z] += 1
                    if z >= lo[2] && z <= centreZ { headLo[0] = min(headLo[0], y); headHi[0] = max(headHi[0], y) }
                    headLo[1] = min(headLo[1], z); headHi[1] = max(headHi[1], z)
                }
            }
        }
        let front = Double(headHi[0] - hi[1]) * spacing[1], back = Double(lo[1] - headLo[0]) * spacing[1]
        let below = Double(lo[2] - headLo[1]) * spacing[2], above = Double(headHi[1] - hi[2]) * spacing[2]
        // the brain's lowest 15%
        let order = zs.indices.sorted { zs[$0] < zs[$1] }
        let lowest = order.prefix(max(1, order.count * 15 / 100))
        let lowY = lowest.reduce(0.0) { $0 + Double(ys[$1]) } / Double(lowest.count)
        let offset = (lowY - centreY) / Double(max(1, hi[1] - lo[1]))
        func vote(_ a: Double, _ b: Double, by: Double) -> Int { a > b + by ? 1 : (b > a + by ? -1 : 0) }
        // where the field of view cuts the brain (within 10 mm of an edge), what lies past
        // that edge is unknown: the head's extent along that axis says nothing. (The brain's
        // lowest part still does: a slab through the frontal lobe has its lowest 15% spread
        // front to back, -0.01 of its length, unclear; Colin27's cerebellum, 5 mm above the
        // field of view's bottom, is its lowest part either way.)
        func cut(_ axis: Int) -> Bool {
            Double(lo[axis]) * spacing[axis] < 10 || Double(grid.shape[axis] - 1 - hi[axis]) * spacing[axis] < 10
        }
        self.init(votes: (cut(1) ? 0 : vote(front, back, by: 10),
                          offset < -0.08 ? 1 : (offset > 0.08 ? -1 : 0),
                          cut(2) ? 0 : (above > 35 && above > below + 15 ? -1 : (below > above + 15 ? 1 : 0))),
                  mm: (front, back, below, above), lowest: offset, outline: HeadOutline(area: area, brainBottom: lo[2], brainTop: hi[2]))
    }

    init(votes: (Int, Int, Int), mm: (Double, Double, Double, Double), lowest: Double, outline: HeadOutline) {
        (faceInFront, cerebellumBehind, headBelowBrain) = votes
        (frontMM, backMM, belowMM, aboveMM) = mm
        lowestBrainOffset = lowest
        (headClosesAtTop, headWiderBelow) = (outline.closesAtTop, outline.widerBelow)
        (bottomEdgeShare, topEdgeShare, widthRatio) = (outline.bottomShare, outline.topShare, outline.widthRatio)
    }

    /// The check in words for the report.
    public var summary: String {
        String(format: "face %.0f mm in front of the brain, %.0f mm of head behind it; brain's lowest part %+.2f of its length from its middle; %.0f mm of head below the brain, %.0f mm above; head in the bottom and top slices %.0f%% and %.0f%% of its largest; head %.2f times as wide low across the brain as high",
               frontMM, backMM, lowestBrainOffset, belowMM, aboveMM, 100 * bottomEdgeShare, 100 * topEdgeShare, widthRatio)
    }
}
