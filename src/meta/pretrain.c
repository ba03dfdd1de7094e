/* pretrain.c: the transfer baseline ("Baseline" of Chen et al. 2019, A Closer
 * Look at Few-shot Classification): the 4-block CNN as an embedding plus one
 * linear classifier over all training classes, trained on supervised
 * minibatches (the multi-task loss summed over every training class). At
 * evaluation each episode gets a new, zero-initialised N-way linear head on
 * the frozen features, trained on the support set by plain gradient steps at
 * inner_lr; with finetune_all the embedding is fine-tuned too.
 *
 * Batch norm uses the statistics of the current batch, as every learner here
 * does: the training minibatch, and at evaluation the whole episode (support
 * and query embedded together, as the metric learners do), so all learners
 * see the same normalisation on the same episodes. */
#include <stdio.h>
#include <string.h>

#include "meta_internal.h"

int64_t ml__pretrain_feature_dim(const ml_model *model) {
    const ml_model_spec *s = &model->spec;
    int64_t h = s->in_h, w = s->in_w;
    for (int b = 0; b < s->blocks; b++) {
        h /= 2;
        w /= 2;
    }
    return (int64_t)s->filters * h * w;
}

static ml_tensor *linear_logits(ml_ctx *ctx, ml_tensor *f, ml_tensor *weight, ml_tensor *bias) {
    return ml_add(ctx, ml_matmul(ctx, f, weight, 0, 1), bias); /* f W^T + b, b broadcast over rows */
}

/* The big head over all training classes after theta: weight [C, D] then
 * bias [C], zero at the start; none when only evaluating (pretrain_classes 0). */
int ml__pretrain_extras(const ml_meta_config *cfg, const ml_model *model, ml_meta_tensor *out) {
    int64_t C = cfg->pretrain_classes;
    if (C < 1) return 0;
    int64_t D = ml__pretrain_feature_dim(model);
    ml__meta_extra_set(&out[0], "pretrain.head.weight", 2, ML_SHAPE(C, D), 0, 0.0f);
    ml__meta_extra_set(&out[1], "pretrain.head.bias", 1, ML_SHAPE(C), C * D, 0.0f);
    return 2;
}

ml_status ml__pretrain_check(const ml_meta_config *cfg, const ml_model *model, char *err, size_t errlen) {
    if (cfg->pretrain_classes < 0 || model->spec.kind != ML_MODEL_CNN4 || model->spec.n_out != 0) {
        snprintf(err, errlen, "meta: pretrain takes a cnn4 embedding (no head) and a class count >= 0");
        return ML_ERR_ARG;
    }
    return ML_OK;
}

/* Training: cross-entropy of one supervised minibatch (t->xs, labels t->ls
 * in 0 .. pretrain_classes-1) through the embedding and the big head. */
void ml__pretrain_step_task(ml_meta *m, ml_meta_worker *w, int item, const ml_task_data *t) {
    ml_model *model = m->model;
    ml_ctx *ctx = w->ctx;
    ml_ctx_reset(ctx);
    int64_t per = (int64_t)model->spec.in_c * model->spec.in_h * model->spec.in_w;
    ml_tensor *theta[ML_MAX_PARAMS], *head[ML_META_MAX_EXTRAS], *loss = NULL;
    ml_model_wrap(ctx, model, m->meta, theta);
    int n_extra = ml__meta_wrap_extras(ctx, m, head);
    if (n_extra != 2) {
        ml_ctx_fail(ctx, ML_ERR_STATE, "pretrain: no training head (evaluation-only setup)");
    } else {
        ml_tensor *x = ml_tensor_wrap(ctx, (float *)t->xs, 2, ML_SHAPE(t->n_support, per));
        ml_tensor *f = ml_model_forward(ctx, model, theta, x, 1, 0);
        loss = ml_cross_entropy(ctx, linear_logits(ctx, f, head[0], head[1]), t->ls);
    }
    ml__meta_task_gradient(m, w, item, loss, theta, head, n_extra);
}

/* The episode's features: recomputed from phi when the embedding adapts,
 * else the frozen ones computed once. */
static ml_tensor *features(ml_ctx *ctx, const ml_meta *m, ml_meta_worker *w, const ml_task_data *t,
                           ml_tensor **params, int64_t D) {
    if (!m->cfg.finetune_all)
        return ml_tensor_wrap(ctx, w->feat, 2, ML_SHAPE((int64_t)t->n_support + t->n_query, D));
    ml_model_wrap(ctx, m->model, w->phi, params);
    return ml__meta_embed_episode(ctx, m, params, t);
}

