/* test_conv_blk16.c: the conv block with its conv output kept in nChw16c
 * (src/tensor/conv_bn_blk16.c) against its plain twin (ml__conv_blk16_mode
 * 0): output, running statistics and first-order gradients bit for bit, on
 * 1, 2 and 3 threads (and the generic vector code instead of AVX-512), with and without consume mode (dx over the conv output),
 * and a second-order gradient through a create_graph backward (the recorded
 * rule turns the blocked output back to NCHW). Shapes: batches that cut
 * backward-weights into chunks, odd planes (a row and column outside every
 * window), 3x3 and 2x2 planes (pool to 1x1), Winograd and direct; an output
 * channel with zero weights (a constant plane: ties in every window, zero
 * variance) and gamma of both signs and zero. The plain path on 2 and 3
 * threads (the pooled backward's sums split by images) against the plain path on 1. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "metalearn/nn.h"
#include "metalearn/tensor.h"
#include "ml_test.h"
#include "tensor/internal.h"

static ml_rng rng;

static ml_tensor *random_tensor(ml_ctx *ctx, int ndim, const int64_t *shape, float scale) {
    ml_tensor *t = ml_tensor_new(ctx, ndim, shape);
    for (int64_t i = 0; i < t->numel; i++) t->data[i] = scale * (float)ml_rng_normal(&rng);
    return t;
}

enum { N_OUT = 7 };

static float *copy_of(const float *p, int64_t n) {
    float *c = malloc((size_t)n * sizeof(float));
    memcpy(c, p, (size_t)n * sizeof(float));
    return c;
}

/* One forward + backward of the block; out: y, dx, dw, dgamma, dbeta, running mean and var.
 * second: the gradient of |dL/dw|^2 w.r.t. x, w, gamma instead of dx, dw, dgamma. */
static int block_run(ml_tensor *in[5], const int64_t *rshape, int mode, int consume, int second, float *out[N_OUT],
                     int64_t nout[N_OUT]) {
    ml_ctx *ctx = ml_ctx_create(0);
    ml__conv_blk16_mode = mode;
    ml_ctx_set_consume(ctx, consume);
    ml_tensor *x = ml_tensor_copy(ctx, in[0]), *w = ml_tensor_copy(ctx, in[1]), *b = ml_tensor_copy(ctx, in[2]);
    ml_tensor *gamma = ml_tensor_copy(ctx, in[3]), *beta = ml_tensor_copy(ctx, in[4]);
    const int64_t o = w->shape[0];
    float *rm = calloc((size_t)o, sizeof(float)), *rv = malloc((size_t)o * sizeof(float));
    for (int64_t i = 0; i < o; i++) rv[i] = 1.f;
    ml_tensor *y = ml_conv_block(ctx, x, w, b, gamma, beta, rm, rv, 1, 0.1f, 1e-5f);
    CHECK(y != NULL);
    int taken = y && y->node && y->node->in[0]->node && y->node->in[0]->node->fp != 0.f;
    ml_rng r2;
    ml_rng_seed(&r2, 5);
    ml_tensor *r = ml_tensor_new(ctx, 4, rshape);
    for (int64_t i = 0; i < r->numel; i++) r->data[i] = (float)ml_rng_normal(&r2);
    ml_tensor *loss = ml_sum_all(ctx, ml_mul(ctx, y, r));
    out[0] = copy_of(y->data, y->numel), nout[0] = y->numel;
    ml_tensor *xs[4] = {x, w, gamma, beta}, *g[4];
    if (second) {
        ml_tensor *gw;
        CHECK(ml_grad(ctx, loss, &w, 1, 1, &gw) == ML_OK);
        ml_tensor *s = ml_sum_all(ctx, ml_mul(ctx, gw, gw));
        CHECK(ml_grad(ctx, s, xs, 4, 0, g) == ML_OK);
    } else {
        CHECK(ml_grad(ctx, loss, xs, 4, 0, g) == ML_OK);
    }
    for (int i = 0; i < 4; i++) out[i + 1] = copy_of(g[i]->data, g[i]->numel), nout[i + 1] = g[i]->numel;
    out[5] = rm, out[6] = rv, nout[5] = nout[6] = o;
    ml_ctx_destroy(ctx);
    ml__conv_blk16_mode = -1;
    return taken;
}

/* Inputs of a conv block of shape s = {images, c_in, h, w, c_out}: random
 * input, weights, bias, gamma, beta, with awkward channels: 3 constant 0
 * (zero weights), gamma 0.8, -0.6 and 0 on channels 0-2. */
