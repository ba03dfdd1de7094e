/* ops_nn.c: the layer ops: conv2d and its two backward products, max-pool,
 * global average pool, batch norm, and the losses. Composite ops (batch norm,
 * cross-entropy, MSE) are built from recorded primitives, so they are
 * differentiable to any order without rules of their own. */
#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/conv.h"
#include "tensor/internal.h"
#include "tensor/kernels_par.h"

#if defined(ML_HAVE_AVX512_PATH)
#include <immintrin.h>

#include "tensor/pool_avx512.h"
#endif

/* ---- conv2d --------------------------------------------------------------------- */

static int conv_setup(ml_ctx *ctx, const char *op, ml_conv_shape *s, int64_t n, int64_t c, int64_t h,
                      int64_t w, int64_t o, int64_t kh, int64_t kw, int stride, int pad) {
    if (stride < 1 || pad < 0 || kh < 1 || kw < 1) {
        ml_ctx_fail(ctx, ML_ERR_ARG, "%s: stride %d, pad %d, kernel %lldx%lld", op, stride, pad,
                    (long long)kh, (long long)kw);
        return -1;
    }
    if (ml__conv_shape_init(s, (int)n, (int)c, (int)h, (int)w, (int)o, (int)kh, (int)kw, stride, pad)) {
        ml_ctx_fail(ctx, ML_ERR_SHAPE, "%s: %lldx%lld input with %lldx%lld kernel, pad %d gives no output",
                    op, (long long)h, (long long)w, (long long)kh, (long long)kw, pad);
        return -1;
    }
    return 0;
}

static float *conv_scratch(ml_ctx *ctx, const ml_conv_shape *s, int pass) {
    int64_t n = ml__conv2d_pass_scratch_floats(s, pass);
    return ml_ctx_alloc(ctx, (size_t)(n > 0 ? n : 1) * sizeof(float));
}

static void conv_record(ml_ctx *ctx, ml_op op, ml_tensor *t, ml_tensor *a, ml_tensor *b,
                        const ml_conv_shape *s) {
    ml_node *nd = ml__record(ctx, op, t, a, b);
    if (!nd) return;
    nd->ip[0] = s->stride;
    nd->ip[1] = s->pad;
    nd->ip[2] = s->h; /* input size: stride 2 makes it ambiguous from the output */
    nd->ip[3] = s->w;
}

ml_tensor *ml_conv2d(ml_ctx *ctx, ml_tensor *x, ml_tensor *w, int stride, int pad) {
    if (!x || !w || ctx->status != ML_OK) return NULL;
    if (x->ndim != 4 || w->ndim != 4 || x->shape[1] != w->shape[1]) {
        char s1[64], s2[64];
        return ml_ctx_fail(ctx, ML_ERR_SHAPE, "conv2d: input %s, weight %s (want [N,C,H,W] and [O,C,KH,KW])",
                           ml_shape_str(x, s1, sizeof s1), ml_shape_str(w, s2, sizeof s2));
    }
    ml_conv_shape s;
    if (conv_setup(ctx, "conv2d", &s, x->shape[0], x->shape[1], x->shape[2], x->shape[3], w->shape[0],
                   w->shape[2], w->shape[3], stride, pad))
        return NULL;
    ml_tensor *t = ml_tensor_new(ctx, 4, ML_SHAPE(s.n, s.o, s.oh, s.ow));
    if (!t) return NULL;
    ml_arena_mark m = ml_arena_get_mark(ctx->arena);
    float *scratch = conv_scratch(ctx, &s, ML_CONV_PASS_FORWARD);
    if (!scratch) return NULL;
    ml__conv2d_forward(&s, x->data, w->data, t->data, scratch);
    ml_arena_rewind(ctx->arena, m);
    conv_record(ctx, ML_OP_CONV2D, t, x, w, &s);
    return t;
}

ml_tensor *ml_conv2d_backward_data(ml_ctx *ctx, ml_tensor *dy, ml_tensor *w, int h, int wd, int stride,
                                   int pad) {
    if (!dy || !w || ctx->status != ML_OK) return NULL;
    ml_conv_shape s;
    if (dy->ndim != 4 || w->ndim != 4 || dy->shape[1] != w->shape[0])
        return ml_ctx_fail(ctx, ML_ERR_SHAPE, "conv2d_backward_data: dy and weight disagree");
    if (conv_setup(ctx, "conv2d_backward_data", &s, dy->shape[0], w->shape[1], h, wd, w->shape[0],
                   w->shape[2], w->shape[3], stride, pad))
        return NULL;
    if (s.oh != dy->shape[2] || s.ow != dy->shape[3])
        return ml_ctx_fail(ctx, ML_ERR_SHAPE, "conv2d_backward_data: dy is %lldx%lld, expected %dx%d",
                           (long long)dy->shape[2], (long long)dy->shape[3], s.oh, s.ow);
    ml_tensor *t = ml_tensor_new(ctx, 4, ML_SHAPE(s.n, s.c, s.h, s.w));
    if (!t) return NULL;
    ml_arena_mark m = ml_arena_get_mark(ctx->arena);
    float *scratch = conv_scratch(ctx, &s, ML_CONV_PASS_BACKWARD_DATA);
    if (!scratch) return NULL;
    ml__conv2d_backward_data(&s, dy->data, w->data, t->data, scratch);
    ml_arena_rewind(ctx->arena, m);
    conv_record(ctx, ML_OP_CONV2D_BWD_DATA, t, dy, w, &s);
    return t;
}

ml_tensor *ml_conv2d_backward_weight(ml_ctx *ctx, ml_tensor *x, ml_tensor *dy, int kh, int kw, int stride,
                                     int pad) {
    if (!x || !dy || ctx->status != ML_OK) return NULL;
    ml_conv_shape s;
    if (x->ndim != 4 || dy->ndim != 4 || x->shape[0] != dy->shape[0])
        return ml_ctx_fail(ctx, ML_ERR_SHAPE, "conv2d_backward_weight: x and dy disagree");
    if (conv_setup(ctx, "conv2d_backward_weight", &s, x->shape[0], x->shape[1], x->shape[2], x->shape[3],
                   dy->shape[1], kh, kw, stride, pad))
        return NULL;
    if (s.oh != dy->shape[2] || s.ow != dy->shape[3])
        return ml_ctx_fail(ctx, ML_ERR_SHAPE, "conv2d_backward_weight: dy is %lldx%lld, expected %dx%d",
                           (long long)dy->shape[2], (long long)dy->shape[3], s.oh, s.ow);
    ml_tensor *t = ml_tensor_new(ctx, 4, ML_SHAPE(s.o, s.c, s.kh, s.kw));
    if (!t) return NULL;
    ml_arena_mark m = ml_arena_get_mark(ctx->arena);
    float *scratch = conv_scratch(ctx, &s, ML_CONV_PASS_BACKWARD_WEIGHT);
    if (!scratch) return NULL;
    ml__conv2d_backward_weight(&s, x->data, dy->data, t->data, scratch);
    ml_arena_rewind(ctx->arena, m);
    conv_record(ctx, ML_OP_CONV2D_BWD_WEIGHT, t, x, dy, &s);
    return t;
}

/* ---- pooling ---------------------------------------------------------------------------
 * Max-pool 2x2, stride 2 (floor): one pass writes both the output and the
 * flat index of each window's maximum, recorded as a GATHER node (the same
 * node ml__gather records; its backward is the SCATTER of those indices).
 * Semantics, shared by the vector and scalar paths: the first maximum wins in
 * the order (r0,c0), (r0,c1), (r1,c0), (r1,c1), as in PyTorch; a candidate
 * replaces the best when `!(v <= best) && best == best`, which also takes a
 * NaN, and nothing replaces a NaN, so NaN propagates. */

typedef struct pool_job {
    int64_t h, w, oh, ow;
    const float *x;
    float *y;
    int32_t *idx;
} pool_job;

/* One output row: r0, r1 = input rows 2i and 2i+1, o0 = flat index of r0[0]. */
static void pool_row_scalar(const float *r0, const float *r1, int32_t o0, int32_t w, int64_t j0,
                            int64_t ow, float *y, int32_t *q) {
    for (int64_t j = j0; j < ow; j++) {
        int64_t c = 2 * j;
        float best = r0[c];
        int32_t at = o0 + (int32_t)c;
        if (!(r0[c + 1] <= best) && best == best) best = r0[c + 1], at = o0 + (int32_t)c + 1;
        if (!(r1[c] <= best) && best == best) best = r1[c], at = o0 + w + (int32_t)c;
        if (!(r1[c + 1] <= best) && best == best) best = r1[c + 1], at = o0 + w + (int32_t)c + 1;
        y[j] = best;
        q[j] = at;
    }
}

#if defined(ML_HAVE_AVX512_PATH)
/* 16 outputs per step: each input row's 32 floats split into even and odd
 * columns, then three compare-and-blend steps (_CMP_NLE_UQ = !(v <= best),
 * _CMP_ORD_Q = best is not NaN). Masked lanes are not accessed. */
ML_TARGET_AVX512 static void pool_row_avx512(const float *r0, const float *r1, int32_t o0, int32_t w, int64_t ow,
                            float *y, int32_t *q) {
    const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i od = _mm512_add_epi32(ev, _mm512_set1_epi32(1));
    for (int64_t j = 0; j < ow; j += 16) {
        const int64_t left = ow - j; /* outputs still to do */
        const float *p0 = r0 + 2 * j, *p1 = r1 + 2 * j;
        __m512 a0, a1, b0, b1;
        __mmask16 ms = 0xFFFF;
        if (left >= 16) {
            a0 = _mm512_loadu_ps(p0), a1 = _mm512_loadu_ps(p0 + 16);
            b0 = _mm512_loadu_ps(p1), b1 = _mm512_loadu_ps(p1 + 16);
        } else {
            const int64_t cols = 2 * left; /* < 32 */
            const __mmask16 m0 = (__mmask16)(cols >= 16 ? 0xFFFF : (1u << cols) - 1);
            const __mmask16 m1 = (__mmask16)(cols > 16 ? (1u << (cols - 16)) - 1 : 0);
            a0 = _mm512_maskz_loadu_ps(m0, p0), a1 = _mm512_maskz_loadu_ps(m1, p0 + 16);
            b0 = _mm512_maskz_loadu_ps(m0, p1), b1 = _mm512_maskz_loadu_ps(m1, p1 + 16);
            ms = (__mmask16)((1u << left) - 1);
        }
        __m512 best = _mm512_permutex2var_ps(a0, ev, a1);
        const __m512 v1 = _mm512_permutex2var_ps(a0, od, a1);
        const __m512 v2 = _mm512_permutex2var_ps(b0, ev, b1);
        const __m512 v3 = _mm512_permutex2var_ps(b0, od, b1);
        const __m512i base = _mm512_add_epi32(_mm512_set1_epi32(o0 + (int32_t)(2 * j)), ev);
        __m512i at = base;
        __mmask16 t;
        t = _mm512_cmp_ps_mask(v1, best, _CMP_NLE_UQ) & _mm512_cmp_ps_mask(best, best, _CMP_ORD_Q);
        best = _mm512_mask_mov_ps(best, t, v1);
        at = _mm512_mask_add_epi32(at, t, base, _mm512_set1_epi32(1));
        t = _mm512_cmp_ps_mask(v2, best, _CMP_NLE_UQ) & _mm512_cmp_ps_mask(best, best, _CMP_ORD_Q);
        best = _mm512_mask_mov_ps(best, t, v2);
        at = _mm512_mask_add_epi32(at, t, base, _mm512_set1_epi32(w));
        t = _mm512_cmp_ps_mask(v3, best, _CMP_NLE_UQ) & _mm512_cmp_ps_mask(best, best, _CMP_ORD_Q);
        best = _mm512_mask_mov_ps(best, t, v3);
        at = _mm512_mask_add_epi32(at, t, base, _mm512_set1_epi32(w + 1));
        _mm512_mask_storeu_ps(y + j, ms, best);
        _mm512_mask_storeu_epi32(q + j, ms, at);
    }
}
#endif

/* One pooled row of plane `src` (rows 2r, 2r+1; o0 = flat index of its first
 * element in x): the window maxima into y and their indices into q. */
