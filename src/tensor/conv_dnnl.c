/* conv_dnnl.c: the oneDNN convolution-primitive route of conv.c, for layers whose
 * input and output channel counts are multiples of 16 (the 64-filter blocks of
 * the 4-conv CNN after its first layer).
 *
 * Why: on those layers oneDNN's JIT convolutions on channel-blocked data
 * (nChw16c, weights OIhw16i16o) beat im2col + GEMM by far, and for 3x3 kernels
 * its Winograd F(4x4, 3x3) kernels do 2.25-4x fewer multiplications
 * (docs/kernels.md has the measurements: 64->64 at 14x14, batch 80, 1 thread,
 * forward 95 GFLOP/s-equivalent with im2col, 111 direct, 170 Winograd). The
 * price is a reorder of the input and the output between PyTorch's NCHW and the
 * blocked layout (about 1-2% of the convolution's time at these sizes); the
 * conv block of conv_bn_blk16.c keeps the output and its gradient in nChw16c
 * and skips those two (the _blk16 entry points, LAY_* below).
 *
 * Which algorithm is a pure function of the shape (winograd_suits), never of
 * timings, so repeated runs compute the same floats; and the results do not
 * depend on the OpenMP thread count (the forward and backward-data kernels split
 * over outputs; backward-weights runs one-thread primitives on fixed chunks of
 * the batch, see "Backward-weights in chunks" below).
 *
 * Primitives are built once per shape, thread and OpenMP thread count (JIT
 * code generation takes ~0.5 ms; oneDNN sizes per-thread scratch by the thread
 * count at creation) and kept in a small thread-local cache; a thread's entries
 * are freed when it exits. The scratchpad (Winograd's transformed tiles) is
 * passed in by the caller, from the same arena scratch as the rest of conv.c,
 * so executing a primitive allocates nothing. */
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/conv.h"
#include "tensor/kernels_par.h"

/* The passes are conv.h's (ml__conv_dnnl_pass_scratch_floats takes them), short. */
enum {
    PASS_FWD = ML_CONV_PASS_FORWARD,
    PASS_BWD_DATA = ML_CONV_PASS_BACKWARD_DATA,
    PASS_BWD_WEIGHT = ML_CONV_PASS_BACKWARD_WEIGHT,
    N_PASSES
};

/* One pass: the convolution and the reorders around it. "a" and "b" are the
 * two plain-layout inputs, "out" the plain-layout output:
 *   forward          a = x,  b = w,  out = y
 *   backward-data    a = dy, b = w,  out = dx
 *   backward-weight  a = x,  b = dy, out = dw */
typedef struct pass {
    dnnl_primitive_t conv, to_a, to_b, from_out;   /* reorders: plain -> blocked, blocked -> plain */
    dnnl_memory_t a, b, out, a_blk, b_blk, out_blk, scratchpad;
    int64_t a_floats, b_floats, out_floats, pad_floats; /* blocked sizes, rounded to 16 */
    int a_arg, b_arg, out_arg;                     /* DNNL_ARG_* of the blocked tensors */
    int one_thread;                                /* built and run on one OpenMP thread */
    int blk16;                                     /* LAY_* bits: which blocked tensors are exactly nChw16c */
} pass;

/* Which of a pass's tensors the caller gives (or wants) already in nChw16c
 * (ml__conv_dnnl_*_blk16): no reorder for those; the primitive writes the
 * forward's output and reads backward-weights' dy in the caller's buffer
 * itself, backward-data's dy from a plain copy (pass_run). Possible only where the primitive chose
 * nChw16c for that tensor (pass.blk16), else the pass returns -1. */
enum { LAY_A = 1, LAY_B = 2, LAY_OUT = 4 };

/* pass_run's b is the weights already in the pass's blocked layout (one
 * reorder per thread and pass instead of one per chunk: pass_run_side). */
enum { LAY_W_READY = 8 };

typedef struct entry {
    ml_conv_shape s;
    int route;   /* asked for: ML_CONV_ROUTE_DIRECT or _WINOGRAD (the cache key) */
    int built;   /* what was built: Winograd falls back to direct where oneDNN has none */
    int threads; /* OpenMP threads when built: oneDNN sizes per-thread scratch by it */
    int used, ok;
    pass p[N_PASSES];
} entry;

#define CACHE_ENTRIES 48
typedef struct cache {
    entry e[CACHE_ENTRIES];
    int next_victim;
    dnnl_stream_t stream;
    float *region; /* thread_region: this thread's chunks' scratch with threads inside a task */
    int64_t region_floats;
} cache;

static dnnl_engine_t engine;
static int engine_ok;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;
static pthread_key_t cache_key;
static int forced_route = -1; /* benches: ml__conv_set_route */
static _Thread_local cache *tls_cache;

static void pass_free(pass *p) {
    dnnl_primitive_t *prims[] = {&p->conv, &p->to_a, &p->to_b, &p->from_out};
    for (size_t i = 0; i < sizeof prims / sizeof *prims; i++)
        if (*prims[i]) dnnl_primitive_destroy(*prims[i]), *prims[i] = NULL;
    dnnl_memory_t *mems[] = {&p->a, &p->b, &p->out, &p->a_blk, &p->b_blk, &p->out_blk, &p->scratchpad};
    for (size_t i = 0; i < sizeof mems / sizeof *mems; i++)
        if (*mems[i]) dnnl_memory_destroy(*mems[i]), *mems[i] = NULL;
}

static void entry_free(entry *e) {
    for (int i = 0; i < N_PASSES; i++) pass_free(&e->p[i]);
    memset(e, 0, sizeof *e);
}

