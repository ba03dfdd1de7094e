/* conv_bn_blk16.c: conv -> batch norm + ReLU + 2x2 max-pool with the conv's
 * full-size output kept in oneDNN's channel-blocked layout nChw16c (issue 17).
 *
 * Why: on the oneDNN route (conv_dnnl.c) every convolution reorders its
 * output nChw16c -> NCHW, and its backward reorders the output's gradient
 * NCHW -> nChw16c for both backward passes: memory-bound passes over the
 * block's largest tensor (4x the pooled one). Here the conv writes y in
 * nChw16c, the fused BN/ReLU/pool forward reads it there, its backward writes
 * dy there, and both backward convolutions read it there: those reorders go.
 * The pooled output (what the next conv and everything else read) is NCHW.
 *
 * Layout: y[i, ch, r, q] of [n, c, h, w] is at ((i * c/16 + ch/16) * h*w +
 * r*w + q) * 16 + ch % 16: each pixel's 16 channels of a block side by side.
 *
 * Bits: the same floats as the NCHW path (ops_nn.c's fused BN/ReLU/pool), to
 * the last bit. A block's 16 channels run as the 16 lanes of a vector, each
 * lane doing exactly its channel's scalar arithmetic in the same order:
 * channel_stats's sixteen float partial sums (element k into partial k % 16,
 * k increasing) become sixteen vectors acc[k % 16] (lane = channel), its
 * horizontal sum in double (partials 0..15 in order) a sum of acc[0..15] in
 * double lanes, the tail and the run totals likewise; the pool's compare /
 * select chain and the backward's dx formula are lane-wise the same
 * operations (no contraction: this file is compiled as ISO C, as ops_nn.c).
 * test_kernels checks the two paths bitwise.
 *
 * Graph: the conv's node (CONV2D, fp = 1: output blocked) and the BN_RELU node
 * (ip[1] = 1: input blocked) are recorded as usual. The first-order backward
 * (not recording) keeps dy blocked (ml__bn_pool_dx_blk16, and the CONV2D rule
 * takes ml__conv2d_backward_*_blk16). A recorded (create_graph) backward
 * reaching the BN_RELU node first turns the conv output back into NCHW in
 * place and clears both flags (ml__bn_relu_unblock): from then on the pair is
 * the plain one, for that backward and any later one over the same graph. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/conv.h"
#include "tensor/internal.h"
#include "tensor/kernels_par.h"

#if defined(ML_HAVE_AVX512_PATH)
#include <immintrin.h>

#include "tensor/pool_avx512.h"
#endif

int ml__conv_blk16_mode = -1;

/* A blocked node's pool codes (nd->code) are pixel-major like its input:
 * code[((i * c/16 + b) * oh*ow + k) * 16 + l] for channel b * 16 + l of image
 * i, window k; the bits of internal.h's ML__POOL_POS and ML__POOL_GATE, so
 * that the backward needs neither y nor a transpose. ml__bn_relu_unblock
 * turns them into the plain NCHW order, the bits unchanged. */

static int blk16_on(void) {
    if (ml__conv_blk16_mode < 0) {
        const char *e = getenv("ML_CONV_BLK16");
        ml__conv_blk16_mode = e && e[0] == '0' ? 0 : 1;
    }
    return ml__conv_blk16_mode;
}

/* ---- layout conversions (fallbacks, the recorded backward, tests) ---------------------- */

void ml__blk16_from_nchw(const float *src, float *dst, int64_t n, int64_t c, int64_t sp) {
    const int64_t nb = c / 16;
    for (int64_t i = 0; i < n; i++)
        for (int64_t b = 0; b < nb; b++)
            for (int64_t l = 0; l < 16; l++) {
                const float *s = src + (i * c + b * 16 + l) * sp;
                float *d = dst + (i * nb + b) * sp * 16 + l;
                for (int64_t k = 0; k < sp; k++) d[k * 16] = s[k];
            }
}

void ml__nchw_from_blk16(const float *src, float *dst, int64_t n, int64_t c, int64_t sp) {
    const int64_t nb = c / 16;
    for (int64_t i = 0; i < n; i++)
        for (int64_t b = 0; b < nb; b++)
            for (int64_t l = 0; l < 16; l++) {
                const float *s = src + (i * nb + b) * sp * 16 + l;
                float *d = dst + (i * c + b * 16 + l) * sp;
                for (int64_t k = 0; k < sp; k++) d[k] = s[k * 16];
            }
}

/* ---- the conv passes with y / dy blocked ----------------------------------------------- */

static float *scratch_for(ml_ctx *ctx, const ml_conv_shape *s, int pass) {
    int64_t n = ml__conv2d_pass_scratch_floats(s, pass);
    return ml_ctx_alloc(ctx, (size_t)(n > 0 ? n : 1) * sizeof(float));
}

/* y (nChw16c) = conv(x, w); the plain route and a reorder if oneDNN cannot. */
static int forward_blk16(ml_ctx *ctx, const ml_conv_shape *s, const float *x, const float *w, float *y) {
    ml_arena_mark m = ml_arena_get_mark(ctx->arena);
    float *scratch = scratch_for(ctx, s, ML_CONV_PASS_FORWARD);
    if (!scratch) return -1;
    if (ml__conv_dnnl_forward_blk16(s, x, w, y, scratch)) {
        float *plain = ml_ctx_alloc(ctx, (size_t)s->n * s->o * s->oh * s->ow * sizeof(float));
        if (!plain) return -1;
        ml__conv2d_forward(s, x, w, plain, scratch);
        ml__blk16_from_nchw(plain, y, s->n, s->o, (int64_t)s->oh * s->ow);
    }
    ml_arena_rewind(ctx->arena, m);
    return 0;
}

/* dy in plain NCHW, for the fallbacks below (arena memory). */
static const float *plain_dy(ml_ctx *ctx, const ml_conv_shape *s, const float *dy) {
    float *p = ml_ctx_alloc(ctx, (size_t)s->n * s->o * s->oh * s->ow * sizeof(float));
    if (p) ml__nchw_from_blk16(dy, p, s->n, s->o, (int64_t)s->oh * s->ow);
    return p;
}

