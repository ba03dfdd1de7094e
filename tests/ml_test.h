/* ml_test.h: a tiny test harness with typed asserts that print both sides.
 *
 * Usage: write `static void test_x(void) { ... }`, list them in main with
 * ML_RUN(test_x), end with `return ml_test_summary();`. A failed check
 * records the failure and continues the test; the summary prints
 * "N passed, N failed" and returns non-zero on any failure.
 *
 * A test whose data is absent (ML_DATA_DIR, a Debian data package) calls
 * ml_test_skip("why") and returns: the summary then exits ML_TEST_SKIP (77,
 * CTest's SKIP_RETURN_CODE) unless something failed, so CTest reports the
 * executable as skipped, never as passed with parts left out. */
#ifndef ML_TEST_H
#define ML_TEST_H

#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metalearn/core.h"
#include "metalearn/meta.h"
#include "metalearn/run.h"

static int ml_test_passed, ml_test_failed, ml_test_cur_failed, ml_test_skipped;

#define ML_TEST_SKIP 77
static const char *ml_test_name;

#define ML_FAIL_AT(...)                                                   \
    do {                                                                  \
        fprintf(stderr, "  FAIL %s (%s:%d): ", ml_test_name, __FILE__, __LINE__); \
        fprintf(stderr, __VA_ARGS__);                                     \
        fprintf(stderr, "\n");                                            \
        ml_test_cur_failed = 1;                                           \
    } while (0)

