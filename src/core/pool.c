/* pool.c: worker threads for the items of a batch (see pool.h). The caller's
 * thread works too, as worker 0, so n_threads = 1 starts no thread at all.
 *
 * Batches can be tiny (25 sinusoid tasks of ~20 us each): waking a sleeping
 * thread through a condition variable takes about as long as the whole batch.
 * So a worker that finished spins for a short while (SPIN_SECONDS) watching
 * for the next batch before it sleeps, and the caller likewise spins briefly
 * for the workers to finish. Past that, both block: a busy machine loses at
 * most that much time per batch to spinning.
 *
 * A batch with fewer items than threads (one ProtoNet episode per step, one
 * long evaluation episode) is run the other way round: item i on worker i,
 * with the threads left over given to the items as OpenMP budget, so the
 * threads work inside the item (the kernels split their work by a fixed
 * rule, bit-identical for any budget: kernels_par.h). One item runs on the
 * caller alone without waking anyone. The fixed mapping also keeps the idle
 * workers' per-worker memory (their arenas) from growing to a task's size. */
#include "metalearn/pool.h"

#include <omp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

#define SPIN_SECONDS 50e-6

struct ml_pool {
    int n_threads;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t start, done;
    _Atomic uint64_t generation; /* bumped per batch, after fn/user/n_items are set */
    atomic_int quit;
    /* Who blocks on a condition variable: the mutex and the signal are taken
     * only then, so spinning threads hand a batch over with atomics alone
     * (each side stores its flag, then reads the other's: sequentially
     * consistent, so one of the two always sees the other). */
    atomic_int sleepers;       /* workers in cond_wait(start) */
    atomic_int caller_blocked; /* the caller in cond_wait(done) */
    ml_pool_fn fn;
    void *user;
    int n_items;
    int from_ends; /* ml_pool_run_ends: the caller from the front, helpers from the back */
    int split;     /* ml_pool_run_split: fixed blocks, no claims */
    /* The counters below are written per item and busy once per batch, the
     * fields above only between batches: on cache lines of their own (64
     * bytes apart whatever the allocation's alignment), a thread spinning on
     * generation or busy reads a line that the other's items do not touch. */
    char pad0[64];
    atomic_int busy; /* helper threads still working on this batch */
    char pad1[64];
    atomic_int next;  /* items handed out (from either end) */
    atomic_int front; /* from_ends: items taken from the front, and */
    atomic_int back;  /* from the back */
    char pad2[64];
    struct claim *claims; /* ml_pool_run_split: helper w's block in claims[w - 1] (64-byte aligned inside claims_mem) */
    void *claims_mem;
};

/* A helper's block in ml_pool_run_split: items [front, end) still to run,
 * packed in one word (front low, end high) so that the helper taking the
 * front and the caller taking the back agree on every item with one
 * compare-and-swap. Written by its helper per item, read by the caller only
 * when its own block is done: on a cache line of its own, the word stays in
 * the helper's cache while both threads work. */
struct claim {
    _Atomic uint64_t word;
    char pad[64 - sizeof(uint64_t)];
};

static uint64_t claim_word(int front, int end) { return (uint64_t)(uint32_t)end << 32 | (uint32_t)front; }
static int claim_front(uint64_t w) { return (int)(uint32_t)w; }
static int claim_end(uint64_t w) { return (int)(w >> 32); }

/* The next item of a block from the front (helper) or the back (caller); -1 when none is left. */
static int take_claim(struct claim *c, int from_back) {
    uint64_t w = atomic_load(&c->word);
    for (;;) {
        int front = claim_front(w), end = claim_end(w);
        if (front >= end) return -1;
        uint64_t taken = from_back ? claim_word(front, end - 1) : claim_word(front + 1, end);
        if (atomic_compare_exchange_weak(&c->word, &w, taken)) return from_back ? end - 1 : front;
    }
}

typedef struct worker_arg {
    ml_pool *pool;
    int index;
} worker_arg;