ml_tensor *ml__conv2d_backward_data_blk16(ml_ctx *ctx, ml_tensor *dy, ml_tensor *w, int h, int wd, int stride,
                                          int pad) {
    if (!dy || !w || ctx->status != ML_OK) return NULL;
    ml_conv_shape s;
    if (ml__conv_shape_init(&s, (int)dy->shape[0], (int)w->shape[1], h, wd, (int)w->shape[0], (int)w->shape[2],
                            (int)w->shape[3], stride, pad))
        return ml_ctx_fail(ctx, ML_ERR_SHAPE, "conv2d_backward_data: bad blocked shape");
    ml_tensor *t = ml_tensor_new(ctx, 4, ML_SHAPE(s.n, s.c, s.h, s.w));
    if (!t) return NULL;
    ml_arena_mark m = ml_arena_get_mark(ctx->arena);
    float *scratch = scratch_for(ctx, &s, ML_CONV_PASS_BACKWARD_DATA);
    if (!scratch) return NULL;
    if (ml__conv_dnnl_backward_data_blk16(&s, dy->data, w->data, t->data, scratch)) {
        const float *p = plain_dy(ctx, &s, dy->data);
        if (!p) return NULL;
        ml__conv2d_backward_data(&s, p, w->data, t->data, scratch);
    }
    ml_arena_rewind(ctx->arena, m);
    return t;
}

ml_tensor *ml__conv2d_backward_weight_blk16(ml_ctx *ctx, ml_tensor *x, ml_tensor *dy, int kh, int kw, int stride,
                                            int pad) {
    if (!x || !dy || ctx->status != ML_OK) return NULL;
    ml_conv_shape s;
    if (ml__conv_shape_init(&s, (int)x->shape[0], (int)x->shape[1], (int)x->shape[2], (int)x->shape[3],
                            (int)dy->shape[1], kh, kw, stride, pad))
        return ml_ctx_fail(ctx, ML_ERR_SHAPE, "conv2d_backward_weight: bad blocked shape");
    ml_tensor *t = ml_tensor_new(ctx, 4, ML_SHAPE(s.o, s.c, s.kh, s.kw));
    if (!t) return NULL;
    ml_arena_mark m = ml_arena_get_mark(ctx->arena);
    float *scratch = scratch_for(ctx, &s, ML_CONV_PASS_BACKWARD_WEIGHT);
    if (!scratch) return NULL;
    if (ml__conv_dnnl_backward_weight_blk16(&s, x->data, dy->data, t->data, scratch)) {
        const float *p = plain_dy(ctx, &s, dy->data);
        if (!p) return NULL;
        ml__conv2d_backward_weight(&s, x->data, p, t->data, scratch);
    }
    ml_arena_rewind(ctx->arena, m);
    return t;
}

/* ---- BN + ReLU + pool forward on a blocked input ----------------------------------------- */

/* Per-block constants of the pooled forward, lane = channel. */
typedef struct blk_consts {
    float m[16], is[16], scale[16], shift[16];
    int32_t onx[16]; /* -1: pool x itself (scale > 0); 0: pool z = x * scale + shift */
} blk_consts;

/* One block's statistics and constants, as each thread combines them (576
 * bytes: a thread's array of them shares no cache line with another's). */
typedef struct blk_stat {
    double mean[16], var[16];
    blk_consts k;
} blk_stat;

typedef struct blk_job {
    int64_t n, c, h, w;
    float eps;
    const float *x, *gamma, *beta;
    float *out, *mean, *inv, *var_out, *xhat_at;
    uint8_t *code;
    ml_v8d *part;      /* per unit (image, block): its run (lanes 0-7, 8-15), then its squared deviations' */
    blk_stat *stat;    /* per thread, per block: each thread combines the units' sums itself */
    float *tmp;        /* per thread: the pooled values, xhat and codes of one unit, pixel-major */
} blk_job;

typedef int ml_v16i_b __attribute__((vector_size(64)));

ML_INLINE void split16(ml_v16f v, ml_v8d *lo, ml_v8d *hi) {
    ml_v8f a, b;
    memcpy(&a, &v, sizeof a);
    memcpy(&b, (const char *)&v + sizeof a, sizeof b);
    *lo = __builtin_convertvector(a, ml_v8d), *hi = __builtin_convertvector(b, ml_v8d);
}

ML_INLINE ml_v16f sel16(ml_v16i_b m, ml_v16f a, ml_v16f b) {
    return (ml_v16f)(((ml_v16i_b)a & m) | ((ml_v16i_b)b & ~m));
}

/* One run (an image's plane of one block, sp pixels of 16 lanes): the run's
 * total per lane in double, as channel_stats: partial k % 16 over k, then the
 * partials in order, then the tail. sq: the sum of squared deviations from
 * (mf in float, md in double) instead. */
ML_INLINE void run_sum(const float *p, int64_t sp, int sq, ml_v16f mf, ml_v8d md0, ml_v8d md1, ml_v8d *r0,
                       ml_v8d *r1) {
    ml_v16f acc[16];
    memset(acc, 0, sizeof acc);
    int64_t k = 0;
    for (; k + 16 <= sp; k += 16)
#pragma GCC unroll 16
        for (int j = 0; j < 16; j++) {
            ml_v16f v = ml__load16f(p + (k + j) * 16);
            if (sq) {
                v = v - mf;
                v = v * v;
            }
            acc[j] += v;
        }
    ml_v8d a0 = {0}, a1 = {0};
    for (int j = 0; j < 16; j++) {
        ml_v8d lo, hi;
        split16(acc[j], &lo, &hi);
        a0 += lo, a1 += hi;
    }
    for (; k < sp; k++) {
        ml_v8d lo, hi;
        split16(ml__load16f(p + k * 16), &lo, &hi);
        if (sq) {
            lo -= md0, hi -= md1;
            lo *= lo, hi *= hi;
        }
        a0 += lo, a1 += hi;
    }
    *r0 = a0, *r1 = a1;
}

/* The statistics of a block are channel_stats's: per lane, the run of each
 * image (run_sum), the runs added in image order from zero, once for the
 * mean and once for the squared deviations from it. Here the runs are
 * computed by image ranges (the conv wrote those images on the same thread)
 * into j->part, and every thread adds them up in image order itself: the
 * same additions as one thread summing a block, so the same bits. */

/* The runs of units (image i, block b), i in [lo, hi), b in [b0, b1), in
 * memory order; with st: of the squared deviations from each block's mean. */
