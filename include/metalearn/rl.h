/* metalearn/rl.h: meta-reinforcement learning (MAML-RL, Finn et al. 2017).
 *
 * Pieces, each usable alone (tests use them so):
 * - ml_policy: an MLP policy over one flat parameter buffer; Gaussian with a
 *   learned state-independent log-std for continuous actions, categorical
 *   (softmax over logits) for discrete ones. Hidden layers use tanh.
 * - ml_episodes: n trajectories of one task, time-major ([t][i] rows), with
 *   a mask that ends each trajectory at its done step.
 * - ml_rl_sample (rollouts of a policy in an ml_env), ml_rl_advantages (the
 *   linear feature baseline of Duan et al. 2016 fitted per task, GAE,
 *   normalisation), ml_rl_pg_loss (REINFORCE with baseline).
 * - ml_rl: the meta-learner. Per task: sample with theta, one or more
 *   policy-gradient steps (recorded with create_graph for exact second-order
 *   MAML), fresh trajectories with the adapted policy, the surrogate loss on
 *   those. Outer step: TRPO (conjugate gradient on exact Hessian-vector
 *   products of the KL through the adaptation, backtracking line search on
 *   surrogate and KL) or Adam. Tasks run on a worker pool; per-task results
 *   are summed in task order and every task draws from its own generator,
 *   so results are the same for any thread count.
 * Defaults are pytorch-maml-rl's 2d-navigation config. */
#ifndef METALEARN_RL_H
#define METALEARN_RL_H

#include <stdint.h>

#include "metalearn/env.h"
#include "metalearn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ML_POLICY_MAX_HIDDEN 4
#define ML_POLICY_MAX_TENSORS (2 * (ML_POLICY_MAX_HIDDEN + 1) + 1)

typedef struct ml_policy {
    int in_dim, out_dim; /* out: action floats (Gaussian) or actions (categorical) */
    int discrete;
    int n_layers;                            /* linear layers, the head included */
    int width[ML_POLICY_MAX_HIDDEN + 2];     /* width[0] = in_dim ... width[n_layers] = out_dim */
    int n_tensors;                           /* W, b per layer, then log_std (Gaussian) */
    int64_t offset[ML_POLICY_MAX_TENSORS], numel[ML_POLICY_MAX_TENSORS];
    int64_t n_params;
} ml_policy;

ml_status ml_policy_init(ml_policy *p, int in_dim, int out_dim, int discrete, int n_hidden,
                         const int *hidden);
/* Xavier-uniform weights, zero biases, log-std log(init_std) (pytorch-maml-rl's init). */
void ml_policy_init_params(const ml_policy *p, float *theta, double init_std, ml_rng *rng);
/* Leaf tensors viewing theta (ml_grad can differentiate with respect to them). */
ml_status ml_policy_wrap(ml_ctx *ctx, const ml_policy *p, float *theta, ml_tensor **out);
/* Distribution parameters for inputs x [N, in_dim]: the Gaussian's mean or the logits [N, out]. */
ml_tensor *ml_policy_head(ml_ctx *ctx, const ml_policy *p, ml_tensor *const *params, ml_tensor *x);
/* log pi(a | x) [N] given the head; actions [N, act] (Gaussian) or indices as floats [N]. */
ml_tensor *ml_policy_log_prob(ml_ctx *ctx, const ml_policy *p, ml_tensor *const *params,
                              ml_tensor *head, const float *actions);
/* KL(pi_new || pi_old) [N]: new from (params, head), old from fixed values
 * old_head [N, out] and (Gaussian) old_log_std [out]. */
ml_tensor *ml_policy_kl(ml_ctx *ctx, const ml_policy *p, ml_tensor *const *params, ml_tensor *head,
                        const float *old_head, const float *old_log_std);

typedef struct ml_episodes {
    int horizon, n;   /* steps, trajectories */
    int in_dim;       /* policy input floats per row (observation, then task features for an oracle) */
    int obs_dim;      /* the observation part (what the baseline sees) */
    int act_dim;
    float *x;         /* [H * n, in_dim] inputs at step t (row t * n + i) */
    float *act;       /* [H * n, act_dim] actions as sampled (before the env clips them) */
    float *rew;       /* [H * n] */
    float *mask;      /* [H * n] 1 up to and including a trajectory's done step */
    float *adv;       /* [H * n] advantages (ml_rl_advantages) */
    float *weight;    /* [H * n] mask / (length_i * n): the weighted mean of pytorch-maml-rl */
    float *last_obs;  /* [n, obs_dim] observation after the last step (trajectory plots) */
    int *length;      /* [n] */
} ml_episodes;

ml_status ml_episodes_alloc(ml_ctx *ctx, ml_episodes *ep, int horizon, int n, int in_dim,
                            int obs_dim, int act_dim);
/* Rolls out n = ep->n trajectories of `task` with the policy at params; an
 * oracle (oracle != 0) also sees the task's features. Fills x, act, rew,
 * mask, weight, length. Sampling runs unrecorded. */
ml_status ml_rl_sample(ml_ctx *ctx, const ml_env *env, const ml_env_task *task, const ml_policy *p,
                       ml_tensor *const *params, int oracle, ml_rng *rng, ml_episodes *ep);
/* Mean over trajectories of the undiscounted sum of rewards. */
double ml_episodes_mean_return(const ml_episodes *ep);
/* Discounted returns -> linear feature baseline fitted on them (ridge, as
 * Duan et al.) -> GAE(gamma, lambda) -> (normalize) zero mean, unit std. */
