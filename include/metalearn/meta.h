/* metalearn/meta.h: meta-learners that share one inner loop: MAML (exact
 * second order), first-order MAML, Meta-SGD, Reptile, and the multi-task
 * baseline (one model trained on the summed loss of many tasks, fine-tuned
 * on the new task).
 *
 * One outer update (ml_meta_step):
 *   tasks of the meta-batch -> worker threads (one context each)
 *     worker: fast = theta; repeat S times: fast -= lr * dL_support/dfast
 *             (recorded with create_graph for MAML / Meta-SGD)
 *             -> query loss -> d query loss / d meta-parameters
 *   per-task gradients summed in task order (so results do not depend on
 *   the thread count) -> outer optimizer step.
 * Tasks arrive as plain buffers, so regression and classification share it. */
#ifndef METALEARN_META_H
#define METALEARN_META_H

#include "metalearn/nn.h"
#include "metalearn/optim.h"
#include "metalearn/pool.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The learners. Each is one row of the learner table (src/meta/learners.c,
 * in this order); checkpoints and configs store the name, not the number. */
typedef enum {
    ML_ALGO_MAML,
    ML_ALGO_FOMAML,
    ML_ALGO_METASGD,
    ML_ALGO_REPTILE,
    ML_ALGO_MULTITASK,
    ML_ALGO_ANIL,     /* MAML adapting only the head (Raghu et al. 2020) */
    ML_ALGO_PROTONET, /* metric-based: no inner loop, a head computed from the support set */
    ML_ALGO_MATCHING,
    ML_ALGO_R2D2,
    ML_ALGO_PRETRAIN, /* transfer baseline: a classifier over all training classes; a new head per episode */
    ML_ALGO_COSINE,   /* cosine nearest-class-mean head with a learned scale (Baseline++'s head) */
    ML_ALGO_OML,      /* OML: representation meta-learned for online learning of a head (Javed & White 2019) */
    ML_ALGO_OML_FO,   /* OML with first-order inner gradients */
    ML_ALGO_COUNT
} ml_algo;

typedef enum { ML_LOSS_MSE, ML_LOSS_CROSS_ENTROPY } ml_loss_kind;

/* What a learner changes when it meets a new task. */
typedef enum {
    ML_ADAPT_ALL,     /* gradient steps on every parameter (MAML, Reptile, ...) */
    ML_ADAPT_HEAD,    /* gradient steps on a head only (ANIL; pretrain's new episode head) */
    ML_ADAPT_NONE     /* nothing: the episode head is computed from the support set in one pass */
} ml_adapt_kind;

/* A learner's row of the table, as callers see it: what to print, what to
 * refuse, which defaults to take. */
typedef struct ml_learner_info {
    const char *name;         /* --algo NAME, the checkpoint's "algo" */
    const char *description;  /* one line for help texts */
    ml_adapt_kind adapts;
    int metric;               /* the model is an embedding (no head): ProtoNet, Matching, R2-D2 */
    int any_ways;             /* no trained N-way head: evaluates on any number of ways */
    int classifies_only;      /* labels examples (cross-entropy): refused on regression tasks */
    int min_inner_steps;      /* inner steps it needs in training (0: none or optional) */
    int default_meta_batch;   /* tasks per outer update */
    const char *default_eval_steps; /* --eval-steps when not given */
    int init_takes_extras;    /* --init FILE also loads its extra tensors when the file has them (Meta-SGD's rates) */
    int batch_training;       /* trains a classifier over all training classes on plain minibatches, not
                                 on episodes (pretrain: needs pretrain_classes) */
    const char *own_options;  /* train options only this learner reads, comma-separated (NULL: none) */
    int online_head;          /* meta-learns its representation for a head learned online (OML): the
                                 continual-learning protocol is what it is for */
    int class_head;           /* on episodes, keeps a head over all training classes (pretrain_classes)
                                 and a remembered batch of them (OML's replay) */
} ml_learner_info;

