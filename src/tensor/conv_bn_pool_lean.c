/* conv_bn_pool_lean.c: block 1 of a query pass (conv from the images, batch
 * norm with batch statistics, ReLU, 2x2 max-pool) without its conv output.
 *
 * The conv output x (75 query images at 28x28 x 64 channels: 15 MB) is the
 * largest tensor of a MAML task; the walk from the loss reads it only for
 * the batch norm's backward and the conv's backward-weights. Both can be
 * had from the images' patch moments instead, since x is linear in the
 * patches: with P_k(pos) the k-th entry of the patch at pos (K = c_in * kh *
 * kw entries), x_c = sum_k W_ck P_k (the bias cancels in the batch norm),
 *   mean_c = W_c . S / N,  var_c = W_c' C W_c / N   (S_k = sum_pos P_k,
 *   C = sum_pos (P - S/N)(P - S/N)': the centred Gram matrix, K x K),
 * so the statistics come before the conv, which then runs in chunks of
 * images, each pooled at once (ml__bn_pool_planes_with_stats) and dropped.
 * The backward: dxhat = gamma * dy is nonzero only at a gated argmax (D, the
 * pooled gradient put back at its argmax), and
 *   dx = inv (dxhat - mean(dxhat) - xhat mean(dxhat xhat)),
 *   dW_ck = sum_pos dx_c P_k
 *         = inv_c (gamma_c A_ck - mean(dxhat)_c S_k - mean(dxhat xhat)_c T_ck)
 * with A_ck = sum_pos D_c P_k (a sum over the gated argmaxes only),
 * T_ck = sum_pos xhat_c P_k = inv_c (C W_c)_k and
 * sum_pos D_c xhat_c = inv_c (W_c . A_c - mean_c sum D_c); dbias = 0.
 * What is kept for the backward: the pooled output (block 2's input), the
 * codes (argmax place and gate), mean / inv per channel, S and C.
 *
 * All sums are in double in a fixed order (images in order, then positions;
 * the patch moments in fixed groups of images added in group order), and
 * threads split only independent outputs (groups, channels): the same
 * result for any number of threads. The values differ from the walk through
 * the float conv output by that tensor's rounding (~1e-7 relative). */
#include <math.h>
#include <string.h>

#include "tensor/conv.h"
#include "tensor/internal.h"
#include "tensor/kernels_par.h"

/* Images per group of the patch moments (fixed: the sums' order must not
 * depend on the threads) and the conv output per chunk of the forward. */
enum { LEAN_GROUP_IMAGES = 8 };
int64_t ml__lean_chunk_bytes = (int64_t)1 << 20;

struct ml_lean_kept {
    int64_t n, c_in, h, w, c;        /* images, their channels and size; conv channels */
    int64_t ch, cw, oh, ow;          /* the conv output's size; the pooled output's */
    int kh, kw, pad, k;               /* kernel, padding, patch length k = c_in * kh * kw */
    float eps;
    double count;                     /* positions per channel: n * h * w */
    double s[ML_LEAN_MAX_K];          /* S_k */
    double gram[ML_LEAN_MAX_K * ML_LEAN_MAX_K]; /* C, centred */
    float mean[]; /* c means, then c inverse deviations; then the codes (a byte per pooled output) */
};

int ml__lean_block_fits(const ml_tensor *x, const ml_tensor *w, int pad) {
    if (!x || !w || x->ndim != 4 || w->ndim != 4 || x->shape[1] != w->shape[1] || pad < 0) return 0;
    const int64_t k = w->shape[1] * w->shape[2] * w->shape[3];
    const int64_t oh = x->shape[2] + 2 * pad - w->shape[2] + 1, ow = x->shape[3] + 2 * pad - w->shape[3] + 1;
    return k <= ML_LEAN_MAX_K && oh >= 2 && ow >= 2 && x->numel <= INT32_MAX &&
           x->shape[0] * w->shape[0] * oh * ow <= INT32_MAX;
}

int64_t ml__lean_block_kept_bytes(int64_t c, int64_t pooled) {
    return (int64_t)sizeof(ml_lean_kept) + 2 * c * (int64_t)sizeof(float) + pooled;
}

