/* metalearn/pool.h: a fixed set of worker threads that run the items of one
 * batch (e.g. the tasks of a meta-batch) and wait for all of them.
 *
 * Items are handed out by an atomic counter, so which worker runs which item
 * varies; callers keep results per item and reduce them in item order, which
 * makes the outcome independent of the thread count. Each worker runs its
 * kernels single-threaded (OpenMP budget 1): parallelism is across items.
 * With fewer items than threads, item i runs on worker i and the items share
 * the threads as OpenMP budget (parallelism inside the items; the kernels'
 * results do not depend on the budget). */
#ifndef METALEARN_POOL_H
#define METALEARN_POOL_H

#include "metalearn/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ml_pool ml_pool;
/* fn(item, worker, user): worker in [0, n_threads) selects per-worker state. */
typedef void (*ml_pool_fn)(int item, int worker, void *user);

ml_pool *ml_pool_create(int n_threads); /* n_threads >= 1; 1 runs on the caller */
void ml_pool_destroy(ml_pool *p);
int ml_pool_threads(const ml_pool *p);
void ml_pool_run(ml_pool *p, int n_items, ml_pool_fn fn, void *user);
/* The same, but the caller (worker 0) takes the items from the front in
 * order (0, 1, 2, ...) and the other workers from the back (n-1, n-2, ...):
 * a reduction in item order done on the caller then never waits for a
 * helper's item until the two ends meet, and its running sum stays in the
 * caller's cache. */
void ml_pool_run_ends(ml_pool *p, int n_items, ml_pool_fn fn, void *user);
/* The same, but in fixed blocks with nothing shared per item between the
 * threads: worker w's items are the block ml_pool_split_range gives, run in
 * increasing order; the helpers (workers 1..T-1) have the first blocks, the
 * caller (worker 0) the last floor(n_items / T) items. A caller done with
 * its block then runs the items a helper has not started, from the back of
 * the helper's block (helper T-1's first): a late helper (descheduled on a
 * busy machine) delays the batch by one item at most. For tiny items (a few
 * microseconds) on cores far apart, where every cache line that moves
 * between them costs ~0.4 us: the helper's claims stay in its cache. */
void ml_pool_run_split(ml_pool *p, int n_items, ml_pool_fn fn, void *user);
/* Worker `worker`'s items [lo, hi) in ml_pool_run_split with n_threads
 * threads (when n_items >= n_threads; fewer items run item i on worker i). */
void ml_pool_split_range(int n_threads, int n_items, int worker, int *lo, int *hi);

#ifdef __cplusplus
}
#endif
#endif