static void pool_row(const float *src, int64_t r, int64_t w, int64_t ow, int32_t o0, float *y, int32_t *q) {
#if defined(ML_HAVE_AVX512_PATH)
    if (ow >= 4 && ML_CPU_HAS_AVX512()) { /* narrower rows (3x3 -> 1x1) take the scalar loop */
        pool_row_avx512(src + 2 * r * w, src + (2 * r + 1) * w, o0, (int32_t)w, ow, y, q);
        return;
    }
#endif
    pool_row_scalar(src + 2 * r * w, src + (2 * r + 1) * w, o0, (int32_t)w, 0, ow, y, q);
}

ML_KERNEL static void pool_range(void *arg, int64_t lo, int64_t hi) {
    const pool_job *j = arg;
    const int64_t h = j->h, w = j->w, oh = j->oh, ow = j->ow;
    for (int64_t p = lo; p < hi; p++)
        for (int64_t i = 0; i < oh; i++)
            pool_row(j->x + p * h * w, i, w, ow, (int32_t)(p * h * w + 2 * i * w), j->y + (p * oh + i) * ow,
                     j->idx + (p * oh + i) * ow);
}

ml_tensor *ml_maxpool2x2(ml_ctx *ctx, ml_tensor *x) {
    if (!x || ctx->status != ML_OK) return NULL;
    if (x->ndim != 4 || x->shape[2] < 2 || x->shape[3] < 2) {
        char b[64];
        return ml_ctx_fail(ctx, ML_ERR_SHAPE, "maxpool2x2: input %s (want [N,C,H,W] with H,W >= 2)",
                           ml_shape_str(x, b, sizeof b));
    }
    if (x->numel > INT32_MAX) return ml_ctx_fail(ctx, ML_ERR_SHAPE, "maxpool2x2: input too large");
    int64_t nc = x->shape[0] * x->shape[1], h = x->shape[2], w = x->shape[3];
    int64_t oh = h / 2, ow = w / 2;
    int32_t *idx = ml_ctx_alloc(ctx, (size_t)(nc * oh * ow) * sizeof(int32_t) + 4);
    if (!idx) return NULL;
    ml_tensor *t = ml_tensor_new(ctx, 4, ML_SHAPE(x->shape[0], x->shape[1], oh, ow));
    if (!t) return NULL;
    pool_job j = {h, w, oh, ow, x->data, t->data, idx};
    ML__PAR_RUN(nc, x->numel, 1, pool_range, &j);
    ml_node *nd = ml__record(ctx, ML_OP_GATHER, t, x, NULL);
    if (nd) nd->index = idx;
    return t;
}

ml_tensor *ml_global_avgpool(ml_ctx *ctx, ml_tensor *x) {
    if (!x || ctx->status != ML_OK) return NULL;
    if (x->ndim != 4) return ml_ctx_fail(ctx, ML_ERR_SHAPE, "global_avgpool: input must be [N,C,H,W]");
    return ml_mean(ctx, x, (1u << 2) | (1u << 3), 0);
}

/* ---- batch norm ------------------------------------------------------------------------
 * y = normalize(x) * gamma + beta with statistics over every dim but the
 * channel (dim 1). normalize is one fused op (two passes over x); its
 * backward runs fused, or as recorded composite ops under create_graph so
 * that second derivatives exist (see autograd/backward.c). */

/* Channel c's elements of x [N, C, S] (S = H*W, or 1 for [N, C]) are N runs
 * of S contiguous floats. Channels are independent, so the kernels below
 * split channels over threads; each channel's sums run in one fixed order
 * (per run: sixteen float lanes, then the tail, into a double; runs in image
 * order), whatever the thread count. */
typedef struct bn_job {
    int64_t n, c, sp;
    float eps;
    const float *x, *h; /* forward: x; backward: g (x) and xhat (h) */
    const float *inv_in;
    float *y, *inv, *mean_out, *var_out;
} bn_job;

/* Channel sums below accumulate one run (one image's plane, at most a few
 * thousand floats) in sixteen float lanes, then add the run's total into a
 * double. Sums of at most ~50 terms per lane lose nothing that matters; the
 * all-double version (8 lanes plus a conversion per load) took a third of
 * the fused backward's time. The order is fixed, whatever the thread count. */
typedef int ml_v16i __attribute__((vector_size(64)));

ML_INLINE double hsum16f(ml_v16f a) {
    double s = 0;
    for (int i = 0; i < 16; i++) s += a[i];
    return s;
}

/* One plane's run of the channel sums below: sixteen float lanes over the
 * plane, their total in double, then the tail. next: the plane to fetch
 * ahead (the channel's planes are c planes apart: each is a new stream the
 * hardware prefetcher must discover). */
ML_INLINE double plane_sum_run(const float *p, int64_t sp, const float *next) {
    ml_v16f acc = {0};
    int64_t k = 0;
    for (; k + 16 <= sp; k += 16) {
        __builtin_prefetch(next + k);
        acc += ml__load16f(p + k);
    }
    double r = hsum16f(acc);
    for (; k < sp; k++) r += p[k];
    return r;
}

/* The same for the squared deviations from the mean (mf = (float)mean). */
ML_INLINE double plane_sq_run(const float *p, int64_t sp, float mf, double mean) {
    ml_v16f acc = {0};
    int64_t k = 0;
    for (; k + 16 <= sp; k += 16) {
        ml_v16f d = ml__load16f(p + k) - mf;
        acc += d * d;
    }
    double r = hsum16f(acc);
    for (; k < sp; k++) {
        double d = p[k] - mean;
        r += d * d;
    }
    return r;
}

/* Mean and (biased) variance of channel ch: the mean first, then the sum of
 * squared deviations from it (one pass of sum and sum of squares would lose
 * the variance of a channel whose mean is large against its spread). */
ML_KERNEL static void channel_stats(const float *x, int64_t n, int64_t c, int64_t sp, int64_t ch, double *mean_out,
                          double *var_out) {
    const double count = (double)(n * sp);
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *p = x + (i * c + ch) * sp;
        s += plane_sum_run(p, sp, i + 1 < n ? p + c * sp : p);
    }
    const double mean = s / count;
    const float mf = (float)mean;
    double s2 = 0;
    for (int64_t i = 0; i < n; i++) s2 += plane_sq_run(x + (i * c + ch) * sp, sp, mf, mean);
    *mean_out = mean;
    *var_out = s2 / count;
}

/* The two sums of a normalisation's backward over one channel's n runs of
 * `run` floats, run i at i * stride: s1 = sum g1, s2 = sum g1 * xhat, with
 * xhat = (x - xm) * xs and g1 = g, or g * [y > 0] when y is given (the ReLU
 * after it). Lanes and order as in channel_stats. */
ML_KERNEL static void grad_sums(const float *g, const float *x, const float *y, int64_t n, int64_t stride, int64_t run, float xm,
                      float xs, double *s1_out, double *s2_out) {
    double s1 = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *gp = g + i * stride, *xp = x + i * stride, *yp = y ? y + i * stride : NULL;
        ml_v16f a1 = {0}, a2 = {0};
        int64_t k = 0;
        for (; k + 16 <= run; k += 16) {
            ml_v16f g1 = ml__load16f(gp + k);
            if (yp) g1 = (ml_v16f)((ml_v16i)g1 & (ml__load16f(yp + k) > 0.f));
            a1 += g1;
            a2 += g1 * ((ml__load16f(xp + k) - xm) * xs);
        }
        double r1 = hsum16f(a1), r2 = hsum16f(a2);
        for (; k < run; k++) {
            const float g1 = !yp || yp[k] > 0.f ? gp[k] : 0.f;
            r1 += g1;
            r2 += g1 * ((xp[k] - xm) * xs);
        }
        s1 += r1, s2 += r2;
    }
    *s1_out = s1, *s2_out = s2;
}

/* grad_sums of a pooled node: the ReLU gate from its codes' ML__POOL_GATE bit
 * instead of y > 0 (the same bit, a quarter of the bytes); x is the saved
 * xhat (xm = 0, xs = 1). Same operations in the same order: same sums. */
#if defined(ML_HAVE_AVX512_PATH)
/* Sixteen lanes of one run: the gated sums into *a1, *a2 (GCC turned the
 * generic vector byte widening into scalar code). Returns where it stopped. */
ML_TARGET_AVX512 static int64_t gated_lanes_avx512(const float *gp, const float *xp, const uint8_t *cp, int64_t run,
                                                   int64_t next, float xm, float xs, ml_v16f *a1, ml_v16f *a2) {
    const __m512 vxm = _mm512_set1_ps(xm), vxs = _mm512_set1_ps(xs);
    const __m512i gbit = _mm512_set1_epi32(ML__POOL_GATE);
    __m512 s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= run; k += 16) {
        /* the next run is a new stream (runs are c planes apart): fetch it ahead, as channel_stats */
        __builtin_prefetch(gp + next + k), __builtin_prefetch(xp + next + k), __builtin_prefetch(cp + next + k);
        const __mmask16 gate =
            _mm512_test_epi32_mask(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(cp + k))), gbit);
        const __m512 g1 = _mm512_maskz_loadu_ps(gate, gp + k);
        s1 = _mm512_add_ps(s1, g1);
        s2 = _mm512_add_ps(s2, _mm512_mul_ps(g1, _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(xp + k), vxm), vxs)));
    }
    memcpy(a1, &s1, sizeof *a1), memcpy(a2, &s2, sizeof *a2);
    return k;
}
#endif

ML_KERNEL static void grad_sums_gated(const float *g, const float *x, const uint8_t *code, int64_t n, int64_t stride,
                                      int64_t run, float xm, float xs, double *s1_out, double *s2_out) {
    double s1 = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *gp = g + i * stride, *xp = x + i * stride;
        const uint8_t *cp = code + i * stride;
        ml_v16f a1 = {0}, a2 = {0};
        int64_t k = 0;
#if defined(ML_HAVE_AVX512_PATH)
        if (ML_CPU_HAS_AVX512()) k = gated_lanes_avx512(gp, xp, cp, run, i + 1 < n ? stride : 0, xm, xs, &a1, &a2);
#endif
        for (; k + 16 <= run; k += 16) {
            ml_v16i gate;
            for (int l = 0; l < 16; l++) gate[l] = cp[k + l] & ML__POOL_GATE ? -1 : 0;
            const ml_v16f g1 = (ml_v16f)((ml_v16i)ml__load16f(gp + k) & gate);
            a1 += g1;
            a2 += g1 * ((ml__load16f(xp + k) - xm) * xs);
        }
        double r1 = hsum16f(a1), r2 = hsum16f(a2);
        for (; k < run; k++) {
            const float g1 = cp[k] & ML__POOL_GATE ? gp[k] : 0.f;
            r1 += g1;
            r2 += g1 * ((xp[k] - xm) * xs);
        }
        s1 += r1, s2 += r2;
    }
    *s1_out = s1, *s2_out = s2;
}

ML_KERNEL static void normalize_range(void *arg, int64_t lo, int64_t hi) {
    const bn_job *j = arg;
    const int64_t n = j->n, c = j->c, sp = j->sp;
    for (int64_t ch = lo; ch < hi; ch++) {
        double mean, var;
        channel_stats(j->x, n, c, sp, ch, &mean, &var);
        const float is = (float)(1.0 / sqrt(var + j->eps)), m = (float)mean;
        j->inv[ch] = is;
        for (int64_t i = 0; i < n; i++) {
            const float *p = j->x + (i * c + ch) * sp;
            float *q = j->y + (i * c + ch) * sp;
            for (int64_t k = 0; k < sp; k++) q[k] = (p[k] - m) * is;
        }
        if (j->mean_out) j->mean_out[ch] = m;
        if (j->var_out) j->var_out[ch] = (float)var;
    }
}

ml_tensor *ml__normalize(ml_ctx *ctx, ml_tensor *x, float eps, float *mean_out, float *var_out) {
    if (!x || ctx->status != ML_OK) return NULL;
    int64_t n = x->shape[0], c = x->shape[1], nc = n * c, sp = nc ? x->numel / nc : 0;
    ml_tensor *t = ml_tensor_new(ctx, x->ndim, x->shape);
    float *inv = ml_ctx_alloc(ctx, (size_t)c * sizeof(float));
    if (!t || !inv) return NULL;
    bn_job j = {.n = n, .c = c, .sp = sp, .eps = eps, .x = x->data, .y = t->data, .inv = inv,
                .mean_out = mean_out, .var_out = var_out};
    ML__PAR_RUN(c, 3 * x->numel, 1, normalize_range, &j);
    ml_node *nd = ml__record(ctx, ML_OP_NORMALIZE, t, x, NULL);
    if (nd) {
        nd->aux = inv;
        nd->fp = eps;
    }
    return t;
}

