/* test_grad.c: first- and second-order finite-difference checks of every op.
 *
 * For each row of the table, a function f(inputs) -> tensor. The scalar
 * L = sum(f(inputs) * R), with R a fixed random tensor, is checked:
 *   first order:  dL/dx_i (ml_grad) vs. central differences of L, per element;
 *   second order: the Hessian-vector product d/dx <dL/dx, v> (ml_grad with
 *                 create_graph, then ml_grad again) vs. central differences of
 *                 the gradient along v: (g(x + e v) - g(x - e v)) / 2e.
 * L for the differences is summed in double outside the engine, so the only
 * float32 rounding left is the ops' own. Inputs avoid kinks (ReLU, max-pool)
 * by more than the step. */
#include <math.h>
#include <string.h>

#include "metalearn/meta.h"
#include "metalearn/tensor.h"
#include "ml_test.h"
#include "tensor/internal.h"

#define MAX_IN 3

enum init { I_NORMAL, I_POSITIVE, I_AWAY0, I_DISTINCT, I_ALTSIGN };

typedef ml_tensor *(*build_fn)(ml_ctx *ctx, ml_tensor **in);

typedef struct op_case {
    const char *name;
    int n_in;
    int ndim[MAX_IN];
    int64_t shape[MAX_IN][4];
    enum init init[MAX_IN];
    build_fn f;
    int second_order; /* 0: first order only (a network whose kinks make differences of the
                         gradient along a global direction unreliable) */
} op_case;

static int32_t labels5[] = {1, 0, 3, 3, 2};

/* ---- the functions under test -------------------------------------------------------- */
static ml_tensor *f_add(ml_ctx *c, ml_tensor **x) { return ml_add(c, x[0], x[1]); }
static ml_tensor *f_sub(ml_ctx *c, ml_tensor **x) { return ml_sub(c, x[0], x[1]); }
static ml_tensor *f_mul(ml_ctx *c, ml_tensor **x) { return ml_mul(c, x[0], x[1]); }
static ml_tensor *f_div(ml_ctx *c, ml_tensor **x) { return ml_div(c, x[0], x[1]); }
static ml_tensor *f_bias(ml_ctx *c, ml_tensor **x) { return ml_bias_add(c, x[0], x[1]); }
/* Unary ops are composed with a product so the second-order check sees them
 * in a non-trivial Hessian (d2/dx2 of a linear map is zero). */
static ml_tensor *f_scale(ml_ctx *c, ml_tensor **x) { return ml_mul(c, ml_scale(c, x[0], -1.7f), x[0]); }
static ml_tensor *f_neg(ml_ctx *c, ml_tensor **x) { return ml_mul(c, ml_neg(c, x[0]), x[0]); }
static ml_tensor *f_add_scalar(ml_ctx *c, ml_tensor **x) { return ml_mul(c, ml_add_scalar(c, x[0], 0.3f), x[0]); }
static ml_tensor *f_exp(ml_ctx *c, ml_tensor **x) { return ml_exp(c, x[0]); }
static ml_tensor *f_log(ml_ctx *c, ml_tensor **x) { return ml_log(c, x[0]); }
static ml_tensor *f_sqrt(ml_ctx *c, ml_tensor **x) { return ml_sqrt(c, x[0]); }
static ml_tensor *f_rsqrt(ml_ctx *c, ml_tensor **x) { return ml_rsqrt(c, x[0]); }
static ml_tensor *f_tanh(ml_ctx *c, ml_tensor **x) { return ml_tanh(c, x[0]); }
static ml_tensor *f_square(ml_ctx *c, ml_tensor **x) { return ml_square(c, x[0]); }
static ml_tensor *f_relu(ml_ctx *c, ml_tensor **x) { return ml_mul(c, ml_relu(c, x[0]), x[1]); }
static ml_tensor *f_relu_mask(ml_ctx *c, ml_tensor **x) { return ml_square(c, ml_relu_mask(c, x[0], x[1])); }
static ml_tensor *f_sum_keep(ml_ctx *c, ml_tensor **x) { return ml_square(c, ml_sum(c, x[0], 0x5, 1)); }
static ml_tensor *f_sum_drop(ml_ctx *c, ml_tensor **x) { return ml_square(c, ml_sum(c, x[0], 0x2, 0)); }
static ml_tensor *f_mean(ml_ctx *c, ml_tensor **x) { return ml_square(c, ml_mean(c, x[0], 0xd, 1)); }
static ml_tensor *f_sum_all(ml_ctx *c, ml_tensor **x) { return ml_square(c, ml_sum_all(c, x[0])); }
static ml_tensor *f_broadcast(ml_ctx *c, ml_tensor **x) {
    return ml_square(c, ml_broadcast_to(c, x[0], 3, ML_SHAPE(2, 3, 4)));
}
static ml_tensor *f_sum_to(ml_ctx *c, ml_tensor **x) { return ml_square(c, ml_sum_to(c, x[0], 2, ML_SHAPE(3, 1))); }
static ml_tensor *f_mm_nn(ml_ctx *c, ml_tensor **x) { return ml_matmul(c, x[0], x[1], 0, 0); }
static ml_tensor *f_mm_tn(ml_ctx *c, ml_tensor **x) { return ml_matmul(c, x[0], x[1], 1, 0); }
static ml_tensor *f_mm_nt(ml_ctx *c, ml_tensor **x) { return ml_matmul(c, x[0], x[1], 0, 1); }
static ml_tensor *f_mm_tt(ml_ctx *c, ml_tensor **x) { return ml_matmul(c, x[0], x[1], 1, 1); }
static ml_tensor *f_conv_s1(ml_ctx *c, ml_tensor **x) { return ml_conv2d(c, x[0], x[1], 1, 1); }
static ml_tensor *f_conv_s2(ml_ctx *c, ml_tensor **x) { return ml_conv2d(c, x[0], x[1], 2, 1); }
static ml_tensor *f_conv_1x1(ml_ctx *c, ml_tensor **x) { return ml_conv2d(c, x[0], x[1], 1, 0); }
static ml_tensor *f_conv_sq(ml_ctx *c, ml_tensor **x) { return ml_square(c, ml_conv2d(c, x[0], x[1], 2, 0)); }
static ml_tensor *f_conv_bd(ml_ctx *c, ml_tensor **x) { return ml_conv2d_backward_data(c, x[0], x[1], 5, 5, 2, 1); }
static ml_tensor *f_conv_bw(ml_ctx *c, ml_tensor **x) { return ml_conv2d_backward_weight(c, x[0], x[1], 3, 3, 2, 1); }
static ml_tensor *f_maxpool(ml_ctx *c, ml_tensor **x) { return ml_mul(c, ml_maxpool2x2(c, x[0]), ml_maxpool2x2(c, x[0])); }
static ml_tensor *f_gap(ml_ctx *c, ml_tensor **x) { return ml_square(c, ml_global_avgpool(c, x[0])); }
static ml_tensor *f_bn4(ml_ctx *c, ml_tensor **x) {
    return ml_batchnorm(c, x[0], x[1], x[2], NULL, NULL, 1, 0.1f, 1e-5f);
}
static ml_tensor *f_bn2(ml_ctx *c, ml_tensor **x) {
    return ml_batchnorm(c, x[0], x[1], x[2], NULL, NULL, 1, 0.1f, 1e-5f);
}
/* sp = 12: one 8-wide vector step and a tail in the fused kernels. */
static ml_tensor *f_bn_relu(ml_ctx *c, ml_tensor **x) {
    return ml_batchnorm_relu(c, x[0], x[1], x[2], NULL, NULL, 1, 0.1f, 1e-5f);
}
/* 5x7: an odd width, so a column the pool drops still has a gradient.
 * gamma all positive (the pool on x), then one negative (the pool on z). */
