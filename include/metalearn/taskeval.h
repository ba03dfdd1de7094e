/* metalearn/taskeval.h: evaluating a meta-learner on regression tasks: either
 * n new tasks drawn from a family (synthetic families have endless tasks), or
 * a fixed list of CSV tasks (a split's test or validation part, or every task
 * of a held-out file), each evaluated exactly once so that a mean and its
 * interval are over distinct tasks. Used by `train`'s final evaluation,
 * `eval` (--split val for search) and the validation metric of --val-every. */
#ifndef METALEARN_TASKEVAL_H
#define METALEARN_TASKEVAL_H

#include "metalearn/images.h"
#include "metalearn/meta.h"
#include "metalearn/tasks.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Which tasks: idx == NULL draws n tasks with ml_task_sample (k support, q
 * query points); idx != NULL takes CSV tasks idx[0..n), each once, with k
 * support rows drawn by rng and min(q, its query rows) query rows (q <= 0:
 * all of them). loss_at[t * (max_steps + 1) + s] receives task t's query MSE
 * after s adaptation steps (ml_meta_evaluate). rng is advanced. */
ml_status ml_task_eval(ml_meta *m, const ml_task_family *f, const int32_t *idx, int n, ml_rng *rng, int k, int q,
                       int max_steps, double *loss_at, char *err, size_t errlen);

/* Mean query MSE after `steps` steps over the tasks of ml_task_eval (NaN if any
 * task diverged), for a validation curve. */
ml_status ml_task_eval_mean(ml_meta *m, const ml_task_family *f, const int32_t *idx, int n, ml_rng *rng, int k,
                            int q, int steps, double *mean, char *err, size_t errlen);

/* The few-shot counterpart for a validation curve: mean query accuracy after
 * `steps` adaptation steps over n episodes (ways x (shots + queries)) of
 * `classes`, drawn by rng and evaluated `batch` at a time. */
ml_status ml_episode_eval_acc(ml_meta *m, const ml_image_set *s, const ml_class_list *classes, int ways, int shots,
                              int queries, int n, int batch, ml_rng *rng, int steps, double *mean_acc, char *err,
                              size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
