import Engine
import Foundation
import Glibc
/// Progress of a batch run: a bar redrawn in place on a terminal (done, failed, rate, time
/// left), plain lines otherwise. Safe to call from several threads.
final class BatchProgress: @unchecked Sendable {
    private let lock = NSLock()
    private let total: Int
    private let alreadyDone: Int
    private var done = 0
    private var failed = 0
    private let started = monotonicSeconds()
    private let terminal = isatty(STDOUT_FILENO) == 1

    /// `total` scans in the batch, of which `alreadyDone` were finished (or failed) before.
    init(total: Int, alreadyDone: Int) {
        self.total = total
        self.alreadyDone = alreadyDone
    }

    /// Seconds since this run started.
    var elapsed: Double { monotonicSeconds() - started }

    /// Scans defaced per hour in this run.
    var scansPerHour: Double {
        lock.withLock { elapsed > 0 ? Double(done) * 3600 / elapsed : 0 }
    }

    /// Redraws the bar on a terminal (the rate and time left move while waiting).
    func tick() {
        if terminal { draw(line: nil) }
    }

    /// One scan finished in this run.
    func finished(_ item: BatchItem, outcome: BatchOutcome) {
        lock.withLock {
            if outcome.state == .done { done += 1 } else { failed += 1 }
        }
        let what = outcome.state == .done
            ? String(format: "defaced %@ (%.0f s)", item.display, outcome.seconds)
            : "FAILED \(item.input): \(outcome.reason ?? "no reason recorded")"
        draw(line: what)
    }

    /// Prints a message above the bar.
    func note(_ message: String) { draw(line: message) }

    /// Ends the bar's line on a terminal.
    func close() {
        if terminal { print("") }
        fflush(nil)
    }

    private func draw(line: String?) {
        lock.withLock {
            let finished = alreadyDone + done + failed
            let rate = elapsed > 0 ? Double(done + failed) / elapsed : 0
            let left = rate > 0 ? Double(total - finished) / rate : 0
            let pace = String(format: "%.1f scans/h", rate * 3600)
                + (rate > 0 && finished < total ? ", about \(Self.duration(left)) left" : "")
            let status = "\(finished)/\(total) scans (\(done) defaced, \(failed) failed this run), " + pace
            if terminal {
                let width = 30
                let filled = total > 0 ? width * finished / total : width
                let bar = "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] "
                if let line { print("\r\u{1B}[K" + line) }
                print("\r\u{1B}[K" + bar + status, terminator: "")
            } else if let line {
                print("[\(finished)/\(total)] \(line); \(pace)")
            }
            fflush(nil)
        }
    }

    static func duration(_ seconds: Double) -> String {
        seconds < 90 ? "\(Int(seconds.rounded())) s" : seconds < 5400 ? "\(Int((seconds / 60).rounded())) min"
            : String(format: "%.1f h", seconds / 3600)
    }
}
