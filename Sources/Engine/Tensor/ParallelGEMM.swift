import COpenBLAS
import Dispatch

/// `C[M, N] = op(A)[M, K] x B[K, N]` (row-major, float32), its columns split over the
/// engine's workers, each calling single-threaded OpenBLAS.
enum ParallelGEMM {
    static func multiply(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, transposeA: Bool = false,
                         b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int, threads: Int) {
        EngineThreads.useSingleThreadedBLAS()
        let workers = max(1, min(threads, n / 256))
        let chunk = (n + workers - 1) / workers
        let sa = UnsafeShared(a), sb = UnsafeShared(b), sc = UnsafeShared(c)
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let n0 = worker * chunk
            let cols = min(chunk, n - n0)
            guard cols > 0 else { return }
            cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, CblasNoTrans,
                        Int32(m), Int32(cols), Int32(k), 1, sa.pointer, Int32(lda),
                        sb.pointer + n0, Int32(ldb), 0, sc.pointer + n0, Int32(ldc))
        }
    }
}