ML_KERNEL static void unit_sums(const blk_job *j, int64_t lo, int64_t hi, int64_t b0, int64_t b1, const blk_stat *st) {
    const int64_t nb = j->c / 16, sp = j->h * j->w;
    const ml_v16f zf = {0};
    const ml_v8d z = {0};
    ml_v8d *sq = j->part + 2 * j->n * nb;
    for (int64_t i = lo; i < hi; i++)
        for (int64_t u = i * nb + b0; u < i * nb + b1; u++) {
            if (!st) {
                run_sum(j->x + u * sp * 16, sp, 0, zf, z, z, &j->part[2 * u], &j->part[2 * u + 1]);
                continue;
            }
            const double *m = st[u % nb].mean;
            ml_v16f mf;
            ml_v8d m0, m1;
            for (int l = 0; l < 8; l++) m0[l] = m[l], m1[l] = m[l + 8];
            for (int l = 0; l < 16; l++) mf[l] = (float)m[l];
            run_sum(j->x + u * sp * 16, sp, 1, mf, m0, m1, &sq[2 * u], &sq[2 * u + 1]);
        }
}

/* Block b's runs (sq: of squared deviations) over all images, in image
 * order, divided by the count. */
static void combine_units(const blk_job *j, int64_t b, int sq, double out[16]) {
    const int64_t nb = j->c / 16;
    const double count = (double)(j->n * j->h * j->w);
    const ml_v8d *part = j->part + (sq ? 2 * j->n * nb : 0);
    ml_v8d s0 = {0}, s1 = {0};
    for (int64_t i = 0; i < j->n; i++) s0 += part[2 * (i * nb + b)], s1 += part[2 * (i * nb + b) + 1];
    const ml_v8d m0 = s0 / count, m1 = s1 / count;
    for (int l = 0; l < 8; l++) out[l] = m0[l], out[l + 8] = m1[l];
}

/* Block b's constants from its mean and variance. */
static void block_consts(const blk_job *j, int64_t b, blk_stat *st) {
    blk_consts *k0 = &st->k;
    for (int l = 0; l < 16; l++) {
        const int64_t ch = b * 16 + l;
        const float is = (float)(1.0 / sqrt(st->var[l] + j->eps)), m = (float)st->mean[l];
        const float scale = is * j->gamma[ch], shift = j->beta[ch] - m * scale;
        k0->m[l] = m, k0->is[l] = is, k0->scale[l] = scale, k0->shift[l] = shift;
        k0->onx[l] = scale > 0.f ? -1 : 0; /* pool x itself; else z = x * scale + shift */
    }
}

/* One image's pooled results of a block, pixel-major (16 lanes per pixel),
 * to the 16 consecutive NCHW planes of y and xa (planes psp apart); the codes
 * stay pixel-major, as bytes (the block's own backward reads them so).
 * Without a backward to follow (xa NULL), y alone. */
static void lanes_to_planes_scalar(const float *ty, const float *tx, const int32_t *tc, int64_t psp, float *y,
                                   float *xa, uint8_t *code) {
    for (int64_t l = 0; l < 16; l++)
        for (int64_t k = 0; k < psp; k++) y[l * psp + k] = ty[k * 16 + l];
    if (!xa) return;
    for (int64_t l = 0; l < 16; l++)
        for (int64_t k = 0; k < psp; k++) xa[l * psp + k] = tx[k * 16 + l];
    for (int64_t k = 0; k < psp * 16; k++) code[k] = (uint8_t)tc[k];
}

#if defined(ML_HAVE_AVX512_PATH)
/* Rows r of 16 (pixels, 16 lanes each) to columns (lanes, 16 pixels each):
 * the stage with bit b swaps bit b of the row and the column index, so the
 * four stages (8, 4, 2, 1) make the transpose. */
ML_TARGET_AVX512 static inline void transpose16_avx512(__m512 r[16]) {
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (int b = 8; b >= 1; b /= 2) {
        const __m512i vb = _mm512_set1_epi32(b), v16 = _mm512_set1_epi32(16);
        const __mmask16 has = _mm512_test_epi32_mask(lane, vb);
        /* low row: column c with bit b takes the high row's column c - b; high row: c without bit b takes the low row's c + b */
        const __m512i ilo = _mm512_mask_add_epi32(lane, has, lane, _mm512_sub_epi32(v16, vb));
        const __m512i ihi = _mm512_mask_add_epi32(_mm512_add_epi32(lane, vb), has, lane, v16);
        for (int i = 0; i < 16; i++)
            if (!(i & b)) {
                const __m512 a = r[i], c = r[i + b];
                r[i] = _mm512_permutex2var_ps(a, ilo, c);
                r[i + b] = _mm512_permutex2var_ps(a, ihi, c);
            }
    }
}

/* The same with 16 x 16 transposes in registers (the gathers they replace
 * took 1.4-1.9% of a ProtoNet step). */
ML_TARGET_AVX512 static void lanes_to_planes_avx512(const float *ty, const float *tx, const int32_t *tc, int64_t psp,
                                                    float *y, float *xa, uint8_t *code) {
    for (int which = 0; which < (xa ? 2 : 1); which++) {
        const float *src = which ? tx : ty;
        float *dst = which ? xa : y;
        for (int64_t k = 0; k < psp; k += 16) {
            const int64_t rows = psp - k < 16 ? psp - k : 16;
            __m512 r[16];
            for (int i = 0; i < 16; i++) r[i] = i < rows ? _mm512_loadu_ps(src + (k + i) * 16) : _mm512_setzero_ps();
            transpose16_avx512(r);
            if (rows == 16) /* plain stores where no mask is needed: masked ones are slow on Zen 4 */
                for (int l = 0; l < 16; l++) _mm512_storeu_ps(dst + l * psp + k, r[l]);
            else
                for (int l = 0; l < 16; l++) _mm512_mask_storeu_ps(dst + l * psp + k, (__mmask16)((1u << rows) - 1), r[l]);
        }
    }
    if (!xa) return;
    for (int64_t k = 0; k < psp * 16; k += 16)
        _mm_storeu_si128((__m128i *)(code + k), _mm512_cvtepi32_epi8(_mm512_loadu_si512(tc + k)));
}
#endif

