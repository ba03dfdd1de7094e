/* supervised.c: plain minibatch training of a classifier and its evaluation.
 *
 * A minibatch is cut into G gradient shards (ml_supervised_config.shards);
 * each runs its own forward and backward pass on a worker of the pool, with
 * its own context (reset per shard in O(1), so after the first step the loop
 * makes no heap calls) and its own copy of the batch-norm running statistics.
 * A shard leaves one row: its gradient, its updated statistics, its loss,
 * its correct count and its status. Under mpirun each rank computes its block
 * of the shards and the rows are gathered to every rank; every rank then
 * sums the rows in shard order, weighted by shard size, and takes the same
 * optimizer step on flat buffers (llm.c style). The sum never depends on
 * where a shard ran, so the result depends on G only; G = 1 is the plain
 * minibatch step to the bit (its row is weighted by 1.0f). */
#include <inttypes.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "metalearn/dist.h"
#include "metalearn/io.h"
#include "metalearn/pool.h"
#include "metalearn/train.h"
#include "tensor/kernels_par.h"

/* ---- the batch: examples gathered in order -------------------------------------------------- */

typedef struct gather_job {
    const ml_dataset *d;
    const int32_t *order;
    int64_t start;
    float *x;
    int32_t *y;
} gather_job;

static void gather_range(void *arg, int64_t lo, int64_t hi) {
    const gather_job *g = arg;
    int64_t per = (int64_t)g->d->c * g->d->h * g->d->w;
    for (int64_t i = lo; i < hi; i++) {
        int64_t k = g->order ? g->order[g->start + i] : g->start + i;
        memcpy(g->x + i * per, g->d->x + k * per, (size_t)per * sizeof(float));
        g->y[i] = g->d->y[k];
    }
}

/* Copies of whole examples: split over the caller's OpenMP budget (one shard
 * on T threads), the same bytes either way. The work counts the reads and
 * the writes, so that a batch of 64 28x28 images is split too: thread t then
 * writes the images [n t / T, n (t + 1) / T) that its share of the first
 * conv reads next; copied by the first thread alone, the other thread's
 * reads of its half had to take the lines from the first thread's cache. */
static void gather_batch(const ml_dataset *d, const int32_t *order, int64_t start, int64_t count,
                         float *x, int32_t *y) {
    gather_job g = {d, order, start, x, y};
    ML__PAR_RUN(count, 2 * count * d->c * d->h * d->w, 1, gather_range, &g);
}

static int argmax_row(const float *v, int64_t n) {
    int64_t best = 0;
    for (int64_t j = 1; j < n; j++)
        if (v[j] > v[best]) best = j;
    return (int)best;
}

/* A shard's row: [gradient | running statistics | loss, correct, status]. */
enum { ROW_LOSS, ROW_CORRECT, ROW_STATUS, ROW_TAIL };

typedef struct shard_worker {
    ml_ctx *ctx;
    ml_tensor **params, **grads;
    float *x;
    int32_t *y;
    ml_model view; /* the model, its running statistics pointing into the shard's row */
    char err[256];
} shard_worker;

typedef struct shard_step {
    ml_model *m;
    const ml_dataset *d;
    const int32_t *order;
    int64_t start, bs; /* the minibatch: order[start, start + bs) */
    int shards, first; /* G, and this rank's first shard */
    int64_t row_floats;
    float *rows;       /* G rows */
    shard_worker *workers;
    char (*errs)[256]; /* per shard of this rank: the message of a failed shard */
} shard_step;

/* Shard g of a minibatch of bs: examples [bs*g/G, bs*(g+1)/G), like ml_dist_slice. */
static int64_t shard_lo(int64_t bs, int shards, int g) { return bs * g / shards; }

/* The gradients into a shard's row, flat floats [lo, hi) of it. */
typedef struct grads_job {
    const ml_model *m;
    ml_tensor **grads;
    float *row;
} grads_job;

static void copy_grads_range(void *arg, int64_t lo, int64_t hi) {
    const grads_job *j = arg;
    for (int i = 0; i < j->m->n_params; i++) {
        int64_t a = j->m->params[i].offset, b = a + j->m->params[i].numel;
        a = a > lo ? a : lo;
        b = b < hi ? b : hi;
        if (a < b)
            memcpy(j->row + a, j->grads[i]->data + (a - j->m->params[i].offset), (size_t)(b - a) * sizeof(float));
    }
}

