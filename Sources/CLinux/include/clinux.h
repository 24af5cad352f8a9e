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

#endif
