/* The MLP policy of MAML-RL: tanh hidden layers, a linear head giving the
 * Gaussian's mean (with a learned state-independent log-std) or the logits of
 * a categorical distribution. Parameters live in one flat buffer in the order
 * W1, b1, ..., W_head, b_head, log_std (PyTorch's [out, in] weight layout). */
#include <math.h>
#include <string.h>

#include "metalearn/nn.h"
#include "metalearn/rl.h"

#define LOG_2PI 1.8378770664093453

ml_status ml_policy_init(ml_policy *p, int in_dim, int out_dim, int discrete, int n_hidden,
                         const int *hidden) {
    memset(p, 0, sizeof *p);
    if (in_dim < 1 || out_dim < 1 || n_hidden < 0 || n_hidden > ML_POLICY_MAX_HIDDEN) return ML_ERR_ARG;
    p->in_dim = in_dim, p->out_dim = out_dim, p->discrete = discrete;
    p->n_layers = n_hidden + 1;
    p->width[0] = in_dim;
    for (int l = 0; l < n_hidden; l++) {
        if (hidden[l] < 1) return ML_ERR_ARG;
        p->width[l + 1] = hidden[l];
    }
    p->width[p->n_layers] = out_dim;
    int64_t off = 0;
    for (int l = 0; l < p->n_layers; l++) {
        p->offset[2 * l] = off, p->numel[2 * l] = (int64_t)p->width[l + 1] * p->width[l];
        off += p->numel[2 * l];
        p->offset[2 * l + 1] = off, p->numel[2 * l + 1] = p->width[l + 1];
        off += p->numel[2 * l + 1];
    }
    p->n_tensors = 2 * p->n_layers;
    if (!discrete) {
        p->offset[p->n_tensors] = off, p->numel[p->n_tensors] = out_dim;
        off += out_dim;
        p->n_tensors++;
    }
    p->n_params = off;
    return ML_OK;
}

void ml_policy_init_params(const ml_policy *p, float *theta, double init_std, ml_rng *rng) {
    memset(theta, 0, sizeof(float) * (size_t)p->n_params);
    for (int l = 0; l < p->n_layers; l++) {
        double bound = sqrt(6.0 / (p->width[l] + p->width[l + 1]));
        float *w = theta + p->offset[2 * l];
        for (int64_t j = 0; j < p->numel[2 * l]; j++) w[j] = (float)((2 * ml_rng_uniform(rng) - 1) * bound);
    }
    if (!p->discrete)
        for (int a = 0; a < p->out_dim; a++) theta[p->offset[2 * p->n_layers] + a] = (float)log(init_std);
}

ml_status ml_policy_wrap(ml_ctx *ctx, const ml_policy *p, float *theta, ml_tensor **out) {
    for (int l = 0; l < p->n_layers; l++) {
        out[2 * l] = ml_tensor_wrap(ctx, theta + p->offset[2 * l], 2, ML_SHAPE(p->width[l + 1], p->width[l]));
        out[2 * l + 1] = ml_tensor_wrap(ctx, theta + p->offset[2 * l + 1], 1, ML_SHAPE(p->width[l + 1]));
    }
    if (!p->discrete)
        out[2 * p->n_layers] = ml_tensor_wrap(ctx, theta + p->offset[2 * p->n_layers], 1, ML_SHAPE(p->out_dim));
    return ml_ctx_status(ctx);
}

ml_tensor *ml_policy_head(ml_ctx *ctx, const ml_policy *p, ml_tensor *const *params, ml_tensor *x) {
    ml_tensor *h = x;
    for (int l = 0; l < p->n_layers; l++) {
        h = ml_linear(ctx, h, params[2 * l], params[2 * l + 1]);
        if (l + 1 < p->n_layers) h = ml_tanh(ctx, h);
    }
    return h;
}

/* A constant [rows, cols] copy of values in the arena (a leaf nobody differentiates). */
static ml_tensor *constant(ml_ctx *ctx, const float *v, int64_t rows, int64_t cols) {
    ml_tensor *t = cols ? ml_new(ctx, rows, cols) : ml_new(ctx, rows);
    if (t) memcpy(t->data, v, sizeof(float) * (size_t)t->numel);
    return t;
}

ml_tensor *ml_policy_log_prob(ml_ctx *ctx, const ml_policy *p, ml_tensor *const *params,
                              ml_tensor *head, const float *actions) {
    if (!head) return NULL;
    int64_t n = head->shape[0];
    if (p->discrete) {
        int32_t *labels = ml_ctx_alloc(ctx, sizeof(int32_t) * (size_t)n);
        if (!labels) return NULL;
        for (int64_t i = 0; i < n; i++) labels[i] = (int32_t)actions[i];
        return ml_pick(ctx, ml_log_softmax(ctx, head), labels);
    }
    ml_tensor *log_std = params[2 * p->n_layers];
    ml_tensor *a = constant(ctx, actions, n, p->out_dim);
    ml_tensor *z = ml_mul(ctx, ml_sub(ctx, a, head), ml_exp(ctx, ml_neg(ctx, log_std)));
    ml_tensor *s = ml_scale(ctx, ml_sum(ctx, ml_square(ctx, z), 0x2, 0), -0.5f);
    return ml_add_scalar(ctx, ml_sub(ctx, s, ml_sum_all(ctx, log_std)), (float)(-0.5 * p->out_dim * LOG_2PI));
}

ml_tensor *ml_policy_kl(ml_ctx *ctx, const ml_policy *p, ml_tensor *const *params, ml_tensor *head,
                        const float *old_head, const float *old_log_std) {
    if (!head) return NULL;
    int64_t n = head->shape[0];
    ml_tensor *old = constant(ctx, old_head, n, p->out_dim);
    if (p->discrete) {
        ml_tensor *old_lp = ml_log_softmax(ctx, old);
        ml_tensor *lp = ml_log_softmax(ctx, head);
        return ml_sum(ctx, ml_mul(ctx, ml_softmax(ctx, head), ml_sub(ctx, lp, old_lp)), 0x2, 0);
    }
    /* sum_a log s_o - log s_n + (s_n^2 + (mu_n - mu_o)^2) / (2 s_o^2) - 1/2 */
    ml_tensor *log_std = params[2 * p->n_layers];
    ml_tensor *inv2 = ml_new(ctx, p->out_dim);
    if (!inv2) return NULL;
    double const_part = -0.5 * p->out_dim;
    for (int a = 0; a < p->out_dim; a++) {
        inv2->data[a] = (float)(0.5 * exp(-2.0 * old_log_std[a]));
        const_part += old_log_std[a];
    }
    ml_tensor *var_n = ml_exp(ctx, ml_scale(ctx, log_std, 2.0f));
    ml_tensor *quad = ml_mul(ctx, ml_add(ctx, ml_square(ctx, ml_sub(ctx, head, old)), var_n), inv2);
    ml_tensor *s = ml_sum(ctx, quad, 0x2, 0);
    return ml_add_scalar(ctx, ml_sub(ctx, s, ml_sum_all(ctx, log_std)), (float)const_part);
}
