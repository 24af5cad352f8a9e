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
            let interval = 0.5
            let poller = SlurmPoller()
            let finals = Locked<[String: String]>([:])
            let started = Date()
            DispatchQueue.concurrentPerform(iterations: ids.count) { i in
                let final = poller.wait(for: ids[i], every: interval) { state in
                    // the long job is cancelled once it runs
                    if i == 2, state == "RUNNING" { SlurmTools.cancel(job: ids[i]) }
                }
                finals.withLock { $0[ids[i]] = final ?? "forgotten" }
            }
            let elapsed = Date().timeIntervalSince(started)
            let states = finals.withLock { $0 }
            #expect(ids.map { states[$0] } == ["COMPLETED", "FAILED", "CANCELLED", "COMPLETED"], "\(states)")
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
