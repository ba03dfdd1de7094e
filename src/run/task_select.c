/* task_select.c: the training-class samplers of few-shot runs (see
 * task_select.h). The draw itself is ml_episode_sample_weighted; this file
 * only decides the weights. */
#include "run/task_select.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metalearn/tensor.h"

static const char *const sampler_names[] = {"uniform", "similar", "curriculum"};

int task_sampler_parse(const char *name, task_sampler_kind *out) {
    for (int k = 0; k < 3; k++)
        if (name && !strcmp(name, sampler_names[k])) {
            *out = (task_sampler_kind)k;
            return 0;
        }
    return -1;
}

const char *task_sampler_name(task_sampler_kind k) { return k >= 0 && k < 3 ? sampler_names[k] : "?"; }

int task_select_init(task_selector *t, task_sampler_kind kind, int n) {
    memset(t, 0, sizeof *t);
    t->kind = kind;
    t->n = n;
    if (kind == TASK_SAMPLER_UNIFORM) return 0;
    t->weights = malloc((size_t)n * sizeof(float));
    t->score = malloc((size_t)n * sizeof(float));
    t->ema = calloc((size_t)n, sizeof(float));
    t->seen = calloc((size_t)n, sizeof(float));
    if (!t->weights || !t->score || !t->ema || !t->seen) {
        task_select_free(t);
        return -1;
    }
    for (int i = 0; i < n; i++) t->weights[i] = 1.0f; /* equal weights: the uniform draw */
    return 0;
}

void task_select_free(task_selector *t) {
    if (!t) return;
    free(t->weights);
    free(t->score);
    free(t->ema);
    free(t->seen);
    free(t->target_x);
    free(t->target_y);
    memset(t, 0, sizeof *t);
}

int task_select_set_target(task_selector *t, const float *x, const int32_t *y, int n, int classes, int size) {
    size_t plane = (size_t)size * size;
    t->target_x = malloc((size_t)n * plane * sizeof(float));
    t->target_y = malloc((size_t)n * sizeof(int32_t));
    if (!t->target_x || !t->target_y) return -1;
    memcpy(t->target_x, x, (size_t)n * plane * sizeof(float));
    memcpy(t->target_y, y, (size_t)n * sizeof(int32_t));
    t->n_target = n;
    t->target_classes = classes;
    t->size = size;
    return 0;
}

/* ---- weights ------------------------------------------------------------------------- */

void task_select_similar_weights(const float *score, int n, int k, float prob, float *weights) {
    if (k > n) k = n;
    double base = (1.0 - prob) / n, top = prob / (k > 0 ? k : 1) + base;
    for (int i = 0; i < n; i++) {
        /* Rank of i: classes strictly nearer, plus equal ones of lower index. */
        int rank = 0;
        for (int j = 0; j < n && rank < k; j++) rank += score[j] < score[i] || (score[j] == score[i] && j < i);
        weights[i] = (float)(rank < k ? top : base);
    }
}

void task_select_curriculum_weights(const float *ema, const float *seen, int n, float strength, double p,
                                    float *weights) {
    double sum = 0, sq = 0;
    int m = 0;
    for (int i = 0; i < n; i++)
        if (seen[i] > 0) {
            sum += ema[i];
            m++;
        }
    for (int i = 0; i < n; i++) weights[i] = 1.0f;
    if (m == 0) return;
    double mean = sum / m;
    for (int i = 0; i < n; i++) {
        double d = (seen[i] > 0 ? ema[i] : mean) - mean;
        sq += d * d;
    }
    double sd = sqrt(sq / n), beta = strength * (2.0 * p - 1.0);
    if (!(sd > 0)) return;
    for (int i = 0; i < n; i++) {
        double z = ((seen[i] > 0 ? ema[i] : mean) - mean) / sd;
        z = z < -3 ? -3 : z > 3 ? 3 : z;
        weights[i] = (float)exp(beta * z);
    }
}

void task_select_record(task_selector *t, const ml_episode *episodes, const double *task_loss, int n_episodes) {
    if (t->kind != TASK_SAMPLER_CURRICULUM) return;
    for (int b = 0; b < n_episodes; b++)
        for (int k = 0; k < episodes[b].ways; k++) {
            int i = episodes[b].class_index[k];
            float loss = (float)task_loss[b];
            t->ema[i] = t->seen[i] > 0 ? (1.0f - TASK_SELECT_EMA) * t->ema[i] + TASK_SELECT_EMA * loss : loss;
            t->seen[i] = 1.0f;
        }
}

/* ---- embeddings ------------------------------------------------------------------------ */