static ml_tensor *f_bn_relu_pool(ml_ctx *c, ml_tensor **x) {
    return ml_batchnorm_relu_maxpool(c, x[0], x[1], x[2], NULL, NULL, 1, 0.1f, 1e-5f);
}
/* Batch norm's input gradient as one op (bn_grad.c), itself differentiated:
 * first order = the second order of batch norm, second order = the third. */
static ml_tensor *f_bn_grad(ml_ctx *c, ml_tensor **x) { return ml__bn_grad(c, x[0], x[1], x[2], 1e-5f); }
static float rm3[3] = {0.1f, -0.2f, 0.3f}, rv3[3] = {0.5f, 1.5f, 2.0f};
static ml_tensor *f_bn_eval(ml_ctx *c, ml_tensor **x) {
    return ml_square(c, ml_batchnorm(c, x[0], x[1], x[2], rm3, rv3, 0, 0.1f, 1e-5f));
}
static ml_tensor *f_softmax(ml_ctx *c, ml_tensor **x) { return ml_softmax(c, x[0]); }
static ml_tensor *f_log_softmax(ml_ctx *c, ml_tensor **x) { return ml_log_softmax(c, x[0]); }
static ml_tensor *f_xent(ml_ctx *c, ml_tensor **x) { return ml_cross_entropy(c, x[0], labels5); }
static ml_tensor *f_mse(ml_ctx *c, ml_tensor **x) { return ml_mse(c, x[0], x[1]); }
static ml_tensor *f_reshape(ml_ctx *c, ml_tensor **x) {
    return ml_square(c, ml_reshape(c, x[0], 2, ML_SHAPE(-1, 6)));
}
static ml_tensor *f_flatten(ml_ctx *c, ml_tensor **x) { return ml_square(c, ml_flatten(c, x[0])); }
static ml_tensor *f_narrow(ml_ctx *c, ml_tensor **x) { return ml_square(c, ml_narrow(c, x[0], 1, 2)); }
static ml_tensor *f_concat(ml_ctx *c, ml_tensor **x) { return ml_square(c, ml_concat0(c, x[0], x[1])); }
/* Episode heads of the metric-based learners: 6 support, 5 query, 3 ways. */
static int32_t ys6[] = {0, 1, 2, 0, 1, 2}, yq5[] = {2, 0, 1, 1, 0};
static ml_tensor *f_protonet(ml_ctx *c, ml_tensor **x) {
    return ml_cross_entropy(c, ml_protonet_logits(c, x[0], ys6, 3, x[1]), yq5);
}
static ml_tensor *f_matching(ml_ctx *c, ml_tensor **x) {
    return ml_cross_entropy(c, ml_matching_logits(c, x[0], ys6, 3, x[1], NULL), yq5);
}
static ml_tensor *f_matching_scaled(ml_ctx *c, ml_tensor **x) {
    return ml_cross_entropy(c, ml_matching_logits(c, x[0], ys6, 3, x[1], x[2]), yq5);
}
static ml_tensor *f_cosine(ml_ctx *c, ml_tensor **x) {
    return ml_cross_entropy(c, ml_cosine_logits(c, x[0], ys6, 3, x[1], x[2]), yq5);
}
static ml_tensor *f_r2d2(ml_ctx *c, ml_tensor **x) {
    ml_tensor *ll = ml_narrow(c, x[2], 0, 1), *scale = ml_narrow(c, x[2], 1, 1), *bias = ml_narrow(c, x[2], 2, 1);
    return ml_cross_entropy(c, ml_r2d2_logits(c, x[0], ys6, 3, x[1], ll, scale, bias), yq5);
}

/* A well-conditioned matrix: 0.4 a + 3 I. */
static ml_tensor *f_inverse(ml_ctx *c, ml_tensor **x) {
    int was = ml_ctx_set_recording(c, 0);
    ml_tensor *i3 = ml_scale(c, ml_eye(c, x[0]->shape[0]), 3.0f);
    ml_ctx_set_recording(c, was);
    return ml_inverse(c, ml_add(c, ml_scale(c, x[0], 0.4f), i3));
}
static ml_tensor *f_pick(ml_ctx *c, ml_tensor **x) { return ml_square(c, ml_pick(c, x[0], labels5)); }
static ml_tensor *f_pick_bw(ml_ctx *c, ml_tensor **x) { return ml_square(c, ml_pick_backward(c, x[0], labels5, 4)); }
/* A small network end to end: conv, batch norm, relu, pool, linear, loss. */
static ml_tensor *f_net(ml_ctx *c, ml_tensor **x) {
    ml_tensor *h = ml_conv2d(c, x[0], x[1], 1, 1);
    h = ml_batchnorm(c, h, NULL, NULL, NULL, NULL, 1, 0.1f, 1e-5f);
    h = ml_maxpool2x2(c, ml_relu(c, h));
    h = ml_flatten(c, h);
    h = ml_matmul(c, h, x[2], 0, 1);
    return ml_cross_entropy(c, h, labels5);
}

/* The same without kinks (square instead of ReLU, average instead of max
 * pooling), so its second-order check is exact to rounding. */
