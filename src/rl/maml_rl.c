/* MAML-RL: the meta-learner over an environment family (metalearn/rl.h).
 *
 * One outer iteration: phase A runs every task of the meta-batch on the pool
 * (sample with theta, adapt, sample with the adapted policy, surrogate loss,
 * its gradient, and for TRPO the KL's gradient recorded with create_graph);
 * phase B, TRPO only, is the conjugate gradient, each product of which asks
 * every task for its Hessian-vector product (double backward through the
 * adaptation: exact second order); phase C the line search, which re-adapts
 * every task from the stored trajectories at each candidate. Every task keeps
 * its own context across the phases and draws from its own generator seeded
 * by (seed, iteration, task), and per-task sums are added in task order: the
 * same bits for any thread count. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "metalearn/io.h"
#include "metalearn/optim.h"
#include "metalearn/pool.h"
#include "metalearn/rl.h"
#include "rl/rl_internal.h"

typedef struct task_ws {
    ml_ctx *ctx;
    ml_env_task task;
    ml_episodes train, valid;
    ml_tensor *leaves[ML_POLICY_MAX_TENSORS], *gkl[ML_POLICY_MAX_TENSORS];
    float *old_head, *old_logp, *coef; /* coef = -adv * weight of the valid rows */
    float old_log_std[ML_ENV_TASK_MAX];
    double loss, kl, train_return, valid_return;
    float *grad, *hv; /* n_params each */
    ml_ctx_mark kept; /* after the KL gradient: the loss gradient, each Hessian-vector
                       * product and each line-search candidate rewind here */
    ml_status status;
} task_ws;

struct ml_rl {
    ml_rl_config cfg;
    ml_env env;
    ml_policy pol;
    int oracle, horizon, adapt_steps, second_order;
    float *theta, *cand, *g, *dir, *tmp, *cg_scratch;
    const float *vec; /* the vector of the current phase (HVP or candidate) */
    ml_optim adam;
    int64_t iter;
    ml_pool *pool;
    task_ws *ws;
};

static const char *const algo_names[] = {"maml", "fomaml", "pretrain", "oracle", "random"};

const char *ml_rl_algo_name(ml_rl_algo a) { return a >= 0 && a <= ML_RL_RANDOM ? algo_names[a] : "?"; }
int ml_rl_algo_parse(const char *name, ml_rl_algo *out) {
    for (int i = 0; i <= ML_RL_RANDOM; i++)
        if (strcmp(name, algo_names[i]) == 0) return *out = (ml_rl_algo)i, 1;
    return 0;
}

ml_rl_config ml_rl_config_default(void) {
    ml_rl_config c;
    memset(&c, 0, sizeof c);
    c.env = "nav2d", c.algo = ML_RL_MAML, c.outer = ML_RL_TRPO;
    c.n_hidden = 2, c.hidden[0] = 64, c.hidden[1] = 64, c.init_std = 1.0;
    c.rollouts = 20, c.meta_batch = 20, c.inner_steps = 1, c.inner_lr = 0.1;
    c.gamma = 0.99, c.gae_lambda = 1.0;
    c.max_kl = 1e-2, c.cg_damping = 1e-5, c.cg_iters = 10, c.ls_steps = 15, c.ls_ratio = 0.8;
    c.outer_lr = 0.01, c.threads = 1, c.seed = 1;
    return c;
}

static uint64_t mix_seed(uint64_t seed, int64_t a, int64_t b) {
    return seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(a + 1)) ^ (0xC2B2AE3D27D4EB4Full * (uint64_t)(b + 1));
}

static void flatten(const ml_policy *p, ml_tensor *const *t, float *out) {
    for (int j = 0; j < p->n_tensors; j++) {
        if (t[j]) memcpy(out + p->offset[j], t[j]->data, sizeof(float) * (size_t)p->numel[j]);
        else memset(out + p->offset[j], 0, sizeof(float) * (size_t)p->numel[j]);
    }
}

void ml_rl_destroy(ml_rl *rl) {
    if (!rl) return;
    if (rl->ws)
        for (int t = 0; t < rl->cfg.meta_batch; t++) {
            ml_ctx_destroy(rl->ws[t].ctx);
            free(rl->ws[t].grad);
            free(rl->ws[t].hv);
        }
    free(rl->ws);
    ml_pool_destroy(rl->pool);
    ml_optim_free(&rl->adam);
    free(rl->theta), free(rl->cand), free(rl->g), free(rl->dir), free(rl->tmp), free(rl->cg_scratch);
    free(rl);
}

