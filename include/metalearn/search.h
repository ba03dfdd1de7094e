/* metalearn/search.h: strategy search over train settings. First its
 * pure parts: a search space parsed from JSON, sampling, mutation, uniform
 * crossover, tournament selection, ranking and the successive-halving
 * schedule.
 *
 * A space is a JSON object of named parameters, each one of
 *   {"uniform": [lo, hi]}       a real number, lo <= x <= hi
 *   {"log_uniform": [lo, hi]}   a real number uniform in log space, 0 < lo
 *   {"int": [lo, hi]}           an integer, both ends included
 *   {"choice": [v1, v2, ...]}   one of the listed strings / numbers / booleans
 * A candidate is one double per parameter: the value itself for numeric
 * parameters, the index of the option for a choice. Real values are rounded
 * to 4 significant digits (readable configs; finer is noise for a search).
 * Every function is deterministic given the ml_rng state. Nothing prints.
 *
 * Below those: the space file (base settings + space, checked against
 * train's options) and the search driver, ml_search_run (trials, the log,
 * resume, best.json, the chart); `metalearn search` only parses and prints. */
#ifndef METALEARN_SEARCH_H
#define METALEARN_SEARCH_H

#include <signal.h>
#include <stddef.h>

#include "metalearn/core.h"
#include "metalearn/options.h"

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

/* Evolution: candidate t (cand[t * s->n ...]) becomes the child of two
 * tournament winners among candidates [0, n_scored) (scores[n_scored], NaN
 * for failed ones), by uniform crossover and mutation, mutated again (at
 * rate 1) until it differs from every candidate before t (10 tries). */
void ml_search_breed(const ml_search_space *s, ml_rng *rng, double *cand, int t, int n_scored, const double *scores,
                     int higher_better);

/* ---- a search space file ------------------------------------------------------
 * {"base": {train options every trial shares}, "space": {parameters}}: the
 * base over an optional base config (a run's config.json works), every
 * value checked as `metalearn train` checks it, the space parsed and each
 * range end / choice checked as a train value, so a trial never fails on a
 * setting. The search's own keys (out, resume, overwrite, config, json,
 * quiet, threads, iters) are dropped from the base and cannot be searched. */
typedef struct ml_search_spec {
    ml_search_space space;
    struct cJSON *base; /* train options of every trial, without the search's own keys */
    int base_iters;     /* the base's iters (train's default if unset): the default max_iters */
} ml_search_spec;

/* Loads a space file (space_text NULL) or JSON text (label names it in
 * messages), over base_config (a train config file, or NULL). Returns ML_OK,
 * ML_ERR_IO (unreadable file, invalid JSON) or ML_ERR_ARG (a bad key or
 * value, e.g. "space.json: unknown key 'inner_lr' (not a metalearn train
 * option; see metalearn train --help)"), err set; on failure nothing needs
 * freeing. */
ml_status ml_search_spec_load(ml_search_spec *spec, const char *space_path, const char *space_text,
                              const char *base_config, char *err, size_t errlen);
void ml_search_spec_free(ml_search_spec *spec);

/* ---- the search driver ------------------------------------------------------------
 * ml_search_run runs a whole search in a folder OUT:
 *   OUT/search.json   the search's identity (a rerun with other settings is refused)
 *   OUT/trials/NNN/   one run folder per candidate (spec.json: its train config)
 *   OUT/trials.jsonl  one line per finished (trial, rung):
 *       {"trial":T,"rung":R,"iters":I,"settings":{...},"status":"ok","score":S,"metric":"mse","seconds":X}
 *       {"trial":T,"rung":R,"iters":I,"settings":{...},"status":"failed","score":null,"message":"...","seconds":X}
 *   OUT/best.json     the base + the best candidate, iters = max_iters (for train --config)
 *   OUT/search.png    the chart (ml_search_plot)
 * Rung 0 trains every candidate (random: all drawn at once; evolution:
 * generations of `population`, bred from the scores so far) for rungs[0]
 * iterations and scores it on validation tasks; the best 1/eta go on to
 * the next rung (continuing their checkpoints), up to max_iters. A failed
 * trial (crashed, diverged) is never promoted and never best. Deterministic
 * given the seed; a rerun replays the log and runs only what is missing.
 *
 * Under mpirun (metalearn/dist.h) every process calls ml_search_run with
 * the same settings: rank 0 proposes the candidates, hands each (trial,
 * rung) to a free job slot of any rank (each rank runs its own `jobs`
 * children with `threads` threads each), logs every result as it comes
 * back and alone writes OUT; OUT must be on a file system every rank sees.
 * The log and best.json are those of one process (the log's lines in the
 * order the trials finished, as with jobs > 1). Other ranks get the
 * search's status and err; report is called on rank 0 only, and their
 * summary holds no results (budget 0). */

typedef struct ml_search_config {
    const char *space;       /* the space file (or NULL with space_text) */
    const char *space_text;  /* the space as JSON text (not an option: set it from code) */
    const char *config;      /* base train config file, or NULL */
    const char *out;         /* the search folder */
    const char *strategy;    /* "random" (default) or "evolution" */
    int budget;              /* candidates (required, >= 1) */
    int min_iters, max_iters; /* 0: max_iters / eta^2, the base's iters */
    int eta, population;     /* 3, 8 */
    int jobs, threads;       /* trials at once, threads of each; 0: cores, cores / jobs */
    int val_tasks;           /* validation tasks / episodes scoring a trial (200) */
    uint64_t seed;           /* of the candidate generator (1) */
} ml_search_config;