static ml_tensor *f_smooth_net(ml_ctx *c, ml_tensor **x) {
    ml_tensor *h = ml_conv2d(c, x[0], x[1], 2, 1);
    h = ml_batchnorm(c, h, NULL, NULL, NULL, NULL, 1, 0.1f, 1e-5f);
    h = ml_global_avgpool(c, ml_square(c, h));
    h = ml_matmul(c, h, x[2], 0, 1);
    return ml_cross_entropy(c, h, labels5);
}

#define S1(a) {a}
static const op_case cases[] = {
    {"add_broadcast", 2, {3, 2}, {{2, 3, 4}, {3, 1}}, {I_NORMAL, I_NORMAL}, f_add, 1},
    {"sub_broadcast", 2, {2, 1}, {{2, 3}, {3}}, {I_NORMAL, I_NORMAL}, f_sub, 1},
    {"mul_broadcast", 2, {3, 3}, {{2, 3, 4}, {1, 3, 1}}, {I_NORMAL, I_NORMAL}, f_mul, 1},
    {"div", 2, {2, 2}, {{2, 3}, {2, 3}}, {I_NORMAL, I_POSITIVE}, f_div, 1},
    {"div_broadcast", 2, {2, 1}, {{2, 3}, {3}}, {I_NORMAL, I_POSITIVE}, f_div, 1},
    {"bias_add", 2, {4, 1}, {{2, 3, 2, 2}, {3}}, {I_NORMAL, I_NORMAL}, f_bias, 1},
    {"scale", 1, {2}, {{3, 4}}, {I_NORMAL}, f_scale, 1},
    {"neg", 1, {2}, {{3, 4}}, {I_NORMAL}, f_neg, 1},
    {"add_scalar", 1, {2}, {{3, 4}}, {I_NORMAL}, f_add_scalar, 1},
    {"exp", 1, {2}, {{3, 4}}, {I_NORMAL}, f_exp, 1},
    {"log", 1, {2}, {{3, 4}}, {I_POSITIVE}, f_log, 1},
    {"sqrt", 1, {2}, {{3, 4}}, {I_POSITIVE}, f_sqrt, 1},
    {"rsqrt", 1, {2}, {{3, 4}}, {I_POSITIVE}, f_rsqrt, 1},
    {"square", 1, {2}, {{3, 4}}, {I_NORMAL}, f_square, 1},
    {"relu", 2, {2, 2}, {{3, 4}, {3, 4}}, {I_AWAY0, I_NORMAL}, f_relu, 1},
    {"relu_mask", 2, {2, 2}, {{3, 4}, {3, 4}}, {I_NORMAL, I_AWAY0}, f_relu_mask, 1},
    {"sum_keepdim", 1, {3}, {{2, 3, 4}}, {I_NORMAL}, f_sum_keep, 1},
    {"sum_dropdim", 1, {3}, {{2, 3, 4}}, {I_NORMAL}, f_sum_drop, 1},
    {"mean", 1, {4}, {{2, 3, 2, 2}}, {I_NORMAL}, f_mean, 1},
    {"sum_all", 1, {2}, {{3, 4}}, {I_NORMAL}, f_sum_all, 1},
    {"broadcast_to", 1, {2}, {{3, 1}}, {I_NORMAL}, f_broadcast, 1},
    {"sum_to", 1, {3}, {{2, 3, 4}}, {I_NORMAL}, f_sum_to, 1},
    {"matmul_nn", 2, {2, 2}, {{3, 4}, {4, 5}}, {I_NORMAL, I_NORMAL}, f_mm_nn, 1},
    {"matmul_tn", 2, {2, 2}, {{4, 3}, {4, 5}}, {I_NORMAL, I_NORMAL}, f_mm_tn, 1},
    {"matmul_nt", 2, {2, 2}, {{3, 4}, {5, 4}}, {I_NORMAL, I_NORMAL}, f_mm_nt, 1},
    {"matmul_tt", 2, {2, 2}, {{4, 3}, {5, 4}}, {I_NORMAL, I_NORMAL}, f_mm_tt, 1},
    {"conv2d_3x3_s1_p1", 2, {4, 4}, {{2, 3, 5, 5}, {4, 3, 3, 3}}, {I_NORMAL, I_NORMAL}, f_conv_s1, 1},
    {"conv2d_3x3_s2_p1", 2, {4, 4}, {{2, 3, 6, 5}, {2, 3, 3, 3}}, {I_NORMAL, I_NORMAL}, f_conv_s2, 1},
    {"conv2d_1x1", 2, {4, 4}, {{1, 5, 3, 3}, {3, 5, 1, 1}}, {I_NORMAL, I_NORMAL}, f_conv_1x1, 1},
    {"conv2d_1x1_image", 2, {4, 4}, {{3, 2, 1, 1}, {4, 2, 1, 1}}, {I_NORMAL, I_NORMAL}, f_conv_1x1, 1},
    {"conv2d_squared_s2_p0", 2, {4, 4}, {{2, 2, 5, 5}, {3, 2, 3, 3}}, {I_NORMAL, I_NORMAL}, f_conv_sq, 1},
    {"conv2d_backward_data", 2, {4, 4}, {{2, 4, 3, 3}, {4, 3, 3, 3}}, {I_NORMAL, I_NORMAL}, f_conv_bd, 1},
    {"conv2d_backward_weight", 2, {4, 4}, {{2, 3, 5, 5}, {2, 4, 3, 3}}, {I_NORMAL, I_NORMAL}, f_conv_bw, 1},
    {"maxpool2x2_odd", 1, {4}, {{2, 2, 5, 5}}, {I_DISTINCT}, f_maxpool, 1},
    {"global_avgpool", 1, {4}, {{2, 3, 3, 2}}, {I_NORMAL}, f_gap, 1},
    {"batchnorm_4d", 3, {4, 1, 1}, {{3, 2, 2, 3}, {2}, {2}}, {I_NORMAL, I_NORMAL, I_NORMAL}, f_bn4, 1},
    {"batchnorm_relu_4d", 3, {4, 1, 1}, {{3, 2, 3, 4}, {2}, {2}}, {I_NORMAL, I_NORMAL, I_NORMAL}, f_bn_relu, 1},
    {"bn_relu_maxpool_gamma_pos", 3, {4, 1, 1}, {{3, 2, 5, 7}, {2}, {2}}, {I_DISTINCT, I_POSITIVE, I_NORMAL}, f_bn_relu_pool, 1},
    {"bn_relu_maxpool_gamma_neg", 3, {4, 1, 1}, {{3, 2, 5, 7}, {2}, {2}}, {I_DISTINCT, I_ALTSIGN, I_POSITIVE}, f_bn_relu_pool, 1},
    {"bn_grad_4d", 3, {4, 4, 1}, {{3, 2, 3, 4}, {3, 2, 3, 4}, {2}}, {I_NORMAL, I_NORMAL, I_ALTSIGN}, f_bn_grad, 1},
    {"bn_grad_2d", 3, {2, 2, 1}, {{5, 3}, {5, 3}, {3}}, {I_NORMAL, I_NORMAL, I_NORMAL}, f_bn_grad, 1},
    {"batchnorm_2d", 3, {2, 1, 1}, {{5, 3}, {3}, {3}}, {I_NORMAL, I_NORMAL, I_NORMAL}, f_bn2, 1},
    {"batchnorm_eval", 3, {4, 1, 1}, {{2, 3, 2, 2}, {3}, {3}}, {I_NORMAL, I_NORMAL, I_NORMAL}, f_bn_eval, 1},
    {"softmax", 1, {2}, {{3, 5}}, {I_NORMAL}, f_softmax, 1},
    {"log_softmax", 1, {2}, {{3, 5}}, {I_NORMAL}, f_log_softmax, 1},
    {"cross_entropy", 1, {2}, {{5, 4}}, {I_NORMAL}, f_xent, 1},
    {"mse", 2, {2, 1}, {{4, 1}, {4}}, {I_NORMAL, I_NORMAL}, f_mse, 1},
    {"reshape", 1, {3}, {{2, 3, 2}}, {I_NORMAL}, f_reshape, 1},
    {"flatten", 1, {4}, {{2, 3, 2, 2}}, {I_NORMAL}, f_flatten, 1},
    {"narrow", 1, {2}, {{4, 3}}, {I_NORMAL}, f_narrow, 1},
    {"concat0", 2, {2, 2}, {{2, 3}, {1, 3}}, {I_NORMAL, I_NORMAL}, f_concat, 1},
    {"pick", 1, {2}, {{5, 4}}, {I_NORMAL}, f_pick, 1},
    {"inverse", 1, {2}, {{4, 4}}, {I_NORMAL}, f_inverse, 1},
    {"protonet_head", 2, {2, 2}, {{6, 4}, {5, 4}}, {I_NORMAL, I_NORMAL}, f_protonet, 1},
    {"matching_head", 2, {2, 2}, {{6, 4}, {5, 4}}, {I_NORMAL, I_NORMAL}, f_matching, 1},
    {"matching_head_scaled", 3, {2, 2, 1}, {{6, 4}, {5, 4}, {1}}, {I_NORMAL, I_NORMAL, I_POSITIVE}, f_matching_scaled, 1},
    {"cosine_head", 3, {2, 2, 1}, {{6, 4}, {5, 4}, {1}}, {I_NORMAL, I_NORMAL, I_POSITIVE}, f_cosine, 1},
    {"r2d2_head", 3, {2, 2, 1}, {{6, 8}, {5, 8}, {3}}, {I_NORMAL, I_NORMAL, I_NORMAL}, f_r2d2, 1},
    {"pick_backward", 1, {1}, {{5}}, {I_NORMAL}, f_pick_bw, 1},
    {"small_cnn_end_to_end", 3, {4, 4, 2}, {{5, 2, 4, 4}, {3, 2, 3, 3}, {4, 12}}, {I_NORMAL, I_NORMAL, I_NORMAL}, f_net, 0},
    {"smooth_cnn_end_to_end", 3, {4, 4, 2}, {{5, 2, 5, 5}, {3, 2, 3, 3}, {4, 3}}, {I_NORMAL, I_NORMAL, I_NORMAL}, f_smooth_net, 1},
    /* last: a row added before others would change the random inputs of the rows after it */
    {"tanh", 1, {2}, {{3, 4}}, {I_NORMAL}, f_tanh, 1},
};

