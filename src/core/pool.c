/* pool.c: worker threads for the items of a batch (see pool.h). The caller's
 * thread works too, as worker 0, so n_threads = 1 starts no thread at all. */
#include "metalearn/pool.h"

#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>

struct ml_pool {
    int n_threads;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t start, done;
    uint64_t generation; /* bumped per batch; workers wait for a new one */
    int busy;            /* helper threads still working on this batch */
    int quit;
    ml_pool_fn fn;
    void *user;
    int n_items;
    atomic_int next;
};

typedef struct worker_arg {
    ml_pool *pool;
    int index;
} worker_arg;

static void run_items(ml_pool *p, int worker) {
    for (;;) {
        int i = atomic_fetch_add(&p->next, 1);
        if (i >= p->n_items) break;
        p->fn(i, worker, p->user);
    }
}

static void *worker_main(void *arg) {
    worker_arg wa = *(worker_arg *)arg;
    ml_free(arg);
    ml_pool *p = wa.pool;
    omp_set_num_threads(1);
    uint64_t seen = 0;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->quit && p->generation == seen) pthread_cond_wait(&p->start, &p->mu);
        if (p->quit) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        seen = p->generation;
        pthread_mutex_unlock(&p->mu);
        run_items(p, wa.index);
        pthread_mutex_lock(&p->mu);
        if (--p->busy == 0) pthread_cond_signal(&p->done);
        pthread_mutex_unlock(&p->mu);
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
        if (!p->threads) {
            ml_pool_destroy(p);
            return NULL;
        }
        for (int i = 1; i < n_threads; i++) {
            worker_arg *wa = ml_malloc(sizeof *wa);
            if (wa) *wa = (worker_arg){p, i};
            if (!wa || pthread_create(&p->threads[i - 1], NULL, worker_main, wa)) {
                ml_free(wa);
                p->n_threads = i; /* only the started ones are joined */
                ml_pool_destroy(p);
                return NULL;
            }
        }
    }
    return p;
}

void ml_pool_destroy(ml_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n_threads; i++) pthread_join(p->threads[i - 1], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->start);
    pthread_cond_destroy(&p->done);
    ml_free(p->threads);
    ml_free(p);
}

int ml_pool_threads(const ml_pool *p) { return p->n_threads; }

void ml_pool_run(ml_pool *p, int n_items, ml_pool_fn fn, void *user) {
    if (n_items <= 0) return;
    if (p->n_threads == 1) {
        for (int i = 0; i < n_items; i++) fn(i, 0, user);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->user = user;
    p->n_items = n_items;
    atomic_store(&p->next, 0);
    p->busy = p->n_threads - 1;
    p->generation++;
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    run_items(p, 0);
    omp_set_num_threads(saved);
    pthread_mutex_lock(&p->mu);
    while (p->busy > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
