import CSystemd
import Engine

/// Messages to the service manager over `$NOTIFY_SOCKET` (systemd's sd_notify protocol).
/// Without the variable (a foreground run) every call does nothing.
package struct ServiceNotifier: Sendable {
    /// Half of `WATCHDOG_USEC` (when systemd asked for pings), in seconds.
    package let watchdogInterval: Double?

    package init() {
        var usec: UInt64 = 0
        watchdogInterval = sd_watchdog_enabled(0, &usec) > 0 && usec > 0 ? Double(usec) / 2e6 : nil
    }

    package func send(_ state: String) {
        _ = sd_notify(0, state)
    }

    package func ready(status: String) { send("READY=1\nSTATUS=\(status)") }
    package func status(_ line: String) { send("STATUS=\(line)") }
    package func watchdog() { send("WATCHDOG=1") }
    package func stopping(status: String) { send("STOPPING=1\nSTATUS=\(status)") }

    /// RELOADING=1 with the CLOCK_MONOTONIC time in microseconds, as systemd 253+ expects.
    package func reloading() {
        send("RELOADING=1\nMONOTONIC_USEC=\(monotonicMicroseconds())\nSTATUS=reloading the configuration")
    }

    /// Asks for more time before systemd's stop (or start) timeout kills the service.
    package func extendTimeout(seconds: Double) {
        send("EXTEND_TIMEOUT_USEC=\(UInt64(seconds * 1e6))")
    }
}