/* ---- harness -------------------------------------------------------------------------------- */

typedef struct fixture {
    ml_ctx *ctx;
    float *x[MAX_IN];  /* input values (owned here, wrapped as leaves each evaluation) */
    int64_t numel[MAX_IN];
    float *r;          /* the random projection R */
    int64_t r_numel;
} fixture;

static ml_rng rng;

static void fill(float *v, int64_t n, enum init kind) {
    for (int64_t i = 0; i < n; i++) {
        double z = ml_rng_normal(&rng);
        switch (kind) {
        case I_NORMAL: v[i] = (float)z; break;
        case I_POSITIVE: v[i] = (float)(0.5 + ml_rng_uniform(&rng)); break;
        case I_AWAY0: v[i] = (float)((z >= 0 ? 0.2 : -0.2) + 0.8 * z); break;
        case I_DISTINCT: v[i] = (float)(0.05 * (double)i - 1.0); break;
        case I_ALTSIGN: v[i] = (float)((i % 2 ? -1.0 : 1.0) * (0.5 + ml_rng_uniform(&rng))); break;
        }
    }
    if (kind == I_DISTINCT) /* distinct values, spaced 0.05 apart, in random order */
        for (int64_t i = n - 1; i > 0; i--) {
            int64_t j = ml_rng_below(&rng, (uint32_t)(i + 1));
            float t = v[i];
            v[i] = v[j];
            v[j] = t;
        }
}

/* Evaluates f on the current values; returns L in double, or NAN on error. */
static double eval_loss(const op_case *oc, fixture *fx) {
    ml_ctx_reset(fx->ctx);
    int was = ml_ctx_set_recording(fx->ctx, 0);
    ml_tensor *in[MAX_IN];
    for (int i = 0; i < oc->n_in; i++) in[i] = ml_tensor_wrap(fx->ctx, fx->x[i], oc->ndim[i], oc->shape[i]);
    ml_tensor *y = oc->f(fx->ctx, in);
    ml_ctx_set_recording(fx->ctx, was);
    if (!y) return NAN;
    double s = 0;
    for (int64_t i = 0; i < y->numel; i++) s += (double)y->data[i] * fx->r[i];
    return s;
}

/* The recorded loss L = sum(f * R) and its inputs, in fx->ctx. */
static ml_tensor *build_loss(const op_case *oc, fixture *fx, ml_tensor **in) {
    for (int i = 0; i < oc->n_in; i++) in[i] = ml_tensor_wrap(fx->ctx, fx->x[i], oc->ndim[i], oc->shape[i]);
    ml_tensor *y = oc->f(fx->ctx, in);
    if (!y) return NULL;
    ml_tensor *r = ml_tensor_wrap(fx->ctx, fx->r, y->ndim, y->shape);
    return ml_sum_all(fx->ctx, ml_mul(fx->ctx, y, r));
}