uint8_t *ml__lean_block_codes(ml_lean_kept *kp) { return (uint8_t *)(kp->mean + 2 * kp->c); }

/* Image i of n (c_in planes of h x w) padded by `pad` zeros on every side,
 * in double: ph x pw per plane. */
static void padded_image(const float *x, int64_t c_in, int64_t h, int64_t w, int pad, double *out) {
    const int64_t ph = h + 2 * pad, pw = w + 2 * pad;
    memset(out, 0, (size_t)(c_in * ph * pw) * sizeof(double));
    for (int64_t ci = 0; ci < c_in; ci++)
        for (int64_t r = 0; r < h; r++)
            for (int64_t q = 0; q < w; q++) out[(ci * ph + r + pad) * pw + q + pad] = x[(ci * h + r) * w + q];
}

/* Offset of patch entry k (channel, row, column of the kernel) in a padded image. */
static int64_t patch_offset(const ml_lean_kept *kp, int k) {
    const int64_t pw = kp->w + 2 * kp->pad;
    const int per = kp->kh * kp->kw, ci = k / per, ky = (k % per) / kp->kw, kx = k % kp->kw;
    return (ci * (kp->h + 2 * kp->pad) + ky) * pw + kx;
}

typedef struct moments_job {
    const ml_lean_kept *kp;
    const float *x;
    double *part;  /* per group: k sums, then the k x k raw products */
    double *work;  /* per group: the padded image, then per pair a lane row */
    int64_t work_per_group;
} moments_job;

/* Group g's patch sums and raw products, summed row by row in lanes over the
 * output columns (elementwise: the compiler vectorises it without
 * reordering a sum), then the lanes added in order. Products of two floats
 * are exact in double. */
ML_KERNEL static void moments_range(void *arg, int64_t lo, int64_t hi) {
    const moments_job *j = arg;
    const ml_lean_kept *kp = j->kp;
    const int k = kp->k;
    const int64_t pw = kp->w + 2 * kp->pad, oh = kp->ch, ow = kp->cw;
    const int64_t per = kp->c_in * kp->h * kp->w, npairs = (int64_t)k * (k + 1) / 2 + k;
    int64_t off[ML_LEAN_MAX_K];
    for (int a = 0; a < k; a++) off[a] = patch_offset(kp, a);
    for (int64_t g = lo; g < hi; g++) {
        double *pad_img = j->work + g * j->work_per_group, *lanes = pad_img + kp->c_in * (kp->h + 2 * kp->pad) * pw;
        double *part = j->part + g * (k + k * k);
        memset(part, 0, (size_t)(k + k * k) * sizeof(double));
        const int64_t i1 = (g + 1) * LEAN_GROUP_IMAGES < kp->n ? (g + 1) * LEAN_GROUP_IMAGES : kp->n;
        for (int64_t i = g * LEAN_GROUP_IMAGES; i < i1; i++) {
            padded_image(j->x + i * per, kp->c_in, kp->h, kp->w, kp->pad, pad_img);
            memset(lanes, 0, (size_t)(npairs * ow) * sizeof(double));
            for (int64_t r = 0; r < oh; r++) {
                double *lane = lanes;
                for (int a = 0; a < k; a++, lane += ow) {
                    const double *pa = pad_img + off[a] + r * pw;
                    for (int64_t q = 0; q < ow; q++) lane[q] += pa[q];
                }
                for (int a = 0; a < k; a++)
                    for (int b = a; b < k; b++, lane += ow) {
                        const double *pa = pad_img + off[a] + r * pw, *pb = pad_img + off[b] + r * pw;
                        for (int64_t q = 0; q < ow; q++) lane[q] += pa[q] * pb[q];
                    }
            }
            const double *lane = lanes;
            for (int a = 0; a < k; a++, lane += ow)
                for (int64_t q = 0; q < ow; q++) part[a] += lane[q];
            for (int a = 0; a < k; a++)
                for (int b = a; b < k; b++, lane += ow)
                    for (int64_t q = 0; q < ow; q++) part[k + a * k + b] += lane[q];
        }
    }
}

