/* meta_internal.h: what the driver (meta.c) shares with the learners' files:
 * the per-thread worker and the helpers of the hooks. Not installed. */
#ifndef ML_META_INTERNAL_H
#define ML_META_INTERNAL_H

#include "learner.h"

struct ml_meta_worker {
    ml_ctx *ctx;
    float *phi;  /* Reptile: the task's adapted parameters; evaluation: the adapted copy */
    float *head; /* pretrain evaluation: the episode's new N-way head */
    float *feat; /* pretrain evaluation: the episode's frozen features */
    float *fused_theta; /* maml_mlp.c: theta as last packed, then its packed set */
    float *kept; /* maml.c: the query's first block output between its two passes */
    int64_t head_cap, feat_cap, fused_cap, kept_cap;
    int fused_checked; /* maml_mlp.c: fused_theta compared with theta in this step (meta.c resets it) */
    int from_back;     /* this step deals this helper's tasks from the back (meta.c): they come out of order */
    /* Tasks in fixed blocks (meta.c, ml_pool_run_split), while keeps_own:
     * the caller's tasks write their rows at own_rows + (item - own_base) n,
     * own_first the lowest such item; added to the sum after the batch. */
    float *own_rows;
    int64_t own_cap;
    int own_base, own_first, keeps_own;
    char err[256];
};

/* Where task `item` writes its meta-gradient row (n_meta floats; NULL: out
 * of memory, the task already marked failed with the worker's message), and
 * the call that hands the written row over (meta.c). */
/* The task's loss and its meta-gradient (theta's, then the extras') into the task's row. */
void ml__meta_task_commit(ml_meta *m, ml_meta_worker *w, int item, float loss, ml_tensor **meta_grads,
                          int n_extra);
float *ml__meta_task_row(ml_meta *m, ml_meta_worker *w, int item);
void ml__meta_task_row_done(ml_meta *m, int item, float *row);
/* Task `item`'s meta-gradient added to the step's sum by add(acc, user)
 * when it is next in task order (task_sum.c); 0: write a row instead. */
int ml__meta_task_add_in_order(ml_meta *m, int item, void (*add)(float *acc, const void *user), const void *user);
/* Records a failed task (message from the worker's context); returns -1. */
int ml__meta_fail_task(ml_meta *m, ml_meta_worker *w, int item, const char *what);
/* Fraction of rows whose largest logit is the label. */
double ml__meta_accuracy(const ml_tensor *logits, const int32_t *labels);
void ml__meta_argmax_rows(const ml_tensor *logits, int32_t *out);

/* Feature size of a cnn4 embedding without head (pretrain.c). */
int64_t ml__pretrain_feature_dim(const ml_model *model);
/* Copies a query pass's outputs (logits or predicted targets) to dst. */
void ml__meta_copy_outputs(const ml_tensor *out, float *dst);

/* Task rows x meta-parameters from which ml_meta_step splits the reduction
 * and the outer update across its threads (below: on the caller alone). */
extern int64_t ml__meta_split_update_floats;
extern int64_t ml__meta_ends_floats; /* meta.c: the fused route deals tasks from both ends up to this many row floats */
extern int ml__meta_split_tasks;     /* meta.c: on 2 threads in fixed blocks instead (1, default) or from both ends (0) */

#endif
