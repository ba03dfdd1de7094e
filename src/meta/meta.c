/* meta.c: the learner-agnostic driver of meta-learning (see meta.h): setup
 * of the meta-parameters (theta, then the learner's extra tensors), one outer
 * update over a meta-batch, evaluation and predict. Whatever differs between
 * learners is a hook of the learner's row (learner.h); this file asks the row
 * and never which learner it runs.
 *
 * Each worker owns a context; a task's whole graph (inner trajectory and
 * query pass) lives in that context's arena until the task's meta-gradient
 * has been taken. Second-order MAML needs the inner trajectory alive until
 * then: this is where that memory goes, and it is reclaimed in O(1) by the
 * reset at the start of the next task. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/dispatch.h"
#include "meta_internal.h"
#include "meta/task_sum.h"
#include "metalearn/dist.h"

/* ---- helpers of the hooks ------------------------------------------------------------- */

ml_tensor *ml__meta_model_loss(ml_ctx *ctx, const ml_meta *m, ml_tensor *params[], const float *x, const float *yf,
                               const int32_t *yl, int n, ml_tensor **out_pass) {
    ml_model *model = m->model;
    int64_t per = (int64_t)model->spec.in_c * model->spec.in_h * model->spec.in_w;
    ml_tensor *xt = ml_tensor_wrap(ctx, (float *)x, 2, ML_SHAPE(n, per));
    /* Batch norm uses the current batch's statistics, as the reference MAML. */
    ml_tensor *out = ml_model_forward(ctx, model, params, xt, 1, 0);
    if (out_pass) *out_pass = out;
    return ml__meta_loss_of(ctx, m, out, yf, yl, n);
}

ml_tensor *ml__meta_loss_of(ml_ctx *ctx, const ml_meta *m, ml_tensor *out, const float *yf, const int32_t *yl, int n) {
    if (m->cfg.loss == ML_LOSS_MSE) return ml_mse(ctx, out, ml_tensor_wrap(ctx, (float *)yf, 2, ML_SHAPE(n, 1)));
    return ml_cross_entropy(ctx, out, yl);
}

ml_tensor *ml__meta_embed_episode(ml_ctx *ctx, const ml_meta *m, ml_tensor **params, const ml_task_data *t) {
    ml_model *model = m->model;
    int64_t per = (int64_t)model->spec.in_c * model->spec.in_h * model->spec.in_w;
    /* An episode's queries right after its support (ml_episode_init's one
     * block): the batch is already there, no copy (not recording: a
     * training step keeps its concat node). */
    ml_tensor *x = !ml_ctx_recording(ctx) && t->xq == t->xs + t->n_support * per
                       ? ml_tensor_wrap(ctx, (float *)t->xs, 2, ML_SHAPE(t->n_support + t->n_query, per))
                       : ml_concat0(ctx, ml_tensor_wrap(ctx, (float *)t->xs, 2, ML_SHAPE(t->n_support, per)),
                                    ml_tensor_wrap(ctx, (float *)t->xq, 2, ML_SHAPE(t->n_query, per)));
    return ml_model_forward(ctx, model, params, x, 1, 0);
}

int ml__meta_wrap_extras(ml_ctx *ctx, const ml_meta *m, ml_tensor **extra) {
    ml_meta_tensor t[ML_META_MAX_EXTRAS];
    int n = ml_meta_extras(&m->cfg, m->model, t);
    for (int k = 0; k < n; k++) {
        int64_t shape[ML_MAX_DIMS] = {0};
        memcpy(shape, t[k].shape, sizeof shape);
        extra[k] = ml_tensor_wrap(ctx, m->meta + m->n + t[k].offset, t[k].ndim, shape);
    }
    for (int k = n; k < ML_META_MAX_EXTRAS; k++) extra[k] = NULL; /* e.g. Matching without its scale */
    return n;
}

int ml__meta_fail_task(ml_meta *m, ml_meta_worker *w, int item, const char *what) {
    snprintf(w->err, sizeof w->err, "task %d: %s: %s", item, what, ml_ctx_error(w->ctx));
    m->task_status[item] = ml_ctx_status(w->ctx) != ML_OK ? (int)ml_ctx_status(w->ctx) : (int)ML_ERR_NUMERIC;
    return -1;
}

