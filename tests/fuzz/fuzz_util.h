/* fuzz_util.h: what the libFuzzer harnesses share (tests/fuzz/fuzz_*.c).
 *
 * Most readers take a path, so each harness writes its input into a scratch
 * folder of its own and reads it back from there: the reader runs end to end
 * exactly as the CLI calls it. The folder (mkdtemp, removed at exit) is made
 * in $ML_FUZZ_TMP, else /dev/shm (memory: a disk-backed /tmp makes the
 * harnesses ten times slower), else $TMPDIR or /tmp.
 * Harnesses are deterministic (fixed seeds, no clocks) and free everything
 * they allocate before returning, so libFuzzer's leak check stays on. */
#ifndef ML_FUZZ_UTIL_H
#define ML_FUZZ_UTIL_H

#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char fuzz_dir[512];

static inline int fuzz_rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

/* Removes everything under path (and path itself). */
static inline void fuzz_rm_rf(const char *path) { nftw(path, fuzz_rm_one, 16, FTW_DEPTH | FTW_PHYS); }

static inline void fuzz_cleanup(void) {
    if (fuzz_dir[0]) fuzz_rm_rf(fuzz_dir);
}

/* The scratch folder, created on first use. */
static inline const char *fuzz_scratch(void) {
    if (!fuzz_dir[0]) {
        const char *t = getenv("ML_FUZZ_TMP");
        struct stat st;
        if (!t || !*t) t = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0
                               ? "/dev/shm"
                               : getenv("TMPDIR");
        snprintf(fuzz_dir, sizeof fuzz_dir, "%s/ml_fuzz_XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(fuzz_dir)) {
            perror("mkdtemp");
            abort();
        }
        atexit(fuzz_cleanup);
    }
    return fuzz_dir;
}

/* scratch/name, in one of a few rotating static buffers. */
static inline const char *fuzz_path(const char *name) {
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", fuzz_scratch(), name);
    return buf[k];
}

/* Writes data to scratch/name (replacing it); returns its path. */
static inline const char *fuzz_write(const char *name, const uint8_t *data, size_t size) {
    const char *p = fuzz_path(name);
    FILE *f = fopen(p, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f)) {
        perror(p);
        abort();
    }
    return p;
}

#endif
