/* test_kernels.c: the optimised forward kernels against naive twins written
 * here, on odd shapes: broadcasting elementwise ops (merged dims), sums over
 * axes, the vectorised max-pool (values and indices, ties and NaN), batch-norm
 * normalisation and its fused backward against the composite one, and results
 * independent of the OpenMP thread count. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "metalearn/nn.h"
#include "metalearn/tensor.h"
#include "ml_test.h"

static ml_rng rng;

static ml_tensor *random_tensor(ml_ctx *ctx, int ndim, const int64_t *shape) {
    ml_tensor *t = ml_tensor_new(ctx, ndim, shape);
    for (int64_t i = 0; i < t->numel; i++) t->data[i] = (float)ml_rng_normal(&rng);
    return t;
}

/* Naive broadcast: index each operand through 4-D strides. */
static void naive_binary(int op, const ml_tensor *a, const ml_tensor *b, float *out, int64_t o[4]) {
    int64_t as[4], bs[4];
    for (int i = 0; i < 4; i++) {
        as[i] = i < 4 - a->ndim ? 1 : a->shape[i - (4 - a->ndim)];
        bs[i] = i < 4 - b->ndim ? 1 : b->shape[i - (4 - b->ndim)];
        o[i] = as[i] > bs[i] ? as[i] : bs[i];
    }
    int64_t k = 0;
    for (int64_t i0 = 0; i0 < o[0]; i0++)
        for (int64_t i1 = 0; i1 < o[1]; i1++)
            for (int64_t i2 = 0; i2 < o[2]; i2++)
                for (int64_t i3 = 0; i3 < o[3]; i3++) {
                    int64_t ia = (((as[0] > 1 ? i0 : 0) * as[1] + (as[1] > 1 ? i1 : 0)) * as[2] + (as[2] > 1 ? i2 : 0)) * as[3] + (as[3] > 1 ? i3 : 0);
                    int64_t ib = (((bs[0] > 1 ? i0 : 0) * bs[1] + (bs[1] > 1 ? i1 : 0)) * bs[2] + (bs[2] > 1 ? i2 : 0)) * bs[3] + (bs[3] > 1 ? i3 : 0);
                    float x = a->data[ia], y = b->data[ib];
                    out[k++] = op == 0 ? x + y : op == 1 ? x - y : op == 2 ? x * y : x / y;
                }
}

static void test_broadcast_binary_vs_naive(void) {
    static const int64_t shapes[][2][4] = {
        {{2, 3, 5, 7}, {1, 3, 1, 1}}, {{2, 3, 5, 7}, {2, 3, 5, 7}}, {{4, 1, 6}, {1, 5, 1}}, {{3, 7}, {7}},
        {{3, 7}, {3, 1}},             {{1}, {2, 2, 3}},              {{5, 1, 1, 3}, {1, 4, 2, 1}}, {{64, 16, 9, 9}, {1, 16, 1, 1}},
    };
    static const int ndims[][2] = {{4, 4}, {4, 4}, {3, 3}, {2, 1}, {2, 2}, {1, 3}, {4, 4}, {4, 4}};
    ml_ctx *ctx = ml_ctx_create(0);
    ml_ctx_set_recording(ctx, 0);
    for (size_t c = 0; c < sizeof ndims / sizeof ndims[0]; c++)
        for (int op = 0; op < 4; op++)
            for (int swap = 0; swap < 2; swap++) {
                ml_tensor *a = random_tensor(ctx, ndims[c][swap], shapes[c][swap]);
                ml_tensor *b = random_tensor(ctx, ndims[c][!swap], shapes[c][!swap]);
                ml_tensor *y = op == 0 ? ml_add(ctx, a, b) : op == 1 ? ml_sub(ctx, a, b) : op == 2 ? ml_mul(ctx, a, b) : ml_div(ctx, a, b);
                int64_t o[4];
                float *want = malloc((size_t)y->numel * sizeof(float));
                naive_binary(op, a, b, want, o);
                CHECK_INT_EQ(y->numel, o[0] * o[1] * o[2] * o[3]);
                for (int64_t i = 0; i < y->numel; i++)
                    if (!(y->data[i] == want[i])) {
                        ML_FAIL_AT("case %zu op %d swap %d: element %lld is %g, naive %g", c, op, swap, (long long)i,
                                   y->data[i], want[i]);
                        break;
                    }
                free(want);
            }
    ml_ctx_destroy(ctx);
}