/* OpenMP budget of item `item` when n_items < n_threads: an even share, the
 * remainder to the first items. */
static int item_budget(int n_threads, int n_items, int item) {
    return n_threads / n_items + (item < n_threads % n_items);
}

/* Runs item `item` with an OpenMP budget of `budget` threads, then restores
 * the caller's budget. */
static void run_one(ml_pool_fn fn, void *user, int item, int worker, int budget) {
    int saved = omp_get_max_threads();
    omp_set_num_threads(budget);
    fn(item, worker, user);
    omp_set_num_threads(saved);
}

void ml_pool_split_range(int n_threads, int n_items, int worker, int *lo, int *hi) {
    if (n_threads < 1) n_threads = 1;
    int mine = n_items / n_threads, helpers_items = n_items - mine; /* the caller: the last floor(n/T) */
    if (worker == 0 || n_threads == 1) {
        *lo = n_threads == 1 ? 0 : helpers_items;
        *hi = n_items;
        return;
    }
    int h = n_threads - 1, k = worker - 1, per = helpers_items / h, extra = helpers_items % h;
    *lo = k * per + (k < extra ? k : extra);
    *hi = *lo + per + (k < extra);
}

static void run_items(ml_pool *p, int worker) {
    if (p->n_items < p->n_threads) { /* item i on worker i, threads inside the items */
        if (worker < p->n_items) run_one(p->fn, p->user, worker, worker, item_budget(p->n_threads, p->n_items, worker));
        return;
    }
    if (p->split) { /* this worker's block in order; then the caller takes what the helpers have not started */
        if (worker > 0) {
            for (int i; (i = take_claim(&p->claims[worker - 1], 0)) >= 0;) p->fn(i, worker, p->user);
            return;
        }
        int lo, hi;
        ml_pool_split_range(p->n_threads, p->n_items, 0, &lo, &hi);
        for (int i = lo; i < hi; i++) p->fn(i, 0, p->user);
        for (int h = p->n_threads - 1; h >= 1; h--)
            for (int i; (i = take_claim(&p->claims[h - 1], 1)) >= 0;) p->fn(i, 0, p->user);
        return;
    }
    for (;;) {
        int i = atomic_fetch_add(&p->next, 1);
        if (i >= p->n_items) break;
        /* from both ends: a claim (next) first, so front + back never pass n_items */
        if (p->from_ends) i = worker == 0 ? atomic_fetch_add(&p->front, 1) : p->n_items - 1 - atomic_fetch_add(&p->back, 1);
        p->fn(i, worker, p->user);
    }
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __asm__ volatile("pause");
#endif
}

/* Spins up to SPIN_SECONDS for cond(p) to hold; returns whether it did. */
static int spin_until(ml_pool *p, int (*cond)(ml_pool *p, uint64_t v), uint64_t v) {
    double t0 = ml_now();
    for (int i = 0;; i++) {
        if (cond(p, v)) return 1;
        cpu_relax();
        if ((i & 63) == 63 && ml_now() - t0 > SPIN_SECONDS) return cond(p, v);
    }
}

static int new_batch(ml_pool *p, uint64_t seen) { return atomic_load(&p->generation) != seen || atomic_load(&p->quit); }
static int all_done(ml_pool *p, uint64_t unused) {
    (void)unused;
    return atomic_load(&p->busy) == 0;
}