/* The row of a learner (NULL for a value outside the table). */
const ml_learner_info *ml_algo_info(ml_algo a);
const char *ml_algo_name(ml_algo a);
int ml_algo_parse(const char *name, ml_algo *out);
/* The learners' names for help texts and errors, in table order:
 * "maml, fomaml, ... or pretrain" (last_sep joins the last two, e.g.
 * " or "; NULL: ", "). Returns buf. */
const char *ml_algo_list(char *buf, size_t len, const char *last_sep);
/* Whether option (e.g. "matching-scale") is one of the learner's own_options. */
int ml_algo_reads_option(ml_algo a, const char *option);
/* ProtoNet, Matching Networks, R2-D2: the model is an embedding (no head). */
int ml_algo_is_metric(ml_algo a);
/* Whether the learner adapts to a task by gradient steps at inner_lr (so
 * inner steps, the inner rate and "after S steps" mean something): every
 * learner but the metric ones, whose episode head is computed in one pass.
 * Banners, charts, eval tables and predict ask this, not the algorithm list. */
int ml_algo_has_inner_steps(ml_algo a);
/* The learner's default tasks per outer update (--meta-batch): 25 for the
 * MAML family (the MAML paper's sinusoid setup); 1 episode for ProtoNet,
 * Matching and R2-D2, whose papers update on one episode at a time (with
 * 10 shots and 10 queries a batch of 25 made the default run take hours). */
int ml_algo_default_meta_batch(ml_algo a);

/* Which tasks a learner can learn, in one place: the metric learners and the
 * transfer baseline label examples (cross-entropy over classes, no output to
 * regress), the gradient learners adapt any loss. Returns ML_OK, or ML_ERR_ARG
 * with err saying which learners fit, e.g. "protonet classifies only (regression
 * tasks take maml, fomaml, ...)". ml_meta_init checks it too. */
int ml_algo_fits_loss(ml_algo a, ml_loss_kind loss);
ml_status ml_algo_check_loss(ml_algo a, ml_loss_kind loss, char *err, size_t errlen);

/* One task: support and query sets as plain buffers (not owned). Inputs are
 * [n, per-example size of the model]; targets are floats [n] for MSE or
 * labels [n] for cross-entropy. */
typedef struct ml_task_data {
    int n_support, n_query;
    int ways; /* classification: labels are 0 .. ways-1 */
    const float *xs, *xq;
    const float *ys, *yq;
    const int32_t *ls, *lq;
    /* A learner with a head over all training classes (OML with
     * pretrain_classes > 0): label k of the episode is training class
     * classes[k], and n_remember images xr of other draws (labels lr, training
     * classes) are what the meta-loss also scores. NULL / 0 otherwise. */
    const int32_t *classes;
    int n_remember;
    const float *xr;
    const int32_t *lr;
} ml_task_data;

typedef struct ml_meta_config {
    ml_algo algo;
    ml_loss_kind loss;
    int inner_steps;       /* adaptation steps during meta-training (Reptile: k) */
    float inner_lr;        /* alpha; Meta-SGD's per-parameter rates start here */
    ml_optim_config outer; /* outer optimizer; outer.lr is beta (Reptile: epsilon) */
    int threads;           /* worker threads across tasks */
    /* pretrain and OML (classification): classes of the training head (0 =
     * evaluation only, no head kept; OML then meta-trains a new zero head per
     * episode) and, pretrain at evaluation, fine-tune the embedding too (1)
     * or only the new head (0). */
    int pretrain_classes;
    int finetune_all;
    /* matching only: > 0 multiplies the cosines by a learned scale starting
     * here (meta[n]); 0 is the paper's attention, softmax of plain cosines. */
    float matching_scale;
    /* Second-order gradient learners on a CNN (MAML, ANIL, Meta-SGD): 1 keeps
     * only the query set's first conv block's output, its batch norm's values
     * and the gradient at it (outside the arena) through the deeper blocks'
     * backward, and computes that block's convolution again for its own
     * backward (its whole forward again where it is not a plain conv, batch
     * norm and pool; the same bits, less memory, more time). On
     * several threads, any learner: ml_meta_step runs the tasks one at a
     * time with every thread inside the task (one worker's arena instead of
     * one per thread; the same bits, slower where a task splits worse than
     * the meta-batch). Where the query's first block is a conv on few input
     * channels (c_in * 9 <= 32), its query pass is lean whatever this says
     * (conv_bn_pool_lean.c: no conv output kept; exact_first_block turns that
     * off) and only the one-task-at-a-time part applies. */
    int low_memory;
    /* 1: the second-order learners' query pass walks the first conv block
     * through its float conv output even where the lean route would apply
     * (more memory; the arithmetic of metalearn before the lean route, so
     * its checkpoints reproduce). 0: lean where it applies. */
    int exact_first_block;
} ml_meta_config;

