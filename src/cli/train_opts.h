/* train_opts.h: `metalearn train`'s help texts and its two paths, supervised
 * (cmd_train.c) and meta-learning (cmd_meta.c); the settings themselves are
 * the library's ml_run_config (metalearn/run.h). */
#ifndef ML_CLI_TRAIN_OPTS_H
#define ML_CLI_TRAIN_OPTS_H

#include <stddef.h>
#include <stdint.h>

#include "cli/args.h"
#include "metalearn/run.h"

extern const char *const train_synopsis;
/* train --help's description (the learners from the library's table). */
const char *train_about(void);

int run_supervised(ml_run_config *o);
int run_meta(ml_run_config *o);

#endif