/* First-order analytic gradients into g[i] (caller buffers). */
static int analytic_grad(const op_case *oc, fixture *fx, float **g) {
    ml_ctx_reset(fx->ctx);
    ml_tensor *in[MAX_IN], *out[MAX_IN];
    ml_tensor *L = build_loss(oc, fx, in);
    if (ml_grad(fx->ctx, L, in, oc->n_in, 0, out) != ML_OK) return -1;
    for (int i = 0; i < oc->n_in; i++) memcpy(g[i], out[i]->data, (size_t)fx->numel[i] * sizeof(float));
    return 0;
}

static void check_case(const op_case *oc) {
    fixture fx = {0};
    fx.ctx = ml_ctx_create(1 << 20);
    float *g[MAX_IN], *gp[MAX_IN], *gm[MAX_IN], *v[MAX_IN];
    for (int i = 0; i < oc->n_in; i++) {
        fx.numel[i] = 1;
        for (int d = 0; d < oc->ndim[i]; d++) fx.numel[i] *= oc->shape[i][d];
        fx.x[i] = malloc((size_t)fx.numel[i] * sizeof(float));
        g[i] = malloc((size_t)fx.numel[i] * sizeof(float));
        gp[i] = malloc((size_t)fx.numel[i] * sizeof(float));
        gm[i] = malloc((size_t)fx.numel[i] * sizeof(float));
        v[i] = malloc((size_t)fx.numel[i] * sizeof(float));
        fill(fx.x[i], fx.numel[i], oc->init[i]);
        fill(v[i], fx.numel[i], I_NORMAL);
    }
    /* Output size, then R. */
    ml_ctx_set_recording(fx.ctx, 0);
    ml_tensor *in[MAX_IN];
    for (int i = 0; i < oc->n_in; i++) in[i] = ml_tensor_wrap(fx.ctx, fx.x[i], oc->ndim[i], oc->shape[i]);
    ml_tensor *y = oc->f(fx.ctx, in);
    ml_ctx_set_recording(fx.ctx, 1);
    if (!y) {
        ML_FAIL_AT("%s: forward failed: %s", oc->name, ml_ctx_error(fx.ctx));
        goto done;
    }
    fx.r_numel = y->numel;
    fx.r = malloc((size_t)y->numel * sizeof(float));
    fill(fx.r, y->numel, I_NORMAL);

    /* ---- first order, element by element ---- */
    if (analytic_grad(oc, &fx, g)) {
        ML_FAIL_AT("%s: ml_grad failed: %s", oc->name, ml_ctx_error(fx.ctx));
        goto done;
    }
    /* Central differences: O(eps^2) truncation, float noise ~1e-6/eps. A point
     * within a step of a kink (ReLU, max-pool ties inside a network) shows up
     * as disagreement between steps eps and eps/2 and is skipped; more than a
     * tenth of the elements skipped fails the case. */
    const float eps = 1e-2f;
    int64_t total = 0, skipped = 0, kinked = 0, total_elements = 0;
    for (int i = 0; i < oc->n_in; i++) total_elements += fx.numel[i];
    double worst = 0;
    for (int i = 0; i < oc->n_in; i++)
        for (int64_t j = 0; j < fx.numel[i]; j++) {
            float keep = fx.x[i][j];
            double fd = 0, fd_half = 0;
            for (int half = 0; half < 2; half++) {
                float e = half ? eps / 2 : eps;
                fx.x[i][j] = keep + e;
                double lp = eval_loss(oc, &fx);
                fx.x[i][j] = keep - e;
                double lm = eval_loss(oc, &fx);
                fx.x[i][j] = keep;
                /* Divide by the step as actually represented in float. */
                double d = (lp - lm) / ((double)(keep + e) - (double)(keep - e));
                if (half) fd_half = d; else fd = d;
            }
            total++;
            if (fabs(fd - fd_half) > 5e-3 * (1e-2 + fabs(fd))) {
                skipped++;
                continue;
            }
            double err = fabs(fd - g[i][j]) / (1e-2 + fabs(fd));
            if (err > worst) worst = err;
            if (!(err < 1e-2)) {
                /* In a ReLU/max-pool network a kink can sit so close to the point
                 * that both steps straddle it alike; such rows (second_order 0)
                 * may have up to 2% of elements off, each printed. A wrong rule
                 * puts most elements off. */
                if (!oc->second_order && ++kinked * 50 <= total_elements) {
                    printf("    %s: dL/dx%d[%lld] analytic %.6g vs finite difference %.6g (tolerated, kink?)\n",
                           oc->name, i, (long long)j, g[i][j], fd);
                    continue;
                }
                ML_FAIL_AT("%s: dL/dx%d[%lld] analytic %.6g vs finite difference %.6g", oc->name, i,
                           (long long)j, g[i][j], fd);
                goto done;
            }
        }

    if (skipped * 10 > total) {
        ML_FAIL_AT("%s: %lld of %lld elements near kinks, the check says nothing", oc->name, (long long)skipped,
                   (long long)total);
        goto done;
    }

    if (!oc->second_order) goto done;

    /* ---- second order: Hessian-vector product ---- */
    ml_ctx_reset(fx.ctx);
    ml_tensor *gin[MAX_IN], *gout[MAX_IN], *hv[MAX_IN];
    ml_tensor *L = build_loss(oc, &fx, gin);
    if (ml_grad(fx.ctx, L, gin, oc->n_in, 1, gout) != ML_OK) {
        ML_FAIL_AT("%s: create_graph grad failed: %s", oc->name, ml_ctx_error(fx.ctx));
        goto done;
    }
    ml_tensor *dot = NULL;
    for (int i = 0; i < oc->n_in; i++) {
        ml_tensor *vt = ml_tensor_wrap(fx.ctx, v[i], oc->ndim[i], oc->shape[i]);
        ml_tensor *d = ml_sum_all(fx.ctx, ml_mul(fx.ctx, gout[i], vt));
        dot = dot ? ml_add(fx.ctx, dot, d) : d;
    }
    if (ml_grad(fx.ctx, dot, gin, oc->n_in, 0, hv) != ML_OK) {
        ML_FAIL_AT("%s: double backward failed: %s", oc->name, ml_ctx_error(fx.ctx));
        goto done;
    }
    float *hvv[MAX_IN];
    for (int i = 0; i < oc->n_in; i++) {
        hvv[i] = malloc((size_t)fx.numel[i] * sizeof(float));
        memcpy(hvv[i], hv[i]->data, (size_t)fx.numel[i] * sizeof(float));
    }
    /* Differences of the gradient along v at steps e2 and e2/2; elements where
     * the two disagree sit near a kink and are skipped (at most a tenth). */
    const float e2 = 1e-2f;
    float *keep[MAX_IN];
    double *fd2[2][MAX_IN];
    int ok = 1;
    for (int i = 0; i < oc->n_in; i++) {
        keep[i] = malloc((size_t)fx.numel[i] * sizeof(float));
        memcpy(keep[i], fx.x[i], (size_t)fx.numel[i] * sizeof(float));
        fd2[0][i] = malloc((size_t)fx.numel[i] * sizeof(double));
        fd2[1][i] = malloc((size_t)fx.numel[i] * sizeof(double));
    }
    for (int h = 0; h < 2 && ok; h++) {
        float e = h ? e2 / 2 : e2;
        for (int i = 0; i < oc->n_in; i++)
            for (int64_t j = 0; j < fx.numel[i]; j++) fx.x[i][j] = keep[i][j] + e * v[i][j];
        ok = analytic_grad(oc, &fx, gp) == 0;
        for (int i = 0; i < oc->n_in; i++)
            for (int64_t j = 0; j < fx.numel[i]; j++) fx.x[i][j] = keep[i][j] - e * v[i][j];
        ok = ok && analytic_grad(oc, &fx, gm) == 0;
        for (int i = 0; i < oc->n_in; i++)
            for (int64_t j = 0; j < fx.numel[i]; j++) fd2[h][i][j] = ((double)gp[i][j] - gm[i][j]) / (2.0 * e);
    }
    for (int i = 0; i < oc->n_in; i++) memcpy(fx.x[i], keep[i], (size_t)fx.numel[i] * sizeof(float));
    double scale = 0;
    for (int i = 0; ok && i < oc->n_in; i++)
        for (int64_t j = 0; j < fx.numel[i]; j++) scale = fmax(scale, fabs(fd2[0][i][j]));
    int64_t total2 = 0, skipped2 = 0;
    for (int i = 0; ok && i < oc->n_in; i++)
        for (int64_t j = 0; j < fx.numel[i]; j++) {
            double fd = fd2[0][i][j], floor = 1e-2 + 1e-2 * scale;
            total2++;
            if (fabs(fd - fd2[1][i][j]) > 1e-2 * (floor + fabs(fd))) {
                skipped2++;
                continue;
            }
            double err = fabs(fd - hvv[i][j]) / (floor + fabs(fd));
            if (!(err < 2e-2)) {
                ML_FAIL_AT("%s: (Hv)_%d[%lld] double backward %.6g vs finite difference %.6g", oc->name, i,
                           (long long)j, hvv[i][j], fd);
                ok = 0;
                break;
            }
        }
    if (ok && skipped2 * 10 > total2)
        ML_FAIL_AT("%s: %lld of %lld Hessian-vector elements near kinks", oc->name, (long long)skipped2,
                   (long long)total2);
    for (int i = 0; i < oc->n_in; i++) {
        free(fd2[0][i]);
        free(fd2[1][i]);
    }
    if (!ok && !ml_test_cur_failed) ML_FAIL_AT("%s: gradient at shifted point failed", oc->name);
    for (int i = 0; i < oc->n_in; i++) {
        free(hvv[i]);
        free(keep[i]);
    }
done:
    for (int i = 0; i < oc->n_in; i++) {
        free(fx.x[i]);
        free(g[i]);
        free(gp[i]);
        free(gm[i]);
        free(v[i]);
    }
    free(fx.r);
    ml_ctx_destroy(fx.ctx);
}

