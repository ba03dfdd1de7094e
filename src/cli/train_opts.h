/* train_opts.h: `metalearn train`'s help texts and its supervised path
 * (train_supervised.c); the meta-learning path is the library's run
 * (cmd_train.c). The settings are the library's ml_run_config. */
#ifndef ML_CLI_TRAIN_OPTS_H
#define ML_CLI_TRAIN_OPTS_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "cli/args.h"
#include "metalearn/run.h"

extern const char *const train_synopsis;
/* train --help's description (the learners from the library's table). */
const char *train_about(void);

int run_supervised(ml_run_config *o, const volatile sig_atomic_t *stop);

#endif