ML_KERNEL static void normalize_backward_range(void *arg, int64_t lo, int64_t hi) {
    const bn_job *j = arg;
    const int64_t n = j->n, c = j->c, sp = j->sp;
    const double count = (double)(n * sp);
    for (int64_t ch = lo; ch < hi; ch++) {
        double sg, sgh;
        grad_sums(j->x + ch * sp, j->h + ch * sp, NULL, n, c * sp, sp, 0.f, 1.f, &sg, &sgh);
        const float mg = (float)(sg / count), mgh = (float)(sgh / count), is = j->inv_in[ch];
        for (int64_t i = 0; i < n; i++) {
            const float *gp = j->x + (i * c + ch) * sp, *hp = j->h + (i * c + ch) * sp;
            float *q = j->y + (i * c + ch) * sp;
            for (int64_t k = 0; k < sp; k++) q[k] = is * (gp[k] - mg - hp[k] * mgh);
        }
    }
}

/* Fused backward of normalize: dx = inv * (g - mean(g) - xhat * mean(g * xhat)). */
ml_tensor *ml__normalize_backward_fused(ml_ctx *ctx, ml_tensor *g, ml_tensor *xhat, const float *inv) {
    if (!g || ctx->status != ML_OK) return NULL;
    int64_t n = g->shape[0], c = g->shape[1], nc = n * c, sp = nc ? g->numel / nc : 0;
    ml_tensor *t = ml_tensor_new(ctx, g->ndim, g->shape);
    if (!t) return NULL;
    bn_job j = {.n = n, .c = c, .sp = sp, .x = g->data, .h = xhat->data, .inv_in = inv, .y = t->data};
    ML__PAR_RUN(c, 2 * g->numel, 1, normalize_backward_range, &j);
    return t;
}

/* ---- batch norm + ReLU (+ 2x2 max-pool), fused -----------------------------------------
 * y = relu(normalize(x) * gamma + beta) in batch-statistics mode, optionally
 * followed by the 2x2 max-pool: the whole of a conv block after the conv.
 * As separate ops this is normalize, mul, add, relu, pool, then memset +
 * scatter, relu_mask, two sums, two muls and normalize's backward: about
 * fifteen memory-bound passes over the block's largest tensor, 40% of a
 * ProtoNet step (profiled). Fused:
 *   forward: the channel's statistics (two reads of x, the second from L2:
 *     one channel of a batch is ~150 KB), then one more read of x writing y,
 *     or with the pool only the pooled y, its argmax and xhat there;
 *   backward: xhat is recomputed from x and the saved mean and inv; without
 *     the pool g, y and x are read twice (the second time from L2) and dx
 *     written once; with it the sums run over the pooled tensors alone (the
 *     gradient is zero off the argmax) and x is read once, writing dx.
 * The pool: relu and max commute, and z = x * scale + shift is increasing in
 * x when scale = gamma * inv > 0, so the window's argmax is taken on x itself
 * (on a plane of z when scale <= 0). PyTorch takes it after the ReLU; the two
 * differ only in a window whose values are all <= 0, whose output is 0 and
 * whose gradient is zero either way. */
typedef struct bnr_job {
    int64_t n, c, h, w;
    int pool;
    int blocked; /* backward: x and the codes in nChw16c (conv_bn_blk16.c) */
    float eps;
    const float *x, *gamma, *beta, *y, *g;
    float *out, *mean, *inv, *var_out, *dgamma, *dbeta, *scratch;
    float *xhat_at;       /* pool: xhat at each window's argmax, so the backward gathers nothing */
    float *coef;          /* pooled backward: gamma * inv, mean(g1), mean(g1 * xhat) per channel */
    const float *xhat_in;
    int32_t *rows;        /* pool: one row of flat argmax indices per channel (pool_row's output) */
    uint8_t *code;        /* pool: where in its 2x2 window each output's argmax is, and the gate (ML__POOL_GATE) */
    const uint8_t *code_in;
    int vector_dx;        /* pooled backward: the one-sweep AVX-512 dx (pool_dx_plane_avx512) */
    /* The conv inside the forward (ml__conv_bn_relu_pool_direct): x is not
     * there; plane (i, ch) is the 3x3 conv of image i of conv_x (conv_c
     * channels) with channel ch's weights, computed when a step needs it. */
    const float *conv_x, *conv_w;
    int64_t conv_c;
    float *planes;        /* per thread: planes_per floats (its images' planes, then one more) */
    int64_t planes_per;
} bnr_job;

/* The argmax of a 2x2 window as 2 * (row in the window) + (column): a byte
 * instead of a 4-byte flat index, a quarter of the pooled tensor's size less
 * to keep per block until the backward. at = flat index, o = flat index of
 * the window's top-left element. */
static inline uint8_t window_code(int32_t at, int32_t o, int32_t w) {
    const int32_t d = at - o; /* 0, 1, w or w + 1 */
    return (uint8_t)(d - (d >= w) * (w - 2));
}

/* A row's codes; restrict-qualified locals, because a byte store may alias
 * anything and would otherwise keep the loop from vectorising. */
static inline void row_codes(uint8_t *restrict code, const int32_t *restrict q, int64_t ow, int32_t o0, int32_t w) {
    for (int64_t k = 0; k < ow; k++) code[k] = window_code(q[k], o0 + 2 * (int32_t)k, w);
}

/* Unlike the plain ReLU op (NaN -> 0), a NaN stays NaN here, so a diverging
 * batch reaches the loss and the run's NaN check instead of vanishing. */
static inline float relu_keep_nan(float v) { return v > 0.f || v != v ? v : 0.f; }

int ml__bn_pool_rowwise = 0;

#if defined(ML_HAVE_AVX512_PATH)
/* Sixteen 2x2 windows of a row pair (rows s0, s1, from output column j of
 * ow): each window's four pixels as four vectors in pool_row_avx512's order
 * (row 0 even and odd columns, then row 1's), zero past the row's end, and
 * the mask of the windows inside it. */
typedef struct pool_windows {
    __m512 v[4];
    __mmask16 inside;
} pool_windows;

ML_TARGET_AVX512 static inline pool_windows pool_windows_avx512(const float *s0, const float *s1, int64_t j,
                                                                int64_t ow) {
    const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i od = _mm512_add_epi32(ev, _mm512_set1_epi32(1));
    const int64_t left = ow - j, cols = left >= 16 ? 32 : 2 * left, o = 2 * j;
    const __mmask16 m0 = (__mmask16)(cols >= 16 ? 0xFFFF : (1u << cols) - 1);
    const __mmask16 m1 = (__mmask16)(cols >= 32 ? 0xFFFF : cols > 16 ? (1u << (cols - 16)) - 1 : 0);
    const __m512 a0 = _mm512_maskz_loadu_ps(m0, s0 + o), a1 = _mm512_maskz_loadu_ps(m1, s0 + o + 16);
    const __m512 b0 = _mm512_maskz_loadu_ps(m0, s1 + o), b1 = _mm512_maskz_loadu_ps(m1, s1 + o + 16);
    return (pool_windows){{_mm512_permutex2var_ps(a0, ev, a1), _mm512_permutex2var_ps(a0, od, a1),
                           _mm512_permutex2var_ps(b0, ev, b1), _mm512_permutex2var_ps(b0, od, b1)},
                          (__mmask16)(left >= 16 ? 0xFFFF : (1u << left) - 1)};
}

/* The pooled forward of one plane, 16 outputs per step, everything kept in
 * registers: the window maxima of src (x itself, or z = x * scale + shift
 * when scale <= 0) taken exactly as pool_row_avx512 takes them, x at each
 * argmax carried along under the same masks, then xhat there, the output
 * (the ReLU keeps NaN) and the code (window place | gate) stored as bytes. The
 * arithmetic is the row-by-row path's, operation for operation (no
 * contraction in this file), so the bits are the same; what goes is its
 * per-row int32 argmax buffer, the scalar code loop and the scalar tail
 * loops, which took most of the fused forward's time (profiled), more than
 * its passes over memory. Stores are full width wherever the lanes past the
 * row's end fall inside this plane (a later step rewrites them): masked
 * stores, above all the masked byte narrowing, held a third of this kernel's
 * samples on AMD Zen 4 (every store of a 28x28 plane is 14 lanes wide). */
ML_TARGET_AVX512 static void bn_pool_plane_avx512(const float *src, const float *x, int64_t w, int64_t oh,
                                                  int64_t ow, float m, float is, float scale, float shift,
                                                  float *y, float *xa, uint8_t *code) {
    const __m512 vm = _mm512_set1_ps(m), vis = _mm512_set1_ps(is), vsc = _mm512_set1_ps(scale),
                 vsh = _mm512_set1_ps(shift), zero = _mm512_setzero_ps();
    const int on_x = src == x;
    const int64_t psp = oh * ow;
    for (int64_t r = 0; r < oh; r++) {
        const float *s0 = src + 2 * r * w, *s1 = s0 + w, *x0 = x + 2 * r * w, *x1 = x0 + w;
        for (int64_t j = 0; j < ow; j += 16) {
            const pool_windows sw = pool_windows_avx512(s0, s1, j, ow);
            const pool_windows xw = on_x ? sw : pool_windows_avx512(x0, x1, j, ow);
            const __mmask16 ms = sw.inside;
            __m512 best = sw.v[0], bx = xw.v[0];
            const __m512i cd =
                ml__pool4_argmax_avx512(&best, &bx, sw.v[1], sw.v[2], sw.v[3], xw.v[1], xw.v[2], xw.v[3]);
            const __m512 xh = _mm512_mul_ps(_mm512_sub_ps(bx, vm), vis);
            const __m512 z = on_x ? _mm512_add_ps(_mm512_mul_ps(best, vsc), vsh) : best;
            const __mmask16 gate = _mm512_cmp_ps_mask(z, zero, _CMP_GT_OQ);
            const __mmask16 keep = gate | _mm512_cmp_ps_mask(z, z, _CMP_UNORD_Q);
            const int64_t at = r * ow + j;
            const __m512 yo = _mm512_maskz_mov_ps(keep, z);
            const __m512i co = _mm512_mask_or_epi32(cd, gate, cd, _mm512_set1_epi32(ML__POOL_GATE));
            if (at + 16 <= psp) { /* lanes past `left` land on later windows of this plane: rewritten below */
                _mm512_storeu_ps(y + at, yo);
                _mm512_storeu_ps(xa + at, xh);
                _mm_storeu_si128((__m128i *)(code + at), _mm512_cvtepi32_epi8(co));
            } else {
                _mm512_mask_storeu_ps(y + at, ms, yo);
                _mm512_mask_storeu_ps(xa + at, ms, xh);
                _mm512_mask_cvtepi32_storeu_epi8(code + at, ms, co);
            }
        }
    }
}

/* The same for a forward with no backward to follow (not recording): the
 * outputs alone, from the window maxima by the same compares and the same
 * arithmetic (the same bits); no argmax, no xhat, no codes. */
ML_TARGET_AVX512 static void bn_pool_plane_y_avx512(const float *src, int on_x, int64_t w, int64_t oh, int64_t ow,
                                                    float scale, float shift, float *y) {
    const __m512 vsc = _mm512_set1_ps(scale), vsh = _mm512_set1_ps(shift), zero = _mm512_setzero_ps();
    const int64_t psp = oh * ow;
    for (int64_t r = 0; r < oh; r++) {
        const float *s0 = src + 2 * r * w, *s1 = s0 + w;
        for (int64_t j = 0; j < ow; j += 16) {
            const pool_windows sw = pool_windows_avx512(s0, s1, j, ow);
            __m512 best = sw.v[0];
            ml__pool4_max_avx512(&best, sw.v[1], sw.v[2], sw.v[3]);
            const __m512 z = on_x ? _mm512_add_ps(_mm512_mul_ps(best, vsc), vsh) : best;
            const __mmask16 keep = _mm512_cmp_ps_mask(z, zero, _CMP_GT_OQ) | _mm512_cmp_ps_mask(z, z, _CMP_UNORD_Q);
            const int64_t at = r * ow + j;
            const __m512 yo = _mm512_maskz_mov_ps(keep, z);
            if (at + 16 <= psp)
                _mm512_storeu_ps(y + at, yo);
            else
                _mm512_mask_storeu_ps(y + at, sw.inside, yo);
        }
    }
}
#endif

