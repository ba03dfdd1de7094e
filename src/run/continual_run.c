/* continual_run.c: a run through the continual-learning protocol
 * (metalearn/continual.h): the representation of the run's learned
 * parameters (every layer but the last; a headless embedding as it is) is
 * computed once for every image of the run's validation and test classes,
 * then ml_continual_evaluate learns the classes one after another with a new
 * head. Batch norm uses the statistics of fixed chunks of images taken in
 * class order (the same chunks whatever the class order or thread count). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metalearn/continual.h"
#include "metalearn/dist.h"
#include "metalearn/eval.h"
#include "metalearn/io.h"
#include "run/meta_run.h"

enum { CHUNK = 100 }; /* images per forward pass */

typedef struct part_features {
    ml_continual_data data;
    float *feat;
    int64_t *class_start;
} part_features;

static void part_free(part_features *p) {
    ml_free(p->feat);
    ml_free(p->class_start);
    memset(p, 0, sizeof *p);
}

/* p->class_start for the images of the classes of list, in list order, and
 * p->data's class count; returns the number of images, or -1 out of memory. */
static int64_t part_layout(const ml_image_set *s, const ml_class_list *list, part_features *p) {
    memset(p, 0, sizeof *p);
    p->class_start = ml_calloc((size_t)list->n + 1, sizeof(int64_t));
    if (!p->class_start) return -1;
    int64_t total = 0;
    for (int k = 0; k < list->n; k++) {
        int c = list->items[k].cls;
        p->class_start[k] = total;
        total += s->class_start[c + 1] - s->class_start[c];
    }
    p->class_start[list->n] = total;
    p->data.n_classes = list->n;
    p->data.class_start = p->class_start;
    return total;
}

/* Features of every image of the classes of list (rotation as listed). */
static int part_compute(meta_run *r, const ml_class_list *list, ml_ctx *ctx, part_features *p, char *err,
                        size_t errlen) {
    const ml_image_set *s = &r->images;
    ml_model *model = &r->model;
    int64_t per = (int64_t)s->size * s->size, total = part_layout(s, list, p);
    if (total < 0) goto nomem;
    if (!list->n) return 0; /* ml_continual_check says which part is empty */
    float *x = ml_malloc((size_t)CHUNK * per * sizeof(float));
    if (!x) goto nomem;
    int64_t done = 0, k = 0, j = 0; /* class k of the list, its image j */
    while (done < total) {
        int n = total - done < CHUNK ? (int)(total - done) : CHUNK;
        for (int i = 0; i < n; i++) {
            while (s->class_start[list->items[k].cls] + j >= s->class_start[list->items[k].cls + 1]) k++, j = 0;
            ml_image_set_copy(s, s->class_start[list->items[k].cls] + j, list->items[k].rot, NULL, NULL, x + i * per);
            j++;
        }
        ml_ctx_reset(ctx);
        ml_ctx_set_recording(ctx, 0);
        ml_tensor *params[ML_MAX_PARAMS];
        ml_model_wrap(ctx, model, r->meta.meta, params);
        ml_tensor *f = ml_model_features(ctx, model, params, ml_tensor_wrap(ctx, x, 2, ML_SHAPE(n, per)), 1, 0);
        ml_ctx_set_recording(ctx, 1);
        if (!f) {
            snprintf(err, errlen, "continual: representation: %s", ml_ctx_error(ctx));
            ml_free(x);
            return ML__RUN_FAIL;
        }
        int64_t D = f->numel / n;
        if (!p->feat) {
            p->data.dim = D;
            p->feat = ml_malloc((size_t)total * D * sizeof(float));
            if (!p->feat) {
                ml_free(x);
                goto nomem;
            }
        }
        memcpy(p->feat + done * D, f->data, (size_t)n * D * sizeof(float));
        done += n;
    }
    ml_free(x);
    p->data.feat = p->feat;
    return 0;
nomem:
    snprintf(err, errlen, "continual: out of memory");
    return ML__RUN_FAIL;
}

static void feature_stats(const ml_continual_data *d, ml_continual_result *res);

/* The images themselves of the classes of list (rotation as listed): the
 * rows the whole-network baselines learn from. */
