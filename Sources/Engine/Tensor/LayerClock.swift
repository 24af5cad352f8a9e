/// Seconds spent per layer kind inside network passes (`defacer bench`'s "networkStages"):
/// one clock read each time the pass switches kind, so it costs nothing measurable. A kind
/// measured inside another (a slab's copies inside its convolution) is charged to itself only.
/// Used from the thread that runs the pass, never from its workers.
public final class LayerClock {
    private var seconds: [String: Double] = [:]
    private var order: [String] = []
    private var current: String?
    private var since = ContinuousClock.now

    public init() {}

    /// Runs `body`, its time charged to `kind` (and taken off the kind it runs inside).
    @discardableResult
    public func measure<T>(_ kind: String, _ body: () throws -> T) rethrows -> T {
        let outer = switchTo(kind)
        defer { switchTo(outer) }
        return try body()
    }

    @discardableResult
    private func switchTo(_ kind: String?) -> String? {
        let now = ContinuousClock.now
        if let current {
            let d = now - since
            if seconds[current] == nil { order.append(current) }
            seconds[current, default: 0] += d.inSeconds
        }
        let previous = current
        current = kind
        since = now
        return previous
    }

    /// Seconds per kind, in the order the kinds were first timed.
    public var stages: [StageClock.Stage] { order.map { StageClock.Stage(name: $0, seconds: seconds[$0]!) } }
}

/// Measures `body` as `kind` on `clock`, or just runs it without one.
@inline(__always)
func timed<T>(_ clock: LayerClock?, _ kind: String, _ body: () -> T) -> T {
    guard let clock else { return body() }
    return clock.measure(kind, body)
}
