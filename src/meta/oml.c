/* oml.c: OML, online-aware meta-learning (Javed & White 2019, Meta-Learning
 * Representations for Continual Learning). The network is split into a
 * representation (every layer but the last: conv blocks or the first MLP
 * layers), meta-learned and frozen when learning a new task, and a
 * prediction head learned online, one example at a time.
 *
 * Meta-training step on one episode (a few classes or one sine function):
 *   f = representation(trajectory, query and remembered images in one batch)
 *   head: classification with a class head (pretrain_classes > 0, what a run
 *         sets up): the meta-learned head over all training classes with the
 *         rows of the trajectory's classes reset to zero (the reference's
 *         reset); without one (the library's plain episodes) a new zero head
 *         of the episode's ways; regression the meta-learned one-output head
 *   for each trajectory example i in class order:
 *       head -= inner_lr * d loss(head; f_i) / d head     (recorded: second order)
 *   meta-loss = mean loss of the final head over the trajectory, the query
 *   images (other images of the trajectory's classes) and the remembered
 *   batch (random images of all training classes: replay, scored by every
 *   row of the class head, so learning the new classes must not overwrite
 *   the others).
 * The meta-gradient reaches the representation through f in every inner step
 * (exact with second order; with the first-order row the inner gradients are
 * constants) and the class head through its start. --inner-steps is the
 * number of passes over the trajectory (OML: 1). At evaluation the head
 * learns the support set the same way (plain SGD, one example at a time, one
 * pass per step) from zero on frozen features.
 *
 * As the reference (khurramjaved96/mrcl): 3 classes x 5 images per
 * trajectory, 5 more of each and 15 remembered images in the meta-loss,
 * inner rate 0.03. Differences: the remembered images come from all training
 * classes (the reference draws trajectories and replay from two halves); the
 * network is this library's cnn4/MLP with one linear layer as the head. Rows
 * in learners.c; the continual-learning protocol is src/eval/continual.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "meta_internal.h"
#include "metalearn/continual.h"

/* Features of the whole episode [ns + nq, D] through the representation. */
/* Features of the whole episode [ns + nq (+ remembered), D] through the representation. */
static ml_tensor *episode_features(ml_ctx *ctx, const ml_meta *m, ml_tensor **params, const ml_task_data *t,
                                   int remembered) {
    ml_model *model = m->model;
    int64_t per = (int64_t)model->spec.in_c * model->spec.in_h * model->spec.in_w;
    ml_tensor *x = ml_concat0(ctx, ml_tensor_wrap(ctx, (float *)t->xs, 2, ML_SHAPE(t->n_support, per)),
                              ml_tensor_wrap(ctx, (float *)t->xq, 2, ML_SHAPE(t->n_query, per)));
    if (remembered && t->n_remember > 0)
        x = ml_concat0(ctx, x, ml_tensor_wrap(ctx, (float *)t->xr, 2, ML_SHAPE(t->n_remember, per)));
    return ml_model_features(ctx, model, params, x, 1, 0);
}

static int classifies(const ml_meta *m) { return m->cfg.loss == ML_LOSS_CROSS_ENTROPY; }

/* The representation's output size: the input size of the model's last layer. */
static int64_t feature_dim(const ml_model *model) { return model->params[model->n_params - 2].shape[1]; }

/* The class head after theta (classification with pretrain_classes > 0):
 * weight [C, D] then bias [C], zero at the start. */
int ml__oml_extras(const ml_meta_config *cfg, const ml_model *model, ml_meta_tensor *out) {
    int64_t C = cfg->pretrain_classes;
    if (C < 1 || cfg->loss != ML_LOSS_CROSS_ENTROPY) return 0;
    int64_t D = feature_dim(model);
    ml__meta_extra_set(&out[0], "oml.head.weight", 2, ML_SHAPE(C, D), 0, 0.0f);
    ml__meta_extra_set(&out[1], "oml.head.bias", 1, ML_SHAPE(C), C * D, 0.0f);
    return 2;
}

