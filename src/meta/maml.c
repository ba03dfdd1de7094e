/* maml.c: the shared inner loop and the outer updates of MAML (second and
 * first order), Meta-SGD, Reptile and the multi-task baseline (see meta.h).
 *
 * Each worker owns a context; a task's whole graph (inner trajectory and
 * query pass) lives in that context's arena until the task's meta-gradient
 * has been taken. Second-order MAML needs the inner trajectory alive until
 * then: this is where that memory goes, and it is reclaimed in O(1) by the
 * reset at the start of the next task. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "meta_internal.h"

static const char *const algo_names[ML_ALGO_COUNT] = {"maml",     "fomaml",   "metasgd",  "reptile", "multitask",
                                                      "anil",     "protonet", "matching", "r2d2",    "pretrain"};

int ml_algo_is_metric(ml_algo a) { return a == ML_ALGO_PROTONET || a == ML_ALGO_MATCHING || a == ML_ALGO_R2D2; }
int ml_algo_has_inner_steps(ml_algo a) { return a < ML_ALGO_COUNT && !ml_algo_is_metric(a); }

int ml_algo_default_meta_batch(ml_algo a) { return ml_algo_is_metric(a) ? 1 : 25; }

const char *ml_algo_name(ml_algo a) { return a < ML_ALGO_COUNT ? algo_names[a] : "?"; }

int ml_algo_fits_loss(ml_algo a, ml_loss_kind loss) {
    if (a >= ML_ALGO_COUNT) return 0;
    return loss == ML_LOSS_CROSS_ENTROPY || !(ml_algo_is_metric(a) || a == ML_ALGO_PRETRAIN);
}

ml_status ml_algo_check_loss(ml_algo a, ml_loss_kind loss, char *err, size_t errlen) {
    if (ml_algo_fits_loss(a, loss)) return ML_OK;
    char fits[160] = "";
    int n = 0, left = 0;
    for (int i = 0; i < ML_ALGO_COUNT; i++) left += ml_algo_fits_loss((ml_algo)i, loss);
    for (int i = 0; i < ML_ALGO_COUNT; i++)
        if (ml_algo_fits_loss((ml_algo)i, loss)) {
            const char *sep = !n++ ? "" : n == left ? " or " : ", ";
            snprintf(fits + strlen(fits), sizeof fits - strlen(fits), "%s%s", sep, algo_names[i]);
        }
    snprintf(err, errlen, "%s classifies only (%s tasks take %s)", ml_algo_name(a),
             loss == ML_LOSS_MSE ? "regression" : "these", fits);
    return ML_ERR_ARG;
}

int ml_algo_parse(const char *name, ml_algo *out) {
    for (int i = 0; i < ML_ALGO_COUNT; i++)
        if (!strcmp(name, algo_names[i])) {
            *out = (ml_algo)i;
            return 0;
        }
    return -1;
}

/* ---- one task --------------------------------------------------------------------- */

static ml_tensor *task_loss(ml_ctx *ctx, const ml_meta *m, ml_tensor *params[], const float *x, const float *yf,
                            const int32_t *yl, int n, ml_tensor **logits_out) {
    ml_model *model = m->model;
    int64_t per = (int64_t)model->spec.in_c * model->spec.in_h * model->spec.in_w;
    ml_tensor *xt = ml_tensor_wrap(ctx, (float *)x, 2, ML_SHAPE(n, per));
    /* Batch norm uses the current batch's statistics, as the reference MAML. */
    ml_tensor *out = ml_model_forward(ctx, model, params, xt, 1, 0);
    if (logits_out) *logits_out = out;
    if (m->cfg.loss == ML_LOSS_MSE) return ml_mse(ctx, out, ml_tensor_wrap(ctx, (float *)yf, 2, ML_SHAPE(n, 1)));
    return ml_cross_entropy(ctx, out, yl);
}

/* Logits of a metric-based learner's episode: support and query embedded in
 * one batch (batch norm sees the whole episode), then the episode head. */
