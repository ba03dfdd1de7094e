/* test_conv_bn_direct.c: block 1 of an evaluation with its conv run inside the
 * batch norm's channel steps (ops_nn.c, ml__conv_bn_relu_pool_direct) against
 * the two ops it replaces (ml_conv2d + ml_batchnorm_relu_maxpool), bit for
 * bit: output and running statistics, on 1, 2 and 3 threads (2 and 3 also with
 * the split by images changing every step, uneven to its limits), odd image counts
 * and sizes, 1-3 input channels, channels with gamma < 0, gamma 0, an
 * underflowing scale, a constant channel, ties. The direct 3x3 plane kernel
 * (conv3x3_direct.c: rows of <= 16 and <= 32 columns from registers, wider
 * or multi-channel inputs flat) against its generic twin and the conv route. Where the
 * run-time check finds the SGEMM summing otherwise (another CPU or oneDNN),
 * the route must not be taken and the fallback must give the same bits. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "metalearn/nn.h"
#include "metalearn/tensor.h"
#include "ml_test.h"
#include "tensor/conv.h"
#include "tensor/internal.h"

extern int ml__bn_pool_steps_oversubscribe;
extern int ml__bn_pool_steps_jitter;

static ml_rng rng;

typedef struct direct_case {
    int64_t n, c_in, h, w, o;
} direct_case;

/* Omniglot-like images: mostly 0 and 1 (ties in windows, exact zeros), some
 * other values; weights normal, with channel 3 large (its variance makes
 * inv * gamma[3] = 1.4e-45 underflow) and channel 4 zero (a constant channel). */
static void fill_case(const direct_case *k, ml_tensor *in[4]) {
    for (int64_t i = 0; i < in[0]->numel; i++) {
        const double u = ml_rng_uniform(&rng);
        in[0]->data[i] = u < 0.6 ? 0.f : u < 0.9 ? 1.f : (float)ml_rng_normal(&rng);
    }
    for (int64_t i = 0; i < in[1]->numel; i++) in[1]->data[i] = (float)ml_rng_normal(&rng);
    for (int64_t i = 0; i < k->o; i++) in[2]->data[i] = (float)ml_rng_normal(&rng), in[3]->data[i] = (float)ml_rng_normal(&rng);
    const int64_t per = k->c_in * 9;
    if (k->o > 4) {
        for (int64_t t = 0; t < per; t++) in[1]->data[3 * per + t] *= 100.f, in[1]->data[4 * per + t] = 0.f;
        in[2]->data[0] = 0.8f, in[2]->data[1] = -0.6f, in[2]->data[2] = 0.f, in[2]->data[3] = 1.4e-45f;
    }
}

/* The block's output and running statistics with the route on or off. */
static void block_run(const direct_case *k, ml_tensor *in[4], int direct, int threads, float *out[3], int *taken) {
    ml_ctx *ctx = ml_ctx_create(0);
    ml_ctx_set_recording(ctx, 0);
    float *rm = calloc((size_t)k->o, sizeof(float)), *rv = malloc((size_t)k->o * sizeof(float));
    for (int64_t i = 0; i < k->o; i++) rv[i] = 1.f;
    omp_set_num_threads(threads);
    ml_tensor *y;
    *taken = 0;
    if (direct) {
        y = ml__conv_bn_relu_pool_direct(ctx, in[0], in[1], in[2], in[3], rm, rv, 0.1f, 1e-5f, taken);
        if (!*taken) y = ml_conv_block(ctx, in[0], in[1], NULL, in[2], in[3], rm, rv, 1, 0.1f, 1e-5f);
    } else {
        ml__conv_bn_direct_off = 1;
        y = ml_conv_block(ctx, in[0], in[1], NULL, in[2], in[3], rm, rv, 1, 0.1f, 1e-5f);
        ml__conv_bn_direct_off = 0;
    }
    omp_set_num_threads(1);
    CHECK(y != NULL);
    out[0] = malloc((size_t)y->numel * sizeof(float));
    memcpy(out[0], y->data, (size_t)y->numel * sizeof(float));
    out[1] = rm, out[2] = rv;
    ml_ctx_destroy(ctx);
}

