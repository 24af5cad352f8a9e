#define _GNU_SOURCE
#include <signal.h>
#include "clinux.h"
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/vfs.h>

int dfc_rename_noreplace(const char *from, const char *to) {
    return renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE);
}

long long dfc_filesystem_type(const char *path) {
    struct statfs s;
    if (statfs(path, &s) != 0) return -1;
    return (long long)s.f_type;
}

int dfc_set_not_dumpable(void) {
    return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

int dfc_die_with_parent(void) {
    return prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
}

int dfc_dumpable(void) {
    return prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
}

int dfc_release_free_memory(void) {
    return malloc_trim(0);
}

#if defined(__x86_64__)
#include <cpuid.h>
int dfc_cpu_has_avx2(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    /* OSXSAVE (bit 27), AVX (28) */
    if ((c & (1u << 27)) == 0 || (c & (1u << 28)) == 0) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 6) != 6) return 0; /* XMM and YMM state saved by the system */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b & (1u << 5)) != 0; /* AVX2 */
}
#else
int dfc_cpu_has_avx2(void) { return 0; }
#endif
