/* learner.h: the row of the learner table (src/meta/learners.c) and the
 * hooks a row points to. The driver (meta.c: init, outer step, evaluation,
 * predict) asks the row and never tests which learner it runs; a new learner
 * is one file with its hooks plus one row. Not installed. */
#ifndef ML_META_LEARNER_H
#define ML_META_LEARNER_H

#include "metalearn/meta.h"

struct ml_meta_worker;

/* One evaluation call: tasks[0..n) scored after 0..max_steps adaptation steps. */
typedef struct ml__eval_job {
    ml_meta *m;
    const ml_task_data *tasks;
    int max_steps;
    const unsigned char *report; /* report[s]: score the query after s steps (NULL: every s) */
    double *loss_at, *acc_at;    /* [n, max_steps + 1]; acc_at may be NULL */
    int32_t *pred; /* ml_meta_predict: the query predictions of task 0 after the last step */
    float *out;    /* ml_meta_predict_outputs: the query outputs (scores or targets) after the last step */
} ml__eval_job;

/* Logits [nq, ways] of a metric learner's episode head from support
 * embeddings fs with labels ys and query embeddings fq; extra[k] are the
 * learner's learned scalars as leaves (ml_meta_extras order). */
typedef ml_tensor *(*ml__episode_head_fn)(ml_ctx *ctx, ml_tensor *fs, const int32_t *ys, int ways, ml_tensor *fq,
                                         ml_tensor **extra);

typedef struct ml__learner {
    ml_learner_info info;
    /* Learned tensors kept after theta (NULL: none); see ml_meta_extras. */
    int (*extras)(const ml_meta_config *cfg, const ml_model *model, ml_meta_tensor *out);
    /* Setup checks beyond the loss and the inner steps (NULL: none). */
    ml_status (*check)(const ml_meta_config *cfg, const ml_model *model, char *err, size_t errlen);
    /* One training task: m->task_loss[item] and the task's meta-gradient in
     * the row ml__meta_task_row gives (then ml__meta_task_row_done), or a
     * failed task (ml__meta_fail_task). */
    void (*step_task)(ml_meta *m, struct ml_meta_worker *w, int item, const ml_task_data *t);
    /* One evaluation task (job->tasks[item]) into row item of loss_at / acc_at. */
    void (*eval_task)(const ml__eval_job *job, struct ml_meta_worker *w, int item);
    /* Metric learners (ml__metric_step_task / ml__metric_eval_task): the head. */
    ml__episode_head_fn episode_head;
    /* Gradient learners (ml__gradient_step_task): inner gradients recorded
     * with create_graph (exact second order) or taken as constants. */
    int second_order;
} ml__learner;

/* The row of a (valid) learner. */
const ml__learner *ml__learner_of(ml_algo a);

/* ---- hooks shared by several rows --------------------------------------------------- */

/* maml.c: MAML, FOMAML, Meta-SGD (its rates are its extras) and ANIL (adapts
 * the head: info.adapts); Reptile; the multi-task baseline; and the
 * evaluation of every learner that adapts by gradient steps. */
void ml__gradient_step_task(ml_meta *m, struct ml_meta_worker *w, int item, const ml_task_data *t);
void ml__reptile_step_task(ml_meta *m, struct ml_meta_worker *w, int item, const ml_task_data *t);
void ml__multitask_step_task(ml_meta *m, struct ml_meta_worker *w, int item, const ml_task_data *t);
void ml__gradient_eval_task(const ml__eval_job *job, struct ml_meta_worker *w, int item);
/* maml_mlp.c: the fused route of ml__gradient_step_task (MAML / FOMAML, ReLU
 * MLP with one output, MSE): whether m fits it, and one task by it. */
int ml__maml_mlp_fits(const ml_meta *m);
void ml__maml_mlp_step_task(ml_meta *m, struct ml_meta_worker *w, int item, const ml_task_data *t);
/* Meta-SGD: one rate per parameter, alpha.NAME, starting at inner_lr. */
int ml__metasgd_extras(const ml_meta_config *cfg, const ml_model *model, ml_meta_tensor *out);

/* metric.c: training step and evaluation of a learner whose episode head is
 * computed from the support set (row.episode_head), and the heads. */
