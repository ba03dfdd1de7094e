/* task_select.h: which training classes a few-shot run's episodes are drawn
 * from (--task-sampler). `uniform` is the plain draw; `similar` favours the
 * training classes whose mean embedding under the current model lies nearest
 * a target class's (re-ranked every --select-every iterations); `curriculum`
 * weights classes by their running query loss, from easy to hard over the
 * run. The state that the draws depend on (weights, loss averages) is saved
 * in the checkpoint, so --resume continues bit for bit. */
#ifndef ML_RUN_TASK_SELECT_H
#define ML_RUN_TASK_SELECT_H

#include <stddef.h>

#include "metalearn/images.h"
#include "metalearn/io.h"
#include "metalearn/meta.h"

typedef enum { TASK_SAMPLER_UNIFORM, TASK_SAMPLER_SIMILAR, TASK_SAMPLER_CURRICULUM } task_sampler_kind;

/* Images embedded per training class when ranking (the first ones, at the
 * class's rotation): enough for a stable mean, cheap to refresh. */
#define TASK_SELECT_IMAGES_PER_CLASS 4
/* Images per forward pass when embedding (batch norm sees this batch). */
#define TASK_SELECT_BATCH 64
/* Weight of a new episode's loss in a class's running average. */
#define TASK_SELECT_EMA 0.3f

typedef struct task_selector {
    task_sampler_kind kind;
    int n;          /* training classes */
    float *weights; /* [n] current draw weights; NULL = uniform */
    /* similar */
    int k, every;
    float prob;
    int n_target, target_classes, size; /* target images, classes, side */
    float *target_x;                    /* [n_target, S, S] */
    int32_t *target_y;                  /* [n_target] in 0 .. target_classes - 1 */
    float *score;                       /* [n] distance to the nearest target class mean */
    /* curriculum */
    float strength;
    int total_iters;
    float *ema;  /* [n] running mean query loss of the episodes with the class */
    float *seen; /* [n] 1 once the class met a loss (a float: saved as a tensor) */
} task_selector;

int task_sampler_parse(const char *name, task_sampler_kind *out);
const char *task_sampler_name(task_sampler_kind k);

/* Sampler of n training classes. For `similar` the target images are given
 * by the caller (task_select_set_target). Returns 0 or -1 (out of memory). */
int task_select_init(task_selector *t, task_sampler_kind kind, int n);
void task_select_free(task_selector *t); /* zeroes *t */
/* Copies n images [n, S, S] with labels in 0 .. classes-1 as the target. */
int task_select_set_target(task_selector *t, const float *x, const int32_t *y, int n, int classes, int size);

/* Draw weights from distances (ascending = more similar): the k nearest get
 * prob / k + (1 - prob) / n, the others (1 - prob) / n, so a draw comes from
 * the top k with probability prob (before excluding classes already drawn).
 * Ties go to the lower index. */
void task_select_similar_weights(const float *score, int n, int k, float prob, float *weights);
/* Curriculum weights at progress p in [0, 1]: difficulty = ema (classes not
 * seen yet get the mean of the seen ones), z-scored and clipped to [-3, 3];
 * weight = exp(beta z) with beta = strength (2p - 1): easy classes first,
 * hard ones last. Leaves every weight 1 while no class has been seen. */
void task_select_curriculum_weights(const float *ema, const float *seen, int n, float strength, double p,
                                    float *weights);
/* After an outer step: each episode's query loss goes into the running
 * average of its classes. */
void task_select_record(task_selector *t, const ml_episode *episodes, const double *task_loss, int n_episodes);

/* Before sampling the batch of iteration `iter` (0-based): refreshes the
 * weights (similar: every `every` iterations, from embeddings of the classes
 * under the current meta-parameters; curriculum: every iteration).
 * Returns 0 or -1 with err set. */
int task_select_prepare(task_selector *t, int iter, ml_meta *meta, const ml_image_set *images,
                        const ml_class_list *train, char *err, size_t errlen);

/* Checkpoint tensors: appends up to 3 entries (names "task_sampler.*") to ts;
 * returns how many. Loading: every tensor the sampler saves must be there
 * with n values; returns 0 or -1 with err set. */
int task_select_save(const task_selector *t, ml_st_tensor *ts);
int task_select_load(task_selector *t, const ml_safetensors *st, const char *path, char *err, size_t errlen);

/* Mean embedding per class: x [n, S*S] images in order, label y, run through
 * the body of the model (features before the head) with the current
 * meta-parameters, in batches of TASK_SELECT_BATCH. out [classes, dim]
 * (calloc'd); returns dim or -1 with err set. */
int task_select_embed_means(ml_meta *meta, const float *x, const int32_t *y, int n, int classes, float **out,
                            char *err, size_t errlen);

#endif
