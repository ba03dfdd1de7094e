/* bn_grad.c: batch norm's backward as one differentiable op, for create_graph.
 *
 * y = bn_grad(a, g1, gamma), per channel over its N values (every dim but 1):
 *   s = 1 / sqrt(var(a) + eps), xh = (a - mean(a)) * s, h = gamma * g1,
 *   y = s * (h - mean(h) - xh * mean(h * xh)),
 * which is d/da <g1, normalize(a) * gamma>: the input gradient of batch norm
 * (ml_batchnorm_relu*) for the gradient g1 at its affine output. Under
 * create_graph (second-order MAML's inner step) it used to be recorded as
 * about ten composite ops, each a tensor of the block's size, all kept for the
 * meta-gradient; as one node it keeps y alone (a and g1 are kept anyway).
 *
 * Its backward, for the upstream gradient G (m2 = mean(h * xh); u is the same
 * projection applied to G, which is self-adjoint):
 *   u       = s * (G - mean(G) - xh * mean(G * xh))
 *   d g1    = gamma * u
 *   d gamma = sum over the channel of g1 * u
 *   d a     = -s * (xh * mean(G * y) + m2 * u + y * mean(G * xh))
 * (d s / d a_j = -s^2 xh_j / N, d xh_i / d a_j = s (delta_ij - 1/N) - s xh_i xh_j / N,
 * d m2 / d a_j = y_j / N; collect the three terms). Not recording, it runs
 * fused; recording (a third derivative), the same formulas as recorded ops.
 * tests/test_grad.c checks both orders against finite differences, and the
 * naive twin (the composite it replaces) against this op. */
#include <math.h>

#include "tensor/internal.h"
#include "tensor/kernels_par.h"

typedef struct bng_job {
    int64_t n, c, sp; /* x is [n, c, sp] */
    float eps;
    const float *a, *g1, *gamma, *y, *g;
    float *aux; /* per channel: mean, s, m2 */
    float *out, *dg1, *dgamma;
} bng_job;

/* The channel's values are n runs of sp floats; sums in double, in image
 * order then element order, whatever the thread count. */
#define BNG_FOR(j, ch, p, body)                                       \
    for (int64_t i_ = 0; i_ < (j)->n; i_++) {                         \
        const int64_t p = (i_ * (j)->c + (ch)) * (j)->sp;             \
        for (int64_t k_ = 0; k_ < (j)->sp; k_++) { body(p + k_) }     \
    }

ML_KERNEL static void bn_grad_range(void *arg, int64_t lo, int64_t hi) {
    const bng_job *j = arg;
    const double count = (double)(j->n * j->sp);
    for (int64_t ch = lo; ch < hi; ch++) {
        double sa = 0, sd = 0, sh = 0, shx = 0;
#define SUM_A(e) sa += j->a[e];
        BNG_FOR(j, ch, p, SUM_A)
        const double mean = sa / count;
#define SUM_D(e) sd += (j->a[e] - mean) * (j->a[e] - mean);
        BNG_FOR(j, ch, p, SUM_D)
        const double s = 1.0 / sqrt(sd / count + j->eps), gm = j->gamma[ch];
#define SUM_H(e) sh += gm * j->g1[e], shx += gm * j->g1[e] * ((j->a[e] - mean) * s);
        BNG_FOR(j, ch, p, SUM_H)
        const double m1 = sh / count, m2 = shx / count;
#define OUT(e) j->out[e] = (float)(s * (gm * j->g1[e] - m1 - (j->a[e] - mean) * s * m2));
        BNG_FOR(j, ch, p, OUT)
        j->aux[3 * ch] = (float)mean, j->aux[3 * ch + 1] = (float)s, j->aux[3 * ch + 2] = (float)m2;
    }
}

ML_KERNEL static void bn_grad_backward_range(void *arg, int64_t lo, int64_t hi) {
    const bng_job *j = arg;
    const double count = (double)(j->n * j->sp);
    for (int64_t ch = lo; ch < hi; ch++) {
        const double mean = j->aux[3 * ch], s = j->aux[3 * ch + 1], m2 = j->aux[3 * ch + 2], gm = j->gamma[ch];
        double sg = 0, sgx = 0, sgy = 0, sgu = 0;
#define SUM_G(e) sg += j->g[e], sgx += j->g[e] * ((j->a[e] - mean) * s), sgy += (double)j->g[e] * j->y[e];
        BNG_FOR(j, ch, p, SUM_G)
        const double mg = sg / count, mgx = sgx / count, mgy = sgy / count;
#define DIN(e)                                                                      \
    {                                                                               \
        const double xh = (j->a[e] - mean) * s, u = s * (j->g[e] - mg - xh * mgx); \
        if (j->dg1) j->dg1[e] = (float)(gm * u);                                    \
        sgu += j->g1[e] * u;                                                        \
        if (j->out) j->out[e] = (float)(-s * (xh * mgy + m2 * u + j->y[e] * mgx));  \
    }
        BNG_FOR(j, ch, p, DIN)
        if (j->dgamma) j->dgamma[ch] = (float)sgu;
    }
}

