/* maml.c: the hooks of the learners that adapt by gradient steps, sharing
 * one inner loop: MAML (second order: inner gradients recorded with
 * create_graph), first-order MAML (inner gradients unrecorded, so
 * d fast / d theta is the identity), Meta-SGD (per-parameter rates as
 * meta-parameters, its extras), ANIL (only the head adapts), Reptile
 * (theta - phi as the task's gradient) and the multi-task baseline (loss of
 * all the task's points, no adaptation; fine-tuned at evaluation). Their rows
 * are in learners.c; the driver in meta.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta_internal.h"
#include "tensor/conv.h"
#include "tensor/internal.h"

/* First parameter the inner loop adapts: ANIL adapts only the head (the last
 * weight and bias), the others every parameter. */
static int first_adapted(const ml_meta *m) {
    return ml__learner_of(m->cfg.algo)->info.adapts == ML_ADAPT_HEAD ? m->model->n_params - 2 : 0;
}

int ml__metasgd_extras(const ml_meta_config *cfg, const ml_model *model, ml_meta_tensor *out) {
    for (int i = 0; i < model->n_params; i++) {
        const ml_param_info *p = &model->params[i];
        char name[ML_PARAM_NAME_LEN + 16];
        snprintf(name, sizeof name, "alpha.%s", p->name);
        ml__meta_extra_set(&out[i], name, p->ndim, p->shape, p->offset, cfg->inner_lr);
    }
    return model->n_params;
}

/* Block 1's gradients for its conv weight and bias, gamma and beta (d[0..3])
 * from dh at its output h, when its batch norm's kept values (bn, of
 * ml__bn_pool_keep) spare the batch norm forward: the conv output computed
 * again (x4: the query images as the model's forward shapes them), the
 * batch norm's backward from the kept values with dx over the conv output,
 * then the walk from the conv output for the conv's weight and bias. The
 * rules, their order and their values are those of one walk from h. */
static int block1_backward_kept(ml_ctx *ctx, ml_tensor **fast, ml_tensor *x4, ml_tensor *h, void *bn, ml_tensor *dh,
                                ml_tensor **d) {
    ml_tensor *conv = ml_conv2d(ctx, x4, fast[0], 1, 1), *din[3];
    ml__bn_pool_backward_kept(ctx, conv, fast[2], fast[3], h, bn, dh, din);
    if (!din[0] || ml_grad_seed(ctx, conv, din[0], fast, 2, 0, d) != ML_OK) return -1;
    d[2] = din[1], d[3] = din[2];
    return 0;
}

/* Blocks 2.. and the loss from h (block 1's output, a leaf outside the
 * arena) at the adapted weights: the loss into *loss, the gradients of
 * parameters nb.. into g[], dh (the gradient at h) into dh_out (outside the
 * arena: in it, dh would stay alive through this pass's peak, block 2's
 * backward-weights, without being written until its end); the arena as it
 * was on return. */
static int blocks_after_first(ml_meta *m, ml_ctx *ctx, const ml_task_data *t, ml_tensor **fast, ml_tensor *h, int nb,
                              ml_tensor **g, float *dh_out, float *loss) {
    ml_model *model = m->model;
    const int np = model->n_params;
    ml_tensor *d[ML_MAX_PARAMS + 1], *wrt[ML_MAX_PARAMS + 1];
    ml_ctx_mark rest = ml_ctx_get_mark(ctx);
    ml_tensor *l = ml__meta_loss_of(ctx, m, ml_model_forward_blocks(ctx, model, fast, h, 1, model->spec.blocks, 1, 0),
                                    t->yq, t->lq, t->n_query);
    for (int i = nb; i < np; i++) wrt[i - nb] = fast[i];
    wrt[np - nb] = h;
    if (!l || ml_grad(ctx, l, wrt, np - nb + 1, 0, d) != ML_OK) return -1;
    *loss = l->data[0];
    for (int i = nb; i < np; i++) memcpy(g[i]->data, d[i - nb]->data, (size_t)g[i]->numel * sizeof(float));
    memcpy(dh_out, d[np - nb]->data, (size_t)h->numel * sizeof(float));
    ml_ctx_rewind(ctx, rest);
    return 0;
}

