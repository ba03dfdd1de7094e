/* core.c: status names, the replaceable allocator, RNG, clock, error messages. */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, MAP_NORESERVE */
#include "metalearn/core.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "core/alloc_internal.h"
#include "core/errfmt.h"
#include "core/rng_inline.h"

#ifndef ML_VERSION
#error "ML_VERSION comes from CMake's project(VERSION): build with CMake"
#endif

const char *ml_version(void) { return ML_VERSION; }

void ml_progress_report(const ml_progress *p, const char *what, int64_t done, int64_t total) {
    if (p && p->fn) p->fn(p->user, what, done, total);
}

const char *ml_status_name(ml_status s) {
    switch (s) {
#define ML__STATUS_NAME(name, value, text) \
    case name:                             \
        return #name;
        ML_STATUS_LIST(ML__STATUS_NAME)
#undef ML__STATUS_NAME
    }
    return "ML_ERR_UNKNOWN";
}

const char *ml_status_text(ml_status s) {
    switch (s) {
#define ML__STATUS_TEXT(name, value, text) \
    case name:                             \
        return text;
        ML_STATUS_LIST(ML__STATUS_TEXT)
#undef ML__STATUS_TEXT
    }
    return "unknown error";
}

/* ---- allocator ----------------------------------------------------------- */

static void *default_alloc(size_t bytes, void *user) {
    (void)user;
    return malloc(bytes);
}
static void default_free(void *ptr, void *user) {
    (void)user;
    free(ptr);
}

static ml_allocator g_alloc = {default_alloc, default_free, NULL};
/* Counters are updated from worker threads too: use atomics. */
static _Atomic uint64_t g_alloc_calls;
static _Atomic uint64_t g_fail_at; /* absolute call number that fails, 0 = never */

void ml_set_allocator(const ml_allocator *a) {
    if (a)
        g_alloc = *a;
    else
        g_alloc = (ml_allocator){default_alloc, default_free, NULL};
}

void *ml_malloc(size_t bytes) {
    uint64_t n = ++g_alloc_calls;
    if (g_fail_at && n == g_fail_at) return NULL;
    return g_alloc.alloc(bytes ? bytes : 1, g_alloc.user);
}

void *ml_calloc(size_t count, size_t size) {
    if (size && count > SIZE_MAX / size) return NULL;
    void *p = ml_malloc(count * size);
    if (p) memset(p, 0, count * size);
    return p;
}

void ml_free(void *ptr) {
    if (ptr) g_alloc.free(ptr, g_alloc.user);
}

uint64_t ml_alloc_calls(void) { return g_alloc_calls; }

int ml__default_allocator(void) { return g_alloc.alloc == default_alloc && g_alloc.free == default_free; }

void *ml__map(size_t bytes) {
    uint64_t n = ++g_alloc_calls;
    if (g_fail_at && n == g_fail_at) return NULL;
    void *p = mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void ml__unmap(void *p, size_t bytes) {
    if (p) munmap(p, bytes ? bytes : 1);
}

void ml_alloc_fail_after(uint64_t n) { g_fail_at = n ? g_alloc_calls + n : 0; }

/* ---- RNG: xoshiro256** (Blackman & Vigna), seeded by splitmix64 --------- */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void ml_rng_seed(ml_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

uint64_t ml_rng_u64(ml_rng *r) { return ml__rng_next(r); }

uint32_t ml_rng_below(ml_rng *r, uint32_t n) {
    /* Lemire's multiply-shift with rejection: unbiased. */
    uint64_t m = (uint64_t)(uint32_t)(ml_rng_u64(r) >> 32) * n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        uint32_t threshold = (uint32_t)(-n) % n;
        while (low < threshold) {
            m = (uint64_t)(uint32_t)(ml_rng_u64(r) >> 32) * n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

double ml_rng_uniform(ml_rng *r) { return ml__rng_uniform_next(r); }

double ml_rng_normal(ml_rng *r) {
    /* Box-Muller; one of the pair is dropped so the stream stays stateless
     * beyond s[] (resume only needs the four words). */
    double u1 = ml_rng_uniform(r), u2 = ml_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void ml_rng_shuffle_i32(ml_rng *r, int32_t *v, int64_t n) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = ml_rng_below(r, (uint32_t)(i + 1));
        int32_t t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

double ml_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- error messages ---------------------------------------------------------- */

void ml__errf(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    /* One line, whatever the input put into it (a config key or a file name
     * may hold a line break): control characters become '?'. */
    for (unsigned char *c = (unsigned char *)err; *c; c++)
        if (*c < 0x20 || *c == 0x7f) *c = '?';
}
