/* oml.c: OML, online-aware meta-learning (Javed & White 2019, Meta-Learning
 * Representations for Continual Learning). The network is split into a
 * representation (every layer but the last: conv blocks or the first MLP
 * layers), meta-learned and frozen when learning a new task, and a
 * prediction head (the last linear layer) learned online, one example at a
 * time.
 *
 * Meta-training step on one episode (a few classes or one sine function):
 *   f = representation(support and query in one batch)  (batch norm sees it all)
 *   head: classification a new zero head per trajectory (OML resets the output
 *         units of the trajectory's classes), regression the meta-learned head
 *   for each support example i in class order (the trajectory):
 *       head -= inner_lr * d loss(head; f_i) / d head     (recorded: second order)
 *   meta-loss = loss of the final head on the trajectory and the query images
 *   (the episode's other images of the same classes: what it should remember).
 * The meta-gradient reaches the representation through f in every inner step
 * (exact with second order; with the first-order row the inner gradients are
 * constants). --inner-steps is the number of passes over the trajectory
 * (OML: 1). At evaluation the head learns the support set the same way
 * (plain SGD, one example at a time, one pass per step) on frozen features.
 *
 * Differences from the reference: the remembered batch is the query images of
 * the trajectory's classes (the reference adds 15 images of other training
 * classes, scored by a head kept over all training classes); the network is
 * this library's cnn4/MLP. Rows in learners.c; the continual-learning protocol
 * is src/eval/continual.c. */
#include <math.h>
#include <string.h>

#include "meta_internal.h"
#include "metalearn/continual.h"

/* Features of the whole episode [ns + nq, D] through the representation. */
static ml_tensor *episode_features(ml_ctx *ctx, const ml_meta *m, ml_tensor **params, const ml_task_data *t) {
    ml_model *model = m->model;
    int64_t per = (int64_t)model->spec.in_c * model->spec.in_h * model->spec.in_w;
    ml_tensor *x = ml_concat0(ctx, ml_tensor_wrap(ctx, (float *)t->xs, 2, ML_SHAPE(t->n_support, per)),
                              ml_tensor_wrap(ctx, (float *)t->xq, 2, ML_SHAPE(t->n_query, per)));
    return ml_model_features(ctx, model, params, x, 1, 0);
}

static int classifies(const ml_meta *m) { return m->cfg.loss == ML_LOSS_CROSS_ENTROPY; }

/* Loss of the head (w [C, D], b [C]) on rows [start, start + n) of f. */
static ml_tensor *head_loss(ml_ctx *ctx, const ml_meta *m, ml_tensor *f, int64_t start, int64_t n, ml_tensor *w,
                            ml_tensor *b, const int32_t *labels, const float *targets) {
    ml_tensor *out = ml_linear(ctx, ml_narrow(ctx, f, start, n), w, b);
    if (classifies(m)) return ml_cross_entropy(ctx, out, labels);
    return ml_mse(ctx, out, ml_tensor_wrap(ctx, (float *)targets, 2, ML_SHAPE(n, 1)));
}

void ml__oml_step_task(ml_meta *m, ml_meta_worker *w, int item, const ml_task_data *t) {
    ml_model *model = m->model;
    ml_ctx *ctx = w->ctx;
    ml_ctx_reset(ctx);
    int np = model->n_params;
    ml_tensor *theta[ML_MAX_PARAMS];
    ml_model_wrap(ctx, model, m->meta, theta);
    ml_tensor *f = episode_features(ctx, m, theta, t);
    if (!f) {
        ml__meta_fail_task(m, w, item, "representation");
        return;
    }
    int64_t D = f->shape[1];
    ml_tensor *hw = theta[np - 2], *hb = theta[np - 1];
    if (classifies(m)) { /* OML's reset: the trajectory's output units start at zero */
        hw = ml_tensor_zeros(ctx, 2, ML_SHAPE(t->ways, D));
        hb = ml_tensor_zeros(ctx, 1, ML_SHAPE(t->ways));
    }
    int second = ml__learner_of(m->cfg.algo)->second_order;
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
    ml_tensor *f = episode_features(ctx, m, theta, t);
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
