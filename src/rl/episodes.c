/* Rollouts, the linear feature baseline, GAE and the REINFORCE loss. */
#include <math.h>
#include <string.h>

#include "metalearn/rl.h"

ml_status ml_episodes_alloc(ml_ctx *ctx, ml_episodes *ep, int horizon, int n, int in_dim,
                            int obs_dim, int act_dim) {
    memset(ep, 0, sizeof *ep);
    if (horizon < 1 || n < 1) return ML_ERR_ARG;
    size_t rows = (size_t)horizon * (size_t)n;
    ep->horizon = horizon, ep->n = n, ep->in_dim = in_dim, ep->obs_dim = obs_dim, ep->act_dim = act_dim;
    ep->x = ml_ctx_alloc(ctx, sizeof(float) * rows * (size_t)in_dim);
    ep->act = ml_ctx_alloc(ctx, sizeof(float) * rows * (size_t)act_dim);
    ep->rew = ml_ctx_alloc(ctx, sizeof(float) * rows);
    ep->mask = ml_ctx_alloc(ctx, sizeof(float) * rows);
    ep->adv = ml_ctx_alloc(ctx, sizeof(float) * rows);
    ep->weight = ml_ctx_alloc(ctx, sizeof(float) * rows);
    ep->last_obs = ml_ctx_alloc(ctx, sizeof(float) * (size_t)n * (size_t)obs_dim);
    ep->length = ml_ctx_alloc(ctx, sizeof(int) * (size_t)n);
    return ml_ctx_status(ctx);
}

static void sample_actions(const ml_policy *p, const float *head, const float *log_std, int n,
                           ml_rng *rng, float *act) {
    if (!p->discrete) {
        for (int i = 0; i < n; i++)
            for (int a = 0; a < p->out_dim; a++)
                act[i * p->out_dim + a] =
                    head[i * p->out_dim + a] + (float)(exp(log_std[a]) * ml_rng_normal(rng));
        return;
    }
    for (int i = 0; i < n; i++) { /* inverse CDF of softmax(logits) */
        const float *l = head + (size_t)i * p->out_dim;
        double mx = l[0], z = 0;
        for (int a = 1; a < p->out_dim; a++) mx = l[a] > mx ? l[a] : mx;
        for (int a = 0; a < p->out_dim; a++) z += exp(l[a] - mx);
        double u = ml_rng_uniform(rng) * z, c = 0;
        int pick = p->out_dim - 1;
        for (int a = 0; a < p->out_dim; a++) {
            c += exp(l[a] - mx);
            if (u < c) { pick = a; break; }
        }
        act[i] = (float)pick;
    }
}

ml_status ml_rl_sample(ml_ctx *ctx, const ml_env *env, const ml_env_task *task, const ml_policy *p,
                       ml_tensor *const *params, int oracle, ml_rng *rng, ml_episodes *ep) {
    const int n = ep->n, in = ep->in_dim, od = env->obs_dim;
    if (in != od + (oracle ? env->n_task_features : 0) || in != p->in_dim) return ML_ERR_SHAPE;
    float *state = ml_ctx_alloc(ctx, sizeof(float) * (size_t)n * (size_t)(env->state_dim + 1));
    float *obs = ml_ctx_alloc(ctx, sizeof(float) * (size_t)n * (size_t)od);
    float *rew = ml_ctx_alloc(ctx, sizeof(float) * (size_t)n);
    uint8_t *done = ml_ctx_alloc(ctx, (size_t)n);
    uint8_t *alive = ml_ctx_alloc(ctx, (size_t)n);
    float feat[ML_ENV_TASK_MAX];
    if (ml_ctx_status(ctx) != ML_OK) return ml_ctx_status(ctx);
    if (oracle) env->kind->task_features(env, task, feat);
    const float *log_std = p->discrete ? NULL : params[2 * p->n_layers]->data;
    env->kind->reset(env, task, n, state, obs);
    memset(alive, 1, (size_t)n);
    int was = ml_ctx_set_recording(ctx, 0);
    /* Each step's forward is dead once its actions are drawn: rewinding keeps
     * a rollout's tensors to one step's (100 steps of a 64-wide policy left
     * ~3 MB per rollout in the arena). */
    const ml_ctx_mark step_start = ml_ctx_get_mark(ctx);
    for (int t = 0; t < ep->horizon; t++) {
        ml_ctx_rewind(ctx, step_start);
        float *x = ep->x + (size_t)t * n * in;
        for (int i = 0; i < n; i++) {
            memcpy(x + (size_t)i * in, obs + (size_t)i * od, sizeof(float) * (size_t)od);
            if (oracle) memcpy(x + (size_t)i * in + od, feat, sizeof(float) * (size_t)env->n_task_features);
        }
        ml_tensor *head = ml_policy_head(ctx, p, params, ml_tensor_wrap(ctx, x, 2, ML_SHAPE(n, in)));
        if (!head) break;
        float *act = ep->act + (size_t)t * n * ep->act_dim;
        sample_actions(p, head->data, log_std, n, rng, act);
        env->kind->step(env, task, n, state, act, obs, rew, done, rng);
        for (int i = 0; i < n; i++) {
            ep->mask[t * n + i] = alive[i];
            ep->rew[t * n + i] = alive[i] ? rew[i] : 0.0f;
            if (done[i]) alive[i] = 0;
        }
    }
    ml_ctx_rewind(ctx, step_start);
    ml_ctx_set_recording(ctx, was);
    memcpy(ep->last_obs, obs, sizeof(float) * (size_t)n * (size_t)od);
    for (int i = 0; i < n; i++) {
        int len = 0;
        for (int t = 0; t < ep->horizon; t++) len += ep->mask[t * n + i] > 0;
        ep->length[i] = len;
    }
    for (int t = 0; t < ep->horizon; t++)
        for (int i = 0; i < n; i++) ep->weight[t * n + i] = ep->mask[t * n + i] / ((float)ep->length[i] * n);
    return ml_ctx_status(ctx);
}

