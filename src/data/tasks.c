/* tasks.c: regression task families: spec parsing, synthetic draws (sinusoid,
 * linear) and draws from a loaded CSV family.
 *
 * The CSV reader itself lives in tasks_csv.c; this file does no I/O. */
#include "metalearn/tasks.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/tasks_internal.h"
#include "metalearn/sources.h"
#include "core/errfmt.h"
#include "core/rng_inline.h"

#define ML__PI 3.14159265358979323846


/* ---- family lifetime -------------------------------------------------------- */

ml_status ml__tasks_init_sinusoid(ml_task_family *f, const char *spec, const char *arg, char *err, size_t errlen) {
    (void)spec, (void)arg, (void)err, (void)errlen;
    f->kind = ML_TASKS_SINUSOID;
    f->in_dim = 1;
    return ML_OK;
}

ml_status ml__tasks_init_linear(ml_task_family *f, const char *spec, const char *arg, char *err, size_t errlen) {
    long d = 1;
    if (arg) {
        char *end = NULL;
        d = strtol(arg, &end, 10);
        if (end == arg || *end != '\0' || d < 1 || d > ML_TASK_LINEAR_MAX_DIM) {
            ml__errf(err, errlen, "task family '%s': D in linear:D must be an integer from 1 to %d", spec,
                     ML_TASK_LINEAR_MAX_DIM);
            return ML_ERR_ARG;
        }
    }
    f->kind = ML_TASKS_LINEAR;
    f->in_dim = (int)d;
    return ML_OK;
}

ml_status ml__tasks_init_sine_seq(ml_task_family *f, const char *spec, const char *arg, char *err, size_t errlen) {
    long n = 10;
    if (arg) {
        char *end = NULL;
        n = strtol(arg, &end, 10);
        if (end == arg || *end != '\0' || n < 2 || n > ML_TASK_SEQ_MAX) {
            ml__errf(err, errlen, "task family '%s': F in sine-seq:F must be an integer from 2 to %d", spec,
                     ML_TASK_SEQ_MAX);
            return ML_ERR_ARG;
        }
    }
    f->kind = ML_TASKS_SINE_SEQ;
    f->in_dim = 1 + (int)n;
    return ML_OK;
}

int ml_task_seq_function(const ml_task_family *f, int i, int n) {
    if (!f || f->kind != ML_TASKS_SINE_SEQ || n < 1) return -1;
    return (int)((int64_t)i * (f->in_dim - 1) / n);
}

ml_status ml__tasks_init_csv(ml_task_family *f, const char *spec, const char *arg, char *err, size_t errlen) {
    (void)spec;
    if (!arg || !*arg) {
        ml__errf(err, errlen, "task family 'csv:' needs a file name (csv:FILE)");
        return ML_ERR_ARG;
    }
    return ml__tasks_load_csv(f, arg, err, errlen);
}

/* The family's row of the source table (metalearn/sources.h) sets it up. */
ml_status ml_task_family_init(ml_task_family *f, const char *spec, char *err, size_t errlen) {
    if (err && errlen) err[0] = '\0';
    if (!f) return ML_ERR_ARG;
    memset(f, 0, sizeof *f);
    const char *arg;
    const ml_source_info *src = ml_source_find(spec, &arg);
    if (!src || src->kind != ML_SOURCE_TASKS || (src->arg == ML_SOURCE_ARG_NONE && arg)) {
        char list[256];
        ml_source_list(list, sizeof list, ML_SOURCE_TASKS, 0, " or ");
        if (!spec) ml__errf(err, errlen, "no task family given (expected %s)", list);
        else ml__errf(err, errlen, "unknown task family '%s' (expected %s)", spec, list);
        return ML_ERR_ARG;
    }
    ml_status st = src->init_tasks(f, spec, arg, err, errlen);
    if (st != ML_OK) ml_task_family_free(f);
    return st;
}

void ml_task_family_free(ml_task_family *f) {
    if (!f) return;
    ml_free(f->path);
    ml_free(f->tasks);
    ml_free(f->x);
    ml_free(f->y);
    ml_free(f->names);
    ml_free(f->draw_from);
    memset(f, 0, sizeof *f);
}

static const char *family_name(const ml_task_family *f) {
    return f->kind == ML_TASKS_SINUSOID ? "sinusoid" : f->kind == ML_TASKS_SINE_SEQ ? "sine-seq" : "linear";
}

int ml_task_family_n_info(const ml_task_family *f) {
    if (!f) return 0;
    switch (f->kind) {
    case ML_TASKS_SINUSOID: return 2;
    case ML_TASKS_LINEAR: return f->in_dim + 1;
    case ML_TASKS_SINE_SEQ: return 2 * (f->in_dim - 1);
    default: return 0;
    }
}

