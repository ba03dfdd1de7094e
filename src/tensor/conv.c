/* conv.c: fast 2-D convolution kernels (forward, backward-data, backward-weight).
 *
 * Route: im2col over a chunk of images + one oneDNN SGEMM per chunk (ml__sgemm),
 * chosen by measurement against the alternatives listed in docs/kernels.md.
 * This file is not a general convolution library: no dilation, no groups, no
 * bias, square-or-not kernels with one stride and one zero padding for both
 * directions (see conv.h). The naive twins live in conv_ref.c.
 *
 * Notation (all matrices row-major, "P" = pixels of one output image):
 *   K = c*kh*kw, P = oh*ow, a chunk holds B consecutive images.
 *   col[K, B*P]    im2col of a chunk: col[(ch*kh+ki)*kw+kj, b*P + oy*ow + ox]
 *                  = x[b, ch, oy*stride - pad + ki, ox*stride - pad + kj] (0 outside)
 *   W[o, K]        the weight tensor as stored, no copy
 *   forward:          Y[o, B*P]   = W . col                -> scattered to NCHW
 *   backward_weight:  dW[o, K]   += dY[o, B*P] . col^T     (summed over chunks)
 *   backward_data:    stride 1 with pad <= k-1 is itself a forward convolution of
 *                     dy with the flipped, transposed weight (pad k-1-pad), so it
 *                     reuses the forward route; otherwise dcol = W^T . dY and
 *                     col2im scatter-adds dcol into dx.
 *   1x1, stride 1, pad 0: col is x itself, so each image is one GEMM with no copy.
 *
 * Why chunks and not the whole batch: the col buffer is K*B*P floats, 9x the
 * input for 3x3 kernels; for batch 80 of 64x14x14 that is 36 MB, far outside the
 * 1 MB L2, and the GEMM then streams it from memory. A chunk of ~1000 columns
 * keeps col in L2 while the GEMM is still wide enough to run near peak (dnnl_sgemm
 * on 64x196x576 reaches ~105 GFLOP/s, 64x980x576 ~114 on this machine).
 *
 * All scratch comes from the caller (ml__conv2d_scratch_floats); the kernels make
 * no heap calls of their own (oneDNN's GEMM may use its own internal buffers). */
#include "tensor/conv.h"

#include <omp.h>
#include <string.h>

#include "core/dispatch.h"
#include "tensor/kernels_par.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

/* ---- shape ------------------------------------------------------------------ */

int ml__conv_shape_init(ml_conv_shape *s, int n, int c, int h, int w, int o, int kh, int kw,
                        int stride, int pad) {
    s->n = n, s->c = c, s->h = h, s->w = w;
    s->o = o, s->kh = kh, s->kw = kw;
    s->stride = stride, s->pad = pad;
    s->oh = s->ow = 0;
    if (n < 1 || c < 1 || h < 1 || w < 1 || o < 1 || kh < 1 || kw < 1 || stride < 1 || pad < 0)
        return -1;
    /* Test the numerator before dividing: C division truncates towards zero,
     * so (-1)/2 + 1 would wrongly give an output of size 1. */
    if (h + 2 * pad < kh || w + 2 * pad < kw) return -1;
    s->oh = (h + 2 * pad - kh) / stride + 1;
    s->ow = (w + 2 * pad - kw) / stride + 1;
    return 0;
}

/* ---- geometry of one im2col convolution --------------------------------------
 * The forward pass and the flipped backward-data pass are both "convolve an
 * [n, c, h, w] input with an [o, c*kh*kw] matrix"; they differ only in the
 * padding (the flipped pass may pad rows and columns differently). */
typedef struct geo {
    int n, c, h, w;
    int o, kh, kw, stride, padh, padw, oh, ow;
} geo;

/* Chunk size, chosen by measurement (docs/kernels.md): at most about
 * ML_CONV_CHUNK_COLS GEMM columns (B*P, rounded down to whole images, at least
 * one image) and at most ML_CONV_CHUNK_MAX_FLOATS floats of col (1.5 MB). For
 * 64x14x14 this gives 3 images (588 columns, +5% over one image); for 7x7, 13
 * images; for 28x28, one image, whose GEMM writes straight into y. Larger caps
 * lost up to 25% in backward-weight (the GEMM's long k streams col from L3). */