/* Loss of the head (w [C, D], b [C]) on rows [start, start + n) of f. */
static ml_tensor *head_loss(ml_ctx *ctx, const ml_meta *m, ml_tensor *f, int64_t start, int64_t n, ml_tensor *w,
                            ml_tensor *b, const int32_t *labels, const float *targets) {
    ml_tensor *out = ml_linear(ctx, ml_narrow(ctx, f, start, n), w, b);
    if (classifies(m)) return ml_cross_entropy(ctx, out, labels);
    return ml_mse(ctx, out, ml_tensor_wrap(ctx, (float *)targets, 2, ML_SHAPE(n, 1)));
}

/* The class-head step: trajectory labels are training classes
 * (t->classes), the meta-loss adds the remembered batch. labels[ns + nq + nr]
 * holds every row's training class. */
static ml_tensor *class_head_trajectory(ml_ctx *ctx, const ml_meta *m, ml_tensor *f, ml_tensor *hw, ml_tensor *hb,
                                        const ml_task_data *t, const int32_t *labels, int second) {
    const int64_t C = hw->shape[0], all = f->shape[0];
    ml_tensor *keep = ml_tensor_new(ctx, 2, ML_SHAPE(C, 1)); /* 0 on the trajectory's rows: OML's reset */
    if (!keep) return NULL;
    for (int64_t c = 0; c < C; c++) keep->data[c] = 1.0f;
    for (int k = 0; k < t->ways; k++) keep->data[t->classes[k]] = 0.0f;
    hw = ml_mul(ctx, hw, keep);
    hb = ml_mul(ctx, hb, ml_reshape(ctx, keep, 1, ML_SHAPE(C)));
    for (int pass = 0; pass < m->cfg.inner_steps; pass++)
        for (int i = 0; i < t->n_support; i++) {
            ml_tensor *li = ml_cross_entropy(ctx, ml_linear(ctx, ml_narrow(ctx, f, i, 1), hw, hb), labels + i);
            ml_tensor *wrt[2] = {hw, hb}, *g[2];
            if (ml_grad(ctx, li, wrt, 2, second, g) != ML_OK) return NULL;
            hw = ml_sub(ctx, hw, ml_scale(ctx, g[0], m->cfg.inner_lr));
            hb = ml_sub(ctx, hb, ml_scale(ctx, g[1], m->cfg.inner_lr));
        }
    return ml_cross_entropy(ctx, ml_linear(ctx, ml_narrow(ctx, f, 0, all), hw, hb), labels);
}

/* Training labels of every row (trajectory, query, remembered), or NULL
 * with ctx failed (a label outside the head). */
static int32_t *class_labels(ml_ctx *ctx, const ml_task_data *t, int64_t C) {
    int64_t n = (int64_t)t->n_support + t->n_query + t->n_remember;
    int32_t *y = malloc((size_t)(n > 0 ? n : 1) * sizeof *y);
    if (!y) {
        ml_ctx_fail(ctx, ML_ERR_NOMEM, "out of memory for %lld labels", (long long)n);
        return NULL;
    }
    int64_t j = 0;
    for (int i = 0; i < t->n_support; i++) y[j++] = t->ls[i] >= 0 && t->ls[i] < t->ways ? t->classes[t->ls[i]] : -1;
    for (int i = 0; i < t->n_query; i++) y[j++] = t->lq[i] >= 0 && t->lq[i] < t->ways ? t->classes[t->lq[i]] : -1;
    for (int i = 0; i < t->n_remember; i++) y[j++] = t->lr[i];
    for (int64_t i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= C) {
            ml_ctx_fail(ctx, ML_ERR_ARG, "example %lld has training class %d, the head has %lld", (long long)i,
                        y[i], (long long)C);
            free(y);
            return NULL;
        }
    return y;
}