static ml_tensor *metric_logits(ml_ctx *ctx, const ml_meta *m, ml_tensor **theta, ml_tensor **extra,
                                const ml_task_data *t) {
    ml_model *model = m->model;
    int64_t per = (int64_t)model->spec.in_c * model->spec.in_h * model->spec.in_w;
    ml_tensor *x = ml_concat0(ctx, ml_tensor_wrap(ctx, (float *)t->xs, 2, ML_SHAPE(t->n_support, per)),
                              ml_tensor_wrap(ctx, (float *)t->xq, 2, ML_SHAPE(t->n_query, per)));
    ml_tensor *f = ml_model_forward(ctx, model, theta, x, 1, 0);
    ml_tensor *fs = ml_narrow(ctx, f, 0, t->n_support), *fq = ml_narrow(ctx, f, t->n_support, t->n_query);
    switch (m->cfg.algo) {
    case ML_ALGO_PROTONET: return ml_protonet_logits(ctx, fs, t->ls, t->ways, fq);
    case ML_ALGO_MATCHING: return ml_matching_logits(ctx, fs, t->ls, t->ways, fq, extra[0]);
    default: return ml_r2d2_logits(ctx, fs, t->ls, t->ways, fq, extra[0], extra[1], extra[2]);
    }
}

int ml_meta_extra_count(const ml_meta_config *cfg) {
    if (cfg->algo == ML_ALGO_R2D2) return 3;
    return cfg->algo == ML_ALGO_MATCHING && cfg->matching_scale > 0 ? 1 : 0;
}

/* The extra scalars as leaves (NULL where the learner has none). */
static int wrap_extra(ml_ctx *ctx, const ml_meta *m, ml_tensor **extra) {
    int n = ml_meta_extra_count(&m->cfg);
    for (int k = 0; k < 3; k++) extra[k] = k < n ? ml_tensor_wrap(ctx, m->meta + m->n + k, 1, ML_SHAPE(1)) : NULL;
    return n;
}

/* First parameter the inner loop adapts: ANIL adapts only the head (the last
 * weight and bias), the others every parameter. */
static int first_adapted(const ml_meta *m) {
    return m->cfg.algo == ML_ALGO_ANIL ? m->model->n_params - 2 : 0;
}

/* One plain or recorded inner step: fast_i -= rate_i * g_i. */
static void inner_update(ml_ctx *ctx, const ml_meta *m, ml_tensor **fast, ml_tensor **grads, ml_tensor **alpha) {
    for (int i = first_adapted(m); i < m->model->n_params; i++)
        fast[i] = ml_sub(ctx, fast[i], alpha ? ml_mul(ctx, alpha[i], grads[i]) : ml_scale(ctx, grads[i], m->cfg.inner_lr));
}

typedef struct step_job {
    ml_meta *m;
    const ml_task_data *tasks;
} step_job;

int ml__meta_fail_task(ml_meta *m, ml_meta_worker *w, int item, const char *what) {
    snprintf(w->err, sizeof w->err, "task %d: %s: %s", item, what, ml_ctx_error(w->ctx));
    m->task_status[item] = ml_ctx_status(w->ctx) != ML_OK ? (int)ml_ctx_status(w->ctx) : (int)ML_ERR_NUMERIC;
    return -1;
}

/* Reptile: k plain SGD steps from theta on the support set; the task's
 * "gradient" is theta - phi (Nichol et al. 2018, serial version). */