void ml__meta_task_gradient(ml_meta *m, ml_meta_worker *w, int item, ml_tensor *loss, ml_tensor **theta,
                            ml_tensor **extra, int n_extra) {
    ml_model *model = m->model;
    int np = model->n_params, nw = 0;
    ml_tensor *wrt[ML_MAX_PARAMS + ML_META_MAX_EXTRAS], *meta_grads[ML_MAX_PARAMS + ML_META_MAX_EXTRAS];
    for (int i = 0; i < np; i++) wrt[nw++] = theta[i];
    for (int k = 0; k < n_extra; k++) wrt[nw++] = extra[k];
    if (ml_grad(w->ctx, loss, wrt, nw, 0, meta_grads) != ML_OK) {
        ml__meta_fail_task(m, w, item, "meta-gradient");
        return;
    }
    ml__meta_task_commit(m, w, item, loss->data[0], meta_grads, n_extra);
}

void ml__meta_task_commit(ml_meta *m, ml_meta_worker *w, int item, float loss, ml_tensor **meta_grads,
                          int n_extra) {
    ml_model *model = m->model;
    int np = model->n_params;
    m->task_loss[item] = loss;
    float *out = ml__meta_task_row(m, w, item);
    if (!out) return;
    for (int i = 0; i < np; i++) {
        const ml_param_info *p = &model->params[i];
        memcpy(out + p->offset, meta_grads[i]->data, (size_t)p->numel * sizeof(float));
    }
    /* The extras after theta, each at its offset (ml_meta_extras). */
    ml_meta_tensor t[ML_META_MAX_EXTRAS];
    ml_meta_extras(&m->cfg, model, t);
    for (int k = 0; k < n_extra; k++)
        memcpy(out + m->n + t[k].offset, meta_grads[np + k]->data, (size_t)t[k].numel * sizeof(float));
    ml__meta_task_row_done(m, item, out);
}

/* Each task's meta-gradient row is kept (task_grads) only when rank 0 gathers
 * them from the ranks of an mpirun job; in one process they are summed in
 * task order as the tasks finish (task_sum.c): the same float sum, in the
 * same order, without a row per task. */
static int keeps_rows(const ml_meta *m) { return !m->local_steps && ml_dist_size() > 1; }

float *ml__meta_task_row(ml_meta *m, ml_meta_worker *w, int item) {
    if (keeps_rows(m)) return m->task_grads + (int64_t)item * m->n_meta;
    float *row = ml__task_sum_row(m->task_sum);
    if (!row) {
        snprintf(w->err, sizeof w->err, "task %d: out of memory for its meta-gradient", item);
        m->task_status[item] = ML_ERR_NOMEM;
    }
    return row;
}

void ml__meta_task_row_done(ml_meta *m, int item, float *row) {
    if (!keeps_rows(m)) ml__task_sum_commit(m->task_sum, item, row);
}

int ml__meta_task_add_in_order(ml_meta *m, int item, void (*add)(float *acc, const void *user), const void *user) {
    return !keeps_rows(m) && ml__task_sum_add_in_order(m->task_sum, item, add, user);
}

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

/* ---- setup -------------------------------------------------------------------------------- */

