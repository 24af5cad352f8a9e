/// Wall-clock time per processing step, for reports and benchmarks.
public struct StageClock: Sendable {
    /// One finished step.
    public struct Stage: Sendable, Codable, Equatable {
        public var name: String
        public var seconds: Double
    }

    public private(set) var stages: [Stage] = []
    private var last = ContinuousClock.now

    public init() {}

    /// Ends the current step under `name` and starts the next.
    public mutating func lap(_ name: String) {
        let now = ContinuousClock.now
        let d = now - last
        stages.append(Stage(name: name, seconds: d.inSeconds))
        last = now
    }

    /// Total seconds over all steps.
    public var total: Double { stages.reduce(0) { $0 + $1.seconds } }
}

extension Duration {
    /// This duration in seconds.
    public var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