static void cache_free(void *arg) {
    cache *c = arg;
    for (int i = 0; i < CACHE_ENTRIES; i++) entry_free(&c->e[i]);
    if (c->stream) dnnl_stream_destroy(c->stream);
    free(c->region);
    free(c);
}

static void engine_init(void) {
    engine_ok = dnnl_engine_create(&engine, dnnl_cpu, 0) == dnnl_success &&
                pthread_key_create(&cache_key, cache_free) == 0;
}

static cache *thread_cache(void) {
    if (tls_cache) return tls_cache;
    pthread_once(&engine_once, engine_init);
    if (!engine_ok) return NULL;
    cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    if (dnnl_stream_create(&c->stream, engine, dnnl_stream_default_flags) != dnnl_success) {
        free(c);
        return NULL;
    }
    pthread_setspecific(cache_key, c); /* frees the cache when the thread exits */
    return tls_cache = c;
}

/* The calling thread's scratch for its chunks when several threads run a
 * pass's chunks (side by side, or backward-weight's): at least `floats`
 * floats, 64-byte aligned, kept from pass to pass (grown, never shrunk).
 * Carved from the context's arena instead, a thread's region lay on lines
 * the pass before had left in the other thread's cache (the arena rewinds
 * scratch, and regions and tensors differ in size from pass to pass), so the
 * second thread's reorders, Winograd scratchpad and outputs started with
 * lines taken from the first's; in its own region each thread finds the
 * lines it wrote the pass before. NULL when out of memory. */
static float *thread_region(int64_t floats) {
    cache *c = thread_cache();
    if (!c) return NULL;
    if (c->region_floats < floats) {
        free(c->region);
        c->region = aligned_alloc(64, ((size_t)floats * sizeof(float) + 63) / 64 * 64);
        c->region_floats = c->region ? floats : 0;
    }
    return c->region;
}

/* Winograd F(4x4, 3x3) for 3x3, stride 1, pad 1 on images of at least 7x7
 * outputs: measured faster than the direct kernel at 28x28, 14x14 and 7x7 for
 * batches of 5 to 200 (about even at 7x7 with 5 images); at 3x3, where one
 * 4x4 tile is mostly padding, direct wins forward and backward-data
 * (bench/results/conv_routes/, docs/kernels.md). */
static int winograd_suits(const ml_conv_shape *s) {
    if (s->kh != 3 || s->kw != 3 || s->stride != 1 || s->pad != 1) return 0;
    return (int64_t)s->oh * s->ow >= 49;
}

void ml__conv_set_route(int route) { forced_route = route; }

/* The route for s: forced by a bench, or by shape. */
static int route_of(const ml_conv_shape *s) {
    if (forced_route == ML_CONV_ROUTE_IM2COL || !ml__conv_dnnl_shape_ok(s)) return ML_CONV_ROUTE_IM2COL;
    if (forced_route >= 0) return forced_route;
    return winograd_suits(s) ? ML_CONV_ROUTE_WINOGRAD : ML_CONV_ROUTE_DIRECT;
}

int ml__conv_dnnl_shape_ok(const ml_conv_shape *s) {
    if (s->c % 16 || s->o % 16) return 0;
    if (s->kh == 1 && s->kw == 1 && s->stride == 1 && s->pad == 0) return 0; /* plain GEMM is best */
    /* oneDNN wants the right padding that makes its output size formula exact. */
    return (s->oh - 1) * s->stride + s->kh - s->h - s->pad >= 0 && (s->ow - 1) * s->stride + s->kw - s->w - s->pad >= 0;
}

static int64_t floats_of(const dnnl_memory_desc_t *md) {
    return ((int64_t)dnnl_memory_desc_get_size(md) / (int64_t)sizeof(float) + 15) / 16 * 16;
}

/* plain <-> blocked reorder primitive and the plain-side memory object. */
static int make_reorder(const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to, dnnl_primitive_t *prim) {
    dnnl_primitive_desc_t pd;
    if (dnnl_reorder_primitive_desc_create(&pd, from, engine, to, engine, NULL) != dnnl_success) return -1;
    dnnl_status_t st = dnnl_primitive_create(prim, pd);
    dnnl_primitive_desc_destroy(pd);
    return st == dnnl_success ? 0 : -1;
}

/* Builds one pass from its primitive descriptor: blocked memory descriptors are
 * whatever the primitive chose ("any"); the plain ones are NCHW / OIHW. */
/* Whether md is nChw16c of the 4-D activation `plain` (same dims). */
static int is_nchw16c(const dnnl_memory_desc_t *md, const dnnl_memory_desc_t *plain) {
    dnnl_memory_desc_t m16;
    if (plain->ndims != 4 || plain->dims[1] % 16) return 0;
    if (dnnl_memory_desc_init_by_tag(&m16, 4, plain->dims, dnnl_f32, dnnl_nChw16c) != dnnl_success) return 0;
    return dnnl_memory_desc_equal(md, &m16);
}

