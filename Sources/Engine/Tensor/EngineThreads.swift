import COpenBLAS
import Foundation

/// How many threads the engine's layers use. Each worker runs OpenBLAS single-threaded on
/// its own tile, so engine threads and BLAS threads never multiply beyond the cores.
public enum EngineThreads {
    nonisolated(unsafe) private static var configured: Int = {
        openblas_set_num_threads(1)
        let env = ProcessInfo.processInfo.environment["DEFACER_THREADS"].flatMap(Int.init)
        return max(1, env ?? ProcessInfo.processInfo.activeProcessorCount)
    }()

    /// Worker threads per layer (default: the number of cores, or `DEFACER_THREADS`).
    public static var count: Int { configured }

    /// Sets the worker count; call once at start-up (the daemon gives each job cores / jobs).
    public static func configure(threads: Int) {
        openblas_set_num_threads(1)
        configured = max(1, threads)
    }
}