#define CHECK(cond)                                       \
    do {                                                  \
        if (!(cond)) ML_FAIL_AT("CHECK(%s)", #cond);      \
    } while (0)

#define CHECK_INT_EQ(a, b)                                                        \
    do {                                                                          \
        long long va_ = (long long)(a), vb_ = (long long)(b);                     \
        if (va_ != vb_) ML_FAIL_AT("%s == %s: %lld vs %lld", #a, #b, va_, vb_);   \
    } while (0)

/* |a - b| <= atol + rtol * |b| */
#define CHECK_NEAR(a, b, atol, rtol)                                                   \
    do {                                                                               \
        double va_ = (double)(a), vb_ = (double)(b);                                   \
        if (!(fabs(va_ - vb_) <= (atol) + (rtol)*fabs(vb_)))                           \
            ML_FAIL_AT("%s ~= %s: %.9g vs %.9g (diff %.3g)", #a, #b, va_, vb_, va_ - vb_); \
    } while (0)

#define CHECK_STR_CONTAINS(hay, needle)                                              \
    do {                                                                             \
        const char *h_ = (hay), *n_ = (needle);                                      \
        if (!h_ || !strstr(h_, n_)) ML_FAIL_AT("\"%s\" should contain \"%s\"", h_ ? h_ : "(null)", n_); \
    } while (0)

#define ML_RUN(fn)                                              \
    do {                                                        \
        ml_test_name = #fn;                                     \
        ml_test_cur_failed = 0;                                 \
        fn();                                                   \
        if (ml_test_cur_failed) {                               \
            ml_test_failed++;                                   \
            fprintf(stderr, "[FAIL] %s\n", #fn);                \
        } else {                                                \
            ml_test_passed++;                                   \
            printf("[ ok ] %s\n", #fn);                         \
        }                                                       \
    } while (0)

/* Records that a part of the executable did not run, and why. */
static inline void ml_test_skip(const char *why) {
    printf("SKIP: %s\n", why);
    ml_test_skipped++;
}

static inline int ml_test_summary(void) {
    printf("%d passed, %d failed", ml_test_passed, ml_test_failed);
    if (ml_test_skipped) printf(", %d skipped: reported to CTest as skipped", ml_test_skipped);
    printf("\n");
    return ml_test_failed ? 1 : ml_test_skipped ? ML_TEST_SKIP : 0;
}

/* CPU seconds of this process (all its threads). A speed bound in a test
 * reads this, not the wall clock: a loaded machine (CI's 2 shared cores, a
 * parallel ctest) stretches wall time, not the work done. */
static inline double ml_test_cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Where tests find ../shared/data and may write files. */
static inline const char *ml_test_data_dir(void) {
    const char *d = getenv("ML_DATA_DIR");
    return d && *d ? d : "../shared/data";
}
static inline const char *ml_test_tmp_dir(void) {
    const char *d = getenv("ML_TEST_TMP");
    if (!d || !*d) return "/tmp";
    mkdir(d, 0777); /* CTest points ML_TEST_TMP at a folder it does not create; EEXIST is fine */
    return d;
}

/* A counting allocator: install it with ml_set_allocator(&a) where
 * a = ml_test_counting_allocator(); ml_test_live is then the number of
 * blocks handed out and not yet freed (0 after a leak-free failure path),
 * ml_test_live_bytes their bytes and ml_test_peak_bytes the most at once
 * (malloc_usable_size, not a size header: a block made before the hook was
 * installed, or freed after it was removed, is still freed correctly). */
static long ml_test_live;
static long long ml_test_live_bytes, ml_test_peak_bytes;
static inline void *ml_test_count_alloc(size_t n, void *u) {
    (void)u;
    void *p = malloc(n);
    if (p) {
        ml_test_live++;
        ml_test_live_bytes += (long long)malloc_usable_size(p);
        if (ml_test_live_bytes > ml_test_peak_bytes) ml_test_peak_bytes = ml_test_live_bytes;
    }
    return p;
}
static inline void ml_test_count_free(void *p, void *u) {
    (void)u;
    if (p) ml_test_live--, ml_test_live_bytes -= (long long)malloc_usable_size(p);
    free(p);
}
static inline ml_allocator ml_test_counting_allocator(void) {
    return (ml_allocator){ml_test_count_alloc, ml_test_count_free, NULL};
}

/* ---- files ------------------------------------------------------------------------------ */

/* The whole file in a malloc'd buffer, NUL-terminated (checkpoints hold
 * binary floats: *n is the length); NULL if it cannot be read. */
static inline char *ml_test_slurp(const char *path, size_t *n) {
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t cap = 0;
    for (;;) {
        if (*n + 4096 + 1 > cap) {
            char *b = realloc(buf, cap = 2 * cap + 8192);
            if (!b) break;
            buf = b;
        }
        size_t got = fread(buf + *n, 1, 4096, f);
        *n += got;
        if (got < 4096) break;
    }
    fclose(f);
    if (buf) buf[*n] = 0;
    return buf;
}

/* Whether two files hold the same bytes; says which differ when not. */
static inline int ml_test_same_file(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    char *x = ml_test_slurp(a, &na), *y = ml_test_slurp(b, &nb);
    int same = x && y && na == nb && !memcmp(x, y, na);
    if (!same) fprintf(stderr, "  %s (%zu bytes) and %s (%zu bytes) differ\n", a, na, b, nb);
    free(x);
    free(y);
    return same;
}

/* ---- runs and meta-learners ------------------------------------------------------------- */

/* The small run the run-level tests start from: MAML on sinusoid tasks, an
 * mlp:16,16, 5 shots and 5 queries, one thread, no final evaluation, quiet,
 * into out. Not resolved: the caller changes what it tests, then calls
 * ml_run_config_resolve. */
static inline void ml_test_sine_run_config(ml_run_config *c, const char *out) {
    ml_run_config_default(c);
    c->algo = "maml";
    c->task = "sinusoid";
    c->model = "mlp:16,16";
    c->shots = 5;
    c->query = 5;
    c->eval_tasks = 0;
    c->threads = 1;
    c->quiet = 1;
    c->out = out;
}

/* The first call keeps meta's parameters in *ref; later calls check that
 * theirs are the same bits (free *ref after the last). */
static inline void ml_test_same_as_first(float **ref, const ml_meta *meta) {
    size_t bytes = (size_t)meta->n_meta * sizeof(float);
    if (!*ref) {
        *ref = malloc(bytes);
        CHECK(*ref != NULL);
        if (*ref) memcpy(*ref, meta->meta, bytes);
    } else {
        CHECK(memcmp(*ref, meta->meta, bytes) == 0);
    }
}

/* Meta-trains a model that make(m) builds for iters outer steps on tasks
 * with 1, 2 and 3 worker threads (c's threads ignored): the meta-parameters
 * must be bit-identical. */
static inline void ml_test_meta_threads_invariant(void (*make)(ml_model *m), const ml_meta_config *c,
                                                  const ml_task_data *tasks, int n_tasks, int iters) {
    float *ref = NULL;
    for (int threads = 1; threads <= 3; threads++) {
        ml_model m;
        make(&m);
        ml_meta_config ct = *c;
        ct.threads = threads;
        ml_meta meta;
        char err[256];
        double loss;
        CHECK(ml_meta_init(&meta, &m, &ct, n_tasks, err, sizeof err) == ML_OK);
        for (int it = 0; it < iters; it++) CHECK(ml_meta_step(&meta, tasks, n_tasks, &loss, err, sizeof err) == ML_OK);
        ml_test_same_as_first(&ref, &meta);
        ml_meta_free(&meta);
        ml_model_free(&m);
    }
    free(ref);
}

#endif