/* The settings the CLI's option table bounds, checked here too for callers
 * that fill ml_rl_config directly (the Python package): counts within the
 * CLI's limits (memory in proportion), rates finite, factors in range. */
static int rl_config_in_range(const ml_rl_config *c, char *err, size_t errlen) {
    const struct { const char *name; int value, max; } counts[] = {
        {"rollouts", c->rollouts, 100000}, {"meta_batch", c->meta_batch, 100000},
        {"inner_steps", c->inner_steps, 1000}, {"horizon", c->horizon, 1000000}};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        if (counts[i].value > counts[i].max) {
            snprintf(err, errlen, "rl: %s = %d, at most %d", counts[i].name, counts[i].value, counts[i].max);
            return 0;
        }
    const struct { const char *name; double value, lo, hi; int lo_open; } reals[] = {
        {"inner_lr", c->inner_lr, 0, 1e3, 0}, {"outer_lr", c->outer_lr, 0, 1e3, 1},
        {"gamma", c->gamma, 0, 1, 0}, {"gae_lambda", c->gae_lambda, 0, 1, 0}, {"max_kl", c->max_kl, 0, 1e3, 1},
        {"cg_damping", c->cg_damping, 0, 1e3, 0}, {"ls_ratio", c->ls_ratio, 0, 1, 1}, {"init_std", c->init_std, 0, 1e3, 1}};
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++) {
        double v = reals[i].value;
        if (!isfinite(v) || v < reals[i].lo || (reals[i].lo_open && v == reals[i].lo) || v > reals[i].hi) {
            snprintf(err, errlen, "rl: %s = %g, expected a finite number in %c%g, %g]", reals[i].name, v,
                     reals[i].lo_open ? '(' : '[', reals[i].lo, reals[i].hi);
            return 0;
        }
    }
    if (c->cg_iters < 1 || c->ls_steps < 1) {
        snprintf(err, errlen, "rl: cg_iters = %d and ls_steps = %d must be >= 1", c->cg_iters, c->ls_steps);
        return 0;
    }
    return 1;
}

ml_status ml_rl_create(const ml_rl_config *cfg, ml_rl **out, char *err, size_t errlen) {
    *out = NULL;
    ml_rl *rl = calloc(1, sizeof *rl);
    if (!rl) return ML_ERR_NOMEM;
    rl->cfg = *cfg;
    /* Parallel across tasks, one thread inside each op (the ops here are
     * small): what the meta-learners do, and thread-count invariant. */
    omp_set_num_threads(1);
    ml_status st = ml_env_parse(cfg->env, &rl->env, err, errlen);
    if (st != ML_OK) return free(rl), st;
    if (cfg->rollouts < 1 || cfg->meta_batch < 1 || cfg->inner_steps < 0 || cfg->threads < 1 ||
        cfg->horizon < 0) {
        snprintf(err, errlen, "rl: --rollouts, --meta-batch and --threads must be >= 1, --inner-steps and --horizon >= 0");
        return free(rl), ML_ERR_ARG;
    }
    if (!rl_config_in_range(cfg, err, errlen)) return free(rl), ML_ERR_ARG;
    rl->horizon = cfg->horizon ? cfg->horizon : rl->env.horizon;
    rl->oracle = cfg->algo == ML_RL_ORACLE;
    rl->adapt_steps = (cfg->algo == ML_RL_MAML || cfg->algo == ML_RL_FOMAML) ? cfg->inner_steps : 0;
    rl->second_order = cfg->algo == ML_RL_MAML;
    const ml_env *e = &rl->env;
    int in = e->obs_dim + (rl->oracle ? e->n_task_features : 0);
    int discrete = e->n_actions > 0;
    st = ml_policy_init(&rl->pol, in, discrete ? e->n_actions : e->act_dim, discrete, cfg->n_hidden, cfg->hidden);
    if (st != ML_OK) {
        snprintf(err, errlen, "rl: bad policy shape (1 to %d hidden layers of width >= 1)", ML_POLICY_MAX_HIDDEN);
        return free(rl), st;
    }
    int64_t np = rl->pol.n_params;
    rl->theta = calloc((size_t)np, sizeof(float));
    rl->cand = calloc((size_t)np, sizeof(float));
    rl->g = calloc((size_t)np, sizeof(float));
    rl->dir = calloc((size_t)np, sizeof(float));
    rl->tmp = calloc((size_t)np, sizeof(float));
    rl->cg_scratch = calloc(3 * (size_t)np, sizeof(float));
    rl->ws = calloc((size_t)cfg->meta_batch, sizeof(task_ws));
    rl->pool = ml_pool_create(cfg->threads);
    if (!rl->theta || !rl->cand || !rl->g || !rl->dir || !rl->tmp || !rl->cg_scratch || !rl->ws || !rl->pool)
        return ml_rl_destroy(rl), ML_ERR_NOMEM;
    for (int t = 0; t < cfg->meta_batch; t++) {
        task_ws *w = &rl->ws[t];
        w->ctx = ml_ctx_create((size_t)8 << 20);
        w->grad = calloc((size_t)np, sizeof(float));
        w->hv = calloc((size_t)np, sizeof(float));
        if (!w->ctx || !w->grad || !w->hv) return ml_rl_destroy(rl), ML_ERR_NOMEM;
        /* Nothing reads a gradient walk's intermediate buffers afterwards:
         * the unrecorded walks (loss gradient, products, line search) may
         * reuse them (same arithmetic, so the same bits). */
        ml_ctx_set_consume(w->ctx, 1);
    }
    ml_optim_config oc = ml_optim_config_default(ML_OPTIM_ADAM);
    oc.lr = cfg->outer_lr;
    if ((st = ml_optim_init(&rl->adam, &oc, np)) != ML_OK) return ml_rl_destroy(rl), st;
    ml_rng rng;
    ml_rng_seed(&rng, cfg->seed);
    ml_policy_init_params(&rl->pol, rl->theta, cfg->init_std, &rng);
    *out = rl;
    return ML_OK;
}

