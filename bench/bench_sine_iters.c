/* bench_sine_iters: the sinusoid MAML-2 configuration of
 * bench/maml_sinusoid_ab.sh timed iteration by iteration (ml_run_step), so
 * that a loaded machine can still be read: descheduling lengthens some
 * iterations and leaves the others alone, so low percentiles of the
 * per-iteration time are the undisturbed cost. Prints one JSON line with the
 * percentiles (ms) after skipping a warm-up.
 * Usage: bench_sine_iters [--threads T] [--iters N] [--warmup W] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metalearn/core.h"
#include "metalearn/options.h"
#include "metalearn/run.h"

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    const char *threads = "2";
    int iters = 6000, warmup = 500;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) threads = argv[i + 1];
        else if (!strcmp(argv[i], "--iters")) iters = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--warmup")) warmup = atoi(argv[i + 1]);
        else return fprintf(stderr, "unknown option %s\n", argv[i]), 2;
    }
    if (iters <= warmup + 10) return fprintf(stderr, "--iters must exceed --warmup by 10\n"), 2;
    ml_run_config cfg;
    ml_run_config_default(&cfg);
    ml_option_set set = ml_run_config_option_set(&cfg);
    char err[512], its[32];
    snprintf(its, sizeof its, "%d", iters);
    const char *kv[][2] = {{"algo", "maml"}, {"task", "sinusoid"}, {"model", "mlp:40,40"}, {"shots", "10"},
                           {"query", "10"}, {"meta-batch", "25"}, {"inner-steps", "1"}, {"inner-lr", "0.01"},
                           {"outer-lr", "0.001"}, {"optimizer", "adam"}, {"seed", "1"}, {"iters", its},
                           {"threads", threads}, {"eval-tasks", "0"}, {"quiet", "1"}, {"out", "/tmp/bench_sine_iters"}};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        if (ml_options_set(&set, kv[i][0], kv[i][1], err, sizeof err)) return fprintf(stderr, "%s\n", err), 1;
    ml_run *run;
    if (ml_run_open(&run, &cfg, ML_RUN_SCRATCH, NULL, err, sizeof err)) return fprintf(stderr, "%s\n", err), 1;
    double *t = malloc((size_t)iters * sizeof *t);
    for (int i = 0; i < iters; i++) {
        double loss, t0 = ml_now();
        if (ml_run_step(run, &loss, err, sizeof err)) return fprintf(stderr, "%s\n", err), 1;
        t[i] = (ml_now() - t0) * 1e3;
    }
    ml_run_close(run);
    int n = iters - warmup;
    double *s = t + warmup, sum = 0;
    for (int i = 0; i < n; i++) sum += s[i];
    qsort(s, (size_t)n, sizeof *s, cmp);
    printf("{\"bench\": \"sine_iters\", \"threads\": %s, \"iters\": %d, \"mean_ms\": %.4f, \"p10_ms\": %.4f, "
           "\"p25_ms\": %.4f, \"p50_ms\": %.4f, \"p90_ms\": %.4f}\n",
           threads, n, sum / n, s[n / 10], s[n / 4], s[n / 2], s[n * 9 / 10]);
    free(t);
    return 0;
}
