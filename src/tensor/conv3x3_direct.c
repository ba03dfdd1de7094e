/* conv3x3_direct.c: one output plane of a 3x3, stride 1, pad 1 convolution of
 * an input with few channels (the CNN's first layer), computed directly.
 *
 * Why: an evaluation's block 1 (ops_nn.c, ml__conv_bn_relu_pool_direct) runs
 * its conv inside the batch norm's channel steps, one plane at a time, so the
 * conv output (80 MB for a 20-way 5-shot 15-query episode) never leaves L2
 * instead of going to memory and coming back. That is only allowed if the
 * planes are bitwise what the im2col + SGEMM route (conv.c) gives: its GEMM
 * over K = c_in * 9 taps accumulates each output, as measured on oneDNN's
 * AVX-512 SGEMM, as one chain of fused multiply-adds from zero in tap order
 * (input channel, kernel row, kernel column). The plane kernel does exactly
 * that; ml__conv3x3_direct_matches checks it against ml__conv2d_forward at
 * run time for each shape before the fused route is taken (another SGEMM
 * build or CPU may sum otherwise: then the route is not taken).
 *
 * Layout: x one image [c_in, h, w], wk one output channel's c_in * 9 weights,
 * y one plane [h, w]. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/dispatch.h"
#include "metalearn/core.h"
#include "tensor/conv.h"
#include "tensor/internal.h"

#if defined(ML_HAVE_AVX512_PATH)
#include <immintrin.h>
#endif

/* The generic twin (tests; CPUs without AVX-512): the same chain with fmaf. */
void ml__conv3x3_plane_ref(const float *x, int64_t c_in, int64_t h, int64_t w, const float *wk, float *y) {
    for (int64_t r = 0; r < h; r++)
        for (int64_t q = 0; q < w; q++) {
            float acc = 0.f;
            for (int64_t ci = 0; ci < c_in; ci++)
                for (int ki = 0; ki < 3; ki++)
                    for (int kj = 0; kj < 3; kj++) {
                        const int64_t rr = r + ki - 1, qq = q + kj - 1;
                        const float v = rr >= 0 && rr < h && qq >= 0 && qq < w ? x[(ci * h + rr) * w + qq] : 0.f;
                        acc = fmaf(wk[ci * 9 + ki * 3 + kj], v, acc);
                    }
            y[r * w + q] = acc;
        }
}

#if defined(ML_HAVE_AVX512_PATH)
/* The plane as flat runs of 16 outputs (row ends included: a 28-wide plane
 * is 49 vectors, not 56 with two per row). Tap (ki, kj) of output p reads
 * input p + (ki - 1) w + kj - 1; its lanes outside the image (rows above or
 * below, the column before the first or after the last) load zero, and the
 * multiply-add still runs on them, as the GEMM's does on im2col's zeros (a
 * skipped one could turn an accumulated -0 into +0). The masks come from the
 * lanes' rows and columns, kept as vectors: no tables. */
ML_TARGET_AVX512 static void conv3x3_plane_avx512(const float *x, int64_t c_in, int64_t h, int64_t w,
                                                   const float *wk, float *y) {
    const int64_t sp = h * w;
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i vw = _mm512_set1_epi32((int32_t)w), last = _mm512_set1_epi32((int32_t)(w - 1));
    const __m512i vsp = _mm512_set1_epi32((int32_t)sp), zero = _mm512_setzero_si512();
    int32_t col0[16]; /* the first vector's columns; each next vector adds 16 and wraps by w */
    for (int l = 0; l < 16; l++) col0[l] = (int32_t)(l % w);
    __m512i col = _mm512_loadu_si512(col0);
    const __m512i step = _mm512_set1_epi32((int32_t)(16 % w)), wrap_at = vw;
    for (int64_t p0 = 0; p0 < sp; p0 += 16) {
        const __m512i p = _mm512_add_epi32(lane, _mm512_set1_epi32((int32_t)p0));
        const __mmask16 in = _mm512_cmplt_epi32_mask(p, vsp);
        const __mmask16 row_m[3] = {
            in & _mm512_cmpge_epi32_mask(p, vw),                                   /* a row above */
            in,                                                                    /* this row */
            in & _mm512_cmplt_epi32_mask(_mm512_add_epi32(p, vw), vsp)};           /* a row below */
        const __mmask16 col_m[3] = {_mm512_cmpneq_epi32_mask(col, zero), 0xFFFF,
                                    _mm512_cmpneq_epi32_mask(col, last)};
        __m512 acc = _mm512_setzero_ps();
        for (int64_t ci = 0; ci < c_in; ci++) {
            const float *xc = x + ci * sp + p0;
            for (int ki = 0; ki < 3; ki++)
                for (int kj = 0; kj < 3; kj++) {
                    const __mmask16 m = row_m[ki] & col_m[kj];
                    const int64_t off = (ki - 1) * w + kj - 1;
                    const __m512 v = _mm512_maskz_loadu_ps(m, (const char *)xc + off * (int64_t)sizeof(float));
                    acc = _mm512_fmadd_ps(_mm512_set1_ps(wk[ci * 9 + ki * 3 + kj]), v, acc);
                }
        }
        if (p0 + 16 <= sp)
            _mm512_storeu_ps(y + p0, acc);
        else
            _mm512_mask_storeu_ps(y + p0, in, acc);
        col = _mm512_add_epi32(col, step); /* columns of the next 16 outputs */
        col = _mm512_mask_sub_epi32(col, _mm512_cmpge_epi32_mask(col, wrap_at), col, vw);
    }
}