static int bn_grad_shape(const ml_tensor *a, int64_t *n, int64_t *c, int64_t *sp) {
    if (a->ndim != 2 && a->ndim != 4) return -1;
    *n = a->shape[0], *c = a->shape[1];
    *sp = a->ndim == 4 ? a->shape[2] * a->shape[3] : 1;
    return 0;
}

ml_tensor *ml__bn_grad(ml_ctx *ctx, ml_tensor *a, ml_tensor *g1, ml_tensor *gamma, float eps) {
    if (!a || !g1 || !gamma || ctx->status != ML_OK) return NULL;
    int64_t n, c, sp;
    if (bn_grad_shape(a, &n, &c, &sp) || !ml_same_shape(a, g1) || gamma->numel != c || n * sp < 2)
        return ml_ctx_fail(ctx, ML_ERR_SHAPE, "bn_grad: a and g1 must be the same [N,C(,H,W)], gamma [C]");
    ml_tensor *t = ml_tensor_new(ctx, a->ndim, a->shape);
    float *aux = ml_ctx_alloc(ctx, 3 * (size_t)c * sizeof(float));
    if (!t || !aux) return NULL;
    bng_job j = {.n = n, .c = c, .sp = sp, .eps = eps, .a = a->data, .g1 = g1->data, .gamma = gamma->data,
                 .aux = aux, .out = t->data};
    ML__PAR_RUN(c, 4 * a->numel, 1, bn_grad_range, &j);
    ml_node *nd = ml__record3(ctx, ML_OP_BN_GRAD, t, a, g1, gamma);
    if (nd) {
        nd->aux = aux;
        nd->fp = eps;
    }
    return t;
}

/* The backward as recorded ops: every factor a recorded function of the
 * inputs (s and xh recomputed from a, y the node's own output). */
static void bn_grad_backward_recorded(ml_ctx *ctx, const ml_node *nd, ml_tensor *g, const int need[3],
                                      ml_tensor *din[3]) {
    ml_tensor *a = nd->in[0], *g1 = nd->in[1], *y = nd->out;
    const unsigned axes = a->ndim == 4 ? 0xdu : 0x1u;
    int64_t pshape[4] = {1, a->shape[1], 1, 1}; /* [1, C] for 2-D a: the first a->ndim dims */
    ml_tensor *gamma = ml_reshape(ctx, nd->in[2], a->ndim, pshape);
    ml_tensor *centered = ml_sub(ctx, a, ml_mean(ctx, a, axes, 1));
    ml_tensor *s = ml_rsqrt(ctx, ml_add_scalar(ctx, ml_mean(ctx, ml_square(ctx, centered), axes, 1), nd->fp));
    ml_tensor *xh = ml_mul(ctx, centered, s);
    ml_tensor *mgx = ml_mean(ctx, ml_mul(ctx, g, xh), axes, 1);
    ml_tensor *u = ml_mul(ctx, s, ml_sub(ctx, ml_sub(ctx, g, ml_mean(ctx, g, axes, 1)), ml_mul(ctx, xh, mgx)));
    if (need[1]) din[1] = ml_mul(ctx, u, gamma);
    if (need[2]) din[2] = ml_sum(ctx, ml_mul(ctx, g1, u), axes, 0);
    if (need[0]) {
        ml_tensor *m2 = ml_mul(ctx, ml_mean(ctx, ml_mul(ctx, g1, xh), axes, 1), gamma);
        ml_tensor *mgy = ml_mean(ctx, ml_mul(ctx, g, y), axes, 1);
        ml_tensor *sum = ml_add(ctx, ml_add(ctx, ml_mul(ctx, xh, mgy), ml_mul(ctx, m2, u)), ml_mul(ctx, y, mgx));
        din[0] = ml_neg(ctx, ml_mul(ctx, s, sum));
    }
}

void ml__bn_grad_backward(ml_ctx *ctx, const ml_node *nd, ml_tensor *g, const int need[3], ml_tensor *din[3]) {
    if (ctx->recording) {
        bn_grad_backward_recorded(ctx, nd, g, need, din);
        return;
    }
    const ml_tensor *a = nd->in[0];
    int64_t n = 0, c = 0, sp = 0;
    bn_grad_shape(a, &n, &c, &sp); /* checked when recorded */
    ml_tensor *da = need[0] ? ml_tensor_new(ctx, a->ndim, a->shape) : NULL;
    ml_tensor *dg1 = need[1] ? ml_tensor_new(ctx, a->ndim, a->shape) : NULL;
    ml_tensor *dgamma = need[2] ? ml_tensor_new(ctx, 1, ML_SHAPE(c)) : NULL;
    if ((need[0] && !da) || (need[1] && !dg1) || (need[2] && !dgamma)) return;
    bng_job j = {.n = n, .c = c, .sp = sp, .a = a->data, .g1 = nd->in[1]->data, .gamma = nd->in[2]->data,
                 .y = nd->out->data, .g = g->data, .aux = nd->aux, .out = da ? da->data : NULL,
                 .dg1 = dg1 ? dg1->data : NULL, .dgamma = dgamma ? dgamma->data : NULL};
    ML__PAR_RUN(c, 6 * a->numel, 1, bn_grad_backward_range, &j);
    din[0] = da, din[1] = dg1, din[2] = dgamma;
}
