/* The environment rows (one file each) and what they share. */
#ifndef ML_RL_ENV_INTERNAL_H
#define ML_RL_ENV_INTERNAL_H

#include <math.h>
#include <stdint.h>

#include "metalearn/env.h"

extern const ml_env_kind ml__env_nav2d;
extern const ml_env_kind ml__env_bandit;
extern const ml_env_kind ml__env_nav2d_rot;

static inline float ml__clampf(float x, float lo, float hi) { return x < lo ? lo : x > hi ? hi : x; }

/* Moves n points (state = position) by velocities v [n, 2]; reward = -distance
 * to goal; done when both coordinates are within 0.01 of it (pytorch-maml-rl). */
static inline void ml__nav_move(int n, float *pos, const float *v, float gx, float gy, float *obs,
                                float *reward, uint8_t *done) {
    for (int i = 0; i < n; i++) {
        pos[2 * i] += v[2 * i];
        pos[2 * i + 1] += v[2 * i + 1];
        float dx = pos[2 * i] - gx, dy = pos[2 * i + 1] - gy;
        obs[2 * i] = pos[2 * i];
        obs[2 * i + 1] = pos[2 * i + 1];
        reward[i] = -sqrtf(dx * dx + dy * dy);
        done[i] = fabsf(dx) < 0.01f && fabsf(dy) < 0.01f;
    }
}

#endif
