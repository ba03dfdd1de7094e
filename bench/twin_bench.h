/* twin_bench.h: what the benchmarks that time a fast kernel against its
 * naive twin in one process share (bench_bn_pool, bench_conv_blk16,
 * bench_conv_blk16_passes): the options, the clock, and samples of the two
 * paths alternated (which one goes first swaps every round) so that the
 * machine's load hits both alike. Header-only: each benchmark is one file. */
#ifndef ML_BENCH_TWIN_BENCH_H
#define ML_BENCH_TWIN_BENCH_H

#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct twin_opts {
    int threads, samples;
    int64_t n;
    int cpu; /* --cpu 1: the calling thread's CPU time (preemption does not count), else wall time */
} twin_opts;

static clockid_t twin_clock = CLOCK_MONOTONIC;

static inline double twin_now_ms(void) {
    struct timespec t;
    clock_gettime(twin_clock, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

/* --threads T --samples S --n N --cpu 0|1 over the defaults in *o; a bad
 * option exits 2 naming it. Sets the OpenMP threads and the clock. */
static inline void twin_parse(int argc, char **argv, const char *prog, twin_opts *o) {
    for (int i = 1; i < argc; i += 2) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v && !strcmp(argv[i], "--threads")) o->threads = atoi(v);
        else if (v && !strcmp(argv[i], "--samples")) o->samples = atoi(v);
        else if (v && !strcmp(argv[i], "--n")) o->n = atoll(v);
        else if (v && !strcmp(argv[i], "--cpu")) o->cpu = atoi(v) != 0;
        else {
            fprintf(stderr, "%s: unknown option or missing value: %s\n", prog, argv[i]);
            exit(2);
        }
    }
    if (o->threads < 1 || o->samples < 1 || o->n < 2) {
        fprintf(stderr, "%s: --threads, --samples >= 1, --n >= 2\n", prog);
        exit(2);
    }
    omp_set_num_threads(o->threads);
    twin_clock = o->cpu ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC;
}

static inline int twin_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One sample of path v (0: the twin, 1: the fast path) in ms. */
typedef double (*twin_sample_fn)(int v, void *user);

/* A warm-up of each path, then `samples` rounds of both, alternated; out[v] =
 * {min, median} of path v. */
static inline void twin_run(int samples, twin_sample_fn sample, void *user, double out[2][2]) {
    double *t[2];
    for (int v = 0; v < 2; v++) {
        if (!(t[v] = malloc((size_t)samples * sizeof(double)))) {
            fprintf(stderr, "twin_bench: out of memory\n");
            exit(1);
        }
        sample(v, user);
    }
    for (int i = 0; i < samples; i++)
        for (int k = 0; k < 2; k++) {
            const int v = (i + k) % 2;
            t[v][i] = sample(v, user);
        }
    for (int v = 0; v < 2; v++) {
        qsort(t[v], (size_t)samples, sizeof(double), twin_cmp_double);
        out[v][0] = t[v][0], out[v][1] = t[v][samples / 2];
        free(t[v]);
    }
}

/* The JSON line of one shape and pass: the twin's and the fast path's min and
 * median under their names, and the fast path's speed-ups. */
static inline void twin_print(const char *bench, int64_t n, int64_t c, int64_t h, int64_t w, int threads, const char *pass,
                       const char *twin_name, const char *fast_name, double r[2][2]) {
    printf("{\"bench\":\"%s\",\"n\":%lld,\"c\":%lld,\"h\":%lld,\"w\":%lld,\"threads\":%d,\"pass\":\"%s\","
           "\"%s_ms_min\":%.3f,\"%s_ms_min\":%.3f,\"%s_ms_median\":%.3f,\"%s_ms_median\":%.3f,"
           "\"speedup_min\":%.3f,\"speedup_median\":%.3f}\n",
           bench, (long long)n, (long long)c, (long long)h, (long long)w, threads, pass, twin_name, r[0][0], fast_name,
           r[1][0], twin_name, r[0][1], fast_name, r[1][1], r[0][0] / r[1][0], r[0][1] / r[1][1]);
    fflush(stdout);
}

#endif