const ml_policy *ml_rl_policy(const ml_rl *rl) { return &rl->pol; }
const ml_env *ml_rl_env(const ml_rl *rl) { return &rl->env; }
float *ml_rl_params(ml_rl *rl) { return rl->theta; }
int64_t ml_rl_n_params(const ml_rl *rl) { return rl->pol.n_params; }
int64_t ml_rl_iter(const ml_rl *rl) { return rl->iter; }

/* ---- phase A: one task's trajectories, surrogate loss and gradients ---- */

static ml_status task_forward(ml_rl *rl, task_ws *w, int index) {
    const ml_policy *p = &rl->pol;
    const ml_rl_config *c = &rl->cfg;
    ml_ctx *ctx = w->ctx;
    ml_ctx_reset(ctx);
    ml_ctx_clear_error(ctx);
    ml_rng rng;
    ml_rng_seed(&rng, mix_seed(c->seed, rl->iter, index));
    rl->env.kind->sample_task(&rl->env, &rng, &w->task);
    int in = p->in_dim, H = rl->horizon, n = c->rollouts;
    ml_status st;
    if ((st = ml_policy_wrap(ctx, p, rl->theta, w->leaves)) != ML_OK) return st;
    ml_tensor *fast[ML_POLICY_MAX_TENSORS];
    for (int j = 0; j < p->n_tensors; j++) fast[j] = w->leaves[j];
    if ((st = ml_episodes_alloc(ctx, &w->valid, H, n, in, rl->env.obs_dim, rl->env.act_dim)) != ML_OK) return st;
    if (rl->adapt_steps > 0) {
        if ((st = ml_episodes_alloc(ctx, &w->train, H, n, in, rl->env.obs_dim, rl->env.act_dim)) != ML_OK) return st;
        if ((st = ml_rl_sample(ctx, &rl->env, &w->task, p, w->leaves, rl->oracle, &rng, &w->train)) != ML_OK) return st;
        w->train_return = ml_episodes_mean_return(&w->train);
        if ((st = ml_rl_advantages(&w->train, c->gamma, c->gae_lambda, 1)) != ML_OK) return st;
        if ((st = ml_rl_adapt(ctx, p, w->leaves, &w->train, (float)c->inner_lr, rl->adapt_steps,
                              rl->second_order, fast)) != ML_OK)
            return st;
    }
    if ((st = ml_rl_sample(ctx, &rl->env, &w->task, p, fast, rl->oracle, &rng, &w->valid)) != ML_OK) return st;
    w->valid_return = ml_episodes_mean_return(&w->valid);
    if (rl->adapt_steps == 0) w->train_return = w->valid_return;
    if ((st = ml_rl_advantages(&w->valid, c->gamma, c->gae_lambda, 1)) != ML_OK) return st;

    const int64_t rows = (int64_t)H * n;
    ml_tensor *x = ml_tensor_wrap(ctx, w->valid.x, 2, ML_SHAPE(rows, in));
    ml_tensor *head = ml_policy_head(ctx, p, fast, x);
    ml_tensor *logp = ml_policy_log_prob(ctx, p, fast, head, w->valid.act);
    w->old_head = ml_ctx_alloc(ctx, sizeof(float) * (size_t)rows * (size_t)p->out_dim);
    w->old_logp = ml_ctx_alloc(ctx, sizeof(float) * (size_t)rows);
    w->coef = ml_ctx_alloc(ctx, sizeof(float) * (size_t)rows);
    ml_tensor *old_lp = ml_new(ctx, rows), *coef = ml_new(ctx, rows), *wt = ml_new(ctx, rows);
    if ((st = ml_ctx_status(ctx)) != ML_OK) return st;
    memcpy(w->old_head, head->data, sizeof(float) * (size_t)rows * (size_t)p->out_dim);
    memcpy(w->old_logp, logp->data, sizeof(float) * (size_t)rows);
    memcpy(old_lp->data, logp->data, sizeof(float) * (size_t)rows);
    if (!p->discrete) memcpy(w->old_log_std, fast[2 * p->n_layers]->data, sizeof(float) * (size_t)p->out_dim);
    for (int64_t r = 0; r < rows; r++) {
        w->coef[r] = coef->data[r] = -w->valid.adv[r] * w->valid.weight[r];
        wt->data[r] = w->valid.weight[r];
    }
    /* Surrogate: -sum w adv exp(logp - logp_old), equal to the PG loss at the
     * sampling policy with the same gradient; KL(pi || pi_old), zero here with
     * a Hessian that is the Fisher matrix through the adaptation. */
    ml_tensor *loss = ml_sum_all(ctx, ml_mul(ctx, ml_exp(ctx, ml_sub(ctx, logp, old_lp)), coef));
    ml_tensor *kl = ml_sum_all(ctx, ml_mul(ctx, ml_policy_kl(ctx, p, fast, head, w->old_head, w->old_log_std), wt));
    if (!loss || !kl) return ml_ctx_status(ctx);
    w->loss = loss->data[0];
    w->kl = kl->data[0];
    /* The KL's recorded gradient is kept for the products; the loss gradient
     * is dead once flattened, so it comes after the mark and its memory is
     * the products' (walking the longer tape changes no value). */
    if (c->outer == ML_RL_TRPO && (st = ml_grad(ctx, kl, w->leaves, p->n_tensors, 1, w->gkl)) != ML_OK) return st;
    w->kept = ml_ctx_get_mark(ctx);
    ml_tensor *g[ML_POLICY_MAX_TENSORS];
    if ((st = ml_grad(ctx, loss, w->leaves, p->n_tensors, 0, g)) != ML_OK) return st;
    flatten(p, g, w->grad);
    return ML_OK;
}