static int pass_build(pass *p, dnnl_primitive_desc_t pd, const dnnl_memory_desc_t *a_plain,
                      const dnnl_memory_desc_t *b_plain, const dnnl_memory_desc_t *out_plain, dnnl_query_t qa,
                      dnnl_query_t qb, dnnl_query_t qout) {
    const dnnl_memory_desc_t *a_blk = dnnl_primitive_desc_query_md(pd, qa, 0);
    const dnnl_memory_desc_t *b_blk = dnnl_primitive_desc_query_md(pd, qb, 0);
    const dnnl_memory_desc_t *out_blk = dnnl_primitive_desc_query_md(pd, qout, 0);
    const dnnl_memory_desc_t *pad = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    if (!a_blk || !b_blk || !out_blk) return -1;
    if (dnnl_primitive_create(&p->conv, pd) != dnnl_success) return -1;
    if (make_reorder(a_plain, a_blk, &p->to_a) || make_reorder(b_plain, b_blk, &p->to_b) ||
        make_reorder(out_blk, out_plain, &p->from_out))
        return -1;
    struct { dnnl_memory_t *m; const dnnl_memory_desc_t *md; } mems[] = {
        {&p->a, a_plain}, {&p->b, b_plain}, {&p->out, out_plain},
        {&p->a_blk, a_blk}, {&p->b_blk, b_blk}, {&p->out_blk, out_blk}};
    for (size_t i = 0; i < sizeof mems / sizeof *mems; i++)
        if (dnnl_memory_create(mems[i].m, mems[i].md, engine, DNNL_MEMORY_NONE) != dnnl_success) return -1;
    p->pad_floats = 0;
    if (pad && dnnl_memory_desc_get_size(pad) > 0) {
        if (dnnl_memory_create(&p->scratchpad, pad, engine, DNNL_MEMORY_NONE) != dnnl_success) return -1;
        p->pad_floats = floats_of(pad);
    }
    p->a_floats = floats_of(a_blk), p->b_floats = floats_of(b_blk), p->out_floats = floats_of(out_blk);
    p->blk16 = (is_nchw16c(a_blk, a_plain) ? LAY_A : 0) | (is_nchw16c(b_blk, b_plain) ? LAY_B : 0) |
               (is_nchw16c(out_blk, out_plain) ? LAY_OUT : 0);
    return 0;
}

static int entry_build(entry *e, const ml_conv_shape *s, int route) {
    dnnl_memory_desc_t x_any, w_any, y_any, x_nchw, w_oihw, y_nchw;
    dnnl_dims_t xd = {s->n, s->c, s->h, s->w}, wd = {s->o, s->c, s->kh, s->kw}, yd = {s->n, s->o, s->oh, s->ow};
    dnnl_dims_t strides = {s->stride, s->stride}, pad_l = {s->pad, s->pad};
    dnnl_dims_t pad_r = {(s->oh - 1) * s->stride + s->kh - s->h - s->pad, (s->ow - 1) * s->stride + s->kw - s->w - s->pad};
    if (dnnl_memory_desc_init_by_tag(&x_any, 4, xd, dnnl_f32, dnnl_format_tag_any) ||
        dnnl_memory_desc_init_by_tag(&w_any, 4, wd, dnnl_f32, dnnl_format_tag_any) ||
        dnnl_memory_desc_init_by_tag(&y_any, 4, yd, dnnl_f32, dnnl_format_tag_any) ||
        dnnl_memory_desc_init_by_tag(&x_nchw, 4, xd, dnnl_f32, dnnl_nchw) ||
        dnnl_memory_desc_init_by_tag(&w_oihw, 4, wd, dnnl_f32, dnnl_oihw) ||
        dnnl_memory_desc_init_by_tag(&y_nchw, 4, yd, dnnl_f32, dnnl_nchw))
        return -1;
    dnnl_alg_kind_t alg = route == ML_CONV_ROUTE_WINOGRAD ? dnnl_convolution_winograd : dnnl_convolution_direct;
    dnnl_primitive_attr_t attr;
    if (dnnl_primitive_attr_create(&attr) != dnnl_success) return -1;
    int rc = -1;
    dnnl_primitive_desc_t fwd = NULL, bwd_d = NULL, bwd_w = NULL;
    dnnl_convolution_desc_t cf, cbd, cbw;
    if (dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) ||
        dnnl_convolution_forward_desc_init(&cf, dnnl_forward_training, alg, &x_any, &w_any, NULL, &y_any, strides,
                                           pad_l, pad_r) ||
        dnnl_primitive_desc_create(&fwd, &cf, attr, engine, NULL) ||
        dnnl_convolution_backward_data_desc_init(&cbd, alg, &x_any, &w_any, &y_any, strides, pad_l, pad_r) ||
        dnnl_primitive_desc_create(&bwd_d, &cbd, attr, engine, fwd) ||
        dnnl_convolution_backward_weights_desc_init(&cbw, alg, &x_any, &w_any, NULL, &y_any, strides, pad_l,
                                                    pad_r))
        goto done;
    /* Backward-weights reduces over the batch; on several threads oneDNN sums
     * per-thread partial gradients, so the rounding would depend on the thread
     * count. On one thread a supervised run gives the same bits with any
     * --threads, as the im2col route did (the forward and backward-data
     * kernels split over outputs only: tested bitwise in test_conv). */
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    dnnl_status_t st_w = dnnl_primitive_desc_create(&bwd_w, &cbw, attr, engine, fwd);
    omp_set_num_threads(threads);
    if (st_w != dnnl_success) goto done;
    if (pass_build(&e->p[PASS_FWD], fwd, &x_nchw, &w_oihw, &y_nchw, dnnl_query_src_md, dnnl_query_weights_md,
                   dnnl_query_dst_md) ||
        pass_build(&e->p[PASS_BWD_DATA], bwd_d, &y_nchw, &w_oihw, &x_nchw, dnnl_query_diff_dst_md,
                   dnnl_query_weights_md, dnnl_query_diff_src_md) ||
        pass_build(&e->p[PASS_BWD_WEIGHT], bwd_w, &x_nchw, &y_nchw, &w_oihw, dnnl_query_src_md,
                   dnnl_query_diff_dst_md, dnnl_query_diff_weights_md))
        goto done;
    e->p[PASS_FWD].a_arg = DNNL_ARG_SRC, e->p[PASS_FWD].b_arg = DNNL_ARG_WEIGHTS, e->p[PASS_FWD].out_arg = DNNL_ARG_DST;
    e->p[PASS_BWD_DATA].a_arg = DNNL_ARG_DIFF_DST, e->p[PASS_BWD_DATA].b_arg = DNNL_ARG_WEIGHTS;
    e->p[PASS_BWD_DATA].out_arg = DNNL_ARG_DIFF_SRC;
    e->p[PASS_BWD_WEIGHT].a_arg = DNNL_ARG_SRC, e->p[PASS_BWD_WEIGHT].b_arg = DNNL_ARG_DIFF_DST;
    e->p[PASS_BWD_WEIGHT].out_arg = DNNL_ARG_DIFF_WEIGHTS;
    e->p[PASS_BWD_WEIGHT].one_thread = 1;
    rc = 0;
