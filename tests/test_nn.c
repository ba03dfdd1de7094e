/* test_nn.c: model specs, the flat parameter buffer and its named views,
 * seeded initialisation, forward passes with stored and with fast weights. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metalearn/nn.h"
#include "ml_test.h"

static void make(ml_model *m, const char *text, int c, int h, int w, int out) {
    ml_model_spec spec;
    char err[128];
    CHECK(ml_model_spec_parse(text, &spec, err, sizeof err) == ML_OK);
    spec.in_c = c;
    spec.in_h = h;
    spec.in_w = w;
    spec.n_out = out;
    CHECK(ml_model_init(m, &spec, err, sizeof err) == ML_OK);
}

static void test_cnn4_names_shapes_and_layout(void) {
    ml_model m;
    make(&m, "cnn4", 1, 28, 28, 5);
    CHECK_INT_EQ(m.n_params, 18);
    CHECK_INT_EQ(m.n_buffers, 8);
    int w0 = ml_model_find_param(&m, "blocks.0.conv.weight"), head = ml_model_find_param(&m, "head.weight");
    CHECK(w0 == 0 && head == 16);
    CHECK_INT_EQ(m.params[w0].shape[0], 64);
    CHECK_INT_EQ(m.params[w0].shape[1], 1);
    CHECK_INT_EQ(m.params[head].shape[1], 64); /* 28 -> 14 -> 7 -> 3 -> 1 */
    /* Views tile the flat buffer without gaps, in order. */
    int64_t off = 0;
    for (int i = 0; i < m.n_params; i++) {
        CHECK_INT_EQ(m.params[i].offset, off);
        off += m.params[i].numel;
    }
    CHECK_INT_EQ(off, m.n_floats);
    CHECK_INT_EQ(m.n_floats, 64 * 9 + 64 * 3 + 3 * (64 * 64 * 9 + 64 * 3) + 5 * 64 + 5);
    ml_model_free(&m);
    char err[128];
    ml_model_spec spec;
    CHECK(ml_model_spec_parse("resnet", &spec, err, sizeof err) == ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "unknown");
    CHECK(ml_model_spec_parse("mlp:10,x", &spec, err, sizeof err) == ML_ERR_ARG);
    make(&m, "mlp:40,40", 1, 1, 1, 1);
    CHECK_INT_EQ(m.n_floats, 40 + 40 + 40 * 40 + 40 + 40 + 1);
    ml_model_free(&m);
}

static double stddev(const float *v, int64_t n) {
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++) {
        s += v[i];
        s2 += (double)v[i] * v[i];
    }
    return sqrt(s2 / n - (s / n) * (s / n));
}

static void test_initialisation_statistics(void) {
    ml_model m;
    make(&m, "cnn4", 1, 28, 28, 5);
    ml_rng r;
    const ml_param_info *w = &m.params[4]; /* blocks.1.conv.weight [64, 64, 3, 3], fan_in 576 */
    ml_rng_seed(&r, 1);
    ml_model_init_params(&m, ML_INIT_KAIMING, &r);
    CHECK_NEAR(stddev(m.data + w->offset, w->numel), sqrt(2.0 / 576), 0, 0.03);
    CHECK(m.data[m.params[5].offset] == 0.f); /* bias */
    CHECK(m.data[m.params[6].offset] == 1.f); /* bn weight */
    ml_rng_seed(&r, 1);
    ml_model_init_params(&m, ML_INIT_XAVIER, &r);
    double bound = sqrt(6.0 / (576 + 576)), mx = 0;
    for (int64_t i = 0; i < w->numel; i++) mx = fmax(mx, fabs(m.data[w->offset + i]));
    CHECK(mx <= bound && mx > 0.95 * bound);
    ml_rng_seed(&r, 1);
    ml_model_init_params(&m, ML_INIT_TORCH, &r);
    mx = 0;
    for (int64_t i = 0; i < w->numel; i++) mx = fmax(mx, fabs(m.data[w->offset + i]));
    CHECK(mx <= 1 / sqrt(576.0) && mx > 0.95 / sqrt(576.0));
    CHECK_NEAR(stddev(m.data + w->offset, w->numel), 1 / sqrt(576.0) / sqrt(3.0), 0, 0.03);
    /* Same seed, same parameters. */
    float first = m.data[123];
    ml_rng_seed(&r, 1);
    ml_model_init_params(&m, ML_INIT_TORCH, &r);
    CHECK(m.data[123] == first);
    ml_model_free(&m);
}

