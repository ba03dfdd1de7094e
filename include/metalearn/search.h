/* metalearn/search.h: the parts of a strategy search that are not process
 * plumbing: a search space parsed from JSON, sampling, mutation, uniform
 * crossover, tournament selection, ranking and the successive-halving
 * schedule. `metalearn search` (src/cli/cmd_search.c) runs the trials.
 *
 * A space is a JSON object of named parameters, each one of
 *   {"uniform": [lo, hi]}       a real number, lo <= x <= hi
 *   {"log_uniform": [lo, hi]}   a real number uniform in log space, 0 < lo
 *   {"int": [lo, hi]}           an integer, both ends included
 *   {"choice": [v1, v2, ...]}   one of the listed strings / numbers / booleans
 * A candidate is one double per parameter: the value itself for numeric
 * parameters, the index of the option for a choice. Real values are rounded
 * to 4 significant digits (readable configs; finer is noise for a search).
 * Every function is deterministic given the ml_rng state. Nothing prints. */
#ifndef METALEARN_SEARCH_H
#define METALEARN_SEARCH_H

#include <stddef.h>

#include "metalearn/core.h"

#ifdef __cplusplus
extern "C" {
#endif

struct cJSON;

typedef enum { ML_PARAM_UNIFORM, ML_PARAM_LOG_UNIFORM, ML_PARAM_INT, ML_PARAM_CHOICE } ml_param_kind;

typedef enum { ML_CHOICE_NUMBER, ML_CHOICE_STRING, ML_CHOICE_BOOL } ml_choice_type;

typedef struct ml_choice {
    ml_choice_type type;
    double number; /* number, or 0/1 for a boolean */
    char *string;  /* ML_CHOICE_STRING only */
} ml_choice;

typedef struct ml_search_param {
    char name[64];
    ml_param_kind kind;
    double lo, hi;       /* numeric kinds */
    ml_choice *choices;  /* ML_PARAM_CHOICE: [n_choices] */
    int n_choices;
} ml_search_param;

#define ML_SEARCH_MAX_PARAMS 32

typedef struct ml_search_space {
    ml_search_param params[ML_SEARCH_MAX_PARAMS];
    int n;
} ml_search_space;

/* Parses a space object (see above). label names the file in messages:
 * "space.json: key 'inner-lr': log_uniform needs 0 < lo <= hi". Errors: not
 * an object, no parameters, an unknown kind, an empty or reversed range, a
 * non-positive log bound, an empty choice list, a non-integral int bound.
 * Returns ML_OK or ML_ERR_ARG (ML_ERR_NOMEM) with err set; on failure
 * nothing needs freeing. */
ml_status ml_search_space_parse(const struct cJSON *space, const char *label, ml_search_space *out, char *err,
                                size_t errlen);
void ml_search_space_free(ml_search_space *s);

/* A fresh candidate drawn uniformly from the space into v[s->n]. */
void ml_search_sample(const ml_search_space *s, ml_rng *rng, double *v);

/* child = parent with each parameter changed with probability rate: numeric
 * values by a Gaussian step of sigma times the range width (in log space for
 * log_uniform), clipped to the range (integers rounded); choices resampled
 * uniformly among the other options. child may equal parent. */
void ml_search_mutate(const ml_search_space *s, ml_rng *rng, const double *parent, double *child, double rate,
                      double sigma);

/* Uniform crossover: each parameter from a or b with probability 1/2. */
void ml_search_crossover(const ml_search_space *s, ml_rng *rng, const double *a, const double *b, double *child);

/* Tournament selection among n scored candidates: draws k of them (with
 * replacement) and returns the index of the best. NaN scores (failed trials)
 * lose to any number. higher_better says the direction. */
int ml_search_tournament(ml_rng *rng, const double *scores, int n, int k, int higher_better);

/* order[0..n) = indices of scores from best to worst; NaN last, ties by
 * index, so the order is deterministic. */
void ml_search_rank(const double *scores, int n, int higher_better, int *order);

/* Successive-halving budgets: max_iters / eta^k (integer division) for
 * k = 0, 1, ... while not below min_iters, in increasing order (e.g. 30, 90
 * for 30..90 with eta 3; 11, 33, 100 for 10..100; 2222, 6666, 20000 for
 * 2000..20000). At most max_rungs values (the largest ones); returns the
 * rung count, or -1 when min_iters < 1, max_iters < min_iters or eta < 2. */
int ml_search_rungs(int min_iters, int max_iters, int eta, int *iters, int max_rungs);

/* Candidates promoted from a rung of n scored ones: n / eta, at least 1. */
int ml_search_promoted(int n, int eta);

/* Sets obj[name] for every parameter of the candidate (replacing what is
 * there): numbers for numeric parameters (integers for int), the chosen
 * value for choices. Returns ML_OK or ML_ERR_NOMEM. */
ml_status ml_search_to_json(const ml_search_space *s, const double *v, struct cJSON *obj);

/* One parameter's value as text ("0.0123", "5", "maml") for tables. */
void ml_search_format(const ml_search_param *p, double v, char *buf, size_t len);

/* ---- the search chart (search.png) ----------------------------------------- */

typedef struct ml_search_chart {
    const char *strategy;   /* "random", "evolution": named in the title */
    const char *metric;     /* "accuracy", "mse", or NULL before any score */
    int higher_better;
    int n_trials, n_rungs;
    const int *rung_iters;  /* [n_rungs] iterations of each rung */
    const double *score;    /* [n_rungs * n_trials]: trial t at rung r is score[r * n_trials + t]; NaN when not run */
    const int *failed;      /* [n_trials]: nonzero for a trial that failed (diverged, crashed) at any rung */
} ml_search_chart;

/* Writes the chart of a search as a PNG: the score of every trial (x, whole-
 * number ticks) at each rung (markers), the best first-rung score so far
 * (dashed), and each failed trial as a marker of its own series, "failed",
 * drawn at the worst score of the search (so it is visible on the same axis
 * without looking like a result). An MSE axis is logarithmic when every
 * score is positive. Returns what ml_plot_png returns. */
ml_status ml_search_plot(const char *path, const ml_search_chart *c, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