/* Whether the query pass takes block 1 lean (conv_bn_pool_lean.c): a CNN of
 * two blocks or more whose first conv has few enough patch entries (c_in *
 * 3 * 3 <= ML_LEAN_MAX_K: Omniglot's 1 channel, RGB's 3), unless the run
 * asks for the exact walk through the conv output. */
static int lean_block1(const ml_meta *m) {
    const ml_model_spec *s = &m->model->spec;
    return !m->cfg.exact_first_block && s->kind != ML_MODEL_MLP && s->blocks >= 2 && s->in_c * 9 <= ML_LEAN_MAX_K &&
           s->in_h >= 2 && s->in_w >= 2;
}

/* The query gradient with block 1 lean: its forward keeps no conv output
 * (15 MB for a 5w1s q15 query at 28x28 x 64), only the pooled output h, the
 * codes and the statistics (w->kept, outside the arena: h, then the kept
 * values); the other blocks and the loss from h as a leaf, dh over h; then
 * block 1's backward from the kept values and the images. First order only:
 * the second order walks the inner steps' graph, not this pass. The values
 * differ from the walk through the float conv output by its rounding. */
static int query_gradient_lean(ml_meta *m, ml_meta_worker *w, const ml_task_data *t, ml_tensor **fast, ml_tensor **g,
                               float *loss) {
    ml_ctx *ctx = w->ctx;
    ml_model *model = m->model;
    const ml_model_spec *sp = &model->spec;
    const int nb = 4; /* conv weight, bias, gamma, beta */
    ml_tensor *d[ML_MAX_PARAMS + 1];
    ml_ctx_mark start = ml_ctx_get_mark(ctx);
    const int64_t nq = t->n_query, c = fast[0]->shape[0];
    const int64_t shape[4] = {nq, c, sp->in_h / 2, sp->in_w / 2}, n = nq * c * shape[2] * shape[3];
    const int64_t h_floats = (n + 1) / 2 * 2; /* the kept values' doubles 8-byte aligned */
    const int64_t floats = h_floats + (ml__lean_block_kept_bytes(c, n) + 3) / 4;
    if (ml__meta_grow_floats(&w->kept, &w->kept_cap, floats)) return -1;
    ml_tensor *x4 = ml_tensor_wrap(ctx, (float *)t->xq, 4, ML_SHAPE(nq, sp->in_c, sp->in_h, sp->in_w));
    if (!x4 || !ml__lean_block_fits(x4, fast[0], 1)) return -1;
    ml_lean_kept *kp = ml__lean_block_forward(ctx, x4, fast[0], fast[2], fast[3], 1, sp->bn_eps, w->kept + h_floats,
                                              w->kept);
    if (!kp) return -1;
    ml_ctx_rewind(ctx, start);

    ml_tensor *h = ml_tensor_wrap(ctx, w->kept, 4, shape);
    /* dh over h: the backward reads the codes, not h. Small conv scratch: a
     * worker's arena peaks here, above the inner step's graph. */
    const int was = ml__conv_dnnl_small_scratch(1);
    const int rc = !h || blocks_after_first(m, ctx, t, fast, h, nb, g, w->kept, loss);
    ml__conv_dnnl_small_scratch(was);
    if (rc) return -1;

    x4 = ml_tensor_wrap(ctx, (float *)t->xq, 4, ML_SHAPE(nq, sp->in_c, sp->in_h, sp->in_w));
    if (!x4 || ml__lean_block_backward(ctx, x4, fast[0], fast[2], kp, w->kept, d)) return -1;
    for (int i = 0; i < nb; i++) memcpy(g[i]->data, d[i]->data, (size_t)g[i]->numel * sizeof(float));
    ml_ctx_rewind(ctx, start);
    return 0;
}