static void test_mlp_forward_matches_hand_computation(void) {
    ml_model m;
    make(&m, "mlp:3", 1, 1, 2, 2);
    ml_rng r;
    ml_rng_seed(&r, 4);
    ml_model_init_params(&m, ML_INIT_TORCH, &r);
    float x[2] = {0.7f, -1.3f};
    ml_ctx *ctx = ml_ctx_create(0);
    ml_tensor *p[ML_MAX_PARAMS];
    ml_model_wrap(ctx, &m, m.data, p);
    ml_tensor *y = ml_model_forward(ctx, &m, p, ml_tensor_wrap(ctx, x, 2, ML_SHAPE(1, 2)), 1, 0);
    const float *w1 = m.data, *b1 = w1 + 6, *w2 = b1 + 3, *b2 = w2 + 6;
    for (int o = 0; o < 2; o++) {
        double acc = b2[o];
        for (int h = 0; h < 3; h++) {
            double a = b1[h] + w1[h * 2] * x[0] + w1[h * 2 + 1] * x[1];
            acc += w2[o * 3 + h] * (a > 0 ? a : 0);
        }
        CHECK_NEAR(y->data[o], acc, 1e-6, 1e-5);
    }
    ml_ctx_destroy(ctx);
    ml_model_free(&m);
}

static void test_fast_weights_and_running_statistics(void) {
    ml_model m;
    make(&m, "cnn4:8", 1, 16, 16, 3);
    ml_rng r;
    ml_rng_seed(&r, 9);
    ml_model_init_params(&m, ML_INIT_TORCH, &r);
    float x[4 * 256];
    for (int i = 0; i < 4 * 256; i++) x[i] = (float)ml_rng_uniform(&r);
    float *copy = malloc((size_t)m.n_floats * sizeof(float));
    memcpy(copy, m.data, (size_t)m.n_floats * sizeof(float));
    ml_ctx *ctx = ml_ctx_create(0);
    ml_tensor *p[ML_MAX_PARAMS], *q[ML_MAX_PARAMS];
    ml_tensor *xt = ml_tensor_wrap(ctx, x, 4, ML_SHAPE(4, 1, 16, 16));
    ml_model_wrap(ctx, &m, m.data, p);
    ml_model_wrap(ctx, &m, copy, q);
    ml_tensor *a = ml_model_forward(ctx, &m, p, xt, 1, 0), *b = ml_model_forward(ctx, &m, q, xt, 1, 0);
    CHECK(memcmp(a->data, b->data, (size_t)a->numel * sizeof(float)) == 0);
    copy[m.params[m.n_params - 1].offset] += 1.0f; /* head bias of class 0 */
    ml_tensor *c = ml_model_forward(ctx, &m, q, xt, 1, 0);
    CHECK_NEAR(c->data[0] - a->data[0], 1.0, 1e-5, 0);
    CHECK_NEAR(c->data[1], a->data[1], 0, 0);
    /* Training with update_stats moves the running statistics; without, not. */
    float rm0 = m.buffer_data[0];
    ml_model_forward(ctx, &m, p, xt, 1, 0);
    CHECK(m.buffer_data[0] == rm0);
    ml_model_forward(ctx, &m, p, xt, 1, 1);
    CHECK(m.buffer_data[0] != rm0);
    ml_tensor *e = ml_model_forward(ctx, &m, p, xt, 0, 0); /* evaluation mode runs */
    CHECK(e != NULL && e->shape[1] == 3);
    ml_tensor *bad = ml_model_forward(ctx, &m, p, ml_tensor_wrap(ctx, x, 4, ML_SHAPE(2, 1, 16, 15)), 1, 0);
    CHECK(bad == NULL);
    CHECK_STR_CONTAINS(ml_ctx_error(ctx), "1x16x16");
    ml_ctx_destroy(ctx);
    free(copy);
    ml_model_free(&m);
}

/* The conv block in training mode (fused batch norm + ReLU, the conv bias left
 * out because batch statistics cancel it) against the ops it replaces: bias
 * add, batch norm, ReLU, pool. Same output, same running statistics, and
 * the same gradients for x, w, gamma and beta; the bias gradient is zero. */