static int part_images(meta_run *r, const ml_class_list *list, part_features *p, char *err, size_t errlen) {
    const ml_image_set *s = &r->images;
    int64_t per = (int64_t)s->size * s->size, total = part_layout(s, list, p);
    if (total < 0) goto nomem;
    p->data.dim = per;
    if (!list->n) return 0;
    p->feat = ml_malloc((size_t)total * per * sizeof(float));
    if (!p->feat) goto nomem;
    for (int k = 0, row = 0; k < list->n; k++) {
        int c = list->items[k].cls;
        for (int64_t i = s->class_start[c]; i < s->class_start[c + 1]; i++, row++)
            ml_image_set_copy(s, i, list->items[k].rot, NULL, NULL, p->feat + (int64_t)row * per);
    }
    p->data.feat = p->feat;
    return 0;
nomem:
    snprintf(err, errlen, "continual: out of memory for the images");
    return ML__RUN_FAIL;
}

/* ---- incremental sine waves ------------------------------------------------------------- */

/* Features [n, D] of n inputs of the run's regression model into *out (grown). */
static int regression_features(meta_run *r, ml_ctx *ctx, const float *x, int n, float **out, int64_t *cap,
                               int64_t *dim) {
    ml_ctx_reset(ctx);
    ml_ctx_set_recording(ctx, 0);
    ml_tensor *params[ML_MAX_PARAMS];
    ml_model_wrap(ctx, &r->model, r->meta.meta, params);
    ml_tensor *f = ml_model_features(ctx, &r->model, params,
                                     ml_tensor_wrap(ctx, (float *)x, 2, ML_SHAPE(n, r->family.in_dim)), 1, 0);
    ml_ctx_set_recording(ctx, 1);
    if (!f) return -1;
    if (f->numel > *cap) {
        ml_free(*out);
        *out = ml_malloc((size_t)f->numel * sizeof(float));
        *cap = *out ? f->numel : 0;
        if (!*out) return -1;
    }
    memcpy(*out, f->data, (size_t)f->numel * sizeof(float));
    *dim = f->numel / n;
    return 0;
}

/* Mean squared error of the head on query points [from, to). */
static double head_mse(const float *w, const float *b, int64_t D, const float *fq, const float *yq, int from, int to) {
    double s = 0;
    for (int i = from; i < to; i++) {
        float out;
        ml_linear_head_forward(w, b, 1, D, fq + (int64_t)i * D, &out);
        s += ((double)out - yq[i]) * ((double)out - yq[i]);
    }
    return to > from ? s / (to - from) : 0;
}

/* One task of F functions learned one after another (the support set in its
 * order, one SGD step per point from the run's head), MSE on the query points
 * of the first counts[i] functions into mse[i], of the first function into
 * first[i]; the oracle (oracle != NULL) shuffles the same points for epochs. */
typedef struct sine_job {
    meta_run *r;
    ml_ctx *ctx;
    ml_regression_task task;
    float *fs, *fq, *w;
    int64_t cap_s, cap_q, D;
    int32_t *perm;
} sine_job;

