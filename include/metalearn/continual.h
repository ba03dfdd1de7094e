/* metalearn/continual.h: the continual-learning protocol of OML (Javed &
 * White 2019): classes learned one after another, each training image seen
 * once, by online SGD on a linear head over a frozen representation; the
 * accuracy on every class seen so far after a number of classes, and what is
 * left of the first classes at the end (forgetting).
 *
 * Everything here works on features (the representation's outputs, computed
 * once): ml_run_continual (metalearn/run.h) computes them for a run's
 * validation and test classes and calls ml_continual_evaluate. Single
 * threaded and seeded: the same numbers whatever the thread count. */
#ifndef METALEARN_CONTINUAL_H
#define METALEARN_CONTINUAL_H

#include <stddef.h>
#include <stdint.h>

#include "metalearn/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- a linear head learned one example at a time (plain C, no autograd) ---- */
/* out[C] = W f + b, W [C, D] row-major, b [C]. */
void ml_linear_head_forward(const float *w, const float *b, int C, int64_t D, const float *f, float *out);
/* One SGD step of the softmax cross-entropy of (f, label): W -= lr (p - e_label) f^T. */
void ml_linear_head_step_ce(float *w, float *b, int C, int64_t D, const float *f, int label, float lr);
/* One SGD step of the squared error (w.f + b - y)^2 of a one-output head. */
void ml_linear_head_step_mse(float *w, float *b, int64_t D, const float *f, float y, float lr);

/* Classes as rows of a feature matrix: class k's images are rows
 * class_start[k] .. class_start[k + 1] - 1 of feat [rows, dim]. */
typedef struct ml_continual_data {
    int n_classes;
    int64_t dim;
    const float *feat;
    const int64_t *class_start; /* [n_classes + 1] */
} ml_continual_data;

#define ML_CONTINUAL_MAX_COUNTS 32
#define ML_CONTINUAL_MAX_RATES 16

typedef struct ml_continual_options {
    int counts[ML_CONTINUAL_MAX_COUNTS]; /* report after this many classes (ascending); all classes always */
    int n_counts;
    int orders;          /* random class orders (default 10) */
    int test_per_class;  /* the last images of each class, held out for testing (default 5) */
    int train_per_class; /* images learned per class, once each (0: every other one) */
    float rates[ML_CONTINUAL_MAX_RATES]; /* learning rates tried on the validation classes */
    int n_rates;         /* 0: the default grid 0.3, 0.1, ..., 0.00001, 0.000003 (1-3 steps) */
    int oracle_epochs;   /* i.i.d. oracle: the same images shuffled, this many epochs (0: none) */
    int forget_classes;  /* forgetting: accuracy on the first this many classes after all (default 10) */
    uint64_t seed;
    /* 0: a linear head on the run's frozen representation (the protocol);
     * 1: the whole-network baselines instead (ml_continual_evaluate_network):
     * "scratch" online and, with oracle_epochs, the i.i.d. oracle */
    int whole_network;
} ml_continual_options;

void ml_continual_options_default(ml_continual_options *o);
/* The default rate grid (n_rates 0): *rates points at it; returns its length. */
int ml_continual_default_rates(const float **rates);

typedef struct ml_continual_row {
    int classes;               /* classes learned in sequence */
    double accuracy, ci95;     /* on the test images of those classes, over the orders */
    double first, first_ci95;  /* on the first min(forget_classes, classes) classes of the order */
    double oracle, oracle_ci95; /* i.i.d. oracle on the same classes (NAN when off) */
} ml_continual_row;

typedef struct ml_continual_result {
    int regression;            /* incremental sine waves: "accuracy" fields hold the MSE, classes are functions */
    int n_rows;
    ml_continual_row rows[ML_CONTINUAL_MAX_COUNTS + 1];
    double forgetting, forgetting_ci95; /* accuracy on the first forget_classes classes after all */
    int forget_classes;
    float lr;                  /* chosen on the validation classes */
    float oracle_lr;           /* the oracle's, chosen there the same way (NAN when off) */
    double val_accuracy;       /* its final accuracy there */
    int val_classes, test_classes, train_per_class, test_per_class, orders;
    /* The representation on the test images (ml_run_continual fills these;
     * NAN otherwise): fraction of exactly-zero features (OML's sparsity) and
     * the mean feature vector length. */
    double feature_zero_fraction, feature_norm;
    int whole_network;         /* the whole-network baselines (accuracy: scratch online; oracle: i.i.d.) */
} ml_continual_result;

/* Checks the options against the classes (err names the problem: more
 * classes asked than test has, no image left for the test or training side)
 * and runs the protocol: the rate with the best final accuracy on val (each
 * rate over the same orders; the oracle's rate chosen the same way on its own
 * final accuracy), then the test classes with those rates. */
ml_status ml_continual_evaluate(const ml_continual_data *val, const ml_continual_data *test,
                                const ml_continual_options *o, ml_continual_result *res, char *err, size_t errlen);

/* The whole-network baselines on the same protocol (the same orders, rate
 * grid and validation rule): rows of val and test are images, [rows, the
 * model's input size]. The network of spec (its representation: every layer
 * but its own head) plus a zero linear head with one output per class starts
 * from one seeded random initialisation (PyTorch's defaults, seed o->seed)
 * and learns with every layer by plain SGD, one image per step: "scratch" in
 * the class order (accuracy, first, forgetting), the oracle (oracle_epochs >
 * 0, reported after all classes only) on the same images shuffled together
 * for oracle_epochs epochs, each with its own rate chosen on val. Batch norm
 * uses its initial running statistics (mean 0, variance 1): one image has no
 * batch statistics, so it is a learned per-channel scale and shift. */
struct ml_model_spec;
ml_status ml_continual_evaluate_network(const ml_continual_data *val, const ml_continual_data *test,
                                        const ml_continual_options *o, const struct ml_model_spec *spec,
                                        ml_continual_result *res, char *err, size_t errlen);

/* The protocol's check alone: ML_OK or ML_ERR_ARG with a one-line message. */
ml_status ml_continual_check(const ml_continual_data *val, const ml_continual_data *test,
                             const ml_continual_options *o, char *err, size_t errlen);

/* {"continual":{"lr":..,"orders":..,...,"feature_zero_fraction":..,"feature_norm":..,"rows":[{"classes":..,"accuracy":..,"ci95":..,
 * "first":..,"oracle":..,"oracle_ci95":..},..],"forgetting":..}} into buf (snprintf rules).
 * "first" is the accuracy on the first forget_classes classes of the order
 * after that row's classes; "forgetting" its value after all classes. */
size_t ml_continual_to_json(const ml_continual_result *r, const char *algo, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