/* The query loss's gradient at the adapted weights fast[] into g[] (tensors
 * made before the call) and its value into *loss; the arena as it was on
 * return. A CNN runs its first block's convolution twice, so that block's
 * activations (a 75-image query at 28x28: above all the 15 MB conv output)
 * are never alive beside the other blocks' and their backward's scratch,
 * when cfg.low_memory asks for it:
 *   1. block 1 forward; its output h is copied aside (w->kept) with, where
 *      it is a pooled batch norm on a plain conv (ml__bn_pool_kept_bytes),
 *      the batch norm's values its backward reads (mean, inv, var, xhat at
 *      each argmax, the argmax codes: 4.7 MB for 75 images); the rest is
 *      rewound;
 *   2. the other blocks and the head from h (a leaf), the loss, and its
 *      gradient for their weights and for h (dh, copied to w->kept: over h
 *      when h is not kept for step 3), the pass rewound;
 *   3. with the kept values, only block 1's conv forward again and the
 *      backward from them (block1_backward_kept, ~2 ms less than step 3's
 *      other form per 5w1s q15 task); otherwise block 1 forward again (the
 *      same kernels on the same inputs: the same bits) and dh walked back
 *      through it (ml_grad_seed).
 * The gradients are the same bits as one walk from the loss: that walk
 * reached h with dh (h has one reader, the second block's convolution) and
 * then ran block 1's rules on the same values. Otherwise, and for an MLP or
 * a CNN of one block, the plain forward and backward. */
static int query_gradient(ml_meta *m, ml_meta_worker *w, const ml_task_data *t, ml_tensor **fast, ml_tensor **g,
                          float *loss) {
    ml_ctx *ctx = w->ctx;
    ml_model *model = m->model;
    const int np = model->n_params, nb = 4; /* conv weight, bias, gamma, beta */
    ml_tensor *d[ML_MAX_PARAMS + 1];
    if (lean_block1(m)) return query_gradient_lean(m, w, t, fast, g, loss);
    ml_ctx_mark start = ml_ctx_get_mark(ctx);
    if (!m->cfg.low_memory || model->spec.kind == ML_MODEL_MLP || model->spec.blocks < 2) {
        ml_tensor *l = ml__meta_model_loss(ctx, m, fast, t->xq, t->yq, t->lq, t->n_query, NULL);
        if (ml_grad(ctx, l, fast, np, 0, d) != ML_OK) return -1;
        *loss = l->data[0];
        for (int i = 0; i < np; i++) memcpy(g[i]->data, d[i]->data, (size_t)g[i]->numel * sizeof(float));
        ml_ctx_rewind(ctx, start);
        return 0;
    }
    const int64_t per = (int64_t)model->spec.in_c * model->spec.in_h * model->spec.in_w;
    float *xq = (float *)t->xq;
    ml_tensor *h1 = ml_model_forward_blocks(ctx, model, fast, ml_tensor_wrap(ctx, xq, 2, ML_SHAPE(t->n_query, per)), 0,
                                            1, 1, 0);
    if (!h1) return -1;
    /* w->kept: h, then with the batch norm's kept values dh and those values */
    const int64_t n = h1->numel, bn_bytes = ml__bn_pool_kept_bytes(h1);
    const int64_t floats = bn_bytes ? 2 * n + (bn_bytes + (int64_t)sizeof(float) - 1) / (int64_t)sizeof(float) : n;
    if (ml__meta_grow_floats(&w->kept, &w->kept_cap, floats)) return -1;
    float *kept_h = w->kept, *kept_dh = bn_bytes ? w->kept + n : w->kept;
    void *bn = bn_bytes ? (void *)(w->kept + 2 * n) : NULL;
    memcpy(kept_h, h1->data, (size_t)n * sizeof(float));
    if (bn) ml__bn_pool_keep(h1, bn);
    int ndim = h1->ndim;
    int64_t shape[ML_MAX_DIMS];
    memcpy(shape, h1->shape, sizeof shape);
    ml_ctx_rewind(ctx, start);

    ml_tensor *h = ml_tensor_wrap(ctx, kept_h, ndim, shape);
    /* dh over h when step 3 runs the forward again: nothing reads h then */
    if (!h || blocks_after_first(m, ctx, t, fast, h, nb, g, kept_dh, loss)) return -1;

    ml_tensor *dh = ml_tensor_wrap(ctx, kept_dh, ndim, shape);
    ml_tensor *x = ml_tensor_wrap(ctx, xq, 2, ML_SHAPE(t->n_query, per));
    int failed;
    if (bn) {
        ml_tensor *x4 = ml_reshape(ctx, x, 4, ML_SHAPE(t->n_query, model->spec.in_c, model->spec.in_h, model->spec.in_w));
        failed = !dh || block1_backward_kept(ctx, fast, x4, h, bn, dh, d);
    } else {
        h1 = ml_model_forward_blocks(ctx, model, fast, x, 0, 1, 1, 0);
        failed = !dh || !h1 || ml_grad_seed(ctx, h1, dh, fast, nb, 0, d) != ML_OK;
    }
    if (failed) return -1;
    for (int i = 0; i < nb; i++) memcpy(g[i]->data, d[i]->data, (size_t)g[i]->numel * sizeof(float));
    ml_ctx_rewind(ctx, start);
    return 0;
}

