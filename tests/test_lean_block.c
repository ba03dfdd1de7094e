/* test_lean_block.c: block 1's lean query op (conv_bn_pool_lean.c: the conv
 * output never kept, statistics from the images' patch moments, backward from
 * the pooled codes) against its dense twin, the recorded conv + fused batch
 * norm + ReLU + pool and autograd's walk: forward output and every gradient
 * (weight, bias, gamma, beta) at a tolerance, with gamma < 0, ties, ReLU-dead
 * and constant channels, odd sizes, 1 and 3 input channels, the forward in
 * chunks of one image and in one; finite differences of the op's own loss;
 * the same bits for 1, 2 and 3 threads. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "metalearn/nn.h"
#include "metalearn/tensor.h"
#include "ml_test.h"
#include "tensor/internal.h"

static ml_rng rng;

typedef struct lean_case {
    int64_t n, c_in, h, w, c;
} lean_case;

typedef struct lean_inputs {
    ml_tensor *x, *w, *gamma, *beta, *g; /* g: the gradient at the pooled output */
} lean_inputs;

static void fill(ml_tensor *t, double scale) {
    for (int64_t i = 0; i < t->numel; i++) t->data[i] = (float)(scale * ml_rng_normal(&rng));
}

/* Images on a few levels (ties inside windows), gamma of both signs and a
 * zero, one channel ReLU-dead (beta far below), one with a zero weight (the
 * conv output constant: variance 0). */
static lean_inputs make_inputs(ml_ctx *ctx, const lean_case *lc) {
    lean_inputs in = {ml_tensor_new(ctx, 4, ML_SHAPE(lc->n, lc->c_in, lc->h, lc->w)),
                      ml_tensor_new(ctx, 4, ML_SHAPE(lc->c, lc->c_in, 3, 3)), ml_tensor_new(ctx, 1, ML_SHAPE(lc->c)),
                      ml_tensor_new(ctx, 1, ML_SHAPE(lc->c)),
                      ml_tensor_new(ctx, 4, ML_SHAPE(lc->n, lc->c, (lc->h) / 2, (lc->w) / 2))};
    for (int64_t i = 0; i < in.x->numel; i++) in.x->data[i] = (float)(ml_rng_uniform(&rng) < 0.3 ? 1.0 : 0.25 * (int)(4 * ml_rng_uniform(&rng)));
    fill(in.w, 0.5), fill(in.gamma, 1.0), fill(in.beta, 0.5), fill(in.g, 1.0);
    in.gamma->data[0] = -fabsf(in.gamma->data[0]) - 0.2f;
    in.gamma->data[1] = fabsf(in.gamma->data[1]) + 0.2f;
    if (lc->c > 3) in.beta->data[2] = -100.f;
    if (lc->c > 4) memset(in.w->data + 3 * lc->c_in * 9, 0, (size_t)(lc->c_in * 9) * sizeof(float));
    if (lc->c > 5) in.gamma->data[4] = 0.f;
    return in;
}

/* Outputs: y, then d weight, d bias, d gamma, d beta (malloc'd copies). */
static void dense_run(ml_ctx *ctx, const lean_inputs *in, float *out[5]) {
    ml_ctx_mark m = ml_ctx_get_mark(ctx);
    ml_tensor *bias = ml_tensor_zeros(ctx, 1, ML_SHAPE(in->w->shape[0]));
    ml_tensor *y = ml_conv_block(ctx, in->x, in->w, bias, in->gamma, in->beta, NULL, NULL, 1, 0.1f, 1e-5f);
    ml_tensor *loss = ml_sum_all(ctx, ml_mul(ctx, y, in->g));
    ml_tensor *wrt[4] = {in->w, bias, in->gamma, in->beta}, *d[4];
    CHECK(ml_grad(ctx, loss, wrt, 4, 0, d) == ML_OK);
    ml_tensor *t[5] = {y, d[0], d[1], d[2], d[3]};
    for (int k = 0; k < 5; k++) {
        out[k] = malloc((size_t)t[k]->numel * sizeof(float));
        memcpy(out[k], t[k]->data, (size_t)t[k]->numel * sizeof(float));
    }
    ml_ctx_rewind(ctx, m);
}

static void lean_run(ml_ctx *ctx, const lean_inputs *in, float *out[5], uint8_t **codes) {
    ml_ctx_mark m = ml_ctx_get_mark(ctx);
    const int64_t c = in->w->shape[0], pooled = in->g->numel;
    void *kept = malloc((size_t)ml__lean_block_kept_bytes(c, pooled));
    float *y = malloc((size_t)pooled * sizeof(float));
    ml_lean_kept *kp = ml__lean_block_forward(ctx, in->x, in->w, in->gamma, in->beta, 1, 1e-5f, kept, y);
    CHECK(kp != NULL);
    ml_tensor *d[4];
    CHECK(kp && ml__lean_block_backward(ctx, in->x, in->w, in->gamma, kp, in->g->data, d) == 0);
    out[0] = y;
    for (int k = 0; k < 4; k++) {
        out[k + 1] = malloc((size_t)d[k]->numel * sizeof(float));
        memcpy(out[k + 1], d[k]->data, (size_t)d[k]->numel * sizeof(float));
    }
    if (codes) {
        *codes = malloc((size_t)pooled);
        memcpy(*codes, ml__lean_block_codes(kp), (size_t)pooled);
    }
    free(kept);
    ml_ctx_rewind(ctx, m);
}

