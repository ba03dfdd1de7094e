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
#include "metalearn/nn.h"
#include "metalearn/tensor.h"
#include "twin_bench.h"

extern int ml__conv_blk16_mode;

typedef struct job {
    ml_ctx *ctx;
    ml_ctx_mark m; /* each sample drops what the last one made */
    ml_tensor *in[4], *r;
    int backward;
} job;

/* One sample of path v (0: plain, 1: blocked): the time of the forward, or
 * of the backward that follows it (the gradients of sum(y * r) with respect
 * to x, w, gamma and beta; the mul and sum and their backward are small,
 * pooled-size and the same for both). */
static double sample(int v, void *user) {
    job *j = user;
    ml__conv_blk16_mode = v;
    ml_ctx_rewind(j->ctx, j->m);
    double t0 = twin_now_ms();
    ml_tensor *y = ml_conv_block(j->ctx, j->in[0], j->in[1], NULL, j->in[2], j->in[3], NULL, NULL, 1, 0.1f, 1e-5f);
    if (j->backward) {
        t0 = twin_now_ms(); /* the backward alone: ml_grad of sum(y * r) */
        ml_tensor *g[4];
        if (ml_grad(j->ctx, ml_sum_all(j->ctx, ml_mul(j->ctx, y, j->r)), j->in, 4, 0, g) != ML_OK) {
            fprintf(stderr, "bench_conv_blk16: %s\n", ml_ctx_error(j->ctx));
            exit(1);
        }
    }
    return twin_now_ms() - t0;
}

int main(int argc, char **argv) {
    twin_opts o = {1, 15, 200, 0};
    twin_parse(argc, argv, "bench_conv_blk16", &o);
    static const int hw[] = {14, 7, 3};
    ml_rng rng;
    ml_rng_seed(&rng, 5);
    for (size_t s = 0; s < sizeof hw / sizeof hw[0]; s++) {
        const int64_t n = o.n, c = 64, h = hw[s], w = hw[s];
        job j = {.ctx = ml_ctx_create(0)};
        j.in[0] = ml_tensor_new(j.ctx, 4, ML_SHAPE(n, c, h, w));
        j.in[1] = ml_tensor_new(j.ctx, 4, ML_SHAPE(c, c, 3, 3));
        j.in[2] = ml_tensor_new(j.ctx, 1, ML_SHAPE(c));
        j.in[3] = ml_tensor_new(j.ctx, 1, ML_SHAPE(c));
        j.r = ml_tensor_new(j.ctx, 4, ML_SHAPE(n, c, h / 2, w / 2));
        for (int k = 0; k < 4; k++)
            for (int64_t i = 0; i < j.in[k]->numel; i++)
                j.in[k]->data[i] = (float)ml_rng_normal(&rng) * (k == 1 ? 0.05f : 1.f) + (k == 2);
        for (int64_t i = 0; i < j.r->numel; i++) j.r->data[i] = (float)ml_rng_normal(&rng);
        j.m = ml_ctx_get_mark(j.ctx);
        for (j.backward = 0; j.backward <= 1; j.backward++) {
            double r[2][2];
            twin_run(o.samples, sample, &j, r);
            twin_print("conv_blk16", n, c, h, w, o.threads, j.backward ? "bwd" : "fwd", "plain", "blocked", r);
        }
        ml_ctx_destroy(j.ctx);
    }
    ml__conv_blk16_mode = -1;
    return 0;
}
