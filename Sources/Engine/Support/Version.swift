/// The version of defacer, written into every output's header and report.
public enum DefacerVersion {
    /// Semantic version of this build.
    public static let string = "0.1.0"
}
