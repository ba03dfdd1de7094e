/* core/rng_inline.h: the library's RNG step (xoshiro256**) as an inline
 * function, for loops that draw many numbers (the sinusoid's points: ~550
 * per meta-batch, drawn serially before the tasks run, where a call per
 * number was a visible part of an iteration). ml_rng_u64 and
 * ml_rng_uniform (core.c) are these, so the stream is the same. */
#ifndef ML_CORE_RNG_INLINE_H
#define ML_CORE_RNG_INLINE_H

#include "metalearn/core.h"

static inline uint64_t ml__rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t ml__rng_next(ml_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = ml__rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = ml__rotl64(s[3], 45);
    return result;
}

/* Uniform in [0, 1) with 53 random bits. */
static inline double ml__rng_uniform_next(ml_rng *r) { return (double)(ml__rng_next(r) >> 11) * 0x1.0p-53; }

#endif