static void test_sum_vs_naive(void) {
    ml_ctx *ctx = ml_ctx_create(0);
    ml_ctx_set_recording(ctx, 0);
    ml_tensor *x = random_tensor(ctx, 4, ML_SHAPE(3, 5, 4, 7));
    for (unsigned mask = 1; mask < 16; mask++) {
        ml_tensor *s = ml_sum(ctx, x, mask, 1);
        int64_t d[4] = {3, 5, 4, 7}, k[4];
        for (int i = 0; i < 4; i++) k[i] = (mask >> i) & 1 ? 1 : d[i];
        double *want = calloc((size_t)(k[0] * k[1] * k[2] * k[3]), sizeof(double));
        for (int64_t i0 = 0; i0 < 3; i0++)
            for (int64_t i1 = 0; i1 < 5; i1++)
                for (int64_t i2 = 0; i2 < 4; i2++)
                    for (int64_t i3 = 0; i3 < 7; i3++) {
                        int64_t j0 = k[0] > 1 ? i0 : 0, j1 = k[1] > 1 ? i1 : 0, j2 = k[2] > 1 ? i2 : 0, j3 = k[3] > 1 ? i3 : 0;
                        want[((j0 * k[1] + j1) * k[2] + j2) * k[3] + j3] += x->data[((i0 * 5 + i1) * 4 + i2) * 7 + i3];
                    }
        for (int64_t i = 0; i < s->numel; i++) CHECK_NEAR(s->data[i], want[i], 1e-5, 1e-6);
        free(want);
    }
    ml_ctx_destroy(ctx);
}

/* Max-pool: values and, through the backward (scatter of the indices), the
 * position chosen: first maximum in (r0,c0), (r0,c1), (r1,c0), (r1,c1) order,
 * NaN wins and stays. Widths cover the vector path (>= 16 outputs per row)
 * and the scalar tail. */
static void test_maxpool_vs_naive(void) {
    static const int64_t shapes[][4] = {{2, 3, 5, 5}, {1, 2, 8, 40}, {3, 1, 33, 67}, {1, 1, 2, 2}, {2, 2, 7, 9}};
    ml_ctx *ctx = ml_ctx_create(0);
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
        ml_ctx_reset(ctx);
        ml_tensor *x = ml_tensor_new(ctx, 4, shapes[c]);
        for (int64_t i = 0; i < x->numel; i++) {
            double u = ml_rng_uniform(&rng);
            x->data[i] = u < 0.3 ? 1.0f : u < 0.33 ? NAN : (float)ml_rng_normal(&rng); /* many ties, some NaN */
        }
        ml_tensor *y = ml_maxpool2x2(ctx, x);
        ml_tensor *g;
        ml_tensor *r = random_tensor(ctx, 4, y->shape);
        CHECK(ml_grad(ctx, ml_sum_all(ctx, ml_mul(ctx, y, r)), &x, 1, 0, &g) == ML_OK);
        int64_t n = shapes[c][0] * shapes[c][1], h = shapes[c][2], w = shapes[c][3], oh = h / 2, ow = w / 2;
        float *want_g = calloc((size_t)x->numel, sizeof(float));
        int bad = 0;
        for (int64_t p = 0; p < n && !bad; p++)
            for (int64_t i = 0; i < oh && !bad; i++)
                for (int64_t j = 0; j < ow; j++) {
                    const float *img = x->data + p * h * w;
                    int64_t cand[4] = {2 * i * w + 2 * j, 2 * i * w + 2 * j + 1, (2 * i + 1) * w + 2 * j, (2 * i + 1) * w + 2 * j + 1};
                    int64_t best = cand[0];
                    for (int k = 1; k < 4; k++)
                        if (!isnan(img[best]) && (isnan(img[cand[k]]) || img[cand[k]] > img[best])) best = cand[k];
                    float got = y->data[(p * oh + i) * ow + j];
                    if (!(got == img[best] || (isnan(got) && isnan(img[best])))) {
                        ML_FAIL_AT("shape %zu: output (%lld,%lld,%lld) %g, naive %g", c, (long long)p, (long long)i,
                                   (long long)j, got, img[best]);
                        bad = 1;
                        break;
                    }
                    want_g[p * h * w + best] += r->data[(p * oh + i) * ow + j];
                }
        for (int64_t i = 0; i < x->numel && !bad; i++)
            if (g->data[i] != want_g[i]) {
                ML_FAIL_AT("shape %zu: gradient at %lld is %g, naive index gives %g", c, (long long)i, g->data[i], want_g[i]);
                bad = 1;
            }
        free(want_g);
    }
    ml_ctx_destroy(ctx);
}