ml_status ml_meta_init(ml_meta *m, ml_model *model, const ml_meta_config *cfg, int max_batch, char *err,
                       size_t errlen) {
    memset(m, 0, sizeof *m);
    const ml__learner *l = ml__learner_of(cfg->algo);
    if (!l) {
        snprintf(err, errlen, "meta: unknown learner %d", (int)cfg->algo);
        return ML_ERR_ARG;
    }
    /* A metric learner on regression tasks would build labels from NULL. */
    if (ml_algo_check_loss(cfg->algo, cfg->loss, err, errlen)) return ML_ERR_ARG;
    if (l->check && l->check(cfg, model, err, errlen)) return ML_ERR_ARG;
    if (cfg->inner_steps < 0 || cfg->inner_steps < l->info.min_inner_steps) {
        snprintf(err, errlen, "meta: %s needs at least one inner step", ml_algo_name(cfg->algo));
        return ML_ERR_ARG;
    }
    m->cfg = *cfg;
    m->model = model;
    m->n = model->n_floats;
    /* theta, then the learner's extra tensors (Meta-SGD's rates, the heads' scalars, pretrain's head) */
    ml_meta_tensor extra[ML_META_MAX_EXTRAS];
    int n_extra = ml_meta_extras(cfg, model, extra);
    m->n_meta = m->n;
    for (int k = 0; k < n_extra; k++) m->n_meta += extra[k].numel;
    m->max_batch = max_batch > 0 ? max_batch : 1;
    m->fused_route = ml__maml_mlp_fits(m);
    int threads = cfg->threads > 0 ? cfg->threads : 1;
    m->meta = ml_calloc((size_t)m->n_meta, sizeof(float));
    m->grad = ml_calloc((size_t)m->n_meta, sizeof(float));
    m->task_sum = ml__task_sum_create(m->n_meta, m->max_batch);
    m->task_loss = ml_calloc((size_t)m->max_batch, sizeof(double));
    m->task_status = ml_calloc((size_t)m->max_batch, sizeof(int));
    m->workers = ml_calloc((size_t)threads, sizeof(ml_meta_worker));
    m->pool = ml_pool_create(threads);
    if (!m->meta || !m->grad || !m->task_sum || !m->task_loss || !m->task_status || !m->workers || !m->pool)
        goto nomem;
    for (int i = 0; i < threads; i++) {
        m->workers[i].ctx = ml_ctx_create((size_t)1 << 20);
        m->workers[i].phi = ml_calloc((size_t)m->n, sizeof(float));
        if (!m->workers[i].ctx || !m->workers[i].phi) goto nomem;
        ml_ctx_set_consume(m->workers[i].ctx, 1); /* no hook reads a conv output after ml_grad */
    }
    memcpy(m->meta, model->data, (size_t)m->n * sizeof(float));
    for (int k = 0; k < n_extra; k++)
        for (int64_t j = 0; j < extra[k].numel; j++) m->meta[m->n + extra[k].offset + j] = extra[k].init;
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
            ml_free(m->workers[i].fused_theta);
            ml_free(m->workers[i].kept);
            ml_free(m->workers[i].own_rows);
        }
    ml_pool_destroy(m->pool);
    ml_free(m->workers);
    ml_optim_free(&m->opt);
    ml_free(m->task_status);
    ml_free(m->task_loss);
    ml_free(m->task_grads);
    ml__task_sum_destroy(m->task_sum);
    ml_free(m->grad);
    ml_free(m->meta);
    memset(m, 0, sizeof *m);
}

/* ---- outer loop ------------------------------------------------------------------------------ */

typedef struct step_job {
    ml_meta *m;
    const ml_task_data *tasks;
    int first; /* this process's first task (ml_dist_slice) */
    void (*prepare)(int item, int worker, void *user);
    void *prepare_user;
} step_job;

static void step_task(int local, int worker, void *user) {
    step_job *job = user;
    ml_meta *m = job->m;
    int item = job->first + local;
    m->task_status[item] = ML_OK;
    if (job->prepare) job->prepare(item, worker, job->prepare_user);
    ml__learner_of(m->cfg.algo)->step_task(m, &m->workers[worker], item, &job->tasks[item]);
}

int64_t ml__meta_ends_floats = (int64_t)1 << 22; /* the rows a step may park, dealt from both ends (16 MB) */
int ml__meta_split_tasks = 1; /* 2 threads: fixed blocks (run_split_tasks) rather than from both ends; tests set 0 */

typedef struct own_rows {
    const float *rows; /* count rows of n floats, in task order */
    int64_t n;
    int count;
} own_rows;

/* acc[j] += rows[0][j], then += rows[1][j], ... (each element's sum in row
 * order, as adding the rows one by one), a block of acc at a time: acc is
 * read and written once instead of once per row. */
ML_KERNEL static void add_rows_in_order(int64_t n, float *restrict acc, const float *restrict rows, int count) {
    enum { B = 128 };
    for (int64_t j0 = 0; j0 < n; j0 += B) {
        int64_t w = n - j0 < B ? n - j0 : B;
        float a[B];
        for (int64_t j = 0; j < w; j++) a[j] = acc[j0 + j];
        for (int r = 0; r < count; r++) {
            const float *row = rows + (int64_t)r * n + j0;
            for (int64_t j = 0; j < w; j++) a[j] += row[j];
        }
        for (int64_t j = 0; j < w; j++) acc[j0 + j] = a[j];
    }
}

static void add_own_rows(float *acc, const void *user) {
    const own_rows *o = user;
    add_rows_in_order(o->n, acc, o->rows, o->count);
}

/* Two threads in fixed blocks (ml_pool_run_split): the helper runs tasks
 * 0, 1, ... in order and adds each into the running sum at once (it is
 * always next: nobody else adds during the batch); the caller runs the last
 * tasks, and any the helper had not started when the caller was done, into
 * rows of its own, a contiguous run k..n-1 added in order after the batch.
 * So the threads share no claim counter and no lock while they work, and
 * the sum crosses between the cores once per step (to the caller, who
 * updates with it): the same float sums in the same order. Returns -1
 * (nothing run) when the rows cannot be allocated. */