void ml__oml_step_task(ml_meta *m, ml_meta_worker *w, int item, const ml_task_data *t) {
    ml_model *model = m->model;
    ml_ctx *ctx = w->ctx;
    ml_ctx_reset(ctx);
    int np = model->n_params;
    ml_tensor *theta[ML_MAX_PARAMS], *head[ML_META_MAX_EXTRAS];
    ml_model_wrap(ctx, model, m->meta, theta);
    int n_head = ml__meta_wrap_extras(ctx, m, head);
    int second = ml__learner_of(m->cfg.algo)->second_order;
    if (n_head == 2) { /* the class head and the remembered batch */
        if (!head[0] || !head[1] || !t->classes || (t->n_remember > 0 && (!t->xr || !t->lr))) {
            ml_ctx_fail(ctx, ML_ERR_ARG, "a class head needs the episode's training classes (and remembered images)");
            ml__meta_fail_task(m, w, item, "oml");
            return;
        }
        int32_t *labels = class_labels(ctx, t, head[0]->shape[0]);
        ml_tensor *f = labels ? episode_features(ctx, m, theta, t, 1) : NULL;
        ml_tensor *loss = f ? class_head_trajectory(ctx, m, f, head[0], head[1], t, labels, second) : NULL;
        if (!loss) {
            free(labels);
            ml__meta_fail_task(m, w, item, "oml trajectory");
            return;
        }
        ml__meta_task_gradient(m, w, item, loss, theta, head, 2);
        free(labels);
        return;
    }
    ml_tensor *f = episode_features(ctx, m, theta, t, 0);
    if (!f) {
        ml__meta_fail_task(m, w, item, "representation");
        return;
    }
    int64_t D = f->shape[1];
    ml_tensor *hw = theta[np - 2], *hb = theta[np - 1];
    if (classifies(m)) { /* no class head: the trajectory's output units start at zero */
        hw = ml_tensor_zeros(ctx, 2, ML_SHAPE(t->ways, D));
        hb = ml_tensor_zeros(ctx, 1, ML_SHAPE(t->ways));
    }
    const float lr = m->cfg.inner_lr;
    for (int pass = 0; pass < m->cfg.inner_steps; pass++)
        for (int i = 0; i < t->n_support; i++) {
            ml_tensor *li = head_loss(ctx, m, f, i, 1, hw, hb, t->ls ? t->ls + i : NULL, t->ys ? t->ys + i : NULL);
            ml_tensor *wrt[2] = {hw, hb}, *g[2];
            if (ml_grad(ctx, li, wrt, 2, second, g) != ML_OK) {
                ml__meta_fail_task(m, w, item, "online step");
                return;
            }
            hw = ml_sub(ctx, hw, ml_scale(ctx, g[0], lr));
            hb = ml_sub(ctx, hb, ml_scale(ctx, g[1], lr));
        }
    /* The meta-loss: the trajectory and the remembered (query) examples. */
    int64_t ns = t->n_support, nq = t->n_query;
    ml_tensor *loss = head_loss(ctx, m, f, 0, ns, hw, hb, t->ls, t->ys);
    if (nq > 0) {
        ml_tensor *lq = head_loss(ctx, m, f, ns, nq, hw, hb, t->lq, t->yq);
        float ws = (float)ns / (float)(ns + nq);
        loss = ml_add(ctx, ml_scale(ctx, loss, ws), ml_scale(ctx, lq, 1.0f - ws));
    }
    ml__meta_task_gradient(m, w, item, loss, theta, NULL, 0);
}

