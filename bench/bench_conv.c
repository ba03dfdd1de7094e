/* bench_conv.c: GFLOP/s of the conv2d kernels at few-shot shapes, as a fraction
 * of this machine's measured FMA peak.
 *
 * Prints one JSON object per line (machine-readable, nothing else on stdout):
 *   {"bench":"fma_peak","threads":1,"gflops":...}
 *   {"bench":"conv2d","pass":"forward","n":5,"c":64,"h":14,"w":14,"o":64,"k":3,"stride":1,
 *    "pad":1,"threads":1,"gflops":...,"peak_gflops":...,"fraction":...,"ms":...}
 * and one line for the naive reference kernel at a small shape, for contrast.
 *
 * Usage: bench_conv [--threads T] [--quick] [--layer NAME] [--route R]
 *   --threads T  OpenMP threads for the kernels (oneDNN's GEMM threads inside
 *                the op); the peak is then measured on T threads too.
 *   --quick      fewer and shorter repetitions (a smoke run, noisier).
 *   --layer NAME only the layer NAME (1to64_28, 64to64_28, 64to64_14, 64to64_7, 64to64_3).
 *   --route R    auto (default: what the library picks by shape), im2col, direct or
 *                winograd (the last two: oneDNN primitives, where the channel counts
 *                allow; each line's "route" field says what ran).
 *
 * Every figure is the median of several timed samples, each long enough
 * (>= 20 ms, 5 ms with --quick) that the clock's resolution does not matter.
 * FLOPs counted are 2*n*o*oh*ow*c*kh*kw for each of the three passes (the
 * multiply-adds of the direct definition; padding taps are not subtracted), so
 * for oneDNN's routes the rate is "im2col-equivalent": its direct kernels skip
 * padding taps and Winograd does fewer multiplications, and both may show
 * fractions above 1.
 *
 * The peak loop must be compiled for the machine (-march=native, as the
 * project's CMake does by default); without AVX-512 it falls back to AVX2+FMA
 * and then to scalar code, and says which in the "isa" field. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AVX512F__) || defined(__FMA__)
#include <immintrin.h>
#endif

#include "metalearn/core.h"
#include "tensor/conv.h"

/* ---- FMA peak ----------------------------------------------------------------------
 * 16 independent accumulator chains of vector FMAs, all in registers (AVX-512
 * has 32 zmm registers; 16 accumulators + 2 operands leave room, and the
 * inner loop compiles to 16 vfmadd231ps zmm with no memory operands: check
 * with `objdump -d bench_conv | grep -A40 fma_kernel`). 16 chains cover the
 * 4-cycle FMA latency at up to 4 FMAs in flight per cycle, more than any
 * current core issues. The operands are loop-invariant but FMA is not
 * reassociable without -ffast-math (which we never use), so the compiler must
 * execute every one. Returns the flops performed. */
