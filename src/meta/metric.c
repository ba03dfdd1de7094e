/* metric.c: the episode heads of the metric-based learners, each written
 * with recorded ops so the embedding is trained through them:
 *   Prototypical Networks (Snell et al. 2017): squared Euclidean distance to
 *     class means of the support embeddings;
 *   Matching Networks (Vinyals et al. 2016, without full context
 *     embeddings): softmax attention over cosine similarities to the support
 *     set, then the attention-weighted one-hot labels;
 *   R2-D2 (Bertinetto et al. 2019): ridge regression on the support set in
 *     Woodbury form, W = X^T (X X^T + lambda I)^-1 Y, with a learned scale,
 *     bias and lambda.
 * Each returns logits [n_query, ways] (Matching Networks: log-probabilities),
 * ready for ml_cross_entropy. Below them, the training step and evaluation
 * every metric learner shares (its row's episode_head does the rest). */
#include <math.h>
#include <string.h>

#include "meta_internal.h"

ml_tensor *ml__episode_label_matrix(ml_ctx *ctx, const int32_t *y, int64_t n, int ways, int means) {
    if (ways < 1 || ways > 256) { /* before the [ways, n] matrix: a huge label must not size it */
        ml_ctx_fail(ctx, ML_ERR_ARG, "episode: %d classes (labels 0..%d), expected 1 to 256", ways, ways - 1);
        return NULL;
    }
    int was = ml_ctx_set_recording(ctx, 0);
    ml_tensor *t = means ? ml_tensor_zeros(ctx, 2, ML_SHAPE(ways, n)) : ml_tensor_zeros(ctx, 2, ML_SHAPE(n, ways));
    ml_ctx_set_recording(ctx, was);
    if (!t) return NULL;
    int64_t count[256] = {0};
    for (int64_t i = 0; i < n; i++) {
        if (y[i] < 0 || y[i] >= ways) {
            ml_ctx_fail(ctx, ML_ERR_ARG, "episode: support label %d outside [0, %d)", y[i], ways);
            return NULL;
        }
        count[y[i]]++;
    }
    for (int64_t i = 0; i < n; i++) {
        if (means) t->data[(int64_t)y[i] * n + i] = 1.0f / (float)count[y[i]];
        else t->data[i * ways + y[i]] = 1.0f;
    }
    for (int k = 0; k < ways; k++)
        if (!count[k]) {
            ml_ctx_fail(ctx, ML_ERR_ARG, "episode: class %d has no support example", k);
            return NULL;
        }
    return t;
}

ml_tensor *ml_protonet_logits(ml_ctx *ctx, ml_tensor *fs, const int32_t *ys, int ways, ml_tensor *fq) {
    if (!fs || !fq) return NULL;
    ml_tensor *avg = ml__episode_label_matrix(ctx, ys, fs->shape[0], ways, 1);
    ml_tensor *protos = ml_matmul(ctx, avg, fs, 0, 0); /* [ways, D] */
    /* -|q - p|^2 = 2 q.p - |q|^2 - |p|^2 */
    ml_tensor *qp = ml_matmul(ctx, fq, protos, 0, 1);
    ml_tensor *q2 = ml_sum(ctx, ml_square(ctx, fq), 2u, 1);     /* [nq, 1] */
    ml_tensor *p2 = ml_sum(ctx, ml_square(ctx, protos), 2u, 0); /* [ways] */
    return ml_sub(ctx, ml_sub(ctx, ml_scale(ctx, qp, 2.0f), q2), p2);
}

ml_tensor *ml__unit_rows(ml_ctx *ctx, ml_tensor *x) {
    return ml_mul(ctx, x, ml_rsqrt(ctx, ml_add_scalar(ctx, ml_sum(ctx, ml_square(ctx, x), 2u, 1), 1e-8f)));
}

ml_tensor *ml_matching_logits(ml_ctx *ctx, ml_tensor *fs, const int32_t *ys, int ways, ml_tensor *fq,
                              ml_tensor *scale) {
    if (!fs || !fq) return NULL;
    ml_tensor *cos = ml_matmul(ctx, ml__unit_rows(ctx, fq), ml__unit_rows(ctx, fs), 0, 1); /* [nq, ns] */
    /* Cosines lie in [-1, 1], so without a scale the attention over 100
     * support images can never be sharp: on 20-way 5-shot episodes the loss
     * cannot go below ~1.3. A learned scale (as later cosine classifiers use)
     * removes that floor. */
    if (scale) cos = ml_mul(ctx, cos, scale);
    ml_tensor *attn = ml_softmax(ctx, cos);
    ml_tensor *probs = ml_matmul(ctx, attn, ml__episode_label_matrix(ctx, ys, fs->shape[0], ways, 0), 0, 0);
    return ml_log(ctx, ml_add_scalar(ctx, probs, 1e-12f));
}