/* Batch norm: the fused normalisation and its fused backward against plain
 * double arithmetic and against the composite backward recorded under
 * create_graph. */
static void test_normalize_fused_vs_composite(void) {
    ml_ctx *ctx = ml_ctx_create(0);
    ml_tensor *x = random_tensor(ctx, 4, ML_SHAPE(5, 3, 4, 6));
    ml_tensor *y = ml_batchnorm(ctx, x, NULL, NULL, NULL, NULL, 1, 0.1f, 1e-5f);
    for (int c = 0; c < 3; c++) {
        double s = 0, s2 = 0;
        for (int n = 0; n < 5; n++)
            for (int k = 0; k < 24; k++) s += x->data[(n * 3 + c) * 24 + k];
        double mean = s / 120;
        for (int n = 0; n < 5; n++)
            for (int k = 0; k < 24; k++) s2 += pow(x->data[(n * 3 + c) * 24 + k] - mean, 2);
        double inv = 1 / sqrt(s2 / 120 + 1e-5);
        for (int n = 0; n < 5; n++)
            for (int k = 0; k < 24; k++) {
                int64_t i = (n * 3 + c) * 24 + k;
                CHECK_NEAR(y->data[i], (x->data[i] - mean) * inv, 1e-5, 1e-5);
            }
    }
    ml_tensor *r = random_tensor(ctx, 4, y->shape);
    ml_tensor *loss = ml_sum_all(ctx, ml_mul(ctx, ml_square(ctx, y), r));
    ml_tensor *g_fused, *g_composite;
    CHECK(ml_grad(ctx, loss, &x, 1, 0, &g_fused) == ML_OK);
    CHECK(ml_grad(ctx, loss, &x, 1, 1, &g_composite) == ML_OK);
    for (int64_t i = 0; i < x->numel; i++) CHECK_NEAR(g_fused->data[i], g_composite->data[i], 1e-5, 1e-4);
    ml_ctx_destroy(ctx);
}

/* Fused batch norm + ReLU + 2x2 max-pool: the whole-plane AVX-512 forward
 * (max, argmax code, xhat and output in registers) gives the same output and
 * gradients (the backward reads its codes and xhat) bit for bit as the
 * row-by-row path (ml__bn_pool_rowwise, itself checked by test_grad's finite
 * differences), on 1 and 2 threads, and both agree with the unfused composite (batchnorm, relu,
 * maxpool2x2). Shapes: the CNN's 28x28 and 14x14 planes, odd heights and
 * widths (a row and a column outside every window), more than 16 outputs per
 * row (two vector steps), every gamma sign (z pooled instead of x when
 * gamma <= 0), ties. */
extern int ml__bn_pool_rowwise;

static void bn_pool_run(ml_ctx *ctx, ml_tensor *in[3], const ml_tensor *r, int fused, float *out[4]) {
    ml_tensor *y = fused ? ml_batchnorm_relu_maxpool(ctx, in[0], in[1], in[2], NULL, NULL, 1, 0.1f, 1e-5f)
                         : ml_maxpool2x2(ctx, ml_relu(ctx, ml_batchnorm(ctx, in[0], in[1], in[2], NULL, NULL, 1,
                                                                         0.1f, 1e-5f)));
    ml_tensor *g[3];
    CHECK(ml_grad(ctx, ml_sum_all(ctx, ml_mul(ctx, y, (ml_tensor *)r)), in, 3, 0, g) == ML_OK);
    out[0] = malloc((size_t)y->numel * sizeof(float));
    memcpy(out[0], y->data, (size_t)y->numel * sizeof(float));
    for (int i = 0; i < 3; i++) {
        out[i + 1] = malloc((size_t)g[i]->numel * sizeof(float));
        memcpy(out[i + 1], g[i]->data, (size_t)g[i]->numel * sizeof(float));
    }
}

