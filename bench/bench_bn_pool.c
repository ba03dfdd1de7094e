/* bench_bn_pool.c: time of the fused batch norm + ReLU + 2x2 max-pool
 * (ml_batchnorm_relu_maxpool, training mode) forward and backward at
 * the 4-block CNN's shapes, whole-plane AVX-512 kernels against the
 * row-by-row path (ml__bn_pool_rowwise), alternated sample by sample in one
 * process so that the machine's load hits both alike.
 *
 * Prints one JSON object per line (machine-readable, nothing else on stdout):
 *   {"bench":"bn_pool","n":200,"c":64,"h":28,"w":28,"threads":1,"pass":"fwd" or "bwd",
 *    "rowwise_ms_min":..,"vector_ms_min":..,"rowwise_ms_median":..,
 *    "vector_ms_median":..,"speedup_min":..,"speedup_median":..}
 *
 * Usage: bench_bn_pool [--threads T] [--samples S] [--n N] [--cpu 1]
 *   --threads T  OpenMP threads (default 1)
 *   --samples S  timed samples per path and pass (default 15)
 *   --n N        images per batch (default 200: ProtoNet 20-way 5-shot 5-query)
 *   --cpu 1      the calling thread's CPU time instead of wall time */
#include "metalearn/tensor.h"
#include "twin_bench.h"

extern int ml__bn_pool_rowwise;

typedef struct job {
    ml_ctx *ctx;
    ml_ctx_mark m; /* each sample drops what the last one made */
    ml_tensor *in[3], *r;
    int backward;
} job;

/* One sample of path v (0: row by row, 1: whole planes): the time of the
 * forward, or of the backward that follows it (the gradients of sum(y * r)
 * with respect to x, gamma and beta; the mul and sum and their backward are
 * small, pooled-size and the same for both). */
static double sample(int v, void *user) {
    job *j = user;
    ml__bn_pool_rowwise = v == 0;
    ml_ctx_rewind(j->ctx, j->m);
    double t0 = twin_now_ms();
    ml_tensor *y = ml_batchnorm_relu_maxpool(j->ctx, j->in[0], j->in[1], j->in[2], NULL, NULL, 1, 0.1f, 1e-5f);
    if (j->backward) {
        t0 = twin_now_ms(); /* the backward alone: ml_grad of sum(y * r) */
        ml_tensor *g[3];
        if (ml_grad(j->ctx, ml_sum_all(j->ctx, ml_mul(j->ctx, y, j->r)), j->in, 3, 0, g) != ML_OK) {
            fprintf(stderr, "bench_bn_pool: %s\n", ml_ctx_error(j->ctx));
            exit(1);
        }
    }
    return twin_now_ms() - t0;
}

int main(int argc, char **argv) {
    twin_opts o = {1, 15, 200, 0};
    twin_parse(argc, argv, "bench_bn_pool", &o);
    static const int hw[] = {28, 14, 7};
    ml_rng rng;
    ml_rng_seed(&rng, 5);
    for (size_t s = 0; s < sizeof hw / sizeof hw[0]; s++) {
        const int64_t n = o.n, c = 64, h = hw[s], w = hw[s];
        job j = {.ctx = ml_ctx_create(0)};
        j.in[0] = ml_tensor_new(j.ctx, 4, ML_SHAPE(n, c, h, w));
        j.in[1] = ml_tensor_new(j.ctx, 1, ML_SHAPE(c));
        j.in[2] = ml_tensor_new(j.ctx, 1, ML_SHAPE(c));
        j.r = ml_tensor_new(j.ctx, 4, ML_SHAPE(n, c, h / 2, w / 2));
        for (int k = 0; k < 3; k++)
            for (int64_t i = 0; i < j.in[k]->numel; i++) j.in[k]->data[i] = (float)ml_rng_normal(&rng) + (k == 1);
        for (int64_t i = 0; i < j.r->numel; i++) j.r->data[i] = (float)ml_rng_normal(&rng);
        j.m = ml_ctx_get_mark(j.ctx);
        for (j.backward = 0; j.backward <= 1; j.backward++) {
            double r[2][2];
            twin_run(o.samples, sample, &j, r);
            twin_print("bn_pool", n, c, h, w, o.threads, j.backward ? "bwd" : "fwd", "rowwise", "vector", r);
        }
        ml_ctx_destroy(j.ctx);
    }
    ml__bn_pool_rowwise = 0;
    return 0;
}