#ifndef ML_CONV_CHUNK_COLS
#define ML_CONV_CHUNK_COLS 1024
#endif
#ifndef ML_CONV_CHUNK_MAX_FLOATS
#define ML_CONV_CHUNK_MAX_FLOATS (384 * 1024)
#endif
/* The flipped backward-data route makes the GEMM's M dimension equal to the
 * input channel count; below this a skinny GEMM loses to GEMM + col2im. */
#ifndef ML_CONV_FLIP_MIN_C
#define ML_CONV_FLIP_MIN_C 8
#endif

static int chunk_images(int64_t k, int64_t p, int n) {
    int64_t b = ML_CONV_CHUNK_COLS / p;
    int64_t cap = ML_CONV_CHUNK_MAX_FLOATS / (k * p > 0 ? k * p : 1);
    if (b > cap) b = cap;
    if (b < 1) b = 1;
    if (b > n) b = n;
    /* Balance the chunks: 80 images in chunks of at most 6 become 14 chunks of
     * 5 or 6, not 13 of 6 and one of 2, whose narrow GEMM would run slowly. */
    int64_t nchunks = (n + b - 1) / b;
    return (int)((n + nchunks - 1) / nchunks);
}

int ml__conv2d_forward_chunk_images(const ml_conv_shape *s) {
    return chunk_images((int64_t)s->c * s->kh * s->kw, (int64_t)s->oh * s->ow, s->n);
}

static int is_pointwise(const ml_conv_shape *s) {
    return s->kh == 1 && s->kw == 1 && s->stride == 1 && s->pad == 0;
}

static int use_flipped_bwd_data(const ml_conv_shape *s) {
    return s->stride == 1 && s->pad <= s->kh - 1 && s->pad <= s->kw - 1 && s->c >= ML_CONV_FLIP_MIN_C;
}

/* ---- chunks in parallel -----------------------------------------------------------
 * The chunks of one pass run in parallel, a contiguous range of chunks per
 * thread in one OpenMP region (the first layer of the 4-conv CNN has one image
 * per chunk: 200 chunks of small GEMMs, each of which used to open its own
 * parallel region and wake the other thread, ~1000 regions per step). Each
 * running thread has its own "slot" of scratch; within a region oneDNN's GEMM
 * runs on one thread. A chunk's output (forward, backward-data) depends only on
 * its images, so any split gives the same bits. Backward-weight sums over the
 * chunks: they are summed in a fixed number of groups that depends on the batch
 * size only (bwdw_groups), each group in chunk order into its own accumulator,
 * then the groups in group order, so again any thread count gives the same bits.
 * One slot (one thread, or one chunk) is the serial loop of before, with the
 * GEMM on the caller's whole thread budget. */
#ifndef ML_CONV_MAX_SLOTS
#define ML_CONV_MAX_SLOTS 4
#endif
#ifndef ML_CONV_BWDW_GROUP_IMAGES
#define ML_CONV_BWDW_GROUP_IMAGES 16 /* images per group at least; one group below 32 images */
#endif
#ifndef ML_CONV_BWDW_MAX_GROUPS
#define ML_CONV_BWDW_MAX_GROUPS 4
#endif

/* Threads (= scratch slots) for `items` independent items under the caller's budget. */
static int par_slots(int items) {
    if (omp_in_parallel()) return 1;
    int t = omp_get_max_threads();
    if (t > ML_CONV_MAX_SLOTS) t = ML_CONV_MAX_SLOTS;
    return items < t ? (items < 1 ? 1 : items) : t;
}

/* Groups of backward-weight's sum over nch chunks of a batch of n images. */
static int bwdw_groups(int n, int nch) {
    int gr = n / ML_CONV_BWDW_GROUP_IMAGES;
    if (gr > ML_CONV_BWDW_MAX_GROUPS) gr = ML_CONV_BWDW_MAX_GROUPS;
    if (gr > nch) gr = nch;
    return gr < 1 ? 1 : gr;
}

static geo geo_forward(const ml_conv_shape *s) {
    geo g = {s->n, s->c, s->h, s->w, s->o, s->kh, s->kw, s->stride, s->pad, s->pad, s->oh, s->ow};
    return g;
}

