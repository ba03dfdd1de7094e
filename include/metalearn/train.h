/* metalearn/train.h: plain supervised training of a classifier (the
 * baseline every meta-learner is compared with) and its evaluation. */
#ifndef METALEARN_TRAIN_H
#define METALEARN_TRAIN_H

#include "metalearn/data.h"
#include "metalearn/eval.h"
#include "metalearn/nn.h"
#include "metalearn/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ml_supervised_config {
    int epochs;
    int batch_size;
    ml_optim_config optim;
    ml_schedule_kind schedule; /* over all steps of the run */
    float clip_norm;           /* 0 = no clipping */
    uint64_t seed;             /* shuffling */
} ml_supervised_config;

typedef struct ml_epoch_report {
    int epoch, epochs;
    double loss;       /* mean training loss of the epoch */
    double train_acc;  /* on the batches as trained (batch-norm in training mode) */
    double seconds;    /* wall time of the epoch's training steps */
    double lr;         /* learning rate at the epoch's end */
} ml_epoch_report;

typedef void (*ml_epoch_fn)(const ml_epoch_report *r, void *user);

/* Trains m on d with cross-entropy. Stops with ML_ERR_NUMERIC and a message
 * if the loss becomes NaN or infinite (parameters keep their last finite
 * values: the bad step is not applied). */
ml_status ml_supervised_train(ml_model *m, const ml_dataset *d, const ml_supervised_config *cfg,
                              ml_epoch_fn on_epoch, void *user, char *err, size_t errlen);

/* Predicts every example of d (batch norm with running statistics) into c. */
ml_status ml_classifier_evaluate(ml_model *m, const ml_dataset *d, int batch_size, ml_confusion *c,
                                 char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
