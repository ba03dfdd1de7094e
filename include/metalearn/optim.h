/* metalearn/optim.h: optimizers, learning-rate schedules and gradient clipping
 * over flat float32 buffers.
 *
 * Parameters of a model live in one flat buffer of n floats (llm.c style);
 * gradients and every optimizer state buffer mirror that layout, so a step is
 * a handful of flat loops and a checkpoint is one write per buffer. This
 * module knows nothing about tensors or tapes: the meta-learners hand it raw
 * buffers.
 *
 * The update rules are those of torch.optim in PyTorch 1.13 (single-tensor
 * path, maximize=False, amsgrad=False), including where float32 rounds and
 * which multiply-adds are fused, so trajectories agree with PyTorch's CPU
 * results to the bit (tests/test_optim.c, tests/optim_reference.py). The learning
 * rate is an argument of ml_optim_step rather than part of the state, so a
 * schedule (or a meta-learned rate) stays outside the optimizer.
 *
 * Resuming bit-exactly needs the state buffers (see ml_optim_state) and the
 * step counter `step`; nothing else is hidden. */
#ifndef METALEARN_OPTIM_H
#define METALEARN_OPTIM_H

#include <stdint.h>

#include "metalearn/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- optimizers ---------------------------------------------------------- */

typedef enum ml_optim_kind {
    ML_OPTIM_SGD,
    ML_OPTIM_ADAGRAD,
    ML_OPTIM_RMSPROP,
    ML_OPTIM_ADAM,
    ML_OPTIM_ADAMW,
    ML_OPTIM_COUNT
} ml_optim_kind;

/* "sgd", "adagrad", "rmsprop", "adam", "adamw"; "?" for an invalid kind. */
const char *ml_optim_kind_name(ml_optim_kind kind);
/* 0 and *out set on a known name (exact, lower case), -1 otherwise. */
int ml_optim_kind_parse(const char *name, ml_optim_kind *out);

/* Fields a kind does not use are ignored. Defaults are PyTorch's.
 * Hyperparameters are double because PyTorch keeps them as Python floats:
 * bias corrections such as 1 - beta2^t lose five digits when beta2 is first
 * rounded to float. Element-wise they are rounded to float as torch does. */
typedef struct ml_optim_config {
    ml_optim_kind kind;
    double lr;           /* default rate for callers; ml_optim_step takes its own */
    double momentum;     /* SGD, RMSprop */
    double dampening;    /* SGD */
    int nesterov;        /* SGD; needs momentum > 0 and dampening == 0 */
    double weight_decay; /* L2 added to the gradient; decoupled for AdamW */
    double beta1, beta2; /* Adam, AdamW */
    double eps;          /* Adagrad, RMSprop, Adam, AdamW */
    double alpha;        /* RMSprop smoothing constant */
    int centered;        /* RMSprop: normalise by the variance estimate */
    double lr_decay;     /* Adagrad: lr / (1 + (t - 1) * lr_decay) */
    double initial_accumulator_value; /* Adagrad: starting value of "sum" */
} ml_optim_config;

/* PyTorch's defaults for the kind: SGD lr 0.01 (PyTorch requires one);
 * Adagrad lr 0.01, eps 1e-10; RMSprop lr 0.01, alpha 0.99, eps 1e-8;
 * Adam lr 1e-3, betas (0.9, 0.999), eps 1e-8; AdamW the same with
 * weight_decay 1e-2. Everything else 0. */
ml_optim_config ml_optim_config_default(ml_optim_kind kind);

typedef struct ml_optim {
    ml_optim_config cfg;
    int64_t n;    /* elements in the parameter buffer */
    int64_t step; /* completed steps; PyTorch's state["step"] */
    /* State buffers of n floats each, NULL when the kind does not need them:
     *   SGD      state0 momentum_buffer (momentum != 0)
     *   Adagrad  state0 sum
     *   RMSprop  state0 square_avg, state1 momentum_buffer (momentum > 0),
     *            state2 grad_avg (centered)
     *   Adam(W)  state0 exp_avg, state1 exp_avg_sq */
    float *state0, *state1, *state2;
} ml_optim;

/* Validates cfg (ML_ERR_ARG on negative rates, betas outside [0, 1),
 * nesterov without momentum or with dampening, n < 0, unknown kind) and
 * allocates the state buffers with ml_calloc (ML_ERR_NOMEM; nothing is left
 * allocated on failure). On success step is 0. */