done:
    if (rc) /* leave no half-built pass behind */
        for (int i = 0; i < N_PASSES; i++) pass_free(&e->p[i]);
    if (fwd) dnnl_primitive_desc_destroy(fwd);
    if (bwd_d) dnnl_primitive_desc_destroy(bwd_d);
    if (bwd_w) dnnl_primitive_desc_destroy(bwd_w);
    dnnl_primitive_attr_destroy(attr);
    return rc;
}

static int same_shape(const ml_conv_shape *a, const ml_conv_shape *b) {
    return a->n == b->n && a->c == b->c && a->h == b->h && a->w == b->w && a->o == b->o && a->kh == b->kh &&
           a->kw == b->kw && a->stride == b->stride && a->pad == b->pad;
}

/* The thread's entry for s, built on first use; NULL if oneDNN cannot do it
 * (the caller then takes the im2col route; the failure is remembered too),
 * for `threads` OpenMP threads (the primitives are built with that budget). */
static entry *lookup_for(const ml_conv_shape *s, int threads) {
    const int route = route_of(s);
    if (route == ML_CONV_ROUTE_IM2COL) return NULL;
    cache *c = thread_cache();
    if (!c) return NULL;
    for (int i = 0; i < CACHE_ENTRIES; i++)
        if (c->e[i].used && c->e[i].route == route && c->e[i].threads == threads && same_shape(&c->e[i].s, s))
            return c->e[i].ok ? &c->e[i] : NULL;
    entry *e = NULL;
    for (int i = 0; i < CACHE_ENTRIES && !e; i++)
        if (!c->e[i].used) e = &c->e[i];
    if (!e) { /* full: evict round-robin */
        e = &c->e[c->next_victim];
        c->next_victim = (c->next_victim + 1) % CACHE_ENTRIES;
        entry_free(e);
    }
    e->s = *s, e->route = e->built = route, e->threads = threads, e->used = 1;
    const int saved = omp_get_max_threads();
    if (threads != saved) omp_set_num_threads(threads);
    e->ok = entry_build(e, s, route) == 0;
    if (!e->ok && route == ML_CONV_ROUTE_WINOGRAD) { /* e.g. a CPU without AVX-512 */
        e->built = ML_CONV_ROUTE_DIRECT;
        e->ok = entry_build(e, s, ML_CONV_ROUTE_DIRECT) == 0;
    }
    if (threads != saved) omp_set_num_threads(saved);
    return e->ok ? e : NULL; /* a failure stays in the cache, remembered */
}

static entry *lookup(const ml_conv_shape *s) { return lookup_for(s, omp_get_max_threads()); }

int ml__conv_route(const ml_conv_shape *s) {
    entry *e = lookup(s);
    return e ? e->built : ML_CONV_ROUTE_IM2COL;
}

static int64_t pass_floats(const pass *p) { return p->a_floats + p->b_floats + p->out_floats + p->pad_floats; }

/* ---- Backward-weights in chunks ----------------------------------------------
 * Backward-weights sums over the batch. oneDNN's multi-threaded primitive sums
 * per-thread partial gradients, so its rounding would depend on the thread
 * count; run on one thread it left about a third of the convolution time of a
 * one-episode step serial. Instead the batch is cut into a number of chunks
 * that depends on the batch size only (bwdw_chunks; with small scratch, below,
 * also on the shape's one-thread scratch), each chunk's gradient is
 * computed by a one-thread primitive (the chunks in parallel over the caller's
 * OpenMP threads, each thread with its own primitives from its own cache), and
 * the chunk gradients are summed in chunk order. The bits are the same for any
 * thread count; they differ from one primitive over the whole batch (the batch
 * sum is grouped differently). Below 2 * BWDW_MIN_IMAGES images there is one
 * chunk: the whole batch on one thread, as before (MAML's support sets). */
#ifndef ML_CONV_BWDW_MIN_IMAGES
#define ML_CONV_BWDW_MIN_IMAGES 16
#endif
#ifndef ML_CONV_BWDW_MAX_CHUNKS
#define ML_CONV_BWDW_MAX_CHUNKS 4
#endif

