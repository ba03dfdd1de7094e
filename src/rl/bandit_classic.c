/* UCB1 and Thompson sampling on the bandit:K family: the reference points a
 * meta-learned bandit strategy is compared with (regret, not return). */
#include <math.h>
#include <string.h>

#include "rl/env_internal.h"

/* Gamma(a, 1) for a >= 1 (Marsaglia-Tsang); Beta(a, b) = X / (X + Y). */
static double gamma_draw(ml_rng *r, double a) {
    double d = a - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x = ml_rng_normal(r), v = 1.0 + c * x;
        if (v <= 0) continue;
        v = v * v * v;
        double u = ml_rng_uniform(r);
        if (u < 1.0 - 0.0331 * x * x * x * x || log(u) < 0.5 * x * x + d * (1.0 - v + log(v))) return d * v;
    }
}

static double beta_draw(ml_rng *r, double a, double b) {
    double x = gamma_draw(r, a), y = gamma_draw(r, b);
    return x / (x + y);
}

ml_status ml_bandit_regret_classic(const ml_env *env, int pulls, int n_tasks, uint64_t seed,
                                   double *ucb_regret, double *thompson_regret) {
    if (!env || env->kind != &ml__env_bandit || pulls < 1 || n_tasks < 1) return ML_ERR_ARG;
    const int K = env->k;
    ml_rng rng;
    ml_rng_seed(&rng, seed);
    double ucb_total = 0, ts_total = 0;
    for (int task_i = 0; task_i < n_tasks; task_i++) {
        ml_env_task task;
        env->kind->sample_task(env, &rng, &task);
        double best = env->kind->best_mean(env, &task);
        for (int strategy = 0; strategy < 2; strategy++) {
            double n[ML_ENV_TASK_MAX] = {0}, s[ML_ENV_TASK_MAX] = {0}, regret = 0;
            for (int t = 0; t < pulls; t++) {
                int arm = 0;
                double top = -1;
                for (int a = 0; a < K; a++) {
                    double score;
                    if (strategy == 0) /* UCB1: each arm once, then mean + sqrt(2 ln t / n) */
                        score = n[a] == 0 ? 1e9 - a : s[a] / n[a] + sqrt(2.0 * log((double)t) / n[a]);
                    else
                        score = beta_draw(&rng, 1 + s[a], 1 + n[a] - s[a]);
                    if (score > top) top = score, arm = a;
                }
                float act = (float)arm, obs, rew;
                uint8_t done;
                env->kind->step(env, &task, 1, NULL, &act, &obs, &rew, &done, &rng);
                n[arm] += 1, s[arm] += rew;
                regret += best - task.p[arm];
            }
            if (strategy == 0) ucb_total += regret;
            else ts_total += regret;
        }
    }
    if (ucb_regret) *ucb_regret = ucb_total / n_tasks;
    if (thompson_regret) *thompson_regret = ts_total / n_tasks;
    return ML_OK;
}
