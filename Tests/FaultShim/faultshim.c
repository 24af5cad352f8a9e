// An LD_PRELOAD fault shim for defacer's fault tests (not a product target; the tests build it
// with clang: clang -shared -fPIC -O1 -o faultshim.so faultshim.c -ldl).
//
//   DEFACER_FAULT=write:ENOSPC:7      the 7th write() fails with ENOSPC (once: the fault then clears)
//   DEFACER_FAULT=fsync:EIO:2         also fdatasync; rename:EXDEV:1, renameat2:EINVAL:1, link:EXDEV:1, close:EIO:3
//   DEFACER_FAULT=renameat2:EINVAL:*  every call fails (a file system that never allows it)
//   DEFACER_FAULT=renameat2:EINVAL:*,link:EPERM:*   up to four faults at once, comma-separated
//   DEFACER_FAULT_PREFIX=/tmp/x       only calls on paths under this prefix count and fail
//                                     (for write/fsync/close: the descriptor's path); up to
//                                     four prefixes separated by ':' (/tmp/x/outbox:/tmp/x/work)
//   DEFACER_FAULT_COUNT=FILE          counting mode: at exit, "function count" lines are appended to FILE
//   DEFACER_FAULT_FIRED=FILE          each fault made is appended to FILE: "function N errno path"
//   DEFACER_FAULT_TRACE=FILE          every call counted is appended to FILE: "function N path"
//   DEFACER_FAULT_SLOW_MS=N           every fsync/fdatasync under the prefixes first sleeps N ms
//                                     (a slow network file system)
//
// Counting is per process; the counters are atomic, so the engine's threads may write at once.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { F_WRITE, F_FSYNC, F_RENAME, F_RENAMEAT2, F_LINK, F_CLOSE, F_COUNT };
static const char *names[F_COUNT] = {"write", "fsync", "rename", "renameat2", "link", "close"};
static long counts[F_COUNT];
static struct { int fn, err, every; long nth; } faults[4];
static int nfaults = 0;
static char prefix_buf[4096];
static const char *prefixes[4];
static int nprefixes = 0;
static const char *count_file = NULL;
static const char *fired_file = NULL;
static const char *trace_file = NULL;
static long slow_ms = 0;

static int errno_named(const char *s) {
    static const struct { const char *n; int e; } table[] = {
        {"ENOSPC", ENOSPC}, {"EIO", EIO}, {"EINVAL", EINVAL}, {"EXDEV", EXDEV}, {"EDQUOT", EDQUOT},
        {"EPERM", EPERM}, {"EACCES", EACCES}, {"EROFS", EROFS}, {"ENOSYS", ENOSYS}, {"EINTR", EINTR}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(s, table[i].n) == 0) return table[i].e;
    return EIO;
}

__attribute__((constructor)) static void setup(void) {
    const char *prefix = getenv("DEFACER_FAULT_PREFIX");
    if (prefix) {
        char *psave = NULL;
        snprintf(prefix_buf, sizeof prefix_buf, "%s", prefix);
        for (char *p = strtok_r(prefix_buf, ":", &psave); p && nprefixes < 4; p = strtok_r(NULL, ":", &psave))
            prefixes[nprefixes++] = p;
    }
    count_file = getenv("DEFACER_FAULT_COUNT");
    fired_file = getenv("DEFACER_FAULT_FIRED");
    trace_file = getenv("DEFACER_FAULT_TRACE");
    if (getenv("DEFACER_FAULT_SLOW_MS")) slow_ms = atol(getenv("DEFACER_FAULT_SLOW_MS"));
    const char *spec = getenv("DEFACER_FAULT");
    if (!spec) return;
    char buf[256], *save = NULL;
    snprintf(buf, sizeof buf, "%s", spec);
    for (char *one = strtok_r(buf, ",", &save); one && nfaults < 4; one = strtok_r(NULL, ",", &save)) {
        char *inner = NULL;
        char *fn = strtok_r(one, ":", &inner), *err = strtok_r(NULL, ":", &inner), *n = strtok_r(NULL, ":", &inner);
        if (!fn || !err || !n) continue;
        int which = -1;
        for (int i = 0; i < F_COUNT; i++)
            if (strcmp(fn, names[i]) == 0) which = i;
        if (which < 0) continue;
        faults[nfaults].fn = which;
        faults[nfaults].err = errno_named(err);
        faults[nfaults].every = strcmp(n, "*") == 0;
        faults[nfaults].nth = faults[nfaults].every ? 0 : atol(n);
        nfaults++;
    }
}