/* ---- Small scratch, per calling thread (ml__conv_dnnl_small_scratch) --------------
 * Winograd's scratchpad has steps: one-thread backward-weights on 14x14 x 64
 * asks 11.3 MB of scratch at 18 images and 17.2 at 19 (8.8 MB of it written,
 * against 2.6), and the forward / backward-data passes write 2-8 MB of theirs
 * at the 4 MB chunks below. A caller that has much else alive at those passes
 * (MAML's query pass, beside its inner step's graph: a worker's arena peak)
 * asks for small scratch: backward-weights in more chunks, until a chunk's
 * pass fits ML_CONV_BWDW_SMALL_BYTES (fixed by the shape and the one-thread
 * primitives: the same chunks on any thread count; other bits than the
 * default chunks, the sum being grouped otherwise), and forward /
 * backward-data in chunks of ML_CONV_DNNL_SMALL_CHUNK_BYTES (the same bits:
 * each image's output is its own). */
#ifndef ML_CONV_BWDW_SMALL_BYTES
#define ML_CONV_BWDW_SMALL_BYTES ((int64_t)12 << 20)
#endif
#ifndef ML_CONV_BWDW_SMALL_MAX_CHUNKS
#define ML_CONV_BWDW_SMALL_MAX_CHUNKS 16
#endif
#ifndef ML_CONV_DNNL_SMALL_CHUNK_BYTES
#define ML_CONV_DNNL_SMALL_CHUNK_BYTES ((int64_t)1 << 20)
#endif
static _Thread_local int small_scratch;

int ml__conv_dnnl_small_scratch(int on) {
    const int was = small_scratch;
    small_scratch = on;
    return was;
}

/* First image of chunk i of k: the first n % k chunks hold one image more. */
static int chunk_first(int n, int k, int i) { return i * (n / k) + (i < n % k ? i : n % k); }

static ml_conv_shape chunk_shape(const ml_conv_shape *s, int images) {
    ml_conv_shape c = *s;
    c.n = images;
    return c;
}

static int64_t chunk_pass_floats(const ml_conv_shape *s, int k);

/* Chunks of a backward-weights batch: by its size (at least
 * ML_CONV_BWDW_MIN_IMAGES images each, at most ML_CONV_BWDW_MAX_CHUNKS), then
 * with small scratch more while the largest chunk's pass is above the budget. */
static int bwdw_chunks(const ml_conv_shape *s) {
    int k = s->n / ML_CONV_BWDW_MIN_IMAGES;
    k = k < 1 ? 1 : k > ML_CONV_BWDW_MAX_CHUNKS ? ML_CONV_BWDW_MAX_CHUNKS : k;
    if (k < 2 || !small_scratch) return k;
    while (k < ML_CONV_BWDW_SMALL_MAX_CHUNKS && k < s->n &&
           chunk_pass_floats(s, k) * (int64_t)sizeof(float) > ML_CONV_BWDW_SMALL_BYTES)
        k++;
    return k;
}

static int64_t weight_floats(const ml_conv_shape *s) {
    return ((int64_t)s->o * s->c * s->kh * s->kw + 15) / 16 * 16;
}

/* Scratch of one chunk's pass (the largest chunk, the first), or -1. */
static int64_t chunk_pass_floats(const ml_conv_shape *s, int k) {
    ml_conv_shape c = chunk_shape(s, chunk_first(s->n, k, 1));
    entry *e = lookup_for(&c, 1);
    return e ? pass_floats(&e->p[PASS_BWD_WEIGHT]) + 16 : -1; /* + alignment room */
}

/* Threads running the chunks: the caller's budget, at most one per chunk. */
static int chunk_threads(int k) {
    const int t = omp_in_parallel() ? 1 : omp_get_max_threads();
    return t < k ? t : k;
}

/* Scratch layout: the gradients of chunks 1..k-1 (chunk 0 writes dw itself),
 * then, on one thread, its pass region (it runs the chunks in turn); on
 * several threads each runs its chunks in its own thread_region. */
static int64_t chunked_bwdw_floats(const ml_conv_shape *s, int k) {
    int64_t per = chunk_pass_floats(s, k);
    return per < 0 ? -1 : (k - 1) * weight_floats(s) + (chunk_threads(k) > 1 ? 0 : per);
}

/* ---- Forward and backward-data in image chunks ---------------------------------
 * Each image's output depends on that image alone, and oneDNN computes it the
 * same whatever the batch around it (test_conv checks chunked against whole,
 * bitwise, for every oneDNN shape it runs). So a large batch runs in chunks
 * of about ML_CONV_DNNL_CHUNK_BYTES of plain input plus output, one after the
 * other (oneDNN's threads inside each): the blocked copies and Winograd's
 * scratchpad, which grow with the batch, stay at a chunk's size (a 75-image
 * MAML query at 14x14: 35 MB of scratch -> 12; ProtoNet's 200 images: 26 -> 12).
 * Chunks are balanced (their sizes differ by one image at most). */
#ifndef ML_CONV_DNNL_CHUNK_BYTES
#define ML_CONV_DNNL_CHUNK_BYTES ((int64_t)4 << 20)
#endif
static int64_t chunk_bytes = ML_CONV_DNNL_CHUNK_BYTES;

void ml__conv_dnnl_set_unchunked(int on) { chunk_bytes = on ? INT64_MAX : ML_CONV_DNNL_CHUNK_BYTES; }

static int chunks_within(const ml_conv_shape *s, int64_t bytes) {
    const int64_t per = ((int64_t)s->c * s->h * s->w + (int64_t)s->o * s->oh * s->ow) * (int64_t)sizeof(float);
    int64_t most = bytes / per; /* images per chunk */
    if (most < 1) most = 1;
    return (int)((s->n + most - 1) / most);
}

/* The chunk bytes of the calling thread's forward / backward-data passes. */
static int64_t pass_chunk_bytes(void) {
    return chunk_bytes != INT64_MAX && small_scratch ? ML_CONV_DNNL_SMALL_CHUNK_BYTES : chunk_bytes;
}