/* backward_data as a forward convolution: input dy [n, o, oh, ow], weight
 * wf[c, o, kh, kw] = w[o, c, kh-1-ki, kw-1-kj], padding k-1-pad, output
 * [n, c, h, w] (stride 1 only: oh + 2(kh-1-pad) - kh + 1 = h). */
static geo geo_flipped(const ml_conv_shape *s) {
    geo g = {s->n, s->o, s->oh, s->ow, s->c, s->kh, s->kw, 1, s->kh - 1 - s->pad, s->kw - 1 - s->pad,
             s->h, s->w};
    return g;
}

/* ---- im2col / col2im ------------------------------------------------------------
 * Both work on a zero-padded copy of the chunk's images, xp[b, ch, Hp, Wp] with
 * Hp = h + 2*padh, Wp = w + 2*padw, so that the inner loops have no bounds
 * tests: every (oy, ki) reads a real row of xp and every run of ow outputs
 * is one short contiguous (stride 1) or strided copy. With pad 0, xp is the
 * input itself and nothing is copied. (Writing the border inside im2col,
 * straight from the unpadded input, was tried: im2col took 14% of a cnn4
 * step against 8% for pad + im2col.) */

/* d[0..n) = s[0..n). Rows here are 7 to 28 floats: one masked vector move per
 * 16 floats costs a few cycles, where a memcpy call per row cost more than
 * the copy itself and made im2col take a quarter of the forward time at
 * 14x14 (see docs/kernels.md). Masked lanes are not accessed, so the loads
 * never read past s[n-1]. */
static inline void copy_run(float *d, const float *s, int n) {
#if defined(__AVX512F__)
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(d + i, _mm512_loadu_ps(s + i));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(d + i, m, _mm512_maskz_loadu_ps(m, s + i));
    }
#else
    for (int i = 0; i < n; i++) d[i] = s[i];
#endif
}

/* d[0..n) += s[0..n) */
static inline void add_run(float *d, const float *s, int n) {
#if defined(__AVX512F__)
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(d + i, _mm512_add_ps(_mm512_loadu_ps(d + i), _mm512_loadu_ps(s + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(d + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, d + i), _mm512_maskz_loadu_ps(m, s + i)));
    }
#else
    for (int i = 0; i < n; i++) d[i] += s[i];
#endif
}

static int geo_padded(const geo *g) { return g->padh > 0 || g->padw > 0; }
static int64_t geo_padded_plane(const geo *g) {
    return (int64_t)(g->h + 2 * g->padh) * (g->w + 2 * g->padw);
}

/* xp[nb*c planes of Hp x Wp] = x with a zero border. */
typedef struct im_job {
    const geo *g;
    const float *src;
    float *dst;
    int nb;
} im_job;

static void pad_planes(void *arg, int64_t lo, int64_t hi) {
    const im_job *j = arg;
    const geo *g = j->g;
    const int Wp = g->w + 2 * g->padw;
    const int64_t HW = (int64_t)g->h * g->w, HWp = geo_padded_plane(g);
    for (int64_t pl = lo; pl < hi; pl++) {
        const float *src = j->src + pl * HW;
        float *dst = j->dst + pl * HWp;
        memset(dst, 0, sizeof(float) * (size_t)g->padh * Wp);
        dst += (int64_t)g->padh * Wp;
        for (int iy = 0; iy < g->h; iy++, dst += Wp, src += g->w) {
            for (int jj = 0; jj < g->padw; jj++) dst[jj] = 0.f, dst[g->padw + g->w + jj] = 0.f;
            copy_run(dst + g->padw, src, g->w);
        }
        memset(dst, 0, sizeof(float) * (size_t)g->padh * Wp);
    }
}

/* The three loops below split independent items (planes, rows of col, input
 * channels) with kernels_par.h: small ones, and those inside the chunk-parallel
 * regions, run directly with no OpenMP call. */
static void pad_images(const geo *g, const float *x, int nb, float *xp) {
    im_job j = {g, x, xp, nb};
    const int64_t planes = (int64_t)nb * g->c;
    ML__PAR_RUN(planes, planes * geo_padded_plane(g), 1, pad_planes, &j);
}