void ml__metric_step_task(ml_meta *m, struct ml_meta_worker *w, int item, const ml_task_data *t);
void ml__metric_eval_task(const ml__eval_job *job, struct ml_meta_worker *w, int item);
ml_tensor *ml__protonet_head(ml_ctx *ctx, ml_tensor *fs, const int32_t *ys, int ways, ml_tensor *fq, ml_tensor **extra);
ml_tensor *ml__matching_head(ml_ctx *ctx, ml_tensor *fs, const int32_t *ys, int ways, ml_tensor *fq, ml_tensor **extra);
ml_tensor *ml__r2d2_head(ml_ctx *ctx, ml_tensor *fs, const int32_t *ys, int ways, ml_tensor *fq, ml_tensor **extra);
int ml__matching_extras(const ml_meta_config *cfg, const ml_model *model, ml_meta_tensor *out);
int ml__r2d2_extras(const ml_meta_config *cfg, const ml_model *model, ml_meta_tensor *out);
/* For the heads: one-hot labels [n, ways] or (means) the class-mean matrix
 * [ways, n] (rows divided by the class count), as unrecorded constants; a
 * label outside [0, ways) or a class without support example fails ctx. */
ml_tensor *ml__episode_label_matrix(ml_ctx *ctx, const int32_t *y, int64_t n, int ways, int means);
/* Rows scaled to unit length: x / sqrt(|x|^2 + 1e-8). */
ml_tensor *ml__unit_rows(ml_ctx *ctx, ml_tensor *x);

/* cosine.c: the cosine nearest-class-mean head and its learned scale. */
ml_tensor *ml__cosine_head(ml_ctx *ctx, ml_tensor *fs, const int32_t *ys, int ways, ml_tensor *fq, ml_tensor **extra);
int ml__cosine_extras(const ml_meta_config *cfg, const ml_model *model, ml_meta_tensor *out);

/* pretrain.c: the transfer baseline. */
void ml__pretrain_step_task(ml_meta *m, struct ml_meta_worker *w, int item, const ml_task_data *t);
void ml__pretrain_eval(const ml__eval_job *job, struct ml_meta_worker *w, int item);
int ml__pretrain_extras(const ml_meta_config *cfg, const ml_model *model, ml_meta_tensor *out);
ml_status ml__pretrain_check(const ml_meta_config *cfg, const ml_model *model, char *err, size_t errlen);

/* oml.c: OML's online trajectory on the head and its evaluation. */
void ml__oml_step_task(ml_meta *m, struct ml_meta_worker *w, int item, const ml_task_data *t);
void ml__oml_eval_task(const ml__eval_job *job, struct ml_meta_worker *w, int item);
/* The head over all training classes (classification, pretrain_classes > 0). */
int ml__oml_extras(const ml_meta_config *cfg, const ml_model *model, ml_meta_tensor *out);

/* ---- helpers for the hooks (meta.c) ------------------------------------------------------- */

/* A worker's scratch buffer of at least need floats (contents not kept when
 * it grows); -1 when out of memory. */
int ml__meta_grow_floats(float **buf, int64_t *cap, int64_t need);
/* One extra tensor description: a scalar or a tensor of the given shape. */
void ml__meta_extra_set(ml_meta_tensor *t, const char *name, int ndim, const int64_t *shape, int64_t offset,
                        float init);
/* The extras of m as leaves over meta[n, n_meta) (extra[ML_META_MAX_EXTRAS]); returns how many. */
int ml__meta_wrap_extras(ml_ctx *ctx, const ml_meta *m, ml_tensor **extra);
/* The task's meta-gradient: d loss / d (theta, extras) into the task's row
 * (ml__meta_task_row), and its loss into m->task_loss[item]. */
void ml__meta_task_gradient(ml_meta *m, struct ml_meta_worker *w, int item, ml_tensor *loss, ml_tensor **theta,
                            ml_tensor **extra, int n_extra);
/* Loss of the model (params) on n examples (x, float targets yf or labels yl),
 * the model's outputs to *out when out is not NULL. */
ml_tensor *ml__meta_model_loss(ml_ctx *ctx, const ml_meta *m, ml_tensor *params[], const float *x, const float *yf,
                               const int32_t *yl, int n, ml_tensor **out);
/* The loss of outputs `out` (ml__meta_model_loss's second half). */
ml_tensor *ml__meta_loss_of(ml_ctx *ctx, const ml_meta *m, ml_tensor *out, const float *yf, const int32_t *yl, int n);
/* Support and query embedded in one batch (batch norm sees the whole
 * episode): [n_support + n_query, D]. */
ml_tensor *ml__meta_embed_episode(ml_ctx *ctx, const ml_meta *m, ml_tensor **params, const ml_task_data *t);

#endif