static void forward_job(int item, int worker, void *user) {
    (void)worker;
    ml_rl *rl = user;
    rl->ws[item].status = task_forward(rl, &rl->ws[item], item);
}

/* ---- phase B: Hessian-vector products of the mean KL ---- */

static void hvp_job(int item, int worker, void *user) {
    (void)worker;
    ml_rl *rl = user;
    task_ws *w = &rl->ws[item];
    const ml_policy *p = &rl->pol;
    ml_ctx *ctx = w->ctx;
    ml_ctx_rewind(ctx, w->kept);
    ml_tensor *v[ML_POLICY_MAX_TENSORS], *out[ML_POLICY_MAX_TENSORS];
    ml_policy_wrap(ctx, p, (float *)rl->vec, v);
    ml_tensor *dot = NULL;
    for (int j = 0; j < p->n_tensors; j++) {
        if (!w->gkl[j]) continue;
        ml_tensor *term = ml_sum_all(ctx, ml_mul(ctx, w->gkl[j], v[j]));
        dot = dot ? ml_add(ctx, dot, term) : term;
    }
    if (!dot) {
        memset(w->hv, 0, sizeof(float) * (size_t)p->n_params);
        return;
    }
    w->status = ml_grad(ctx, dot, w->leaves, p->n_tensors, 0, out);
    if (w->status == ML_OK) flatten(p, out, w->hv);
}

