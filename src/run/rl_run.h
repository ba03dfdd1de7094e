/* rl_run.h (internal): what the meta-RL run modules share. */
#ifndef METALEARN_RUN_RL_RUN_H
#define METALEARN_RUN_RL_RUN_H

#include "metalearn/rl.h"
#include "metalearn/run.h"

/* The learner of a run's settings (--env, --algo, --outer, ...), created;
 * a refusal names its option (ML_ERR_ARG). */
ml_status ml__rl_run_open(const ml_run_config *o, ml_rl **rl, char *err, size_t errlen);

#endif