/* Second-order meta-gradient in two walks, so that the query pass and the
 * walk back through the inner steps are never in memory together: the query
 * loss's gradient g' at the adapted weights needs no second-order graph, so it
 * is taken first (query forward + backward, consume mode), kept in tensors
 * made before the query pass, and the query pass is rewound; then g' is walked
 * back through the inner steps' recorded graph (ml_grad_seeds at fast[]). The
 * single walk computed the same: it reached fast[] with exactly g' (the query
 * pass reads nothing of the inner graph but fast[]), then went on through the
 * same nodes in the same order. The extras (Meta-SGD's rates) are read by the
 * inner steps only. Correct only if no fast[] tensor the query reads feeds
 * another: what the alias below ensures for the weights left as theta. */
static void split_task_gradient(ml_meta *m, ml_meta_worker *w, int item, const ml_task_data *t, ml_tensor **theta,
                                ml_tensor **fast, ml_tensor **extra, int n_extra) {
    ml_ctx *ctx = w->ctx;
    int np = m->model->n_params, nw = 0;
    ml_tensor *seed[ML_MAX_PARAMS];
    ml_tensor *wrt[ML_MAX_PARAMS + ML_META_MAX_EXTRAS], *meta_grads[ML_MAX_PARAMS + ML_META_MAX_EXTRAS];
    /* A weight the inner steps leave as theta (ANIL's body) also feeds the
     * inner steps: the query pass reads it through a leaf of its own, so
     * that the first walk takes only the query's direct path (the second
     * walk adds the path through the inner steps, as one walk would). */
    ml_tensor *query_fast[ML_MAX_PARAMS];
    for (int i = 0; i < np; i++) {
        seed[i] = ml_tensor_new(ctx, fast[i]->ndim, fast[i]->shape);
        query_fast[i] = fast[i] == theta[i] ? ml_tensor_wrap(ctx, theta[i]->data, theta[i]->ndim, theta[i]->shape)
                                            : fast[i];
    }
    float loss_value = 0.0f;
    if (ml_ctx_status(ctx) != ML_OK || query_gradient(m, w, t, query_fast, seed, &loss_value)) {
        ml__meta_fail_task(m, w, item, "query gradient");
        return;
    }
    for (int i = 0; i < np; i++) wrt[nw++] = theta[i];
    for (int k = 0; k < n_extra; k++) wrt[nw++] = extra[k];
    if (ml_grad_seeds(ctx, fast, seed, np, wrt, nw, 0, meta_grads) != ML_OK) {
        ml__meta_fail_task(m, w, item, "meta-gradient");
        return;
    }
    ml__meta_task_commit(m, w, item, loss_value, meta_grads, n_extra);
}

/* MAML, FOMAML, Meta-SGD, ANIL: S inner steps from theta on the support
 * set (fast_i -= rate_i * g_i, the rates Meta-SGD's extras or inner_lr),
 * then the query loss, differentiated for theta and the extras. */
