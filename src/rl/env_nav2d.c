/* 2D navigation (Finn et al. 2017, section 5.3): a point robot moves to a goal
 * drawn per task from U[-0.5, 0.5]^2. */
#include <math.h>
#include <string.h>

#include "rl/env_internal.h"

static ml_status nav2d_init(ml_env *env, const char *arg, char *err, size_t errlen) {
    (void)arg, (void)err, (void)errlen;
    env->obs_dim = 2, env->act_dim = 2, env->n_actions = 0, env->state_dim = 2;
    env->horizon = 100, env->n_task_features = 2;
    return ML_OK;
}

static void nav2d_sample(const ml_env *env, ml_rng *rng, ml_env_task *task) {
    (void)env;
    memset(task, 0, sizeof *task);
    task->p[0] = (float)(ml_rng_uniform(rng) - 0.5);
    task->p[1] = (float)(ml_rng_uniform(rng) - 0.5);
}

static void nav2d_reset(const ml_env *env, const ml_env_task *task, int n, float *state, float *obs) {
    (void)env, (void)task;
    memset(state, 0, sizeof(float) * 2 * (size_t)n);
    memset(obs, 0, sizeof(float) * 2 * (size_t)n);
}

static void nav2d_step(const ml_env *env, const ml_env_task *task, int n, float *state,
                       const float *action, float *obs, float *reward, uint8_t *done, ml_rng *rng) {
    (void)env, (void)rng;
    float v[2 * 64];
    for (int lo = 0; lo < n; lo += 64) { /* clip in chunks: no heap, any n */
        int m = n - lo < 64 ? n - lo : 64;
        for (int i = 0; i < 2 * m; i++) v[i] = ml__clampf(action[2 * lo + i], -0.1f, 0.1f);
        ml__nav_move(m, state + 2 * lo, v, task->p[0], task->p[1], obs + 2 * lo, reward + lo, done + lo);
    }
}

static void nav2d_features(const ml_env *env, const ml_env_task *task, float *out) {
    (void)env;
    out[0] = task->p[0], out[1] = task->p[1];
}

static void nav2d_goal(const ml_env *env, const ml_env_task *task, float *xy) {
    (void)env;
    xy[0] = task->p[0], xy[1] = task->p[1];
}

const ml_env_kind ml__env_nav2d = {
    "nav2d", "nav2d", "2D point robot to a per-task goal in [-0.5,0.5]^2 (MAML paper), horizon 100",
    nav2d_init, nav2d_sample, nav2d_reset, nav2d_step, nav2d_features, NULL, nav2d_goal,
};