static void test_block_bits(void) {
    static const direct_case cases[] = {{9, 1, 28, 28, 12}, {13, 1, 33, 35, 6}, {7, 3, 29, 32, 16},
                                        {5, 2, 23, 47, 8},  {3, 1, 28, 28, 64}, {2, 1, 14, 14, 8},
                                        {11, 1, 29, 31, 7}, {6, 1, 45, 16, 5}};
    static const char *names[3] = {"output", "running mean", "running var"};
    ml_ctx *ctx = ml_ctx_create(0);
    ml__bn_pool_steps_oversubscribe = 1;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const direct_case *k = &cases[c];
        ml_ctx_reset(ctx);
        ml_tensor *in[4] = {ml_tensor_new(ctx, 4, ML_SHAPE(k->n, k->c_in, k->h, k->w)),
                            ml_tensor_new(ctx, 4, ML_SHAPE(k->o, k->c_in, 3, 3)), ml_tensor_new(ctx, 1, ML_SHAPE(k->o)),
                            ml_tensor_new(ctx, 1, ML_SHAPE(k->o))};
        fill_case(k, in);
        const int64_t len[3] = {k->n * k->o * (k->h / 2) * (k->w / 2), k->o, k->o};
        float *want[3], *got[3];
        int taken;
        block_run(k, in, 0, 1, want, &taken);
        CHECK(!taken);
        for (int run = 0; run < 5; run++) { /* 1-3 threads, then 2 and 3 with a split that changes every step */
            const int threads = run < 3 ? run + 1 : run - 1;
            ml__bn_pool_steps_jitter = run >= 3;
            block_run(k, in, 1, threads, got, &taken);
            ml__bn_pool_steps_jitter = 0;
            ml_conv_shape s;
            CHECK(ml__conv_shape_init(&s, (int)k->n, (int)k->c_in, (int)k->h, (int)k->w, (int)k->o, 3, 3, 1, 1) == 0);
            CHECK(taken == ml__conv3x3_direct_matches(&s));
            if (c == 0 && threads == 1 && !taken)
                printf("note: the direct route is not taken here (SGEMM bits not matched, or no AVX-512)\n");
            for (int q = 0; q < 3; q++) {
                if (memcmp(want[q], got[q], (size_t)len[q] * sizeof(float)))
                    ML_FAIL_AT("case %zu (%lldx%lldx%lldx%lld -> %lld), %d threads%s, taken %d: %s differs", c,
                               (long long)k->n, (long long)k->c_in, (long long)k->h, (long long)k->w,
                               (long long)k->o, threads, run >= 3 ? " (split changing)" : "", taken, names[q]);
                free(got[q]);
            }
        }
        for (int q = 0; q < 3; q++) free(want[q]);
    }
    ml__bn_pool_steps_oversubscribe = 0;
    ml_ctx_destroy(ctx);
}

/* The plane kernel against its twin (always) and against the conv route
 * (where the run-time check says they match), widths below, at and above 16. */
static void test_plane_kernel(void) {
    static const int shapes[][3] = {{1, 28, 28}, {1, 5, 7},  {3, 9, 16},  {2, 17, 33}, {1, 1, 3},
                                    {4, 30, 31}, {1, 9, 16}, {1, 13, 17}, {1, 11, 32}, {1, 2, 33}};
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
        const int ci = shapes[c][0], h = shapes[c][1], w = shapes[c][2], o = 5;
        const int64_t sp = (int64_t)h * w;
        float *x = malloc((size_t)(ci * sp) * sizeof(float)), *wt = malloc((size_t)(o * ci * 9) * sizeof(float));
        float *a = malloc((size_t)sp * sizeof(float)), *b = malloc((size_t)sp * sizeof(float));
        float *y = malloc((size_t)(o * sp) * sizeof(float));
        for (int64_t i = 0; i < ci * sp; i++) x[i] = ml_rng_uniform(&rng) < 0.3 ? 0.f : (float)ml_rng_normal(&rng);
        for (int64_t i = 0; i < o * ci * 9; i++) wt[i] = (float)ml_rng_normal(&rng);
        ml_conv_shape s;
        CHECK(ml__conv_shape_init(&s, 1, ci, h, w, o, 3, 3, 1, 1) == 0);
        const int64_t ns = ml__conv2d_scratch_floats(&s);
        float *scratch = malloc((size_t)(ns > 0 ? ns : 1) * sizeof(float));
        ml__conv2d_forward(&s, x, wt, y, scratch);
        const int route = ml__conv3x3_direct_matches(&s);
        for (int oc = 0; oc < o; oc++) {
            ml__conv3x3_plane(x, ci, h, w, wt + oc * ci * 9, a);
            ml__conv3x3_plane_ref(x, ci, h, w, wt + oc * ci * 9, b);
            if (memcmp(a, b, (size_t)sp * sizeof(float))) ML_FAIL_AT("shape %zu, channel %d: plane != twin", c, oc);
            if (route && memcmp(a, y + oc * sp, (size_t)sp * sizeof(float)))
                ML_FAIL_AT("shape %zu, channel %d: plane != the conv route, though checked to match", c, oc);
            for (int64_t p = 0; p < sp; p++) /* the twin against the sum in double */
                if (fabs(b[p] - (double)y[oc * sp + p]) > 1e-4 * (1 + fabs(y[oc * sp + p])))
                    ML_FAIL_AT("shape %zu, channel %d, output %lld: %g vs the conv's %g", c, oc, (long long)p, b[p],
                               y[oc * sp + p]);
        }
        free(x), free(wt), free(a), free(b), free(y), free(scratch);
    }
}

int main(void) {
    ml_rng_seed(&rng, 2024);
    ML_RUN(test_plane_kernel);
    ML_RUN(test_block_bits);
    return ml_test_summary();
}