#if defined(__AVX512F__)
#define PEAK_ISA "avx512"
static double __attribute__((noinline)) fma_kernel(long iters, float *sink) {
    __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    __m512 c0 = _mm512_set1_ps(0.f), c1 = _mm512_set1_ps(1.f), c2 = _mm512_set1_ps(2.f),
           c3 = _mm512_set1_ps(3.f), c4 = _mm512_set1_ps(4.f), c5 = _mm512_set1_ps(5.f),
           c6 = _mm512_set1_ps(6.f), c7 = _mm512_set1_ps(7.f), c8 = _mm512_set1_ps(8.f),
           c9 = _mm512_set1_ps(9.f), c10 = _mm512_set1_ps(10.f), c11 = _mm512_set1_ps(11.f),
           c12 = _mm512_set1_ps(12.f), c13 = _mm512_set1_ps(13.f), c14 = _mm512_set1_ps(14.f),
           c15 = _mm512_set1_ps(15.f);
    for (long i = 0; i < iters; i++) {
        c0 = _mm512_fmadd_ps(c0, a, b), c1 = _mm512_fmadd_ps(c1, a, b);
        c2 = _mm512_fmadd_ps(c2, a, b), c3 = _mm512_fmadd_ps(c3, a, b);
        c4 = _mm512_fmadd_ps(c4, a, b), c5 = _mm512_fmadd_ps(c5, a, b);
        c6 = _mm512_fmadd_ps(c6, a, b), c7 = _mm512_fmadd_ps(c7, a, b);
        c8 = _mm512_fmadd_ps(c8, a, b), c9 = _mm512_fmadd_ps(c9, a, b);
        c10 = _mm512_fmadd_ps(c10, a, b), c11 = _mm512_fmadd_ps(c11, a, b);
        c12 = _mm512_fmadd_ps(c12, a, b), c13 = _mm512_fmadd_ps(c13, a, b);
        c14 = _mm512_fmadd_ps(c14, a, b), c15 = _mm512_fmadd_ps(c15, a, b);
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                             _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)),
                                       _mm512_add_ps(_mm512_add_ps(c12, c13), _mm512_add_ps(c14, c15))));
    *sink += _mm512_reduce_add_ps(s);
    return (double)iters * 16 * 16 * 2;
}
#elif defined(__FMA__)
#define PEAK_ISA "avx2"
static double __attribute__((noinline)) fma_kernel(long iters, float *sink) {
    __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    __m256 c[12];
    for (int j = 0; j < 12; j++) c[j] = _mm256_set1_ps((float)j);
    for (long i = 0; i < iters; i++)
        for (int j = 0; j < 12; j++) c[j] = _mm256_fmadd_ps(c[j], a, b);
    float t[8], acc = 0;
    for (int j = 0; j < 12; j++) {
        _mm256_storeu_ps(t, c[j]);
        for (int l = 0; l < 8; l++) acc += t[l];
    }
    *sink += acc;
    return (double)iters * 12 * 8 * 2;
}
#else
#define PEAK_ISA "scalar"
static double __attribute__((noinline)) fma_kernel(long iters, float *sink) {
    float c[12];
    for (int j = 0; j < 12; j++) c[j] = (float)j;
    for (long i = 0; i < iters; i++)
        for (int j = 0; j < 12; j++) c[j] = c[j] * 0.999999f + 1e-7f;
    float acc = 0;
    for (int j = 0; j < 12; j++) acc += c[j];
    *sink += acc;
    return (double)iters * 12 * 2;
}
#endif

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Peak on `threads` threads, each running the kernel on its own core: the best
 * of several samples (the peak is a ceiling, so the best sample is the figure;
 * the median would include frequency ramp-up and noise from the hypervisor). */
static double measure_peak(int threads, int quick) {
    float sink = 0;
    long iters = 10000000; /* 10M iters * 512 flops ~ 45 ms at 117 GFLOP/s */
    double best = 0;
    fma_kernel(iters, &sink); /* warm up: wake the core to full clock */
    for (int r = 0; r < (quick ? 3 : 7); r++) {
        double flops = 0, t0 = ml_now();
#pragma omp parallel num_threads(threads) reduction(+ : flops)
        {
            float local = 0;
            flops += fma_kernel(iters, &local);
#pragma omp atomic
            sink += local;
        }
        double g = flops / (ml_now() - t0) * 1e-9;
        if (g > best) best = g;
    }
    if (sink == 12345.f) fprintf(stderr, "(sink)\n"); /* keep the results alive */
    return best;
}

/* ---- conv timing ----------------------------------------------------------------- */

enum { PASS_FWD, PASS_BWD_DATA, PASS_BWD_WEIGHT, PASS_COUNT };
static const char *pass_name[PASS_COUNT] = {"forward", "backward_data", "backward_weight"};
static const char *route_name[] = {"im2col", "direct", "winograd"}; /* ML_CONV_ROUTE_* */

typedef struct bufs {
    float *x, *w, *y, *dy, *dx, *dw, *scratch;
} bufs;