ml_status ml_optim_init(ml_optim *o, const ml_optim_config *cfg, int64_t n);
/* Frees the state buffers; safe on a zeroed or already freed ml_optim. */
void ml_optim_free(ml_optim *o);
/* Sets the state to what init gave (zeros; Adagrad's sum to its initial
 * value) and step to 0, keeping the buffers. */
void ml_optim_reset(ml_optim *o);

/* One update of params[0..n) with grads[0..n) at learning rate lr; then
 * step += 1. grads is not modified. params and grads must not alias the
 * state buffers. lr is double like torch's group["lr"]: Adam's step size
 * lr / (1 - beta1^t) is formed before rounding to float, and a float lr
 * would already be off by up to half an ulp there. */
void ml_optim_step(ml_optim *o, float *params, const float *grads, double lr);
/* ml_optim_step in parts, for threads that split the parameters: each
 * element's update depends on that element alone, so ranges [lo, hi) that
 * cover [0, n) once, then one ml_optim_advance, give ml_optim_step's bits. */
void ml_optim_step_range(ml_optim *o, float *params, const float *grads, double lr, int64_t lo, int64_t hi);
void ml_optim_advance(ml_optim *o);

/* State buffers for checkpoints, in a fixed order per kind and config:
 * i in [0, ml_optim_state_count(o)). *name (when name is not NULL) gets the
 * PyTorch state key: "momentum_buffer", "sum", "square_avg", "grad_avg",
 * "exp_avg", "exp_avg_sq". Each buffer holds o->n floats. Save these and
 * o->step; restoring both resumes bit-exactly. Out of range gives NULL. */
int ml_optim_state_count(const ml_optim *o);
float *ml_optim_state(ml_optim *o, int i, const char **name);

/* ---- learning-rate schedules --------------------------------------------- */

typedef enum ml_schedule_kind {
    ML_SCHED_CONSTANT,
    ML_SCHED_STEP,   /* torch StepLR */
    ML_SCHED_COSINE, /* torch CosineAnnealingLR, closed form */
    ML_SCHED_COUNT
} ml_schedule_kind;

typedef struct ml_schedule {
    ml_schedule_kind kind;
    double base_lr;
    int64_t step_size;    /* STEP: decay every step_size steps (> 0) */
    double gamma;         /* STEP: multiplicative factor */
    int64_t total_steps;  /* COSINE: T_max (> 0) */
    double min_lr;        /* COSINE: eta_min */
    int64_t warmup_steps; /* linear warm-up before the schedule, 0 = none */
} ml_schedule;

/* "constant", "step", "cosine"; "?" for an invalid kind. */
const char *ml_schedule_kind_name(ml_schedule_kind kind);
/* 0 and *out set on a known name, -1 otherwise. */
int ml_schedule_kind_parse(const char *name, ml_schedule_kind *out);

/* Learning rate for step (0-based, = PyTorch's last_epoch).
 * Warm-up: steps 0..W-1 give base_lr * (step + 1) / W; from step W on the
 * schedule runs with its own step counted from 0, i.e. torch's
 * SequentialLR([LinearLR(1/W, 1, W - 1), sched], milestones=[W]).
 *   CONSTANT  base_lr
 *   STEP      base_lr * gamma^floor(step / step_size)
 *   COSINE    min_lr + (base_lr - min_lr) * (1 + cos(pi * step / T)) / 2;
 *             like torch it is periodic: after T steps it rises again.
 * A step_size or total_steps <= 0 acts as 1; a negative step as 0. */
double ml_schedule_lr(const ml_schedule *s, int64_t step);

/* ---- gradient clipping ---------------------------------------------------- */

/* torch.nn.utils.clip_grad_norm_ (norm_type 2): computes the global L2 norm
 * (accumulated in double) and, when max_norm / (norm + 1e-6) < 1, multiplies
 * every gradient by that factor. Returns the norm before clipping. A
 * non-finite norm leaves the gradients alone (PyTorch would multiply them by
 * 0 or NaN) so the caller can see it and skip the step. */
float ml_clip_grad_norm(float *grads, int64_t n, float max_norm);
/* The same over count buffers: bufs[i] holds ns[i] floats; one global norm. */
float ml_clip_grad_norm_multi(float *const *bufs, const int64_t *ns, int count, float max_norm);

#ifdef __cplusplus
}
#endif
#endif