static int image_chunks(const ml_conv_shape *s) { return chunks_within(s, pass_chunk_bytes()); }

/* Threads running forward / backward-data chunks side by side, each chunk with
 * a one-thread primitive (reorders included), or 1: oneDNN's threads inside
 * each chunk, chunks in turn. Side by side each thread reorders and convolves
 * its own images while they sit in its own cache, and the pass is one OpenMP
 * region instead of four per chunk (oneDNN's reorders scaled 1.25x on 2
 * threads). Same bits: each image's output depends on that image alone and
 * not on the thread count (test_conv). */
static int side_threads(const ml_conv_shape *s) {
    const int t = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (t < 2 || chunk_bytes == INT64_MAX || s->n < 2) return 1;
    return t < s->n ? t : s->n;
}

/* Chunks side by side on t threads: the memory of one chunk per thread is
 * about what one chunk in turn takes; a multiple of t (balance), at most n. */
static int side_chunks(const ml_conv_shape *s, int t) {
    int k = chunks_within(s, pass_chunk_bytes() / t);
    k = (k + t - 1) / t * t;
    return k < s->n ? k : s->n;
}

/* A side-by-side thread's region (thread_region): the blocked weights (wm
 * floats, a multiple of 16) at its 64-byte aligned start, then a chunk's
 * pass (m floats, which pass_run aligns itself). */
static int64_t side_region_floats(int64_t m, int64_t wm) { return wm + m + 32; }

/* Scratch of pass `which` (forward or backward-data) over its k chunks on t
 * threads: the largest chunk's pass (chunks hold n / k or n / k + 1 images)
 * in *m and its blocked weights in *wm; -1 if oneDNN cannot run it. */
static int chunk_floats(const ml_conv_shape *s, int which, int t, int k, int64_t *m, int64_t *wm) {
    *m = *wm = 0;
    for (int big = 0; big < 2; big++) {
        const int images = s->n / k + big;
        if (images < 1 || (big && s->n % k == 0)) continue;
        ml_conv_shape c = chunk_shape(s, images);
        entry *e = t > 1 ? lookup_for(&c, 1) : lookup(&c);
        if (!e) return -1;
        if (pass_floats(&e->p[which]) > *m) *m = pass_floats(&e->p[which]);
        if (e->p[which].b_floats > *wm) *wm = e->p[which].b_floats;
    }
    return 0;
}

static int64_t chunked_pass_floats(const ml_conv_shape *s, int which) {
    const int t = side_threads(s), k = t > 1 ? side_chunks(s, t) : image_chunks(s);
    int64_t m, wm;
    if (chunk_floats(s, which, t, k, &m, &wm)) return -1;
    /* side by side: each thread's chunks and blocked weights in its own
     * thread_region (pass_run_side), nothing in the caller's scratch */
    return t > 1 ? 0 : m;
}

int64_t ml__conv_dnnl_pass_scratch_floats(const ml_conv_shape *s, int which) {
    entry *e = lookup(s);
    if (!e) return -1;
    int64_t m;
    if (which == PASS_BWD_WEIGHT) {
        const int k = bwdw_chunks(s);
        m = k > 1 ? chunked_bwdw_floats(s, k) : pass_floats(&e->p[PASS_BWD_WEIGHT]);
    } else {
        m = chunked_pass_floats(s, which);
    }
    return m < 0 ? -1 : m + 16; /* room to align the start to 64 bytes */
}

int64_t ml__conv_dnnl_scratch_floats(const ml_conv_shape *s) {
    int64_t m = 0;
    for (int i = 0; i < N_PASSES; i++) {
        int64_t f = ml__conv_dnnl_pass_scratch_floats(s, i);
        if (f < 0) return -1;
        if (f > m) m = f;
    }
    return m;
}

static int run(dnnl_primitive_t prim, int nargs, const dnnl_exec_arg_t *args) {
    return dnnl_primitive_execute(prim, tls_cache->stream, nargs, args) == dnnl_success ? 0 : -1;
}

static int reorder(dnnl_primitive_t prim, dnnl_memory_t from, dnnl_memory_t to) {
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    return run(prim, 2, args);
}

/* out = pass(a, b): reorder a and b into the blocked layout, run, reorder back;
 * the tensors named in `lay` are the caller's, already nChw16c (no reorder). */
