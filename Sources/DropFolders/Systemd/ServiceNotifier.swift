import CSystemd
import Glibc

/// Messages to the service manager over `$NOTIFY_SOCKET` (systemd's sd_notify protocol).
/// Without the variable (a foreground run) every call does nothing.
struct ServiceNotifier: Sendable {
    /// Half of `WATCHDOG_USEC` (when systemd asked for pings), in seconds.
    let watchdogInterval: Double?

    init() {
        var usec: UInt64 = 0
        watchdogInterval = sd_watchdog_enabled(0, &usec) > 0 && usec > 0 ? Double(usec) / 2e6 : nil
    }

    func send(_ state: String) {
        _ = sd_notify(0, state)
    }

    func ready(status: String) { send("READY=1\nSTATUS=\(status)") }
    func status(_ line: String) { send("STATUS=\(line)") }
    func watchdog() { send("WATCHDOG=1") }
    func stopping(status: String) { send("STOPPING=1\nSTATUS=\(status)") }

    /// RELOADING=1 with the CLOCK_MONOTONIC time in microseconds, as systemd 253+ expects.
    func reloading() {
        send("RELOADING=1\nMONOTONIC_USEC=\(Self.monotonicMicroseconds())\nSTATUS=reloading the configuration")
    }

    /// Asks for more time before systemd's stop (or start) timeout kills the service.
    func extendTimeout(seconds: Double) {
        send("EXTEND_TIMEOUT_USEC=\(UInt64(seconds * 1e6))")
    }

    static func monotonicMicroseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000
    }
}

/// Seconds on CLOCK_MONOTONIC.
func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