static float *alloc_fill(int64_t n, ml_rng *r) {
    float *p = aligned_alloc(64, ((size_t)(n > 0 ? n : 1) * sizeof(float) + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "bench_conv: out of memory\n");
        exit(1);
    }
    for (int64_t i = 0; i < n; i++) p[i] = (float)(ml_rng_uniform(r) - 0.5);
    return p;
}

static void run_pass(int pass, const ml_conv_shape *s, bufs *b, int ref) {
    if (ref) {
        if (pass == PASS_FWD) ml__conv2d_forward_ref(s, b->x, b->w, b->y);
        else if (pass == PASS_BWD_DATA) ml__conv2d_backward_data_ref(s, b->dy, b->w, b->dx);
        else ml__conv2d_backward_weight_ref(s, b->x, b->dy, b->dw);
    } else {
        if (pass == PASS_FWD) ml__conv2d_forward(s, b->x, b->w, b->y, b->scratch);
        else if (pass == PASS_BWD_DATA) ml__conv2d_backward_data(s, b->dy, b->w, b->dx, b->scratch);
        else ml__conv2d_backward_weight(s, b->x, b->dy, b->dw, b->scratch);
    }
}

/* Median seconds per call of one pass. */
static double time_pass(int pass, const ml_conv_shape *s, bufs *b, int ref, int quick) {
    double min_sample = ref ? 0 : (quick ? 0.005 : 0.02);
    int samples = ref ? 1 : (quick ? 3 : 9);
    run_pass(pass, s, b, ref); /* warm up: caches, oneDNN's kernel dispatch */
    int reps = 1;
    for (;;) { /* find a repetition count that fills one sample */
        double t0 = ml_now();
        for (int i = 0; i < reps; i++) run_pass(pass, s, b, ref);
        double t = ml_now() - t0;
        if (t >= min_sample) break;
        reps *= 2;
    }
    double v[16];
    for (int k = 0; k < samples; k++) {
        double t0 = ml_now();
        for (int i = 0; i < reps; i++) run_pass(pass, s, b, ref);
        v[k] = (ml_now() - t0) / reps;
    }
    return median(v, samples);
}

static void bench_shape(const char *layer, int n, int c, int h, int w, int o, int threads, double peak,
                        int quick, int ref, ml_rng *r, int only_pass) {
    ml_conv_shape s;
    if (ml__conv_shape_init(&s, n, c, h, w, o, 3, 3, 1, 1)) return;
    bufs b;
    int64_t nx = (int64_t)n * c * h * w, nw = (int64_t)o * c * 9, ny = (int64_t)n * o * s.oh * s.ow;
    b.x = alloc_fill(nx, r), b.dx = alloc_fill(nx, r);
    b.w = alloc_fill(nw, r), b.dw = alloc_fill(nw, r);
    b.y = alloc_fill(ny, r), b.dy = alloc_fill(ny, r);
    b.scratch = alloc_fill(ml__conv2d_scratch_floats(&s), r);
    double flops = 2.0 * n * o * s.oh * s.ow * c * s.kh * s.kw;
    for (int p = 0; p < PASS_COUNT; p++) {
        if (only_pass >= 0 && p != only_pass) continue;
        double t = time_pass(p, &s, &b, ref, quick), g = flops / t * 1e-9;
        printf("{\"bench\":\"%s\",\"route\":\"%s\",\"layer\":\"%s\",\"pass\":\"%s\",\"n\":%d,\"c\":%d,\"h\":%d,\"w\":%d,"
               "\"o\":%d,\"k\":3,\"stride\":1,\"pad\":1,\"threads\":%d,\"ms\":%.4f,\"gflops\":%.2f,"
               "\"peak_gflops\":%.2f,\"fraction\":%.3f}\n",
               ref ? "conv2d_ref" : "conv2d", ref ? "ref" : route_name[ml__conv_route(&s)], layer, pass_name[p], n, c, h, w, o, threads, t * 1e3, g,
               peak, g / peak);
        fflush(stdout);
        /* Only the im2col route does every multiply-add counted; oneDNN's direct
         * kernels skip padding taps and Winograd multiplies less, so they may
         * legitimately exceed the FMA peak in these units. */
        if (!ref && ml__conv_route(&s) == ML_CONV_ROUTE_IM2COL && g > peak * 1.02)
            fprintf(stderr, "bench_conv: %s %s n=%d ran above the measured peak: the peak loop was "
                    "probably slowed by other load on this core; the fractions are not reliable\n",
                    layer, pass_name[p], n);
    }
    free(b.x), free(b.dx), free(b.w), free(b.dw), free(b.y), free(b.dy), free(b.scratch);
}