void ml__gradient_step_task(ml_meta *m, ml_meta_worker *w, int item, const ml_task_data *t) {
    if (m->fused_route && t->n_support > 0 && t->n_query > 0) { /* same math without a graph (maml_mlp.c) */
        ml__maml_mlp_step_task(m, w, item, t);
        return;
    }
    ml_model *model = m->model;
    int np = model->n_params;
    ml_ctx *ctx = w->ctx;
    ml_ctx_reset(ctx);
    ml_tensor *theta[ML_MAX_PARAMS], *fast[ML_MAX_PARAMS], *grads[ML_MAX_PARAMS], *extra[ML_META_MAX_EXTRAS];
    ml_model_wrap(ctx, model, m->meta, theta);
    int n_extra = ml__meta_wrap_extras(ctx, m, extra);
    ml_tensor **alpha = n_extra ? extra : NULL; /* Meta-SGD: one rate tensor per parameter */
    int second = ml__learner_of(m->cfg.algo)->second_order;
    int first = first_adapted(m);
    for (int i = 0; i < np; i++) fast[i] = theta[i];
    for (int s = 0; s < m->cfg.inner_steps; s++) {
        ml_tensor *ls = ml__meta_model_loss(ctx, m, fast, t->xs, t->ys, t->ls, t->n_support, NULL);
        /* First-order MAML: the inner gradient is taken unrecorded, so it
         * is a constant and d fast / d theta is the identity. */
        if (ml_grad(ctx, ls, fast + first, np - first, second, grads + first) != ML_OK) {
            ml__meta_fail_task(m, w, item, "inner gradient");
            return;
        }
        for (int i = first; i < np; i++)
            fast[i] = ml_sub(ctx, fast[i], alpha ? ml_mul(ctx, alpha[i], grads[i]) : ml_scale(ctx, grads[i], m->cfg.inner_lr));
    }
    if (second && m->cfg.inner_steps > 0) {
        split_task_gradient(m, w, item, t, theta, fast, extra, n_extra);
        return;
    }
    ml_tensor *loss = ml__meta_model_loss(ctx, m, fast, t->xq, t->yq, t->lq, t->n_query, NULL);
    ml__meta_task_gradient(m, w, item, loss, theta, extra, n_extra);
}

/* The multi-task baseline: no adaptation, the loss of all the task's points. */
void ml__multitask_step_task(ml_meta *m, ml_meta_worker *w, int item, const ml_task_data *t) {
    ml_ctx *ctx = w->ctx;
    ml_ctx_reset(ctx);
    ml_tensor *theta[ML_MAX_PARAMS];
    ml_model_wrap(ctx, m->model, m->meta, theta);
    ml_tensor *ls = ml__meta_model_loss(ctx, m, theta, t->xs, t->ys, t->ls, t->n_support, NULL);
    ml_tensor *lq = ml__meta_model_loss(ctx, m, theta, t->xq, t->yq, t->lq, t->n_query, NULL);
    float ws = (float)t->n_support / (float)(t->n_support + t->n_query);
    ml_tensor *loss = ml_add(ctx, ml_scale(ctx, ls, ws), ml_scale(ctx, lq, 1.0f - ws));
    ml__meta_task_gradient(m, w, item, loss, theta, NULL, 0);
}

/* Reptile: k plain SGD steps from theta on the support set; the task's
 * "gradient" is theta - phi (Nichol et al. 2018, serial version). */
void ml__reptile_step_task(ml_meta *m, ml_meta_worker *w, int item, const ml_task_data *t) {
    ml_model *model = m->model;
    ml_ctx *ctx = w->ctx;
    memcpy(w->phi, m->meta, (size_t)m->n * sizeof(float));
    ml_tensor *params[ML_MAX_PARAMS], *grads[ML_MAX_PARAMS];
    for (int s = 0; s < m->cfg.inner_steps; s++) {
        ml_ctx_reset(ctx);
        ml_model_wrap(ctx, model, w->phi, params);
        ml_tensor *loss = ml__meta_model_loss(ctx, m, params, t->xs, t->ys, t->ls, t->n_support, NULL);
        if (ml_grad(ctx, loss, params, model->n_params, 0, grads) != ML_OK) {
            ml__meta_fail_task(m, w, item, "inner step");
            return;
        }
        for (int i = 0; i < model->n_params; i++) {
            float *p = w->phi + model->params[i].offset;
            const float *g = grads[i]->data;
            for (int64_t j = 0; j < model->params[i].numel; j++) p[j] -= m->cfg.inner_lr * g[j];
        }
    }
    ml_ctx_reset(ctx);
    ml_ctx_set_recording(ctx, 0);
    ml_model_wrap(ctx, model, w->phi, params);
    ml_tensor *q = ml__meta_model_loss(ctx, m, params, t->xq, t->yq, t->lq, t->n_query, NULL);
    ml_ctx_set_recording(ctx, 1);
    if (!q) {
        ml__meta_fail_task(m, w, item, "query pass");
        return;
    }
    m->task_loss[item] = q->data[0];
    float *out = ml__meta_task_row(m, w, item);
    if (!out) return;
    for (int64_t j = 0; j < m->n; j++) out[j] = m->meta[j] - w->phi[j]; /* the whole row: Reptile has no extras */
    ml__meta_task_row_done(m, item, out);
}