static ml_status check_tasks(ml_rl *rl) {
    for (int t = 0; t < rl->cfg.meta_batch; t++)
        if (rl->ws[t].status != ML_OK) return rl->ws[t].status;
    return ML_OK;
}

/* out = mean over tasks of H_t v + damping v */
static void mean_hvp(const float *v, float *out, void *user) {
    ml_rl *rl = user;
    const int64_t np = rl->pol.n_params;
    const int T = rl->cfg.meta_batch;
    rl->vec = v;
    ml_pool_run(rl->pool, T, hvp_job, rl);
    for (int64_t i = 0; i < np; i++) {
        double s = 0;
        for (int t = 0; t < T; t++) s += rl->ws[t].hv[i];
        out[i] = (float)(s / T + rl->cfg.cg_damping * v[i]);
    }
}

/* ---- phase C: surrogate loss and KL at a candidate theta ---- */

/* In the task's context after its kept graph (which the products no longer
 * need), so a task holds one arena rather than two. */
static ml_status task_candidate(ml_rl *rl, task_ws *w) {
    const ml_policy *p = &rl->pol;
    ml_ctx *ctx = w->ctx;
    ml_ctx_rewind(ctx, w->kept);
    ml_tensor *leaves[ML_POLICY_MAX_TENSORS], *fast[ML_POLICY_MAX_TENSORS];
    ml_status st = ml_policy_wrap(ctx, p, (float *)rl->vec, leaves);
    if (st != ML_OK) return st;
    for (int j = 0; j < p->n_tensors; j++) fast[j] = leaves[j];
    if (rl->adapt_steps > 0 &&
        (st = ml_rl_adapt(ctx, p, leaves, &w->train, (float)rl->cfg.inner_lr, rl->adapt_steps, 0, fast)) != ML_OK)
        return st;
    int was = ml_ctx_set_recording(ctx, 0);
    const int64_t rows = (int64_t)w->valid.horizon * w->valid.n;
    ml_tensor *x = ml_tensor_wrap(ctx, w->valid.x, 2, ML_SHAPE(rows, p->in_dim));
    ml_tensor *head = ml_policy_head(ctx, p, fast, x);
    ml_tensor *logp = ml_policy_log_prob(ctx, p, fast, head, w->valid.act);
    ml_tensor *kl = ml_policy_kl(ctx, p, fast, head, w->old_head, w->old_log_std);
    ml_ctx_set_recording(ctx, was);
    if (!logp || !kl) return ml_ctx_status(ctx);
    double loss = 0, kls = 0;
    for (int64_t r = 0; r < rows; r++) {
        loss += exp((double)logp->data[r] - w->old_logp[r]) * w->coef[r];
        kls += (double)kl->data[r] * w->valid.weight[r];
    }
    w->loss = loss, w->kl = kls;
    return ML_OK;
}

static void candidate_job(int item, int worker, void *user) {
    (void)worker;
    ml_rl *rl = user;
    rl->ws[item].status = task_candidate(rl, &rl->ws[item]);
}

static double mean_of(const ml_rl *rl, size_t field_offset) {
    double s = 0;
    for (int t = 0; t < rl->cfg.meta_batch; t++) s += *(const double *)((const char *)&rl->ws[t] + field_offset);
    return s / rl->cfg.meta_batch;
}

