extension DefaceError.Code {
    /// A stable name for programs: the reason file's `code` (`implausibleBrain`, `unreadable.truncated`...).
    public var name: String {
        switch self {
        case .unreadable(let c):
            let text = "\(c)"
            return "unreadable." + String(text.prefix { $0 != "(" })
        case .model(let c): return "model.\(c)"
        case .implausibleBrain: return "implausibleBrain"
        case .brainCutByFieldOfView: return "brainCutByFieldOfView"
        case .implausibleFace: return "implausibleFace"
        case .orientationDisagrees: return "orientationDisagrees"
        case .writeFailed: return "writeFailed"
        }
    }
}
