/* metalearn/env.h: reinforcement-learning environments for meta-RL.
 *
 * An environment family is one row of a table (src/rl/envs.c): a task is a
 * draw of the family's per-task parameters (a goal, arm means, a rotation),
 * and a step advances N independent trajectories of one task at once
 * (vectorised, arrays of N rows). Everything random goes through the
 * caller's ml_rng, so a seed fixes tasks, rewards and thus whole rollouts.
 *
 *   nav2d       the MAML paper's point robot: goal ~ U[-0.5, 0.5]^2, state =
 *               observation = position (starts at 0), action = velocity
 *               clipped to [-0.1, 0.1], reward = -distance to the goal; a
 *               trajectory ends when both |dx|, |dy| < 0.01 (as in the
 *               reference code) or at the horizon (100).
 *   bandit:K    K Bernoulli arms with means ~ U[0, 1] per task (Duan et al.'s
 *               RL^2 benchmark); one pull per step, observation constant 0,
 *               the horizon is the number of pulls n.
 *   nav2d-rot   per-task dynamics: the goal is fixed, the commanded velocity
 *               is rotated by a per-task angle ~ U[-pi, pi] (a miscalibrated
 *               motor); only the consequences of actions tell tasks apart.
 */
#ifndef METALEARN_ENV_H
#define METALEARN_ENV_H

#include <stddef.h>
#include <stdint.h>

#include "metalearn/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ML_ENV_TASK_MAX 64 /* per-task parameters (bandit:K allows K <= 64) */
#define ML_ENV_STATE_MAX 4 /* per-trajectory state floats */

typedef struct ml_env_task {
    float p[ML_ENV_TASK_MAX];
} ml_env_task;

typedef struct ml_env ml_env;

typedef struct ml_env_kind {
    const char *name;   /* "nav2d" */
    const char *syntax; /* "bandit:K" */
    const char *help;   /* one line */
    /* Fills the dimensions from the spec's argument (NULL when none). */
    ml_status (*init)(ml_env *env, const char *arg, char *err, size_t errlen);
    void (*sample_task)(const ml_env *env, ml_rng *rng, ml_env_task *task);
    /* n trajectories: state [n, state_dim], first observation [n, obs_dim]. */
    void (*reset)(const ml_env *env, const ml_env_task *task, int n, float *state, float *obs);
    /* One step of n trajectories. action [n, act_dim] (discrete: the arm
     * index as a float); writes the next observation, the reward and done
     * (1 when the trajectory ends with this step). rng is used by stochastic
     * rewards only. */
    void (*step)(const ml_env *env, const ml_env_task *task, int n, float *state,
                 const float *action, float *obs, float *reward, uint8_t *done, ml_rng *rng);
    /* The task's parameters an oracle policy sees next to the observation. */
    void (*task_features)(const ml_env *env, const ml_env_task *task, float *out);
    /* The task's best expected return per step (bandit: the best arm's mean;
     * NULL when not defined), for regret. */
    double (*best_mean)(const ml_env *env, const ml_env_task *task);
    /* The task's goal position (2D navigation; drawn on trajectory plots);
     * NULL when the task has none. */
    void (*goal)(const ml_env *env, const ml_env_task *task, float *xy);
} ml_env_kind;

struct ml_env {
    const ml_env_kind *kind;
    int k;              /* bandit arms; 0 otherwise */
    int obs_dim;        /* observation floats */
    int act_dim;        /* action floats (1 for discrete) */
    int n_actions;      /* discrete actions; 0 = continuous */
    int state_dim;      /* per-trajectory state floats */
    int horizon;        /* default episode length */
    int n_task_features; /* what an oracle sees of the task */
};

/* "nav2d", "bandit:5", "nav2d-rot": fills env or writes a one-line error
 * naming the spec and the known families. */
ml_status ml_env_parse(const char *spec, ml_env *env, char *err, size_t errlen);
int ml_env_kind_count(void);
const ml_env_kind *ml_env_kind_at(int i);
/* "nav2d, bandit:K, nav2d-rot" into buf. */
void ml_env_list(char *buf, size_t len);

/* Classic bandit strategies for comparison with meta-learned ones: the mean
 * over n_tasks tasks of a bandit:K family (drawn from seed) of the regret
 * after `pulls` pulls, sum_t (best mean - mean of the arm pulled), each task
 * played once by UCB1 (Auer et al. 2002) and by Thompson sampling with
 * Beta(1, 1) priors. ML_ERR_ARG unless env is a bandit. */
ml_status ml_bandit_regret_classic(const ml_env *env, int pulls, int n_tasks, uint64_t seed,
                                   double *ucb_regret, double *thompson_regret);

#ifdef __cplusplus
}
#endif
#endif