/* Query loss (and accuracy) of the head on the frozen features. */
static void score_query(const ml_meta *m, const ml_task_data *t, const float *fq, int64_t D, const float *hw,
                        const float *hb, int C, float *outs, double *loss, double *acc) {
    int64_t right = 0;
    double sum = 0;
    for (int q = 0; q < t->n_query; q++) {
        float *o = outs + (int64_t)q * C;
        ml_linear_head_forward(hw, hb, C, D, fq + (int64_t)q * D, o);
        if (classifies(m)) {
            float mx = o[0];
            int best = 0;
            for (int c = 1; c < C; c++)
                if (o[c] > o[best]) best = c;
            mx = o[best];
            double z = 0;
            for (int c = 0; c < C; c++) z += exp((double)(o[c] - mx));
            sum += log(z) - (double)(o[t->lq[q]] - mx);
            right += best == t->lq[q];
        } else {
            double d = (double)o[0] - (double)t->yq[q];
            sum += d * d;
        }
    }
    *loss = t->n_query ? sum / t->n_query : 0;
    if (acc) *acc = t->n_query ? (double)right / t->n_query : 0;
}

void ml__oml_eval_task(const ml__eval_job *job, ml_meta_worker *w, int item) {
    ml_meta *m = job->m;
    const ml_task_data *t = &job->tasks[item];
    ml_model *model = m->model;
    ml_ctx *ctx = w->ctx;
    int np = model->n_params, stride = job->max_steps + 1;
    ml_tensor *theta[ML_MAX_PARAMS];
    ml_ctx_reset(ctx);
    ml_ctx_set_recording(ctx, 0);
    ml_model_wrap(ctx, model, m->meta, theta);
    ml_tensor *f = episode_features(ctx, m, theta, t, 0);
    ml_ctx_set_recording(ctx, 1);
    if (!f) {
        ml__meta_fail_task(m, w, item, "evaluation representation");
        return;
    }
    const int64_t D = f->shape[1], ns = t->n_support;
    const int C = classifies(m) ? t->ways : 1;
    if (C < 1 || ml__meta_grow_floats(&w->head, &w->head_cap, (int64_t)C * (D + 1) + (int64_t)t->n_query * C)) {
        ml_ctx_fail(ctx, ML_ERR_NOMEM, "out of memory for a %d-output head", C);
        ml__meta_fail_task(m, w, item, "oml evaluation");
        return;
    }
    float *hw = w->head, *hb = hw + (int64_t)C * D, *outs = hb + C;
    if (classifies(m)) {
        memset(w->head, 0, (size_t)C * (D + 1) * sizeof(float));
    } else {
        memcpy(hw, m->meta + model->params[np - 2].offset, (size_t)(C * D) * sizeof(float));
        memcpy(hb, m->meta + model->params[np - 1].offset, (size_t)C * sizeof(float));
    }
    const float *fq = f->data + ns * D;
    for (int s = 0; s <= job->max_steps; s++) {
        double loss = NAN, acc = NAN;
        if (!job->report || s == job->max_steps || job->report[s])
            score_query(m, t, fq, D, hw, hb, C, outs, &loss, &acc);
        job->loss_at[item * stride + s] = loss;
        if (job->acc_at) job->acc_at[item * stride + s] = classifies(m) ? acc : NAN;
        if (job->out) ml_progress_report(&m->progress, "adaptation", s, job->max_steps);
        if (s == job->max_steps) {
            for (int q = 0; q < t->n_query; q++) {
                const float *o = outs + (int64_t)q * C;
                int best = 0;
                for (int c = 1; c < C; c++)
                    if (o[c] > o[best]) best = c;
                if (job->pred && classifies(m)) job->pred[q] = best;
            }
            if (job->out) memcpy(job->out, outs, (size_t)t->n_query * C * sizeof(float));
            break;
        }
        for (int64_t i = 0; i < ns; i++) { /* one online pass over the support set */
            if (classifies(m))
                ml_linear_head_step_ce(hw, hb, C, D, f->data + i * D, t->ls[i], m->cfg.inner_lr);
            else
                ml_linear_head_step_mse(hw, hb, D, f->data + i * D, t->ys[i], m->cfg.inner_lr);
        }
    }
}