static void lanes_to_planes(const float *ty, const float *tx, const int32_t *tc, int64_t psp, float *y, float *xa,
                            uint8_t *code) {
#if defined(ML_HAVE_AVX512_PATH)
    if (!ml__blk16_generic && ML_CPU_HAS_AVX512()) {
        lanes_to_planes_avx512(ty, tx, tc, psp, y, xa, code);
        return;
    }
#endif
    lanes_to_planes_scalar(ty, tx, tc, psp, y, xa, code);
}

/* One image's block (p, w columns, oh x ow windows): each window's max and
 * argmax lane by lane, as bn_pool_plane_avx512 / the row-by-row path take
 * them, into ty (output after the ReLU), tx (xhat at the argmax), tc (code). */
static void pool_image_generic(const float *p, int64_t w, int64_t oh, int64_t ow, const blk_consts *k0, float *ty,
                               float *tx, int32_t *tc) {
    ml_v16f vm, vis, vsc, vsh;
    ml_v16i_b onx;
    memcpy(&vm, k0->m, sizeof vm), memcpy(&vis, k0->is, sizeof vis), memcpy(&vsc, k0->scale, sizeof vsc);
    memcpy(&vsh, k0->shift, sizeof vsh), memcpy(&onx, k0->onx, sizeof onx);
    const ml_v16f zero = {0};
    for (int64_t r = 0, k = 0; r < oh; r++)
        for (int64_t q = 0; q < ow; q++, k++) {
            const float *p0 = p + (2 * r * w + 2 * q) * 16, *p1 = p0 + w * 16;
            const ml_v16f x0 = ml__load16f(p0), x1 = ml__load16f(p0 + 16), x2 = ml__load16f(p1),
                          x3 = ml__load16f(p1 + 16);
            ml_v16f best = sel16(onx, x0, x0 * vsc + vsh), bx = x0;
            const ml_v16f v1 = sel16(onx, x1, x1 * vsc + vsh), v2 = sel16(onx, x2, x2 * vsc + vsh),
                          v3 = sel16(onx, x3, x3 * vsc + vsh);
            ml_v16i_b cd = {0}, t;
            t = ~(v1 <= best) & (best == best);
            best = sel16(t, v1, best), bx = sel16(t, x1, bx), cd = (cd & ~t) | (t & 1);
            t = ~(v2 <= best) & (best == best);
            best = sel16(t, v2, best), bx = sel16(t, x2, bx), cd = (cd & ~t) | (t & 2);
            t = ~(v3 <= best) & (best == best);
            best = sel16(t, v3, best), bx = sel16(t, x3, bx), cd = (cd & ~t) | (t & 3);
            const ml_v16f xh = (bx - vm) * vis;
            const ml_v16f z = sel16(onx, best * vsc + vsh, best);
            const ml_v16i_b keep = (z > zero) | (z != z);
            const ml_v16f yv = sel16(keep, z, zero);
            cd |= (z > zero) & ML__POOL_GATE;
            memcpy(ty + k * 16, &yv, sizeof yv);
            memcpy(tx + k * 16, &xh, sizeof xh);
            memcpy(tc + k * 16, &cd, sizeof cd);
        }
}

#if defined(ML_HAVE_AVX512_PATH)
/* The 2x2 window at p (pixel-major, 16 lanes, rows w pixels apart): x, and
 * the values pooled: x on onx lanes, else z = x * scale + shift. */
ML_TARGET_AVX512 static inline void window_values_avx512(const float *p, int64_t w, __m512 vsc, __m512 vsh,
                                                         __mmask16 onx, __m512 x[4], __m512 v[4]) {
    const float *at[4] = {p, p + 16, p + w * 16, p + w * 16 + 16};
    for (int i = 0; i < 4; i++) {
        x[i] = _mm512_loadu_ps(at[i]);
        v[i] = _mm512_mask_mov_ps(_mm512_add_ps(_mm512_mul_ps(x[i], vsc), vsh), onx, x[i]);
    }
}

/* The same with mask registers (GCC turned the generic vector compares into
 * scalar code: the forward took twice the plain path's time). */
ML_TARGET_AVX512 static void pool_image_avx512(const float *p, int64_t w, int64_t oh, int64_t ow,
                                               const blk_consts *k0, float *ty, float *tx, int32_t *tc) {
    const __m512 vm = _mm512_loadu_ps(k0->m), vis = _mm512_loadu_ps(k0->is), vsc = _mm512_loadu_ps(k0->scale),
                 vsh = _mm512_loadu_ps(k0->shift), zero = _mm512_setzero_ps();
    const __mmask16 onx = _mm512_cmpneq_epi32_mask(_mm512_loadu_si512(k0->onx), _mm512_setzero_si512());
    for (int64_t r = 0, k = 0; r < oh; r++)
        for (int64_t q = 0; q < ow; q++, k++) {
            __m512 x[4], v[4];
            window_values_avx512(p + (2 * r * w + 2 * q) * 16, w, vsc, vsh, onx, x, v);
            __m512 best = v[0], bx = x[0];
            __m512i cd = ml__pool4_argmax_avx512(&best, &bx, v[1], v[2], v[3], x[1], x[2], x[3]);
            const __m512 xh = _mm512_mul_ps(_mm512_sub_ps(bx, vm), vis);
            const __m512 z = _mm512_mask_mov_ps(best, onx, _mm512_add_ps(_mm512_mul_ps(best, vsc), vsh));
            const __mmask16 keep = _mm512_cmp_ps_mask(z, zero, _CMP_GT_OQ) | _mm512_cmp_ps_mask(z, z, _CMP_UNORD_Q);
            cd = _mm512_mask_or_epi32(cd, _mm512_cmp_ps_mask(z, zero, _CMP_GT_OQ), cd,
                                      _mm512_set1_epi32(ML__POOL_GATE));
            _mm512_storeu_ps(ty + k * 16, _mm512_maskz_mov_ps(keep, z));
            _mm512_storeu_ps(tx + k * 16, xh);
            _mm512_storeu_si512(tc + k * 16, cd);
        }
}

/* The outputs alone (no backward to follow): the maxima by the same
 * compares, the same arithmetic after them (the same bits); no argmax, xhat
 * or codes. */