void ml_task_family_max_points(const ml_task_family *f, int *max_support, int *max_query) {
    int ms = 0, mq = 0;
    if (f && f->kind == ML_TASKS_CSV)
        for (int i = 0; i < f->n_tasks; i++) {
            if (f->tasks[i].n_support > ms) ms = f->tasks[i].n_support;
            if (f->tasks[i].n_query > mq) mq = f->tasks[i].n_query;
        }
    if (max_support) *max_support = ms;
    if (max_query) *max_query = mq;
}

ml_status ml_task_family_check(const ml_task_family *f, int k, int q, char *err, size_t errlen) {
    if (f->kind != ML_TASKS_CSV) {
        if (k == 0 || q == 0) {
            ml__errf(err, errlen, "%s tasks are drawn afresh and have no rows to take all of (0 = all is for CSV tasks)",
                     family_name(f));
            return ML_ERR_ARG;
        }
        if (f->kind == ML_TASKS_SINE_SEQ && ((k > 0 && k < f->in_dim - 1) || (q > 0 && q < f->in_dim - 1))) {
            int short_k = k > 0 && k < f->in_dim - 1;
            ml__errf(err, errlen, "sine-seq tasks of %d functions need at least %d %s points (got %d)", f->in_dim - 1,
                     f->in_dim - 1, short_k ? "support" : "query", short_k ? k : q);
            return ML_ERR_ARG;
        }
        return ML_OK;
    }
    for (int i = 0; i < f->n_tasks; i++) {
        const ml_csv_task *t = &f->tasks[i];
        int sup = k > t->n_support;
        if (sup || q > t->n_query) {
            ml__errf(err, errlen, "%s: task '%.60s' has only %d %s rows", f->path, t->name,
                     sup ? t->n_support : t->n_query, sup ? "support" : "query");
            return ML_ERR_ARG;
        }
    }
    return ML_OK;
}

const char *ml_task_family_task_name(const ml_task_family *f, int index) {
    if (!f || f->kind != ML_TASKS_CSV || index < 0 || index >= f->n_tasks) return NULL;
    return f->tasks[index].name;
}

/* ---- task buffers ------------------------------------------------------------ */

ml_status ml_regression_task_alloc(ml_regression_task *t, int k, int q, int in_dim) {
    if (!t) return ML_ERR_ARG;
    memset(t, 0, sizeof *t);
    if (k < 1 || q < 1 || in_dim < 1) return ML_ERR_ARG;
    /* One block for all four arrays: one heap call, one failure point. */
    size_t n = (size_t)k * (size_t)in_dim + (size_t)k + (size_t)q * (size_t)in_dim + (size_t)q;
    float *block = ml_calloc(n, sizeof(float));
    if (!block) return ML_ERR_NOMEM;
    t->xs = block;
    t->ys = t->xs + (size_t)k * (size_t)in_dim;
    t->xq = t->ys + k;
    t->yq = t->xq + (size_t)q * (size_t)in_dim;
    t->k = t->k_cap = k;
    t->q = t->q_cap = q;
    t->in_dim = in_dim;
    t->task_index = -1;
    return ML_OK;
}

void ml_regression_task_free(ml_regression_task *t) {
    if (!t) return;
    ml_free(t->xs);
    memset(t, 0, sizeof *t);
}

/* ---- synthetic families ------------------------------------------------------- */

/* y for one point, in double so float rounding happens once, at the store. */
static double true_y(const ml_task_family *f, const double *info, const float *x) {
    if (f->kind == ML_TASKS_SINUSOID) return info[0] * sin((double)x[0] - info[1]);
    if (f->kind == ML_TASKS_SINE_SEQ) { /* the function of the one-hot input */
        int j = 0;
        for (int i = 1; i < f->in_dim - 1; i++)
            if (x[1 + i] > x[1 + j]) j = i;
        return info[2 * j] * sin((double)x[0] - info[2 * j + 1]);
    }
    double s = info[f->in_dim];
    for (int i = 0; i < f->in_dim; i++) s += info[i] * (double)x[i];
    return s;
}

ml_status ml_task_eval_on_grid(const ml_task_family *f, const double *info, const float *x,
                               int n, float *y) {
    if (!f || !info || n < 0 || (n > 0 && (!x || !y))) return ML_ERR_ARG;
    if (f->kind != ML_TASKS_SINUSOID && f->kind != ML_TASKS_LINEAR && f->kind != ML_TASKS_SINE_SEQ) return ML_ERR_ARG;
    for (int i = 0; i < n; i++) y[i] = (float)true_y(f, info, x + (size_t)i * (size_t)f->in_dim);
    return ML_OK;
}

