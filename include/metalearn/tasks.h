/* metalearn/tasks.h: regression task families (the MAML paper's toy problems
 * and a user's own tasks from a CSV file).
 *
 * A family draws tasks; a task is K support and Q query (x, y) points from one
 * function. This is the regression counterpart of the image episode sampler;
 * it knows nothing about models or tensors (plain float buffers).
 *
 * Families (the `spec` string):
 *   "sinusoid"   y = A sin(x - phase), A ~ U[0.1, 5), phase ~ U[0, pi),
 *                x ~ U[-5, 5) (Finn et al. 2017, section 5.1). in_dim 1.
 *   "linear"     y = w.x + b, every w_i and b ~ U[-3, 3), every x_i ~ U[-5, 5).
 *   "linear:D"   the same with D inputs, 1 <= D <= ML_TASK_LINEAR_MAX_DIM.
 *   "sine-seq"   OML's incremental sine waves (Javed & White 2019): F = 10
 *   "sine-seq:F" sinusoids as above one after another; a task's support and
 *                query points are dealt to the functions in blocks (function
 *                j gets points [j*k/F, (j+1)*k/F), in that order: the support
 *                set is the sequence), the input is (x, one-hot j), in_dim
 *                1 + F, 2 <= F <= ML_TASK_SEQ_MAX; k, q >= F.
 *   "csv:FILE"   fixed tasks from a file, one row per point:
 *                  task,split,x_1,...,x_D,y
 *                task is any string (tasks keep first-appearance order), split
 *                is `support` or `query` (any case), every row has the same D.
 *                An optional header is recognised by a first row whose third
 *                field is not a number. CRLF, blank lines, a UTF-8 BOM and
 *                "double-quoted" fields (with "" for a quote) are accepted.
 *                Values must be finite floats. Every task needs at least one
 *                support and one query point. Numbers are read with strtod,
 *                so the C locale's '.' is the decimal point.
 *
 * Randomness: every draw comes from the ml_rng passed in, in a fixed order,
 * so one seed gives the same tasks on every machine and thread count.
 *
 * Errors: functions taking `err` write ONE line into it (may be NULL); CSV
 * problems read "<file>:<line>: <reason>" or "<file>: <reason>". On failure
 * from ml_task_family_init, *f is left zeroed, so ml_task_family_free on it
 * is always safe. */
#ifndef METALEARN_TASKS_H
#define METALEARN_TASKS_H

#include <stddef.h>
#include <stdint.h>

#include "metalearn/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { ML_TASKS_SINUSOID, ML_TASKS_LINEAR, ML_TASKS_CSV, ML_TASKS_SINE_SEQ } ml_task_family_kind;

/* Room for the true parameters of a synthetic task ("info"), which bounds
 * the input size of "linear:D". Larger problems are better served by CSV. */
#define ML_TASK_INFO_MAX 24
#define ML_TASK_LINEAR_MAX_DIM 15
#define ML_TASK_SEQ_MAX 12 /* sine-seq: functions per task ({amplitude, phase} each in info) */

/* One task of a CSV family: support rows then query rows, each in file
 * order. The pointers are views into the family's buffers. */
typedef struct ml_csv_task {
    const char *name;
    int n_support, n_query;
    const float *xs, *ys; /* [n_support, in_dim], [n_support] */
    const float *xq, *yq; /* [n_query, in_dim],   [n_query]   */
} ml_csv_task;

typedef struct ml_task_family {
    ml_task_family_kind kind;
    int in_dim;
    /* CSV only (all NULL / 0 otherwise); owned by the family. */
    char *path;          /* the file, for messages */
    int n_tasks;
    ml_csv_task *tasks;  /* [n_tasks] */
    float *x, *y;        /* all points grouped by task, viewed by tasks[] */
    char *names;         /* the task names, NUL-separated */
    /* ml_task_sample draws among these task indices only (a split's part);
     * NULL / 0: every task. Owned; set by ml_task_family_draw_from. */
    int32_t *draw_from;
    int n_draw_from;
    /* Sinusoid: amplitudes drawn in [amp_min, amp_max) when amp_max > amp_min
     * (a federated client's range); 0, 0: the family's U[0.1, 5). */
    double amp_min, amp_max;
} ml_task_family;

/* Parses `spec` (see the top of this file) and, for CSV, loads the file. */
ml_status ml_task_family_init(ml_task_family *f, const char *spec, char *err, size_t errlen);
/* Frees the buffers and zeroes *f. NULL and zeroed families are fine. */
void ml_task_family_free(ml_task_family *f);

/* Number of true parameters in a task's info[] (2 for sinusoid, D + 1 for
 * linear, 2F for sine-seq, 0 for CSV). */
int ml_task_family_n_info(const ml_task_family *f);
/* Largest support / query set of any CSV task (0 for synthetic families, which
 * have no limit): the capacity ml_regression_task_alloc needs for k, q <= 0. */
void ml_task_family_max_points(const ml_task_family *f, int *max_support, int *max_query);

/* A drawn task in caller storage; the buffers are allocated once with room
 * for k_cap support and q_cap query points and reused by every draw. */
typedef struct ml_regression_task {
    int k, q, in_dim;  /* points in this draw (k <= k_cap, q <= q_cap) */
    int k_cap, q_cap;
    float *xs, *ys;    /* [k, in_dim], [k] */
    float *xq, *yq;    /* [q, in_dim], [q] */
    /* Synthetic tasks: the true function, for plots and ml_task_eval_on_grid.
     * Sinusoid {amplitude, phase}; linear {w_1, ..., w_D, b}; sine-seq
     * {amplitude, phase} of each function in turn; rest zero. */
    double info[ML_TASK_INFO_MAX];
    int task_index;    /* CSV: index into f->tasks; -1 for synthetic tasks */
} ml_regression_task;