static void test_bn_relu_pool_vector_vs_rowwise(void) {
    static const int64_t shapes[][4] = {{6, 3, 28, 28}, {5, 4, 14, 14}, {3, 3, 9, 11}, {2, 2, 33, 35},
                                        {2, 3, 8, 40},  {2, 3, 7, 32},  {3, 3, 6, 18}};
    ml_ctx *ctx = ml_ctx_create(0);
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
        ml_ctx_reset(ctx);
        const int64_t ch = shapes[c][1];
        ml_tensor *in[3] = {random_tensor(ctx, 4, shapes[c]), random_tensor(ctx, 1, ML_SHAPE(ch)),
                            random_tensor(ctx, 1, ML_SHAPE(ch))};
        for (int64_t i = 0; i < in[0]->numel; i += 7) in[0]->data[i] = 0.5f; /* ties inside windows */
        in[1]->data[0] = 0.8f, in[1]->data[1] = -0.6f;                       /* both signs of gamma */
        if (ch > 2) in[1]->data[2] = 0.f;
        int64_t os[4] = {shapes[c][0], ch, shapes[c][2] / 2, shapes[c][3] / 2};
        ml_tensor *r = random_tensor(ctx, 4, os);
        const int64_t n[4] = {r->numel, in[0]->numel, ch, ch};
        float *want[4], *got[4], *got2[4], *naive[4];
        ml__bn_pool_rowwise = 1;
        bn_pool_run(ctx, in, r, 1, want);
        ml__bn_pool_rowwise = 0;
        bn_pool_run(ctx, in, r, 1, got);
        omp_set_num_threads(2);
        bn_pool_run(ctx, in, r, 1, got2);
        omp_set_num_threads(1);
        bn_pool_run(ctx, in, r, 0, naive);
        for (int k = 0; k < 4; k++) {
            if (memcmp(want[k], got[k], (size_t)n[k] * sizeof(float)) || memcmp(want[k], got2[k], (size_t)n[k] * sizeof(float)))
                ML_FAIL_AT("shape %zu: %s differs between the vector and row-by-row paths", c,
                           (const char *[]){"output", "dx", "dgamma", "dbeta"}[k]);
            for (int64_t i = 0; i < n[k]; i++) CHECK_NEAR(got[k][i], naive[k][i], 1e-4, 1e-3);
            free(want[k]), free(got[k]), free(got2[k]), free(naive[k]);
        }
    }
    ml_ctx_destroy(ctx);
}

/* The fused pooled forward with the threads split by images (more than one
 * thread, a batch large enough to split: each thread walks the channels on
 * its own images, one step behind the others) against the channel loop on
 * one thread: output, running statistics and the gradients (the backward
 * reads the codes and xhat) bit for bit, on 2 and 3 threads (3: uneven
 * image ranges), vector and row by row. Channels: gamma > 0 (window maxima
 * taken before the statistics), < 0 and 0 (z pooled at the last step), a
 * gamma > 0 whose scale = inv * gamma underflows to 0 (its maxima thrown
 * away, z pooled), a constant channel (zero variance, ties everywhere). */
static void bn_pool_run_stats(ml_tensor *in[3], const ml_tensor *r, float *out[6]) {
    ml_ctx *ctx = ml_ctx_create(0);
    const int64_t c = in[1]->numel;
    float *rm = calloc((size_t)c, sizeof(float)), *rv = malloc((size_t)c * sizeof(float));
    for (int64_t i = 0; i < c; i++) rv[i] = 1.f;
    ml_tensor *x[3] = {ml_tensor_copy(ctx, in[0]), ml_tensor_copy(ctx, in[1]), ml_tensor_copy(ctx, in[2])};
    ml_tensor *y = ml_batchnorm_relu_maxpool(ctx, x[0], x[1], x[2], rm, rv, 1, 0.1f, 1e-5f);
    ml_tensor *g[3];
    CHECK(ml_grad(ctx, ml_sum_all(ctx, ml_mul(ctx, y, (ml_tensor *)r)), x, 3, 0, g) == ML_OK);
    out[0] = malloc((size_t)y->numel * sizeof(float));
    memcpy(out[0], y->data, (size_t)y->numel * sizeof(float));
    for (int i = 0; i < 3; i++) {
        out[i + 1] = malloc((size_t)g[i]->numel * sizeof(float));
        memcpy(out[i + 1], g[i]->data, (size_t)g[i]->numel * sizeof(float));
    }
    out[4] = rm, out[5] = rv;
    ml_ctx_destroy(ctx);
}