static int sine_task(sine_job *j, const ml_continual_options *o, const int *counts, int n_counts, float lr,
                     float oracle_lr, ml_rng *rng, double *mse, double *first, double *oracle, char *err, size_t errlen) {
    meta_run *r = j->r;
    const int ks = j->task.k_cap, kq = j->task.q_cap;
    if (ml_task_sample(&r->family, rng, ks, kq, &j->task, err, errlen)) return ML__RUN_FAIL;
    if (regression_features(r, j->ctx, j->task.xs, ks, &j->fs, &j->cap_s, &j->D) ||
        regression_features(r, j->ctx, j->task.xq, kq, &j->fq, &j->cap_q, &j->D)) {
        snprintf(err, errlen, "continual: representation: %s", ml_ctx_error(j->ctx));
        return ML__RUN_FAIL;
    }
    const int64_t D = j->D;
    if (!j->w && !(j->w = ml_malloc((size_t)(D + 1) * sizeof(float)))) {
        snprintf(err, errlen, "continual: out of memory");
        return ML__RUN_FAIL;
    }
    const ml_model *m = &r->model;
    const float *hw = r->meta.meta + m->params[m->n_params - 2].offset;
    const float *hb = r->meta.meta + m->params[m->n_params - 1].offset;
    float *w = j->w, *b = j->w + D;
    const ml_task_family *fam = &r->family;
    int q1 = 0; /* query points of the first function */
    while (q1 < kq && ml_task_seq_function(fam, q1, kq) == 0) q1++;
    memcpy(w, hw, (size_t)D * sizeof(float));
    b[0] = hb[0];
    for (int i = 0, next = 0; i < ks && next < n_counts; i++) {
        ml_linear_head_step_mse(w, b, D, j->fs + (int64_t)i * D, j->task.ys[i], lr);
        int fn = ml_task_seq_function(fam, i, ks);
        if ((i + 1 == ks || ml_task_seq_function(fam, i + 1, ks) != fn) && fn + 1 == counts[next]) {
            int qend = 0; /* function fn learned: score the query points of functions 0..fn */
            while (qend < kq && ml_task_seq_function(fam, qend, kq) <= fn) qend++;
            mse[next] = head_mse(w, b, D, j->fq, j->task.yq, 0, qend);
            first[next++] = head_mse(w, b, D, j->fq, j->task.yq, 0, q1);
        }
    }
    for (int c = 0; oracle && c < n_counts; c++) { /* the same points shuffled together, several epochs */
        int n = 0, qend = 0;
        while (n < ks && ml_task_seq_function(fam, n, ks) < counts[c]) j->perm[n] = n, n++;
        while (qend < kq && ml_task_seq_function(fam, qend, kq) < counts[c]) qend++;
        memcpy(w, hw, (size_t)D * sizeof(float));
        b[0] = hb[0];
        for (int e = 0; e < o->oracle_epochs; e++) {
            ml_rng_shuffle_i32(rng, j->perm, n);
            for (int i = 0; i < n; i++)
                ml_linear_head_step_mse(w, b, D, j->fs + (int64_t)j->perm[i] * D, j->task.ys[j->perm[i]], oracle_lr);
        }
        oracle[c] = head_mse(w, b, D, j->fq, j->task.yq, 0, qend);
    }
    return 0;
}

