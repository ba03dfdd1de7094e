/* ops_nn.c: the layer ops: conv2d and its two backward products, max-pool,
 * global average pool, batch norm, and the losses. Composite ops (batch norm,
 * cross-entropy, MSE) are built from recorded primitives, so they are
 * differentiable to any order without rules of their own. */
#include <math.h>
#include <string.h>

#include "tensor/conv.h"
#include "tensor/internal.h"

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

static float *conv_scratch(ml_ctx *ctx, const ml_conv_shape *s) {
    int64_t n = ml__conv2d_scratch_floats(s);
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
    float *scratch = conv_scratch(ctx, &s);
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
    float *scratch = conv_scratch(ctx, &s);
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
    float *scratch = conv_scratch(ctx, &s);
    if (!scratch) return NULL;
    ml__conv2d_backward_weight(&s, x->data, dy->data, t->data, scratch);
    ml_arena_rewind(ctx->arena, m);
    conv_record(ctx, ML_OP_CONV2D_BWD_WEIGHT, t, x, dy, &s);
    return t;
}

/* ---- pooling --------------------------------------------------------------------------- */

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
    int32_t *q = idx;
    for (int64_t p = 0; p < nc; p++) {
        const float *img = x->data + p * h * w;
        int32_t base = (int32_t)(p * h * w);
        for (int64_t i = 0; i < oh; i++) {
            const float *r0 = img + 2 * i * w, *r1 = r0 + w;
            int32_t o0 = base + (int32_t)(2 * i * w), o1 = o0 + (int32_t)w;
            for (int64_t j = 0; j < ow; j++) {
                /* First maximum wins, as in PyTorch; `!(v <= best)` also
                 * takes a NaN and nothing replaces a NaN, so NaN propagates. */
                int64_t c = 2 * j;
                float best = r0[c];
                int32_t at = o0 + (int32_t)c;
                if (!(r0[c + 1] <= best) && best == best) best = r0[c + 1], at = o0 + (int32_t)c + 1;
                if (!(r1[c] <= best) && best == best) best = r1[c], at = o1 + (int32_t)c;
                if (!(r1[c + 1] <= best) && best == best) at = o1 + (int32_t)c + 1;
                *q++ = at;
            }
        }
    }
    return ml__gather(ctx, x, idx, 4, ML_SHAPE(x->shape[0], x->shape[1], oh, ow));
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

/* Channel c's elements of x [N, C, S] (S = H*W, or 1 for [N, C]). */
#define BN_FOR_CHANNEL(x, n, c_, C, S, body)                  \
    for (int64_t i_ = 0; i_ < (n); i_++) {                    \
        const int64_t base_ = (i_ * (C) + (c_)) * (S);        \
        for (int64_t s_ = 0; s_ < (S); s_++) {                \
            const int64_t k = base_ + s_;                     \
            body;                                             \
        }                                                     \
    }

ml_tensor *ml__normalize(ml_ctx *ctx, ml_tensor *x, float eps, float *mean_out, float *var_out) {
    if (!x || ctx->status != ML_OK) return NULL;
    int64_t n = x->shape[0], c = x->shape[1], nc = n * c, sp = nc ? x->numel / nc : 0;
    ml_tensor *t = ml_tensor_new(ctx, x->ndim, x->shape);
    float *inv = ml_ctx_alloc(ctx, (size_t)c * sizeof(float));
    if (!t || !inv) return NULL;
    const float *xd = x->data;
    float *yd = t->data;
    double count = (double)(n * sp);
    for (int64_t ch = 0; ch < c; ch++) {
        double s = 0, s2 = 0;
        BN_FOR_CHANNEL(x, n, ch, c, sp, s += xd[k]);
        double mean = s / count;
        BN_FOR_CHANNEL(x, n, ch, c, sp, { double d = xd[k] - mean; s2 += d * d; });
        double var = s2 / count;
        float is = (float)(1.0 / sqrt(var + eps));
        float m = (float)mean;
        inv[ch] = is;
        BN_FOR_CHANNEL(x, n, ch, c, sp, yd[k] = (xd[k] - m) * is);
        if (mean_out) mean_out[ch] = m;
        if (var_out) var_out[ch] = (float)var;
    }
    ml_node *nd = ml__record(ctx, ML_OP_NORMALIZE, t, x, NULL);
    if (nd) {
        nd->aux = inv;
        nd->fp = eps;
    }
    return t;
}

/* Fused backward of normalize: dx = inv * (g - mean(g) - xhat * mean(g * xhat)). */
ml_tensor *ml__normalize_backward_fused(ml_ctx *ctx, ml_tensor *g, ml_tensor *xhat, const float *inv) {
    if (!g || ctx->status != ML_OK) return NULL;
    int64_t n = g->shape[0], c = g->shape[1], nc = n * c, sp = nc ? g->numel / nc : 0;
    ml_tensor *t = ml_tensor_new(ctx, g->ndim, g->shape);
    if (!t) return NULL;
    const float *gd = g->data, *hd = xhat->data;
    float *od = t->data;
    double count = (double)(n * sp);
    for (int64_t ch = 0; ch < c; ch++) {
        double sg = 0, sgh = 0;
        BN_FOR_CHANNEL(g, n, ch, c, sp, { sg += gd[k]; sgh += (double)gd[k] * hd[k]; });
        float mg = (float)(sg / count), mgh = (float)(sgh / count), is = inv[ch];
        BN_FOR_CHANNEL(g, n, ch, c, sp, od[k] = is * (gd[k] - mg - hd[k] * mgh));
    }
    return t;
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
        if (stats && y) {
            float unbias = (float)count / (float)(count - 1);
            for (int64_t i = 0; i < c; i++) {
                running_mean[i] = (1 - momentum) * running_mean[i] + momentum * stats[i];
                running_var[i] = (1 - momentum) * running_var[i] + momentum * stats[c + i] * unbias;
            }
        }
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