ml_status ml_rl_advantages(ml_episodes *ep, double gamma, double lambda, int normalize);
/* -sum_t,i weight * adv * log pi(a|x): REINFORCE with baseline, a recorded scalar. */
ml_tensor *ml_rl_pg_loss(ml_ctx *ctx, const ml_policy *p, ml_tensor *const *params,
                         const ml_episodes *ep);
/* params - lr * d pg_loss / d params (recorded when create_graph, the exact
 * second-order path), `steps` times on the same episodes; out[] new tensors. */
ml_status ml_rl_adapt(ml_ctx *ctx, const ml_policy *p, ml_tensor *const *params,
                      const ml_episodes *ep, float lr, int steps, int create_graph,
                      ml_tensor **out);

/* Conjugate gradient for A x = b with A given as a product (TRPO's solver). */
typedef void (*ml_matvec_fn)(const float *v, float *out, void *user);
void ml_conjugate_gradient(ml_matvec_fn av, void *user, const float *b, int64_t n, int iters,
                           double residual_tol, float *x, float *scratch /* 3 n */);

/* ML_RL_RANDOM: the untrained initialisation (the random-policy
 * baseline, adapted like the others at evaluation); ml_rl_step refuses it. */
typedef enum { ML_RL_MAML, ML_RL_FOMAML, ML_RL_PRETRAIN, ML_RL_ORACLE, ML_RL_RANDOM } ml_rl_algo;
typedef enum { ML_RL_TRPO, ML_RL_ADAM } ml_rl_outer;

typedef struct ml_rl_config {
    const char *env;     /* "nav2d" */
    ml_rl_algo algo;
    ml_rl_outer outer;
    int n_hidden, hidden[ML_POLICY_MAX_HIDDEN]; /* 2 x 64 */
    double init_std;     /* 1 */
    int rollouts;        /* trajectories per task and phase: 20 */
    int horizon;         /* 0: the environment's */
    int meta_batch;      /* 20 */
    int inner_steps;     /* 1 */
    double inner_lr;     /* 0.1 */
    double gamma, gae_lambda; /* 0.99, 1 */
    double max_kl, cg_damping; /* 0.01, 1e-5 */
    int cg_iters, ls_steps;    /* 10, 15 */
    double ls_ratio;           /* 0.8 */
    double outer_lr;           /* Adam: 0.01 */
    int threads;
    uint64_t seed;
} ml_rl_config;

ml_rl_config ml_rl_config_default(void);
const char *ml_rl_algo_name(ml_rl_algo a);
int ml_rl_algo_parse(const char *name, ml_rl_algo *out);

typedef struct ml_rl ml_rl;

typedef struct ml_rl_stats {
    int64_t iter;
    double train_return, valid_return; /* before / after adaptation, mean over the meta-batch */
    double loss_before, loss_after, kl_after, step_size;
} ml_rl_stats;

ml_status ml_rl_create(const ml_rl_config *cfg, ml_rl **out, char *err, size_t errlen);
void ml_rl_destroy(ml_rl *rl);
const ml_policy *ml_rl_policy(const ml_rl *rl);
const ml_env *ml_rl_env(const ml_rl *rl);
float *ml_rl_params(ml_rl *rl); /* the meta-parameters, ml_rl_n_params floats */
int64_t ml_rl_n_params(const ml_rl *rl);
int64_t ml_rl_iter(const ml_rl *rl);
/* One outer iteration (ML_ERR_STATE for ML_RL_RANDOM: nothing to train). */
ml_status ml_rl_step(ml_rl *rl, ml_rl_stats *stats);
/* Returns before and after 1..max_steps adaptation steps on n_tasks test
 * tasks drawn from eval_seed (the same tasks for every run): returns
 * [n_tasks * (max_steps + 1)], task-major. Each step samples fresh
 * trajectories with the current policy and takes one policy-gradient step. */
ml_status ml_rl_evaluate(ml_rl *rl, int n_tasks, int max_steps, uint64_t eval_seed, double *returns);
/* The same with the adaptation steps at rate lr instead of the inner rate
 * (fine-tuning a baseline at its best rate; the draw of tasks and
 * trajectories is the same for every lr). */
ml_status ml_rl_evaluate_lr(ml_rl *rl, int n_tasks, int max_steps, uint64_t eval_seed, double lr, double *returns);
/* The same with the first step at lr_first and every later one at lr_later
 * (the MAML authors' evaluation halves the rate after the first step). */
ml_status ml_rl_evaluate_steps(ml_rl *rl, int n_tasks, int max_steps, uint64_t eval_seed, double lr_first,
                               double lr_later, double *returns);
/* Test task `index` of ml_rl_evaluate's draw from eval_seed. */
void ml_rl_eval_task(const ml_rl *rl, int index, uint64_t eval_seed, ml_env_task *task);
/* Trajectories of one test task before and after `steps` adaptation steps
 * (for pictures): positions [(steps + 1) * n_traj * (horizon + 1) * obs_dim]. */
ml_status ml_rl_trajectories(ml_rl *rl, int task_index, uint64_t eval_seed, int steps, int n_traj,
                             float *positions, ml_env_task *task);
/* The same adapting as ml_rl_evaluate_steps does: the first step at
 * lr_first, the later ones at lr_later (a run's evaluation schedule). */
ml_status ml_rl_trajectories_steps(ml_rl *rl, int task_index, uint64_t eval_seed, int steps, int n_traj,
                                   double lr_first, double lr_later, float *positions, ml_env_task *task);
/* Checkpoint: the parameters, the Adam state and the iteration (safetensors). */
ml_status ml_rl_save(ml_rl *rl, const char *path);
ml_status ml_rl_load(ml_rl *rl, const char *path);

#ifdef __cplusplus
}
#endif
#endif