int task_select_embed_means(ml_meta *meta, const float *x, const int32_t *y, int n, int classes, float **out,
                            char *err, size_t errlen) {
    ml_model *model = meta->model;
    int64_t per = (int64_t)model->spec.in_c * model->spec.in_h * model->spec.in_w;
    ml_ctx *ctx = ml_ctx_create(0);
    float *means = NULL;
    int *count = calloc((size_t)classes, sizeof(int)), dim = -1;
    if (!ctx || !count) {
        snprintf(err, errlen, "task sampler: out of memory");
        goto out;
    }
    ml_ctx_set_recording(ctx, 0);
    for (int start = 0; start < n; start += TASK_SELECT_BATCH) {
        int b = n - start < TASK_SELECT_BATCH ? n - start : TASK_SELECT_BATCH;
        ml_tensor *params[ML_MAX_PARAMS];
        ml_model_wrap(ctx, model, meta->meta, params);
        ml_tensor *xt = ml_tensor_wrap(ctx, (float *)x + (int64_t)start * per, 2, ML_SHAPE(b, per));
        /* Batch statistics, as the meta-learners use everywhere. */
        ml_tensor *f = ml_model_features(ctx, model, params, xt, 1, 0);
        if (!f || ml_ctx_status(ctx) != ML_OK) {
            snprintf(err, errlen, "task sampler: embedding: %s", ml_ctx_error(ctx));
            dim = -1;
            goto out;
        }
        int d = (int)(f->numel / b);
        if (!means) {
            dim = d;
            means = calloc((size_t)classes * d, sizeof(float));
            if (!means) {
                snprintf(err, errlen, "task sampler: out of memory");
                dim = -1;
                goto out;
            }
        }
        for (int i = 0; i < b; i++) {
            int c = y[start + i];
            float *row = means + (size_t)c * dim;
            for (int j = 0; j < dim; j++) row[j] += f->data[(size_t)i * dim + j];
            count[c]++;
        }
        ml_ctx_reset(ctx);
    }
    for (int c = 0; c < classes && means; c++)
        for (int j = 0; j < dim; j++) means[(size_t)c * dim + j] /= count[c] ? count[c] : 1;
out:
    if (dim < 0) {
        free(means);
        means = NULL;
    }
    *out = means;
    free(count);
    ml_ctx_destroy(ctx);
    return dim;
}

/* Distances of every training class mean to the nearest target class mean,
 * under the current meta-parameters. */
static int similar_refresh(task_selector *t, ml_meta *meta, const ml_image_set *images, const ml_class_list *train,
                           char *err, size_t errlen) {
    const int S = images->size, M = TASK_SELECT_IMAGES_PER_CLASS;
    const size_t plane = (size_t)S * S;
    float *x = malloc((size_t)t->n * M * plane * sizeof(float)), *train_mu = NULL, *target_mu = NULL;
    int32_t *y = malloc((size_t)t->n * M * sizeof(int32_t));
    int m = 0, rc = -1;
    if (!x || !y) {
        snprintf(err, errlen, "task sampler: out of memory for %d x %d images", t->n, M);
        goto out;
    }
    for (int i = 0; i < t->n; i++) {
        const ml_class_ref r = train->items[i];
        int64_t first = images->class_start[r.cls], have = images->class_start[r.cls + 1] - first;
        for (int j = 0; j < M && j < have; j++, m++) {
            ml_image_set_copy(images, first + j, r.rot, NULL, NULL, x + (size_t)m * plane);
            y[m] = i;
        }
    }
    int d1 = task_select_embed_means(meta, x, y, m, t->n, &train_mu, err, errlen);
    int d2 = d1 < 0 ? -1
                    : task_select_embed_means(meta, t->target_x, t->target_y, t->n_target, t->target_classes,
                                              &target_mu, err, errlen);
    if (d1 < 0 || d2 < 0) goto out;
    for (int i = 0; i < t->n; i++) {
        double best = INFINITY;
        for (int c = 0; c < t->target_classes; c++) {
            double d = 0;
            for (int j = 0; j < d1; j++) {
                double v = (double)train_mu[(size_t)i * d1 + j] - target_mu[(size_t)c * d1 + j];
                d += v * v;
            }
            best = d < best ? d : best;
        }
        t->score[i] = (float)best;
    }
    task_select_similar_weights(t->score, t->n, t->k, t->prob, t->weights);
    rc = 0;
out:
    free(x);
    free(y);
    free(train_mu);
    free(target_mu);
    return rc;
}

int task_select_prepare(task_selector *t, int iter, ml_meta *meta, const ml_image_set *images,
                        const ml_class_list *train, char *err, size_t errlen) {
    if (t->kind == TASK_SAMPLER_SIMILAR && iter % t->every == 0)
        return similar_refresh(t, meta, images, train, err, errlen);
    if (t->kind == TASK_SAMPLER_CURRICULUM) {
        double p = t->total_iters > 1 ? (double)iter / (t->total_iters - 1) : 1.0;
        task_select_curriculum_weights(t->ema, t->seen, t->n, t->strength, p > 1 ? 1 : p, t->weights);
    }
    return 0;
}

/* ---- checkpoints ------------------------------------------------------------------------ */

int task_select_save(const task_selector *t, ml_st_tensor *ts) {
    int n = 0;
    if (t->kind == TASK_SAMPLER_SIMILAR)
        ts[n++] = (ml_st_tensor){"task_sampler.weights", 1, {t->n}, t->weights};
    if (t->kind == TASK_SAMPLER_CURRICULUM) {
        ts[n++] = (ml_st_tensor){"task_sampler.ema", 1, {t->n}, t->ema};
        ts[n++] = (ml_st_tensor){"task_sampler.seen", 1, {t->n}, t->seen};
    }
    return n;
}

int task_select_load(task_selector *t, const ml_safetensors *st, const char *path, char *err, size_t errlen) {
    ml_st_tensor ts[3];
    int n = task_select_save(t, ts);
    for (int i = 0; i < n; i++) {
        const ml_st_entry *e = ml_safetensors_find(st, ts[i].name);
        if (!e || e->numel != t->n) {
            snprintf(err, errlen, "%s: sampler state '%s' missing or not of %d values (was the run made with "
                                  "--task-sampler %s?)", path, ts[i].name, t->n, task_sampler_name(t->kind));
            return -1;
        }
    }
    for (int i = 0; i < n; i++)
        memcpy((float *)ts[i].data, ml_safetensors_find(st, ts[i].name)->data, (size_t)t->n * sizeof(float));
    return 0;
}