/* Fills n points: x first (rounded to float), then y from that float x, so a
 * caller recomputing y from the stored x gets the stored y exactly. */
static void draw_points(const ml_task_family *f, ml_rng *rng, const double *info, int n, float *x,
                        float *y) {
    int d = f->in_dim;
    for (int i = 0; i < n; i++) {
        if (f->kind == ML_TASKS_SINE_SEQ) { /* x, then the one-hot of its function */
            float *xi = x + (size_t)i * d;
            xi[0] = (float)(-5.0 + 10.0 * ml__rng_uniform_next(rng));
            for (int j = 1; j < d; j++) xi[j] = 0;
            xi[1 + ml_task_seq_function(f, i, n)] = 1;
        } else {
            for (int j = 0; j < d; j++) x[(size_t)i * d + j] = (float)(-5.0 + 10.0 * ml__rng_uniform_next(rng));
        }
        if (y) y[i] = (float)true_y(f, info, x + (size_t)i * d);
    }
}

/* targets = 0 leaves y to ml_task_fill_targets (the draws are the same). */
static ml_status sample_synthetic(const ml_task_family *f, ml_rng *rng, int k, int q, int targets,
                                  ml_regression_task *t, char *err, size_t errlen) {
    int least = f->kind == ML_TASKS_SINE_SEQ ? f->in_dim - 1 : 1;
    if (k < least || q < least) {
        ml__errf(err, errlen, "%s tasks need k >= %d and q >= %d (got k=%d, q=%d)", family_name(f), least, least, k,
                 q);
        return ML_ERR_ARG;
    }
    if (k > t->k_cap || q > t->q_cap) {
        ml__errf(err, errlen, "task buffer holds %d support and %d query points, %d and %d requested",
                t->k_cap, t->q_cap, k, q);
        return ML_ERR_ARG;
    }
    /* Draw order is part of the reproducibility contract: parameters, then
     * support x, then query x. */
    memset(t->info, 0, sizeof t->info);
    if (f->kind == ML_TASKS_SINUSOID || f->kind == ML_TASKS_SINE_SEQ) {
        for (int j = 0; j < ml_task_family_n_info(f); j += 2) {
            double u = ml__rng_uniform_next(rng); /* amplitude: the family's band (a federated client's) or U[0.1, 5] */
            t->info[j] = f->amp_max > f->amp_min ? f->amp_min + (f->amp_max - f->amp_min) * u : 0.1 + 4.9 * u;
            t->info[j + 1] = ML__PI * ml__rng_uniform_next(rng); /* phase */
        }
    } else {
        for (int i = 0; i <= f->in_dim; i++) t->info[i] = -3.0 + 6.0 * ml__rng_uniform_next(rng);
    }
    t->k = k;
    t->q = q;
    t->task_index = -1;
    draw_points(f, rng, t->info, k, t->xs, targets ? t->ys : NULL);
    draw_points(f, rng, t->info, q, t->xq, targets ? t->yq : NULL);
    return ML_OK;
}

void ml_task_fill_targets(const ml_task_family *f, ml_regression_task *t) {
    if (!f || !t || f->kind == ML_TASKS_CSV) return;
    int d = f->in_dim;
    for (int i = 0; i < t->k; i++) t->ys[i] = (float)true_y(f, t->info, t->xs + (size_t)i * d);
    for (int i = 0; i < t->q; i++) t->yq[i] = (float)true_y(f, t->info, t->xq + (size_t)i * d);
}

/* ---- CSV families ------------------------------------------------------------- */

/* Copies `want` of the n rows (x: [n, d]) into (xo, yo). With an RNG, a
 * uniform subset by selection sampling (Knuth's algorithm S): no scratch
 * memory, and the picked rows stay in file order. Without one, the first. */
static void pick_rows(ml_rng *rng, const float *x, const float *y, int n, int d, int want,
                      float *xo, float *yo) {
    int got = 0;
    for (int i = 0; i < n && got < want; i++) {
        if (rng && want < n && (int)ml_rng_below(rng, (uint32_t)(n - i)) >= want - got) continue;
        memcpy(xo + (size_t)got * d, x + (size_t)i * d, (size_t)d * sizeof(float));
        yo[got++] = y[i];
    }
}

