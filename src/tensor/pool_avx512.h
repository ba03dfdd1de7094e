/* pool_avx512.h: the 2x2 max-pool window step shared by the whole-plane
 * AVX-512 kernels (ops_nn.c's plain planes, conv_bn_blk16.c's nChw16c
 * blocks), so that both keep the row path's argmax rule. Include after
 * <immintrin.h>, under ML_HAVE_AVX512_PATH. */
#ifndef ML_TENSOR_POOL_AVX512_H
#define ML_TENSOR_POOL_AVX512_H

#include "core/dispatch.h"

/* Sixteen windows at once: *best holds the window's first value and *bx the
 * x under it; values 1-3 (vk, with xk under them) win only when strictly
 * greater than the best so far and that best is not NaN, as the scalar pool.
 * Returns each lane's winner code (0-3). */
ML_TARGET_AVX512 static inline __m512i ml__pool4_argmax_avx512(__m512 *best, __m512 *bx, __m512 v1, __m512 v2,
                                                               __m512 v3, __m512 x1, __m512 x2, __m512 x3) {
    __m512i cd = _mm512_setzero_si512();
    __mmask16 t;
    t = _mm512_cmp_ps_mask(v1, *best, _CMP_NLE_UQ) & _mm512_cmp_ps_mask(*best, *best, _CMP_ORD_Q);
    *best = _mm512_mask_mov_ps(*best, t, v1), *bx = _mm512_mask_mov_ps(*bx, t, x1);
    cd = _mm512_mask_mov_epi32(cd, t, _mm512_set1_epi32(1));
    t = _mm512_cmp_ps_mask(v2, *best, _CMP_NLE_UQ) & _mm512_cmp_ps_mask(*best, *best, _CMP_ORD_Q);
    *best = _mm512_mask_mov_ps(*best, t, v2), *bx = _mm512_mask_mov_ps(*bx, t, x2);
    cd = _mm512_mask_mov_epi32(cd, t, _mm512_set1_epi32(2));
    t = _mm512_cmp_ps_mask(v3, *best, _CMP_NLE_UQ) & _mm512_cmp_ps_mask(*best, *best, _CMP_ORD_Q);
    *best = _mm512_mask_mov_ps(*best, t, v3), *bx = _mm512_mask_mov_ps(*bx, t, x3);
    return _mm512_mask_mov_epi32(cd, t, _mm512_set1_epi32(3));
}

/* The maxima alone, by the same compares (a forward with no backward to
 * follow needs neither the argmax nor x under it): the same bits in *best. */
ML_TARGET_AVX512 static inline void ml__pool4_max_avx512(__m512 *best, __m512 v1, __m512 v2, __m512 v3) {
    __mmask16 t;
    t = _mm512_cmp_ps_mask(v1, *best, _CMP_NLE_UQ) & _mm512_cmp_ps_mask(*best, *best, _CMP_ORD_Q);
    *best = _mm512_mask_mov_ps(*best, t, v1);
    t = _mm512_cmp_ps_mask(v2, *best, _CMP_NLE_UQ) & _mm512_cmp_ps_mask(*best, *best, _CMP_ORD_Q);
    *best = _mm512_mask_mov_ps(*best, t, v2);
    t = _mm512_cmp_ps_mask(v3, *best, _CMP_NLE_UQ) & _mm512_cmp_ps_mask(*best, *best, _CMP_ORD_Q);
    *best = _mm512_mask_mov_ps(*best, t, v3);
}

#endif