/* Whether a plane of width w takes the whole-plane AVX-512 forward (narrow
 * rows, 3x3 -> 1x1 and 7x7 -> 3x3, take the row-by-row path, as pool_row).
 * The backward's dx pass takes its one-sweep kernel (pool_dx_plane_avx512)
 * on even widths >= 16 with the same switch (the row-by-row flag keeps the
 * scalar pass, its twin). */
static int bn_pool_vector(int64_t ow) {
#if defined(ML_HAVE_AVX512_PATH)
    return ow >= 4 && !ml__bn_pool_rowwise && ML_CPU_HAS_AVX512();
#else
    (void)ow;
    return 0;
#endif
}

/* One plane (image i, channel ch) of the pooled forward: the window maxima
 * of x (scale > 0) or of z = x * scale + shift in the plane z, the output,
 * xhat at each argmax and the codes (the output alone when j->code is NULL:
 * no backward to follow). q: one row of argmax indices. */
ML_INLINE void pool_plane(const bnr_job *j, int64_t i, int64_t ch, const float *p, float m, float is, float scale,
                          float shift, float *z, int32_t *q, int vec) {
    const int64_t c = j->c, h = j->h, w = j->w, sp = h * w, oh = h / 2, ow = w / 2;
    const int64_t off = (i * c + ch) * sp;
    const float *src = p;
    if (!(scale > 0.f)) { /* pool z itself: decreasing (or flat) in x */
        for (int64_t k = 0; k < sp; k++) z[k] = p[k] * scale + shift;
        src = z;
    }
#if defined(ML_HAVE_AVX512_PATH)
    if (vec) {
        const int64_t poff = (i * c + ch) * oh * ow;
        if (!j->code)
            bn_pool_plane_y_avx512(src, src == p, w, oh, ow, scale, shift, j->out + poff);
        else
            bn_pool_plane_avx512(src, p, w, oh, ow, m, is, scale, shift, j->out + poff, j->xhat_at + poff,
                                 j->code + poff);
        return;
    }
#else
    (void)vec;
#endif
    for (int64_t r = 0; r < oh; r++) {
        const int64_t poff = ((i * c + ch) * oh + r) * ow;
        float *y = j->out + poff;
        const int32_t o0 = (int32_t)(off + 2 * r * w);
        pool_row(src, r, w, ow, o0, y, q);
        if (!j->code) { /* the output alone */
            for (int64_t k = 0; k < ow; k++) y[k] = relu_keep_nan(src == p ? y[k] * scale + shift : y[k]);
            continue;
        }
        float *xa = j->xhat_at + poff;
        row_codes(j->code + poff, q, ow, o0, (int32_t)w);
        if (src == p) { /* y holds the window's max of x */
            for (int64_t k = 0; k < ow; k++) {
                xa[k] = (y[k] - m) * is;
                y[k] = relu_keep_nan(y[k] * scale + shift);
            }
        } else { /* y holds the max of z; x at the argmax is in L1 */
            for (int64_t k = 0; k < ow; k++) {
                xa[k] = (j->x[q[k]] - m) * is;
                y[k] = relu_keep_nan(y[k]);
            }
        }
        uint8_t *restrict cd = j->code + poff;
        const float *restrict yo = y;
        for (int64_t k = 0; k < ow; k++) cd[k] |= (uint8_t)(yo[k] > 0.f) * ML__POOL_GATE;
    }
}

ML_KERNEL static void bn_relu_range(void *arg, int64_t lo, int64_t hi) {
    const bnr_job *j = arg;
    const int64_t n = j->n, c = j->c, sp = j->h * j->w, ow = j->w / 2;
    for (int64_t ch = lo; ch < hi; ch++) {
        double mean, var;
        channel_stats(j->x, n, c, sp, ch, &mean, &var);
        const float is = (float)(1.0 / sqrt(var + j->eps)), m = (float)mean;
        /* (x - m) * is * gamma + beta, as one multiply-add */
        const float scale = is * j->gamma[ch], shift = j->beta[ch] - m * scale;
        const int vec = j->pool && bn_pool_vector(ow);
        for (int64_t i = 0; i < n; i++) {
            if (j->pool) { /* z: this channel's own plane, q its own row: no sharing between threads */
                pool_plane(j, i, ch, j->x + (i * c + ch) * sp, m, is, scale, shift, j->scratch + ch * sp,
                           j->rows + ch * ow, vec);
                continue;
            }
            const int64_t off = (i * c + ch) * sp;
            const float *p = j->x + off;
            float *q = j->out + off;
            for (int64_t k = 0; k < sp; k++) q[k] = relu_keep_nan(p[k] * scale + shift);
        }
        j->mean[ch] = m;
        j->inv[ch] = is;
        if (j->var_out) j->var_out[ch] = (float)var;
    }
}

/* The pooled forward of channels [lo, hi) of n images with the statistics
 * given (mean, inv per channel), as bn_relu_range runs it once it has them:
 * the same scale and shift, the same plane kernel, so the same bits for the
 * same statistics. For block 1's lean query pass (conv_bn_pool_lean.c),
 * which takes its statistics from the images' patch moments and runs the
 * conv in chunks of images. scratch: c * h * w floats, rows: c * (w / 2) + 1
 * int32 (per channel, so channel ranges can run side by side). */
void ml__bn_pool_planes_with_stats(const float *x, int64_t n, int64_t c, int64_t h, int64_t w, const float *mean,
                                   const float *inv, const float *gamma, const float *beta, float *y,
                                   float *xhat_at, uint8_t *code, float *scratch, int32_t *rows, int64_t lo,
                                   int64_t hi) {
    bnr_job j = {.n = n, .c = c, .h = h, .w = w, .pool = 1, .x = x, .out = y, .xhat_at = xhat_at, .code = code};
    const int64_t sp = h * w, ow = w / 2;
    const int vec = bn_pool_vector(ow);
    for (int64_t ch = lo; ch < hi; ch++) {
        const float m = mean[ch], is = inv[ch], scale = is * gamma[ch], shift = beta[ch] - m * scale;
        for (int64_t i = 0; i < n; i++)
            pool_plane(&j, i, ch, x + (i * c + ch) * sp, m, is, scale, shift, scratch + ch * sp, rows + ch * ow, vec);
    }
}

/* Threads inside the op split by images, when there are some to split. */
static int bn_relu_image_threads(int64_t n, int64_t work) {
    if (n < 2 || work < ML_PAR_MIN_ELEMS || omp_in_parallel()) return 1;
    const int t = omp_get_max_threads();
    return t < n ? t : (int)n;
}

#if defined(ML_HAVE_AVX512_PATH)
/* The window maxima of a plane of x and their places (codes without the
 * gate), 16 windows per step, as bn_pool_plane_avx512 takes them on x; full
 * stores where the lanes stay in the plane, as there. */
ML_TARGET_AVX512 static void pool_max_plane_avx512(const float *x, int64_t w, int64_t oh, int64_t ow, float *y,
                                                   uint8_t *code) {
    const int64_t psp = oh * ow;
    for (int64_t r = 0; r < oh; r++) {
        const float *s0 = x + 2 * r * w, *s1 = s0 + w;
        for (int64_t j = 0; j < ow; j += 16) {
            const pool_windows pw = pool_windows_avx512(s0, s1, j, ow);
            const __mmask16 ms = pw.inside;
            __m512 best = pw.v[0], bx = best;
            const __m512i cd =
                ml__pool4_argmax_avx512(&best, &bx, pw.v[1], pw.v[2], pw.v[3], pw.v[1], pw.v[2], pw.v[3]);
            const int64_t at = r * ow + j;
            if (at + 16 <= psp) {
                _mm512_storeu_ps(y + at, best);
                _mm_storeu_si128((__m128i *)(code + at), _mm512_cvtepi32_epi8(cd));
            } else {
                _mm512_mask_storeu_ps(y + at, ms, best);
                _mm512_mask_cvtepi32_storeu_epi8(code + at, ms, cd);
            }
        }
    }
}

/* The maxima alone (no backward to follow), by the same compares. */
ML_TARGET_AVX512 static void pool_maxima_plane_avx512(const float *x, int64_t w, int64_t oh, int64_t ow, float *y) {
    const int64_t psp = oh * ow;
    for (int64_t r = 0; r < oh; r++) {
        const float *s0 = x + 2 * r * w, *s1 = s0 + w;
        for (int64_t j = 0; j < ow; j += 16) {
            const pool_windows pw = pool_windows_avx512(s0, s1, j, ow);
            __m512 best = pw.v[0];
            ml__pool4_max_avx512(&best, pw.v[1], pw.v[2], pw.v[3]);
            const int64_t at = r * ow + j;
            if (at + 16 <= psp)
                _mm512_storeu_ps(y + at, best);
            else
                _mm512_mask_storeu_ps(y + at, pw.inside, best);
        }
    }
}
#endif

/* Block 1's pooled forward with the threads split by images.
 *
 * The conv before it ran side-by-side chunks (conv_dnnl.c: thread t the
 * images [n t / T, n (t + 1) / T)), and the backward's sums and dx pass and
 * the next conv's chunks read by those images too; the channel loop
 * (bn_relu_range) wrote half of each thread's planes on the other core. A
 * split by images that passes over all of x three times, one pass per
 * statistic (round 7), lost the channel loop's reuse of a channel's planes
 * in L2. Here each thread walks the channels in step with the others, on its
 * own images: at step k it takes channel k's runs of sums and, where gamma >
 * 0 (then scale = inv * gamma > 0: the pool is of x itself, known before the
 * statistics), the window maxima and their places; once every thread's runs
 * of channel k are in, the mean (the runs added in image order) and the runs
 * of squared deviations from it (the planes still in L2); then channel
 * k - 1's outputs from the pooled maxima (a quarter of the plane). The runs
 * and the additions are channel_stats's, the outputs pool_plane's: the same
 * bits. A channel with gamma <= 0 (or whose scale underflows to 0) pools its
 * planes the channel loop's way at its last step. Threads wait for each
 * other per channel on progress counters instead of at barriers. */
enum { BNR_DONE_STRIDE = 16, BNR_TIME_STRIDE = 8, BNR_SPLIT_MAX_THREADS = 16 };

typedef struct bnr_steps {
    /* per channel, image by image (a step's lines are its channel's alone):
     * the runs of sums, of squared deviations */
    double *run1, *run2;
    double *mean;        /* per thread: each channel's mean */
    atomic_int *done;    /* per thread, 64 bytes apart: [0] channels whose runs of sums are in, [1] of squares */
    int64_t lo, hi;      /* this thread's images in this step */
    float *own;          /* the conv inside: this thread's planes of the step's channel (cap of them) */
    float *spare;        /* the conv inside: one more plane */
    double *per_image;   /* split by speed: per thread, 64 bytes apart, its last two steps' seconds per image */
    int64_t cap;         /* split by speed: the most images a thread takes in a step */
    int carried;         /* split by speed: carried_per holds the last forward's estimates */
    double carried_per[BNR_SPLIT_MAX_THREADS];
} bnr_steps;

static void bnr_publish(atomic_int *done, int t, int which, int64_t channels) {
    atomic_store_explicit(&done[t * BNR_DONE_STRIDE + which], (int)channels, memory_order_release);
}

static int bnr_done(atomic_int *done, int u, int which) {
    return atomic_load_explicit(&done[u * BNR_DONE_STRIDE + which], memory_order_acquire);
}

/* Until every thread has published `channels` (spinning: the other thread is
 * a few microseconds behind, as a rule). */
static void bnr_wait(atomic_int *done, int nt, int which, int64_t channels) {
    for (int u = 0; u < nt; u++)
        for (unsigned spins = 1; bnr_done(done, u, which) < channels; spins++) {
            if (spins % 4096 == 0)
                sched_yield(); /* the other thread may have lost its core (a loaded machine) */
#if defined(__x86_64__) || defined(__i386__)
            else
                __builtin_ia32_pause();
#endif
        }
}

/* Plane (i, ch) of the conv inside the forward, computed into `to`. */
static const float *conv_plane(const bnr_job *j, int64_t i, int64_t ch, float *to) {
    const int64_t sp = j->h * j->w;
    ml__conv3x3_plane(j->conv_x + i * j->conv_c * sp, j->conv_c, j->h, j->w, j->conv_w + ch * j->conv_c * 9, to);
    return to;
}