ml_status ml_rl_step(ml_rl *rl, ml_rl_stats *stats) {
    const ml_rl_config *c = &rl->cfg;
    if (c->algo == ML_RL_RANDOM) return ML_ERR_STATE; /* the initialisation is the policy: nothing to train */
    const int T = c->meta_batch;
    const int64_t np = rl->pol.n_params;
    ml_rl_stats s;
    memset(&s, 0, sizeof s);
    ml_pool_run(rl->pool, T, forward_job, rl);
    ml_status st = check_tasks(rl);
    if (st != ML_OK) return st;
    s.train_return = mean_of(rl, offsetof(task_ws, train_return));
    s.valid_return = mean_of(rl, offsetof(task_ws, valid_return));
    s.loss_before = mean_of(rl, offsetof(task_ws, loss));
    /* A NaN loss or gradient is a diverged run: TRPO's line search would
     * reject every step and go on forever with the policy frozen. */
    int finite = isfinite(s.loss_before) != 0;
    for (int64_t i = 0; i < np; i++) {
        double g = 0;
        for (int t = 0; t < T; t++) g += rl->ws[t].grad[i];
        rl->g[i] = (float)(g / T);
        finite &= isfinite(rl->g[i]) != 0;
    }
    if (!finite) return ML_ERR_NUMERIC;
    if (c->outer == ML_RL_ADAM) {
        ml_optim_step(&rl->adam, rl->theta, rl->g, c->outer_lr);
        s.step_size = c->outer_lr;
    } else {
        ml_conjugate_gradient(mean_hvp, rl, rl->g, np, c->cg_iters, 1e-10, rl->dir, rl->cg_scratch);
        if ((st = check_tasks(rl)) != ML_OK) return st;
        mean_hvp(rl->dir, rl->tmp, rl);
        if ((st = check_tasks(rl)) != ML_OK) return st;
        double shs = 0;
        for (int64_t i = 0; i < np; i++) shs += 0.5 * (double)rl->dir[i] * rl->tmp[i];
        double scale = shs > 0 ? 1.0 / sqrt(shs / c->max_kl) : 0.0, step = 1.0;
        s.loss_after = s.loss_before;
        for (int k = 0; k < c->ls_steps && scale > 0; k++, step *= c->ls_ratio) {
            for (int64_t i = 0; i < np; i++) rl->cand[i] = rl->theta[i] - (float)(step * scale * rl->dir[i]);
            rl->vec = rl->cand;
            ml_pool_run(rl->pool, T, candidate_job, rl);
            if ((st = check_tasks(rl)) != ML_OK) return st;
            double loss = mean_of(rl, offsetof(task_ws, loss)), kl = mean_of(rl, offsetof(task_ws, kl));
            if (loss < s.loss_before && kl < c->max_kl) {
                memcpy(rl->theta, rl->cand, sizeof(float) * (size_t)np);
                s.loss_after = loss, s.kl_after = kl, s.step_size = step;
                break;
            }
        }
    }
    for (int64_t i = 0; i < np; i++)
        if (!isfinite(rl->theta[i])) return ML_ERR_NUMERIC;
    rl->iter++;
    s.iter = rl->iter;
    if (stats) *stats = s;
    return ML_OK;
}

/* ---- evaluation: return before and after each adaptation step ---- */

typedef struct eval_job {
    ml_rl *rl;
    ml_ctx **ctx; /* one per worker */
    int max_steps;
    uint64_t seed;
    double lr, lr_later; /* the first adaptation step's rate, the later steps' */
    double *returns;
    float *positions; /* trajectories (ml_rl_trajectories) or NULL */
    ml_env_task *task_out;
    int n_traj;
    ml_status *status;
} eval_job;

/* Adapts on fresh trajectories step after step; returns[s] is the mean
 * return of the policy after s steps. */
static ml_status eval_one(eval_job *j, ml_ctx *ctx, int index) {
    ml_rl *rl = j->rl;
    const ml_policy *p = &rl->pol;
    const ml_rl_config *c = &rl->cfg;
    ml_ctx_reset(ctx);
    ml_ctx_clear_error(ctx);
    ml_rng rng;
    ml_rng_seed(&rng, mix_seed(j->seed, -1, index));
    ml_env_task task;
    rl->env.kind->sample_task(&rl->env, &rng, &task); /* first draw: ml_rl_eval_task repeats it */
    if (j->task_out) *j->task_out = task;
    ml_tensor *cur[ML_POLICY_MAX_TENSORS];
    ml_status st = ml_policy_wrap(ctx, p, rl->theta, cur);
    int n = j->positions ? j->n_traj : c->rollouts, H = rl->horizon, od = rl->env.obs_dim;
    for (int s = 0; s <= j->max_steps && st == ML_OK; s++) {
        ml_episodes ep;
        if ((st = ml_episodes_alloc(ctx, &ep, H, n, p->in_dim, od, rl->env.act_dim)) != ML_OK) break;
        if ((st = ml_rl_sample(ctx, &rl->env, &task, p, cur, rl->oracle, &rng, &ep)) != ML_OK) break;
        if (j->returns) j->returns[(size_t)index * (j->max_steps + 1) + s] = ml_episodes_mean_return(&ep);
        if (j->positions) { /* (H + 1) points per trajectory: the start, then after each step */
            float *pos = j->positions + (size_t)s * n * (H + 1) * od;
            for (int i = 0; i < n; i++) {
                for (int t = 0; t < H; t++)
                    memcpy(pos + ((size_t)i * (H + 1) + t) * od, ep.x + ((size_t)t * n + i) * p->in_dim, sizeof(float) * od);
                memcpy(pos + ((size_t)i * (H + 1) + H) * od, ep.last_obs + (size_t)i * od, sizeof(float) * od);
            }
        }
        if (s == j->max_steps) break;
        if ((st = ml_rl_advantages(&ep, c->gamma, c->gae_lambda, 1)) != ML_OK) break;
        st = ml_rl_adapt(ctx, p, cur, &ep, (float)(s == 0 ? j->lr : j->lr_later), 1, 0, cur);
    }
    return st;
}

