/* bn_pool_dx_avx512.c: the second pass of the pooled batch-norm backward
 * (ops_nn.c's bn_relu_pool_dx_range) on one NCHW plane in one sweep (issue 17).
 *
 * Why: the scalar pass writes every element's share of the means, then adds
 * each window's gated gradient at its argmax with one scalar read-modify-write
 * per window; on the CNN's first block (64 planes of 28x28 per image) that
 * took ~8% of a ProtoNet step. Here 16 windows (two rows of 32 elements) at a
 * time: the shares of the 4 x 32 elements, and the gated gradient of each
 * window spread to its two columns and added where the window's code points.
 *
 * Bits: the same two roundings per element as the scalar pass (share =
 * -coef * (mg + (x - m) * is * mgh), then + (y > 0 ? coef * g : 0) at the
 * argmax; every element lies in at most one window), no contraction (ISO C,
 * intrinsics). test_conv_blk16 compares the two bitwise (ml__bn_pool_dx_scalar). */
#include <stdint.h>
#include <string.h>

#include "core/dispatch.h"
#include "tensor/internal.h"

int ml__bn_pool_dx_scalar = 0;

#if defined(ML_HAVE_AVX512_PATH)
#include <immintrin.h>

ML_TARGET_AVX512 void ml__bn_pool_dx_plane_avx512(int64_t h, int64_t w, const float *x, const float *y,
                                                  const float *g, const uint8_t *code, float m, float is,
                                                  float coef, float mg, float mgh, float *q) {
    const int64_t oh = h / 2, ow = w / 2;
    const __m512 vnc = _mm512_set1_ps(-coef), vmg = _mm512_set1_ps(mg), vm = _mm512_set1_ps(m),
                 vis = _mm512_set1_ps(is), vmgh = _mm512_set1_ps(mgh), vcoef = _mm512_set1_ps(coef),
                 zero = _mm512_setzero_ps();
    /* column j of a 32-column pair of vectors belongs to window j / 2, at window column j % 2 */
    const __m512i lo = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    const __m512i hi = _mm512_add_epi32(lo, _mm512_set1_epi32(8));
    const __m512i par = _mm512_setr_epi32(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1);
#define SHARE(v) _mm512_mul_ps(vnc, _mm512_add_ps(vmg, _mm512_mul_ps(_mm512_mul_ps(_mm512_sub_ps(v, vm), vis), vmgh)))
    for (int64_t r = 0; r < oh; r++)
        for (int64_t c0 = 0; c0 < ow; c0 += 16) {
            const int64_t nw = ow - c0 < 16 ? ow - c0 : 16, k = r * ow + c0;
            const __mmask16 wm = (__mmask16)((1u << nw) - 1);
            uint8_t cb[16] = {0};
            memcpy(cb, code + k, (size_t)nw);
            const __m512i cd = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)cb));
            const __mmask16 gate = _mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(wm, y + k), zero, _CMP_GT_OQ) & wm;
            const __m512 add = _mm512_maskz_mul_ps(gate, vcoef, _mm512_maskz_loadu_ps(wm, g + k));
            for (int half = 0; half < 2; half++) {
                const int64_t cols = 2 * nw - 16 * half; /* columns of this half in windows */
                if (cols <= 0) break;
                const __mmask16 cm = (__mmask16)(cols >= 16 ? 0xFFFF : (1u << cols) - 1);
                const __m512i idx = half ? hi : lo;
                const __m512i ccode = _mm512_permutexvar_epi32(idx, cd);
                const __m512 cadd = _mm512_permutexvar_ps(idx, add);
                for (int dr = 0; dr < 2; dr++) {
                    const int64_t at = (2 * r + dr) * w + 2 * c0 + 16 * half;
                    const __m512 s = SHARE(_mm512_maskz_loadu_ps(cm, x + at));
                    const __mmask16 here =
                        _mm512_cmpeq_epi32_mask(ccode, _mm512_add_epi32(par, _mm512_set1_epi32(2 * dr))) & cm;
                    _mm512_mask_storeu_ps(q + at, cm, _mm512_mask_add_ps(s, here, s, cadd));
                }
            }
        }
#undef SHARE
    /* elements in no window: the last column of an odd width, the last row of an odd height */
    for (int64_t r = 0; r < 2 * oh; r++)
        for (int64_t cc = 2 * ow; cc < w; cc++) q[r * w + cc] = -coef * (mg + (x[r * w + cc] - m) * is * mgh);
    for (int64_t e = 2 * oh * w; e < h * w; e++) q[e] = -coef * (mg + (x[e] - m) * is * mgh);
}
#endif