static void run_shard(int item, int worker, void *user) {
    shard_step *s = user;
    shard_worker *w = &s->workers[worker];
    ml_model *m = s->m;
    int g = s->first + item;
    int64_t lo = shard_lo(s->bs, s->shards, g), n = shard_lo(s->bs, s->shards, g + 1) - lo;
    float *row = s->rows + (int64_t)g * s->row_floats, *tail = row + m->n_floats + m->n_buffer_floats;
    const ml_dataset *d = s->d;
    gather_batch(d, s->order, s->start + lo, n, w->x, w->y);
    /* The statistics as before the step; the forward pass updates this copy. */
    memcpy(row + m->n_floats, m->buffer_data, (size_t)m->n_buffer_floats * sizeof(float));
    w->view.buffer_data = row + m->n_floats;
    ml_ctx_reset(w->ctx);
    ml_tensor *x = ml_tensor_wrap(w->ctx, w->x, 4, ML_SHAPE(n, d->c, d->h, d->w));
    ml_model_wrap(w->ctx, m, m->data, w->params);
    ml_tensor *logits = ml_model_forward(w->ctx, &w->view, w->params, x, 1, 1);
    ml_tensor *loss = ml_cross_entropy(w->ctx, logits, w->y);
    if (ml_grad(w->ctx, loss, w->params, m->n_params, 0, w->grads) != ML_OK) {
        snprintf(s->errs[item], sizeof s->errs[item], "train: %s", ml_ctx_error(w->ctx));
        ml_status cs = ml_ctx_status(w->ctx);
        tail[ROW_STATUS] = (float)(cs != ML_OK ? cs : ML_ERR_STATE);
        return;
    }
    int64_t correct = 0;
    for (int64_t i = 0; i < n; i++)
        correct += argmax_row(logits->data + i * logits->shape[1], logits->shape[1]) == w->y[i];
    grads_job gj = {m, w->grads, row};
    ML__PAR_RUN(m->n_floats, m->n_floats, 16, copy_grads_range, &gj);
    tail[ROW_LOSS] = loss->data[0];
    tail[ROW_CORRECT] = (float)correct; /* exact: a shard holds far fewer than 2^24 examples */
    tail[ROW_STATUS] = isfinite(loss->data[0]) ? 0.0f : (float)ML_ERR_NUMERIC;
}

/* ---- the update: rows summed, then the optimizer step ---------------------------------------- */

static float shard_weight(int64_t bs, int shards, int g) {
    return (float)(shard_lo(bs, shards, g + 1) - shard_lo(bs, shards, g)) / (float)bs;
}

typedef struct update_job {
    ml_model *m;
    ml_optim *opt;
    const float *rows;
    float *sum; /* [gradient | running statistics] */
    int64_t row_floats, bs;
    int shards;
    float lr;
    int with_step; /* the optimizer step follows the sum in the same range */
} update_job;

/* Floats [lo, hi) of the weighted sum of the rows, added in shard order (each
 * element's chain of adds is the same for any split), then, when lr is set,
 * the optimizer step on the parameters among them (elementwise). */
static void update_range(void *arg, int64_t lo, int64_t hi) {
    const update_job *u = arg;
    for (int g = 0; g < u->shards; g++) {
        const float *row = u->rows + (int64_t)g * u->row_floats;
        float w = shard_weight(u->bs, u->shards, g);
        if (g == 0)
            for (int64_t i = lo; i < hi; i++) u->sum[i] = w * row[i];
        else
            for (int64_t i = lo; i < hi; i++) u->sum[i] += w * row[i];
    }
    if (u->with_step && lo < u->m->n_floats)
        ml_optim_step_range(u->opt, u->m->data, u->sum, u->lr, lo, hi < u->m->n_floats ? hi : u->m->n_floats);
}

static void step_range(void *arg, int64_t lo, int64_t hi) {
    const update_job *u = arg;
    ml_optim_step_range(u->opt, u->m->data, u->sum, u->lr, lo, hi);
}

/* The step after the shards, split over `threads` OpenMP threads in fixed
 * ranges (kernels_par.h): one pass (sum, then the step) without clipping;
 * with it, the sum, the norm over all of it (serial: a reduction), the step.
 * The same bits for any thread count. */