/* S and the centred Gram matrix of the n images' patches into kp. */
static int patch_moments(ml_ctx *ctx, ml_lean_kept *kp, const float *x) {
    const int k = kp->k;
    const int64_t groups = (kp->n + LEAN_GROUP_IMAGES - 1) / LEAN_GROUP_IMAGES;
    const int64_t pw = kp->w + 2 * kp->pad, ow = kp->cw;
    const int64_t npairs = (int64_t)k * (k + 1) / 2 + k;
    moments_job j = {.kp = kp, .x = x, .work_per_group = kp->c_in * (kp->h + 2 * kp->pad) * pw + npairs * ow};
    ml_arena_mark m = ml_arena_get_mark(ctx->arena);
    j.part = ml_ctx_alloc(ctx, (size_t)(groups * (k + k * k)) * sizeof(double));
    j.work = ml_ctx_alloc(ctx, (size_t)(groups * j.work_per_group) * sizeof(double));
    if (!j.part || !j.work) return -1;
    ML__PAR_RUN(groups, kp->n * kp->h * kp->w * npairs, 1, moments_range, &j);
    double raw[ML_LEAN_MAX_K * ML_LEAN_MAX_K] = {0};
    memset(kp->s, 0, sizeof kp->s);
    for (int64_t g = 0; g < groups; g++) {
        const double *p = j.part + g * (k + k * k);
        for (int a = 0; a < k; a++) kp->s[a] += p[a];
        for (int a = 0; a < k; a++)
            for (int b = a; b < k; b++) raw[a * k + b] += p[k + a * k + b];
    }
    for (int a = 0; a < k; a++)
        for (int b = a; b < k; b++)
            kp->gram[a * k + b] = kp->gram[b * k + a] = raw[a * k + b] - kp->s[a] * kp->s[b] / kp->count;
    ml_arena_rewind(ctx->arena, m);
    return 0;
}

/* Per channel: mean = W . S / N, var = W' C W / N (clamped at 0), inv. */
static void channel_stats_from_moments(ml_lean_kept *kp, const float *w) {
    const int k = kp->k;
    for (int64_t c = 0; c < kp->c; c++) {
        const float *wc = w + c * k;
        double mean = 0, var = 0;
        for (int a = 0; a < k; a++) {
            mean += (double)wc[a] * kp->s[a];
            double row = 0;
            for (int b = 0; b < k; b++) row += kp->gram[a * k + b] * (double)wc[b];
            var += (double)wc[a] * row;
        }
        mean /= kp->count, var = var > 0 ? var / kp->count : 0;
        kp->mean[c] = (float)mean;
        kp->mean[kp->c + c] = (float)(1.0 / sqrt(var + kp->eps));
    }
}

typedef struct pool_chunk_job {
    const ml_lean_kept *kp;
    const float *x, *gamma, *beta;
    float *y, *xhat_at, *scratch;
    uint8_t *code;
    int32_t *rows;
    int64_t n;
} pool_chunk_job;

static void pool_chunk_range(void *arg, int64_t lo, int64_t hi) {
    const pool_chunk_job *j = arg;
    const ml_lean_kept *kp = j->kp;
    ml__bn_pool_planes_with_stats(j->x, j->n, kp->c, kp->ch, kp->cw, kp->mean, kp->mean + kp->c, j->gamma, j->beta,
                                  j->y, j->xhat_at, j->code, j->scratch, j->rows, lo, hi);
}