typedef struct ml_meta_worker ml_meta_worker;

typedef struct ml_meta {
    ml_meta_config cfg;
    ml_model *model;
    int64_t n;           /* model parameters */
    int64_t n_meta;      /* meta-parameters: n, or 2n for Meta-SGD */
    float *meta;         /* theta = meta[0, n), Meta-SGD's alpha = meta[n, 2n),
                            R2-D2's log lambda, scale, bias = meta[n, n + 3),
                            pretrain's head weight [C, D] then bias [C] after n */
    float *grad;         /* reduced meta-gradient of the last step */
    float *task_grads;   /* [max_batch, n_meta], kept only when the tasks are split over MPI ranks;
                            otherwise NULL and the rows are summed as the tasks finish (task_sum) */
    double *task_loss;   /* [max_batch] query loss after adaptation */
    int *task_status;    /* [max_batch] */
    int max_batch;
    ml_optim opt;
    ml_pool *pool;
    ml_meta_worker *workers;
    int64_t steps_done;
    /* 1: ml_meta_step runs every task in this process, whatever the job's
     * size (a federated client on its rank); 0: the tasks are split over the
     * ranks of an mpirun job (metalearn/dist.h). */
    int local_steps;
    /* Progress of evaluations (ml_meta_progress_begin) and of predict's
     * adaptation steps; progress.fn NULL reports nothing. */
    ml_progress progress;
    int64_t progress_done, progress_total;
    /* 1: training tasks take the learner's fused route (MAML / FOMAML on a
     * ReLU MLP with the MSE loss: no graph), chosen by ml_meta_init where it
     * applies; 0: the recorded graph. Same math up to float rounding; set 0
     * after init to force the graph (the tests' twin). */
    int fused_route;
    void *task_sum; /* internal: the in-order sum of the task rows (src/meta/task_sum.c) */
    /* Optional, for the next ml_meta_step only (it clears them): called as
     * prepare_task(item, worker, prepare_user) by the worker that runs task
     * `item` (worker in [0, threads): per-worker buffers), before the task is
     * read, so per-task preparation (the targets of synthetic tasks:
     * ml_task_fill_targets; the images of drawn episodes: ml_episode_fill)
     * runs on the workers without a second hand-over to the threads. */
    void (*prepare_task)(int item, int worker, void *user);
    void *prepare_user;
} ml_meta;

/* model->data holds the initial parameters (copied into theta). */
ml_status ml_meta_init(ml_meta *m, ml_model *model, const ml_meta_config *cfg, int max_batch, char *err,
                       size_t errlen);
void ml_meta_free(ml_meta *m);

/* Starts counting evaluated tasks towards total (e.g. episodes x shot
 * counts of a whole evaluation): each ml_meta_evaluate_at call then reports
 * "evaluation" progress after every batch it runs. */
void ml_meta_progress_begin(ml_meta *m, int64_t total);

/* One outer update from n tasks (n <= max_batch). *loss: mean query loss
 * after adaptation, before the update. A non-finite loss or gradient stops
 * with ML_ERR_NUMERIC and leaves the meta-parameters untouched. */
ml_status ml_meta_step(ml_meta *m, const ml_task_data *tasks, int n, double *loss, char *err, size_t errlen);

/* Adapts from the current meta-parameters to each task's support set with
 * plain gradient steps at inner_lr (Meta-SGD: its learned rates) and records
 * the query loss, and accuracy for cross-entropy (acc_at may be NULL), after
 * 0, 1, ..., max_steps steps: loss_at[t * (max_steps + 1) + s]. Tasks are
 * spread over the worker threads. */