/* dx[nb*c planes of h x w] = interior of the padded planes xp. */
static void crop_images(const geo *g, const float *xp, int nb, float *dx) {
    const int Wp = g->w + 2 * g->padw, planes = nb * g->c;
    const int64_t HW = (int64_t)g->h * g->w, HWp = geo_padded_plane(g);
    for (int pl = 0; pl < planes; pl++) {
        const float *src = xp + pl * HWp + (int64_t)g->padh * Wp + g->padw;
        float *dst = dx + pl * HW;
        for (int iy = 0; iy < g->h; iy++, dst += g->w, src += Wp) copy_run(dst, src, g->w);
    }
}

/* Row r of col[K, nb*P] from the padded images xp (a function of its own so
 * that ML_KERNEL can clone it; see core/dispatch.h). */
ML_KERNEL static void im2col_row(const geo *g, const float *xp, int nb, float *col, int r) {
    const int64_t P = (int64_t)g->oh * g->ow, HWp = geo_padded_plane(g), ldc = nb * P;
    const int Wp = g->w + 2 * g->padw, st = g->stride;
    const int ch = r / (g->kh * g->kw), ki = r / g->kw % g->kh, kj = r % g->kw;
    float *d = col + (int64_t)r * ldc;
    for (int b = 0; b < nb; b++) {
        const float *s = xp + ((int64_t)b * g->c + ch) * HWp + (int64_t)ki * Wp + kj;
        for (int oy = 0; oy < g->oh; oy++, d += g->ow, s += (int64_t)st * Wp) {
            if (st == 1) copy_run(d, s, g->ow);
            else
                for (int ox = 0; ox < g->ow; ox++) d[ox] = s[(int64_t)ox * st];
        }
    }
}

/* col[K, nb*P] from the padded images xp (ldc = nb*P). */
static void im2col_rows(void *arg, int64_t lo, int64_t hi) {
    const im_job *j = arg;
    for (int64_t r = lo; r < hi; r++) im2col_row(j->g, j->src, j->nb, j->dst, (int)r);
}

static void im2col(const geo *g, const float *xp, int nb, float *col) {
    im_job j = {g, xp, col, nb};
    const int64_t K = (int64_t)g->c * g->kh * g->kw;
    ML__PAR_RUN(K, K * nb * g->oh * g->ow, 1, im2col_rows, &j);
}

/* Input channel ch of col2im: its planes in xp, zeroed, then summed into. */
ML_KERNEL static void col2im_channel(const geo *g, const float *dcol, int nb, float *xp, int ch) {
    const int64_t P = (int64_t)g->oh * g->ow, HWp = geo_padded_plane(g), ldc = nb * P;
    const int KK = g->kh * g->kw, Wp = g->w + 2 * g->padw, st = g->stride;
    for (int b = 0; b < nb; b++) memset(xp + ((int64_t)b * g->c + ch) * HWp, 0, sizeof(float) * (size_t)HWp);
    for (int k = 0; k < KK; k++) {
        const int ki = k / g->kw, kj = k % g->kw;
        const float *s = dcol + ((int64_t)ch * KK + k) * ldc;
        for (int b = 0; b < nb; b++) {
            float *d = xp + ((int64_t)b * g->c + ch) * HWp + (int64_t)ki * Wp + kj;
            for (int oy = 0; oy < g->oh; oy++, s += g->ow, d += (int64_t)st * Wp) {
                if (st == 1) add_run(d, s, g->ow);
                else
                    for (int ox = 0; ox < g->ow; ox++) d[(int64_t)ox * st] += s[ox];
            }
        }
    }
}

/* xp = col2im(dcol): the adjoint of im2col, into zeroed padded planes. */
static void col2im_channels(void *arg, int64_t lo, int64_t hi) {
    const im_job *j = arg;
    for (int64_t ch = lo; ch < hi; ch++) col2im_channel(j->g, j->src, j->nb, j->dst, (int)ch);
}

static void col2im(const geo *g, const float *dcol, int nb, float *xp) {
    /* One input channel per item: its writes touch only its own planes, so
     * the channels can run in parallel with no atomics and a fixed summation
     * order (the result does not depend on the thread count). */
    im_job j = {g, dcol, xp, nb};
    ML__PAR_RUN(g->c, (int64_t)g->c * g->kh * g->kw * nb * g->oh * g->ow, 1, col2im_channels, &j);
}