ml_lean_kept *ml__lean_block_forward(ml_ctx *ctx, ml_tensor *x, ml_tensor *w, ml_tensor *gamma, ml_tensor *beta,
                                     int pad, float eps, void *kept, float *y) {
    if (!x || !w || !gamma || !beta || ctx->status != ML_OK) return NULL;
    if (!ml__lean_block_fits(x, w, pad) || gamma->numel != w->shape[0] || beta->numel != w->shape[0]) {
        ml_ctx_fail(ctx, ML_ERR_SHAPE, "lean block: input, weight, gamma and beta do not fit");
        return NULL;
    }
    ml_lean_kept *kp = kept;
    const int64_t n = x->shape[0], c_in = x->shape[1], h = x->shape[2], wd = x->shape[3], c = w->shape[0];
    const int64_t ch = h + 2 * pad - w->shape[2] + 1, cw = wd + 2 * pad - w->shape[3] + 1; /* conv output */
    *kp = (ml_lean_kept){.n = n, .c_in = c_in, .h = h, .w = wd, .c = c, .ch = ch, .cw = cw, .oh = ch / 2, .ow = cw / 2,
                         .kh = (int)w->shape[2], .kw = (int)w->shape[3], .pad = pad,
                         .k = (int)(c_in * w->shape[2] * w->shape[3]), .eps = eps, .count = (double)(n * ch * cw)};
    if (patch_moments(ctx, kp, x->data)) return NULL;
    channel_stats_from_moments(kp, w->data);

    const int64_t plane = c * ch * cw, psp = kp->oh * kp->ow;
    int64_t chunk = ml__lean_chunk_bytes / (plane * (int64_t)sizeof(float));
    chunk = chunk < 1 ? 1 : chunk > n ? n : chunk;
    ml_arena_mark m = ml_arena_get_mark(ctx->arena);
    ml_conv_shape s;
    if (ml__conv_shape_init(&s, (int)chunk, (int)c_in, (int)h, (int)wd, (int)c, kp->kh, kp->kw, 1, pad)) return NULL;
    const int64_t scratch_floats = ml__conv2d_pass_scratch_floats(&s, ML_CONV_PASS_FORWARD);
    float *out = ml_ctx_alloc(ctx, (size_t)(chunk * plane) * sizeof(float));
    float *conv_scratch = ml_ctx_alloc(ctx, (size_t)(scratch_floats > 0 ? scratch_floats : 1) * sizeof(float));
    pool_chunk_job j = {.kp = kp, .gamma = gamma->data, .beta = beta->data,
                        .xhat_at = ml_ctx_alloc(ctx, (size_t)(chunk * c * psp) * sizeof(float)),
                        .scratch = ml_ctx_alloc(ctx, (size_t)(c * ch * cw) * sizeof(float)),
                        .rows = ml_ctx_alloc(ctx, (size_t)(c * kp->ow + 4) * sizeof(int32_t))};
    if (!out || !conv_scratch || !j.xhat_at || !j.scratch || !j.rows) return NULL;
    uint8_t *codes = ml__lean_block_codes(kp);
    for (int64_t i0 = 0; i0 < n; i0 += chunk) {
        j.n = n - i0 < chunk ? n - i0 : chunk;
        if (j.n != s.n && ml__conv_shape_init(&s, (int)j.n, (int)c_in, (int)h, (int)wd, (int)c, kp->kh, kp->kw, 1, pad))
            return NULL;
        ml__conv2d_forward(&s, x->data + i0 * c_in * h * wd, w->data, out, conv_scratch);
        j.x = out, j.y = y + i0 * c * psp, j.code = codes + i0 * c * psp;
        ML__PAR_RUN(c, 3 * j.n * plane, 1, pool_chunk_range, &j);
    }
    ml_arena_rewind(ctx->arena, m);
    return kp;
}

typedef struct lean_bwd_job {
    const ml_lean_kept *kp;
    const double *pad_imgs; /* every image padded, in double */
    const float *w, *gamma, *g;
    const uint8_t *code;
    float *dw, *dgamma, *dbeta;
} lean_bwd_job;

/* Channels [lo, hi): A (the patch entries at each gated argmax times the
 * gradient there), sum g, then dgamma, dbeta and dW by the formulas at the
 * top of the file. */