static void awkward_block_inputs(ml_ctx *ctx, const int64_t *s, ml_tensor *in[5]) {
    const int64_t o = s[4];
    in[0] = random_tensor(ctx, 4, ML_SHAPE(s[0], s[1], s[2], s[3]), 1.f);
    in[1] = random_tensor(ctx, 4, ML_SHAPE(o, s[1], 3, 3), 0.2f);
    in[2] = random_tensor(ctx, 1, ML_SHAPE(o), 1.f);
    in[3] = random_tensor(ctx, 1, ML_SHAPE(o), 1.f);
    in[4] = random_tensor(ctx, 1, ML_SHAPE(o), 1.f);
    memset(in[1]->data + 3 * s[1] * 9, 0, (size_t)s[1] * 9 * sizeof(float));
    in[3]->data[0] = 0.8f, in[3]->data[1] = -0.6f, in[3]->data[2] = 0.f;
}

static void test_blocked_vs_plain(void) {
    static const int64_t shapes[][5] = {/* n, c, h, w, o */
                                        {5, 16, 14, 14, 64}, {40, 64, 7, 7, 32}, {3, 32, 3, 3, 32},
                                        {4, 16, 9, 11, 32},  {2, 16, 2, 2, 16},  {33, 16, 14, 14, 16}};
    static const char *names[N_OUT] = {"output", "dx", "dw", "dgamma", "dbeta", "running mean", "running var"};
    const int avx512 = __builtin_cpu_supports("avx512f");
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
        const int64_t *s = shapes[c], o = s[4];
        ml_ctx *ctx = ml_ctx_create(0);
        ml_tensor *in[5];
        awkward_block_inputs(ctx, s, in);
        const int64_t rshape[4] = {s[0], o, s[2] / 2, s[3] / 2};
        for (int second = 0; second < 2; second++)
            for (int consume = 0; consume < 2 - second; consume++) {
                float *want[N_OUT], *got[N_OUT];
                int64_t n[N_OUT];
                omp_set_num_threads(1);
                CHECK(!block_run(in, rshape, 0, consume, second, want, n));
                /* runs 1-3: blocked on 1-3 threads (split by images, 3 unevenly); 4: 1 thread, generic
                 * vector code; 5-6: plain on 2 and 3 threads (the backward's sums split by images) against plain on 1 */
                for (int run = 1; run <= 6; run++) {
                    const int threads = run <= 3 ? run : run == 4 ? 1 : run - 3, mode = run <= 4;
                    omp_set_num_threads(threads);
                    ml__blk16_generic = run == 4;
                    int taken = block_run(in, rshape, mode, consume, second, got, n);
                    ml__blk16_generic = 0;
                    if (avx512 && mode && !taken) ML_FAIL_AT("shape %zu: the blocked route was not taken", c);
                    for (int k = 0; k < N_OUT; k++) {
                        if (memcmp(want[k], got[k], (size_t)n[k] * sizeof(float)))
                            ML_FAIL_AT("shape %zu, %d threads, consume %d, second order %d: %s differs between the "
                                       "%s path and the plain path on 1 thread",
                                       c, threads, consume, second, names[k], mode ? "blocked" : "plain");
                        free(got[k]);
                    }
                }
                for (int k = 0; k < N_OUT; k++) free(want[k]);
            }
        ml_ctx_destroy(ctx);
    }
    omp_set_num_threads(1);
}

/* An evaluation's forward (not recording: no backward follows, so the pool
 * writes neither xhat nor codes): output and running statistics of the
 * blocked path on 1-3 threads and of its generic vector code, bit for bit
 * those of the recording plain path on 1 thread. */
static void block_forward(ml_tensor *in[5], int mode, int recording, float *out[3], int64_t nout[3]) {
    ml_ctx *ctx = ml_ctx_create(0);
    ml__conv_blk16_mode = mode;
    ml_ctx_set_recording(ctx, recording);
    ml_tensor *x = ml_tensor_copy(ctx, in[0]), *w = ml_tensor_copy(ctx, in[1]), *b = ml_tensor_copy(ctx, in[2]);
    ml_tensor *gamma = ml_tensor_copy(ctx, in[3]), *beta = ml_tensor_copy(ctx, in[4]);
    const int64_t o = w->shape[0];
    float *rm = calloc((size_t)o, sizeof(float)), *rv = malloc((size_t)o * sizeof(float));
    for (int64_t i = 0; i < o; i++) rv[i] = 1.f;
    ml_tensor *y = ml_conv_block(ctx, x, w, b, gamma, beta, rm, rv, 1, 0.1f, 1e-5f);
    CHECK(y != NULL);
    out[0] = copy_of(y->data, y->numel), nout[0] = y->numel;
    out[1] = rm, out[2] = rv, nout[1] = nout[2] = o;
    ml_ctx_destroy(ctx);
    ml__conv_blk16_mode = -1;
}