static void update_step(update_job *u, float clip_norm, float lr, int threads) {
    ml_model *m = u->m;
    int64_t sum_floats = m->n_floats + m->n_buffer_floats;
    int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    u->lr = lr;
    u->with_step = !(clip_norm > 0);
    ML__PAR_RUN(sum_floats, 8 * sum_floats, 16, update_range, u);
    if (clip_norm > 0) {
        ml_clip_grad_norm(u->sum, m->n_floats, clip_norm);
        ML__PAR_RUN(m->n_floats, 8 * m->n_floats, 16, step_range, u);
    }
    omp_set_num_threads(saved);
    memcpy(m->buffer_data, u->sum + m->n_floats, (size_t)m->n_buffer_floats * sizeof(float));
    ml_optim_advance(u->opt);
}

/* ---- checkpoints ------------------------------------------------------------------------- */

#define SUP_FORMAT "metalearn-supervised-1"

/* Where a run stands: epochs done, and steps done in the next one (an
 * interrupted epoch) with their loss sum and correct count, for its log line. */
typedef struct sup_position {
    int epoch;
    int64_t step, correct;
    double loss_sum;
} sup_position;

static ml_status save_checkpoint(const char *path, ml_model *m, ml_optim *opt, const sup_position *at, int shards,
                                 char *err, size_t errlen) {
    ml_st_tensor ts[2 * ML_MAX_PARAMS + 3];
    char names[3][32];
    int n = 0;
    for (int k = 0; k < 2; k++) {
        int count = k ? m->n_buffers : m->n_params;
        const ml_param_info *list = k ? m->buffers : m->params;
        for (int i = 0; i < count; i++) {
            ts[n] = (ml_st_tensor){list[i].name, list[i].ndim, {0}, (k ? m->buffer_data : m->data) + list[i].offset};
            memcpy(ts[n].shape, list[i].shape, sizeof list[i].shape);
            n++;
        }
    }
    for (int i = 0; i < ml_optim_state_count(opt) && i < 3; i++) {
        const char *sname;
        float *buf = ml_optim_state(opt, i, &sname);
        snprintf(names[i], sizeof names[i], "optim.%s", sname);
        ts[n++] = (ml_st_tensor){names[i], 1, {m->n_floats}, buf};
    }
    char ep[16], step[32], g[16], in_epoch[32], loss[40], correct[32];
    snprintf(ep, sizeof ep, "%d", at->epoch);
    snprintf(step, sizeof step, "%" PRId64, opt->step);
    snprintf(g, sizeof g, "%d", shards);
    snprintf(in_epoch, sizeof in_epoch, "%" PRId64, at->step);
    snprintf(loss, sizeof loss, "%.17g", at->loss_sum); /* reads back exactly */
    snprintf(correct, sizeof correct, "%" PRId64, at->correct);
    const char *keys[] = {"format", "epoch", "optim_step", "shards", "epoch_step", "epoch_loss_sum", "epoch_correct"};
    const char *vals[] = {SUP_FORMAT, ep, step, g, in_epoch, loss, correct};
    return ml_safetensors_write(path, ts, n, keys, vals, 7, err, errlen) ? ML_ERR_IO : ML_OK;
}

static int copy_entry(const ml_safetensors *st, const char *path, const ml_param_info *p, float *dst, char *err,
                      size_t errlen) {
    const ml_st_entry *e = ml_safetensors_find(st, p->name);
    int same = e && e->ndim == p->ndim;
    for (int d = 0; same && d < p->ndim; d++) same = e->shape[d] == p->shape[d];
    if (!same) {
        snprintf(err, errlen, "%s: tensor '%s' %s", path, p->name, e ? "has another shape than the model's" : "missing");
        return -1;
    }
    memcpy(dst, e->data, (size_t)p->numel * sizeof(float));
    return 0;
}