static int sine_continual(meta_run *r, const ml_continual_options *o, ml_continual_result *res, char *err,
                          size_t errlen) {
    memset(res, 0, sizeof *res);
    const int F = r->family.in_dim - 1;
    const int train = o->train_per_class > 0 ? o->train_per_class : 40, test = o->test_per_class;
    if (test < 1) {
        snprintf(err, errlen, "continual: --continual-test %d leaves no point for the test side (at least 1)", test);
        return ML__RUN_USAGE;
    }
    int counts[ML_CONTINUAL_MAX_COUNTS + 1], n = 0;
    for (int i = 0; i < o->n_counts; i++) {
        if (o->counts[i] > F) {
            snprintf(err, errlen, "continual: %d functions asked, the run's tasks (%s) have %d (--continual)",
                     o->counts[i], r->family.in_dim == 11 ? "sine-seq" : "sine-seq:F", F);
            return ML__RUN_USAGE;
        }
        if (i && o->counts[i] <= o->counts[i - 1]) {
            snprintf(err, errlen, "continual: function counts must be ascending (--continual)");
            return ML__RUN_USAGE;
        }
        if (o->counts[i] < F) counts[n++] = o->counts[i];
    }
    counts[n++] = F;
    const float *rates = o->rates;
    int n_rates = o->n_rates ? o->n_rates : ml_continual_default_rates(&rates);
    sine_job j;
    memset(&j, 0, sizeof j);
    j.r = r;
    j.ctx = ml_ctx_create((size_t)1 << 20);
    double *mse = ml_calloc((size_t)o->orders * n, sizeof(double)), *first = ml_calloc((size_t)o->orders * n, sizeof(double));
    double *orc = ml_calloc((size_t)o->orders * n, sizeof(double)), *tmp = ml_calloc((size_t)o->orders, sizeof(double));
    int st = ML__RUN_FAIL;
    if (!j.ctx || !mse || !first || !orc || !tmp || ml_regression_task_alloc(&j.task, F * train, F * test, r->family.in_dim) ||
        !(j.perm = ml_calloc((size_t)F * train, sizeof(int32_t)))) {
        snprintf(err, errlen, "continual: out of memory");
        goto done;
    }
    /* The rate: lowest final MSE on validation tasks (their own seed). */
    double best = INFINITY, best_oracle = INFINITY;
    res->lr = rates[0];
    res->oracle_lr = o->oracle_epochs ? rates[0] : NAN;
    for (int i = 0; i < n_rates; i++) {
        double sum = 0, sum_oracle = 0;
        for (int k = 0; k < o->orders; k++) {
            ml_rng rng;
            ml_rng_seed(&rng, o->seed ^ ML_VAL_SEED_XOR ^ ((uint64_t)k << 32));
            double a = 0, f = 0, orc_a = 0;
            if (sine_task(&j, o, &F, 1, rates[i], rates[i], &rng, &a, &f, o->oracle_epochs ? &orc_a : NULL, err,
                          errlen))
                goto done;
            sum += a;
            sum_oracle += orc_a;
        }
        if (sum / o->orders < best) { /* NaN (diverged) never wins */
            best = sum / o->orders;
            res->lr = rates[i];
        }
        if (o->oracle_epochs && sum_oracle / o->orders < best_oracle) {
            best_oracle = sum_oracle / o->orders;
            res->oracle_lr = rates[i];
        }
    }
    res->val_accuracy = best;
    for (int k = 0; k < o->orders; k++) {
        ml_rng rng;
        ml_rng_seed(&rng, o->seed ^ ((uint64_t)k << 32));
        if (sine_task(&j, o, counts, n, res->lr, res->oracle_lr, &rng, mse + (int64_t)k * n, first + (int64_t)k * n,
                      o->oracle_epochs ? orc + (int64_t)k * n : NULL, err, errlen))
            goto done;
    }
    res->regression = 1;
    res->n_rows = n;
    for (int i = 0; i < n; i++) {
        double *cols[3] = {mse, first, orc};
        double mean[3], ci[3];
        for (int c = 0; c < 3; c++) {
            for (int k = 0; k < o->orders; k++) tmp[k] = cols[c][(int64_t)k * n + i];
            ml_mean_ci95(tmp, o->orders, &mean[c], &ci[c]);
        }
        res->rows[i] = (ml_continual_row){counts[i], mean[0], ci[0], mean[1], ci[1],
                                          o->oracle_epochs ? mean[2] : NAN, o->oracle_epochs ? ci[2] : NAN};
    }
    res->forgetting = res->rows[n - 1].first;
    res->forgetting_ci95 = res->rows[n - 1].first_ci95;
    res->forget_classes = 1;
    res->val_classes = F;
    res->test_classes = F;
    res->train_per_class = train;
    res->test_per_class = test;
    res->orders = o->orders;
    res->feature_zero_fraction = res->feature_norm = NAN;
    if (j.fs) { /* the last test task's support points */
        ml_continual_data d = {1, j.D, j.fs, (int64_t[]){0, j.task.k}};
        feature_stats(&d, res);
    }
    st = 0;
done:
    ml_ctx_destroy(j.ctx);
    ml_regression_task_free(&j.task);
    ml_free(j.fs), ml_free(j.fq), ml_free(j.w), ml_free(j.perm);
    ml_free(mse), ml_free(first), ml_free(orc), ml_free(tmp);
    return st;
}

/* Sparsity and size of the representation on a part's images. */
static void feature_stats(const ml_continual_data *d, ml_continual_result *res) {
    int64_t rows = d->class_start[d->n_classes], zeros = 0;
    double norms = 0;
    for (int64_t i = 0; i < rows; i++) {
        double s = 0;
        for (int64_t j = 0; j < d->dim; j++) {
            float v = d->feat[i * d->dim + j];
            zeros += v == 0.0f;
            s += (double)v * v;
        }
        norms += sqrt(s);
    }
    res->feature_zero_fraction = rows ? (double)zeros / (double)(rows * d->dim) : NAN;
    res->feature_norm = rows ? norms / (double)rows : NAN;
}

