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

#include <math.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

#include "metalearn/core.h"

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
 * blocks handed out and not yet freed (0 after a leak-free failure path). */
static long ml_test_live;
static inline void *ml_test_count_alloc(size_t n, void *u) {
    (void)u;
    void *p = malloc(n);
    if (p) ml_test_live++;
    return p;
}
static inline void ml_test_count_free(void *p, void *u) {
    (void)u;
    if (p) ml_test_live--;
    free(p);
}
static inline ml_allocator ml_test_counting_allocator(void) {
    return (ml_allocator){ml_test_count_alloc, ml_test_count_free, NULL};
}

#endif