extern int ml__bn_pool_steps_oversubscribe;

static void test_bn_relu_pool_image_split(void) {
    static const int64_t shapes[][4] = {{9, 12, 28, 28}, {13, 5, 33, 35}, {41, 16, 14, 14}, {40, 64, 7, 7}};
    static const char *names[6] = {"output", "dx", "dgamma", "dbeta", "running mean", "running var"};
    ml_ctx *ctx = ml_ctx_create(0);
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
        ml_ctx_reset(ctx);
        const int64_t n = shapes[c][0], ch = shapes[c][1], sp = shapes[c][2] * shapes[c][3];
        ml_tensor *in[3] = {random_tensor(ctx, 4, shapes[c]), random_tensor(ctx, 1, ML_SHAPE(ch)),
                            random_tensor(ctx, 1, ML_SHAPE(ch))};
        for (int64_t i = 0; i < in[0]->numel; i += 7) in[0]->data[i] = 0.5f; /* ties inside windows */
        for (int64_t i = 0; i < n; i++)
            for (int64_t k = 0; k < sp; k++) {
                in[0]->data[(i * ch + 3) * sp + k] *= 100.f; /* variance ~1e4: inv * gamma[3] underflows */
                in[0]->data[(i * ch + 4) * sp + k] = 2.f;    /* constant */
            }
        in[1]->data[0] = 0.8f, in[1]->data[1] = -0.6f, in[1]->data[2] = 0.f, in[1]->data[3] = 1.4e-45f;
        int64_t os[4] = {n, ch, shapes[c][2] / 2, shapes[c][3] / 2};
        ml_tensor *r = random_tensor(ctx, 4, os);
        const int64_t len[6] = {r->numel, in[0]->numel, ch, ch, ch, ch};
        float *want[6], *got[6];
        omp_set_num_threads(1);
        bn_pool_run_stats(in, r, want);
        ml__bn_pool_steps_oversubscribe = 1; /* 3 threads even on 2 processors */
        for (int run = 0; run < 4; run++) { /* 2 and 3 threads, vector and row by row */
            omp_set_num_threads(2 + run / 2);
            ml__bn_pool_rowwise = run % 2;
            bn_pool_run_stats(in, r, got);
            ml__bn_pool_rowwise = 0;
            for (int k = 0; k < 6; k++) {
                if (memcmp(want[k], got[k], (size_t)len[k] * sizeof(float)))
                    ML_FAIL_AT("shape %zu, %d threads, row by row %d: %s differs from 1 thread", c, 2 + run / 2,
                               run % 2, names[k]);
                free(got[k]);
            }
        }
        ml__bn_pool_steps_oversubscribe = 0;
        omp_set_num_threads(1);
        for (int k = 0; k < 6; k++) free(want[k]);
    }
    ml_ctx_destroy(ctx);
}

/* The pooled forward of a pass that records nothing (an evaluation: no
 * backward follows, so neither xhat nor the codes are written) gives the
 * recording forward's output and running statistics bit for bit: 1 thread
 * (channel loop), 2 and 3 threads (split by images), vector and row by row;
 * the same awkward channels as above, and a channel holding a NaN. */
static void bn_pool_forward_stats(ml_tensor *in[3], int recording, float *out[3]) {
    ml_ctx *ctx = ml_ctx_create(0);
    ml_ctx_set_recording(ctx, recording);
    const int64_t c = in[1]->numel;
    float *rm = calloc((size_t)c, sizeof(float)), *rv = malloc((size_t)c * sizeof(float));
    for (int64_t i = 0; i < c; i++) rv[i] = 1.f;
    ml_tensor *x[3] = {ml_tensor_copy(ctx, in[0]), ml_tensor_copy(ctx, in[1]), ml_tensor_copy(ctx, in[2])};
    ml_tensor *y = ml_batchnorm_relu_maxpool(ctx, x[0], x[1], x[2], rm, rv, 1, 0.1f, 1e-5f);
    CHECK(y != NULL && (y->node != NULL) == recording);
    out[0] = malloc((size_t)y->numel * sizeof(float));
    memcpy(out[0], y->data, (size_t)y->numel * sizeof(float));
    out[1] = rm, out[2] = rv;
    ml_ctx_destroy(ctx);
}