/* Plane (i, ch) of x for the thread's step: in x, or with the conv inside
 * computed now into the thread's planes (where the squares find it). */
static const float *step_plane(const bnr_job *j, const bnr_steps *s, int64_t i, int64_t ch) {
    if (!j->conv_x) return j->x + (i * j->c + ch) * j->h * j->w;
    return conv_plane(j, i, ch, s->own + (i - s->lo) * j->h * j->w);
}

/* Channel ch's runs of sums over the thread's images; where gamma > 0 also
 * the window maxima of x into out and their places into code. */
ML_KERNEL static void bnr_step_sums(const bnr_job *j, const bnr_steps *s, int64_t ch, int32_t *q, int vec) {
    const int64_t c = j->c, h = j->h, w = j->w, sp = h * w, oh = h / 2, ow = w / 2;
    const int on_x = j->gamma[ch] > 0.f;
    (void)vec;
    for (int64_t i = s->lo; i < s->hi; i++) {
        const float *p = step_plane(j, s, i, ch);
        s->run1[ch * j->n + i] = plane_sum_run(p, sp, i + 1 < s->hi && !j->conv_x ? p + c * sp : p);
        if (!on_x) continue;
        const int64_t poff = (i * c + ch) * oh * ow;
#if defined(ML_HAVE_AVX512_PATH)
        if (vec) {
            if (!j->code)
                pool_maxima_plane_avx512(p, w, oh, ow, j->out + poff);
            else
                pool_max_plane_avx512(p, w, oh, ow, j->out + poff, j->code + poff);
            continue;
        }
#endif
        for (int64_t r = 0; r < oh; r++) {
            const int32_t o0 = (int32_t)((i * c + ch) * sp + 2 * r * w);
            pool_row(p, r, w, ow, o0, j->out + poff + r * ow, q);
            if (j->code) row_codes(j->code + poff + r * ow, q, ow, o0, (int32_t)w);
        }
    }
}

/* Channel ch's mean from every thread's runs, then the runs of squared
 * deviations from it over the thread's images. */
ML_KERNEL static void bnr_step_squares(const bnr_job *j, const bnr_steps *s, int t, int64_t ch) {
    const int64_t n = j->n, c = j->c, sp = j->h * j->w;
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += s->run1[ch * j->n + i];
    const double mean = sum / (double)(n * sp);
    s->mean[t * c + ch] = mean;
    for (int64_t i = s->lo; i < s->hi; i++) {
        const float *p = j->conv_x ? s->own + (i - s->lo) * sp : j->x + (i * c + ch) * sp; /* still in L2 */
        s->run2[ch * j->n + i] = plane_sq_run(p, sp, (float)mean, mean);
    }
}

/* The outputs of one plane from its window maxima of x (out holds them):
 * pool_plane's arithmetic after its pool_row on x. */
ML_INLINE void plane_from_maxima(float *restrict y, float *restrict xa, uint8_t *restrict code, int64_t psp, float m,
                                 float is, float scale, float shift) {
    for (int64_t k = 0; k < psp; k++) {
        const float v = y[k], o = relu_keep_nan(v * scale + shift);
        xa[k] = (v - m) * is;
        y[k] = o;
        code[k] |= (uint8_t)(o > 0.f) * ML__POOL_GATE;
    }
}

/* The outputs alone (no backward to follow): the same arithmetic. */
ML_INLINE void plane_y_from_maxima(float *restrict y, int64_t psp, float scale, float shift) {
    for (int64_t k = 0; k < psp; k++) y[k] = relu_keep_nan(y[k] * scale + shift);
}

#if defined(ML_HAVE_AVX512_PATH)
/* The same, 16 outputs per step, with bn_pool_plane_avx512's operations;
 * the tail (psp % 16) by the scalar loop. */
ML_TARGET_AVX512 static void plane_from_maxima_avx512(float *y, float *xa, uint8_t *code, int64_t psp, float m,
                                                      float is, float scale, float shift) {
    const __m512 vm = _mm512_set1_ps(m), vis = _mm512_set1_ps(is), vsc = _mm512_set1_ps(scale),
                 vsh = _mm512_set1_ps(shift), zero = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= psp; k += 16) {
        const __m512 v = _mm512_loadu_ps(y + k);
        const __m512 z = _mm512_add_ps(_mm512_mul_ps(v, vsc), vsh);
        const __mmask16 gate = _mm512_cmp_ps_mask(z, zero, _CMP_GT_OQ);
        const __mmask16 keep = gate | _mm512_cmp_ps_mask(z, z, _CMP_UNORD_Q);
        const __m512i cd = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(code + k)));
        _mm512_storeu_ps(y + k, _mm512_maskz_mov_ps(keep, z));
        _mm512_storeu_ps(xa + k, _mm512_mul_ps(_mm512_sub_ps(v, vm), vis));
        _mm_storeu_si128((__m128i *)(code + k),
                         _mm512_cvtepi32_epi8(_mm512_mask_or_epi32(cd, gate, cd, _mm512_set1_epi32(ML__POOL_GATE))));
    }
    plane_from_maxima(y + k, xa + k, code + k, psp - k, m, is, scale, shift);
}

ML_TARGET_AVX512 static void plane_y_from_maxima_avx512(float *y, int64_t psp, float scale, float shift) {
    const __m512 vsc = _mm512_set1_ps(scale), vsh = _mm512_set1_ps(shift), zero = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= psp; k += 16) {
        const __m512 z = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(y + k), vsc), vsh);
        const __mmask16 keep = _mm512_cmp_ps_mask(z, zero, _CMP_GT_OQ) | _mm512_cmp_ps_mask(z, z, _CMP_UNORD_Q);
        _mm512_storeu_ps(y + k, _mm512_maskz_mov_ps(keep, z));
    }
    plane_y_from_maxima(y + k, psp - k, scale, shift);
}
#endif

/* One plane's outputs from its window maxima (in out), with xhat and the
 * codes when a backward follows (j->code set). */
ML_INLINE void plane_outputs_from_maxima(const bnr_job *j, int64_t poff, int64_t psp, float m, float is, float scale,
                                      float shift, int vec) {
    float *y = j->out + poff;
#if defined(ML_HAVE_AVX512_PATH)
    if (vec) {
        if (!j->code)
            plane_y_from_maxima_avx512(y, psp, scale, shift);
        else
            plane_from_maxima_avx512(y, j->xhat_at + poff, j->code + poff, psp, m, is, scale, shift);
        return;
    }
#else
    (void)vec;
#endif
    if (!j->code)
        plane_y_from_maxima(y, psp, scale, shift);
    else
        plane_from_maxima(y, j->xhat_at + poff, j->code + poff, psp, m, is, scale, shift);
}

/* Channel ch's variance and constants, then the thread's planes' outputs. */
ML_KERNEL static void bnr_step_out(const bnr_job *j, const bnr_steps *s, int t, int64_t ch, float *z, int32_t *q,
                                   int vec) {
    const int64_t n = j->n, c = j->c, sp = j->h * j->w, psp = (j->h / 2) * (j->w / 2);
    double s2 = 0;
    for (int64_t i = 0; i < n; i++) s2 += s->run2[ch * j->n + i];
    const double mean = s->mean[t * c + ch], var = s2 / (double)(n * sp);
    const float is = (float)(1.0 / sqrt(var + j->eps)), m = (float)mean;
    const float scale = is * j->gamma[ch], shift = j->beta[ch] - m * scale;
    const int from_maxima = j->gamma[ch] > 0.f && scale > 0.f;
    for (int64_t i = s->lo; i < s->hi; i++) {
        if (from_maxima)
            plane_outputs_from_maxima(j, (i * c + ch) * psp, psp, m, is, scale, shift, vec);
        else if (j->conv_x) /* the thread's planes hold the next channel by now: the conv once more */
            pool_plane(j, i, ch, conv_plane(j, i, ch, s->spare), m, is, scale, shift, z, q, vec);
        else
            pool_plane(j, i, ch, j->x + (i * c + ch) * sp, m, is, scale, shift, z, q, vec);
    }
    if (t == 0) {
        j->mean[ch] = m;
        j->inv[ch] = is;
        if (j->var_out) j->var_out[ch] = (float)var;
    }
}

/* The split by speed (the conv inside, 2..BNR_SPLIT_MAX_THREADS threads).
 * The two processors of the measured host run at different speeds (up to
 * ~1.3x apart, which one is slower changing from run to run; docs/results.md,
 * round 11), and with even splits the faster thread waited ~1.3 ms per
 * forward at the per-channel waits. Each thread times its sums step (the
 * conv planes, most of its work) and publishes the seconds per image with
 * its sums; after the wait every thread reads every thread's figure, so all
 * compute the same next split: images in proportion to the threads' speeds,
 * smoothed over the steps and carried from one forward to the next (a step's
 * own figures are noisy: followed closely, they made both threads wait).
 * Every image's runs, maxima and outputs are its own and the runs are added
 * in image order whoever took them: the split moves no bit. */
typedef struct bnr_split {
    double per[BNR_SPLIT_MAX_THREADS]; /* smoothed seconds per image, per thread (0: none yet) */
    int64_t lo, hi, prev_lo, prev_hi;  /* this thread's images at this step and at the last one */
} bnr_split;

/* The estimates the last forward ended with, for the next one: read once
 * before the threads start (all start from the same copy), written by thread
 * 0 at the end; a concurrent forward elsewhere can only make them staler. */
static _Atomic double bnr_carried_per[BNR_SPLIT_MAX_THREADS];
static atomic_int bnr_carried_nt;

/* Test hook: > 0 makes the split a function of the step (uneven, changing
 * every step, up to the cap) instead of the threads' speeds. */
int ml__bn_pool_steps_jitter = 0;

static int bnr_split_by_speed(const bnr_job *j, int nt) {
    return j->conv_x && nt > 1 && nt <= BNR_SPLIT_MAX_THREADS;
}

/* Thread t's images [lo, hi) with images in proportion to the speeds
 * 1 / per[u], each thread's count between n / (2 nt) and the cap. */
static void bnr_split_from(const bnr_job *j, const bnr_steps *s, bnr_split *sp, int t, int nt) {
    const int64_t n = j->n, least = n / (2 * nt);
    double speed[BNR_SPLIT_MAX_THREADS], total = 0;
    for (int u = 0; u < nt; u++) total += speed[u] = sp->per[u] > 0 ? 1.0 / sp->per[u] : 1.0;
    int64_t at = 0;
    double run = 0;
    for (int u = 0; u < nt; u++) { /* thread u: [at, end) */
        run += speed[u];
        int64_t end = u == nt - 1 ? n : (int64_t)llround((double)n * run / total);
        const int64_t left = nt - 1 - u; /* threads after u */
        if (end < at + least) end = at + least;
        if (end > at + s->cap) end = at + s->cap;
        if (end > n - left * least) end = n - left * least; /* room for the others' least */
        if (end < n - left * s->cap) end = n - left * s->cap; /* and no more than their caps */
        if (u == t) sp->lo = at, sp->hi = end;
        at = end;
    }
}

/* The estimates after step k, from every thread's seconds per image there
 * (the same figures, the same arithmetic on every thread), and the split of
 * step k + 1. */
static void bnr_next_split(const bnr_job *j, const bnr_steps *s, bnr_split *sp, int64_t k, int t, int nt) {
    for (int u = 0; u < nt; u++) {
        double now = s->per_image[u * BNR_TIME_STRIDE + (k & 1)], *p = &sp->per[u];
        if (ml__bn_pool_steps_jitter) now = 1.0 + (double)((k * 7 + u * 3) % 5); /* uneven, every step another */
        if (*p <= 0 || ml__bn_pool_steps_jitter) *p = now;
        else { /* a step slowed by a preemption moves the estimate at most 2x */
            now = now > 2 * *p ? 2 * *p : now < 0.5 * *p ? 0.5 * *p : now;
            *p += (now - *p) / 16;
        }
    }
    bnr_split_from(j, s, sp, t, nt);
}

/* Thread t of nt: channel k's sums and, once every thread's are in, its
 * squares (its planes still in L2), then channel k - 1's outputs (the other
 * threads published its squares a step ago: no wait there, as a rule). */
