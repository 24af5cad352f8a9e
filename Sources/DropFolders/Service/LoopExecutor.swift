import Dispatch
import Engine

/// A serial executor over one Dispatch queue: the drop-folder service's actor runs on it, so
/// the service's timers, signal and inotify handlers (Dispatch sources on the same queue)
/// enter the actor with `assumeIsolated`, which checks that they really are on the queue.
package final class LoopExecutor: SerialExecutor {
    package let queue: DispatchQueue

    package init(label: String) {
        queue = DispatchQueue(label: label)
    }

    package func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedSerialExecutor()) }
    }

    package func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    package func checkIsolated() {
        dispatchPrecondition(condition: .onQueue(queue))
    }
}