ML_TARGET_AVX512 static void pool_image_y_avx512(const float *p, int64_t w, int64_t oh, int64_t ow,
                                                 const blk_consts *k0, float *ty) {
    const __m512 vsc = _mm512_loadu_ps(k0->scale), vsh = _mm512_loadu_ps(k0->shift), zero = _mm512_setzero_ps();
    const __mmask16 onx = _mm512_cmpneq_epi32_mask(_mm512_loadu_si512(k0->onx), _mm512_setzero_si512());
    for (int64_t r = 0, k = 0; r < oh; r++)
        for (int64_t q = 0; q < ow; q++, k++) {
            __m512 x[4], v[4];
            window_values_avx512(p + (2 * r * w + 2 * q) * 16, w, vsc, vsh, onx, x, v);
            __m512 best = v[0];
            ml__pool4_max_avx512(&best, v[1], v[2], v[3]);
            const __m512 z = _mm512_mask_mov_ps(best, onx, _mm512_add_ps(_mm512_mul_ps(best, vsc), vsh));
            const __mmask16 keep = _mm512_cmp_ps_mask(z, zero, _CMP_GT_OQ) | _mm512_cmp_ps_mask(z, z, _CMP_UNORD_Q);
            _mm512_storeu_ps(ty + k * 16, _mm512_maskz_mov_ps(keep, z));
        }
}
#endif

/* Set by tests: the generic vector code instead of the AVX-512 kernels. */
int ml__blk16_generic = 0;

/* y_only: no backward follows (tx and tc may be left unwritten). */
static void pool_image(const float *p, int64_t w, int64_t oh, int64_t ow, const blk_consts *k0, float *ty, float *tx,
                       int32_t *tc, int y_only) {
#if defined(ML_HAVE_AVX512_PATH)
    if (!ml__blk16_generic && ML_CPU_HAS_AVX512()) {
        if (y_only)
            pool_image_y_avx512(p, w, oh, ow, k0, ty);
        else
            pool_image_avx512(p, w, oh, ow, k0, ty, tx, tc);
        return;
    }
#else
    (void)y_only;
#endif
    pool_image_generic(p, w, oh, ow, k0, ty, tx, tc);
}

/* Block b's statistics and constants from the runs in j->part, and its
 * channels' mean, inv and variance out. */
static void block_finish(const blk_job *j, int64_t b, blk_stat *st) {
    combine_units(j, b, 1, st->var);
    block_consts(j, b, st);
}

static void block_out(const blk_job *j, int64_t b, const blk_stat *st) {
    for (int l = 0; l < 16; l++) {
        const int64_t ch = b * 16 + l;
        j->mean[ch] = st->k.m[l], j->inv[ch] = st->k.is[l];
        if (j->var_out) j->var_out[ch] = (float)st->var[l];
    }
}

/* Units (i, b), i in [lo, hi), b in [b0, b1): the pool and the pixel-major ->
 * NCHW copy of the results, through the thread's tmp. */
static void pool_units(const blk_job *j, int t, int64_t lo, int64_t hi, int64_t b0, int64_t b1, const blk_stat *st) {
    const int64_t nb = j->c / 16, w = j->w, sp = j->h * w, oh = j->h / 2, ow = w / 2, psp = oh * ow;
    float *ty = j->tmp + t * psp * 48, *tx = ty + psp * 16;
    int32_t *tc = (int32_t *)(tx + psp * 16);
    for (int64_t i = lo; i < hi; i++)
        for (int64_t b = b0; b < b1; b++) {
            const int64_t u = i * nb + b, poff = (i * j->c + b * 16) * psp; /* to the NCHW planes of the pooled tensors */
            if (!j->code) { /* no backward to follow: the output alone */
                pool_image(j->x + u * sp * 16, w, oh, ow, &st[b].k, ty, tx, tc, 1);
                lanes_to_planes(ty, tx, tc, psp, j->out + poff, NULL, NULL);
                continue;
            }
            pool_image(j->x + u * sp * 16, w, oh, ow, &st[b].k, ty, tx, tc, 0);
            lanes_to_planes(ty, tx, tc, psp, j->out + poff, j->xhat_at + poff, j->code + u * psp * 16);
        }
}

/* Split by images, thread t of nt: the runs of its images, the means (every
 * thread for itself), the squared deviations, the variances and constants,
 * then the pool of its images. In a parallel region (the barriers wait for
 * the other threads' runs). */
static void blk_forward_images_after_runs(const blk_job *j, int t, int nt);

static void blk_forward_images(const blk_job *j, int t, int nt) {
    const int64_t n = j->n, nb = j->c / 16, lo = n * t / nt, hi = n * (t + 1) / nt;
    unit_sums(j, lo, hi, 0, nb, NULL);
#pragma omp barrier
    blk_forward_images_after_runs(j, t, nt);
}

/* The rest once every image's runs are in j->part (after a barrier). */
static void blk_forward_images_after_runs(const blk_job *j, int t, int nt) {
    const int64_t n = j->n, nb = j->c / 16, lo = n * t / nt, hi = n * (t + 1) / nt;
    blk_stat *st = j->stat + t * nb;
    for (int64_t b = 0; b < nb; b++) combine_units(j, b, 0, st[b].mean);
    unit_sums(j, lo, hi, 0, nb, st);
#pragma omp barrier
    for (int64_t b = 0; b < nb; b++) {
        block_finish(j, b, &st[b]);
        if (t == 0) block_out(j, b, &st[b]);
    }
    pool_units(j, t, lo, hi, 0, nb, st);
}

/* Split by blocks (or on one thread): each of the thread's blocks over all
 * images, its statistics then its pool, while the block is in cache. */
static void blk_forward_blocks(const blk_job *j, int t, int nt) {
    const int64_t n = j->n, nb = j->c / 16;
    blk_stat *st = j->stat + t * nb;
    for (int64_t b = nb * t / nt; b < nb * (t + 1) / nt; b++) {
        unit_sums(j, 0, n, b, b + 1, NULL);
        combine_units(j, b, 0, st[b].mean);
        unit_sums(j, 0, n, b, b + 1, st);
        block_finish(j, b, &st[b]);
        block_out(j, b, &st[b]);
        pool_units(j, t, 0, n, b, b + 1, st);
    }
}

/* With a backward to follow (recording), split by images as the conv's
 * side-by-side chunks (n * t / nt: the chunk boundaries for the batches that
 * matter): each thread reads what its conv wrote and writes the pooled
 * output, xhat and codes of its images, which its next conv and this op's
 * backward (sums and dx pass, split by images) read. Without one (an
 * evaluation's forward), by blocks as before: the image split measured
 * slower there (docs/results.md, round 7). The same additions either way:
 * the same bits. */