static ml_status fill_csv(const ml_task_family *f, int index, ml_rng *rng, int k, int q,
                          ml_regression_task *t, char *err, size_t errlen) {
    const ml_csv_task *ct = &f->tasks[index];
    int ks = k <= 0 ? ct->n_support : k, qs = q <= 0 ? ct->n_query : q;
    if (ks > ct->n_support || qs > ct->n_query) {
        int sup = ks > ct->n_support;
        ml__errf(err, errlen, "%s: task '%.60s' has %d %s points, %d requested", f->path, ct->name,
                sup ? ct->n_support : ct->n_query, sup ? "support" : "query", sup ? ks : qs);
        return ML_ERR_ARG;
    }
    if (ks > t->k_cap || qs > t->q_cap) {
        int sup = ks > t->k_cap;
        ml__errf(err, errlen, "%s: task '%.60s' needs room for %d %s points, the task buffer holds %d",
                f->path, ct->name, sup ? ks : qs, sup ? "support" : "query", sup ? t->k_cap : t->q_cap);
        return ML_ERR_ARG;
    }
    memset(t->info, 0, sizeof t->info);
    pick_rows(rng, ct->xs, ct->ys, ct->n_support, f->in_dim, ks, t->xs, t->ys);
    pick_rows(rng, ct->xq, ct->yq, ct->n_query, f->in_dim, qs, t->xq, t->yq);
    t->k = ks;
    t->q = qs;
    t->task_index = index;
    return ML_OK;
}

static ml_status check_task_buffer(const ml_task_family *f, const ml_regression_task *t, char *err,
                                   size_t errlen) {
    if (!t->xs) {
        ml__errf(err, errlen, "task buffer not allocated (call ml_regression_task_alloc)");
        return ML_ERR_ARG;
    }
    if (t->in_dim != f->in_dim) {
        ml__errf(err, errlen, "task buffer has %d input%s, the task family %d", t->in_dim,
                t->in_dim == 1 ? "" : "s", f->in_dim);
        return ML_ERR_SHAPE;
    }
    return ML_OK;
}

static ml_status sample(const ml_task_family *f, ml_rng *rng, int k, int q, int targets, ml_regression_task *t,
                        char *err, size_t errlen) {
    if (err && errlen) err[0] = '\0';
    if (!f || !rng || !t) {
        ml__errf(err, errlen, "ml_task_sample: NULL argument");
        return ML_ERR_ARG;
    }
    ml_status st = check_task_buffer(f, t, err, errlen);
    if (st != ML_OK) return st;
    switch (f->kind) {
    case ML_TASKS_SINUSOID:
    case ML_TASKS_SINE_SEQ:
    case ML_TASKS_LINEAR: return sample_synthetic(f, rng, k, q, targets, t, err, errlen);
    case ML_TASKS_CSV:
        if (f->n_tasks < 1 || !f->tasks) {
            ml__errf(err, errlen, "CSV task family has no tasks");
            return ML_ERR_STATE;
        }
        if (f->n_draw_from > 0)
            return fill_csv(f, f->draw_from[ml_rng_below(rng, (uint32_t)f->n_draw_from)], rng, k, q, t, err, errlen);
        return fill_csv(f, (int)ml_rng_below(rng, (uint32_t)f->n_tasks), rng, k, q, t, err, errlen);
    }
    ml__errf(err, errlen, "unknown task family kind %d", (int)f->kind);
    return ML_ERR_ARG;
}

ml_status ml_task_sample(const ml_task_family *f, ml_rng *rng, int k, int q, ml_regression_task *t, char *err,
                         size_t errlen) {
    return sample(f, rng, k, q, 1, t, err, errlen);
}

ml_status ml_task_sample_draws(const ml_task_family *f, ml_rng *rng, int k, int q, ml_regression_task *t, char *err,
                               size_t errlen) {
    return sample(f, rng, k, q, 0, t, err, errlen);
}

ml_status ml_task_get_csv(const ml_task_family *f, int index, int k, int q,
                          ml_regression_task *t, char *err, size_t errlen) {
    return ml_task_draw_csv(f, index, NULL, k, q, t, err, errlen);
}

ml_status ml_task_draw_csv(const ml_task_family *f, int index, ml_rng *rng, int k, int q, ml_regression_task *t,
                           char *err, size_t errlen) {
    if (err && errlen) err[0] = '\0';
    if (!f || !t) {
        ml__errf(err, errlen, "ml_task_get_csv: NULL argument");
        return ML_ERR_ARG;
    }
    if (f->kind != ML_TASKS_CSV) {
        ml__errf(err, errlen, "ml_task_get_csv: not a CSV task family");
        return ML_ERR_ARG;
    }
    if (index < 0 || index >= f->n_tasks) {
        ml__errf(err, errlen, "%s: task index %d out of range (%d tasks)", f->path, index, f->n_tasks);
        return ML_ERR_ARG;
    }
    ml_status st = check_task_buffer(f, t, err, errlen);
    if (st != ML_OK) return st;
    return fill_csv(f, index, rng, k, q, t, err, errlen);
}