static int pass_run(pass *p, const float *a, const float *b, float *out, float *scratch, int lay) {
    const int caller_blk16 = lay & (LAY_A | LAY_B | LAY_OUT);
    if ((caller_blk16 & p->blk16) != caller_blk16) return -1;
    /* JIT kernels may use aligned vector moves on the blocked buffers. */
    float *a_blk = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63), *b_blk = a_blk + p->a_floats, *out_blk = b_blk + p->b_floats;
    float *pad = out_blk + p->out_floats;
    /* Backward-data's dy: a linear copy into the chunk's scratch. Winograd's
     * backward-data read in place from the batch-sized buffer measured 8%
     * slower than the plain route; from the copy, 3-6% faster (1 thread,
     * CPU time, 200 x 64 x 14 x 14). */
    if (lay & LAY_A) memcpy(a_blk, a, (size_t)p->a_floats * sizeof(float));
    if (lay & (LAY_B | LAY_W_READY)) b_blk = (float *)b; /* backward-weights: a copy measured no faster */
    if (lay & LAY_OUT) out_blk = out;
    if (dnnl_memory_set_data_handle(p->a, (void *)a) || dnnl_memory_set_data_handle(p->b, (void *)b) ||
        dnnl_memory_set_data_handle(p->out, out) || dnnl_memory_set_data_handle(p->a_blk, a_blk) ||
        dnnl_memory_set_data_handle(p->b_blk, b_blk) || dnnl_memory_set_data_handle(p->out_blk, out_blk) ||
        (p->scratchpad && dnnl_memory_set_data_handle(p->scratchpad, pad)))
        return -1;
    dnnl_exec_arg_t args[4] = {
        {p->a_arg, p->a_blk}, {p->b_arg, p->b_blk}, {p->out_arg, p->out_blk}, {DNNL_ARG_SCRATCHPAD, p->scratchpad}};
    if ((!(lay & LAY_A) && reorder(p->to_a, p->a, p->a_blk)) ||
        (!(lay & (LAY_B | LAY_W_READY)) && reorder(p->to_b, p->b, p->b_blk)))
        return -1;
    const int threads = omp_get_max_threads();
    if (p->one_thread && threads > 1) omp_set_num_threads(1);
    int rc = run(p->conv, p->scratchpad ? 4 : 3, args);
    if (p->one_thread && threads > 1) omp_set_num_threads(threads);
    if (rc || (!(lay & LAY_OUT) && reorder(p->from_out, p->out_blk, p->out))) return -1;
    return dnnl_stream_wait(tls_cache->stream) == dnnl_success ? 0 : -1;
}

/* Chunk i's gradient on the calling thread, with a one-thread primitive. */
static int run_chunk(const ml_conv_shape *s, int k, int i, const float *x, const float *dy, float *out,
                     float *region, int lay) {
    const int first = chunk_first(s->n, k, i), images = chunk_first(s->n, k, i + 1) - first;
    const int64_t x_img = (int64_t)s->c * s->h * s->w, y_img = (int64_t)s->o * s->oh * s->ow;
    const int saved = omp_get_max_threads();
    if (saved != 1) omp_set_num_threads(1);
    ml_conv_shape c = chunk_shape(s, images);
    entry *e = lookup_for(&c, 1);
    int rc = e ? pass_run(&e->p[PASS_BWD_WEIGHT], x + first * x_img, dy + first * y_img, out, region, lay) : -1;
    if (saved != 1) omp_set_num_threads(saved);
    return rc;
}

typedef struct chunk_sum {
    float *dw;
    const float *parts;
    int64_t stride;
    int k;
} chunk_sum;

/* dw[j] = ((dw[j] + part1[j]) + part2[j]) + ...: chunk order, per element. */
static void sum_chunks_range(void *arg, int64_t lo, int64_t hi) {
    const chunk_sum *a = arg;
    for (int i = 1; i < a->k; i++) {
        const float *p = a->parts + (i - 1) * a->stride;
        for (int64_t j = lo; j < hi; j++) a->dw[j] += p[j];
    }
}

static int backward_weight_chunked(const ml_conv_shape *s, int k, const float *x, const float *dy, float *dw,
                                   float *scratch, int lay) {
    const int64_t per = chunk_pass_floats(s, k), nw = weight_floats(s);
    if (per < 0) return -1;
    float *parts = scratch, *regions = parts + (k - 1) * nw;
    int failed = 0;
    const int threads = chunk_threads(k);
    if (threads == 1) {
        for (int i = 0; i < k && !failed; i++) failed = run_chunk(s, k, i, x, dy, i ? parts + (i - 1) * nw : dw, regions, lay);
    } else {
#pragma omp parallel num_threads(threads) reduction(| : failed)
        {
            const int t = omp_get_thread_num(), nt = omp_get_num_threads();
            float *region = thread_region(per);
            failed |= !region;
            for (int i = k * t / nt; i < k * (t + 1) / nt && region; i++)
                failed |= run_chunk(s, k, i, x, dy, i ? parts + (i - 1) * nw : dw, region, lay) != 0;
        }
    }
    if (failed) return -1;
    chunk_sum a = {dw, parts, nw, k};
    const int64_t n = (int64_t)s->o * s->c * s->kh * s->kw;
    ML__PAR_RUN(n, n * (k - 1), 16, sum_chunks_range, &a);
    return 0;
}

/* out = pass(a, w) chunk by chunk: a has a_img floats per image, out out_img. */
/* Whether pass p takes its weights in the blocked layout md (chunks of two
 * sizes have two primitives; a copy of md, as a cache entry may be rebuilt). */
static int takes_weights(const pass *p, const dnnl_memory_desc_t *md) {
    const dnnl_memory_desc_t *mp;
    return !dnnl_memory_get_memory_desc(p->b_blk, &mp) && dnnl_memory_desc_equal(mp, md);
}

/* w reordered into p's blocked weight layout at w_blk, on the calling thread. */
static int reorder_weights(pass *p, const float *w, float *w_blk) {
    if (dnnl_memory_set_data_handle(p->b, (void *)w) || dnnl_memory_set_data_handle(p->b_blk, w_blk)) return -1;
    return reorder(p->to_b, p->b, p->b_blk) || dnnl_stream_wait(tls_cache->stream) != dnnl_success ? -1 : 0;
}

/* out = pass(a, w) chunk by chunk, chunks side by side on t threads: each
 * thread reorders the weights once into its own region and runs its chunks
 * on them (the reorder is a copy: the same bits as one per chunk, which
 * doubled the small weight reorders on 2 threads). a has a_img floats per
 * image, out out_img. */
