/* gemm.c: row-major SGEMM: oneDNN for large products, plain vectorisable
 * loops for small ones, and a naive twin for tests.
 *
 * Why two fast paths: meta-learning on small models (a 1-40-40-1 MLP on 10
 * points) multiplies matrices of a few thousand FLOPs, where a dnnl_sgemm
 * call costs more than the arithmetic (measured: over half of a sinusoid
 * MAML iteration inside oneDNN) and mallocs a workspace on every call. */
#include <oneapi/dnnl/dnnl.h>
#include <string.h>

#include "tensor/conv.h"
#include "tensor/kernels_par.h"

/* Products up to this many multiply-adds take the loops (measured: below
 * it they beat a dnnl_sgemm call; above it, at sinusoid-MAML sizes, the two
 * are within a few per cent and oneDNN wins as sizes grow). */
#define ML_SMALL_GEMM_MACS 2048

/* Small products: op(A) and op(B) are packed (zero-padded) into thread-local
 * buffers, then a 4-row x 16-column register block runs over k with
 * independent accumulators, so neither the layout nor the FMA latency
 * limits it. GCC vector extensions keep it portable (AVX-512 or split). */
#define ML_SMALL_PACK 65536
static _Thread_local float packed_a[ML_SMALL_PACK], packed_b[ML_SMALL_PACK];

static int small_fits(int64_t m, int64_t n, int64_t k) {
    int64_t n16 = (n + 15) / 16 * 16, m4 = (m + 3) / 4 * 4;
    return m * n * k <= ML_SMALL_GEMM_MACS && k * n16 <= ML_SMALL_PACK && m4 * k <= ML_SMALL_PACK;
}

ML_KERNEL static void sgemm_small(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                        int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    int64_t n16 = (n + 15) / 16 * 16, m4 = (m + 3) / 4 * 4;
    for (int64_t i = 0; i < m4; i++) /* packed_a: op(A) as [m4, k] */
        for (int64_t p = 0; p < k; p++)
            packed_a[i * k + p] = i < m ? (ta ? a[p * lda + i] : a[i * lda + p]) : 0.f;
    for (int64_t p = 0; p < k; p++) /* packed_b: op(B) as [k, n16] */
        for (int64_t j = 0; j < n16; j++)
            packed_b[p * n16 + j] = j < n ? (tb ? b[j * ldb + p] : b[p * ldb + j]) : 0.f;
    for (int64_t i0 = 0; i0 < m; i0 += 4) {
        const float *a0 = packed_a + i0 * k;
        for (int64_t j0 = 0; j0 < n; j0 += 16) {
            ml_v16f c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0};
            for (int64_t p = 0; p < k; p++) {
                ml_v16f bv = ml__load16f(packed_b + p * n16 + j0);
                c0 += a0[p] * bv;
                c1 += a0[k + p] * bv;
                c2 += a0[2 * k + p] * bv;
                c3 += a0[3 * k + p] * bv;
            }
            ml_v16f rows[4] = {c0, c1, c2, c3};
            int64_t cols = n - j0 < 16 ? n - j0 : 16;
            for (int r = 0; r < 4 && i0 + r < m; r++) {
                float *ci = c + (i0 + r) * ldc + j0;
                for (int64_t j = 0; j < cols; j++)
                    ci[j] = beta == 0.f ? alpha * rows[r][j] : alpha * rows[r][j] + beta * ci[j];
            }
        }
    }
}

void ml__sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
               int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    if (m == 0 || n == 0) return;
    if (k == 0) { /* oneDNN wants k >= 1; C = beta * C */
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0.f ? 0.f : beta * c[i * ldc + j];
        return;
    }
    if (small_fits(m, n, k)) {
        sgemm_small(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void ml__sgemm_ref(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                   int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double acc = 0;
            for (int64_t p = 0; p < k; p++) {
                float av = ta ? a[p * lda + i] : a[i * lda + p];
                float bv = tb ? b[j * ldb + p] : b[p * ldb + j];
                acc += (double)av * bv;
            }
            float prev = beta == 0.f ? 0.f : beta * c[i * ldc + j];
            c[i * ldc + j] = (float)(alpha * acc) + prev;
        }
}