/* [o, nb*P] chunk matrix <-> nb images of [o, P] in NCHW. */
static void chunk_to_nchw(const float *m, int o, int64_t P, int nb, float *y) {
    for (int b = 0; b < nb; b++)
        for (int oc = 0; oc < o; oc++)
            memcpy(y + ((int64_t)b * o + oc) * P, m + (int64_t)oc * nb * P + b * P, sizeof(float) * (size_t)P);
}
static void nchw_to_chunk(const float *y, int o, int64_t P, int nb, float *m) {
    for (int b = 0; b < nb; b++)
        for (int oc = 0; oc < o; oc++)
            memcpy(m + (int64_t)oc * nb * P + b * P, y + ((int64_t)b * o + oc) * P, sizeof(float) * (size_t)P);
}

/* ---- scratch ----------------------------------------------------------------------
 * Layout of one pass's scratch, in this order (each part only when needed):
 *   col / dcol   K * nb * P
 *   ybuf / dyb   o * nb * P          (nb > 1: the chunk's [o, nb*P] matrix)
 *   xp           nb * c * Hp * Wp    (pad > 0: padded images)
 *   dwT          K * o               (backward_weight, transposed orientation)
 * The flipped backward-data pass puts its c*o*kh*kw flipped weight first. */

/* Backward-weight orientation: dw[o, K] = dY . col^T is a GEMM with M = o,
 * N = K; when K is small (first layer: K = 9) dnnl_sgemm runs that at
 * ~36 GFLOP/s but the transposed problem dw^T[K, o] = col . dY^T at ~110. */
static int bwd_weight_transposed(const ml_conv_shape *s) { return (int64_t)s->c * s->kh * s->kw < s->o; }

/* Scratch of one slot of the forward route for geometry g. */
static int64_t geo_forward_floats(const geo *g) {
    const int64_t K = (int64_t)g->c * g->kh * g->kw, P = (int64_t)g->oh * g->ow;
    const int nb = chunk_images(K, P, g->n);
    return K * nb * P + (nb > 1 ? (int64_t)g->o * nb * P : 0) +
           (geo_padded(g) ? nb * g->c * geo_padded_plane(g) : 0);
}

static int geo_chunks(const geo *g) {
    const int nb = chunk_images((int64_t)g->c * g->kh * g->kw, (int64_t)g->oh * g->ow, g->n);
    return (g->n + nb - 1) / nb;
}

/* All slots of the forward route. */
static int64_t geo_forward_total(const geo *g) { return geo_forward_floats(g) * par_slots(geo_chunks(g)); }

/* One slot of the col2im backward-data route and of backward-weight (col, dY
 * chunk matrix, padded images). */
static int64_t col_slot_floats(const ml_conv_shape *s) {
    const int64_t K = (int64_t)s->c * s->kh * s->kw, P = (int64_t)s->oh * s->ow;
    const int nb = chunk_images(K, P, s->n);
    geo g = geo_forward(s);
    return K * nb * P + (nb > 1 ? (int64_t)s->o * nb * P : 0) + (geo_padded(&g) ? nb * s->c * geo_padded_plane(&g) : 0);
}

static int64_t bwd_weight_floats(const ml_conv_shape *s) {
    geo g = geo_forward(s);
    const int nch = geo_chunks(&g), groups = bwdw_groups(s->n, nch);
    const int64_t Ko = (int64_t)s->c * s->kh * s->kw * s->o;
    if (groups == 1) return col_slot_floats(s) + (bwd_weight_transposed(s) ? Ko : 0);
    return groups * Ko + par_slots(groups) * col_slot_floats(s);
}

static int64_t im2col_scratch_floats(const ml_conv_shape *s) {
    geo g = geo_forward(s);
    int64_t fwd = geo_forward_total(&g), bwd_w = bwd_weight_floats(s), bwd_d;
    if (use_flipped_bwd_data(s)) {
        geo gb = geo_flipped(s);
        bwd_d = (int64_t)s->c * s->o * s->kh * s->kw + geo_forward_total(&gb);
    } else {
        bwd_d = col_slot_floats(s) * par_slots(geo_chunks(&g));
    }
    int64_t m = fwd > bwd_w ? fwd : bwd_w;
    return m > bwd_d ? m : bwd_d;
}