static void test_every_op_first_and_second_order(void) {
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int before = ml_test_cur_failed;
        ml_test_cur_failed = 0;
        check_case(&cases[k]);
        printf("  %-26s %s\n", cases[k].name, ml_test_cur_failed ? "FAIL" : "ok");
        ml_test_cur_failed |= before;
    }
}

/* The naive twin of bn_grad: the composite it replaces in batch norm's
 * create_graph rule, inv * (h - mean(h) - xhat * mean(h * xhat)), h = gamma g1,
 * on a block-sized tensor with uneven channels (values and forward only). */
static void test_bn_grad_naive_twin(void) {
    ml_ctx *ctx = ml_ctx_create(1 << 20);
    ml_rng r;
    ml_rng_seed(&r, 7);
    const int64_t shape[4] = {5, 3, 6, 7}, n = 5 * 3 * 6 * 7;
    ml_tensor *a = ml_tensor_new(ctx, 4, shape), *g1 = ml_tensor_new(ctx, 4, shape);
    ml_tensor *gamma = ml_tensor_new(ctx, 1, ML_SHAPE(3));
    for (int64_t i = 0; i < n; i++) {
        a->data[i] = (float)(ml_rng_normal(&r) * (1 + i % 3) + (i % 3 == 2 ? 40 : 0)); /* a large mean too */
        g1->data[i] = (float)ml_rng_normal(&r);
    }
    gamma->data[0] = 0.7f, gamma->data[1] = -1.3f, gamma->data[2] = 2.1f;
    ml_tensor *y = ml__bn_grad(ctx, a, g1, gamma, 1e-5f);
    ml_tensor *h = ml_mul(ctx, g1, ml_reshape(ctx, gamma, 4, ML_SHAPE(1, 3, 1, 1)));
    ml_tensor *xhat = ml_batchnorm(ctx, a, NULL, NULL, NULL, NULL, 1, 0.1f, 1e-5f);
    ml_tensor *var = ml_mean(ctx, ml_square(ctx, ml_sub(ctx, a, ml_mean(ctx, a, 0xd, 1))), 0xd, 1);
    ml_tensor *inv = ml_rsqrt(ctx, ml_add_scalar(ctx, var, 1e-5f));
    ml_tensor *ref = ml_mul(ctx, inv, ml_sub(ctx, ml_sub(ctx, h, ml_mean(ctx, h, 0xd, 1)),
                                             ml_mul(ctx, xhat, ml_mean(ctx, ml_mul(ctx, h, xhat), 0xd, 1))));
    CHECK(ml_ctx_status(ctx) == ML_OK);
    double md = 0, mr = 0;
    for (int64_t i = 0; i < n; i++) {
        md = fmax(md, fabs((double)y->data[i] - ref->data[i]));
        mr = fmax(mr, fabs((double)ref->data[i]));
    }
    if (!(md <= 1e-5 * mr)) ML_FAIL_AT("bn_grad vs composite: max diff %.3g (scale %.3g)", md, mr);
    ml_ctx_destroy(ctx);
}