static void eval_task_job(int item, int worker, void *user) {
    eval_job *j = user;
    j->status[item] = eval_one(j, j->ctx[worker], item);
}

static ml_status run_eval(ml_rl *rl, eval_job *j, int n_tasks, int first) {
    int nw = ml_pool_threads(rl->pool);
    ml_ctx **ctx = calloc((size_t)nw, sizeof *ctx);
    ml_status *status = calloc((size_t)n_tasks, sizeof *status);
    ml_status st = ctx && status ? ML_OK : ML_ERR_NOMEM;
    for (int w = 0; w < nw && st == ML_OK; w++)
        if (!(ctx[w] = ml_ctx_create((size_t)8 << 20))) st = ML_ERR_NOMEM;
    if (st == ML_OK) {
        j->ctx = ctx, j->status = status;
        if (first >= 0) status[0] = eval_one(j, ctx[0], first); /* one given task */
        else ml_pool_run(rl->pool, n_tasks, eval_task_job, j);
        for (int t = 0; t < n_tasks && st == ML_OK; t++) st = status[t];
    }
    for (int w = 0; ctx && w < nw; w++) ml_ctx_destroy(ctx[w]);
    free(ctx), free(status);
    return st;
}

void ml_rl_eval_task(const ml_rl *rl, int index, uint64_t eval_seed, ml_env_task *task) {
    ml_rng rng;
    ml_rng_seed(&rng, mix_seed(eval_seed, -1, index));
    rl->env.kind->sample_task(&rl->env, &rng, task);
}

ml_status ml_rl_evaluate(ml_rl *rl, int n_tasks, int max_steps, uint64_t eval_seed, double *returns) {
    return ml_rl_evaluate_lr(rl, n_tasks, max_steps, eval_seed, rl->cfg.inner_lr, returns);
}

ml_status ml_rl_evaluate_lr(ml_rl *rl, int n_tasks, int max_steps, uint64_t eval_seed, double lr, double *returns) {
    return ml_rl_evaluate_steps(rl, n_tasks, max_steps, eval_seed, lr, lr, returns);
}

ml_status ml_rl_evaluate_steps(ml_rl *rl, int n_tasks, int max_steps, uint64_t eval_seed, double lr_first,
                               double lr_later, double *returns) {
    if (n_tasks < 1 || max_steps < 0 || !(lr_first >= 0) || !(lr_later >= 0)) return ML_ERR_ARG;
    eval_job j = {rl, NULL, max_steps, eval_seed, lr_first, lr_later, returns, NULL, NULL, 0, NULL};
    return run_eval(rl, &j, n_tasks, -1);
}

ml_status ml_rl_trajectories(ml_rl *rl, int task_index, uint64_t eval_seed, int steps, int n_traj,
                             float *positions, ml_env_task *task) {
    return ml_rl_trajectories_steps(rl, task_index, eval_seed, steps, n_traj, rl->cfg.inner_lr, rl->cfg.inner_lr,
                                    positions, task);
}