/* Enough for the oneDNN route and, should it fail at run time, for im2col. */
int64_t ml__conv2d_scratch_floats(const ml_conv_shape *s) {
    if (is_pointwise(s)) return 0;
    int64_t m = im2col_scratch_floats(s), d = ml__conv_dnnl_scratch_floats(s);
    return d > m ? d : m;
}

/* One pass's share: the oneDNN passes differ a lot (Winograd's scratchpad,
 * the blocked copies of a chunk), and the arena's high-water mark is set by
 * whichever call asks the most on top of what is live. The im2col route's
 * own total stays included: it is the fallback when oneDNN cannot run. */
int64_t ml__conv2d_pass_scratch_floats(const ml_conv_shape *s, int pass) {
    if (is_pointwise(s)) return 0;
    int64_t m = im2col_scratch_floats(s), d = ml__conv_dnnl_pass_scratch_floats(s, pass);
    return d > m ? d : m;
}

/* ---- forward ---------------------------------------------------------------------- */

/* Images [b0, b0 + cur) of y = conv(x, wm) with one slot's scratch. */
static void forward_chunk(const geo *g, const float *x, const float *wm, float *y, float *slot, int b0, int cur) {
    const int64_t K = (int64_t)g->c * g->kh * g->kw, P = (int64_t)g->oh * g->ow;
    const int64_t HW = (int64_t)g->h * g->w, N = cur * P;
    const int nb = chunk_images(K, P, g->n);
    float *col = slot, *ybuf = col + K * nb * P;
    float *xp = ybuf + (nb > 1 ? (int64_t)g->o * nb * P : 0);
    const float *xc = x + (int64_t)b0 * g->c * HW;
    if (geo_padded(g)) {
        pad_images(g, xc, cur, xp);
        xc = xp;
    }
    im2col(g, xc, cur, col);
    if (cur == 1) { /* the image's output [o, P] is already NCHW */
        ml__sgemm(0, 0, g->o, N, K, 1.f, wm, K, col, N, 0.f, y + (int64_t)b0 * g->o * P, P);
    } else {
        ml__sgemm(0, 0, g->o, N, K, 1.f, wm, K, col, N, 0.f, ybuf, N);
        chunk_to_nchw(ybuf, g->o, P, cur, y + (int64_t)b0 * g->o * P);
    }
}

/* y = conv(x, wm) for geometry g, wm as an [o, c*kh*kw] row-major matrix. */
static void forward_im2col(const geo *g, const float *x, const float *wm, float *y, float *scratch) {
    const int nb = chunk_images((int64_t)g->c * g->kh * g->kw, (int64_t)g->oh * g->ow, g->n);
    const int nch = geo_chunks(g), slots = par_slots(nch);
    const int64_t per = geo_forward_floats(g);
    if (slots == 1) {
        for (int c = 0; c < nch; c++) forward_chunk(g, x, wm, y, scratch, c * nb, g->n - c * nb < nb ? g->n - c * nb : nb);
        return;
    }
#pragma omp parallel num_threads(slots)
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        for (int c = nch * t / nt; c < nch * (t + 1) / nt; c++)
            forward_chunk(g, x, wm, y, scratch + t * per, c * nb, g->n - c * nb < nb ? g->n - c * nb : nb);
    }
}

void ml__conv2d_forward(const ml_conv_shape *s, const float *x, const float *w, float *y,
                        float *scratch) {
    if (is_pointwise(s)) { /* y_b[o, P] = W[o, c] . x_b[c, P] */
        const int64_t P = (int64_t)s->h * s->w;
        for (int b = 0; b < s->n; b++)
            ml__sgemm(0, 0, s->o, P, s->c, 1.f, w, s->c, x + (int64_t)b * s->c * P, P, 0.f,
                      y + (int64_t)b * s->o * P, P);
        return;
    }
    if (ml__conv_dnnl_forward(s, x, w, y, scratch) == 0) return;
    geo g = geo_forward(s);
    forward_im2col(&g, x, w, y, scratch);
}

/* ---- backward data -------------------------------------------------------------------
 * Differentiates y[b,o,p] = sum_{c,k} w[o,c,k] x[b,c,p@k] with respect to x. */

