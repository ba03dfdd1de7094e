/* faultfs.c: an LD_PRELOAD shim that makes writes to chosen files fail, so
 * the CLI tests can check what a full disk does to a run (tests/cli/
 * fault_injection.sh). Not part of the library or the command.
 *
 * Environment (nothing happens unless FAULT_PATH is set):
 *   FAULT_PATH  a substring of the file's path (of the open descriptor, as
 *               /proc/self/fd/N names it), e.g. "checkpoint.safetensors"
 *   FAULT_NTH   which matching write()/writev() call fails first (1-based,
 *               default 1); calls are counted per process
 *   FAULT_MODE  enospc (default): that call and every later matching one
 *               fail with ENOSPC, as on a full disk;
 *               short: that call writes about half and returns the count,
 *               later matching calls fail with ENOSPC (a disk filling up
 *               in the middle of a write);
 *               eio: only that call fails, with EIO.
 * With an ASan build, set ASAN_OPTIONS=verify_asan_link_order=0: the shim
 * then comes before the ASan runtime and forwards to its interceptors. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);

static long g_calls; /* matching calls so far */

/* 0: pass through; 1: fail with errno set; 2: write short. */
static int decide(int fd) {
    const char *pattern = getenv("FAULT_PATH");
    if (!pattern || !*pattern) return 0;
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return 0;
    path[n] = 0;
    if (!strstr(path, pattern)) return 0;
    const char *nth_s = getenv("FAULT_NTH"), *mode = getenv("FAULT_MODE");
    long nth = nth_s ? atol(nth_s) : 1, k = __atomic_add_fetch(&g_calls, 1, __ATOMIC_SEQ_CST);
    if (nth < 1) nth = 1;
    int eio = mode && !strcmp(mode, "eio"), shortw = mode && !strcmp(mode, "short");
    if (k < nth || (eio && k > nth)) return 0;
    if (k == nth && shortw) return 2;
    errno = eio ? EIO : ENOSPC;
    return 1;
}

ssize_t write(int fd, const void *buf, size_t len) {
    static write_fn real;
    if (!real) real = (write_fn)dlsym(RTLD_NEXT, "write");
    int d = decide(fd);
    if (d == 1) return -1;
    if (d == 2 && len > 1) len /= 2;
    return real(fd, buf, len);
}

ssize_t writev(int fd, const struct iovec *iov, int n) {
    static writev_fn real;
    if (!real) real = (writev_fn)dlsym(RTLD_NEXT, "writev");
    int d = decide(fd);
    if (d == 1) return -1;
    if (d == 2) {
        /* the first half of the bytes, as one short write would leave them */
        size_t total = 0;
        for (int i = 0; i < n; i++) total += iov[i].iov_len;
        size_t want = total > 1 ? total / 2 : total;
        struct iovec cut[16];
        int m = 0;
        for (int i = 0; i < n && i < 16 && want; i++) {
            cut[m] = iov[i];
            if (cut[m].iov_len > want) cut[m].iov_len = want;
            want -= cut[m].iov_len;
            m++;
        }
        return real(fd, cut, m);
    }
    return real(fd, iov, n);
}