static void bnr_steps_run(const bnr_job *j, bnr_steps s, int t, int nt) {
    const int64_t c = j->c, ow = j->w / 2;
    const int vec = bn_pool_vector(ow), by_speed = bnr_split_by_speed(j, nt);
    float *z = j->scratch + t * j->h * j->w; /* the thread's own plane and row */
    int32_t *q = j->rows + t * ow;
    bnr_split sp = {.lo = j->n * t / nt, .hi = j->n * (t + 1) / nt};
    if (by_speed && s.carried && !ml__bn_pool_steps_jitter) {
        memcpy(sp.per, s.carried_per, sizeof sp.per);
        bnr_split_from(j, &s, &sp, t, nt);
    }
    s.own = j->planes ? j->planes + t * j->planes_per : NULL;
    s.spare = j->planes ? s.own + j->planes_per - j->h * j->w : NULL;
    for (int64_t k = 0; k <= c; k++) {
        if (k < c) {
            s.lo = sp.lo, s.hi = sp.hi;
            const double start = by_speed ? ml_now() : 0;
            bnr_step_sums(j, &s, k, q, vec);
            if (by_speed)
                s.per_image[t * BNR_TIME_STRIDE + (k & 1)] = (ml_now() - start) / (double)(s.hi > s.lo ? s.hi - s.lo : 1);
            bnr_publish(s.done, t, 0, k + 1);
            bnr_wait(s.done, nt, 0, k + 1);
            bnr_step_squares(j, &s, t, k);
            bnr_publish(s.done, t, 1, k + 1);
        }
        if (k >= 1) {
            bnr_wait(s.done, nt, 1, k);
            s.lo = sp.prev_lo, s.hi = sp.prev_hi; /* channel k - 1's images: their maxima are in this thread's L2 */
            bnr_step_out(j, &s, t, k - 1, z, q, vec);
        }
        sp.prev_lo = s.lo = sp.lo, sp.prev_hi = s.hi = sp.hi;
        if (by_speed && k < c) bnr_next_split(j, &s, &sp, k, t, nt);
    }
    if (by_speed && t == 0) {
        for (int u = 0; u < nt; u++) atomic_store_explicit(&bnr_carried_per[u], sp.per[u], memory_order_relaxed);
        atomic_store_explicit(&bnr_carried_nt, nt, memory_order_relaxed);
    }
}

/* Whether the pooled forward takes the image split, and on how many threads
 * (each needs a plane of scratch and a row of rows: c of each are there).
 * Not with more threads than processors: a thread waiting per channel for
 * one that has no processor would wait a time slice each time. */
int ml__bn_pool_steps_oversubscribe = 0;

static int bn_pool_image_threads(const bnr_job *j, int64_t numel) {
    const int nt = bn_relu_image_threads(j->n, numel);
    const int fits = nt <= omp_get_num_procs() || ml__bn_pool_steps_oversubscribe;
    return nt > 1 && nt <= j->c && fits ? nt : 1;
}

/* The most images a thread takes in a step: its share with the split by
 * speed (up to 1.5x the even share: room for a thread twice as fast), else
 * the even share. */
static int64_t bnr_images_cap(const bnr_job *j, int nt) {
    const int64_t even = (j->n + nt - 1) / nt, more = (3 * j->n / nt + 1) / 2;
    return bnr_split_by_speed(j, nt) && more > even ? (more < j->n ? more : j->n) : even;
}

static int bn_pool_forward_by_images(ml_ctx *ctx, const bnr_job *j, int nt) {
    const int64_t n = j->n, c = j->c;
    ml_arena_mark mark = ml_arena_get_mark(ctx->arena);
    bnr_steps s = {.run1 = ml_ctx_alloc(ctx, 2 * (size_t)(n * c) * sizeof(double)),
                   .mean = ml_ctx_alloc(ctx, (size_t)(nt * c) * sizeof(double)),
                   .done = ml_ctx_alloc(ctx, (size_t)nt * BNR_DONE_STRIDE * sizeof(atomic_int)),
                   .per_image = ml_ctx_alloc(ctx, (size_t)nt * BNR_TIME_STRIDE * sizeof(double)),
                   .cap = bnr_images_cap(j, nt)};
    if (!s.run1 || !s.mean || !s.done || !s.per_image) return -1;
    if (bnr_split_by_speed(j, nt) && atomic_load_explicit(&bnr_carried_nt, memory_order_relaxed) == nt) {
        s.carried = 1;
        for (int u = 0; u < nt; u++) s.carried_per[u] = atomic_load_explicit(&bnr_carried_per[u], memory_order_relaxed);
    }
    s.run2 = s.run1 + n * c;
    for (int u = 0; u < nt * BNR_DONE_STRIDE; u++) atomic_init(&s.done[u], 0);
#pragma omp parallel num_threads(nt)
    bnr_steps_run(j, s, omp_get_thread_num(), omp_get_num_threads());
    ml_arena_rewind(ctx->arena, mark);
    return 0;
}

/* A pooled channel's dbeta, dgamma and the dx pass's coefficients from its
 * two sums (grad_sums). */
static void pooled_coef(const bnr_job *j, int64_t ch, double s1, double s2) {
    const double count = (double)(j->n * j->h * j->w);
    j->dbeta[ch] = (float)s1;
    j->dgamma[ch] = (float)s2;
    j->coef[3 * ch] = j->gamma[ch] * j->inv[ch], j->coef[3 * ch + 1] = (float)(s1 / count);
    j->coef[3 * ch + 2] = (float)(s2 / count);
}

/* Per channel: g1 = g * [y > 0] (at each window's argmax with the pool),
 * xhat = (x - mean) * inv; dbeta = sum g1, dgamma = sum g1 * xhat,
 * dx = gamma * inv * (g1 - mean(g1) - xhat * mean(g1 * xhat)).
 * The sums run in a fixed order (sixteen float lanes per run, the run's
 * total in double, runs in image order), whatever the thread count. */
ML_KERNEL static void bn_relu_backward_range(void *arg, int64_t lo, int64_t hi) {
    const bnr_job *j = arg;
    const int64_t n = j->n, c = j->c, sp = j->h * j->w, psp = (j->h / 2) * (j->w / 2);
    const double count = (double)(n * sp);
    for (int64_t ch = lo; ch < hi; ch++) {
        const float m = j->mean[ch], is = j->inv[ch];
        /* Pooled: the sums run over the pooled tensors and the saved xhat. */
        const int64_t run = j->pool ? psp : sp;
        double s1, s2;
        if (j->pool && !j->blocked) /* the gate from the codes: y is not read */
            grad_sums_gated(j->g + ch * run, j->xhat_in + ch * run, j->code_in + ch * run, n, c * run, run, 0.f,
                            1.f, &s1, &s2);
        else /* blocked codes are pixel-major: y (NCHW) gives the gate */
            grad_sums(j->g + ch * run, (j->pool ? j->xhat_in : j->x) + ch * run, j->y + ch * run, n, c * run, run,
                      j->pool ? 0.f : m, j->pool ? 1.f : is, &s1, &s2);
        if (j->pool) { /* dx is written plane by plane, in memory order (bn_relu_pool_dx_range) */
            pooled_coef(j, ch, s1, s2);
            continue;
        }
        j->dbeta[ch] = (float)s1;
        j->dgamma[ch] = (float)s2;
        const float coef = j->gamma[ch] * is, mg = (float)(s1 / count), mgh = (float)(s2 / count);
        for (int64_t i = 0; i < n; i++) {
            const int64_t off = (i * c + ch) * sp;
            const float *xp = j->x + off;
            float *q = j->out + off;
            const float *yp = j->y + off, *gp = j->g + off;
            for (int64_t k = 0; k < sp; k++) {
                const float g1 = yp[k] > 0.f ? gp[k] : 0.f;
                q[k] = coef * (g1 - mg - (xp[k] - m) * is * mgh);
            }
        }
    }
}

#if defined(ML_HAVE_AVX512_PATH)
/* Constants of one channel's pooled dx: dx = share(x) + (at each window's
 * argmax) add, share(x) = -coef * (mg + (x - m) * is * mgh) and add = coef * g
 * or +0 where the gate is shut, as bn_relu_pool_dx_range computes them. */
typedef struct dx_consts {
    __m512 nc, mg, m, is, mgh, coef;
} dx_consts;

/* Eight windows (from an even column on), spread over their sixteen pixels
 * by a permute: each pixel's window add (gated coef * g, +0 where the gate is
 * shut) and the window's argmax place (code bits 0-1). */
typedef struct dx_windows {
    __m512 add;
    __m512i pos;
} dx_windows;

ML_TARGET_AVX512 static inline dx_windows dx_windows_avx512(const dx_consts *k, const float *g8,
                                                            const uint8_t *code8) {
    const __m512i pair = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    uint64_t cb;
    memcpy(&cb, code8, sizeof cb);
    const __m512i cd = _mm512_permutexvar_epi32(pair, _mm512_cvtepu8_epi32(_mm_cvtsi64_si128((long long)cb)));
    const __mmask16 gate = _mm512_test_epi32_mask(cd, _mm512_set1_epi32(ML__POOL_GATE));
    /* an unmasked 8-float load (a masked one stalled this pass on Zen 4); lanes 8-15 are not permuted in */
    const __m512 g = _mm512_permutexvar_ps(pair, _mm512_castps256_ps512(_mm256_loadu_ps(g8)));
    return (dx_windows){_mm512_maskz_mul_ps(gate, k->coef, g),
                        _mm512_and_si512(cd, _mm512_set1_epi32(ML__POOL_POS))};
}

/* Sixteen pixels of row rr (0 or 1) of a row pair: the share of x, plus the
 * window's add on the argmax pixel only (one addition per window, as the
 * scalar loop: same bits). */
ML_TARGET_AVX512 static inline __m512 dx_chunk_avx512(const dx_consts *k, __m512 xv, const dx_windows *wn, int rr) {
    const __m512i col = _mm512_setr_epi32(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1);
    const __mmask16 here = _mm512_cmpeq_epi32_mask(wn->pos, _mm512_add_epi32(col, _mm512_set1_epi32(2 * rr)));
    const __m512 v = _mm512_mul_ps(
        k->nc, _mm512_add_ps(k->mg, _mm512_mul_ps(_mm512_mul_ps(_mm512_sub_ps(xv, k->m), k->is), k->mgh)));
    return _mm512_mask_add_ps(v, here, v, wn->add);
}

/* One plane's pooled dx (even width w >= 16) in one sweep, no scatter: the
 * scalar per-window read-modify-write held three quarters of the pass
 * (perf). Every store is full width and inside its row: a row whose width
 * is no multiple of 16 ends with a chunk shifted back onto the one before,
 * both loaded before either is stored (dx may overwrite x: consume mode),
 * the shared pixels computed twice alike. An odd last row (in no window)
 * gets only its share. */
ML_TARGET_AVX512 static void pool_dx_plane_avx512(float coef, float mg, float m, float is, float mgh, const float *x,
                                                  float *q, const float *g, const uint8_t *code, int64_t h, int64_t w) {
    const dx_consts kc = {_mm512_set1_ps(-coef), _mm512_set1_ps(mg), _mm512_set1_ps(m),
                          _mm512_set1_ps(is),    _mm512_set1_ps(mgh), _mm512_set1_ps(coef)};
    const dx_consts *k = &kc;
    const int64_t oh = h / 2, ow = w / 2, full = w / 16, tail = w % 16 != 0;
    const int64_t alone = tail ? full - 1 : full; /* chunks stored one by one */
    for (int64_t r = 0; r < oh; r++) {
        const float *gr = g + r * ow;
        const uint8_t *cr = code + r * ow;
        for (int64_t i = 0; i < alone; i++) {
            const dx_windows wn = dx_windows_avx512(k, gr + 8 * i, cr + 8 * i);
            for (int rr = 0; rr < 2; rr++) {
                const int64_t at = (2 * r + rr) * w + 16 * i;
                _mm512_storeu_ps(q + at, dx_chunk_avx512(k, _mm512_loadu_ps(x + at), &wn, rr));
            }
        }
        if (tail) {
            const int64_t s0 = 16 * (full - 1), s1 = w - 16;
            const dx_windows w0 = dx_windows_avx512(k, gr + s0 / 2, cr + s0 / 2);
            const dx_windows w1 = dx_windows_avx512(k, gr + s1 / 2, cr + s1 / 2);
            for (int rr = 0; rr < 2; rr++) {
                const int64_t row = (2 * r + rr) * w;
                const __m512 x0 = _mm512_loadu_ps(x + row + s0), x1 = _mm512_loadu_ps(x + row + s1);
                const __m512 v0 = dx_chunk_avx512(k, x0, &w0, rr), v1 = dx_chunk_avx512(k, x1, &w1, rr);
                _mm512_storeu_ps(q + row + s0, v0);
                _mm512_storeu_ps(q + row + s1, v1);
            }
        }
    }
    for (int64_t i = 2 * oh * w; i < h * w; i++) q[i] = -coef * (mg + (x[i] - m) * is * mgh); /* odd h */
}
#endif