/* Images [b0, b0 + cur) of the col2im backward-data route with one slot's scratch. */
static void backward_data_chunk(const ml_conv_shape *s, const geo *g, const float *dy, const float *w, float *dx,
                                float *slot, int b0, int cur) {
    const int64_t P = (int64_t)s->oh * s->ow, HW = (int64_t)s->h * s->w, K = (int64_t)s->c * s->kh * s->kw;
    const int nb = chunk_images(K, P, s->n);
    const int64_t N = cur * P;
    float *dcol = slot, *dyb = dcol + K * nb * P;
    float *xp = dyb + (nb > 1 ? (int64_t)s->o * nb * P : 0);
    const float *dyc = dy + (int64_t)b0 * s->o * P;
    float *dxc = dx + (int64_t)b0 * s->c * HW;
    if (cur > 1) {
        nchw_to_chunk(dyc, s->o, P, cur, dyb);
        dyc = dyb;
    }
    ml__sgemm(1, 0, K, N, s->o, 1.f, w, K, dyc, N, 0.f, dcol, N);
    if (geo_padded(g)) {
        col2im(g, dcol, cur, xp);
        crop_images(g, xp, cur, dxc);
    } else {
        col2im(g, dcol, cur, dxc);
    }
}

void ml__conv2d_backward_data(const ml_conv_shape *s, const float *dy, const float *w, float *dx,
                              float *scratch) {
    const int64_t P = (int64_t)s->oh * s->ow, HW = (int64_t)s->h * s->w;
    if (is_pointwise(s)) { /* dx_b[c, P] = W^T[c, o] . dy_b[o, P] */
        for (int b = 0; b < s->n; b++)
            ml__sgemm(1, 0, s->c, P, s->o, 1.f, w, s->c, dy + (int64_t)b * s->o * P, P, 0.f,
                      dx + (int64_t)b * s->c * HW, HW);
        return;
    }
    if (ml__conv_dnnl_backward_data(s, dy, w, dx, scratch) == 0) return;
    const int KK = s->kh * s->kw;
    if (use_flipped_bwd_data(s)) {
        /* wf[c, o, ki, kj] = w[o, c, kh-1-ki, kw-1-kj]: a c x (o*KK) matrix. */
        float *wf = scratch;
        const int64_t oKK = (int64_t)s->o * KK, cKK = (int64_t)s->c * KK;
        for (int ch = 0; ch < s->c; ch++) /* contiguous writes, reads strided by c*KK */
            for (int64_t j = 0; j < oKK; j += KK) {
                const float *src = w + j / KK * cKK + (int64_t)ch * KK + KK - 1;
                float *dst = wf + ch * oKK + j;
                for (int k = 0; k < KK; k++) dst[k] = src[-k];
            }
        geo g = geo_flipped(s);
        forward_im2col(&g, dy, wf, dx, scratch + (int64_t)s->c * s->o * KK);
        return;
    }
    /* General route (strided, large padding, few channels):
     * dcol[K, B*P] = W^T[K, o] . dY[o, B*P], then dx = col2im(dcol). */
    geo g = geo_forward(s);
    const int nb = chunk_images((int64_t)s->c * KK, P, s->n), nch = geo_chunks(&g), slots = par_slots(nch);
    const int64_t per = col_slot_floats(s);
    if (slots == 1) {
        for (int c = 0; c < nch; c++)
            backward_data_chunk(s, &g, dy, w, dx, scratch, c * nb, s->n - c * nb < nb ? s->n - c * nb : nb);
        return;
    }
#pragma omp parallel num_threads(slots)
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        for (int c = nch * t / nt; c < nch * (t + 1) / nt; c++)
            backward_data_chunk(s, &g, dy, w, dx, scratch + t * per, c * nb, s->n - c * nb < nb ? s->n - c * nb : nb);
    }
}

/* ---- backward weight -------------------------------------------------------------------
 * dw[o, K] = sum_b dY_b[o, P] . col_b[K, P]^T, summed chunk by chunk into an
 * accumulator (the first chunk overwrites, the rest accumulate with beta = 1);
 * with several groups (bwdw_groups), one accumulator per group, summed in
 * group order at the end. */

