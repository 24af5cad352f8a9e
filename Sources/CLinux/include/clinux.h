// Linux calls that Swift's Glibc module does not expose.
#ifndef DEFACER_CLINUX_H
#define DEFACER_CLINUX_H

/// rename(2) that fails with EEXIST instead of replacing an existing target.
/// Returns 0 or -1 with errno set.
int dfc_rename_noreplace(const char *from, const char *to);

/// statfs(2)'s f_type for the file system holding `path` (NFS 0x6969, CIFS 0xFF534D42, ...),
/// or -1 with errno set.
long long dfc_filesystem_type(const char *path);

/// prctl(PR_SET_DUMPABLE, 0): no core file and no ptrace by other processes of the same user
/// (a core file of the service would hold a patient scan). Returns 0 or -1 with errno set.
int dfc_set_not_dumpable(void);

/// prctl(PR_SET_PDEATHSIG, SIGKILL): this process is killed when the thread that started it ends
/// (a defacing worker never outlives the service). 0, or -1 with errno set.
int dfc_die_with_parent(void);

/// prctl(PR_GET_DUMPABLE): 1 when the process may dump core, 0 when not, -1 with errno set.
int dfc_dumpable(void);

/// malloc_trim(0): returns the heap's free memory to the system (after a large structure such
/// as a network's weights was freed). 1 when memory was released, 0 when none could be.
int dfc_release_free_memory(void);

/// 1 when the processor has AVX and AVX2 and the system saves the 256-bit registers
/// (CPUID and XGETBV), 0 otherwise (and on processors other than x86-64).
int dfc_cpu_has_avx2(void);

/// Asks the processor to bring the cache line holding `p` in ahead of a read (a hint only).
static inline void dfc_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

/// Eight floats in one vector (Swift sees `SIMD8<Float>`).
typedef float dfc_float8 __attribute__((ext_vector_type(8)));

/// Value `4i + K` of the 32 values `v0 v1 v2 v3`, for i = 0..<8 (`dfc_every4th_K`): the K-th
/// value of eight consecutive groups of four. Written as the compiler's vector shuffles, which
/// Swift cannot express, so that each build gets its processor's shuffle instructions.
#define DFC_EVERY4TH(K) \
static inline dfc_float8 dfc_every4th_##K(dfc_float8 v0, dfc_float8 v1, dfc_float8 v2, dfc_float8 v3) { \
    dfc_float8 lo = __builtin_shufflevector(v0, v1, K, K + 4, K + 8, K + 12, K, K + 4, K + 8, K + 12); \
    dfc_float8 hi = __builtin_shufflevector(v2, v3, K, K + 4, K + 8, K + 12, K, K + 4, K + 8, K + 12); \
    return __builtin_shufflevector(lo, hi, 0, 1, 2, 3, 8, 9, 10, 11); \
}
DFC_EVERY4TH(0)
DFC_EVERY4TH(1)
DFC_EVERY4TH(2)
DFC_EVERY4TH(3)

/// The inverse: values `8J ..< 8J+8` of the 32 whose value `4i + K` is `cK[i]`
/// (`dfc_interleave4_J`), eight groups of four put back in order.
#define DFC_INTERLEAVE4(J) \
static inline dfc_float8 dfc_interleave4_##J(dfc_float8 c0, dfc_float8 c1, dfc_float8 c2, dfc_float8 c3) { \
    dfc_float8 lo = __builtin_shufflevector(c0, c1, 2 * J, 2 * J + 8, 2 * J + 1, 2 * J + 9, 2 * J, 2 * J + 8, 2 * J + 1, 2 * J + 9); \
    dfc_float8 hi = __builtin_shufflevector(c2, c3, 2 * J, 2 * J + 8, 2 * J + 1, 2 * J + 9, 2 * J, 2 * J + 8, 2 * J + 1, 2 * J + 9); \
    return __builtin_shufflevector(lo, hi, 0, 1, 8, 9, 2, 3, 10, 11); \
}
DFC_INTERLEAVE4(0)
DFC_INTERLEAVE4(1)
DFC_INTERLEAVE4(2)
DFC_INTERLEAVE4(3)

#endif