int main(int argc, char **argv) {
    int threads = 1, quick = 0;
    const char *only_layer = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            threads = atoi(argv[++i]);
            if (threads < 1) {
                fprintf(stderr, "bench_conv: --threads wants a positive integer\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--layer") && i + 1 < argc) {
            only_layer = argv[++i];
        } else if (!strcmp(argv[i], "--route") && i + 1 < argc) {
            const char *r = argv[++i];
            int route = !strcmp(r, "auto") ? -1 : -2;
            for (int k = 0; k < 3; k++)
                if (!strcmp(r, route_name[k])) route = k;
            if (route == -2) {
                fprintf(stderr, "bench_conv: --route wants auto, im2col, direct or winograd, not '%s'\n", r);
                return 2;
            }
            ml__conv_set_route(route);
        } else if (!strcmp(argv[i], "--quick")) {
            quick = 1;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: bench_conv [--threads T] [--quick] [--layer NAME] [--route auto|im2col|direct|winograd]\n");
            return 0;
        } else {
            fprintf(stderr, "bench_conv: unknown option '%s' (try --help)\n", argv[i]);
            return 2;
        }
    }
    /* oneDNN's GEMM takes its thread count from OpenMP; without this it would
     * use every core and the "single-core" figures would not be. */
    omp_set_num_threads(threads);
    ml_rng r;
    ml_rng_seed(&r, 1);

    double peak1 = measure_peak(1, quick);
    printf("{\"bench\":\"fma_peak\",\"isa\":\"%s\",\"threads\":1,\"gflops\":%.2f}\n", PEAK_ISA, peak1);
    double peak = peak1;
    if (threads > 1) {
        peak = measure_peak(threads, quick);
        printf("{\"bench\":\"fma_peak\",\"isa\":\"%s\",\"threads\":%d,\"gflops\":%.2f}\n", PEAK_ISA, threads,
               peak);
    }
    fflush(stdout);

    static const int batches[] = {5, 25, 80, 200};
    static const struct {
        const char *name;
        int c, h, o;
    } layers[] = {
        {"1to64_28", 1, 28, 64},  /* first block of the 4-block CNN */
        {"64to64_28", 64, 28, 64}, /* block 2 input (after one 2x2 pool: 14x14; shown for 28x28 too) */
        {"64to64_14", 64, 14, 64},
        {"64to64_7", 64, 7, 64},
        {"64to64_3", 64, 3, 64},
    };
    for (size_t l = 0; l < sizeof layers / sizeof layers[0]; l++)
        for (int bi = 0; bi < 4; bi++) {
            if (only_layer && strcmp(only_layer, layers[l].name)) continue;
            if (quick && (bi == 1 || bi == 3)) continue;
            bench_shape(layers[l].name, batches[bi], layers[l].c, layers[l].h, layers[l].h, layers[l].o,
                        threads, peak, quick, 0, &r, -1);
        }
    /* The naive twin, once, at a small shape: what the fast path buys. */
    if (!only_layer) bench_shape("64to64_7", 5, 64, 7, 7, 64, threads, peak, quick, 1, &r, PASS_FWD);
    return 0;
}