/* Images [b0, b0 + cur) into acc (dw[o, K], or dw^T[K, o] when transposed). */
static void backward_weight_chunk(const ml_conv_shape *s, const geo *g, const float *x, const float *dy, float *acc,
                                  float *slot, int b0, int cur, int first) {
    const int64_t P = (int64_t)s->oh * s->ow, HW = (int64_t)s->h * s->w, K = (int64_t)s->c * s->kh * s->kw;
    const int nb = chunk_images(K, P, s->n);
    const int64_t N = cur * P;
    float *col = slot, *dyb = col + K * nb * P;
    float *xp = dyb + (nb > 1 ? (int64_t)s->o * nb * P : 0);
    const float *dyc = dy + (int64_t)b0 * s->o * P, *xc = x + (int64_t)b0 * s->c * HW;
    if (cur > 1) {
        nchw_to_chunk(dyc, s->o, P, cur, dyb);
        dyc = dyb;
    }
    if (geo_padded(g)) {
        pad_images(g, xc, cur, xp);
        xc = xp;
    }
    im2col(g, xc, cur, col);
    if (bwd_weight_transposed(s)) /* dw^T[K, o] (+)= col . dY^T */
        ml__sgemm(0, 1, K, s->o, N, 1.f, col, N, dyc, N, first ? 0.f : 1.f, acc, s->o);
    else
        ml__sgemm(0, 1, s->o, K, N, 1.f, dyc, N, col, N, first ? 0.f : 1.f, acc, K);
}

/* Chunks [c0, c1) of one group, in chunk order, into the group's accumulator. */
static void backward_weight_group(const ml_conv_shape *s, const geo *g, const float *x, const float *dy, float *acc,
                                  float *slot, int c0, int c1) {
    const int nb = chunk_images((int64_t)s->c * s->kh * s->kw, (int64_t)s->oh * s->ow, s->n);
    for (int c = c0; c < c1; c++)
        backward_weight_chunk(s, g, x, dy, acc, slot, c * nb, s->n - c * nb < nb ? s->n - c * nb : nb, c == c0);
}

void ml__conv2d_backward_weight(const ml_conv_shape *s, const float *x, const float *dy, float *dw,
                                float *scratch) {
    const int64_t P = (int64_t)s->oh * s->ow, HW = (int64_t)s->h * s->w;
    if (is_pointwise(s)) { /* dw[o, c] = sum_b dy_b[o, P] . x_b[c, P]^T */
        for (int b = 0; b < s->n; b++)
            ml__sgemm(0, 1, s->o, s->c, P, 1.f, dy + (int64_t)b * s->o * P, P, x + (int64_t)b * s->c * HW,
                      HW, b ? 1.f : 0.f, dw, s->c);
        return;
    }
    if (ml__conv_dnnl_backward_weight(s, x, dy, dw, scratch) == 0) return;
    const int64_t K = (int64_t)s->c * s->kh * s->kw, Ko = K * s->o;
    const int tr = bwd_weight_transposed(s);
    geo g = geo_forward(s);
    const int nch = geo_chunks(&g), groups = bwdw_groups(s->n, nch);
    /* accumulators: one group writes dw (or dw^T after the slot), several
     * write theirs at the start of the scratch, before the slots */
    float *slots = groups > 1 ? scratch + groups * Ko : scratch;
    float *acc0 = groups > 1 ? scratch : tr ? scratch + col_slot_floats(s) : dw;
    const int64_t per = col_slot_floats(s);
    const int nslots = par_slots(groups);
    if (nslots == 1) {
        for (int gi = 0; gi < groups; gi++)
            backward_weight_group(s, &g, x, dy, acc0 + gi * Ko, slots, nch * gi / groups, nch * (gi + 1) / groups);
    } else {
#pragma omp parallel for num_threads(nslots) schedule(static)
        for (int gi = 0; gi < groups; gi++)
            backward_weight_group(s, &g, x, dy, acc0 + gi * Ko, slots + omp_get_thread_num() * per, nch * gi / groups,
                                  nch * (gi + 1) / groups);
    }
    for (int gi = 1; gi < groups; gi++) /* group order, per element */
        for (int64_t j = 0; j < Ko; j++) acc0[j] += acc0[gi * Ko + j];
    if (tr)
        for (int oc = 0; oc < s->o; oc++)
            for (int64_t r = 0; r < K; r++) dw[oc * K + r] = acc0[r * s->o + oc];
    else if (acc0 != dw)
        memcpy(dw, acc0, sizeof(float) * (size_t)Ko);
}
