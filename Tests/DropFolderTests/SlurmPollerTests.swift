@testable import DropFolders
import Foundation
import Testing
import TestSupport

extension ServiceTests {
    /// The service's one poller for its Slurm jobs, on the real one-node cluster.
    @Suite struct SlurmPollerTests {
        @Test func onePollPerIntervalFollowsEveryJobToItsEnd() throws {
            #expect(TestCluster.ready(), "no Slurm test cluster: start it with tools/setup/slurm.sh start")
            let scripts = ["sleep 3", "sleep 2; exit 3", "sleep 600", "sleep 4"]
            let ids = try scripts.map { script in
                try SlurmTools.submit(["--job-name=defacer-poller-test", "--time=2", "--mem=32M", "--output=/dev/null", "--chdir=/tmp",
                                       "--wrap=\(script)"])
            }
            defer { for id in ids { SlurmTools.cancel(job: id) } }  // a failed run leaves no job behind
            let interval = 0.5
            let poller = SlurmPoller()
            let finals = Locked<[String: SlurmPoller.Ending]>([:])
            let started = Date()
            let group = DispatchGroup()
            for (i, id) in ids.enumerated() {
                group.enter()
                Thread.detachNewThread {
                    let final = poller.wait(for: id, every: interval) { state in
                        // the long job is cancelled once it runs
                        if i == 2, state == "RUNNING" { SlurmTools.cancel(job: id) }
                    }
                    finals.withLock { $0[id] = final }
                    group.leave()
                }
            }
            #expect(group.wait(timeout: .now() + 300) == .success)
            let elapsed = Date().timeIntervalSince(started)
            let states = finals.withLock { $0 }
            #expect(ids.map { states[$0] } == ["COMPLETED", "FAILED", "CANCELLED", "COMPLETED"].map { .ended($0) }, "\(states)")
            // one squeue per interval for all four jobs, not one per job
            #expect(poller.polls <= Int(elapsed / interval) + 2, "\(poller.polls) polls in \(elapsed) s")
            #expect(poller.polls >= 4, "the jobs took several polls")
        }
    }
}

/// A value behind a lock, for the test's threads.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<T>(_ body: (inout Value) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}
