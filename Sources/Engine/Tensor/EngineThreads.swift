import COpenBLAS
import Foundation

/// How many threads the engine's layers use unless told otherwise. Each worker runs OpenBLAS
/// single-threaded on its own tile, so engine threads and BLAS threads never multiply beyond
/// the cores. The count a job uses travels with it (``DefaceOptions/threads``,
/// ``BrainExtractor/threads``); nothing here changes after start-up.
public enum EngineThreads {
    /// The number of cores, or `DEFACER_THREADS` when set.
    public static let available: Int = {
        let env = ProcessInfo.processInfo.environment["DEFACER_THREADS"].flatMap(Int.init)
        return max(1, env ?? ProcessInfo.processInfo.activeProcessorCount)
    }()

    private static let singleThreadedBLAS: Void = openblas_set_num_threads(1)

    /// Makes OpenBLAS single-threaded (once per process; the layers call it before their products).
    @inline(__always) static func useSingleThreadedBLAS() { _ = singleThreadedBLAS }
}