void ml__pretrain_eval(const ml__eval_job *job, ml_meta_worker *w, int item) {
    ml_meta *m = job->m;
    const ml_task_data *t = &job->tasks[item];
    const int max_steps = job->max_steps;
    double *loss_row = job->loss_at + (int64_t)item * (max_steps + 1);
    double *acc_row = job->acc_at ? job->acc_at + (int64_t)item * (max_steps + 1) : NULL;
    int32_t *pred = job->pred;
    float *out = job->out;
    ml_model *model = m->model;
    ml_ctx *ctx = w->ctx;
    const int np = model->n_params, all = m->cfg.finetune_all, ways = t->ways;
    const int64_t D = ml__pretrain_feature_dim(model), ns = t->n_support, nq = t->n_query;
    ml_tensor *params[ML_MAX_PARAMS], *grads[ML_MAX_PARAMS + 2], *wrt[ML_MAX_PARAMS + 2];
    if (ways < 1 || ml__meta_grow_floats(&w->head, &w->head_cap, (int64_t)ways * (D + 1)) ||
        (!all && ml__meta_grow_floats(&w->feat, &w->feat_cap, (ns + nq) * D))) {
        ml_ctx_fail(ctx, ML_ERR_NOMEM, "out of memory for a %d-way head", ways);
        ml__meta_fail_task(m, w, item, "pretrain evaluation");
        return;
    }
    memset(w->head, 0, (size_t)ways * (D + 1) * sizeof(float)); /* a new head per episode */
    memcpy(w->phi, m->meta, (size_t)m->n * sizeof(float));
    if (!all) { /* frozen embedding: one forward pass for the whole episode */
        ml_ctx_reset(ctx);
        ml_ctx_set_recording(ctx, 0);
        ml_model_wrap(ctx, model, m->meta, params);
        ml_tensor *f = ml__meta_embed_episode(ctx, m, params, t);
        ml_ctx_set_recording(ctx, 1);
        if (!f) {
            ml__meta_fail_task(m, w, item, "pretrain evaluation features");
            return;
        }
        memcpy(w->feat, f->data, (size_t)((ns + nq) * D) * sizeof(float));
    }
    float *hw = w->head, *hb = w->head + (int64_t)ways * D;
    for (int s = 0; s <= max_steps; s++) {
        ml_ctx_reset(ctx);
        ml_ctx_set_recording(ctx, 0);
        ml_tensor *fq = ml_narrow(ctx, features(ctx, m, w, t, params, D), ns, nq);
        ml_tensor *logits = linear_logits(ctx, fq, ml_tensor_wrap(ctx, hw, 2, ML_SHAPE(ways, D)),
                                          ml_tensor_wrap(ctx, hb, 1, ML_SHAPE(ways)));
        ml_tensor *q = ml_cross_entropy(ctx, logits, t->lq);
        ml_ctx_set_recording(ctx, 1);
        if (!q) {
            ml__meta_fail_task(m, w, item, "pretrain evaluation query pass");
            return;
        }
        loss_row[s] = q->data[0];
        if (acc_row) acc_row[s] = ml__meta_accuracy(logits, t->lq);
        if (s == max_steps) {
            if (pred) ml__meta_argmax_rows(logits, pred);
            if (out) ml__meta_copy_outputs(logits, out);
            break;
        }
        /* One plain gradient step on the support loss. */
        ml_ctx_reset(ctx);
        ml_tensor *fs = ml_narrow(ctx, features(ctx, m, w, t, params, D), 0, ns);
        wrt[0] = ml_tensor_wrap(ctx, hw, 2, ML_SHAPE(ways, D));
        wrt[1] = ml_tensor_wrap(ctx, hb, 1, ML_SHAPE(ways));
        int nw = 2;
        if (all)
            for (int i = 0; i < np; i++) wrt[nw++] = params[i];
        ml_tensor *ls = ml_cross_entropy(ctx, linear_logits(ctx, fs, wrt[0], wrt[1]), t->ls);
        if (ml_grad(ctx, ls, wrt, nw, 0, grads) != ML_OK) {
            ml__meta_fail_task(m, w, item, "pretrain evaluation step");
            return;
        }
        const float lr = m->cfg.inner_lr;
        for (int64_t j = 0; j < (int64_t)ways * D; j++) hw[j] -= lr * grads[0]->data[j];
        for (int j = 0; j < ways; j++) hb[j] -= lr * grads[1]->data[j];
        for (int i = 0; all && i < np; i++) {
            float *p = w->phi + model->params[i].offset;
            const float *g = grads[2 + i]->data;
            for (int64_t j = 0; j < model->params[i].numel; j++) p[j] -= lr * g[j];
        }
    }
}