double ml_episodes_mean_return(const ml_episodes *ep) {
    double s = 0;
    for (int64_t r = 0; r < (int64_t)ep->horizon * ep->n; r++) s += ep->rew[r];
    return s / ep->n;
}

#define BASE_MAX_F (2 * ML_ENV_TASK_MAX + 4)

/* Features of Duan et al. (2016): obs, obs^2, t/100, (t/100)^2, (t/100)^3, 1, all masked. */
static int base_features(const ml_episodes *ep, int t, int i, double *f) {
    const float *o = ep->x + ((size_t)t * ep->n + i) * ep->in_dim;
    const double m = ep->mask[t * ep->n + i], ts = t / 100.0;
    int k = 0;
    for (int d = 0; d < ep->obs_dim; d++) f[k++] = o[d] * m;
    for (int d = 0; d < ep->obs_dim; d++) f[k++] = (double)o[d] * o[d] * m;
    f[k++] = ts * m, f[k++] = ts * ts * m, f[k++] = ts * ts * ts * m, f[k++] = m;
    return k;
}

/* Solves (A + reg I) c = b by Cholesky; 0 on success. */
static int ridge_solve(const double *A, const double *b, int n, double reg, double *c) {
    double L[BASE_MAX_F * BASE_MAX_F];
    for (int i = 0; i < n; i++)
        for (int j = 0; j <= i; j++) {
            double s = A[i * n + j] + (i == j ? reg : 0);
            for (int k = 0; k < j; k++) s -= L[i * n + k] * L[j * n + k];
            if (i == j) {
                if (!(s > 0)) return -1;
                L[i * n + i] = sqrt(s);
            } else {
                L[i * n + j] = s / L[j * n + j];
            }
        }
    for (int i = 0; i < n; i++) { /* L y = b, then L^T c = y */
        double s = b[i];
        for (int k = 0; k < i; k++) s -= L[i * n + k] * c[k];
        c[i] = s / L[i * n + i];
    }
    for (int i = n - 1; i >= 0; i--) {
        double s = c[i];
        for (int k = i + 1; k < n; k++) s -= L[k * n + i] * c[k];
        c[i] = s / L[i * n + i];
    }
    for (int i = 0; i < n; i++)
        if (!isfinite(c[i])) return -1;
    return 0;
}