ml_status ml_meta_evaluate(ml_meta *m, const ml_task_data *tasks, int n, int max_steps, double *loss_at,
                           double *acc_at, char *err, size_t errlen);
/* The same, scoring the query only after the step counts s with report[s] != 0
 * (and after max_steps); the other entries of loss_at / acc_at are NaN. The
 * scored entries are bit-identical to ml_meta_evaluate's. report may be NULL. */
ml_status ml_meta_evaluate_at(ml_meta *m, const ml_task_data *tasks, int n, int max_steps,
                              const unsigned char *report, double *loss_at, double *acc_at, char *err,
                              size_t errlen);

/* Learned scalars of the episode heads, kept after theta in meta[n, n + count):
 * R2-D2's log lambda, scale and bias (3), Matching Networks' scale (1, when
 * matching_scale > 0), none for the others. */
int ml_meta_extra_count(const ml_meta_config *cfg);

/* Every learned tensor a learner keeps after theta, in meta[n, n_meta), with
 * its checkpoint name: Meta-SGD's alpha.NAME for each parameter NAME, R2-D2's
 * r2d2.log_lambda / r2d2.scale / r2d2.bias, Matching's matching.scale,
 * pretrain's pretrain.head.weight [C, D] and pretrain.head.bias [C]. A
 * checkpoint writes the parameters, then these, in this order. */
#define ML_META_MAX_EXTRAS (ML_MAX_PARAMS + 4)
typedef struct ml_meta_tensor {
    char name[ML_PARAM_NAME_LEN + 16];
    int ndim;
    int64_t shape[ML_MAX_DIMS];
    int64_t offset, numel; /* offset from meta + n */
    float init;            /* every element's starting value */
} ml_meta_tensor;
/* Fills out[ML_META_MAX_EXTRAS] for a learner set up with cfg on model;
 * returns how many. */
int ml_meta_extras(const ml_meta_config *cfg, const ml_model *model, ml_meta_tensor *out);

/* Episode heads of the metric-based learners (metric.c): logits [nq, ways]
 * from support embeddings fs [ns, D] with labels ys and query embeddings fq. */
ml_tensor *ml_protonet_logits(ml_ctx *ctx, ml_tensor *fs, const int32_t *ys, int ways, ml_tensor *fq);
/* scale ([1], may be NULL): softmax(scale * cos) attention instead of softmax(cos). */
ml_tensor *ml_matching_logits(ml_ctx *ctx, ml_tensor *fs, const int32_t *ys, int ways, ml_tensor *fq,
                              ml_tensor *scale);
/* cosine.c: scale ([1]) times the cosine of each query to each class mean. */
ml_tensor *ml_cosine_logits(ml_ctx *ctx, ml_tensor *fs, const int32_t *ys, int ways, ml_tensor *fq, ml_tensor *scale);
ml_tensor *ml_r2d2_logits(ml_ctx *ctx, ml_tensor *fs, const int32_t *ys, int ways, ml_tensor *fq,
                          ml_tensor *log_lambda, ml_tensor *scale, ml_tensor *bias);

/* Adapts to one classification task's support set (steps as in evaluation)
 * and writes the predicted label of every query example to pred[n_query].
 * The query labels (lq) may be any valid labels; they only feed the loss. */
ml_status ml_meta_predict(ml_meta *m, const ml_task_data *task, int steps, int32_t *pred, char *err,
                          size_t errlen);

/* ml_meta_predict for any learner and loss (reporting "adaptation" progress
 * per step), keeping the model's outputs on
 * the query after the last step: out (may be NULL) gets [n_query, ways]
 * class scores (logits: their softmax is the class probabilities) for
 * classification, or [n_query] predicted targets for regression (give any
 * yq, e.g. zeros: it only feeds the loss). pred (classification only, may
 * be NULL) gets the labels. */
ml_status ml_meta_predict_outputs(ml_meta *m, const ml_task_data *task, int steps, int32_t *pred, float *out,
                                  char *err, size_t errlen);

/* Copies theta into the model's flat buffer (for saving or predicting). */
void ml_meta_export(const ml_meta *m);

#ifdef __cplusplus
}
#endif
#endif
