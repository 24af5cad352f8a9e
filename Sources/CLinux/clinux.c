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
