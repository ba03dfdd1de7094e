/* metalearn/eval.h: classification metrics and confidence intervals.
 *
 * A confusion matrix accumulates (truth, prediction) pairs; every metric is
 * read off it, so per-episode and whole-run numbers come from one place.
 * Conventions follow scikit-learn's precision_recall_fscore_support with
 * zero_division=0, so numbers can be checked against it:
 *   - precision of a class never predicted is 0 (not NaN);
 *   - recall of a class with no true samples is 0;
 *   - F1 is 0 when precision + recall is 0;
 *   - macro averages are unweighted means over the classes that occur in the
 *     truth or the predictions (sklearn's labels=None); classes absent from
 *     both are left out, and with no samples at all every average is 0.
 * Nothing here prints unless given a FILE*. */
#ifndef METALEARN_EVAL_H
#define METALEARN_EVAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "metalearn/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ml_confusion {
    int n_classes;
    int64_t *m;    /* [n_classes, n_classes]: m[truth * n_classes + pred] */
    int64_t total; /* pairs added since init/reset */
} ml_confusion;

ml_status ml_confusion_init(ml_confusion *c, int n_classes); /* zeroed; ML_ERR_ARG if n < 1 */
void ml_confusion_free(ml_confusion *c);                    /* NULL and zeroed are fine */
void ml_confusion_reset(ml_confusion *c);                   /* zero counts, keep memory */
/* ML_ERR_ARG (and nothing counted) if a label is outside [0, n_classes). */
ml_status ml_confusion_add(ml_confusion *c, int truth, int pred);
ml_status ml_confusion_add_batch(ml_confusion *c, const int32_t *truth, const int32_t *pred,
                                 int64_t n); /* all-or-nothing: checks every pair first */
/* Adds src's counts into dst (same n_classes), e.g. per-thread matrices. */
ml_status ml_confusion_merge(ml_confusion *dst, const ml_confusion *src);

double ml_confusion_accuracy(const ml_confusion *c); /* trace / total, 0 if empty */
double ml_confusion_precision(const ml_confusion *c, int k);
double ml_confusion_recall(const ml_confusion *c, int k);
double ml_confusion_f1(const ml_confusion *c, int k);
int64_t ml_confusion_support(const ml_confusion *c, int k); /* true samples of class k */
double ml_confusion_macro_precision(const ml_confusion *c);
double ml_confusion_macro_recall(const ml_confusion *c);
double ml_confusion_macro_f1(const ml_confusion *c); /* mean of per-class F1, as sklearn */

/* Per-class table (precision, recall, f1, support) then accuracy and macro
 * rows. names may be NULL (classes print as numbers). */
void ml_confusion_print(const ml_confusion *c, FILE *f, const char *const *names);

/* Writes {"n":..,"accuracy":..,"macro_precision":..,"macro_recall":..,
 * "macro_f1":..,"precision":[..],"recall":[..],"f1":[..],"support":[..],
 * "confusion":[[..],..]} into buf. Returns the length the full text needs
 * (excluding the NUL), like snprintf: the output is complete iff the return
 * value is < cap. buf may be NULL when cap is 0. */
size_t ml_confusion_to_json(const ml_confusion *c, char *buf, size_t cap);

/* Mean over episodes and the half-width of a normal-approximation 95%
 * interval: half = 1.96 * s / sqrt(n), s the sample std (divide by n - 1),
 * the convention of the few-shot literature ("acc +- half"). For n < 2 half
 * is 0. ML_ERR_ARG if n < 1 or a pointer is NULL (outputs 0);
 * ML_ERR_NUMERIC if a value is not finite (outputs still computed). */
ml_status ml_mean_ci95(const double *v, int64_t n, double *mean, double *half);
/* The same with Student's t quantile (n - 1 degrees of freedom) in place of
 * 1.96: for a mean over a few distinct units (the 14 test tasks of a CSV
 * file), where the normal approximation is too narrow. */
ml_status ml_mean_ci95_t(const double *v, int64_t n, double *mean, double *half);

/* ---- learning-free baselines for one-shot classification ---------------------
 * Modified Hausdorff Distance (Dubuisson & Jain 1994) between two binary
 * stroke masks [h, w] (1 = stroke), each centred on its mean stroke position as in
 * Lake et al.'s reference code: max(mean over a of min over b |a - b|,
 * mean over b of min over a |b - a|), Euclidean pixel distance. Empty masks:
 * +infinity unless both are empty (0). */
double ml_mhd(const uint8_t *a, const uint8_t *b, int h, int w);
/* Squared Euclidean distance between two images of n pixels. */
double ml_pixel_distance(const float *a, const float *b, int64_t n);

/* Lake's one-shot runs (metalearn/images.h) labelled by the learning-free
 * 1-nearest-neighbour baseline (`metalearn eval --algo nn`): each test image
 * takes the class of the nearest training image of its run, by Modified
 * Hausdorff distance on the strokes (mhd = 1) or pixel L2 distance.
 * errors[r] receives run r's error rate (lr->n_runs of them); returns the
 * mean error. */
struct ml_lake_runs;
double ml_lake_runs_nn_errors(const struct ml_lake_runs *lr, int mhd, double *errors);

#ifdef __cplusplus
}
#endif
#endif
