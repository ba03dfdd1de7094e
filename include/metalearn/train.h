/* metalearn/train.h: plain supervised training of a classifier (the
 * baseline every meta-learner is compared with) and its evaluation. */
#ifndef METALEARN_TRAIN_H
#define METALEARN_TRAIN_H

#include <signal.h>

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
    /* Gradient shards G (0 or 1: one). Each minibatch is cut into G
     * contiguous shards of sizes differing by at most one; each shard runs its
     * own forward and backward pass, so batch norm normalises with the
     * shard's statistics ("ghost batch norm", as PyTorch DDP without
     * SyncBatchNorm). The shards' gradients, losses, correct counts and
     * running statistics are summed in shard order, weighted by shard size,
     * before one optimizer step: the result depends on G only, never on how
     * the shards are placed over threads and MPI ranks (ml_dist_slice over G).
     * G = 1 is the plain minibatch step. Every shard needs >= 2 examples. */
    int shards;
    int threads;                /* workers for a rank's shards (0: OpenMP's max threads) */
    const char *checkpoint;     /* written atomically by rank 0 after every epoch; NULL: none */
    int resume;                 /* 1: continue from `checkpoint` (parameters, statistics, optimizer, epoch) */
    /* Checked after every step (under mpirun: on any rank); when set, the
     * checkpoint is written where the run stands (mid-epoch: resume goes on
     * from that step) and training returns ML_ERR_INTERRUPTED. NULL: never. */
    const volatile sig_atomic_t *stop;
} ml_supervised_config;

typedef struct ml_epoch_report {
    int epoch, epochs;
    double loss;       /* mean training loss of the epoch */
    double train_acc;  /* on the batches as trained (batch-norm in training mode) */
    double seconds;    /* wall time of the epoch's training steps */
    double lr;         /* learning rate at the epoch's end */
    double cpu_seconds; /* user + system CPU time of the epoch's steps, summed over the job's processes */
} ml_epoch_report;

typedef void (*ml_epoch_fn)(const ml_epoch_report *r, void *user);

/* Trains m on d with cross-entropy. Stops with ML_ERR_NUMERIC and a message
 * if the loss becomes NaN or infinite (parameters keep their last finite
 * values: the bad step is not applied). Under mpirun every rank calls it with
 * the same data and settings: each rank computes its block of the shards,
 * the shard rows are gathered to every rank in shard order and every rank
 * takes the same step, so all ranks keep identical parameters; on_epoch
 * runs on every rank (print on rank 0). A failure on any rank (a bad shard,
 * an unreadable checkpoint, a failed write on rank 0) stops every rank with
 * the same status and a message naming the rank. */
ml_status ml_supervised_train(ml_model *m, const ml_dataset *d, const ml_supervised_config *cfg,
                              ml_epoch_fn on_epoch, void *user, char *err, size_t errlen);

/* Checks cfg against a training set of n examples and this job's processes
 * before anything is written: --shards at least the processes, and at least
 * 2 examples per shard. ML_ERR_ARG with a message naming the option. */
ml_status ml_supervised_check(const ml_supervised_config *cfg, int64_t n, char *err, size_t errlen);

/* The parameters and batch-norm statistics of a checkpoint ml_supervised_train
 * wrote into m (built with the run's model spec); epoch (may be NULL) gets the
 * epochs it holds. A missing, corrupt or foreign file, or tensors of other
 * shapes: an error naming the file, m untouched. */
ml_status ml_supervised_load_weights(const char *path, ml_model *m, int *epoch, char *err, size_t errlen);

/* Predicts every example of d (batch norm with running statistics) into c. */
ml_status ml_classifier_evaluate(ml_model *m, const ml_dataset *d, int batch_size, ml_confusion *c,
                                 char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