/* Every op of the table appears in some row above (through the functions). */
static void test_table_covers_every_op(void) {
    /* Record the whole table once and collect the op of every node. */
    ml_ctx *ctx = ml_ctx_create(1 << 20);
    int seen[64] = {0};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const op_case *oc = &cases[k];
        ml_ctx_reset(ctx);
        float *buf[MAX_IN];
        ml_tensor *in[MAX_IN], *out[MAX_IN], *out2[MAX_IN];
        for (int i = 0; i < oc->n_in; i++) {
            int64_t n = 1;
            for (int d = 0; d < oc->ndim[i]; d++) n *= oc->shape[i][d];
            buf[i] = malloc((size_t)n * sizeof(float));
            fill(buf[i], n, oc->init[i]);
            in[i] = ml_tensor_wrap(ctx, buf[i], oc->ndim[i], oc->shape[i]);
        }
        ml_tensor *y = ml_sum_all(ctx, oc->f(ctx, in));
        ml_grad(ctx, y, in, oc->n_in, 1, out);
        ml_tensor *s = NULL;
        for (int i = 0; i < oc->n_in; i++) {
            ml_tensor *d = ml_sum_all(ctx, ml_square(ctx, out[i]));
            s = s ? ml_add(ctx, s, d) : d;
        }
        ml_grad(ctx, s, in, oc->n_in, 1, out2);
        CHECK(ml_ctx_status(ctx) == ML_OK);
        extern int ml__tape_ops(ml_ctx * ctx, int *seen, int n);
        ml__tape_ops(ctx, seen, 64);
        for (int i = 0; i < oc->n_in; i++) free(buf[i]);
    }
    for (int op = 0; op < ml_op_count(); op++)
        if (!seen[op]) ML_FAIL_AT("op %s never recorded by the grad table", ml_op_name(op));
    ml_ctx_destroy(ctx);
}

/* Consume mode (ml_ctx_set_consume): the same gradients bit for bit, with the
 * fused batch norm's dx written over the convolution output it alone reads
 * and dead gradient buffers reused (8x8x32x32 activations: above
 * ML_RECYCLE_MIN), so the walk ends with less arena in use; a conv output
 * something else also reads, and create_graph, keep theirs. */
static size_t run_blocks(int consume, int create_graph, int pool, const float *xin, const float *win, float *grads,
                         float *conv_after, float *shared_after) {
    ml_ctx *ctx = ml_ctx_create(1 << 20);
    ml_ctx_set_consume(ctx, consume);
    float w1[8 * 2 * 9], w2[8 * 8 * 9], gam[16], bet[16];
    memcpy(w1, win, sizeof w1);
    memcpy(w2, win + 144, sizeof w2);
    for (int i = 0; i < 16; i++) gam[i] = 0.5f + 0.05f * (float)i, bet[i] = 0.01f * (float)(i - 8);
    ml_tensor *p[6] = {ml_tensor_wrap(ctx, w1, 4, ML_SHAPE(8, 2, 3, 3)), ml_tensor_wrap(ctx, gam, 1, ML_SHAPE(8)),
                       ml_tensor_wrap(ctx, bet, 1, ML_SHAPE(8)), ml_tensor_wrap(ctx, w2, 4, ML_SHAPE(8, 8, 3, 3)),
                       ml_tensor_wrap(ctx, gam + 8, 1, ML_SHAPE(8)), ml_tensor_wrap(ctx, bet + 8, 1, ML_SHAPE(8))};
    ml_tensor *x = ml_tensor_wrap(ctx, (float *)xin, 4, ML_SHAPE(8, 2, 32, 32));
    ml_tensor *c1 = ml_conv2d(ctx, x, p[0], 1, 1);
    ml_tensor *h = pool ? ml_batchnorm_relu_maxpool(ctx, c1, p[1], p[2], NULL, NULL, 1, 0.1f, 1e-5f)
                        : ml_batchnorm_relu(ctx, c1, p[1], p[2], NULL, NULL, 1, 0.1f, 1e-5f);
    ml_tensor *c2 = ml_conv2d(ctx, h, p[3], 1, 1);
    ml_tensor *h2 = ml_batchnorm_relu(ctx, c2, p[4], p[5], NULL, NULL, 1, 0.1f, 1e-5f);
    /* c2 is read twice (the block and the loss): it must survive. */
    ml_tensor *loss = ml_add(ctx, ml_sum_all(ctx, ml_square(ctx, h2)), ml_sum_all(ctx, ml_mul(ctx, c2, c2)));
    ml_tensor *g[6];
    CHECK(ml_grad(ctx, loss, p, 6, create_graph, g) == ML_OK);
    int64_t off = 0;
    for (int i = 0; i < 6; i++) {
        memcpy(grads + off, g[i]->data, (size_t)g[i]->numel * sizeof(float));
        off += g[i]->numel;
    }
    memcpy(conv_after, c1->data, (size_t)c1->numel * sizeof(float));
    memcpy(shared_after, c2->data, (size_t)c2->numel * sizeof(float));
    size_t used = ml_arena_used(ml_ctx_arena(ctx));
    ml_ctx_destroy(ctx);
    return used;
}

static void test_consume_mode_same_gradients(void) {
    enum { NG = 144 + 8 + 8 + 576 + 8 + 8, NC = 8 * 8 * 32 * 32 };
    static float x[8 * 2 * 32 * 32], w[144 + 576], g0[NG], g1[NG], c0[NC], c1[NC], s0[NC], s1[NC];
    fill(x, 8 * 2 * 32 * 32, I_NORMAL);
    fill(w, 144 + 576, I_NORMAL);
    for (int pool = 0; pool <= 1; pool++) {
        int ns = pool ? NC / 4 : NC; /* c2's size: after the pool the second block sees 4x4 */
        size_t used_off = run_blocks(0, 0, pool, x, w, g0, c0, s0);
        size_t used_on = run_blocks(1, 0, pool, x, w, g1, c1, s1);
        CHECK(memcmp(g0, g1, sizeof g0) == 0);
        CHECK(used_on + (size_t)NC * sizeof(float) < used_off); /* more than the dx over c1 alone */
        printf("  pool %d: arena after the walk %zu -> %zu bytes\n", pool, used_off, used_on);
        CHECK(memcmp(c0, c1, sizeof c0) != 0);                       /* c1 held dx: the consume path ran */
        CHECK(memcmp(s0, s1, (size_t)ns * sizeof(float)) == 0);      /* c2 has two readers: kept */
        run_blocks(1, 1, pool, x, w, g1, c1, s1);                    /* create_graph: nothing consumed */
        CHECK(memcmp(c0, c1, sizeof c0) == 0);
    }
}

