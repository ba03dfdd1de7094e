/* Bernoulli multi-armed bandits (Duan et al. 2016, RL^2): K arms with means
 * ~ U[0, 1] per task; each step is one pull with a 0/1 reward. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rl/env_internal.h"

static ml_status bandit_init(ml_env *env, const char *arg, char *err, size_t errlen) {
    char *end = NULL;
    long k = arg ? strtol(arg, &end, 10) : 0;
    if (!arg || end == arg || *end || k < 2 || k > ML_ENV_TASK_MAX) {
        snprintf(err, errlen, "--env bandit:K: K must be an integer in [2, %d], got '%s'",
                 ML_ENV_TASK_MAX, arg ? arg : "");
        return ML_ERR_ARG;
    }
    env->k = (int)k;
    env->obs_dim = 1, env->act_dim = 1, env->n_actions = (int)k, env->state_dim = 0;
    env->horizon = 10, env->n_task_features = (int)k;
    return ML_OK;
}

static void bandit_sample(const ml_env *env, ml_rng *rng, ml_env_task *task) {
    memset(task, 0, sizeof *task);
    for (int a = 0; a < env->k; a++) task->p[a] = (float)ml_rng_uniform(rng);
}

static void bandit_reset(const ml_env *env, const ml_env_task *task, int n, float *state, float *obs) {
    (void)env, (void)task, (void)state;
    memset(obs, 0, sizeof(float) * (size_t)n);
}

static void bandit_step(const ml_env *env, const ml_env_task *task, int n, float *state,
                        const float *action, float *obs, float *reward, uint8_t *done, ml_rng *rng) {
    (void)state;
    for (int i = 0; i < n; i++) {
        int a = (int)action[i];
        if (a < 0) a = 0;
        if (a >= env->k) a = env->k - 1;
        reward[i] = ml_rng_uniform(rng) < (double)task->p[a] ? 1.0f : 0.0f;
        obs[i] = 0.0f;
        done[i] = 0;
    }
}

static void bandit_features(const ml_env *env, const ml_env_task *task, float *out) {
    for (int a = 0; a < env->k; a++) out[a] = task->p[a];
}

static double bandit_best(const ml_env *env, const ml_env_task *task) {
    double best = 0;
    for (int a = 0; a < env->k; a++)
        if (task->p[a] > best) best = task->p[a];
    return best;
}

const ml_env_kind ml__env_bandit = {
    "bandit", "bandit:K", "K Bernoulli arms with per-task means ~ U[0,1] (RL^2), one pull per step",
    bandit_init, bandit_sample, bandit_reset, bandit_step, bandit_features, bandit_best, NULL,
};