ml_tensor *ml_r2d2_logits(ml_ctx *ctx, ml_tensor *fs, const int32_t *ys, int ways, ml_tensor *fq,
                          ml_tensor *log_lambda, ml_tensor *scale, ml_tensor *bias) {
    if (!fs || !fq || !log_lambda || !scale || !bias) return NULL;
    int64_t n = fs->shape[0];
    int was = ml_ctx_set_recording(ctx, 0);
    ml_tensor *eye = ml_eye(ctx, n);
    ml_ctx_set_recording(ctx, was);
    ml_tensor *gram = ml_matmul(ctx, fs, fs, 0, 1); /* X X^T [n, n]: cheap when n << D */
    ml_tensor *reg = ml_add(ctx, gram, ml_mul(ctx, eye, ml_exp(ctx, log_lambda)));
    ml_tensor *alpha = ml_matmul(ctx, ml_inverse(ctx, reg), ml__episode_label_matrix(ctx, ys, n, ways, 0), 0, 0); /* [n, ways] */
    ml_tensor *w = ml_matmul(ctx, fs, alpha, 1, 0);                                                  /* [D, ways] */
    return ml_add(ctx, ml_mul(ctx, ml_matmul(ctx, fq, w, 0, 0), scale), bias);
}

/* ---- the rows' hooks ------------------------------------------------------------------------- */

ml_tensor *ml__protonet_head(ml_ctx *ctx, ml_tensor *fs, const int32_t *ys, int ways, ml_tensor *fq, ml_tensor **extra) {
    (void)extra;
    return ml_protonet_logits(ctx, fs, ys, ways, fq);
}

ml_tensor *ml__matching_head(ml_ctx *ctx, ml_tensor *fs, const int32_t *ys, int ways, ml_tensor *fq, ml_tensor **extra) {
    return ml_matching_logits(ctx, fs, ys, ways, fq, extra[0]);
}

ml_tensor *ml__r2d2_head(ml_ctx *ctx, ml_tensor *fs, const int32_t *ys, int ways, ml_tensor *fq, ml_tensor **extra) {
    return ml_r2d2_logits(ctx, fs, ys, ways, fq, extra[0], extra[1], extra[2]);
}

/* Matching Networks' learned scale, when matching_scale > 0 (the model is not needed). */
int ml__matching_extras(const ml_meta_config *cfg, const ml_model *model, ml_meta_tensor *out) {
    (void)model;
    if (!(cfg->matching_scale > 0)) return 0;
    ml__meta_extra_set(&out[0], "matching.scale", 1, ML_SHAPE(1), 0, cfg->matching_scale);
    return 1;
}

/* R2-D2's log lambda, scale and bias: lambda = 1, scale = 1, bias = 0. */
int ml__r2d2_extras(const ml_meta_config *cfg, const ml_model *model, ml_meta_tensor *out) {
    (void)cfg;
    (void)model;
    ml__meta_extra_set(&out[0], "r2d2.log_lambda", 1, ML_SHAPE(1), 0, 0.0f);
    ml__meta_extra_set(&out[1], "r2d2.scale", 1, ML_SHAPE(1), 1, 1.0f);
    ml__meta_extra_set(&out[2], "r2d2.bias", 1, ML_SHAPE(1), 2, 0.0f);
    return 3;
}

/* Logits of the episode: support and query embedded in one batch (batch
 * norm sees the whole episode), then the row's head. */
static ml_tensor *episode_logits(ml_ctx *ctx, const ml_meta *m, ml_tensor **theta, ml_tensor **extra,
                                 const ml_task_data *t) {
    ml_tensor *f = ml__meta_embed_episode(ctx, m, theta, t);
    ml_tensor *fs = ml_narrow(ctx, f, 0, t->n_support), *fq = ml_narrow(ctx, f, t->n_support, t->n_query);
    return ml__learner_of(m->cfg.algo)->episode_head(ctx, fs, t->ls, t->ways, fq, extra);
}

void ml__metric_step_task(ml_meta *m, ml_meta_worker *w, int item, const ml_task_data *t) {
    ml_ctx *ctx = w->ctx;
    ml_ctx_reset(ctx);
    ml_tensor *theta[ML_MAX_PARAMS], *extra[ML_META_MAX_EXTRAS];
    ml_model_wrap(ctx, m->model, m->meta, theta);
    int n_extra = ml__meta_wrap_extras(ctx, m, extra);
    ml_tensor *loss = ml_cross_entropy(ctx, episode_logits(ctx, m, theta, extra, t), t->lq);
    ml__meta_task_gradient(m, w, item, loss, theta, extra, n_extra);
}

/* No adaptation steps: the same result at every step count. */
void ml__metric_eval_task(const ml__eval_job *job, ml_meta_worker *w, int item) {
    ml_meta *m = job->m;
    const ml_task_data *t = &job->tasks[item];
    ml_ctx *ctx = w->ctx;
    int stride = job->max_steps + 1;
    ml_ctx_reset(ctx);
    ml_ctx_set_recording(ctx, 0);
    ml_tensor *params[ML_MAX_PARAMS], *extra[ML_META_MAX_EXTRAS];
    ml__meta_wrap_extras(ctx, m, extra);
    ml_model_wrap(ctx, m->model, m->meta, params);
    ml_tensor *logits = episode_logits(ctx, m, params, extra, t);
    ml_tensor *q = ml_cross_entropy(ctx, logits, t->lq);
    ml_ctx_set_recording(ctx, 1);
    if (!q) {
        ml__meta_fail_task(m, w, item, "evaluation episode");
        return;
    }
    double acc = ml__meta_accuracy(logits, t->lq);
    if (job->pred) ml__meta_argmax_rows(logits, job->pred);
    if (job->out) ml__meta_copy_outputs(logits, job->out);
    for (int s = 0; s < stride; s++) {
        job->loss_at[item * stride + s] = q->data[0];
        if (job->acc_at) job->acc_at[item * stride + s] = acc;
    }
}