/* A forward-only block's output and running statistics (got, freed here)
 * bitwise those of the reference (want). */
static void expect_same_forward(float *want[3], float *got[3], const int64_t n[3], size_t shape, int run, int threads,
                                const char *route) {
    static const char *names[3] = {"output", "running mean", "running var"};
    for (int k = 0; k < 3; k++) {
        if (memcmp(want[k], got[k], (size_t)n[k] * sizeof(float)))
            ML_FAIL_AT("shape %zu, run %d (%d threads): %s of the %s differs", shape, run, threads, names[k], route);
        free(got[k]);
    }
}

static void test_forward_only(void) {
    static const int64_t shapes[][5] = {{5, 16, 14, 14, 64}, {40, 64, 7, 7, 32}, {4, 16, 9, 11, 32},
                                        {2, 16, 2, 2, 16},   {33, 16, 14, 14, 16}};
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
        const int64_t *s = shapes[c];
        ml_ctx *ctx = ml_ctx_create(0);
        ml_tensor *in[5];
        awkward_block_inputs(ctx, s, in);
        float *want[3], *got[3];
        int64_t n[3];
        omp_set_num_threads(1);
        block_forward(in, 0, 1, want, n);
        for (int run = 0; run < 5; run++) { /* blocked on 1-3 threads, generic on 1, plain on 2 */
            const int threads = run < 3 ? run + 1 : run - 2, mode = run < 4;
            omp_set_num_threads(threads);
            ml__blk16_generic = run == 3;
            block_forward(in, mode, 0, got, n);
            ml__blk16_generic = 0;
            expect_same_forward(want, got, n, c, run, threads, "forward-only pass");
        }
        for (int k = 0; k < 3; k++) free(want[k]);
        ml_ctx_destroy(ctx);
    }
    omp_set_num_threads(1);
}

/* An evaluation's small blocks (conv output <= 64 pixels, recording off, 2+
 * threads): the conv inside the batch norm's region, each thread's images in
 * chunks (conv_bn_blk16.c's tail route), bit for bit the two-region route
 * (ml__blk16_tail_off) on 1 thread: 7x7 (Winograd) with two chunk sizes per
 * thread on 2 threads, 3x3 and 5x5 (direct), odd image counts split unevenly
 * on 3 threads, the generic vector code, and awkward channels as above. */
static void test_tail_route(void) {
    static const int64_t shapes[][5] = {{107, 64, 7, 7, 64}, {23, 64, 3, 3, 64}, {13, 32, 5, 5, 48},
                                        {3, 16, 7, 7, 16},   {2, 16, 2, 2, 32}};
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
        const int64_t *s = shapes[c];
        ml_ctx *ctx = ml_ctx_create(0);
        ml_tensor *in[5];
        awkward_block_inputs(ctx, s, in);
        float *want[3], *got[3];
        int64_t n[3];
        omp_set_num_threads(1);
        ml__blk16_tail_off = 1;
        block_forward(in, 1, 0, want, n);
        for (int run = 0; run < 4; run++) { /* tail route on 2 and 3 threads, generic on 2; two regions on 2 */
            const int threads = run == 1 ? 3 : 2;
            omp_set_num_threads(threads);
            ml__blk16_generic = run == 2;
            ml__blk16_tail_off = run == 3;
            block_forward(in, 1, 0, got, n);
            ml__blk16_generic = ml__blk16_tail_off = 0;
            expect_same_forward(want, got, n, c, run, threads, "tail route");
        }
        for (int k = 0; k < 3; k++) free(want[k]);
        ml_ctx_destroy(ctx);
    }
    omp_set_num_threads(1);
}

static void test_layout_round_trip(void) {
    const int64_t n = 3, c = 32, sp = 5 * 7;
    float *a = malloc(n * c * sp * sizeof(float)), *b = malloc(n * c * sp * sizeof(float)),
          *d = malloc(n * c * sp * sizeof(float));
    for (int64_t i = 0; i < n * c * sp; i++) a[i] = (float)i;
    ml__blk16_from_nchw(a, b, n, c, sp);
    /* image 1, channel 17, pixel 4 sits in block 1, lane 1 */
    CHECK(b[((1 * 2 + 1) * sp + 4) * 16 + 1] == a[(1 * c + 17) * sp + 4]);
    ml__nchw_from_blk16(b, d, n, c, sp);
    CHECK(memcmp(a, d, n * c * sp * sizeof(float)) == 0);
    free(a), free(b), free(d);
}

int main(void) {
    ml_rng_seed(&rng, 91);
    ML_RUN(test_layout_round_trip);
    ML_RUN(test_blocked_vs_plain);
    ML_RUN(test_forward_only);
    ML_RUN(test_tail_route);
    return ml_test_summary();
}