/* Evaluation of every gradient learner: plain steps on the support set at
 * inner_lr (Meta-SGD: its learned rates) from the meta-parameters. */
void ml__gradient_eval_task(const ml__eval_job *job, ml_meta_worker *w, int item) {
    ml_meta *m = job->m;
    const ml_task_data *t = &job->tasks[item];
    ml_model *model = m->model;
    int np = model->n_params;
    ml_ctx *ctx = w->ctx;
    /* Adapted parameters live in w->phi between steps, so each step's graph
     * is dropped before the next: memory stays flat in the step count. */
    memcpy(w->phi, m->meta, (size_t)m->n * sizeof(float));
    ml_tensor *params[ML_MAX_PARAMS], *grads[ML_MAX_PARAMS], *logits = NULL;
    /* Meta-SGD's rates: one per parameter, laid out as theta after it. */
    const float *rates = ml__learner_of(m->cfg.algo)->extras ? m->meta + m->n : NULL;
    int stride = job->max_steps + 1;
    for (int s = 0; s <= job->max_steps; s++) {
        /* The query pass costs more than a support step (95 query images
         * against 5 support images for 5-way 1-shot), so only the step
         * counts asked for are scored; the others read NaN. */
        if (job->report && s < job->max_steps && !job->report[s]) {
            job->loss_at[item * stride + s] = NAN;
            if (job->acc_at) job->acc_at[item * stride + s] = NAN;
        } else {
            ml_ctx_reset(ctx);
            ml_ctx_set_recording(ctx, 0);
            ml_model_wrap(ctx, model, w->phi, params);
            ml_tensor *q = ml__meta_model_loss(ctx, m, params, t->xq, t->yq, t->lq, t->n_query, &logits);
            ml_ctx_set_recording(ctx, 1);
            if (!q) {
                ml__meta_fail_task(m, w, item, "evaluation query pass");
                return;
            }
            job->loss_at[item * stride + s] = q->data[0];
            if (job->acc_at && m->cfg.loss == ML_LOSS_CROSS_ENTROPY)
                job->acc_at[item * stride + s] = ml__meta_accuracy(logits, t->lq);
        }
        if (job->out) /* predict (one task, this thread): the adaptation's progress */
            ml_progress_report(&m->progress, "adaptation", s, job->max_steps);
        if (s == job->max_steps) {
            if (job->pred && m->cfg.loss == ML_LOSS_CROSS_ENTROPY) ml__meta_argmax_rows(logits, job->pred);
            if (job->out) ml__meta_copy_outputs(logits, job->out);
            break;
        }
        ml_ctx_reset(ctx);
        ml_model_wrap(ctx, model, w->phi, params);
        ml_tensor *ls = ml__meta_model_loss(ctx, m, params, t->xs, t->ys, t->ls, t->n_support, NULL);
        if (ml_grad(ctx, ls, params, np, 0, grads) != ML_OK) {
            ml__meta_fail_task(m, w, item, "evaluation inner step");
            return;
        }
        for (int i = first_adapted(m); i < np; i++) {
            float *p = w->phi + model->params[i].offset;
            const float *g = grads[i]->data;
            const float *a = rates ? rates + model->params[i].offset : NULL;
            for (int64_t j = 0; j < model->params[i].numel; j++) p[j] -= (a ? a[j] : m->cfg.inner_lr) * g[j];
        }
    }
}