/* k, q, in_dim >= 1. On failure *t is zeroed. */
ml_status ml_regression_task_alloc(ml_regression_task *t, int k, int q, int in_dim);
void ml_regression_task_free(ml_regression_task *t);

/* Draws one task with k support and q query points into t (whose in_dim must
 * match the family's). Synthetic: k, q >= 1, fresh parameters and fresh x.
 * CSV: a task uniformly at random, then k of its support rows and q of its
 * query rows without replacement (kept in file order); k <= 0 / q <= 0 take
 * them all. A task with fewer rows than asked, or more than t can hold, is an
 * error. */
ml_status ml_task_sample(const ml_task_family *f, ml_rng *rng, int k, int q,
                         ml_regression_task *t, char *err, size_t errlen);

/* ml_task_sample in two parts, for a batch whose targets are computed on
 * several threads: ml_task_sample_draws takes every random number of the
 * task (the same stream, in the same order, as ml_task_sample) and leaves a
 * synthetic task's targets unset; ml_task_fill_targets then computes them
 * from its parameters and points (the same bits; nothing to do for CSV). */
ml_status ml_task_sample_draws(const ml_task_family *f, ml_rng *rng, int k, int q, ml_regression_task *t, char *err,
                               size_t errlen);
void ml_task_fill_targets(const ml_task_family *f, ml_regression_task *t);

/* sine-seq: the function of point i of n (function-major blocks); -1 otherwise. */
int ml_task_seq_function(const ml_task_family *f, int i, int n);

/* CSV task `index` without randomness, for evaluation: the first k support
 * and first q query rows in file order (k <= 0 / q <= 0: all of them). */
ml_status ml_task_get_csv(const ml_task_family *f, int index, int k, int q,
                          ml_regression_task *t, char *err, size_t errlen);

/* Whether every task can give k support and q query points, checked before
 * any draw (a run checks each setting it will use at setup): 0 means "all of
 * the task's rows" (CSV only), a negative count is not checked. Synthetic
 * families fit any k, q >= 1. ML_ERR_ARG with err naming the first task
 * short of rows: "data.csv: task 'p7' has only 4 support rows". */
ml_status ml_task_family_check(const ml_task_family *f, int k, int q, char *err, size_t errlen);

/* Name of CSV task `index`, or NULL when out of range / not a CSV family. */
const char *ml_task_family_task_name(const ml_task_family *f, int index);

/* CSV task `index` with k support and q query rows drawn without replacement
 * by rng (kept in file order; rng NULL: the first ones, as ml_task_get_csv),
 * k <= 0 / q <= 0: all of them. For evaluating every task of a split once. */
ml_status ml_task_draw_csv(const ml_task_family *f, int index, ml_rng *rng, int k, int q, ml_regression_task *t,
                           char *err, size_t errlen);

/* ---- task-level split of a CSV family --------------------------------------
 * Tasks (not points) are dealt to train, val and test, as image classes are:
 * the task indices shuffled by rng, then the first fractions[0] of them train,
 * the next fractions[1] validate, the next fractions[2] test (rounded as the
 * class split rounds; a positive share that rounds to no task is an error,
 * so a family too small for the split is refused with a message). */
enum { ML_TASK_PART_TRAIN, ML_TASK_PART_VAL, ML_TASK_PART_TEST, ML_TASK_PART_COUNT };
typedef struct ml_task_split {
    int n[ML_TASK_PART_COUNT];
    int32_t *idx[ML_TASK_PART_COUNT]; /* task indices, ascending */
} ml_task_split;

ml_status ml_task_split_make(const ml_task_family *f, const double fractions[ML_TASK_PART_COUNT], ml_rng *rng,
                             ml_task_split *out, char *err, size_t errlen);
void ml_task_split_free(ml_task_split *sp); /* zeroes *sp */
/* {"format": "metalearn-task-split", "version": 1, "file": the CSV path,
 *  "train": [task names], "val": [...], "test": [...]}, written atomically. */
ml_status ml_task_split_write_json(const ml_task_split *sp, const ml_task_family *f, const char *path, char *err,
                                   size_t errlen);
/* Reads it back against f by task name; an unknown or repeated name is an error. */
ml_status ml_task_split_read_json(const char *path, const ml_task_family *f, ml_task_split *out, char *err,
                                  size_t errlen);
/* ml_task_sample draws among idx[0..n) only (copied); n = 0 restores every task. */
ml_status ml_task_family_draw_from(ml_task_family *f, const int32_t *idx, int n, char *err, size_t errlen);

/* The true function of a synthetic task at n points: x is [n, in_dim], y is
 * [n]; info as in ml_regression_task. Computed in double, stored as float,
 * exactly as ml_task_sample computes its targets. ML_ERR_ARG for CSV. */
ml_status ml_task_eval_on_grid(const ml_task_family *f, const double *info, const float *x,
                               int n, float *y);

/* A plain table of numbers, e.g. the inputs (and targets) a user hands to
 * `metalearn predict`: rows of the same number of comma-separated values,
 * in the dialect of csv:FILE (an optional header: a first row of names,
 * none of them a number; CRLF, blank lines, a UTF-8 BOM,
 * "double-quoted" fields). At least one data row. *data is [rows * cols],
 * row-major, from ml_malloc (the caller frees it with ml_free). Errors read
 * "<file>:<line>: <reason>". */
ml_status ml_csv_read_numbers(const char *path, float **data, int64_t *rows, int *cols, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
