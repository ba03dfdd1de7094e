/* meta_internal.h: what maml.c shares with pretrain.c (the transfer
 * baseline). Not installed. */
#ifndef ML_META_INTERNAL_H
#define ML_META_INTERNAL_H

#include "metalearn/meta.h"

struct ml_meta_worker {
    ml_ctx *ctx;
    float *phi;  /* Reptile: the task's adapted parameters; evaluation: the adapted copy */
    float *head; /* pretrain evaluation: the episode's new N-way head */
    float *feat; /* pretrain evaluation: the episode's frozen features */
    int64_t head_cap, feat_cap;
    char err[256];
};

/* Records a failed task (message from the worker's context); returns -1. */
int ml__meta_fail_task(ml_meta *m, ml_meta_worker *w, int item, const char *what);
/* Fraction of rows whose largest logit is the label. */
double ml__meta_accuracy(const ml_tensor *logits, const int32_t *labels);
void ml__meta_argmax_rows(const ml_tensor *logits, int32_t *out);

/* Transfer baseline (pretrain.c). Feature size of the embedding: */
int64_t ml__pretrain_feature_dim(const ml_model *model);
/* Training loss of one supervised minibatch (t->xs, labels t->ls in
 * 0 .. pretrain_classes-1) through the embedding theta and the big head
 * (leaves written to head[0] = weight [C, D], head[1] = bias [C]). */
ml_tensor *ml__pretrain_loss(ml_ctx *ctx, const ml_meta *m, ml_tensor **theta, const ml_task_data *t,
                             ml_tensor **head);
/* One evaluation episode: a zero N-way head on the frozen features (or on
 * the whole network with finetune_all) trained on the support set with
 * plain SGD at inner_lr; query loss / accuracy after 0..max_steps steps. */
void ml__pretrain_eval_task(ml_meta *m, ml_meta_worker *w, int item, const ml_task_data *t, int max_steps,
                            double *loss_row, double *acc_row, int32_t *pred, float *out);
/* Copies a query pass's outputs (logits or predicted targets) to dst. */
void ml__meta_copy_outputs(const ml_tensor *out, float *dst);

#endif