static void blk_forward(const blk_job *j, int nt, int by_images, int64_t work) {
    if (nt < 2 || work < ML_PAR_MIN_ELEMS) {
        blk_forward_blocks(j, 0, 1);
        return;
    }
    if (by_images) {
#pragma omp parallel num_threads(nt)
        blk_forward_images(j, omp_get_thread_num(), omp_get_num_threads());
    } else {
#pragma omp parallel num_threads(nt)
        blk_forward_blocks(j, omp_get_thread_num(), omp_get_num_threads());
    }
}

/* ---- an evaluation's small blocks: the conv inside the batch norm's region ----------------
 * With no backward to follow and a small conv output (an evaluation's blocks 3
 * and 4 at 7x7 and 3x3), the conv's region and the batch norm's were two
 * regions over few data, each thread's images and blocks crossing to the
 * other's cache between them (blocks 3 and 4 scaled 1.6x on 2 threads). Here
 * one region: each thread convolves its own images (the images split as
 * blk_forward_images's), in chunks, summing each chunk's runs while it is in
 * cache, then the statistics and the pool of its images as
 * blk_forward_images. Same bits: each image's conv output depends on that image
 * alone, and the statistics add the same runs in the same order. */

/* Conv outputs of at most this many pixels take the fused route; images per
 * chunk: about this many bytes of plain input plus output. */
#ifndef ML_TAIL_MAX_PIXELS
#define ML_TAIL_MAX_PIXELS 64
#endif
#ifndef ML_TAIL_CHUNK_BYTES
#define ML_TAIL_CHUNK_BYTES ((int64_t)1 << 20)
#endif

typedef struct tail_job {
    const ml_conv_shape *s;
    const float *x, *w;
    float *y;
    const blk_job *j;
    int most;   /* images per conv chunk */
    int failed; /* a thread's conv failed: every thread leaves after the barrier */
} tail_job;

/* Set by tests: 1 keeps such blocks on the two-region route. */
int ml__blk16_tail_off = 0;

/* On one thread the route measured even with the two passes (no region to
 * save): it stays on them. */
static int tail_suits(const ml_conv_shape *s, int keep, int nt) {
    return !keep && nt > 1 && !ml__blk16_tail_off && (int64_t)s->oh * s->ow <= ML_TAIL_MAX_PIXELS;
}

static int tail_chunk_images(const ml_conv_shape *s) {
    const int64_t per = ((int64_t)s->c * s->h * s->w + (int64_t)s->o * s->oh * s->ow) * (int64_t)sizeof(float);
    const int64_t most = ML_TAIL_CHUNK_BYTES / per;
    return most < 1 ? 1 : most > INT32_MAX ? INT32_MAX : (int)most;
}

static void tail_chunk_runs(void *arg, int lo, int hi) {
    const blk_job *j = arg;
    unit_sums(j, lo, hi, 0, j->c / 16, NULL);
}

static void tail_forward_images(tail_job *tj, int t, int nt) {
    const blk_job *j = tj->j;
    const int lo = (int)(j->n * t / nt), hi = (int)(j->n * (t + 1) / nt);
    if (ml__conv_dnnl_forward_blk16_images(tj->s, tj->x, tj->w, tj->y, lo, hi, tj->most, tail_chunk_runs,
                                           (void *)j)) {
#pragma omp atomic write
        tj->failed = 1;
    }
#pragma omp barrier
    int failed;
#pragma omp atomic read
    failed = tj->failed;
    if (!failed) blk_forward_images_after_runs(j, t, nt);
}

/* 0 when done; -1: the conv could not run this way (nothing written that the
 * plain route does not write again). */
static int tail_forward(const ml_conv_shape *s, const float *x, const float *w, float *y, const blk_job *j, int nt) {
    tail_job tj = {.s = s, .x = x, .w = w, .y = y, .j = j, .most = tail_chunk_images(s), .failed = 0};
#pragma omp parallel num_threads(nt)
    tail_forward_images(&tj, omp_get_thread_num(), omp_get_num_threads());
    return tj.failed ? -1 : 0;
}

/* As ops_nn.c's: running = (1 - momentum) * running + momentum * batch, variance unbiased. */
static void update_running(float *running_mean, float *running_var, const float *mean, const float *var, int64_t c,
                           int64_t count, float momentum) {
    float unbias = (float)count / (float)(count - 1);
    for (int64_t i = 0; i < c; i++) {
        running_mean[i] = (1 - momentum) * running_mean[i] + momentum * mean[i];
        running_var[i] = (1 - momentum) * running_var[i] + momentum * var[i] * unbias;
    }
}

/* Whether conv(x, w, stride 1, pad 1) -> batch norm (batch statistics) +
 * ReLU + pool can take this route: oneDNN runs the conv with nChw16c for y
 * and dy, and the fused op's own conditions hold. */
static int applies(ml_ctx *ctx, ml_tensor *x, ml_tensor *w, ml_tensor *gamma, ml_tensor *beta, ml_conv_shape *s) {
    if (!blk16_on() || !x || !w || !gamma || !beta || ctx->status != ML_OK) return 0;
    if (x->ndim != 4 || w->ndim != 4 || x->shape[1] != w->shape[1] || x->numel > INT32_MAX) return 0;
    if (gamma->ndim != 1 || gamma->shape[0] != w->shape[0] || beta->ndim != 1 || beta->shape[0] != w->shape[0])
        return 0;
    if (ml__conv_shape_init(s, (int)x->shape[0], (int)x->shape[1], (int)x->shape[2], (int)x->shape[3],
                            (int)w->shape[0], (int)w->shape[2], (int)w->shape[3], 1, 1))
        return 0;
    if (s->oh < 2 || s->ow < 2 || (int64_t)s->n * s->o * s->oh * s->ow > INT32_MAX) return 0;
    if ((int64_t)s->n * s->oh * s->ow < 2) return 0;
    return ml__conv_dnnl_blk16_ok(s);
}

/* The pooled output t [n, c, oh, ow], with its aux (mean, inv, var per
 * channel, then xhat at each argmax) and codes; NULL when out of memory.
 * Without keep (not recording: an evaluation's forward, no backward
 * follows) neither xhat at the argmax nor the codes. */