/* The whole-network baselines: the run's architecture (not its parameters)
 * learned on the images of its validation and test classes. */
static int network_continual(meta_run *r, const ml_continual_options *o, ml_continual_result *res, char *err,
                             size_t errlen) {
    part_features val, test;
    memset(&val, 0, sizeof val);
    int st = part_images(r, &r->split.part[ML_SPLIT_TEST], &test, err, errlen);
    if (!st) st = part_images(r, &r->split.part[ML_SPLIT_VAL], &val, err, errlen);
    if (!st) {
        ml_status s = ml_continual_evaluate_network(&val.data, &test.data, o, &r->model.spec, res, err, errlen);
        st = s == ML_OK ? 0 : s == ML_ERR_ARG ? ML__RUN_USAGE : ML__RUN_FAIL;
    }
    part_free(&val);
    part_free(&test);
    return st;
}

static int continual_compute(meta_run *r, const ml_continual_options *o, ml_continual_result *res, char *err,
                             size_t errlen) {
    if (o->whole_network && !r->fewshot) {
        snprintf(err, errlen, "continual: the whole-network baselines (--continual-whole-network) take a few-shot "
                              "image run");
        return ML__RUN_USAGE;
    }
    if (!r->fewshot && r->family.kind == ML_TASKS_SINE_SEQ) return sine_continual(r, o, res, err, errlen);
    if (!r->fewshot) {
        snprintf(err, errlen, "continual: --continual takes a few-shot image run, or a --task sine-seq run for the "
                              "incremental sine waves (this run's tasks have no function id)");
        return ML__RUN_USAGE;
    }
    if (r->all_classes) {
        snprintf(err, errlen, "continual: the protocol uses the run's own validation and test classes "
                              "(no --dataset / --eval-classes)");
        return ML__RUN_USAGE;
    }
    if (o->whole_network) return network_continual(r, o, res, err, errlen);
    ml_ctx *ctx = ml_ctx_create((size_t)1 << 20);
    if (!ctx) {
        snprintf(err, errlen, "continual: out of memory");
        return ML__RUN_FAIL;
    }
    part_features val, test;
    memset(&val, 0, sizeof val);
    int st = part_compute(r, &r->split.part[ML_SPLIT_TEST], ctx, &test, err, errlen);
    if (!st) st = part_compute(r, &r->split.part[ML_SPLIT_VAL], ctx, &val, err, errlen);
    ml_ctx_destroy(ctx);
    if (!st) {
        ml_status s = ml_continual_evaluate(&val.data, &test.data, o, res, err, errlen);
        st = s == ML_OK ? 0 : s == ML_ERR_ARG ? ML__RUN_USAGE : ML__RUN_FAIL;
    }
    if (!st) feature_stats(&test.data, res);
    part_free(&val);
    part_free(&test);
    return st;
}

/* RUN/continual.json, what `metalearn plot` draws: the JSON line of
 * ml_continual_to_json, written atomically by one process. The whole-network
 * baselines go beside it (continual_whole_network.json), so they never
 * replace the run's own result. */
static int continual_save(const meta_run *r, const ml_continual_result *res, char *err, size_t errlen) {
    if (ml_dist_rank() != 0) return 0;
    const char *algo = ml_algo_name(r->algo);
    size_t need = ml_continual_to_json(res, algo, NULL, 0);
    char *text = malloc(need + 2), path[4200];
    if (!text) {
        snprintf(err, errlen, "continual: out of memory");
        return ML__RUN_FAIL;
    }
    ml_continual_to_json(res, algo, text, need + 1);
    text[need] = '\n';
    snprintf(path, sizeof path, "%s/%s", r->dir, res->whole_network ? "continual_whole_network.json" : "continual.json");
    ml_status s = ml_file_write_atomic(path, text, need + 1, err, errlen);
    free(text);
    return s == ML_OK ? 0 : ML__RUN_FAIL;
}

int meta_run_continual(meta_run *r, const ml_continual_options *o, ml_continual_result *res, char *err,
                       size_t errlen) {
    int st = continual_compute(r, o, res, err, errlen);
    return st ? st : continual_save(r, res, err, errlen);
}