static void test_bn_relu_pool_forward_only(void) {
    static const int64_t shapes[][4] = {{9, 12, 28, 28}, {13, 5, 33, 35}, {41, 16, 14, 14}, {40, 64, 7, 7}};
    static const char *names[3] = {"output", "running mean", "running var"};
    ml_ctx *ctx = ml_ctx_create(0);
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
        ml_ctx_reset(ctx);
        const int64_t n = shapes[c][0], ch = shapes[c][1], sp = shapes[c][2] * shapes[c][3];
        ml_tensor *in[3] = {random_tensor(ctx, 4, shapes[c]), random_tensor(ctx, 1, ML_SHAPE(ch)),
                            random_tensor(ctx, 1, ML_SHAPE(ch))};
        for (int64_t i = 0; i < in[0]->numel; i += 7) in[0]->data[i] = 0.5f; /* ties inside windows */
        for (int64_t i = 0; i < n; i++)
            for (int64_t k = 0; k < sp; k++) {
                in[0]->data[(i * ch + 3) * sp + k] *= 100.f; /* inv * gamma[3] underflows */
                in[0]->data[(i * ch + 4) * sp + k] = 2.f;    /* constant */
            }
        if (ch > 6) in[0]->data[6 * sp + 5] = NAN;
        in[1]->data[0] = 0.8f, in[1]->data[1] = -0.6f, in[1]->data[2] = 0.f, in[1]->data[3] = 1.4e-45f;
        const int64_t len[3] = {n * ch * (shapes[c][2] / 2) * (shapes[c][3] / 2), ch, ch};
        float *want[3], *got[3];
        omp_set_num_threads(1);
        bn_pool_forward_stats(in, 1, want);
        ml__bn_pool_steps_oversubscribe = 1;
        for (int run = 0; run < 6; run++) { /* 1, 2 and 3 threads, vector and row by row */
            omp_set_num_threads(1 + run / 2);
            ml__bn_pool_rowwise = run % 2;
            bn_pool_forward_stats(in, 0, got);
            ml__bn_pool_rowwise = 0;
            for (int k = 0; k < 3; k++) {
                if (memcmp(want[k], got[k], (size_t)len[k] * sizeof(float)))
                    ML_FAIL_AT("shape %zu, %d threads, row by row %d: %s differs from the recording forward", c,
                               1 + run / 2, run % 2, names[k]);
                free(got[k]);
            }
        }
        ml__bn_pool_steps_oversubscribe = 0;
        omp_set_num_threads(1);
        for (int k = 0; k < 3; k++) free(want[k]);
    }
    ml_ctx_destroy(ctx);
}

/* The plain conv block (1 input channel, as the CNN's first block) in
 * consume mode, where the pooled backward writes dx over the conv output
 * (the one-sweep AVX-512 dx reads each chunk's x before any store): the
 * gradients equal those without consume mode and those of the row-by-row
 * path (scalar dx), bit for bit, on 1 and 2 threads. Widths 28 (a chunk
 * shifted back onto the one before), 32 (whole chunks) and 20, odd heights. */