static void reptile_task(ml_meta *m, ml_meta_worker *w, int item, const ml_task_data *t) {
    ml_model *model = m->model;
    ml_ctx *ctx = w->ctx;
    memcpy(w->phi, m->meta, (size_t)m->n * sizeof(float));
    ml_tensor *params[ML_MAX_PARAMS], *grads[ML_MAX_PARAMS];
    for (int s = 0; s < m->cfg.inner_steps; s++) {
        ml_ctx_reset(ctx);
        ml_model_wrap(ctx, model, w->phi, params);
        ml_tensor *loss = task_loss(ctx, m, params, t->xs, t->ys, t->ls, t->n_support, NULL);
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
    ml_tensor *q = task_loss(ctx, m, params, t->xq, t->yq, t->lq, t->n_query, NULL);
    ml_ctx_set_recording(ctx, 1);
    if (!q) {
        ml__meta_fail_task(m, w, item, "query pass");
        return;
    }
    m->task_loss[item] = q->data[0];
    float *out = m->task_grads + (int64_t)item * m->n_meta;
    for (int64_t j = 0; j < m->n; j++) out[j] = m->meta[j] - w->phi[j];
}

static void step_task(int item, int worker, void *user) {
    step_job *job = user;
    ml_meta *m = job->m;
    ml_meta_worker *w = &m->workers[worker];
    const ml_task_data *t = &job->tasks[item];
    ml_model *model = m->model;
    int np = model->n_params;
    m->task_status[item] = ML_OK;
    if (m->cfg.algo == ML_ALGO_REPTILE) {
        reptile_task(m, w, item, t);
        return;
    }
    ml_ctx *ctx = w->ctx;
    ml_ctx_reset(ctx);
    ml_tensor *theta[ML_MAX_PARAMS], *alpha[ML_MAX_PARAMS], *fast[ML_MAX_PARAMS], *grads[ML_MAX_PARAMS];
    ml_tensor *wrt[2 * ML_MAX_PARAMS], *meta_grads[2 * ML_MAX_PARAMS];
    ml_model_wrap(ctx, model, m->meta, theta);
    int metasgd = m->cfg.algo == ML_ALGO_METASGD;
    if (metasgd) ml_model_wrap(ctx, model, m->meta + m->n, alpha);
    ml_tensor *loss, *extra[3];
    int n_extra = wrap_extra(ctx, m, extra);
    ml_tensor *head[2] = {NULL, NULL};
    if (m->cfg.algo == ML_ALGO_PRETRAIN) {
        loss = ml__pretrain_loss(ctx, m, theta, t, head);
    } else if (ml_algo_is_metric(m->cfg.algo)) {
        loss = ml_cross_entropy(ctx, metric_logits(ctx, m, theta, extra, t), t->lq);
    } else if (m->cfg.algo == ML_ALGO_MULTITASK) {
        /* The baseline: no adaptation, the loss of all the task's points. */
        ml_tensor *ls = task_loss(ctx, m, theta, t->xs, t->ys, t->ls, t->n_support, NULL);
        ml_tensor *lq = task_loss(ctx, m, theta, t->xq, t->yq, t->lq, t->n_query, NULL);
        float ws = (float)t->n_support / (float)(t->n_support + t->n_query);
        loss = ml_add(ctx, ml_scale(ctx, ls, ws), ml_scale(ctx, lq, 1.0f - ws));
    } else {
        int second = m->cfg.algo == ML_ALGO_MAML || m->cfg.algo == ML_ALGO_ANIL || metasgd;
        int first = first_adapted(m);
        for (int i = 0; i < np; i++) fast[i] = theta[i];
        for (int s = 0; s < m->cfg.inner_steps; s++) {
            ml_tensor *ls = task_loss(ctx, m, fast, t->xs, t->ys, t->ls, t->n_support, NULL);
            /* First-order MAML: the inner gradient is taken unrecorded, so it
             * is a constant and d fast / d theta is the identity. */
            if (ml_grad(ctx, ls, fast + first, np - first, second, grads + first) != ML_OK) {
                ml__meta_fail_task(m, w, item, "inner gradient");
                return;
            }
            inner_update(ctx, m, fast, grads, metasgd ? alpha : NULL);
        }
        loss = task_loss(ctx, m, fast, t->xq, t->yq, t->lq, t->n_query, NULL);
    }
    int nw = np;
    for (int i = 0; i < np; i++) wrt[i] = theta[i];
    if (metasgd)
        for (int i = 0; i < np; i++) wrt[nw++] = alpha[i];
    for (int k = 0; k < n_extra; k++) wrt[nw++] = extra[k];
    if (m->cfg.algo == ML_ALGO_PRETRAIN)
        for (int k = 0; k < 2; k++) wrt[nw++] = head[k];
    if (ml_grad(ctx, loss, wrt, nw, 0, meta_grads) != ML_OK) {
        ml__meta_fail_task(m, w, item, "meta-gradient");
        return;
    }
    m->task_loss[item] = loss->data[0];
    float *out = m->task_grads + (int64_t)item * m->n_meta;
    for (int i = 0; i < np; i++) {
        const ml_param_info *p = &model->params[i];
        memcpy(out + p->offset, meta_grads[i]->data, (size_t)p->numel * sizeof(float));
        if (metasgd) memcpy(out + m->n + p->offset, meta_grads[np + i]->data, (size_t)p->numel * sizeof(float));
    }
    for (int k = 0; k < n_extra; k++) out[m->n + k] = meta_grads[np + k]->data[0];
    if (m->cfg.algo == ML_ALGO_PRETRAIN) { /* the big head: weight then bias, after theta */
        int64_t nwt = m->n_meta - m->n - m->cfg.pretrain_classes;
        memcpy(out + m->n, meta_grads[np]->data, (size_t)nwt * sizeof(float));
        memcpy(out + m->n + nwt, meta_grads[np + 1]->data, (size_t)m->cfg.pretrain_classes * sizeof(float));
    }
}

/* ---- outer loop ---------------------------------------------------------------------- */

ml_status ml_meta_init(ml_meta *m, ml_model *model, const ml_meta_config *cfg, int max_batch, char *err,
                       size_t errlen) {
    memset(m, 0, sizeof *m);
    /* A metric learner on regression tasks would build labels from NULL. */
    if (ml_algo_check_loss(cfg->algo, cfg->loss, err, errlen)) return ML_ERR_ARG;
    m->cfg = *cfg;
    m->model = model;
    m->n = model->n_floats;
    m->n_meta = cfg->algo == ML_ALGO_METASGD ? 2 * m->n : m->n + ml_meta_extra_count(cfg);
    if (cfg->algo == ML_ALGO_PRETRAIN) {
        /* Embedding theta, then the head over all training classes (zero
         * at the start; absent when only evaluating: pretrain_classes 0). */
        if (cfg->pretrain_classes < 0 || model->spec.kind != ML_MODEL_CNN4 || model->spec.n_out != 0) {
            snprintf(err, errlen, "meta: pretrain takes a cnn4 embedding (no head) and a class count >= 0");
            return ML_ERR_ARG;
        }
        m->n_meta = m->n + (int64_t)cfg->pretrain_classes * (ml__pretrain_feature_dim(model) + 1);
    }
    m->max_batch = max_batch > 0 ? max_batch : 1;
    int threads = cfg->threads > 0 ? cfg->threads : 1;
    if (cfg->inner_steps < 0 ||
        (cfg->inner_steps == 0 && cfg->algo != ML_ALGO_MULTITASK && cfg->algo != ML_ALGO_PRETRAIN &&
         ml_algo_has_inner_steps(cfg->algo))) {
        snprintf(err, errlen, "meta: %s needs at least one inner step", ml_algo_name(cfg->algo));
        return ML_ERR_ARG;
    }
    m->meta = ml_calloc((size_t)m->n_meta, sizeof(float));
    m->grad = ml_calloc((size_t)m->n_meta, sizeof(float));
    m->task_grads = ml_calloc((size_t)(m->max_batch * m->n_meta), sizeof(float));
    m->task_loss = ml_calloc((size_t)m->max_batch, sizeof(double));
    m->task_status = ml_calloc((size_t)m->max_batch, sizeof(int));
    m->workers = ml_calloc((size_t)threads, sizeof(ml_meta_worker));
    m->pool = ml_pool_create(threads);
    if (!m->meta || !m->grad || !m->task_grads || !m->task_loss || !m->task_status || !m->workers || !m->pool)
        goto nomem;
    for (int i = 0; i < threads; i++) {
        m->workers[i].ctx = ml_ctx_create((size_t)1 << 20);
        m->workers[i].phi = ml_calloc((size_t)m->n, sizeof(float));
        if (!m->workers[i].ctx || !m->workers[i].phi) goto nomem;
    }
    memcpy(m->meta, model->data, (size_t)m->n * sizeof(float));
    if (cfg->algo == ML_ALGO_METASGD)
        for (int64_t j = m->n; j < m->n_meta; j++) m->meta[j] = cfg->inner_lr;
    if (cfg->algo == ML_ALGO_R2D2) { /* lambda = 1, scale = 1, bias = 0 */
        m->meta[m->n] = 0.0f;
        m->meta[m->n + 1] = 1.0f;
        m->meta[m->n + 2] = 0.0f;
    }
    if (ml_meta_extra_count(cfg) && cfg->algo == ML_ALGO_MATCHING) m->meta[m->n] = cfg->matching_scale;
    ml_status st = ml_optim_init(&m->opt, &cfg->outer, m->n_meta);
    if (st != ML_OK) {
        snprintf(err, errlen, "meta: outer optimizer: invalid settings");
        ml_meta_free(m);
        return st;
    }
    return ML_OK;
nomem:
    snprintf(err, errlen, "meta: out of memory");
    ml_meta_free(m);
    return ML_ERR_NOMEM;
}

void ml_meta_free(ml_meta *m) {
    if (m->workers && m->pool)
        for (int i = 0; i < ml_pool_threads(m->pool); i++) {
            ml_ctx_destroy(m->workers[i].ctx);
            ml_free(m->workers[i].phi);
            ml_free(m->workers[i].head);
            ml_free(m->workers[i].feat);
        }
    ml_pool_destroy(m->pool);
    ml_free(m->workers);
    ml_optim_free(&m->opt);
    ml_free(m->task_status);
    ml_free(m->task_loss);
    ml_free(m->task_grads);
    ml_free(m->grad);
    ml_free(m->meta);
    memset(m, 0, sizeof *m);
}

static ml_status first_task_error(ml_meta *m, int n, char *err, size_t errlen) {
    for (int i = 0; i < n; i++)
        if (m->task_status[i] != ML_OK) {
            /* Find the worker message: any worker with a message describes it. */
            for (int w = 0; w < ml_pool_threads(m->pool); w++)
                if (m->workers[w].err[0]) {
                    snprintf(err, errlen, "%s", m->workers[w].err);
                    break;
                }
            return (ml_status)m->task_status[i];
        }
    return ML_OK;
}

ml_status ml_meta_step(ml_meta *m, const ml_task_data *tasks, int n, double *loss, char *err, size_t errlen) {
    if (n < 1 || n > m->max_batch) {
        snprintf(err, errlen, "meta: %d tasks in a meta-batch of at most %d", n, m->max_batch);
        return ML_ERR_ARG;
    }
    for (int w = 0; w < ml_pool_threads(m->pool); w++) m->workers[w].err[0] = 0;
    step_job job = {m, tasks};
    ml_pool_run(m->pool, n, step_task, &job);
    ml_status st = first_task_error(m, n, err, errlen);
    if (st != ML_OK) return st;
    /* Reduce in task order: the same sum whatever the thread count. */
    double total = 0;
    for (int i = 0; i < n; i++) total += m->task_loss[i];
    *loss = total / n;
    if (!isfinite(*loss)) {
        snprintf(err, errlen, "meta: query loss became %s at outer step %lld", isnan(*loss) ? "NaN" : "infinite",
                 (long long)m->steps_done + 1);
        return ML_ERR_NUMERIC;
    }
    float inv = 1.0f / (float)n;
    for (int64_t j = 0; j < m->n_meta; j++) {
        float s = 0;
        for (int i = 0; i < n; i++) s += m->task_grads[(int64_t)i * m->n_meta + j];
        m->grad[j] = s * inv;
        if (!isfinite(m->grad[j])) {
            snprintf(err, errlen, "meta: meta-gradient became non-finite at outer step %lld",
                     (long long)m->steps_done + 1);
            return ML_ERR_NUMERIC;
        }
    }
    ml_optim_step(&m->opt, m->meta, m->grad, m->cfg.outer.lr);
    m->steps_done++;
    return ML_OK;
}

/* ---- evaluation ------------------------------------------------------------------------- */

typedef struct eval_job {
    ml_meta *m;
    const ml_task_data *tasks;
    int max_steps;
    const unsigned char *report; /* report[s]: score the query after s steps (NULL: every s) */
    double *loss_at, *acc_at;
    int32_t *pred; /* ml_meta_predict: the query predictions of task 0 after the last step */
    float *out;    /* ml_meta_predict_outputs: the query outputs (scores or targets) after the last step */
} eval_job;


/* Index of the largest logit of row i. */
static int32_t row_argmax(const ml_tensor *logits, int64_t i) {
    int64_t c = logits->shape[1], best = 0;
    const float *row = logits->data + i * c;
    for (int64_t j = 1; j < c; j++)
        if (row[j] > row[best]) best = j;
    return (int32_t)best;
}

double ml__meta_accuracy(const ml_tensor *logits, const int32_t *labels) {
    int64_t n = logits->shape[0], right = 0;
    for (int64_t i = 0; i < n; i++) right += row_argmax(logits, i) == labels[i];
    return n ? (double)right / (double)n : 0;
}

void ml__meta_argmax_rows(const ml_tensor *logits, int32_t *out) {
    for (int64_t i = 0; i < logits->shape[0]; i++) out[i] = row_argmax(logits, i);
}

void ml__meta_copy_outputs(const ml_tensor *out, float *dst) {
    memcpy(dst, out->data, (size_t)out->numel * sizeof(float));
}

static void eval_task(int item, int worker, void *user) {
    eval_job *job = user;
    ml_meta *m = job->m;
    ml_meta_worker *w = &m->workers[worker];
    const ml_task_data *t = &job->tasks[item];
    ml_model *model = m->model;
    int np = model->n_params;
    ml_ctx *ctx = w->ctx;
    m->task_status[item] = ML_OK;
    /* Adapted parameters live in w->phi between steps, so each step's graph
     * is dropped before the next: memory stays flat in the step count. */
    memcpy(w->phi, m->meta, (size_t)m->n * sizeof(float));
    ml_tensor *params[ML_MAX_PARAMS], *alpha[ML_MAX_PARAMS], *grads[ML_MAX_PARAMS], *logits = NULL;
    int stride = job->max_steps + 1;
    if (m->cfg.algo == ML_ALGO_PRETRAIN) {
        ml__pretrain_eval_task(m, w, item, t, job->max_steps, job->loss_at + (int64_t)item * stride,
                               job->acc_at ? job->acc_at + (int64_t)item * stride : NULL, job->pred, job->out);
        return;
    }
    if (!ml_algo_has_inner_steps(m->cfg.algo)) { /* no adaptation steps: the same result at every step */
        ml_ctx_reset(ctx);
        ml_ctx_set_recording(ctx, 0);
        ml_tensor *extra[3];
        wrap_extra(ctx, m, extra);
        ml_model_wrap(ctx, model, m->meta, params);
        logits = metric_logits(ctx, m, params, extra, t);
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
        return;
    }
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
            ml_tensor *q = task_loss(ctx, m, params, t->xq, t->yq, t->lq, t->n_query, &logits);
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
        ml_tensor *ls = task_loss(ctx, m, params, t->xs, t->ys, t->ls, t->n_support, NULL);
        if (ml_grad(ctx, ls, params, np, 0, grads) != ML_OK) {
            ml__meta_fail_task(m, w, item, "evaluation inner step");
            return;
        }
        if (m->cfg.algo == ML_ALGO_METASGD) ml_model_wrap(ctx, model, m->meta + m->n, alpha);
        for (int i = first_adapted(m); i < np; i++) {
            float *p = w->phi + model->params[i].offset;
            const float *g = grads[i]->data;
            const float *a = m->cfg.algo == ML_ALGO_METASGD ? alpha[i]->data : NULL;
            for (int64_t j = 0; j < model->params[i].numel; j++) p[j] -= (a ? a[j] : m->cfg.inner_lr) * g[j];
        }
    }
}