static ml_tensor *pooled_outputs(ml_ctx *ctx, int64_t n, int64_t c, int64_t oh, int64_t ow, int keep, float **aux,
                                 uint8_t **code) {
    ml_tensor *t = ml_tensor_new(ctx, 4, ML_SHAPE(n, c, oh, ow));
    if (!t) return NULL;
    *aux = ml_ctx_alloc(ctx, (3 * (size_t)c + (keep ? (size_t)t->numel : 0)) * sizeof(float));
    *code = keep ? ml_ctx_alloc(ctx, (size_t)t->numel) : NULL;
    return *aux && (!keep || *code) ? t : NULL;
}

ml_tensor *ml__conv_bn_relu_pool_blk16(ml_ctx *ctx, ml_tensor *x, ml_tensor *w, ml_tensor *gamma, ml_tensor *beta,
                                       float *running_mean, float *running_var, float momentum, float eps,
                                       int *taken) {
    ml_conv_shape s;
    *taken = applies(ctx, x, w, gamma, beta, &s);
    if (!*taken) return NULL;
    const int64_t n = s.n, c = s.o, h = s.oh, wd = s.ow, oh = h / 2, ow = wd / 2;
    const int nt = omp_in_parallel() || n < 2 ? 1 : omp_get_max_threads();
    const int keep = ml_ctx_recording(ctx), by_images = nt > 1 && keep;
    ml_tensor *y = ml_tensor_new(ctx, 4, ML_SHAPE(n, c, h, wd)), *t = NULL;
    float *aux = NULL;
    uint8_t *code = NULL;
    /* Split by images, the outputs go below the conv's scratch: placed after
     * it they reuse its first thread's region (the arena rewinds it), and
     * every other thread's stores of its images' outputs would take the
     * lines from that thread's cache first (lanes_to_planes ran 2.6x slower
     * on the second thread of supervised cnn4). */
    if (by_images && !(t = pooled_outputs(ctx, n, c, oh, ow, keep, &aux, &code))) return NULL;
    if (!y) return NULL;
    const int tail = tail_suits(&s, keep, nt); /* the conv runs inside the batch norm's region, below */
    if (!tail && forward_blk16(ctx, &s, x->data, w->data, y->data)) return NULL;
    ml_node *cn = ml__record(ctx, ML_OP_CONV2D, y, x, w);
    if (cn) {
        cn->ip[0] = 1, cn->ip[1] = 1, cn->ip[2] = s.h, cn->ip[3] = s.w;
        cn->fp = 1.f; /* output blocked */
    }
    if (!by_images && !(t = pooled_outputs(ctx, n, c, oh, ow, keep, &aux, &code))) return NULL;
    ml_arena_mark m = ml_arena_get_mark(ctx->arena);
    float *tmp = ml_ctx_alloc(ctx, (size_t)nt * (size_t)(oh * ow) * 48 * sizeof(float));
    ml_v8d *part = ml_ctx_alloc(ctx, 4 * (size_t)(n * (c / 16)) * sizeof(ml_v8d));
    blk_stat *stat = ml_ctx_alloc(ctx, (size_t)nt * (size_t)(c / 16) * sizeof(blk_stat));
    if (!tmp || !part || !stat) return NULL;
    blk_job j = {.n = n, .c = c, .h = h, .w = wd, .eps = eps, .x = y->data, .gamma = gamma->data,
                 .beta = beta->data, .out = t->data, .mean = aux, .inv = aux + c, .var_out = aux + 2 * c,
                 .xhat_at = keep ? aux + 3 * c : NULL, .code = code, .part = part, .stat = stat, .tmp = tmp};
    const int fused = tail && !tail_forward(&s, x->data, w->data, y->data, &j, nt);
    if (tail && !fused && forward_blk16(ctx, &s, x->data, w->data, y->data)) return NULL; /* not by images */
    if (!fused) blk_forward(&j, nt, by_images, 3 * y->numel);
    ml_arena_rewind(ctx->arena, m);
    if (running_mean && running_var) update_running(running_mean, running_var, aux, aux + 2 * c, c, n * h * wd, momentum);
    ml_node *nd = ml__record3(ctx, ML_OP_BN_RELU, t, y, gamma, beta);
    if (nd) {
        nd->aux = aux;
        nd->fp = eps;
        nd->ip[0] = 1;
        nd->ip[1] = 1; /* input blocked */
        nd->code = code;
    }
    return t;
}

/* ---- backward ---------------------------------------------------------------------------- */

typedef struct blk_dx_job {
    int64_t n, c, h, w;
    const float *x, *y, *g, *mean, *inv, *coef;
    const uint8_t *code;
    float *out;
} blk_dx_job;

/* As bn_relu_pool_dx_range, unit (image, block): every element's share of
 * the means, lane-wise, then each window's argmax its ReLU-gated gradient
 * (g is NCHW; the codes pixel-major, gate in bit 2). */
ML_KERNEL static void blk_dx_range_generic(const blk_dx_job *j, int64_t lo, int64_t hi) {
    const int64_t c = j->c, nb = c / 16, w = j->w, sp = j->h * w, oh = j->h / 2, ow = w / 2, psp = oh * ow;
    for (int64_t u = lo; u < hi; u++) {
        const int64_t i = u / nb, b = u % nb;
        ml_v16f vm, vis, vnc, vmg, vmgh;
        for (int l = 0; l < 16; l++) {
            const int64_t ch = b * 16 + l;
            vm[l] = j->mean[ch], vis[l] = j->inv[ch];
            vnc[l] = -j->coef[3 * ch], vmg[l] = j->coef[3 * ch + 1], vmgh[l] = j->coef[3 * ch + 2];
        }
        const float *xp = j->x + u * sp * 16;
        float *q = j->out + u * sp * 16;
        for (int64_t k = 0; k < sp; k++) {
            const ml_v16f r = vnc * (vmg + (ml__load16f(xp + k * 16) - vm) * vis * vmgh);
            memcpy(q + k * 16, &r, sizeof r);
        }
        const uint8_t *cp = j->code + u * psp * 16;
        for (int l = 0; l < 16; l++) {
            const float coef = j->coef[3 * (b * 16 + l)];
            const float *gp = j->g + (i * c + b * 16 + l) * psp;
            float *ql = q + l;
            for (int64_t r = 0, k = 0; r < oh; r++)
                for (int64_t cc = 0; cc < ow; cc++, k++) {
                    const int cd = cp[k * 16 + l];
                    ql[((2 * r + ((cd & ML__POOL_POS) >> 1)) * w + 2 * cc + (cd & 1)) * 16] +=
                        cd & ML__POOL_GATE ? coef * gp[k] : 0.f;
                }
        }
    }
}