/* Everything a resumed run needs; a bad file leaves m and opt untouched. */
static ml_status load_checkpoint(const char *path, ml_model *m, ml_optim *opt, int shards, sup_position *at,
                                 char *err, size_t errlen) {
    ml_safetensors st;
    if (ml_safetensors_read(path, &st, err, errlen)) return ML_ERR_IO;
    ml_status s = ML_ERR_FORMAT;
    const char *fmt = ml_safetensors_meta(&st, "format"), *ep = ml_safetensors_meta(&st, "epoch"),
               *step = ml_safetensors_meta(&st, "optim_step"), *g = ml_safetensors_meta(&st, "shards"),
               *in_epoch = ml_safetensors_meta(&st, "epoch_step"), *loss = ml_safetensors_meta(&st, "epoch_loss_sum"),
               *correct = ml_safetensors_meta(&st, "epoch_correct");
    int64_t total = m->n_floats + m->n_buffer_floats + 3 * m->n_floats;
    float *scratch = NULL;
    if (!fmt || strcmp(fmt, SUP_FORMAT) || !ep || !step || !g || !in_epoch || !loss || !correct) {
        snprintf(err, errlen, "%s: not a checkpoint of supervised training (metadata format/epoch/optim_step/shards/"
                              "epoch_step/epoch_loss_sum/epoch_correct)", path);
        goto out;
    }
    if (atoi(g) != shards) {
        snprintf(err, errlen, "%s: written with --shards %s, this run has --shards %d (the shards decide the result)",
                 path, g, shards);
        s = ML_ERR_ARG;
        goto out;
    }
    if (!(scratch = malloc((size_t)total * sizeof(float)))) {
        s = ML_ERR_NOMEM;
        snprintf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    float *params = scratch, *bufs = params + m->n_floats, *state = bufs + m->n_buffer_floats;
    for (int i = 0; i < m->n_params; i++)
        if (copy_entry(&st, path, &m->params[i], params + m->params[i].offset, err, errlen)) goto out;
    for (int i = 0; i < m->n_buffers; i++)
        if (copy_entry(&st, path, &m->buffers[i], bufs + m->buffers[i].offset, err, errlen)) goto out;
    int n_state = ml_optim_state_count(opt);
    for (int i = 0; i < n_state && i < 3; i++) {
        const char *sname;
        ml_optim_state(opt, i, &sname);
        char name[32];
        snprintf(name, sizeof name, "optim.%s", sname);
        ml_param_info p = {"", 1, {m->n_floats}, 0, m->n_floats};
        snprintf(p.name, sizeof p.name, "%s", name);
        if (copy_entry(&st, path, &p, state + i * m->n_floats, err, errlen)) goto out;
    }
    memcpy(m->data, params, (size_t)m->n_floats * sizeof(float));
    memcpy(m->buffer_data, bufs, (size_t)m->n_buffer_floats * sizeof(float));
    for (int i = 0; i < n_state && i < 3; i++)
        memcpy(ml_optim_state(opt, i, NULL), state + i * m->n_floats, (size_t)m->n_floats * sizeof(float));
    opt->step = strtoll(step, NULL, 10);
    *at = (sup_position){atoi(ep), strtoll(in_epoch, NULL, 10), strtoll(correct, NULL, 10), strtod(loss, NULL)};
    s = ML_OK;
out:
    free(scratch);
    ml_safetensors_free(&st);
    return s;
}

ml_status ml_supervised_load_weights(const char *path, ml_model *m, int *epoch, char *err, size_t errlen) {
    ml_safetensors st;
    if (ml_safetensors_read(path, &st, err, errlen)) return ML_ERR_IO;
    ml_status s = ML_ERR_FORMAT;
    const char *fmt = ml_safetensors_meta(&st, "format"), *ep = ml_safetensors_meta(&st, "epoch");
    float *params = malloc(((size_t)m->n_floats + (size_t)m->n_buffer_floats + 1) * sizeof(float));
    float *bufs = params ? params + m->n_floats : NULL;
    if (!fmt || strcmp(fmt, SUP_FORMAT) || !ep) {
        snprintf(err, errlen, "%s: not a checkpoint of supervised training (metadata format/epoch)", path);
        goto out;
    }
    if (!params) {
        s = ML_ERR_NOMEM;
        snprintf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    for (int i = 0; i < m->n_params; i++)
        if (copy_entry(&st, path, &m->params[i], params + m->params[i].offset, err, errlen)) goto out;
    for (int i = 0; i < m->n_buffers; i++)
        if (copy_entry(&st, path, &m->buffers[i], bufs + m->buffers[i].offset, err, errlen)) goto out;
    memcpy(m->data, params, (size_t)m->n_floats * sizeof(float));
    memcpy(m->buffer_data, bufs, (size_t)m->n_buffer_floats * sizeof(float));
    if (epoch) *epoch = atoi(ep);
    s = ML_OK;
out:
    free(params);
    ml_safetensors_free(&st);
    return s;
}

/* A failure of some ranks reaches all: 1 on every rank when any failed. */
static int any_failed(ml_status *s, const char *what, char *err, size_t errlen) {
    if (!ml_dist_any(*s != ML_OK)) return 0;
    if (*s == ML_OK) {
        snprintf(err, errlen, "train: another rank failed %s", what);
        *s = ML_ERR_IO;
    }
    return 1;
}

/* ---- training ---------------------------------------------------------------------------- */

/* User + system seconds of this process (all its threads). */
static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec + 1e-6 * ru.ru_stime.tv_usec;
}

/* This process's CPU seconds since cpu0, summed over the job's processes (a
 * busy machine barely changes it: it shows the work a split adds). */
static double job_cpu_since(double cpu0, int ranks) {
    double mine = cpu_seconds() - cpu0, rows[64] = {0};
    if (ranks == 1 || ranks > 64) return mine * ranks;
    rows[ml_dist_rank()] = mine;
    ml_dist_allgather_rows(rows, sizeof rows[0], ranks);
    double sum = 0;
    for (int r = 0; r < ranks; r++) sum += rows[r];
    return sum;
}

ml_status ml_supervised_check(const ml_supervised_config *cfg, int64_t n, char *err, size_t errlen) {
    if (cfg->batch_size < 2 || cfg->epochs < 1 || n < 2) {
        snprintf(err, errlen, "train: need batch size >= 2, epochs >= 1 and at least 2 examples");
        return ML_ERR_ARG;
    }
    int64_t bs = cfg->batch_size < n ? cfg->batch_size : n;
    int shards = cfg->shards > 1 ? cfg->shards : 1, ranks = ml_dist_size();
    if (shards < ranks) {
        snprintf(err, errlen, "--shards %d with %d processes: every process needs a shard (give --shards >= %d, "
                              "or start fewer processes)", shards, ranks, ranks);
        return ML_ERR_ARG;
    }
    if (bs / shards < 2) {
        snprintf(err, errlen, "--shards %d with a minibatch of %lld (--batch-size): a shard needs at least 2 "
                              "examples for batch norm (give --shards <= %lld)", shards, (long long)bs,
                 (long long)(bs / 2));
        return ML_ERR_ARG;
    }
    return ML_OK;
}

ml_status ml_supervised_train(ml_model *m, const ml_dataset *d, const ml_supervised_config *cfg,
                              ml_epoch_fn on_epoch, void *user, char *err, size_t errlen) {
    ml_status chk = ml_supervised_check(cfg, d->n, err, errlen);
    if (chk) return chk;
    int64_t per = (int64_t)d->c * d->h * d->w;
    int64_t bs = cfg->batch_size < d->n ? cfg->batch_size : d->n;
    int64_t steps_per_epoch = d->n / bs; /* drop the ragged last batch: batch norm needs > 1 */
    int shards = cfg->shards > 1 ? cfg->shards : 1, ranks = ml_dist_size();
    int first, last;
    ml_dist_slice(shards, &first, &last);
    int mine = last - first, threads = cfg->threads > 0 ? cfg->threads : omp_get_max_threads();
    int n_workers = threads < mine ? threads : mine;
    int64_t shard_max = (bs + shards - 1) / shards;
    int64_t row_floats = m->n_floats + m->n_buffer_floats + ROW_TAIL;
    ml_status st = ML_OK;
    ml_pool *pool = ml_pool_create(threads);
    shard_worker *workers = ml_calloc((size_t)n_workers, sizeof *workers);
    float *rows = ml_calloc((size_t)(shards * row_floats), sizeof(float));
    float *sum = ml_malloc((size_t)(m->n_floats + m->n_buffer_floats) * sizeof(float));
    char(*errs)[256] = ml_calloc((size_t)mine, sizeof *errs);
    int32_t *order = ml_malloc((size_t)d->n * sizeof(int32_t));
    ml_optim opt = {0};
    int ok = pool && workers && rows && sum && errs && order;
    for (int k = 0; ok && k < n_workers; k++) {
        shard_worker *w = &workers[k];
        w->ctx = ml_ctx_create((size_t)64 << 20);
        w->params = ml_malloc((size_t)m->n_params * sizeof(ml_tensor *));
        w->grads = ml_malloc((size_t)m->n_params * sizeof(ml_tensor *));
        w->x = ml_malloc((size_t)(shard_max * per) * sizeof(float));
        w->y = ml_malloc((size_t)shard_max * sizeof(int32_t));
        w->view = *m;
        ok = w->ctx && w->params && w->grads && w->x && w->y;
        if (w->ctx) ml_ctx_set_consume(w->ctx, 1); /* the step reads only the loss and logits after ml_grad */
    }
    if (!ok || (st = ml_optim_init(&opt, &cfg->optim, m->n_floats)) != ML_OK) {
        snprintf(err, errlen, "train: out of memory");
        st = ML_ERR_NOMEM;
    }
    if (any_failed(&st, "to allocate", err, errlen)) goto done;
    ml_rng rng;
    ml_rng_seed(&rng, cfg->seed);
    for (int64_t i = 0; i < d->n; i++) order[i] = (int32_t)i;
    sup_position at = {0};
    if (cfg->resume && cfg->checkpoint) {
        st = load_checkpoint(cfg->checkpoint, m, &opt, shards, &at, err, errlen);
        if (!st && (at.epoch < 0 || at.epoch > 100000 || at.step < 0 || at.step >= steps_per_epoch)) {
            snprintf(err, errlen, "%s: epoch %d, step %lld of an epoch of %lld steps: not this run's data or "
                     "--batch-size", cfg->checkpoint, at.epoch, (long long)at.step, (long long)steps_per_epoch);
            st = ML_ERR_ARG;
        }
        if (any_failed(&st, "to read the checkpoint", err, errlen)) goto done;
        for (int e = 0; e < at.epoch; e++) ml_rng_shuffle_i32(&rng, order, d->n); /* the epochs' orders */
    }
    int done_epochs = at.epoch;
    ml_schedule sched = {.kind = cfg->schedule,
                         .base_lr = cfg->optim.lr,
                         .step_size = steps_per_epoch * (cfg->epochs > 3 ? cfg->epochs / 3 : 1),
                         .gamma = 0.1,
                         .total_steps = steps_per_epoch * cfg->epochs,
                         .min_lr = 0};
    int64_t global_step = steps_per_epoch * done_epochs + at.step;
    int64_t sum_floats = m->n_floats + m->n_buffer_floats;
    shard_step step = {m, d, order, 0, bs, shards, first, row_floats, rows, workers, errs};
    update_job update = {m, &opt, rows, sum, row_floats, bs, shards, 0, 0};
    int interrupted = 0;
    for (int epoch = done_epochs + 1; epoch <= cfg->epochs; epoch++) {
        ml_rng_shuffle_i32(&rng, order, d->n);
        double t0 = ml_now(), cpu0 = cpu_seconds(), loss_sum = 0;
        int64_t correct = 0, s = 0;
        if (epoch == done_epochs + 1) s = at.step, loss_sum = at.loss_sum, correct = at.correct; /* resumed mid-epoch */
        float lr = (float)cfg->optim.lr;
        for (; s < steps_per_epoch; s++, global_step++) {
            step.start = s * bs;
            ml_pool_run(pool, mine, run_shard, &step);
            if (ranks > 1 && ml_dist_allgather_rows(rows, (size_t)row_floats * sizeof(float), shards)) {
                snprintf(err, errlen, "train: the shard rows exceed MPI's message size");
                st = ML_ERR_ARG;
                goto done;
            }
            /* In shard order: every rank adds the same rows the same way. */
            double step_loss = 0;
            for (int g = 0; g < shards; g++) {
                const float *row = rows + (int64_t)g * row_floats, *tail = row + sum_floats;
                if (tail[ROW_STATUS] != 0) {
                    st = (ml_status)(int)tail[ROW_STATUS];
                    if (st == ML_ERR_NUMERIC)
                        snprintf(err, errlen, "train: loss became %s at epoch %d, step %lld (try a lower --lr)",
                                 isnan(tail[ROW_LOSS]) ? "NaN" : "infinite", epoch, (long long)s + 1);
                    else if (g >= first && g < last)
                        snprintf(err, errlen, "%s", errs[g - first]);
                    else
                        snprintf(err, errlen, "train: rank %d of %d: shard %d failed (%s)", ml_dist_owner(shards, g),
                                 ranks, g, ml_status_text(st));
                    goto done;
                }
                step_loss += (double)shard_weight(bs, shards, g) * tail[ROW_LOSS];
                correct += (int64_t)tail[ROW_CORRECT];
            }
            loss_sum += step_loss;
            lr = ml_schedule_lr(&sched, global_step);
            update_step(&update, cfg->clip_norm, lr, threads);
            int stop = cfg->stop && *cfg->stop;
            if (cfg->stop && ranks > 1) stop = ml_dist_any(stop); /* every rank stops at the same step */
            if (stop && s + 1 < steps_per_epoch) {
                if (cfg->checkpoint) {
                    sup_position here = {epoch - 1, s + 1, correct, loss_sum};
                    if (ml_dist_rank() == 0) st = save_checkpoint(cfg->checkpoint, m, &opt, &here, shards, err, errlen);
                    if (any_failed(&st, "to write the checkpoint on rank 0", err, errlen)) goto done;
                }
                snprintf(err, errlen, "interrupted at epoch %d, step %lld of %lld%s", epoch, (long long)s + 1,
                         (long long)steps_per_epoch, cfg->checkpoint ? "; checkpoint saved" : "");
                st = ML_ERR_INTERRUPTED;
                goto done;
            }
            if (stop) interrupted = 1; /* the epoch is complete: its checkpoint and log line first */
        }
        double seconds = ml_now() - t0, cpu = job_cpu_since(cpu0, ranks); /* the steps' time, not the write's */
        if (cfg->checkpoint) {
            sup_position here = {epoch, 0, 0, 0};
            if (ml_dist_rank() == 0) st = save_checkpoint(cfg->checkpoint, m, &opt, &here, shards, err, errlen);
            if (any_failed(&st, "to write the checkpoint on rank 0", err, errlen)) goto done;
        }
        if (on_epoch) {
            ml_epoch_report r = {epoch, cfg->epochs, loss_sum / (double)steps_per_epoch,
                                 (double)correct / (double)(steps_per_epoch * bs), seconds, lr, cpu};
            on_epoch(&r, user);
        }
        if (interrupted && epoch < cfg->epochs) {
            snprintf(err, errlen, "interrupted at the end of epoch %d%s", epoch, cfg->checkpoint ? "; checkpoint saved" : "");
            st = ML_ERR_INTERRUPTED;
            goto done;
        }
    }
done:
    ml_optim_free(&opt);
    for (int k = 0; workers && k < n_workers; k++) {
        ml_free(workers[k].y);
        ml_free(workers[k].x);
        ml_free(workers[k].grads);
        ml_free(workers[k].params);
        ml_ctx_destroy(workers[k].ctx);
    }
    ml_free(workers);
    ml_free(order);
    ml_free(errs);
    ml_free(sum);
    ml_free(rows);
    ml_pool_destroy(pool);
    return st;
}

ml_status ml_classifier_evaluate(ml_model *m, const ml_dataset *d, int batch_size, ml_confusion *c,
                                 char *err, size_t errlen) {
    int64_t per = (int64_t)d->c * d->h * d->w;
    int64_t bs = batch_size > 0 ? batch_size : 500;
    ml_status st = ML_OK;
    ml_ctx *ctx = ml_ctx_create((size_t)64 << 20);
    ml_tensor **params = ml_malloc((size_t)m->n_params * sizeof(ml_tensor *));
    if (!ctx || !params) {
        snprintf(err, errlen, "evaluate: out of memory");
        st = ML_ERR_NOMEM;
        goto done;
    }
    ml_ctx_set_recording(ctx, 0);
    for (int64_t start = 0; start < d->n; start += bs) {
        int64_t n = d->n - start < bs ? d->n - start : bs;
        ml_ctx_reset(ctx);
        ml_tensor *x = ml_tensor_wrap(ctx, d->x + start * per, 4, ML_SHAPE(n, d->c, d->h, d->w));
        ml_model_wrap(ctx, m, m->data, params);
        ml_tensor *logits = ml_model_forward(ctx, m, params, x, 0, 0);
        if (!logits) {
            snprintf(err, errlen, "evaluate: %s", ml_ctx_error(ctx));
            st = ml_ctx_status(ctx);
            goto done;
        }
        for (int64_t i = 0; i < n; i++)
            ml_confusion_add(c, d->y[start + i], argmax_row(logits->data + i * logits->shape[1], logits->shape[1]));
    }
done:
    ml_free(params);
    ml_ctx_destroy(ctx);
    return st;
}
