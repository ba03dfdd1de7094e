/* bench_conv_blocked_sums.c: the oneDNN passes of supervised cnn4's blocks
 * 2-4 (64 images, 64 -> 64 channels at 14x14, 7x7, 3x3, y / dy nChw16c as
 * conv_bn_blk16.c runs them) with backward-weights' chunk gradients summed
 * in the blocked layout and put in OIHW once (conv_dnnl.c) against the route
 * before (oneDNN's reorder of each chunk's gradient, then the sum),
 * alternated in one process (twin_bench.h); per pass the minimum and median
 * wall time in ms (--cpu 1: the calling thread's CPU time). Forward and
 * backward-data do not change with the setting (a control).
 *
 * Prints one JSON object per line:
 *   {"bench":"conv_blocked_sums","n":64,"hw":14,"threads":2,"pass":"fwd"|"bwd_data"|"bwd_weight",
 *    "before_ms_min":..,"blocked_ms_min":..,"before_ms_median":..,"blocked_ms_median":..}
 *
 * Usage: bench_conv_blocked_sums [--threads T] [--samples S] [--n N] [--cpu 0|1] */
#include "tensor/conv.h"
#include "twin_bench.h"

typedef struct run {
    ml_conv_shape s;
    int pass;
    float *x, *y, *dx, *w, *dw, *scratch;
} run;

static double sample(int v, void *user) {
    run *r = user;
    ml__conv_dnnl_set_blocked_sums(v);
    const double t0 = twin_now_ms();
    int rc = r->pass == 0   ? ml__conv_dnnl_forward_blk16(&r->s, r->x, r->w, r->y, r->scratch)
             : r->pass == 1 ? ml__conv_dnnl_backward_data_blk16(&r->s, r->y, r->w, r->dx, r->scratch)
                            : ml__conv_dnnl_backward_weight_blk16(&r->s, r->x, r->y, r->dw, r->scratch);
    const double t = twin_now_ms() - t0;
    if (rc) {
        fprintf(stderr, "bench_conv_blocked_sums: pass %d failed\n", r->pass);
        exit(1);
    }
    return t;
}

int main(int argc, char **argv) {
    twin_opts o = {2, 200, 64, 0};
    twin_parse(argc, argv, "bench_conv_blocked_sums", &o);
    static const int hws[] = {14, 7, 3};
    static const char *names[3] = {"fwd", "bwd_data", "bwd_weight"};
    for (size_t h = 0; h < sizeof hws / sizeof hws[0]; h++) {
        run r = {.pass = 0};
        const int hw = hws[h];
        if (ml__conv_shape_init(&r.s, (int)o.n, 64, hw, hw, 64, 3, 3, 1, 1) || !ml__conv_dnnl_blk16_ok(&r.s)) {
            fprintf(stderr, "bench_conv_blocked_sums: no blocked route at %dx%d\n", hw, hw);
            return 1;
        }
        int64_t sf = 0;
        for (int p = 0; p < 3; p++) {
            const int64_t q = ml__conv2d_pass_scratch_floats(&r.s, p);
            if (q > sf) sf = q;
        }
        const size_t big = (size_t)o.n * 64 * hw * hw, wn = 64 * 64 * 9;
        r.scratch = aligned_alloc(64, ((size_t)sf * 4 + 63) / 64 * 64), r.x = aligned_alloc(64, big * 4);
        r.y = aligned_alloc(64, big * 4), r.dx = aligned_alloc(64, big * 4);
        r.w = aligned_alloc(64, wn * 4), r.dw = aligned_alloc(64, wn * 4);
        for (size_t i = 0; i < big; i++) r.x[i] = (float)(i % 97) * 0.01f, r.y[i] = (float)(i % 89) * 0.01f;
        for (size_t i = 0; i < wn; i++) r.w[i] = (float)(i % 13) * 0.01f;
        for (int p = 0; p < 3; p++) {
            double out[2][2];
            r.pass = p;
            twin_run(o.samples, sample, &r, out);
            printf("{\"bench\":\"conv_blocked_sums\",\"n\":%lld,\"hw\":%d,\"threads\":%d,\"pass\":\"%s\","
                   "\"before_ms_min\":%.4f,\"blocked_ms_min\":%.4f,\"before_ms_median\":%.4f,\"blocked_ms_median\":%.4f}\n",
                   (long long)o.n, hw, o.threads, names[p], out[0][0], out[1][0], out[0][1], out[1][1]);
            fflush(stdout);
        }
        free(r.scratch), free(r.x), free(r.y), free(r.dx), free(r.w), free(r.dw);
    }
    ml__conv_dnnl_set_blocked_sums(1);
    return 0;
}