ml_status ml_meta_evaluate(ml_meta *m, const ml_task_data *tasks, int n, int max_steps, double *loss_at,
                           double *acc_at, char *err, size_t errlen) {
    return ml_meta_evaluate_at(m, tasks, n, max_steps, NULL, loss_at, acc_at, err, errlen);
}

ml_status ml_meta_evaluate_at(ml_meta *m, const ml_task_data *tasks, int n, int max_steps,
                              const unsigned char *report, double *loss_at, double *acc_at, char *err,
                              size_t errlen) {
    if (n > m->max_batch) {
        /* Evaluate in chunks of the meta-batch size (task_status is that long). */
        for (int start = 0; start < n; start += m->max_batch) {
            int count = n - start < m->max_batch ? n - start : m->max_batch;
            int stride = max_steps + 1;
            ml_status st = ml_meta_evaluate_at(m, tasks + start, count, max_steps, report,
                                               loss_at + (int64_t)start * stride,
                                               acc_at ? acc_at + (int64_t)start * stride : NULL, err, errlen);
            if (st != ML_OK) return st;
        }
        return ML_OK;
    }
    for (int w = 0; w < ml_pool_threads(m->pool); w++) m->workers[w].err[0] = 0;
    eval_job job = {m, tasks, max_steps, report, loss_at, acc_at, NULL, NULL};
    ml_pool_run(m->pool, n, eval_task, &job);
    ml_status st = first_task_error(m, n, err, errlen);
    if (st == ML_OK && m->progress_total > 0) {
        m->progress_done += n;
        ml_progress_report(&m->progress, "evaluation", m->progress_done, m->progress_total);
    }
    return st;
}

