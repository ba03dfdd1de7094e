/* bench_conv_blk16.c: time of the 4-block CNN's conv block (3x3 conv 64 -> 64,
 * then batch norm + ReLU + 2x2 max-pool, training mode: ml_conv_block) with
 * the conv output kept in nChw16c (src/tensor/conv_bn_blk16.c) against the
 * plain path (ml__conv_blk16_mode = 0: oneDNN reorders the conv output and
 * its gradient), forward and backward, alternated sample by sample in one
 * process so that the machine's load hits both alike.
 *
 * Prints one JSON object per line (machine-readable, nothing else on stdout):
 *   {"bench":"conv_blk16","n":200,"c":64,"h":14,"w":14,"threads":1,"pass":"fwd" or "bwd",
 *    "plain_ms_min":..,"blocked_ms_min":..,"plain_ms_median":..,
 *    "blocked_ms_median":..,"speedup_min":..,"speedup_median":..}
 *
 * Usage: bench_conv_blk16 [--threads T] [--samples S] [--n N] [--cpu 1]
 *   --threads T  OpenMP threads (default 1)
 *   --samples S  timed samples per path and pass (default 15)
 *   --n N        images per batch (default 200: ProtoNet 20-way 5-shot 5-query)
 *   --cpu 1      time the calling thread's CPU time instead of wall time (with
 *                --threads 1 on a loaded machine: preemption does not count) */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metalearn/nn.h"
#include "metalearn/tensor.h"

extern int ml__conv_blk16_mode;
static clockid_t clock_id = CLOCK_MONOTONIC; /* --cpu: the calling thread's CPU time */

static double now_ms(void) {
    struct timespec t;
    clock_gettime(clock_id, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One sample: the time of the forward, or of the backward that follows it
 * (the gradients of sum(y * r) with respect to x, w, gamma and beta; the mul
 * and sum and their backward are small, pooled-size and the same for both). */
static double sample(ml_ctx *ctx, ml_ctx_mark m, ml_tensor *in[4], ml_tensor *r, int backward) {
    ml_ctx_rewind(ctx, m);
    double t0 = now_ms();
    ml_tensor *y = ml_conv_block(ctx, in[0], in[1], NULL, in[2], in[3], NULL, NULL, 1, 0.1f, 1e-5f);
    if (backward) {
        t0 = now_ms(); /* the backward alone: ml_grad of sum(y * r) */
        ml_tensor *g[4];
        if (ml_grad(ctx, ml_sum_all(ctx, ml_mul(ctx, y, r)), in, 4, 0, g) != ML_OK) {
            fprintf(stderr, "bench_conv_blk16: %s\n", ml_ctx_error(ctx));
            exit(1);
        }
    }
    return now_ms() - t0;
}

int main(int argc, char **argv) {
    int threads = 1, samples = 15;
    int64_t n = 200;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--samples")) samples = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--n")) n = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--cpu")) clock_id = atoi(argv[i + 1]) ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC;
        else {
            fprintf(stderr, "bench_conv_blk16: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (threads < 1 || samples < 1 || n < 2) {
        fprintf(stderr, "bench_conv_blk16: --threads, --samples >= 1, --n >= 2\n");
        return 2;
    }
    omp_set_num_threads(threads);
    static const int hw[] = {14, 7, 3};
    ml_rng rng;
    ml_rng_seed(&rng, 5);
    for (size_t s = 0; s < sizeof hw / sizeof hw[0]; s++) {
        const int64_t c = 64, h = hw[s], w = hw[s];
        ml_ctx *ctx = ml_ctx_create(0);
        ml_tensor *in[4] = {ml_tensor_new(ctx, 4, ML_SHAPE(n, c, h, w)), ml_tensor_new(ctx, 4, ML_SHAPE(c, c, 3, 3)),
                            ml_tensor_new(ctx, 1, ML_SHAPE(c)), ml_tensor_new(ctx, 1, ML_SHAPE(c))};
        ml_tensor *r = ml_tensor_new(ctx, 4, ML_SHAPE(n, c, h / 2, w / 2));
        for (int k = 0; k < 4; k++)
            for (int64_t i = 0; i < in[k]->numel; i++) in[k]->data[i] = (float)ml_rng_normal(&rng) * (k == 1 ? 0.05f : 1.f) + (k == 2);
        for (int64_t i = 0; i < r->numel; i++) r->data[i] = (float)ml_rng_normal(&rng);
        const ml_ctx_mark m = ml_ctx_get_mark(ctx); /* each sample drops what the last one made */
        for (int backward = 0; backward <= 1; backward++) {
            double *t[2];
            for (int v = 0; v < 2; v++) t[v] = malloc((size_t)samples * sizeof(double));
            for (int v = 0; v < 2; v++) ml__conv_blk16_mode = v, sample(ctx, m, in, r, backward); /* warm-up */
            for (int i = 0; i < samples; i++)
                for (int k = 0; k < 2; k++) { /* alternate which path goes first */
                    const int v = (i + k) % 2;
                    ml__conv_blk16_mode = v;
                    t[v][i] = sample(ctx, m, in, r, backward);
                }
            qsort(t[0], (size_t)samples, sizeof(double), cmp_double);
            qsort(t[1], (size_t)samples, sizeof(double), cmp_double);
            const double rmin = t[0][0], vmin = t[1][0], rmed = t[0][samples / 2], vmed = t[1][samples / 2];
            printf("{\"bench\":\"conv_blk16\",\"n\":%lld,\"c\":%lld,\"h\":%lld,\"w\":%lld,\"threads\":%d,\"pass\":\"%s\","
                   "\"plain_ms_min\":%.3f,\"blocked_ms_min\":%.3f,\"plain_ms_median\":%.3f,\"blocked_ms_median\":%.3f,"
                   "\"speedup_min\":%.3f,\"speedup_median\":%.3f}\n",
                   (long long)n, (long long)c, (long long)h, (long long)w, threads, backward ? "bwd" : "fwd", rmin,
                   vmin, rmed, vmed, rmin / vmin, rmed / vmed);
            fflush(stdout);
            free(t[0]), free(t[1]);
        }
        ml_ctx_destroy(ctx);
    }
    ml__conv_blk16_mode = -1;
    return 0;
}