static int64_t out_numel(const lean_inputs *in, int k) {
    return k == 0 ? in->g->numel : k == 1 ? in->w->numel : in->w->shape[0];
}

static void free5(float *p[5]) {
    for (int k = 0; k < 5; k++) free(p[k]);
}

static const char *const out_names[5] = {"y", "d weight", "d bias", "d gamma", "d beta"};

/* Against the dense twin, chunks of one image and of the whole batch. */
static void test_lean_against_dense(void) {
    const lean_case cases[] = {{6, 1, 12, 12, 8}, {5, 1, 13, 11, 7}, {4, 3, 10, 10, 6}, {9, 1, 28, 28, 16}};
    ml_ctx *ctx = ml_ctx_create(1 << 24);
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        ml_ctx_reset(ctx);
        lean_inputs in = make_inputs(ctx, &cases[ci]);
        float *want[5], *got[5], *got1[5];
        dense_run(ctx, &in, want);
        lean_run(ctx, &in, got, NULL);
        const int64_t saved = ml__lean_chunk_bytes;
        ml__lean_chunk_bytes = 1; /* one image per chunk */
        lean_run(ctx, &in, got1, NULL);
        ml__lean_chunk_bytes = saved;
        for (int k = 0; k < 5; k++) {
            double scale = 0;
            for (int64_t i = 0; i < out_numel(&in, k); i++) scale = fmax(scale, fabs(want[k][i]));
            for (int64_t i = 0; i < out_numel(&in, k); i++) {
                if (fabs(got[k][i] - want[k][i]) > 1e-4 * (1 + scale) + 1e-3 * fabs(want[k][i]))
                    ML_FAIL_AT("case %zu %s[%lld]: %.9g vs dense %.9g", ci, out_names[k], (long long)i, got[k][i],
                               want[k][i]);
                if (got[k][i] != got1[k][i]) ML_FAIL_AT("case %zu %s[%lld]: chunks change it", ci, out_names[k], (long long)i);
            }
        }
        free5(want), free5(got), free5(got1);
    }
    ml_ctx_destroy(ctx);
}

/* The op's own loss sum(y * g) by central differences in double steps of
 * the weight, gamma and beta: the backward is its derivative. */
static double lean_loss(ml_ctx *ctx, const lean_inputs *in) {
    float *out[5];
    lean_run(ctx, in, out, NULL);
    double l = 0;
    for (int64_t i = 0; i < in->g->numel; i++) l += (double)out[0][i] * in->g->data[i];
    free5(out);
    return l;
}

static void test_lean_finite_differences(void) {
    const lean_case lc = {5, 1, 10, 10, 3}; /* no dead or constant channel: those have no smooth neighbourhood */
    ml_ctx *ctx = ml_ctx_create(1 << 22);
    lean_inputs in = make_inputs(ctx, &lc);
    fill(in.x, 1.0); /* no ties: windows far from switching their argmax */
    float *got[5];
    lean_run(ctx, &in, got, NULL);
    ml_tensor *params[3] = {in.w, in.gamma, in.beta};
    const int which[3] = {1, 3, 4};
    for (int p = 0; p < 3; p++)
        for (int64_t i = 0; i < params[p]->numel; i += p ? 1 : 5) {
            float *v = &params[p]->data[i], v0 = *v;
            const float e = 1e-3f;
            *v = v0 + e;
            double lp = lean_loss(ctx, &in);
            *v = v0 - e;
            double lm = lean_loss(ctx, &in);
            *v = v0;
            double fd = (lp - lm) / (2 * (double)e);
            CHECK_NEAR(got[which[p]][i], fd, 2e-2, 2e-2);
        }
    free5(got);
    ml_ctx_destroy(ctx);
}

/* The same bits, and the same codes, for 1, 2 and 3 threads. */
static void test_lean_thread_invariant(void) {
    const lean_case lc = {23, 1, 28, 28, 16};
    ml_ctx *ctx = ml_ctx_create(1 << 25);
    lean_inputs in = make_inputs(ctx, &lc);
    float *ref[5];
    uint8_t *ref_codes;
    omp_set_num_threads(1);
    lean_run(ctx, &in, ref, &ref_codes);
    for (int t = 2; t <= 3; t++) {
        float *got[5];
        uint8_t *codes;
        omp_set_num_threads(t);
        lean_run(ctx, &in, got, &codes);
        for (int k = 0; k < 5; k++)
            if (memcmp(got[k], ref[k], (size_t)out_numel(&in, k) * sizeof(float)))
                ML_FAIL_AT("%d threads: %s differs from 1 thread's", t, out_names[k]);
        CHECK(!memcmp(codes, ref_codes, (size_t)in.g->numel));
        free5(got), free(codes);
    }
    omp_set_num_threads(1);
    free5(ref), free(ref_codes);
    ml_ctx_destroy(ctx);
}

int main(void) {
    ml_rng_seed(&rng, 23);
    ML_RUN(test_lean_against_dense);
    ML_RUN(test_lean_finite_differences);
    ML_RUN(test_lean_thread_invariant);
    return ml_test_summary();
}