/* Pooled backward, second pass, over planes (image, channel) in memory order:
 * x is read from memory once and streams best front to back (channel-major,
 * each 3 KB plane was a new stream). Every element gets its share of the
 * means, then each window's argmax its own g1. */
ML_KERNEL static void bn_relu_pool_dx_range(void *arg, int64_t lo, int64_t hi) {
    const bnr_job *j = arg;
    const int64_t c = j->c, sp = j->h * j->w, psp = (j->h / 2) * (j->w / 2);
    for (int64_t p = lo; p < hi; p++) {
        const int64_t ch = p % c;
        const float m = j->mean[ch], is = j->inv[ch];
        const float coef = j->coef[3 * ch], mg = j->coef[3 * ch + 1], mgh = j->coef[3 * ch + 2];
        const float *xp = j->x + p * sp;
        float *q = j->out + p * sp;
        const float *gp = j->g + p * psp;
        const uint8_t *cp = j->code_in + p * psp;
#if defined(ML_HAVE_AVX512_PATH)
        if (j->vector_dx) {
            pool_dx_plane_avx512(coef, mg, m, is, mgh, xp, q, gp, cp, j->h, j->w);
            continue;
        }
#endif
        for (int64_t k = 0; k < sp; k++) q[k] = -coef * (mg + (xp[k] - m) * is * mgh);
        const int64_t w = j->w, ow = w / 2, oh = j->h / 2;
        for (int64_t r = 0, k = 0; r < oh; r++) { /* k = r * ow + cc, in the order of the flat-index loop */
            float *q0 = q + 2 * r * w;
            for (int64_t cc = 0; cc < ow; cc++, k++) {
                /* coef * g, or +0 where the gate is shut, as a bit mask: the
                 * gate is a coin flip, and GCC made `gate ? coef * g : 0` a branch */
                const float v = coef * gp[k];
                uint32_t vb;
                memcpy(&vb, &v, sizeof vb);
                vb &= 0u - (uint32_t)((cp[k] >> 2) & 1);
                float add;
                memcpy(&add, &vb, sizeof add);
                q0[((cp[k] >> 1) & 1) * w + 2 * cc + (cp[k] & 1)] += add;
            }
        }
    }
}

/* The pooled backward's sums with the threads split by images: the next
 * conv's backward-data wrote g image by image (side-by-side chunks,
 * conv_dnnl.c: thread t the images [n t / T, n (t + 1) / T) for the
 * batches that matter), the blocked forward wrote xhat and the codes so when
 * recording, and the dx pass that follows takes the same images. Each
 * plane's run is grad_sums's (one run: 0 + run, the same value), stored per
 * plane; the runs of each channel are then added in image order, as
 * grad_sums adds them: the same bits. */
ML_KERNEL static void pooled_runs(const bnr_job *j, double *part, int64_t lo, int64_t hi) {
    const int64_t psp = (j->h / 2) * (j->w / 2), planes = j->n * j->c;
    for (int64_t p = lo; p < hi; p++) {
        const int64_t off = p * psp;
        if (!j->blocked)
            grad_sums_gated(j->g + off, j->xhat_in + off, j->code_in + off, 1, 0, psp, 0.f, 1.f, &part[p],
                            &part[planes + p]);
        else /* blocked codes are pixel-major: y (NCHW) gives the gate */
            grad_sums(j->g + off, j->xhat_in + off, j->y + off, 1, 0, psp, 0.f, 1.f, &part[p], &part[planes + p]);
    }
}

static void pooled_sums_by_images(const bnr_job *j, double *part, int nt) {
    const int64_t n = j->n, c = j->c;
#pragma omp parallel num_threads(nt)
    {
        const int64_t t = omp_get_thread_num(), T = omp_get_num_threads();
        pooled_runs(j, part, n * t / T * c, n * (t + 1) / T * c);
    }
    for (int64_t ch = 0; ch < c; ch++) { /* c x n additions: a few microseconds */
        double s1 = 0, s2 = 0;
        for (int64_t i = 0; i < n; i++) s1 += part[i * c + ch], s2 += part[n * c + i * c + ch];
        pooled_coef(j, ch, s1, s2);
    }
}

void ml__bn_relu_backward_fused(ml_ctx *ctx, const ml_node *nd, ml_tensor *g, ml_tensor *din[3]) {
    const ml_tensor *x = nd->in[0];
    int64_t c = x->shape[1];
    /* dx over x when nothing reads x after this rule (consume mode, grad.c):
     * every pass below reads x[k] before it writes dx[k] and nothing else. */
    ml_tensor *dx = ctx->dead_input == x ? ml_tensor_wrap(ctx, x->data, 4, x->shape) : ml_tensor_new(ctx, 4, x->shape);
    ml_tensor *dgamma = ml_tensor_new(ctx, 1, ML_SHAPE(c));
    ml_tensor *dbeta = ml_tensor_new(ctx, 1, ML_SHAPE(c));
    if (!dx || !dgamma || !dbeta) return;
    bnr_job j = {.n = x->shape[0], .c = c, .h = x->shape[2], .w = x->shape[3], .pool = (int)nd->ip[0],
                 .x = x->data, .gamma = nd->in[1]->data, .y = nd->out->data, .g = g->data, .out = dx->data,
                 .mean = nd->aux, .inv = nd->aux + c, .dgamma = dgamma->data, .dbeta = dbeta->data,
                 .code_in = nd->code, .xhat_in = nd->aux + 3 * c, .blocked = nd->ip[0] && nd->ip[1]};
    if (j.pool && !(j.coef = ml_ctx_alloc(ctx, 3 * (size_t)c * sizeof(float)))) return;
    const int nt = j.pool ? bn_relu_image_threads(j.n, x->numel) : 1;
    if (nt > 1) {
        ml_arena_mark m = ml_arena_get_mark(ctx->arena);
        double *part = ml_ctx_alloc(ctx, 2 * (size_t)(j.n * c) * sizeof(double));
        if (!part) return;
        pooled_sums_by_images(&j, part, nt);
        ml_arena_rewind(ctx->arena, m);
    } else {
        ML__PAR_RUN(c, j.pool ? x->numel : 3 * x->numel, 1, bn_relu_backward_range, &j);
    }
    if (j.blocked) /* x and dx in nChw16c (conv_bn_blk16.c) */
        ml__bn_pool_dx_blk16(j.n, c, j.h, j.w, j.x, j.y, j.g, j.code_in, j.mean, j.inv, j.coef, j.out);
    else if (j.pool) {
        j.vector_dx = bn_pool_vector(j.w / 2) && j.w % 2 == 0 && j.w >= 16;
        ML__PAR_RUN(x->shape[0] * c, 2 * x->numel, 1, bn_relu_pool_dx_range, &j);
    }
    din[0] = dx, din[1] = dgamma, din[2] = dbeta;
}

/* ---- block 1's backward from kept values (maml.c, --low-memory) ------------------------
 * The query pass rewinds block 1's forward and runs it again for the backward.
 * Only the conv output x is large (15 MB for 75 images at 28x28); mean, inv,
 * var, xhat at each argmax (node->aux) and the argmax codes are a third of
 * it. Kept outside the arena, they spare the second batch norm forward: the
 * backward then runs on the conv output computed again (the same kernel on
 * the same inputs: the same bits) and the kept values, i.e. the same values
 * as the rule would read. Layout of the kept bytes: the header, aux, codes. */
typedef struct bn_pool_kept_header {
    float eps;
    int64_t c, pooled; /* channels; pooled outputs (aux holds 3 c + pooled floats) */
} bn_pool_kept_header;

/* The node of y when it is a pooled BN_RELU in NCHW on a plain conv output. */
static const ml_node *pooled_bn_node(const ml_tensor *y) {
    const ml_node *nd = y ? y->node : NULL;
    if (!nd || nd->op != ML_OP_BN_RELU || !nd->ip[0] || nd->ip[1] || !nd->aux || !nd->code) return NULL;
    const ml_tensor *x = nd->in[0];
    return x->node && x->node->op == ML_OP_CONV2D && x->node->fp == 0.f ? nd : NULL;
}

int64_t ml__bn_pool_kept_bytes(const ml_tensor *y) {
    const ml_node *nd = pooled_bn_node(y);
    if (!nd) return 0;
    const int64_t c = nd->in[0]->shape[1];
    return (int64_t)sizeof(bn_pool_kept_header) + (3 * c + y->numel) * (int64_t)sizeof(float) + y->numel;
}

void ml__bn_pool_keep(const ml_tensor *y, void *kept) {
    const ml_node *nd = pooled_bn_node(y);
    bn_pool_kept_header hd = {nd->fp, nd->in[0]->shape[1], y->numel};
    unsigned char *p = kept;
    memcpy(p, &hd, sizeof hd);
    memcpy(p + sizeof hd, nd->aux, (size_t)(3 * hd.c + hd.pooled) * sizeof(float));
    memcpy(p + sizeof hd + (3 * hd.c + hd.pooled) * sizeof(float), nd->code, (size_t)hd.pooled);
}

void ml__bn_pool_backward_kept(ml_ctx *ctx, ml_tensor *x, ml_tensor *gamma, ml_tensor *beta, ml_tensor *y,
                               void *kept, ml_tensor *g, ml_tensor *din[3]) {
    din[0] = din[1] = din[2] = NULL;
    bn_pool_kept_header hd;
    unsigned char *p = kept;
    memcpy(&hd, p, sizeof hd);
    if (!x || !gamma || !beta || !y || !g || x->ndim != 4 || x->shape[1] != hd.c || y->numel != hd.pooled ||
        g->numel != hd.pooled || ctx->status != ML_OK) {
        if (ctx->status == ML_OK) ml_ctx_fail(ctx, ML_ERR_SHAPE, "batchnorm_relu backward: kept values do not fit");
        return;
    }
    ml_node nd = {.op = ML_OP_BN_RELU, .n_in = 3, .in = {x, gamma, beta}, .out = y, .ip = {1, 0, 0, 0},
                  .fp = hd.eps, .aux = (float *)(p + sizeof hd),
                  .code = p + sizeof hd + (3 * hd.c + hd.pooled) * sizeof(float)};
    const ml_tensor *dead = ctx->dead_input;
    ctx->dead_input = x; /* the caller's x is read by nothing after this: dx goes over it, as in the walk */
    ml__bn_relu_backward_fused(ctx, &nd, g, din);
    ctx->dead_input = dead;
}

/* running = (1 - momentum) * running + momentum * batch, variance unbiased. */
static void update_running_stats(float *running_mean, float *running_var, const float *mean, const float *var,
                                 int64_t c, int64_t count, float momentum) {
    float unbias = (float)count / (float)(count - 1);
    for (int64_t i = 0; i < c; i++) {
        running_mean[i] = (1 - momentum) * running_mean[i] + momentum * mean[i];
        running_var[i] = (1 - momentum) * running_var[i] + momentum * var[i] * unbias;
    }
}

