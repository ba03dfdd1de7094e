/* rl_run.h (internal): a meta-RL run behind the ml_run handle (run.c hands
 * every call of a run with --env here), and what the meta-RL run modules
 * share. */
#ifndef METALEARN_RUN_RL_RUN_H
#define METALEARN_RUN_RL_RUN_H

#include <stdio.h>

#include "metalearn/rl.h"
#include "metalearn/run.h"

/* The learner of a run's settings (--env, --algo, --outer, ...), created;
 * a refusal names its option (ML_ERR_ARG). */
ml_status ml__rl_open_learner(const ml_run_config *o, ml_rl **rl, char *err, size_t errlen);

/* The evaluation's adaptation schedule: the first step at `first`, every
 * later one at `later` (--eval-later-scale times the rate). */
typedef struct ml__rl_schedule {
    double first, later;
} ml__rl_schedule;

/* The rates the evaluation tries: --eval-lr's list, else the inner rate;
 * -1 when --eval-lr is malformed. */
int ml__rl_eval_rates(const ml_run_config *o, double *rates, int cap);
/* The schedule of the evaluation at one of those rates. */
ml__rl_schedule ml__rl_eval_schedule(const ml_run_config *o, double rate);
/* The schedule the run's last evaluation used (RUN/eval.json's eval_lr and
 * eval_later_scale: the curve plot draws), else the settings' (the first
 * --eval-lr rate, the inner rate by default). */
ml_status ml__rl_run_schedule(const ml_run_config *o, const char *dir, ml__rl_schedule *out, char *err,
                              size_t errlen);

typedef struct ml__rl_run ml__rl_run;

/* o is the ml_run's resolved copy (it outlives the RL run); o->out the
 * folder; checkpoint: ML_RUN_EVAL's file (NULL: the folder's). */
ml_status ml__rl_run_open(ml__rl_run **out, ml_run_config *o, ml_run_mode mode, const char *checkpoint,
                          char *err, size_t errlen);
void ml__rl_run_close(ml__rl_run *r);
void ml__rl_run_info(const ml__rl_run *r, ml_run_info *info);
int ml__rl_run_iteration(const ml__rl_run *r);
int ml__rl_run_tasks_per_step(const ml__rl_run *r);
int ml__rl_run_input_dim(const ml__rl_run *r);
ml_status ml__rl_run_step(ml__rl_run *r, double *ret, char *err, size_t errlen);
ml_status ml__rl_run_train(ml__rl_run *r, const ml_run_callbacks *cb, char *err, size_t errlen);
ml_status ml__rl_run_save(ml__rl_run *r, char *err, size_t errlen);
/* Prints the table (and with json the JSON line) to out (NULL: nothing),
 * writes RUN/eval.json, and fills res's rows when res is given. */
ml_status ml__rl_run_evaluate(ml__rl_run *r, FILE *out, int json, ml_run_eval_result *res, char *err,
                              size_t errlen);

#endif