/* One input channel, rows of at most NV * 16 columns: each output row's NV
 * vectors from the input rows above, at and below it, each loaded once at
 * its three column shifts and kept in registers for the three output rows
 * that read it (3 loads per 9 multiply-adds instead of 9). The chain is the
 * same: taps in (row, column) order from zero; rows outside the image are
 * zero vectors, columns outside it zero lanes. Lanes past the row's end are
 * computed and stored over the next row's start, which the next row rewrites
 * (a masked store at the plane's end only). */
typedef struct row_masks {
    __mmask16 at[3]; /* per column shift kj: lanes whose input column is inside the row */
} row_masks;

ML_TARGET_AVX512 static inline __attribute__((always_inline)) void load_row_avx512(__m512 *r, const float *x,
                                                                                    int64_t q, int64_t h, int64_t w,
                                                                                    const row_masks *m, int nv) {
    for (int v = 0; v < nv; v++)
        for (int kj = 0; kj < 3; kj++)
            r[kj * nv + v] = q >= 0 && q < h ? _mm512_maskz_loadu_ps(m[v].at[kj], x + q * w + 16 * v + kj - 1)
                                             : _mm512_setzero_ps();
}

/* Output row r from the rows above, at and below it (below: loaded here). */
ML_TARGET_AVX512 static inline __attribute__((always_inline)) void row_out_avx512(
    const float *x, int64_t r, int64_t h, int64_t w, const __m512 *wv, const row_masks *m, const __m512 *above,
    const __m512 *at, __m512 *below, float *y, const int nv) {
    load_row_avx512(below, x, r + 1, h, w, m, nv);
    const int64_t sp = h * w;
    for (int v = 0; v < nv; v++) {
        __m512 acc = _mm512_setzero_ps();
        for (int kj = 0; kj < 3; kj++) acc = _mm512_fmadd_ps(wv[kj], above[kj * nv + v], acc);
        for (int kj = 0; kj < 3; kj++) acc = _mm512_fmadd_ps(wv[3 + kj], at[kj * nv + v], acc);
        for (int kj = 0; kj < 3; kj++) acc = _mm512_fmadd_ps(wv[6 + kj], below[kj * nv + v], acc);
        const int64_t o = r * w + 16 * v;
        if (o + 16 <= sp)
            _mm512_storeu_ps(y + o, acc);
        else
            _mm512_mask_storeu_ps(y + o, m[v].at[1], acc);
    }
}

/* Three rows per turn, so that the three row arrays rotate by name and stay
 * in registers (an index r % 3 put them on the stack). */
ML_TARGET_AVX512 static inline __attribute__((always_inline)) void conv3x3_rows_avx512(const float *x, int64_t h,
                                                                                        int64_t w, const float *wk,
                                                                                        float *y, const int nv) {
    __m512 wv[9], a[3 * 2], b[3 * 2], c[3 * 2];
    row_masks m[2];
    for (int t = 0; t < 9; t++) wv[t] = _mm512_set1_ps(wk[t]);
    for (int v = 0; v < nv; v++) {
        const int64_t left = w - 16 * v; /* columns of this vector inside the row */
        const __mmask16 in = (__mmask16)(left >= 16 ? 0xFFFF : (1u << left) - 1);
        m[v].at[0] = v == 0 ? (__mmask16)(in & 0xFFFE) : in;
        m[v].at[1] = in;
        m[v].at[2] = left - 1 >= 16 ? in : (__mmask16)(left - 1 > 0 ? (1u << (left - 1)) - 1 : 0);
    }
    load_row_avx512(a, x, -1, h, w, m, nv);
    load_row_avx512(b, x, 0, h, w, m, nv);
    for (int64_t r = 0; r < h; r += 3) {
        row_out_avx512(x, r, h, w, wv, m, a, b, c, y, nv);
        if (r + 1 < h) row_out_avx512(x, r + 1, h, w, wv, m, b, c, a, y, nv);
        if (r + 2 < h) row_out_avx512(x, r + 2, h, w, wv, m, c, a, b, y, nv);
    }
}

ML_TARGET_AVX512 static void conv3x3_rows1_avx512(const float *x, int64_t h, int64_t w, const float *wk, float *y) {
    conv3x3_rows_avx512(x, h, w, wk, y, 1);
}

ML_TARGET_AVX512 static void conv3x3_rows2_avx512(const float *x, int64_t h, int64_t w, const float *wk, float *y) {
    conv3x3_rows_avx512(x, h, w, wk, y, 2);
}
#endif