void ml_meta_progress_begin(ml_meta *m, int64_t total) {
    m->progress_done = 0;
    m->progress_total = total;
}

void ml_meta_export(const ml_meta *m) { memcpy(m->model->data, m->meta, (size_t)m->n * sizeof(float)); }

ml_status ml_meta_predict_outputs(ml_meta *m, const ml_task_data *task, int steps, int32_t *pred, float *out,
                                  char *err, size_t errlen) {
    double loss[1 + 1000], acc[1 + 1000];
    if (steps < 0 || steps > 1000 || (pred && m->cfg.loss != ML_LOSS_CROSS_ENTROPY)) {
        snprintf(err, errlen, "predict: 0..1000 adaptation steps, and labels for classification only");
        return ML_ERR_ARG;
    }
    for (int w = 0; w < ml_pool_threads(m->pool); w++) m->workers[w].err[0] = 0;
    eval_job job = {m, task, steps, NULL, loss, acc, pred, out};
    eval_task(0, 0, &job);
    return first_task_error(m, 1, err, errlen);
}

ml_status ml_meta_predict(ml_meta *m, const ml_task_data *task, int steps, int32_t *pred, char *err, size_t errlen) {
    if (m->cfg.loss != ML_LOSS_CROSS_ENTROPY) {
        snprintf(err, errlen, "predict: classification with 0..1000 adaptation steps only");
        return ML_ERR_ARG;
    }
    return ml_meta_predict_outputs(m, task, steps, pred, NULL, err, errlen);
}