void ml_search_config_default(ml_search_config *c);
/* The option table over c, named "search" (the CLI's flags; the Python
 * package's keyword arguments); storage of the calling thread reused by its every call. */
ml_option_set ml_search_config_option_set(ml_search_config *c);

/* One step of a trial, as the runner sees it. */
typedef struct ml_search_trial {
    int trial, rung, iters;  /* train trial `trial` up to outer iteration `iters` */
    const char *dir;         /* OUT/trials/NNN, the trial's run folder */
    const char *spec;        /* OUT/trials/NNN/spec.json, its train config */
    int resume;              /* dir holds a checkpoint (an earlier rung, or this one interrupted): continue it */
    int threads, val_tasks;
} ml_search_trial;

/* How a trial trains and is scored. Both run in a child process the search
 * forks (a crash or a NaN cannot take the search down), with stdout and
 * stderr going to DIR/train.out, DIR/train.err (DIR/eval.out, DIR/eval.err)
 * and SIGINT / SIGTERM at their default; the return value is the child's
 * exit status (they may also exec, and not return).
 * - train: without resume, a new run in dir from spec (replacing what a
 *   start that never reached a checkpoint left), else continue dir; up to
 *   iters, no final evaluation; on SIGINT save a checkpoint and stop.
 * - evaluate: score dir on validation tasks (`metalearn eval DIR --split val
 *   --tasks V --json`) and print that JSON line last on stdout: the score is
 *   the "accuracy" or "mse" of the entry of "results" with the most "steps".
 * A failure's message is the last line of stderr ("train exit 1: LINE").
 * The library's own runner (runner NULL in ml_search_run) does this
 * in-process through the run API (metalearn/run.h), with the messages of
 * `metalearn train` / `metalearn eval`; its children keep one OpenMP thread
 * inside each op (GNU libgomp cannot start threads in a child forked after
 * the parent used OpenMP; runs are parallel across tasks anyway). */
typedef struct ml_search_runner {
    int (*train)(const ml_search_trial *t, void *user);
    int (*evaluate)(const ml_search_trial *t, void *user);
    void *user;
} ml_search_runner;

typedef enum {
    ML_SEARCH_STARTED,    /* set up (log replayed), before any trial: config resolved, rungs known */
    ML_SEARCH_RUNG_START, /* a batch of trials of one rung begins (total = trials to run now, may be 0) */
    ML_SEARCH_TRIAL_DONE, /* one (trial, rung) finished, logged */
    ML_SEARCH_RUNG_END
} ml_search_event_kind;

typedef struct ml_search_event {
    ml_search_event_kind kind;
    const ml_search_config *config; /* resolved: iters, jobs and threads filled in */
    int n_rungs;
    const int *rungs;               /* [n_rungs] iterations */
    int rung, trial;                /* RUNG_*, TRIAL_DONE */
    int done, total;                /* trials of this rung finished by this call / to run */
    int ok;                         /* TRIAL_DONE: scored */
    double score, seconds;
    const char *metric;             /* "accuracy" or "mse" once known, else NULL */
    const char *message;            /* a failed trial's reason */
    int rank;                       /* TRIAL_DONE: the process of an mpirun job that ran it (0 without) */
} ml_search_event;

typedef void (*ml_search_report)(const ml_search_event *e, void *user);

/* A trial's outcome at the end of a search. */
typedef struct ml_search_result {
    int trial;
    int top_rung;       /* highest rung scored, -1 for a trial that failed at any rung */
    int iters;          /* rungs[top_rung] */
    double score;       /* at top_rung; NaN when failed */
    int failed_rung;    /* first rung it failed at, or -1 */
    int failed_iters;
    const char *message; /* the failure's whole reason (failed_rung >= 0) */
    const char *settings;   /* the candidate as JSON text: {"inner-lr":0.01,...} */
    const char *summary;    /* the same as "inner-lr=0.01 algo=maml" */
} ml_search_result;

typedef struct ml_search_summary {
    const char *metric;      /* "accuracy" or "mse" */
    int higher_better;
    int n_rungs;
    int rungs[16];
    int budget, trials_run_now, trials_failed;
    int interrupted;         /* the stop flag ended it (status ML_ERR_STATE) */
    ml_search_result *results; /* [budget] by trial number (after ML_OK) */
    int *order;              /* [budget] trial numbers best first: highest rung, then score; failed last */
    double seconds;
} ml_search_summary;

void ml_search_summary_free(ml_search_summary *s);

/* Runs (or resumes) the search of c. runner NULL: the library's own
 * (in-process runs in the forked children, see above). report (may be NULL) sees progress
 * on the calling thread. When *stop becomes nonzero (a signal handler may
 * set it), running trials get SIGINT (they checkpoint), nothing unfinished
 * is logged, and the call returns ML_ERR_STATE with summary->interrupted:
 * the same call later continues. A trial's child that SIGINT stopped
 * (killed by it, or exit status 130: a Ctrl-C at a terminal reaches the
 * whole process group) interrupts the search the same way, so a host that
 * cannot raise *stop from a signal handler (Python) still stops cleanly.
 * summary (may be NULL) receives the
 * ranking; free it with ml_search_summary_free, also after an error.
 * Returns ML_OK; ML_ERR_ARG for bad settings or a folder that holds
 * another search; ML_ERR_NUMERIC when every trial failed (no best.json);
 * ML_ERR_IO and others for the search's own failures, err set. */
ml_status ml_search_run(const ml_search_config *c, const ml_search_runner *runner, ml_search_report report,
                        void *user, volatile const sig_atomic_t *stop, ml_search_summary *summary, char *err, size_t errlen);

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
