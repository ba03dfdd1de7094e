/* bench_conv_blk16_passes.c: the three oneDNN conv passes with y / dy in
 * NCHW (reordered around the primitive: ml__conv_dnnl_forward etc.) against
 * nChw16c (ml__conv_dnnl_*_blk16, src/tensor/conv_bn_blk16.c's route),
 * alternated in one process; per pass the minimum over samples of the
 * calling thread's CPU time (ms), which other processes' preemption does not
 * inflate (run it with --threads 1 on a loaded machine).
 *
 * Prints one JSON object per line:
 *   {"bench":"conv_blk16_passes","n":200,"hw":14,"threads":1,"pass":"fwd"|"bwd_data"|"bwd_weight",
 *    "plain_ms_min":..,"blocked_ms_min":..,"speedup":..}
 *
 * Usage: bench_conv_blk16_passes [--threads T] [--samples S] [--n N] */
#include "tensor/conv.h"
#include "twin_bench.h"

int main(int argc, char **argv) {
    twin_opts o = {1, 25, 200, 1};
    twin_parse(argc, argv, "bench_conv_blk16_passes", &o);
    twin_clock = CLOCK_THREAD_CPUTIME_ID; /* always CPU time (see above) */
    const int threads = o.threads, samples = o.samples, n = (int)o.n;
    static const int hws[] = {14, 7, 3};
    static const char *names[3] = {"fwd", "bwd_data", "bwd_weight"};
    for (size_t h = 0; h < sizeof hws / sizeof hws[0]; h++) {
        const int hw = hws[h];
        ml_conv_shape s;
        if (ml__conv_shape_init(&s, n, 64, hw, hw, 64, 3, 3, 1, 1) || !ml__conv_dnnl_blk16_ok(&s)) {
            fprintf(stderr, "bench_conv_blk16_passes: no blocked route at %dx%d\n", hw, hw);
            return 1;
        }
        int64_t sf = 0;
        for (int p = 0; p < 3; p++) {
            const int64_t q = ml__conv2d_pass_scratch_floats(&s, p);
            if (q > sf) sf = q;
        }
        const size_t big = (size_t)n * 64 * hw * hw, wn = 64 * 64 * 9;
        float *sc = aligned_alloc(64, ((size_t)sf * 4 + 63) / 64 * 64), *x = aligned_alloc(64, big * 4),
              *y = aligned_alloc(64, big * 4), *dx = aligned_alloc(64, big * 4), *w = aligned_alloc(64, (wn * 4 + 63) / 64 * 64);
        for (size_t i = 0; i < big; i++) x[i] = (float)(i % 97) * 0.01f, y[i] = (float)(i % 89) * 0.01f, dx[i] = 0;
        for (size_t i = 0; i < wn; i++) w[i] = (float)(i % 13) * 0.01f;
        double best[3][2] = {{1e30, 1e30}, {1e30, 1e30}, {1e30, 1e30}};
        for (int r = 0; r <= samples; r++) /* r = 0: warm-up */
            for (int p = 0; p < 3; p++)
                for (int k = 0; k < 2; k++) {
                    const int v = (r + k) % 2; /* alternate which goes first */
                    const double t0 = twin_now_ms();
                    int rc;
                    if (p == 0) rc = v ? ml__conv_dnnl_forward_blk16(&s, x, w, y, sc) : ml__conv_dnnl_forward(&s, x, w, y, sc);
                    else if (p == 1)
                        rc = v ? ml__conv_dnnl_backward_data_blk16(&s, y, w, dx, sc)
                               : ml__conv_dnnl_backward_data(&s, y, w, dx, sc);
                    else
                        rc = v ? ml__conv_dnnl_backward_weight_blk16(&s, x, y, dx, sc)
                               : ml__conv_dnnl_backward_weight(&s, x, y, dx, sc);
                    const double t = twin_now_ms() - t0;
                    if (rc) {
                        fprintf(stderr, "bench_conv_blk16_passes: %s failed\n", names[p]);
                        return 1;
                    }
                    if (r > 0 && t < best[p][v]) best[p][v] = t;
                }
        for (int p = 0; p < 3; p++)
            printf("{\"bench\":\"conv_blk16_passes\",\"n\":%d,\"hw\":%d,\"threads\":%d,\"pass\":\"%s\","
                   "\"plain_ms_min\":%.3f,\"blocked_ms_min\":%.3f,\"speedup\":%.3f}\n",
                   n, hw, threads, names[p], best[p][0], best[p][1], best[p][0] / best[p][1]);
        fflush(stdout);
        free(sc), free(x), free(y), free(dx), free(w);
    }
    return 0;
}
