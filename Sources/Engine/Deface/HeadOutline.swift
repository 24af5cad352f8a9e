/// Two signs of up and down from the head's outline alone, independent of the brain's
/// position in the head (what `AnatomyOrientation.headBelowBrain` measures), for heads whose
/// field of view cuts the brain's bottom off. Measured on the head's area in each axial slice
/// (Colin27 / pydeface's head): the bottom slice holds 100% / 63% of the largest slice's area,
/// the top slice none; at 15% of the brain's height from its bottom the head is 1.5 / 1.3 times
/// as wide as at 15% from its top.
struct HeadOutline {
    /// +1: the head closes inside the field of view at the grid's top and runs out at its bottom.
    var closesAtTop: Int
    /// +1: the head is wider across the brain's lower part than across its upper part.
    var widerBelow: Int
    var bottomShare: Double, topShare: Double, widthRatio: Double

    /// An edge slice with less than this share of the largest slice is closed (the vertex's
    /// cap ended inside the field of view); with more than `openShare`, cut open.
    static let closedShare = 0.02, openShare = 0.15
    /// The least ratio of the two widths that says which end is the bottom.
    static let widerBy = 1.15

    static let unclear = HeadOutline(closesAtTop: 0, widerBelow: 0, bottomShare: 0, topShare: 0, widthRatio: 1)

    init(closesAtTop: Int, widerBelow: Int, bottomShare: Double, topShare: Double, widthRatio: Double) {
        (self.closesAtTop, self.widerBelow) = (closesAtTop, widerBelow)
        (self.bottomShare, self.topShare, self.widthRatio) = (bottomShare, topShare, widthRatio)
    }

    /// - Parameters: area: head voxels in each axial slice; brainBottom, brainTop: the brain's
    ///   lowest and highest slices.
    init(area: [Int], brainBottom: Int, brainTop: Int) {
        let largest = Double(area.max() ?? 0)
        guard largest > 0, brainTop - brainBottom >= 10 else {
            self = .unclear
            return
        }
        let bottom = Double(area[0]) / largest, top = Double(area[area.count - 1]) / largest
        let closesAtTop = top < Self.closedShare && bottom > Self.openShare ? 1
            : (bottom < Self.closedShare && top > Self.openShare ? -1 : 0)
        let step = Int((0.15 * Double(brainTop - brainBottom)).rounded())
        let low = Double(area[brainBottom + step]), high = Double(area[brainTop - step])
        let ratio = high > 0 ? low / high : (low > 0 ? .infinity : 1)
        let widerBelow = ratio > Self.widerBy ? 1 : (ratio < 1 / Self.widerBy ? -1 : 0)
        self.init(closesAtTop: closesAtTop, widerBelow: widerBelow, bottomShare: bottom, topShare: top,
                  widthRatio: ratio.isFinite ? ratio : 99)
    }
}