ml_status ml_rl_advantages(ml_episodes *ep, double gamma, double lambda, int normalize) {
    const int H = ep->horizon, n = ep->n, F = 2 * ep->obs_dim + 4;
    double A[BASE_MAX_F * BASE_MAX_F] = {0}, b[BASE_MAX_F] = {0}, c[BASE_MAX_F] = {0}, f[BASE_MAX_F];
    if (F > BASE_MAX_F) return ML_ERR_ARG;
    /* Discounted returns (kept in adv for now) and the normal equations. */
    for (int i = 0; i < n; i++) {
        double ret = 0;
        for (int t = H - 1; t >= 0; t--) {
            ret = ep->rew[t * n + i] * ep->mask[t * n + i] + gamma * ret;
            ep->adv[t * n + i] = (float)ret;
        }
    }
    for (int t = 0; t < H; t++)
        for (int i = 0; i < n; i++) {
            if (!(ep->mask[t * n + i] > 0)) continue;
            base_features(ep, t, i, f);
            for (int r = 0; r < F; r++) {
                b[r] += f[r] * ep->adv[t * n + i];
                for (int q = 0; q < F; q++) A[r * F + q] += f[r] * f[q];
            }
        }
    double reg = 1e-5;
    int solved = 0;
    for (int tries = 0; tries < 5 && !solved; tries++, reg *= 10) solved = ridge_solve(A, b, F, reg, c) == 0;
    if (!solved) memset(c, 0, sizeof c); /* no baseline rather than a bad one */
    /* GAE: delta_t = r_t + gamma v_{t+1} - v_t with v masked and v_H = 0. */
    for (int i = 0; i < n; i++) {
        double gae = 0, v_next = 0;
        for (int t = H - 1; t >= 0; t--) {
            int k = base_features(ep, t, i, f);
            double v = 0;
            for (int r = 0; r < k; r++) v += f[r] * c[r];
            double delta = ep->rew[t * n + i] + gamma * v_next - v;
            gae = gae * gamma * lambda + delta;
            ep->adv[t * n + i] = (float)gae;
            v_next = v;
        }
    }
    if (!normalize) return ML_OK;
    /* Weighted normalisation: means over each trajectory's own steps, averaged. */
    double mean = 0, var = 0;
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int t = 0; t < H; t++) s += ep->adv[t * n + i] * ep->mask[t * n + i];
        mean += s / ep->length[i];
    }
    mean /= n;
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int t = 0; t < H; t++) {
            double d = (ep->adv[t * n + i] - mean) * ep->mask[t * n + i];
            s += d * d;
        }
        var += s / ep->length[i];
    }
    double sd = sqrt(var / n) + 1e-8;
    for (int t = 0; t < H; t++)
        for (int i = 0; i < n; i++)
            ep->adv[t * n + i] = (float)((ep->adv[t * n + i] - mean) * ep->mask[t * n + i] / sd);
    return ML_OK;
}

ml_tensor *ml_rl_pg_loss(ml_ctx *ctx, const ml_policy *p, ml_tensor *const *params,
                         const ml_episodes *ep) {
    const int64_t rows = (int64_t)ep->horizon * ep->n;
    ml_tensor *x = ml_tensor_wrap(ctx, ep->x, 2, ML_SHAPE(rows, ep->in_dim));
    ml_tensor *c = ml_new(ctx, rows);
    if (!c) return NULL;
    for (int64_t r = 0; r < rows; r++) c->data[r] = -ep->adv[r] * ep->weight[r];
    ml_tensor *logp = ml_policy_log_prob(ctx, p, params, ml_policy_head(ctx, p, params, x), ep->act);
    return ml_sum_all(ctx, ml_mul(ctx, logp, c));
}

ml_status ml_rl_adapt(ml_ctx *ctx, const ml_policy *p, ml_tensor *const *params,
                      const ml_episodes *ep, float lr, int steps, int create_graph,
                      ml_tensor **out) {
    ml_tensor *cur[ML_POLICY_MAX_TENSORS], *g[ML_POLICY_MAX_TENSORS];
    for (int j = 0; j < p->n_tensors; j++) cur[j] = params[j];
    for (int s = 0; s < steps; s++) {
        ml_tensor *loss = ml_rl_pg_loss(ctx, p, cur, ep);
        if (!loss) return ml_ctx_status(ctx);
        if (ml_grad(ctx, loss, cur, p->n_tensors, create_graph, g) != ML_OK) return ml_ctx_status(ctx);
        for (int j = 0; j < p->n_tensors; j++) cur[j] = ml_sub(ctx, cur[j], ml_scale(ctx, g[j], lr));
    }
    for (int j = 0; j < p->n_tensors; j++) out[j] = cur[j];
    return ml_ctx_status(ctx);
}

void ml_conjugate_gradient(ml_matvec_fn av, void *user, const float *b, int64_t n, int iters,
                           double residual_tol, float *x, float *scratch) {
    float *p = scratch, *r = scratch + n, *z = scratch + 2 * n;
    double rr = 0;
    for (int64_t i = 0; i < n; i++) p[i] = r[i] = b[i], x[i] = 0, rr += (double)b[i] * b[i];
    for (int it = 0; it < iters; it++) {
        av(p, z, user);
        double pz = 0;
        for (int64_t i = 0; i < n; i++) pz += (double)p[i] * z[i];
        if (!(pz > 0)) break;
        double v = rr / pz, rr_new = 0;
        for (int64_t i = 0; i < n; i++) {
            x[i] += (float)(v * p[i]);
            r[i] -= (float)(v * z[i]);
            rr_new += (double)r[i] * r[i];
        }
        double mu = rr_new / rr;
        for (int64_t i = 0; i < n; i++) p[i] = (float)(r[i] + mu * p[i]);
        rr = rr_new;
        if (rr < residual_tol) break;
    }
}