static void lean_backward_range(void *arg, int64_t lo, int64_t hi) {
    const lean_bwd_job *j = arg;
    const ml_lean_kept *kp = j->kp;
    const int k = kp->k;
    const int64_t pw = kp->w + 2 * kp->pad, pimg = kp->c_in * (kp->h + 2 * kp->pad) * pw, psp = kp->oh * kp->ow;
    int64_t off[ML_LEAN_MAX_K];
    for (int a = 0; a < k; a++) off[a] = patch_offset(kp, a);
    for (int64_t c = lo; c < hi; c++) {
        double acc[ML_LEAN_MAX_K] = {0}, sum_g = 0;
        for (int64_t i = 0; i < kp->n; i++) {
            const double *img = j->pad_imgs + i * pimg;
            const int64_t base = (i * kp->c + c) * psp;
            for (int64_t r = 0; r < kp->oh; r++)
                for (int64_t q = 0; q < kp->ow; q++) {
                    const uint8_t cd = j->code[base + r * kp->ow + q];
                    if (!(cd & ML__POOL_GATE)) continue;
                    const double g = j->g[base + r * kp->ow + q];
                    const int64_t at = (2 * r + ((cd & ML__POOL_POS) >> 1)) * pw + 2 * q + (cd & 1);
                    sum_g += g;
                    for (int a = 0; a < k; a++) acc[a] += g * img[at + off[a]];
                }
        }
        const float *wc = j->w + c * k;
        const double mean = kp->mean[c], inv = kp->mean[kp->c + c], gamma = j->gamma[c];
        double wa = 0;
        for (int a = 0; a < k; a++) wa += (double)wc[a] * acc[a];
        const double sum_gx = inv * (wa - mean * sum_g); /* sum over the gated argmaxes of g * xhat */
        const double m1 = gamma * sum_g / kp->count, m2 = gamma * sum_gx / kp->count;
        for (int a = 0; a < k; a++) {
            double cw = 0;
            for (int b = 0; b < k; b++) cw += kp->gram[a * k + b] * (double)wc[b];
            j->dw[c * k + a] = (float)(inv * (gamma * acc[a] - m1 * kp->s[a] - m2 * inv * cw));
        }
        j->dgamma[c] = (float)sum_gx;
        j->dbeta[c] = (float)sum_g;
    }
}

int ml__lean_block_backward(ml_ctx *ctx, ml_tensor *x, ml_tensor *w, ml_tensor *gamma, const ml_lean_kept *kp,
                            const float *g, ml_tensor *d[4]) {
    d[0] = d[1] = d[2] = d[3] = NULL;
    if (!x || !w || !gamma || !g || ctx->status != ML_OK) return -1;
    if (x->ndim != 4 || x->shape[0] != kp->n || x->shape[1] != kp->c_in || x->shape[2] != kp->h ||
        x->shape[3] != kp->w || w->shape[0] != kp->c || w->numel != kp->c * kp->k || gamma->numel != kp->c) {
        ml_ctx_fail(ctx, ML_ERR_SHAPE, "lean block backward: kept values do not fit");
        return -1;
    }
    d[0] = ml_tensor_new(ctx, w->ndim, w->shape);
    d[1] = ml_tensor_zeros(ctx, 1, ML_SHAPE(kp->c));
    d[2] = ml_tensor_new(ctx, 1, ML_SHAPE(kp->c));
    d[3] = ml_tensor_new(ctx, 1, ML_SHAPE(kp->c));
    if (!d[0] || !d[1] || !d[2] || !d[3]) return -1;
    const int64_t pw = kp->w + 2 * kp->pad, pimg = kp->c_in * (kp->h + 2 * kp->pad) * pw;
    ml_arena_mark m = ml_arena_get_mark(ctx->arena);
    double *pads = ml_ctx_alloc(ctx, (size_t)(kp->n * pimg) * sizeof(double));
    if (!pads) return -1;
    for (int64_t i = 0; i < kp->n; i++)
        padded_image(x->data + i * kp->c_in * kp->h * kp->w, kp->c_in, kp->h, kp->w, kp->pad, pads + i * pimg);
    lean_bwd_job j = {.kp = kp, .pad_imgs = pads, .w = w->data, .gamma = gamma->data, .g = g,
                      .code = ml__lean_block_codes((ml_lean_kept *)kp), .dw = d[0]->data, .dgamma = d[2]->data,
                      .dbeta = d[3]->data};
    ML__PAR_RUN(kp->c, kp->n * kp->c * kp->oh * kp->ow * (2 * kp->k + 4), 1, lean_backward_range, &j);
    ml_arena_rewind(ctx->arena, m);
    return 0;
}