static int pass_run_side(const ml_conv_shape *s, int which, int t, const float *a, int64_t a_img, const float *w,
                         float *out, int64_t out_img, float *scratch, int lay) {
    const int k = side_chunks(s, t);
    int64_t m, wm;
    if (chunk_floats(s, which, t, k, &m, &wm)) return -1;
    const int64_t per = side_region_floats(m, wm);
    int failed = 0;
    (void)scratch; /* each thread's chunks run in its thread_region */
#pragma omp parallel num_threads(t) reduction(| : failed)
    {
        const int me = omp_get_thread_num(), nt = omp_get_num_threads();
        const int saved = omp_get_max_threads();
        float *w_blk = thread_region(per), *region = w_blk ? w_blk + wm : NULL;
        dnnl_memory_desc_t held; /* the layout w_blk holds, once `have` */
        int have = 0;
        failed |= !w_blk;
        omp_set_num_threads(1);
        for (int i = k * me / nt; i < k * (me + 1) / nt && !failed; i++) {
            const int first = chunk_first(s->n, k, i), images = chunk_first(s->n, k, i + 1) - first;
            ml_conv_shape c = chunk_shape(s, images);
            entry *e = lookup_for(&c, 1);
            pass *p = e ? &e->p[which] : NULL;
            if (!p || p->b_floats > wm) {
                failed = 1;
                break;
            }
            if (!have || !takes_weights(p, &held)) {
                const dnnl_memory_desc_t *md;
                failed |= reorder_weights(p, w, w_blk) != 0 || dnnl_memory_get_memory_desc(p->b_blk, &md) != 0;
                if (!failed) held = *md, have = 1;
            }
            failed |= !failed && pass_run(p, a + first * a_img, w_blk, out + first * out_img, region,
                                          lay | LAY_W_READY);
        }
        omp_set_num_threads(saved);
    }
    return failed ? -1 : 0;
}

static int pass_run_chunked(const ml_conv_shape *s, int which, const float *a, int64_t a_img, const float *w,
                            float *out, int64_t out_img, float *scratch, int lay) {
    const int t = side_threads(s);
    if (t > 1) return pass_run_side(s, which, t, a, a_img, w, out, out_img, scratch, lay);
    const int k = image_chunks(s);
    for (int i = 0; i < k; i++) {
        const int first = chunk_first(s->n, k, i), images = chunk_first(s->n, k, i + 1) - first;
        ml_conv_shape c = chunk_shape(s, images);
        entry *e = lookup(&c);
        if (!e || pass_run(&e->p[which], a + first * a_img, w, out + first * out_img, scratch, lay)) return -1;
    }
    return 0;
}

/* The three passes; `blocked` = 1: y (forward's output, the backward passes'
 * dy) is nChw16c, the caller's, with no reorder (conv.h). */
static int run_forward(const ml_conv_shape *s, const float *x, const float *w, float *y, float *scratch,
                        int blocked) {
    if (!lookup(s)) return -1;
    return pass_run_chunked(s, PASS_FWD, x, (int64_t)s->c * s->h * s->w, w, y, (int64_t)s->o * s->oh * s->ow,
                            scratch, blocked ? LAY_OUT : 0);
}

static int run_backward_data(const ml_conv_shape *s, const float *dy, const float *w, float *dx, float *scratch,
                              int blocked) {
    if (!lookup(s)) return -1;
    return pass_run_chunked(s, PASS_BWD_DATA, dy, (int64_t)s->o * s->oh * s->ow, w, dx,
                            (int64_t)s->c * s->h * s->w, scratch, blocked ? LAY_A : 0);
}

static int run_backward_weight(const ml_conv_shape *s, const float *x, const float *dy, float *dw, float *scratch,
                                int blocked) {
    entry *e = lookup(s);
    if (!e) return -1;
    const int k = bwdw_chunks(s), lay = blocked ? LAY_B : 0;
    return k > 1 ? backward_weight_chunked(s, k, x, dy, dw, scratch, lay)
                 : pass_run(&e->p[PASS_BWD_WEIGHT], x, dy, dw, scratch, lay);
}

int ml__conv_dnnl_forward(const ml_conv_shape *s, const float *x, const float *w, float *y, float *scratch) {
    return run_forward(s, x, w, y, scratch, 0);
}

int ml__conv_dnnl_backward_data(const ml_conv_shape *s, const float *dy, const float *w, float *dx,
                                float *scratch) {
    return run_backward_data(s, dy, w, dx, scratch, 0);
}

int ml__conv_dnnl_backward_weight(const ml_conv_shape *s, const float *x, const float *dy, float *dw,
                                  float *scratch) {
    return run_backward_weight(s, x, dy, dw, scratch, 0);
}

int ml__conv_dnnl_forward_blk16(const ml_conv_shape *s, const float *x, const float *w, float *y, float *scratch) {
    return run_forward(s, x, w, y, scratch, 1);
}

int ml__conv_dnnl_backward_data_blk16(const ml_conv_shape *s, const float *dy, const float *w, float *dx,
                                      float *scratch) {
    return run_backward_data(s, dy, w, dx, scratch, 1);
}

int ml__conv_dnnl_backward_weight_blk16(const ml_conv_shape *s, const float *x, const float *dy, float *dw,
                                        float *scratch) {
    return run_backward_weight(s, x, dy, dw, scratch, 1);
}

int ml__conv_dnnl_blk16_ok(const ml_conv_shape *s) {
    entry *e = lookup(s);
    return e && (e->p[PASS_FWD].blk16 & LAY_OUT) && (e->p[PASS_BWD_DATA].blk16 & LAY_A) &&
           (e->p[PASS_BWD_WEIGHT].blk16 & LAY_B);
}
