/* kernels_par.h: a fixed static split of an index range over the calling
 * thread's OpenMP budget, for the elementwise, reduction and pooling kernels.
 *
 * Thread t of T gets [n*t/T, n*(t+1)/T) (boundaries rounded to multiples of
 * 16 so two threads do not write the same cache line). Kernels split only
 * independent outputs (elements, channels, planes): a reduction's summation
 * order never depends on the thread count, so results are bit-identical for
 * any number of threads.
 *
 * Below `min_par` items, with one thread (meta-learning workers run under
 * omp_set_num_threads(1)), or inside a parallel region, the kernel runs
 * directly on the calling thread with no OpenMP call at all: tiny tensors
 * pay nothing for this. */
#ifndef ML_TENSOR_KERNELS_PAR_H
#define ML_TENSOR_KERNELS_PAR_H

#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "core/dispatch.h"

/* Elements below which waking a second (passively waiting) thread costs more
 * than it saves: ~64k floats is ~20 us of single-thread elementwise work. */
#define ML_PAR_MIN_ELEMS ((int64_t)1 << 16)

typedef void (*ml__range_fn)(void *arg, int64_t lo, int64_t hi);

/* Runs fn(arg, lo, hi) over a partition of [0, n). `work` is the total cost
 * in elements (compared against ML_PAR_MIN_ELEMS); `align` rounds inner
 * boundaries (1 for coarse items such as channels). */
static inline void ml__parallel_range(int64_t n, int64_t work, int64_t align, ml__range_fn fn, void *arg) {
    if (n <= 0) return;
    if (work < ML_PAR_MIN_ELEMS || n < 2 || omp_in_parallel() || omp_get_max_threads() < 2) {
        fn(arg, 0, n);
        return;
    }
#pragma omp parallel
    {
        const int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
        int64_t lo = n * t / nt, hi = n * (t + 1) / nt;
        if (align > 1) {
            lo = t == 0 ? 0 : lo / align * align;
            hi = t == nt - 1 ? n : hi / align * align;
        }
        if (lo < hi) fn(arg, lo, hi);
    }
}

/* The small-tensor test at the call site, so that the serial call is a
 * direct call the compiler can inline (meta-learning's tiny ops take it). */
#define ML__PAR_RUN(n, work, align, fn, arg)                                   \
    do {                                                                       \
        if ((work) < ML_PAR_MIN_ELEMS) fn((arg), 0, (n));                      \
        else ml__parallel_range((n), (work), (align), (fn), (arg));            \
    } while (0)

/* sum of p[0..n) in double: eight interleaved partial sums (one vector of
 * doubles), combined pairwise, then the tail. A fixed order that does not
 * depend on the thread count; the serial chain of double adds it replaces
 * was latency-bound at ~4 cycles per element. */
typedef double ml_v8d __attribute__((vector_size(64)));
typedef float ml_v8f __attribute__((vector_size(32)));

ML_INLINE ml_v8d ml__load8d(const float *p) {
    ml_v8f f;
    memcpy(&f, p, sizeof f);
    return __builtin_convertvector(f, ml_v8d);
}

/* Sixteen floats as one vector (one zmm register with AVX-512, split by the
 * compiler otherwise), loaded without alignment requirements. */
typedef float ml_v16f __attribute__((vector_size(64)));

ML_INLINE ml_v16f ml__load16f(const float *p) {
    ml_v16f v;
    memcpy(&v, p, sizeof v);
    return v;
}

ML_INLINE double ml__hsum8d(ml_v8d a) {
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

ML_INLINE double ml__sum_row(const float *p, int64_t n) {
    ml_v8d acc = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) acc += ml__load8d(p + i);
    double s = ml__hsum8d(acc);
    for (; i < n; i++) s += p[i];
    return s;
}

#endif
