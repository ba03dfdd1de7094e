/* taskeval.c: a meta-learner's query MSE on regression tasks (see
 * metalearn/taskeval.h). Only the choice of tasks lives here; adapting and
 * scoring is ml_meta_evaluate's. */
#include "metalearn/taskeval.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/errfmt.h"

ml_status ml_task_eval(ml_meta *m, const ml_task_family *f, const int32_t *idx, int n, ml_rng *rng, int k, int q,
                       int max_steps, double *loss_at, char *err, size_t errlen) {
    if (!m || !f || !rng || n < 1 || k < 1 || max_steps < 0 || !loss_at) return ML_ERR_ARG;
    if (idx && f->kind != ML_TASKS_CSV) {
        ml__errf(err, errlen, "task evaluation: a task list needs a CSV family");
        return ML_ERR_ARG;
    }
    ml_regression_task *tasks = ml_calloc((size_t)n, sizeof *tasks);
    ml_task_data *views = ml_calloc((size_t)n, sizeof *views);
    ml_status st = tasks && views ? ML_OK : ML_ERR_NOMEM;
    for (int t = 0; t < n && st == ML_OK; t++) {
        int qt = q;
        if (idx) {
            int avail = f->tasks[idx[t]].n_query;
            qt = q <= 0 || q > avail ? avail : q;
        }
        st = ml_regression_task_alloc(&tasks[t], k, qt, f->in_dim);
        if (st != ML_OK) break;
        st = idx ? ml_task_draw_csv(f, idx[t], rng, k, qt, &tasks[t], err, errlen)
                 : ml_task_sample(f, rng, k, qt, &tasks[t], err, errlen);
        const ml_regression_task *r = &tasks[t];
        views[t] = (ml_task_data){.n_support = r->k, .n_query = r->q, .xs = r->xs, .xq = r->xq, .ys = r->ys, .yq = r->yq};
    }
    if (st == ML_OK) st = ml_meta_evaluate(m, views, n, max_steps, loss_at, NULL, err, errlen);
    for (int t = 0; tasks && t < n; t++) ml_regression_task_free(&tasks[t]);
    ml_free(tasks);
    ml_free(views);
    return st;
}

ml_status ml_task_eval_mean(ml_meta *m, const ml_task_family *f, const int32_t *idx, int n, ml_rng *rng, int k,
                            int q, int steps, double *mean, char *err, size_t errlen) {
    if (!mean || steps < 0 || n < 1) return ML_ERR_ARG;
    double *loss = ml_malloc(sizeof(double) * (size_t)n * (size_t)(steps + 1));
    if (!loss) return ML_ERR_NOMEM;
    ml_status st = ml_task_eval(m, f, idx, n, rng, k, q, steps, loss, err, errlen);
    double sum = 0;
    for (int t = 0; t < n && st == ML_OK; t++) sum += loss[(int64_t)t * (steps + 1) + steps];
    *mean = st == ML_OK && isfinite(sum) ? sum / n : NAN;
    ml_free(loss);
    return st;
}

ml_status ml_episode_eval_acc(ml_meta *m, const ml_image_set *s, const ml_class_list *classes, int ways, int shots,
                              int queries, int n, int batch, ml_rng *rng, int steps, double *mean_acc, char *err,
                              size_t errlen) {
    if (!m || !s || !classes || !rng || !mean_acc || n < 1 || batch < 1 || steps < 0 || queries < 1) return ML_ERR_ARG;
    if (batch > n) batch = n;
    int stride = steps + 1;
    ml_episode *eps = ml_calloc((size_t)batch, sizeof *eps);
    ml_task_data *views = ml_calloc((size_t)batch, sizeof *views);
    double *loss = ml_malloc(sizeof(double) * (size_t)batch * (size_t)stride);
    double *acc = ml_malloc(sizeof(double) * (size_t)batch * (size_t)stride);
    unsigned char *report = ml_calloc((size_t)stride, 1); /* only the last step is scored */
    ml_status st = eps && views && loss && acc && report ? ML_OK : ML_ERR_NOMEM;
    for (int b = 0; b < batch && st == ML_OK; b++) st = ml_episode_init(&eps[b], ways, shots, queries, s->size);
    double sum = 0;
    for (int start = 0; start < n && st == ML_OK; start += batch) {
        int k = n - start < batch ? n - start : batch;
        for (int b = 0; b < k && st == ML_OK; b++) {
            st = ml_episode_sample(&eps[b], s, classes, NULL, rng, err, errlen);
            views[b] = (ml_task_data){.n_support = ways * shots, .n_query = ways * queries, .ways = ways,
                                      .xs = eps[b].xs, .xq = eps[b].xq, .ls = eps[b].ys, .lq = eps[b].yq};
        }
        if (st == ML_OK) st = ml_meta_evaluate_at(m, views, k, steps, report, loss, acc, err, errlen);
        for (int b = 0; b < k && st == ML_OK; b++) sum += acc[(int64_t)b * stride + steps];
    }
    *mean_acc = st == ML_OK ? sum / n : NAN;
    for (int b = 0; eps && b < batch; b++) ml_episode_free(&eps[b]);
    ml_free(eps);
    ml_free(views);
    ml_free(loss);
    ml_free(acc);
    ml_free(report);
    return st;
}