ml_status ml_rl_trajectories_steps(ml_rl *rl, int task_index, uint64_t eval_seed, int steps, int n_traj,
                                   double lr_first, double lr_later, float *positions, ml_env_task *task) {
    if (task_index < 0 || steps < 0 || n_traj < 1 || !(lr_first >= 0) || !(lr_later >= 0)) return ML_ERR_ARG;
    eval_job j = {rl, NULL, steps, eval_seed, lr_first, lr_later, NULL, positions, task, n_traj, NULL};
    return run_eval(rl, &j, 1, task_index);
}

/* ---- checkpoints ---- */

static void tensor_name(const ml_policy *p, int j, char *buf, size_t len) {
    int layer = j / 2;
    if (j == 2 * p->n_layers) snprintf(buf, len, "sigma");
    else if (layer + 1 == p->n_layers) snprintf(buf, len, "mu.%s", j % 2 ? "bias" : "weight");
    else snprintf(buf, len, "layer%d.%s", layer + 1, j % 2 ? "bias" : "weight");
}

#define CKPT_MAX (ML_POLICY_MAX_TENSORS * 3)

ml_status ml_rl_save(ml_rl *rl, const char *path) {
    char err[256];
    return ml__rl_save_err(rl, path, err, sizeof err);
}

ml_status ml__rl_save_err(ml_rl *rl, const char *path, char *err, size_t errlen) {
    const ml_policy *p = &rl->pol;
    ml_st_tensor ts[CKPT_MAX];
    char names[CKPT_MAX][64];
    int n = 0;
    int n_state = ml_optim_state_count(&rl->adam);
    for (int k = 0; k <= n_state; k++) { /* k = 0: the parameters; then each Adam buffer */
        const char *prefix = "";
        float *base = rl->theta;
        if (k > 0) base = ml_optim_state(&rl->adam, k - 1, &prefix);
        for (int j = 0; j < p->n_tensors && n < CKPT_MAX; j++, n++) {
            char tn[32];
            tensor_name(p, j, tn, sizeof tn);
            snprintf(names[n], sizeof names[n], "%s%s%s%s", k ? "optim." : "", k ? prefix : "", k ? "." : "", tn);
            ts[n].name = names[n];
            ts[n].ndim = j % 2 || j == 2 * p->n_layers ? 1 : 2;
            ts[n].shape[0] = ts[n].ndim == 2 ? p->width[j / 2 + 1] : p->numel[j];
            ts[n].shape[1] = ts[n].ndim == 2 ? p->width[j / 2] : 0;
            ts[n].data = base + p->offset[j];
        }
    }
    char iter[32], step[32];
    snprintf(iter, sizeof iter, "%lld", (long long)rl->iter);
    snprintf(step, sizeof step, "%lld", (long long)rl->adam.step);
    const char *keys[] = {"iter", "optim_t", "algo", "env"};
    const char *vals[] = {iter, step, ml_rl_algo_name(rl->cfg.algo), rl->cfg.env};
    return ml_safetensors_write(path, ts, n, keys, vals, 4, err, errlen);
}

ml_status ml_rl_load(ml_rl *rl, const char *path) {
    ml_safetensors s;
    char err[256];
    ml_status st = ml_safetensors_read(path, &s, err, sizeof err);
    if (st != ML_OK) return st;
    const ml_policy *p = &rl->pol;
    int n_state = ml_optim_state_count(&rl->adam);
    for (int k = 0; k <= n_state && st == ML_OK; k++) {
        const char *prefix = "";
        float *base = rl->theta;
        if (k > 0) base = ml_optim_state(&rl->adam, k - 1, &prefix);
        for (int j = 0; j < p->n_tensors; j++) {
            char tn[32], name[64];
            tensor_name(p, j, tn, sizeof tn);
            snprintf(name, sizeof name, "%s%s%s%s", k ? "optim." : "", k ? prefix : "", k ? "." : "", tn);
            const ml_st_entry *e = ml_safetensors_find(&s, name);
            if (!e || e->numel != p->numel[j]) { st = ML_ERR_FORMAT; break; }
            memcpy(base + p->offset[j], e->data, sizeof(float) * (size_t)p->numel[j]);
        }
    }
    const char *iter = ml_safetensors_meta(&s, "iter"), *t = ml_safetensors_meta(&s, "optim_t");
    if (st == ML_OK && (!iter || !t)) st = ML_ERR_FORMAT;
    if (st == ML_OK) rl->iter = strtoll(iter, NULL, 10), rl->adam.step = strtoll(t, NULL, 10);
    ml_safetensors_free(&s);
    return st;
}