static void test_conv_block_matches_unfused_ops(void) {
    enum { N = 3, C = 2, H = 6, W = 7, O = 4 };
    ml_rng rng;
    ml_rng_seed(&rng, 7);
    float xd[N * C * H * W], wd[O * C * 9], bd[O], gd[O], betad[O];
    for (size_t i = 0; i < sizeof xd / sizeof *xd; i++) xd[i] = (float)ml_rng_normal(&rng);
    for (size_t i = 0; i < sizeof wd / sizeof *wd; i++) wd[i] = (float)ml_rng_normal(&rng) * 0.3f;
    for (int i = 0; i < O; i++) {
        bd[i] = (float)ml_rng_normal(&rng);
        gd[i] = (i == 1 ? -1.0f : 1.0f) * (1.0f + 0.2f * (float)ml_rng_normal(&rng)); /* one negative: the pool on z */
        betad[i] = 0.1f * (float)ml_rng_normal(&rng);
    }
    float rm[2][O], rv[2][O];
    float *grads[2][5];
    float out[2][N * O * (H / 2) * (W / 2)];
    for (int path = 0; path < 2; path++) {
        for (int i = 0; i < O; i++) rm[path][i] = 0.5f, rv[path][i] = 2.0f;
        ml_ctx *ctx = ml_ctx_create(1 << 20);
        ml_tensor *in[5] = {ml_tensor_wrap(ctx, xd, 4, ML_SHAPE(N, C, H, W)),
                            ml_tensor_wrap(ctx, wd, 4, ML_SHAPE(O, C, 3, 3)), ml_tensor_wrap(ctx, bd, 1, ML_SHAPE(O)),
                            ml_tensor_wrap(ctx, gd, 1, ML_SHAPE(O)), ml_tensor_wrap(ctx, betad, 1, ML_SHAPE(O))};
        ml_tensor *y;
        if (path == 0) {
            y = ml_conv_block(ctx, in[0], in[1], in[2], in[3], in[4], rm[0], rv[0], 1, 0.1f, 1e-5f);
        } else {
            ml_tensor *h = ml_bias_add(ctx, ml_conv2d(ctx, in[0], in[1], 1, 1), in[2]);
            h = ml_batchnorm(ctx, h, in[3], in[4], rm[1], rv[1], 1, 0.1f, 1e-5f);
            y = ml_maxpool2x2(ctx, ml_relu(ctx, h));
        }
        CHECK(y && y->numel == (int64_t)(sizeof out[0] / sizeof(float)));
        memcpy(out[path], y->data, sizeof out[0]);
        /* A loss that weighs outputs unevenly, so no gradient vanishes by symmetry. */
        ml_tensor *r = ml_tensor_new(ctx, y->ndim, y->shape);
        for (int64_t i = 0; i < r->numel; i++) r->data[i] = (float)((i * 7) % 11) - 5.0f;
        ml_tensor *loss = ml_sum_all(ctx, ml_mul(ctx, y, r)), *g[5];
        CHECK(ml_grad(ctx, loss, in, 5, 0, g) == ML_OK);
        for (int k = 0; k < 5; k++) {
            grads[path][k] = malloc((size_t)g[k]->numel * sizeof(float));
            memcpy(grads[path][k], g[k]->data, (size_t)g[k]->numel * sizeof(float));
        }
        ml_ctx_destroy(ctx);
    }
    for (size_t i = 0; i < sizeof out[0] / sizeof(float); i++) CHECK_NEAR(out[0][i], out[1][i], 1e-5, 1e-5);
    for (int i = 0; i < O; i++) {
        CHECK_NEAR(rm[0][i], rm[1][i], 1e-6, 1e-5);
        CHECK_NEAR(rv[0][i], rv[1][i], 1e-5, 1e-5);
        CHECK(grads[0][2][i] == 0.0f);           /* the bias: exactly zero */
        CHECK_NEAR(grads[1][2][i], 0.0, 1e-4, 0);   /* unfused: zero up to rounding */
    }
    const int64_t sizes[5] = {N * C * H * W, O * C * 9, O, O, O};
    for (int k = 0; k < 5; k++) {
        if (k == 2) continue;
        for (int64_t i = 0; i < sizes[k]; i++) CHECK_NEAR(grads[0][k][i], grads[1][k][i], 1e-4, 1e-4);
    }
    for (int p = 0; p < 2; p++)
        for (int k = 0; k < 5; k++) free(grads[p][k]);
}

int main(void) {
    ML_RUN(test_cnn4_names_shapes_and_layout);
    ML_RUN(test_initialisation_statistics);
    ML_RUN(test_mlp_forward_matches_hand_computation);
    ML_RUN(test_fast_weights_and_running_statistics);
    ML_RUN(test_conv_block_matches_unfused_ops);
    return ml_test_summary();
}