static int run_split_tasks(ml_meta *m, int n_items, step_job *job) {
    ml_meta_worker *caller = &m->workers[0];
    if (ml__meta_grow_floats(&caller->own_rows, &caller->own_cap, (int64_t)n_items * m->n_meta)) return -1;
    int end = job->first + n_items;
    caller->own_base = job->first;
    caller->own_first = end;
    caller->keeps_own = 1;
    ml_pool_run_split(m->pool, n_items, step_task, job);
    caller->keeps_own = 0;
    int k = caller->own_first;
    for (int item = k; item < end; item++)
        if (m->task_status[item] != ML_OK) return 0; /* the step reports it */
    own_rows o = {caller->own_rows + (int64_t)(k - job->first) * m->n_meta, m->n_meta, end - k};
    /* refused only after a failed helper task: the step reports it */
    if (k < end) ml__task_sum_add_block_in_order(m->task_sum, k, end - k, add_own_rows, &o);
    return 0;
}

/* Tasks across the workers, or with low_memory on several threads one task
 * at a time with every thread inside it (ml_pool_run of one item: worker 0,
 * the whole OpenMP budget): memory of one worker's arena instead of one per
 * thread. The kernels split their work by a fixed rule and the task sum
 * adds in task order, so the bits are those of the tasks across workers. */
