/* metalearn/core.h: status codes, the replaceable allocator, arenas, RNG.
 *
 * Everything else in the library stands on these. Nothing here knows about
 * tensors. Ownership: `_new` lives in an arena the caller passes (no free),
 * `_init`/`_free` own resources in caller storage, `_create`/`_destroy` are
 * heap handles. */
#ifndef METALEARN_CORE_H
#define METALEARN_CORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status codes (one X-macro list: enum + names) ---------------------- */
#define ML_STATUS_LIST(X)                                   \
    X(ML_OK, 0, "ok")                                       \
    X(ML_ERR_NOMEM, -1, "out of memory")                    \
    X(ML_ERR_IO, -2, "i/o error")                           \
    X(ML_ERR_FORMAT, -3, "bad file format")                 \
    X(ML_ERR_SHAPE, -4, "shape mismatch")                   \
    X(ML_ERR_ARG, -5, "invalid argument")                   \
    X(ML_ERR_NUMERIC, -6, "non-finite value")               \
    X(ML_ERR_STATE, -7, "invalid state")                    \
    X(ML_ERR_INTERRUPTED, -8, "interrupted")

typedef enum {
#define ML__STATUS_ENUM(name, value, text) name = value,
    ML_STATUS_LIST(ML__STATUS_ENUM)
#undef ML__STATUS_ENUM
} ml_status;

const char *ml_status_name(ml_status s); /* "ML_ERR_IO" */
const char *ml_status_text(ml_status s); /* "i/o error" */

/* ---- progress -------------------------------------------------------------
 * Long library work (evaluations, adaptation for predict) reports how far it
 * is through a callback the caller installs; the library never draws or
 * prints. fn runs on the calling thread, between units of work, with a short
 * name of the work ("evaluation"), the units done so far and the total. */
typedef struct ml_progress {
    void (*fn)(void *user, const char *what, int64_t done, int64_t total);
    void *user;
} ml_progress;

/* Calls p->fn when p and p->fn are set. */
void ml_progress_report(const ml_progress *p, const char *what, int64_t done, int64_t total);

/* The library's version, "MAJOR.MINOR.PATCH": CMake's project version (set
 * in one place, CMakeLists.txt). */
const char *ml_version(void);

/* ---- allocator ----------------------------------------------------------
 * Every heap call of the library goes through here, so tests can count
 * calls and inject failures (the N-th call returns NULL). */
typedef struct ml_allocator {
    void *(*alloc)(size_t bytes, void *user);
    void (*free)(void *ptr, void *user);
    void *user;
} ml_allocator;

void ml_set_allocator(const ml_allocator *a); /* NULL restores malloc/free */
void *ml_malloc(size_t bytes);
void *ml_calloc(size_t count, size_t size);
void ml_free(void *ptr);
/* Number of ml_malloc/ml_calloc calls since start (for allocation tests). */
uint64_t ml_alloc_calls(void);
/* Test hook: make the n-th allocation from now fail (0 disables). */
void ml_alloc_fail_after(uint64_t n);

/* ---- arena --------------------------------------------------------------
 * A bump allocator made of chained blocks, 64-byte aligned. Reset is O(1)
 * and keeps the memory: when a pass needed more than one block, reset
 * merges them into one block of the total size, so a repeated identical
 * pass makes no heap calls after the first. */
typedef struct ml_arena ml_arena;
typedef struct ml_arena_mark {
    void *block;
    size_t used;
} ml_arena_mark;

ml_arena *ml_arena_create(size_t first_block_bytes);
void ml_arena_destroy(ml_arena *a);
void *ml_arena_alloc(ml_arena *a, size_t bytes); /* NULL when out of memory */
void ml_arena_reset(ml_arena *a);
ml_arena_mark ml_arena_get_mark(const ml_arena *a);
void ml_arena_rewind(ml_arena *a, ml_arena_mark m);
size_t ml_arena_used(const ml_arena *a);     /* bytes handed out since reset */
size_t ml_arena_capacity(const ml_arena *a); /* bytes held */

/* ---- random numbers ------------------------------------------------------
 * xoshiro256** seeded with splitmix64: explicit state, never rand(). */
typedef struct ml_rng {
    uint64_t s[4];
} ml_rng;

void ml_rng_seed(ml_rng *r, uint64_t seed);
uint64_t ml_rng_u64(ml_rng *r);
uint32_t ml_rng_below(ml_rng *r, uint32_t n); /* uniform in [0, n) */
double ml_rng_uniform(ml_rng *r);             /* uniform in [0, 1) */
double ml_rng_normal(ml_rng *r);              /* standard normal */
void ml_rng_shuffle_i32(ml_rng *r, int32_t *v, int64_t n);

/* ---- misc ----------------------------------------------------------------- */
double ml_now(void); /* monotonic seconds */
/* SIGINT and SIGTERM call handler on an alternate stack (oneDNN's JIT code
 * may run with its stack pointer in the heap: src/core/signals.c). Call it
 * from the thread that takes the signals. */
void ml_catch_stop_signals(void (*handler)(int));

#ifdef __cplusplus
}
#endif
#endif
