/* 2D navigation whose dynamics change per task: the goal is fixed at
 * (0.3, 0.3), and the commanded velocity (clipped to [-0.1, 0.1] per axis) is
 * rotated by a per-task angle ~ U[-pi, pi]. Rewards and observations follow
 * the same rule in every task, so a policy can only tell tasks apart by what
 * its actions do: adaptation must identify the dynamics, not the goal. */
#include <math.h>
#include <string.h>

#include "rl/env_internal.h"

#define ROT_GOAL 0.3f
#define ROT_PI 3.14159265358979323846

static ml_status rot_init(ml_env *env, const char *arg, char *err, size_t errlen) {
    (void)arg, (void)err, (void)errlen;
    env->obs_dim = 2, env->act_dim = 2, env->n_actions = 0, env->state_dim = 2;
    env->horizon = 100, env->n_task_features = 2;
    return ML_OK;
}

static void rot_sample(const ml_env *env, ml_rng *rng, ml_env_task *task) {
    (void)env;
    memset(task, 0, sizeof *task);
    double angle = (2.0 * ml_rng_uniform(rng) - 1.0) * ROT_PI;
    task->p[0] = (float)cos(angle);
    task->p[1] = (float)sin(angle);
}

static void rot_reset(const ml_env *env, const ml_env_task *task, int n, float *state, float *obs) {
    (void)env, (void)task;
    memset(state, 0, sizeof(float) * 2 * (size_t)n);
    memset(obs, 0, sizeof(float) * 2 * (size_t)n);
}

static void rot_step(const ml_env *env, const ml_env_task *task, int n, float *state,
                     const float *action, float *obs, float *reward, uint8_t *done, ml_rng *rng) {
    (void)env, (void)rng;
    const float c = task->p[0], s = task->p[1];
    float v[2 * 64];
    for (int lo = 0; lo < n; lo += 64) {
        int m = n - lo < 64 ? n - lo : 64;
        for (int i = 0; i < m; i++) {
            float ax = ml__clampf(action[2 * (lo + i)], -0.1f, 0.1f);
            float ay = ml__clampf(action[2 * (lo + i) + 1], -0.1f, 0.1f);
            v[2 * i] = c * ax - s * ay;
            v[2 * i + 1] = s * ax + c * ay;
        }
        ml__nav_move(m, state + 2 * lo, v, ROT_GOAL, ROT_GOAL, obs + 2 * lo, reward + lo, done + lo);
    }
}

static void rot_features(const ml_env *env, const ml_env_task *task, float *out) {
    (void)env;
    out[0] = task->p[0], out[1] = task->p[1];
}

static void rot_goal(const ml_env *env, const ml_env_task *task, float *xy) {
    (void)env, (void)task;
    xy[0] = xy[1] = ROT_GOAL;
}

const ml_env_kind ml__env_nav2d_rot = {
    "nav2d-rot", "nav2d-rot",
    "2D point robot to a fixed goal, actions rotated by a per-task angle (per-task dynamics)",
    rot_init, rot_sample, rot_reset, rot_step, rot_features, NULL, rot_goal,
};