static void run_step_tasks(ml_meta *m, int n_items, step_job *job) {
    /* Tiny tasks (the fused route: a task's row is a few KB and takes ~5 us):
     * the running sum goes to the thread that adds, and its trips between the
     * cores are a visible part of a task (~7% of an iteration measured on 2
     * threads, bench_sine_iters). Dealt from both ends, the caller's tasks
     * come in order and add without moving it; the helpers' rows are parked
     * until the ends meet, and the thread that closes the order adds them all
     * (a helper adds its own, from its cache): the same sums in the same
     * order, one trip of the sum per step instead of one per task. */
    int threads = ml_pool_threads(m->pool);
    int ends = !m->cfg.low_memory && m->fused_route && threads > 1 && !keeps_rows(m) &&
               m->n_meta * n_items <= ml__meta_ends_floats;
    for (int w = 0; w < threads; w++) m->workers[w].from_back = 0;
    if (ends && threads == 2 && n_items >= 2 && ml__meta_split_tasks && run_split_tasks(m, n_items, job) == 0) return;
    for (int w = 0; w < threads; w++) m->workers[w].from_back = ends && w > 0;
    if (ends) {
        ml_pool_run_ends(m->pool, n_items, step_task, job);
        return;
    }
    if (!m->cfg.low_memory || threads == 1) {
        ml_pool_run(m->pool, n_items, step_task, job);
        return;
    }
    step_job one = *job;
    for (int i = 0; i < n_items; i++) {
        one.first = job->first + i;
        ml_pool_run(m->pool, 1, step_task, &one);
    }
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

/* After each process ran its slice of the n tasks: every process learns
 * every task's status, and a failure's message travels from the process
 * that ran the task, so all of them stop with the same error. */
static ml_status share_task_status(ml_meta *m, int n, char *err, size_t errlen) {
    if (ml_dist_size() == 1 || m->local_steps) return first_task_error(m, n, err, errlen);
    ml_dist_allgather_rows(m->task_status, sizeof(int), n);
    for (int i = 0; i < n; i++)
        if (m->task_status[i] != ML_OK) {
            char msg[256] = "";
            int owner = ml_dist_owner(n, i);
            if (owner == ml_dist_rank()) first_task_error(m, n, msg, sizeof msg);
            ml_dist_broadcast(msg, sizeof msg, owner);
            snprintf(err, errlen, "rank %d: %s", owner, msg);
            return (ml_status)m->task_status[i];
        }
    return ML_OK;
}

/* The outcome of the update, made on rank 0 and sent to the others. */
typedef struct step_outcome {
    int status;
    double loss;
    char msg[256];
} step_outcome;

/* The reduction and the update split across the workers by a fixed
 * partition of the parameter indices (blocks of 16 floats): each element
 * sums its tasks in task order from 0 and is updated on its own, so the
 * partition and the thread count change no bit. */
typedef struct update_job {
    ml_meta *m;
    int n_tasks, n_parts;
    const float *summed; /* the rows' sum in task order (task_sum.c), or NULL: add the kept rows */
    int finite[64]; /* per part: every element of the mean gradient finite */
} update_job;

static void part_range(const update_job *u, int part, int64_t *lo, int64_t *hi) {
    int64_t n = u->m->n_meta, per = ((n + u->n_parts - 1) / u->n_parts + 15) & ~(int64_t)15;
    *lo = part * per < n ? part * per : n;
    *hi = *lo + per < n ? *lo + per : n;
}

static void reduce_part(int part, int worker, void *user) {
    (void)worker;
    update_job *u = user;
    ml_meta *m = u->m;
    int64_t lo, hi;
    part_range(u, part, &lo, &hi);
    float inv = 1.0f / (float)u->n_tasks, *grad = m->grad;
    if (u->summed) /* summed in task order as the tasks finished */
        memcpy(grad + lo, u->summed + lo, (size_t)(hi - lo) * sizeof(float));
    else { /* kept rows (MPI gather) added one after another (contiguous, vectorised) */
        memset(grad + lo, 0, (size_t)(hi - lo) * sizeof(float));
        for (int i = 0; i < u->n_tasks; i++) {
            const float *row = m->task_grads + (int64_t)i * m->n_meta;
            for (int64_t j = lo; j < hi; j++) grad[j] += row[j];
        }
    }
    int finite = 1;
    for (int64_t j = lo; j < hi; j++) {
        grad[j] *= inv;
        finite &= isfinite(grad[j]) != 0;
    }
    u->finite[part] = finite;
}

static void update_part(int part, int worker, void *user) {
    (void)worker;
    update_job *u = user;
    int64_t lo, hi;
    part_range(u, part, &lo, &hi);
    ml_optim_step_range(&u->m->opt, u->m->meta, u->m->grad, u->m->cfg.outer.lr, lo, hi);
}

int64_t ml__meta_split_update_floats = (int64_t)1 << 20; /* tests lower it */

static void run_parts(ml_meta *m, update_job *u, ml_pool_fn fn) {
    if (u->n_parts == 1)
        fn(0, 0, u);
    else
        ml_pool_run(m->pool, u->n_parts, fn, u);
}

/* Rank 0's part: the mean loss and meta-gradient summed in task order (the
 * same sum whatever the thread or process count), and the update. */
static void reduce_and_update(ml_meta *m, int n, step_outcome *out) {
    double total = 0;
    for (int i = 0; i < n; i++) total += m->task_loss[i];
    out->loss = total / n;
    if (!isfinite(out->loss)) {
        snprintf(out->msg, sizeof out->msg, "meta: query loss became %s at outer step %lld",
                 isnan(out->loss) ? "NaN" : "infinite", (long long)m->steps_done + 1);
        out->status = ML_ERR_NUMERIC;
        return;
    }
    /* Split only where the sums outweigh two hand-overs to the threads:
     * a hand-over is ~1 us on an idle core but a scheduler slice when a
     * core is shared (sinusoid, 25 x 1.7k floats: 0.72 -> 0.93 ms per
     * iteration at load 8, docs/results.md), so small models stay serial. */
    update_job u = {.m = m, .n_tasks = n, .n_parts = 1,
                    .summed = keeps_rows(m) ? NULL : ml__task_sum_total(m->task_sum)};
    int threads = ml_pool_threads(m->pool);
    if ((int64_t)n * m->n_meta >= ml__meta_split_update_floats) u.n_parts = threads < 64 ? threads : 64;
    run_parts(m, &u, reduce_part);
    for (int p = 0; p < u.n_parts; p++)
        if (!u.finite[p]) {
            snprintf(out->msg, sizeof out->msg, "meta: meta-gradient became non-finite at outer step %lld",
                     (long long)m->steps_done + 1);
            out->status = ML_ERR_NUMERIC;
            return;
        }
    run_parts(m, &u, update_part);
    ml_optim_advance(&m->opt);
    out->status = ML_OK;
}

ml_status ml_meta_step(ml_meta *m, const ml_task_data *tasks, int n, double *loss, char *err, size_t errlen) {
    void (*prepare)(int, int, void *) = m->prepare_task;
    void *prepare_user = m->prepare_user;
    m->prepare_task = NULL; /* this step's only */
    m->prepare_user = NULL;
    if (n < 1 || n > m->max_batch) {
        snprintf(err, errlen, "meta: %d tasks in a meta-batch of at most %d", n, m->max_batch);
        return ML_ERR_ARG;
    }
    for (int w = 0; w < ml_pool_threads(m->pool); w++) {
        m->workers[w].err[0] = 0;
        m->workers[w].fused_checked = 0; /* theta may have changed since the last step */
    }
    /* Each process runs its block of the tasks on its workers (every
     * process drew the same tasks); rank 0 gathers the per-task rows. */
    int lo = 0, hi = n;
    if (!m->local_steps) ml_dist_slice(n, &lo, &hi);
    if (keeps_rows(m) && !m->task_grads &&
        !(m->task_grads = ml_calloc((size_t)m->max_batch * (size_t)m->n_meta, sizeof(float)))) {
        snprintf(err, errlen, "meta: out of memory for %d meta-gradient rows", m->max_batch);
        return ML_ERR_NOMEM;
    }
    if (!keeps_rows(m)) ml__task_sum_reset(m->task_sum);
    step_job job = {m, tasks, lo, prepare, prepare_user};
    run_step_tasks(m, hi - lo, &job);
    ml_status st = share_task_status(m, n, err, errlen);
    if (st != ML_OK) return st;
    if (!keeps_rows(m) && !ml__task_sum_done(m->task_sum, n)) { /* every task succeeded: a row is missing */
        snprintf(err, errlen, "meta: out of memory for the meta-gradient rows");
        return ML_ERR_NOMEM;
    }
    step_outcome out = {0};
    if (m->local_steps) { /* a federated client: this process's tasks, this process's update */
        reduce_and_update(m, n, &out);
        goto done;
    }
    /* every process keeps every task's loss (task selection reads them) */
    if (ml_dist_allgather_rows(m->task_loss, sizeof(double), n) ||
        ml_dist_gather_rows(m->task_grads, (size_t)m->n_meta * sizeof(float), n, 0)) {
        snprintf(err, errlen, "meta: the meta-gradients are too large to gather");
        return ML_ERR_ARG;
    }
    if (ml_dist_rank() == 0) reduce_and_update(m, n, &out);
    if (ml_dist_size() > 1) {
        ml_dist_broadcast(&out, sizeof out, 0);
        if (out.status == ML_OK) ml_dist_broadcast(m->meta, (size_t)m->n_meta * sizeof(float), 0);
    }
done:
    if (out.status != ML_OK) {
        snprintf(err, errlen, "%s", out.msg);
        return (ml_status)out.status;
    }
    *loss = out.loss;
    m->steps_done++;
    return ML_OK;
}

/* ---- evaluation ------------------------------------------------------------------------- */

static void eval_task(int item, int worker, void *user) {
    const ml__eval_job *job = user;
    ml_meta *m = job->m;
    m->task_status[item] = ML_OK;
    ml__learner_of(m->cfg.algo)->eval_task(job, &m->workers[worker], item);
}

/* Evaluation spread over the processes: one's block of tasks. */
typedef struct eval_slice {
    const ml__eval_job *job;
    int first;
} eval_slice;

static void eval_slice_task(int local, int worker, void *user) {
    const eval_slice *s = user;
    eval_task(s->first + local, worker, (void *)s->job);
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
    ml__eval_job job = {m, tasks, max_steps, report, loss_at, acc_at, NULL, NULL};
    int lo, hi;
    ml_dist_slice(n, &lo, &hi);
    eval_slice slice = {&job, lo};
    ml_pool_run(m->pool, hi - lo, eval_slice_task, &slice);
    ml_status st = share_task_status(m, n, err, errlen);
    if (st == ML_OK && ml_dist_size() > 1) { /* every process gets every task's row */
        size_t row = (size_t)(max_steps + 1) * sizeof(double);
        if (ml_dist_allgather_rows(loss_at, row, n) || (acc_at && ml_dist_allgather_rows(acc_at, row, n))) {
            snprintf(err, errlen, "meta: evaluation rows too large to gather");
            return ML_ERR_ARG;
        }
    }
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
    ml__eval_job job = {m, task, steps, NULL, loss, acc, pred, out};
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

int ml__meta_grow_floats(float **buf, int64_t *cap, int64_t need) {
    if (need <= *cap) return 0;
    float *p = ml_malloc((size_t)need * sizeof(float));
    if (!p) return -1;
    ml_free(*buf);
    *buf = p;
    *cap = need;
    return 0;
}