#if defined(ML_HAVE_AVX512_PATH)
/* The same in one pass over the unit: each window's four pixels get their
 * share of the means and, where the code points, the gated gradient (the
 * same two roundings per element); the scalar per-lane scatter took most of
 * the generic kernel's time. The pixels of an odd last row or column lie in
 * no window. */
ML_TARGET_AVX512 static void blk_dx_unit_avx512(const blk_dx_job *j, int64_t u) {
    const int64_t c = j->c, nb = c / 16, w = j->w, h = j->h, sp = h * w, oh = h / 2, ow = w / 2, psp = oh * ow;
    const int64_t i = u / nb, b = u % nb;
    float nc[16], cf[16];
    for (int l = 0; l < 16; l++) nc[l] = -j->coef[3 * (b * 16 + l)], cf[l] = j->coef[3 * (b * 16 + l)];
    const __m512i three = _mm512_set1_epi32(3);
    const __m512i gidx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                            _mm512_set1_epi32((int)psp));
    const __m512i cidx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                            _mm512_set1_epi32(3));
    const __m512 vm = _mm512_loadu_ps(j->mean + b * 16), vis = _mm512_loadu_ps(j->inv + b * 16),
                 vnc = _mm512_loadu_ps(nc), vcoef = _mm512_loadu_ps(cf),
                 vmg = _mm512_i32gather_ps(cidx, j->coef + 3 * b * 16 + 1, 4),
                 vmgh = _mm512_i32gather_ps(cidx, j->coef + 3 * b * 16 + 2, 4);
    const float *xp = j->x + u * sp * 16;
    float *q = j->out + u * sp * 16;
    const float *g0 = j->g + (i * c + b * 16) * psp;
    const uint8_t *cp = j->code + u * psp * 16;
#define SHARE(p) _mm512_mul_ps(vnc, _mm512_add_ps(vmg, _mm512_mul_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(p), vm), vis), vmgh)))
    for (int64_t r = 0, k = 0; r < oh; r++)
        for (int64_t cc = 0; cc < ow; cc++, k++) {
            const __m512i cd = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(cp + k * 16)));
            const __mmask16 gate = _mm512_test_epi32_mask(cd, _mm512_set1_epi32(ML__POOL_GATE));
            const __m512 add = _mm512_maskz_mul_ps(gate, vcoef, _mm512_i32gather_ps(gidx, g0 + k, 4));
            const __m512i pos = _mm512_and_si512(cd, three);
            for (int p = 0; p < 4; p++) {
                float *at = q + ((2 * r + (p >> 1)) * w + 2 * cc + (p & 1)) * 16;
                const __m512 v = SHARE(xp + (at - q));
                const __mmask16 here = _mm512_cmpeq_epi32_mask(pos, _mm512_set1_epi32(p));
                _mm512_storeu_ps(at, _mm512_mask_add_ps(v, here, v, add));
            }
        }
    for (int64_t r = 0; r < 2 * oh; r++) /* odd width: the last column */
        for (int64_t cc = 2 * ow; cc < w; cc++) _mm512_storeu_ps(q + (r * w + cc) * 16, SHARE(xp + (r * w + cc) * 16));
    for (int64_t k = 2 * oh * w; k < sp; k++) /* odd height: the last row */
        _mm512_storeu_ps(q + k * 16, SHARE(xp + k * 16));
#undef SHARE
}
#endif

static void blk_dx_range(void *arg, int64_t lo, int64_t hi) {
    const blk_dx_job *j = arg;
#if defined(ML_HAVE_AVX512_PATH)
    if (!ml__blk16_generic && ML_CPU_HAS_AVX512()) {
        for (int64_t u = lo; u < hi; u++) blk_dx_unit_avx512(j, u);
        return;
    }
#endif
    blk_dx_range_generic(j, lo, hi);
}

void ml__bn_pool_dx_blk16(int64_t n, int64_t c, int64_t h, int64_t w, const float *x, const float *y,
                          const float *g, const uint8_t *code, const float *mean, const float *inv,
                          const float *coef, float *out) {
    blk_dx_job j = {n, c, h, w, x, y, g, mean, inv, coef, code, out};
    ML__PAR_RUN(n * (c / 16), 2 * n * c * h * w, 1, blk_dx_range, &j);
}

int ml__bn_relu_unblock(ml_ctx *ctx, ml_node *nd) {
    if (!nd->ip[1]) return 0;
    ml_tensor *a = nd->in[0];
    const int64_t sp = a->shape[2] * a->shape[3];
    ml_arena_mark m = ml_arena_get_mark(ctx->arena);
    float *tmp = ml_ctx_alloc(ctx, (size_t)a->numel * sizeof(float));
    if (!tmp) return -1;
    memcpy(tmp, a->data, (size_t)a->numel * sizeof(float));
    ml__nchw_from_blk16(tmp, a->data, a->shape[0], a->shape[1], sp);
    /* the codes: pixel-major -> NCHW planes, the gate bit kept (the plain backward reads it) */
    const int64_t n = a->shape[0], c = a->shape[1], nb = c / 16, psp = (a->shape[2] / 2) * (a->shape[3] / 2);
    uint8_t *code = (uint8_t *)nd->code, *ct = (uint8_t *)tmp; /* written by this file's forward */
    memcpy(ct, code, (size_t)(n * c * psp));
    for (int64_t i = 0; i < n; i++)
        for (int64_t b = 0; b < nb; b++)
            for (int64_t l = 0; l < 16; l++)
                for (int64_t k = 0; k < psp; k++)
                    code[(i * c + b * 16 + l) * psp + k] = ct[((i * nb + b) * psp + k) * 16 + l];
    ml_arena_rewind(ctx->arena, m);
    nd->ip[1] = 0;
    if (a->node && a->node->op == ML_OP_CONV2D) a->node->fp = 0.f;
    return 0;
}