static void *worker_main(void *arg) {
    worker_arg wa = *(worker_arg *)arg;
    ml_free(arg);
    ml_pool *p = wa.pool;
    omp_set_num_threads(1);
    uint64_t seen = 0;
    for (;;) {
        if (!spin_until(p, new_batch, seen)) {
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while (!new_batch(p, seen)) pthread_cond_wait(&p->start, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->quit)) return NULL;
        seen = atomic_load(&p->generation);
        run_items(p, wa.index);
        if (atomic_fetch_sub(&p->busy, 1) == 1 && atomic_load(&p->caller_blocked)) { /* the last helper wakes a blocked caller */
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

ml_pool *ml_pool_create(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    ml_pool *p = ml_calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->start, NULL);
    pthread_cond_init(&p->done, NULL);
    if (n_threads > 1) {
        p->threads = ml_calloc((size_t)n_threads - 1, sizeof(pthread_t));
        p->claims_mem = ml_calloc((size_t)n_threads, sizeof(struct claim)); /* one more: room to align */
        p->claims = p->claims_mem ? (struct claim *)(((uintptr_t)p->claims_mem + 63) & ~(uintptr_t)63) : NULL;
        if (!p->threads || !p->claims) {
            ml_pool_destroy(p);
            return NULL;
        }
        /* Workers start with every signal blocked, so asynchronous signals
         * (Ctrl-C) reach the caller's thread, never a worker inside a kernel. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        int started = 1;
        for (; started < n_threads; started++) {
            worker_arg *wa = ml_malloc(sizeof *wa);
            if (wa) *wa = (worker_arg){p, started};
            if (!wa || pthread_create(&p->threads[started - 1], NULL, worker_main, wa)) {
                ml_free(wa);
                break;
            }
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (started < n_threads) {
            p->n_threads = started; /* only the started ones are joined */
            ml_pool_destroy(p);
            return NULL;
        }
    }
    return p;
}

void ml_pool_destroy(ml_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->quit, 1);
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n_threads; i++) pthread_join(p->threads[i - 1], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->start);
    pthread_cond_destroy(&p->done);
    ml_free(p->threads);
    ml_free(p->claims_mem);
    ml_free(p);
}

int ml_pool_threads(const ml_pool *p) { return p->n_threads; }

static void run_batch(ml_pool *p, int n_items, ml_pool_fn fn, void *user, int from_ends, int split) {
    if (n_items <= 0) return;
    if (p->n_threads == 1) {
        for (int i = 0; i < n_items; i++) fn(i, 0, user);
        return;
    }
    if (n_items == 1) { /* the caller alone, with every thread as OpenMP budget */
        run_one(fn, user, 0, 0, p->n_threads);
        return;
    }
    /* No worker reads these fields now: every one has finished the last
     * batch (busy was 0) and waits for the generation to change. */
    p->fn = fn;
    p->user = user;
    p->n_items = n_items;
    p->from_ends = from_ends;
    p->split = split;
    for (int w = 1; split && w < p->n_threads; w++) {
        int lo, hi;
        ml_pool_split_range(p->n_threads, n_items, w, &lo, &hi);
        atomic_store(&p->claims[w - 1].word, claim_word(lo, hi));
    }
    atomic_store(&p->next, 0);
    atomic_store(&p->front, 0);
    atomic_store(&p->back, 0);
    atomic_store(&p->busy, p->n_threads - 1);
    atomic_fetch_add(&p->generation, 1); /* publishes the fields above to spinning workers */
    if (atomic_load(&p->sleepers)) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->start);
        pthread_mutex_unlock(&p->mu);
    }
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    run_items(p, 0);
    omp_set_num_threads(saved);
    if (!spin_until(p, all_done, 0)) {
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->caller_blocked, 1);
        while (atomic_load(&p->busy) > 0) pthread_cond_wait(&p->done, &p->mu);
        atomic_store(&p->caller_blocked, 0);
        pthread_mutex_unlock(&p->mu);
    }
}

void ml_pool_run(ml_pool *p, int n_items, ml_pool_fn fn, void *user) { run_batch(p, n_items, fn, user, 0, 0); }

void ml_pool_run_ends(ml_pool *p, int n_items, ml_pool_fn fn, void *user) { run_batch(p, n_items, fn, user, 1, 0); }

void ml_pool_run_split(ml_pool *p, int n_items, ml_pool_fn fn, void *user) { run_batch(p, n_items, fn, user, 0, 1); }