/* MAML's meta-gradient in two walks (meta/maml.c): the query loss's gradient
 * at the adapted weights first, the query pass rewound, then that gradient
 * seeded at the adapted weights (ml_grad_seeds) through the recorded inner
 * step. The same bits as one walk from the query loss, with consume mode on
 * (as the meta-learning workers run). A conv + fused batch norm + pool block
 * and a linear head, one inner step with create_graph. */
static ml_tensor *block_loss(ml_ctx *ctx, ml_tensor **p, ml_tensor *x, const int32_t *labels) {
    ml_tensor *h = ml_batchnorm_relu_maxpool(ctx, ml_conv2d(ctx, x, p[0], 1, 1), p[1], p[2], NULL, NULL, 1, 0.1f,
                                             1e-5f);
    return ml_cross_entropy(ctx, ml_linear(ctx, ml_flatten(ctx, h), p[3], p[4]), labels);
}

static void maml_meta_gradient(int split, const float *xs, const float *xq, const float *win, float *out) {
    ml_ctx *ctx = ml_ctx_create(1 << 20);
    ml_ctx_set_consume(ctx, 1);
    static float w[4 * 2 * 9], gam[4], bet[4], lw[3 * 64], lb[3];
    memcpy(w, win, sizeof w);
    memcpy(lw, win + 72, sizeof lw);
    for (int i = 0; i < 4; i++) gam[i] = 0.8f + 0.1f * (float)i, bet[i] = 0.02f * (float)(i - 2);
    for (int i = 0; i < 3; i++) lb[i] = 0.1f * (float)i;
    ml_tensor *theta[5] = {ml_tensor_wrap(ctx, w, 4, ML_SHAPE(4, 2, 3, 3)), ml_tensor_wrap(ctx, gam, 1, ML_SHAPE(4)),
                           ml_tensor_wrap(ctx, bet, 1, ML_SHAPE(4)), ml_tensor_wrap(ctx, lw, 2, ML_SHAPE(3, 64)),
                           ml_tensor_wrap(ctx, lb, 1, ML_SHAPE(3))};
    static const int32_t ls[6] = {0, 1, 2, 0, 1, 2}, lq[9] = {2, 1, 0, 0, 1, 2, 1, 1, 0};
    ml_tensor *g[5], *fast[5], *meta[5];
    ml_tensor *support = ml_tensor_wrap(ctx, (float *)xs, 4, ML_SHAPE(6, 2, 8, 8));
    CHECK(ml_grad(ctx, block_loss(ctx, theta, support, ls), theta, 5, 1, g) == ML_OK);
    for (int i = 0; i < 5; i++) fast[i] = ml_sub(ctx, theta[i], ml_scale(ctx, g[i], 0.4f));
    ml_tensor *query = ml_tensor_wrap(ctx, (float *)xq, 4, ML_SHAPE(9, 2, 8, 8));
    if (!split) {
        CHECK(ml_grad(ctx, block_loss(ctx, fast, query, lq), theta, 5, 0, meta) == ML_OK);
    } else {
        ml_tensor *seed[5], *gq[5];
        for (int i = 0; i < 5; i++) seed[i] = ml_tensor_new(ctx, fast[i]->ndim, fast[i]->shape);
        ml_ctx_mark mark = ml_ctx_get_mark(ctx);
        CHECK(ml_grad(ctx, block_loss(ctx, fast, query, lq), fast, 5, 0, gq) == ML_OK);
        for (int i = 0; i < 5; i++) memcpy(seed[i]->data, gq[i]->data, (size_t)gq[i]->numel * sizeof(float));
        ml_ctx_rewind(ctx, mark);
        CHECK(ml_grad_seeds(ctx, fast, seed, 5, theta, 5, 0, meta) == ML_OK);
    }
    for (int i = 0, off = 0; i < 5; off += (int)meta[i]->numel, i++)
        memcpy(out + off, meta[i]->data, (size_t)meta[i]->numel * sizeof(float));
    ml_ctx_destroy(ctx);
}

static void test_grad_seeds_split_meta_gradient(void) {
    enum { N = 72 + 4 + 4 + 192 + 3 };
    static float xs[6 * 2 * 64], xq[9 * 2 * 64], w[72 + 192], one[N], two[N];
    fill(xs, 6 * 2 * 64, I_NORMAL);
    fill(xq, 9 * 2 * 64, I_NORMAL);
    fill(w, 72 + 192, I_NORMAL);
    maml_meta_gradient(0, xs, xq, w, one);
    maml_meta_gradient(1, xs, xq, w, two);
    CHECK(memcmp(one, two, sizeof one) == 0);
    float mx = 0.0f;
    for (int i = 0; i < N; i++) mx = fabsf(one[i]) > mx ? fabsf(one[i]) : mx;
    CHECK(mx > 0.0f); /* a real gradient, not zeros on both sides */
    /* Misuse: one output seeded twice, or a seed of another shape. */
    ml_ctx *ctx = ml_ctx_create(1 << 16);
    ml_tensor *a = ml_new(ctx, 2), *b = ml_new(ctx, 3), *y[2] = {a, a}, *d[2] = {a, a}, *o[1];
    CHECK(ml_grad_seeds(ctx, y, d, 2, &a, 1, 0, o) == ML_ERR_ARG);
    ml_ctx_destroy(ctx);
    ctx = ml_ctx_create(1 << 16);
    a = ml_new(ctx, 2), b = ml_new(ctx, 3);
    CHECK(ml_grad_seeds(ctx, &a, &b, 1, &a, 1, 0, o) == ML_ERR_SHAPE);
    ml_ctx_destroy(ctx);
}

int main(void) {
    ml_rng_seed(&rng, 1234);
    ML_RUN(test_every_op_first_and_second_order);
    ML_RUN(test_bn_grad_naive_twin);
    ML_RUN(test_table_covers_every_op);
    ML_RUN(test_consume_mode_same_gradients);
    ML_RUN(test_grad_seeds_split_meta_gradient);
    return ml_test_summary();
}
