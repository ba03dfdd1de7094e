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
/* A supervised run's test metrics as train prints them: accuracy, the
 * per-class table (Fashion-MNIST's class names), macro P/R/F1; and the same
 * as members of its JSON line ("test_accuracy" ... "macro_f1","per_class":[...]). */
void print_supervised_metrics(const ml_confusion *conf, int64_t test_examples, const char *dataset);
void print_supervised_metrics_json(const ml_confusion *conf);

#endif
