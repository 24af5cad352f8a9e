import Foundation

/// One poller for all of the service's Slurm jobs: while any job is followed, one `squeue` per
/// interval asks for every followed job at once (`squeue -t all -j a,b,c`) and hands each job's
/// state to the threads waiting for it. The number of Slurm calls no longer grows with the
/// number of jobs (`slurm_max_running`).
final class SlurmPoller: @unchecked Sendable {
    /// The process's poller: the service's jobs all share it.
    static let shared = SlurmPoller()

    /// What one poll said of a job: its state (nil once Slurm has forgotten it), or why Slurm
    /// could not be asked.
    typealias Answer = Result<String?, SlurmTools.Failure>

    // everything below is guarded by `condition`'s lock
    private let condition = NSCondition()
    /// Followed job ids, with how many waiters follow each.
    private var followers: [String: Int] = [:]
    /// The latest poll's answer for each followed job.
    private var answers: [String: Answer] = [:]
    /// Polls done so far.
    private var round = 0
    private var polling = false
    private var interval = 2.0

    /// The polls done so far (each one `squeue` for all followed jobs).
    var polls: Int {
        condition.lock()
        defer { condition.unlock() }
        return round
    }

    /// Starts following job `id`, polled every `seconds`; the round to pass to `answer`.
    func follow(_ id: String, every seconds: Double) -> Int {
        condition.lock()
        defer { condition.unlock() }
        followers[id, default: 0] += 1
        interval = seconds
        if !polling {
            polling = true
            Thread.detachNewThread { [self] in pollWhileFollowed() }
        }
        return round
    }

    /// Stops following job `id` (for one waiter).
    func unfollow(_ id: String) {
        condition.lock()
        defer { condition.unlock() }
        if let n = followers[id], n > 1 { followers[id] = n - 1 } else {
            followers[id] = nil
            answers[id] = nil
        }
    }

    /// Waits for a poll after round `after` that asked about `id`: its answer and its round;
    /// nil when `deadline` came first.
    func answer(for id: String, after: Int, until deadline: Date?) -> (Answer, Int)? {
        condition.lock()
        defer { condition.unlock() }
        while round <= after || answers[id] == nil {
            // (Foundation traps on a wait until .distantFuture: an overflow)
            guard let deadline else {
                condition.wait()
                continue
            }
            guard condition.wait(until: deadline) else { return nil }
        }
        return (answers[id]!, round)
    }

    /// How following a job ended.
    enum Ending: Sendable, Equatable {
        /// The job ended in this state (nil: Slurm has forgotten it).
        case ended(String?)
        /// The deadline came first; the job's last state seen (nil: none seen yet).
        case stillActive(String?)
    }

    /// Follows job `id` until it ends or `deadline` (if any) passes: `seen` is told each new state (nil
    /// once Slurm has forgotten the job). Polls that could not ask Slurm are skipped.
    func wait(for id: String, every seconds: Double, until deadline: Date? = nil,
              seen: (String?) -> Void = { _ in }) -> Ending {
        var round = follow(id, every: seconds)
        defer { unfollow(id) }
        var last: String??
        while true {
            guard let (said, next) = answer(for: id, after: round, until: deadline) else { return .stillActive(last ?? nil) }
            round = next
            guard case .success(let state) = said else { continue }
            if last != .some(state) {
                seen(state)
                last = .some(state)
            }
            guard let state, SlurmWorker.activeStates.contains(state) else { return .ended(state) }
        }
    }

    /// The poller's thread: one `squeue` for all followed jobs per interval (five intervals
    /// while Slurm cannot be asked), until no job is followed.
    private func pollWhileFollowed() {
        while true {
            condition.lock()
            let ids = followers.keys.sorted()
            guard !ids.isEmpty else {
                polling = false
                condition.unlock()
                return
            }
            condition.unlock()
            let said: Result<[String: String], SlurmTools.Failure>
            do { said = .success(try SlurmTools.states(ids)) } catch { said = .failure(error) }
            condition.lock()
            for id in ids where followers[id] != nil { answers[id] = said.map { $0[id] } }
            round += 1
            let pause = interval * (said.isSuccess ? 1 : 5)
            condition.broadcast()
            condition.unlock()
            Thread.sleep(forTimeInterval: pause)
        }
    }
}

private extension Result {
    var isSuccess: Bool { if case .success = self { true } else { false } }
}