__attribute__((destructor)) static void report(void) {
    if (!count_file) return;
    FILE *f = fopen(count_file, "a");
    if (!f) return;
    for (int i = 0; i < F_COUNT; i++) fprintf(f, "%s %ld\n", names[i], __atomic_load_n(&counts[i], __ATOMIC_SEQ_CST));
    fclose(f);
}

static int under_prefix(const char *path) {
    if (nprefixes == 0) return 1;
    for (int i = 0; path && i < nprefixes; i++)
        if (strncmp(path, prefixes[i], strlen(prefixes[i])) == 0) return 1;
    return 0;
}

// The path of a descriptor (empty when unknown).
static void fd_path(int fd, char *path, size_t size) {
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    int saved = errno;
    ssize_t n = readlink(link, path, size - 1);
    errno = saved;
    path[n > 0 ? n : 0] = 0;
}

static int fd_under_prefix(int fd) {
    if (nprefixes == 0) return 1;
    char path[4096];
    fd_path(fd, path, sizeof path);
    return path[0] && under_prefix(path);
}

// Appends "function N errno path" (or "function N path" with err < 0) to `file`.
static void note_call(const char *file, int which, long k, int err, const char *path) {
    if (!file) return;
    int saved = errno;
    FILE *f = fopen(file, "a");
    if (f) {
        if (err >= 0) fprintf(f, "%s %ld %d %s\n", names[which], k, err, path ? path : "?");
        else fprintf(f, "%s %ld %s\n", names[which], k, path ? path : "?");
        fclose(f);
    }
    errno = saved;
}

// Counts a call that concerns a watched path; the errno to fail it with, or 0 to let it run.
// `path` (or the descriptor `fd`'s path) is only used to say where a fault was made.
static int should_fail_at(int which, int relevant, const char *path, int fd) {
    if (!relevant) return 0;
    long k = __atomic_add_fetch(&counts[which], 1, __ATOMIC_SEQ_CST);
    char fdp[4096];
    if (!path && fd >= 0 && (trace_file || fired_file)) { fd_path(fd, fdp, sizeof fdp); path = fdp; }
    note_call(trace_file, which, k, -1, path);
    for (int i = 0; i < nfaults; i++)
        if (faults[i].fn == which && (faults[i].every || k == faults[i].nth)) {
            if (!faults[i].every) note_call(fired_file, which, k, faults[i].err, path);
            return faults[i].err;
        }
    return 0;
}
#define should_fail(which, relevant) should_fail_at(which, relevant, NULL, -1)

#define REAL(name) static __typeof__(name) *real; if (!real) real = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

ssize_t write(int fd, const void *b, size_t n) {
    REAL(write);
    int e = fd > 2 ? should_fail_at(F_WRITE, fd_under_prefix(fd), NULL, fd) : 0;
    if (e) { errno = e; return -1; }
    return real(fd, b, n);
}

// Sleeps `slow_ms` before a sync of a descriptor under the prefixes (nothing without DEFACER_FAULT_SLOW_MS).
static void slow_sync(int relevant) {
    if (slow_ms > 0 && relevant) usleep((useconds_t)(slow_ms * 1000));
}

int fsync(int fd) {
    REAL(fsync);
    int relevant = fd_under_prefix(fd);
    slow_sync(relevant);
    int e = should_fail_at(F_FSYNC, relevant, NULL, fd);
    if (e) { errno = e; return -1; }
    return real(fd);
}

int fdatasync(int fd) {
    REAL(fdatasync);
    int relevant = fd_under_prefix(fd);
    slow_sync(relevant);
    int e = should_fail_at(F_FSYNC, relevant, NULL, fd);
    if (e) { errno = e; return -1; }
    return real(fd);
}

int close(int fd) {
    REAL(close);
    int e = fd > 2 ? should_fail_at(F_CLOSE, fd_under_prefix(fd), NULL, fd) : 0;
    if (e) { real(fd); errno = e; return -1; }
    return real(fd);
}

int rename(const char *a, const char *b) {
    REAL(rename);
    int e = should_fail_at(F_RENAME, under_prefix(a) || under_prefix(b), b, -1);
    if (e) { errno = e; return -1; }
    return real(a, b);
}

int renameat2(int da, const char *a, int db, const char *b, unsigned flags) {
    REAL(renameat2);
    int e = should_fail_at(F_RENAMEAT2, under_prefix(a) || under_prefix(b), b, -1);
    if (e) { errno = e; return -1; }
    return real(da, a, db, b, flags);
}

int link(const char *a, const char *b) {
    REAL(link);
    int e = should_fail_at(F_LINK, under_prefix(a) || under_prefix(b), b, -1);
    if (e) { errno = e; return -1; }
    return real(a, b);
}