static void conv_block_run(const int64_t *xs, int rowwise, int consume, float *out[4], int64_t n[4]) {
    ml_ctx *ctx = ml_ctx_create(0);
    ml_ctx_set_consume(ctx, consume);
    ml_rng r;
    ml_rng_seed(&r, 17);
    const int64_t o = 4;
    ml_tensor *in[4] = {ml_tensor_new(ctx, 4, xs), ml_tensor_new(ctx, 4, ML_SHAPE(o, xs[1], 3, 3)),
                        ml_tensor_new(ctx, 1, ML_SHAPE(o)), ml_tensor_new(ctx, 1, ML_SHAPE(o))};
    for (int k = 0; k < 4; k++)
        for (int64_t i = 0; i < in[k]->numel; i++) in[k]->data[i] = (float)ml_rng_normal(&r);
    in[2]->data[1] = -0.5f; /* one channel pools z (gamma < 0) */
    ml__bn_pool_rowwise = rowwise;
    ml_tensor *y = ml_conv_block(ctx, in[0], in[1], NULL, in[2], in[3], NULL, NULL, 1, 0.1f, 1e-5f);
    ml_tensor *rt = ml_tensor_new(ctx, 4, y->shape);
    for (int64_t i = 0; i < rt->numel; i++) rt->data[i] = (float)ml_rng_normal(&r);
    ml_tensor *g[4];
    CHECK(ml_grad(ctx, ml_sum_all(ctx, ml_mul(ctx, y, rt)), in, 4, 0, g) == ML_OK);
    ml__bn_pool_rowwise = 0;
    for (int k = 0; k < 4; k++) {
        n[k] = g[k]->numel;
        out[k] = malloc((size_t)n[k] * sizeof(float));
        memcpy(out[k], g[k]->data, (size_t)n[k] * sizeof(float));
    }
    ml_ctx_destroy(ctx);
}

static void test_conv_block_dx_consume(void) {
    static const int64_t shapes[][4] = {{3, 1, 28, 28}, {2, 1, 29, 32}, {2, 2, 7, 20}};
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
        float *want[4], *got[4];
        int64_t n[4];
        conv_block_run(shapes[c], 1, 0, want, n);
        for (int run = 0; run < 4; run++) { /* rowwise consume; vector; vector consume; vector consume 2 threads */
            omp_set_num_threads(run == 3 ? 2 : 1);
            conv_block_run(shapes[c], run == 0, run != 1, got, n);
            for (int k = 0; k < 4; k++) {
                if (memcmp(want[k], got[k], (size_t)n[k] * sizeof(float)))
                    ML_FAIL_AT("shape %zu, run %d: the gradient of input %d differs", c, run, k);
                free(got[k]);
            }
        }
        omp_set_num_threads(1);
        for (int k = 0; k < 4; k++) free(want[k]);
    }
}

/* Large ops split across OpenMP threads give the same bits as one thread. */
static void test_results_independent_of_omp_threads(void) {
    ml_ctx *ctx = ml_ctx_create(0);
    ml_tensor *x = random_tensor(ctx, 4, ML_SHAPE(16, 64, 14, 14)), *b = random_tensor(ctx, 4, ML_SHAPE(1, 64, 1, 1));
    float *first[6] = {0};
    for (int threads = 1; threads <= 2; threads++) {
        omp_set_num_threads(threads);
        ml_tensor *outs[6] = {ml_add(ctx, x, b), ml_relu(ctx, x), ml_sum(ctx, x, 0xd, 1),
                              ml_batchnorm(ctx, x, NULL, NULL, NULL, NULL, 1, 0.1f, 1e-5f), ml_maxpool2x2(ctx, x),
                              ml_scale(ctx, x, 0.3f)};
        for (int k = 0; k < 6; k++) {
            if (threads == 1) {
                first[k] = malloc((size_t)outs[k]->numel * sizeof(float));
                memcpy(first[k], outs[k]->data, (size_t)outs[k]->numel * sizeof(float));
            } else {
                CHECK(memcmp(first[k], outs[k]->data, (size_t)outs[k]->numel * sizeof(float)) == 0);
                free(first[k]);
            }
        }
    }
    omp_set_num_threads(1);
    ml_ctx_destroy(ctx);
}

int main(void) {
    ml_rng_seed(&rng, 77);
    ML_RUN(test_broadcast_binary_vs_naive);
    ML_RUN(test_sum_vs_naive);
    ML_RUN(test_maxpool_vs_naive);
    ML_RUN(test_normalize_fused_vs_composite);
    ML_RUN(test_bn_relu_pool_vector_vs_rowwise);
    ML_RUN(test_conv_block_dx_consume);
    ML_RUN(test_bn_relu_pool_image_split);
    ML_RUN(test_bn_relu_pool_forward_only);
    ML_RUN(test_results_independent_of_omp_threads);
    return ml_test_summary();
}