int ml__conv3x3_direct_vector(void) {
#if defined(ML_HAVE_AVX512_PATH)
    return ML_CPU_HAS_AVX512();
#else
    return 0;
#endif
}

void ml__conv3x3_plane(const float *x, int64_t c_in, int64_t h, int64_t w, const float *wk, float *y) {
#if defined(ML_HAVE_AVX512_PATH)
    if (ML_CPU_HAS_AVX512()) {
        if (c_in == 1 && w <= 16)
            conv3x3_rows1_avx512(x, h, w, wk, y);
        else if (c_in == 1 && w <= 32)
            conv3x3_rows2_avx512(x, h, w, wk, y);
        else
            conv3x3_plane_avx512(x, c_in, h, w, wk, y);
        return;
    }
#endif
    ml__conv3x3_plane_ref(x, c_in, h, w, wk, y);
}

/* ---- whether the direct planes are the route's bits, per shape --------------------------- */

/* One image per GEMM whatever the image count (asked at 2 images: with one,
 * any size is one image per GEMM), so that the probe's GEMMs (o x h w x
 * 9 c) are the route's, down to which SGEMM (small loops or oneDNN) runs. */
int ml__conv3x3_direct_shape_ok(const ml_conv_shape *s) {
    ml_conv_shape two = *s;
    two.n = 2;
    return s->kh == 3 && s->kw == 3 && s->stride == 1 && s->pad == 1 && s->c >= 1 && s->c <= ML_CONV3X3_DIRECT_MAX_C &&
           s->h >= 1 && s->w >= 1 && (int64_t)s->h * s->w <= INT32_MAX / 2 &&
           ml__conv2d_forward_chunk_images(&two) == 1;
}

/* The verdicts so far: a few shapes per process (an evaluation has one). */
enum { VERDICTS = 16 };
static struct {
    int c, h, w, o, ok;
} verdicts[VERDICTS];
static int n_verdicts;
static pthread_mutex_t verdict_lock = PTHREAD_MUTEX_INITIALIZER;

/* Two images of random values (a fifth of them zero, signs mixed) and random
 * weights through both routes, compared bitwise. Each image is one GEMM of
 * the route's (ml__conv3x3_direct_shape_ok: one image per chunk), so two
 * images are every GEMM shape the route runs for s. */
static int probe(const ml_conv_shape *s0) {
    ml_conv_shape s;
    if (ml__conv_shape_init(&s, 2, s0->c, s0->h, s0->w, s0->o, 3, 3, 1, 1)) return 0;
    const int64_t sp = (int64_t)s.h * s.w, nx = 2 * s.c * sp, nw = (int64_t)s.o * s.c * 9, ny = 2 * s.o * sp;
    const int64_t nscratch = ml__conv2d_scratch_floats(&s);
    float *x = malloc((size_t)nx * sizeof *x), *wt = malloc((size_t)nw * sizeof *wt);
    float *y = malloc((size_t)ny * sizeof *y), *yd = malloc((size_t)sp * sizeof *yd);
    float *scratch = malloc((size_t)(nscratch > 0 ? nscratch : 1) * sizeof *scratch);
    int ok = x && wt && y && yd && scratch;
    if (ok) {
        ml_rng r;
        ml_rng_seed(&r, 24);
        for (int64_t i = 0; i < nx; i++) x[i] = ml_rng_uniform(&r) < 0.2 ? 0.f : (float)ml_rng_normal(&r);
        for (int64_t i = 0; i < nw; i++) wt[i] = (float)ml_rng_normal(&r);
        ml__conv2d_forward(&s, x, wt, y, scratch);
        for (int64_t i = 0; ok && i < 2; i++)
            for (int64_t o = 0; ok && o < s.o; o++) {
                ml__conv3x3_plane(x + i * s.c * sp, s.c, s.h, s.w, wt + o * s.c * 9, yd);
                ok = !memcmp(yd, y + (i * s.o + o) * sp, (size_t)sp * sizeof *yd);
            }
    }
    free(x), free(wt), free(y), free(yd), free(scratch);
    return ok;
}

int ml__conv3x3_direct_matches(const ml_conv_shape *s) {
    if (!ml__conv3x3_direct_shape_ok(s) || !ml__conv3x3_direct_vector()) return 0;
    pthread_mutex_lock(&verdict_lock);
    int ok = -1;
    for (int i = 0; i < n_verdicts && ok < 0; i++)
        if (verdicts[i].c == s->c && verdicts[i].h == s->h && verdicts[i].w == s->w && verdicts[i].o == s->o)
            ok = verdicts[i].ok;
    if (ok < 0) {
        ok = probe(s);
        const int at = n_verdicts < VERDICTS ? n_verdicts++ : VERDICTS - 1;
        verdicts[at].c = s->c, verdicts[at].h = s->h, verdicts[at].w = s->w, verdicts[at].o = s->o;
        verdicts[at].ok = ok;
    }
    pthread_mutex_unlock(&verdict_lock);
    return ok;
}