static ml_tensor *batchnorm_relu(ml_ctx *ctx, ml_tensor *x, ml_tensor *gamma, ml_tensor *beta, float *running_mean,
                                 float *running_var, int training, float momentum, float eps, int pool) {
    if (!x || ctx->status != ML_OK) return NULL;
    if (!training || !gamma || !beta || x->ndim != 4) {
        ml_tensor *y = ml_relu(ctx, ml_batchnorm(ctx, x, gamma, beta, running_mean, running_var, training, momentum, eps));
        return pool ? ml_maxpool2x2(ctx, y) : y;
    }
    int64_t n = x->shape[0], c = x->shape[1], h = x->shape[2], w = x->shape[3], count = n * h * w;
    if (gamma->ndim != 1 || gamma->shape[0] != c || beta->ndim != 1 || beta->shape[0] != c)
        return ml_ctx_fail(ctx, ML_ERR_SHAPE, "batchnorm_relu: gamma/beta must be [%lld]", (long long)c);
    if (count < 2) return ml_ctx_fail(ctx, ML_ERR_SHAPE, "batchnorm: training needs more than one value per channel");
    if (pool && (h < 2 || w < 2 || x->numel > INT32_MAX)) {
        char b[64];
        return ml_ctx_fail(ctx, ML_ERR_SHAPE, "maxpool2x2: input %s (want [N,C,H,W] with H,W >= 2)",
                           ml_shape_str(x, b, sizeof b));
    }
    int64_t oshape[4] = {n, c, pool ? h / 2 : h, pool ? w / 2 : w};
    ml_tensor *t = ml_tensor_new(ctx, 4, oshape);
    if (!t) return NULL;
    /* aux: mean, inv, var per channel, then (pool) xhat at each argmax. Not
     * recording (an evaluation's forward), no backward follows: the pool
     * keeps neither xhat nor the codes, only the output is written. */
    const int keep = pool && ml_ctx_recording(ctx);
    float *aux = ml_ctx_alloc(ctx, (3 * (size_t)c + (keep ? (size_t)t->numel : 0)) * sizeof(float));
    float *scratch = pool ? ml_ctx_alloc(ctx, (size_t)(c * h * w) * sizeof(float)) : NULL;
    uint8_t *code = keep ? ml_ctx_alloc(ctx, (size_t)t->numel) : NULL;
    int32_t *rows = pool ? ml_ctx_alloc(ctx, (size_t)(c * oshape[3]) * sizeof(int32_t) + 4) : NULL;
    if (!aux || (pool && (!scratch || !rows)) || (keep && !code)) return NULL;
    bnr_job j = {.n = n, .c = c, .h = h, .w = w, .pool = pool, .eps = eps, .x = x->data, .gamma = gamma->data,
                 .beta = beta->data, .out = t->data, .mean = aux, .inv = aux + c, .var_out = aux + 2 * c,
                 .scratch = scratch, .rows = rows, .code = code, .xhat_at = keep ? aux + 3 * c : NULL};
    const int nt = pool ? bn_pool_image_threads(&j, x->numel) : 1;
    if (nt > 1) {
        if (bn_pool_forward_by_images(ctx, &j, nt)) return NULL;
    } else {
        ML__PAR_RUN(c, 3 * x->numel, 1, bn_relu_range, &j);
    }
    if (running_mean && running_var) update_running_stats(running_mean, running_var, aux, aux + 2 * c, c, count, momentum);
    ml_node *nd = ml__record3(ctx, ML_OP_BN_RELU, t, x, gamma, beta);
    if (nd) {
        nd->aux = aux;
        nd->fp = eps;
        nd->ip[0] = pool;
        nd->code = code;
    }
    return t;
}

/* Block 1 of an evaluation (no recording), batch statistics: the 3x3 conv of
 * a 1-4 channel input, batch norm, ReLU, 2x2 max-pool, with the conv run
 * inside the pooled forward's channel steps (conv3x3_direct.c): each thread
 * computes channel k's planes of its images into its own buffer (in L2),
 * takes their runs of sums and window maxima, then after the wait their
 * squares from the buffer; the conv output (n * c * h * w floats) is never
 * written to memory. Same steps, sums and plane kernels as the image-split
 * forward above, and planes bitwise the conv route's (checked per shape
 * before the route is taken): the same output and statistics as ml_conv2d +
 * ml_batchnorm_relu_maxpool, on any number of threads. *taken = 0 (and NULL)
 * where it does not apply; the caller then takes those two ops.
 * ML_DIRECT_BLOCK1=0 in the environment (or ml__conv_bn_direct_off) turns it off. */
int ml__conv_bn_direct_off = 0;

static int direct_block_applies(ml_ctx *ctx, const ml_tensor *x, const ml_tensor *w, const ml_tensor *gamma,
                                const ml_tensor *beta, ml_conv_shape *s) {
    if (ml__conv_bn_direct_off || ml_ctx_recording(ctx) || !x || !w || !gamma || !beta || x->ndim != 4 ||
        w->ndim != 4 || x->shape[1] != w->shape[1] || x->numel > INT32_MAX)
        return 0;
    const char *env = getenv("ML_DIRECT_BLOCK1");
    if (env && !strcmp(env, "0")) return 0;
    const int64_t o = w->shape[0];
    if (gamma->ndim != 1 || gamma->shape[0] != o || beta->ndim != 1 || beta->shape[0] != o) return 0;
    if (w->shape[2] != 3 || w->shape[3] != 3 || x->shape[2] < 2 || x->shape[3] < 2 ||
        x->shape[0] * o * x->shape[2] * x->shape[3] > INT32_MAX)
        return 0;
    if (ml__conv_shape_init(s, (int)x->shape[0], (int)x->shape[1], (int)x->shape[2], (int)x->shape[3], (int)o, 3, 3,
                            1, 1))
        return 0;
    return ml__conv3x3_direct_matches(s);
}

ml_tensor *ml__conv_bn_relu_pool_direct(ml_ctx *ctx, ml_tensor *x, ml_tensor *w, ml_tensor *gamma, ml_tensor *beta,
                                        float *running_mean, float *running_var, float momentum, float eps,
                                        int *taken) {
    *taken = 0;
    ml_conv_shape s;
    if (!x || ctx->status != ML_OK || !direct_block_applies(ctx, x, w, gamma, beta, &s)) return NULL;
    *taken = 1;
    const int64_t n = s.n, c = s.o, h = s.h, wd = s.w, sp = h * wd, numel = n * c * sp;
    ml_tensor *t = ml_tensor_new(ctx, 4, ML_SHAPE(n, c, h / 2, wd / 2));
    if (!t) return NULL;
    bnr_job j = {.n = n, .c = c, .h = h, .w = wd, .pool = 1, .eps = eps, .gamma = gamma->data, .beta = beta->data,
                 .out = t->data, .conv_x = x->data, .conv_w = w->data, .conv_c = s.c};
    const int nt = bn_pool_image_threads(&j, numel);
    j.planes_per = (bnr_images_cap(&j, nt) + 1) * sp; /* the thread's planes, then a spare */
    ml_arena_mark mark = ml_arena_get_mark(ctx->arena);
    float *aux = ml_ctx_alloc(ctx, 3 * (size_t)c * sizeof(float));
    j.scratch = ml_ctx_alloc(ctx, (size_t)(nt * sp) * sizeof(float));
    j.rows = ml_ctx_alloc(ctx, (size_t)(nt * (wd / 2)) * sizeof(int32_t) + 4);
    j.planes = ml_ctx_alloc(ctx, (size_t)(nt * j.planes_per) * sizeof(float));
    if (!aux || !j.scratch || !j.rows || !j.planes) return NULL;
    j.mean = aux, j.inv = aux + c, j.var_out = aux + 2 * c;
    if (bn_pool_forward_by_images(ctx, &j, nt)) return NULL; /* the image-split steps, on one thread too */
    if (running_mean && running_var) update_running_stats(running_mean, running_var, aux, aux + 2 * c, c, n * sp, momentum);
    ml_arena_rewind(ctx->arena, mark);
    return t;
}

const int32_t *ml__bn_relu_pool_index(ml_ctx *ctx, const ml_node *nd) {
    const ml_tensor *x = nd->in[0];
    const int64_t sp = x->shape[2] * x->shape[3], oh = x->shape[2] / 2, ow = x->shape[3] / 2, psp = oh * ow;
    const int64_t planes = x->shape[0] * x->shape[1];
    int32_t *idx = ml_ctx_alloc(ctx, (size_t)(planes * psp) * sizeof(int32_t));
    if (!idx) return NULL;
    const int64_t w = x->shape[3];
    for (int64_t p = 0, k = 0; p < planes; p++) /* k runs over the pooled elements in order */
        for (int64_t r = 0; r < oh; r++)
            for (int64_t cc = 0; cc < ow; cc++, k++) {
                const uint8_t code = nd->code[k] & ML__POOL_POS;
                idx[k] = (int32_t)(p * sp + (2 * r + (code >> 1)) * w + 2 * cc + (code & 1));
            }
    return idx;
}

ml_tensor *ml_batchnorm_relu(ml_ctx *ctx, ml_tensor *x, ml_tensor *gamma, ml_tensor *beta, float *running_mean,
                             float *running_var, int training, float momentum, float eps) {
    return batchnorm_relu(ctx, x, gamma, beta, running_mean, running_var, training, momentum, eps, 0);
}

ml_tensor *ml_batchnorm_relu_maxpool(ml_ctx *ctx, ml_tensor *x, ml_tensor *gamma, ml_tensor *beta,
                                     float *running_mean, float *running_var, int training, float momentum,
                                     float eps) {
    return batchnorm_relu(ctx, x, gamma, beta, running_mean, running_var, training, momentum, eps, 1);
}

ml_tensor *ml_batchnorm(ml_ctx *ctx, ml_tensor *x, ml_tensor *gamma, ml_tensor *beta, float *running_mean,
                        float *running_var, int training, float momentum, float eps) {
    if (!x || ctx->status != ML_OK) return NULL;
    if (x->ndim != 2 && x->ndim != 4) return ml_ctx_fail(ctx, ML_ERR_SHAPE, "batchnorm: input must be 2-D or 4-D");
    int64_t c = x->shape[1];
    if ((gamma && (gamma->ndim != 1 || gamma->shape[0] != c)) || (beta && (beta->ndim != 1 || beta->shape[0] != c)))
        return ml_ctx_fail(ctx, ML_ERR_SHAPE, "batchnorm: gamma/beta must be [%lld]", (long long)c);
    int64_t count = x->numel / (c ? c : 1);
    int64_t pshape[4] = {1, c, 1, 1};
    ml_tensor *y;
    if (training) {
        if (count < 2) return ml_ctx_fail(ctx, ML_ERR_SHAPE, "batchnorm: training needs more than one value per channel");
        float *stats = running_mean && running_var ? ml_ctx_alloc(ctx, 2 * (size_t)c * sizeof(float)) : NULL;
        y = ml__normalize(ctx, x, eps, stats, stats ? stats + c : NULL);
        if (stats && y) update_running_stats(running_mean, running_var, stats, stats + c, c, count, momentum);
    } else {
        if (!running_mean || !running_var)
            return ml_ctx_fail(ctx, ML_ERR_ARG, "batchnorm: evaluation needs running statistics");
        ml_tensor *rm = ml_tensor_new(ctx, x->ndim, pshape);
        ml_tensor *rs = ml_tensor_new(ctx, x->ndim, pshape);
        if (!rm || !rs) return NULL;
        for (int64_t i = 0; i < c; i++) {
            rm->data[i] = running_mean[i];
            rs->data[i] = 1.0f / sqrtf(running_var[i] + eps);
        }
        y = ml_mul(ctx, ml_sub(ctx, x, rm), rs);
    }
    if (gamma) y = ml_mul(ctx, y, ml_reshape(ctx, gamma, x->ndim, pshape));
    if (beta) y = ml_add(ctx, y, ml_reshape(ctx, beta, x->ndim, pshape));
    return y;
}

/* ---- losses ---------------------------------------------------------------------------- */

ml_tensor *ml_cross_entropy(ml_ctx *ctx, ml_tensor *logits, const int32_t *labels) {
    if (!logits || ctx->status != ML_OK) return NULL;
    if (logits->ndim != 2) {
        char b[64];
        return ml_ctx_fail(ctx, ML_ERR_SHAPE, "cross_entropy: logits %s (want [N, C])",
                           ml_shape_str(logits, b, sizeof b));
    }
    ml_tensor *picked = ml_pick(ctx, ml_log_softmax(ctx, logits), labels);
    return ml_scale(ctx, ml_sum_all(ctx, picked), logits->shape[0] ? -1.0f / (float)logits->shape[0] : 0.f);
}

ml_tensor *ml_mse(ml_ctx *ctx, ml_tensor *a, ml_tensor *b) {
    if (!a || !b || ctx->status != ML_OK) return NULL;
    if (a->numel != b->numel) {
        char s1[64], s2[64];
        return ml_ctx_fail(ctx, ML_ERR_SHAPE, "mse: %s vs %s", ml_shape_str(a, s1, sizeof s1),
                           ml_shape_str(b, s2, sizeof s2));
    }
    /* Same element count, different shape ([N,1] vs [N]): compare element by
     * element rather than broadcasting to [N,N]. */
    if (!ml_same_shape(a, b)) b = ml_reshape(ctx, b, a->ndim, a->shape);
    return ml_mean_all(ctx, ml_square(ctx, ml_sub(ctx, a, b)));
}
