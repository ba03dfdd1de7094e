/* train_opts.h: the settings of `metalearn train`, shared by the supervised
 * path (cmd_train.c) and the meta-learning path (cmd_meta.c). One option
 * table serves flags, config files and the effective config of a run. */
#ifndef ML_CLI_TRAIN_OPTS_H
#define ML_CLI_TRAIN_OPTS_H

#include <stddef.h>
#include <stdint.h>

#include "cli/args.h"

typedef struct train_opts {
    /* common */
    const char *algo, *model, *init, *config, *out, *resume;
    uint64_t seed;
    int threads, json, quiet;
    /* supervised */
    const char *dataset, *optimizer, *schedule;
    int epochs, batch_size, limit;
    float lr, momentum, weight_decay, clip;
    /* meta-learning */
    const char *task, *eval_shots, *eval_steps;
    int shots, query, iters, meta_batch, inner_steps, log_every, checkpoint_every;
    int eval_tasks, eval_query;
    int val_every; /* log the validation metric every N iterations (0: off) */
    float inner_lr, outer_lr;
    uint64_t eval_seed;
    /* few-shot classification (--dataset omniglot:PATH[,PATH...]) */
    int ways, eval_ways, rotations;
    const char *split_by, *split, *lake_runs;
    int stop_at;    /* stop after this outer iteration (this invocation only); 0: run to --iters */
    int overwrite;  /* --out may replace a run already there (this invocation only) */
    float checkpoint_minutes; /* also checkpoint after this many minutes; 0: by iterations only */
    int lake_steps; /* adaptation steps before labelling Lake's runs; 0: the largest eval step */
    float aug_rotate, aug_translate, aug_flip;
    const char *aug_scale;
    /* few-shot task selection (task_select.c) and the held-out alphabets */
    const char *task_sampler, *target, *test_alphabets;
    int select_k, select_every;
    float select_prob, curriculum_strength;
    float matching_scale; /* --algo matching: learned cosine scale starting here; 0 = none (the paper) */
    int model_only; /* not an option: predict builds the model without loading the training data */
    int eval_val;   /* not an option: `eval --split val` scores on validation classes / tasks */
    /* transfer baseline (--algo pretrain): fine-tune "head" or "all" at evaluation */
    const char *finetune;
    /* not options of train: `eval RUN --dataset SPEC` (cross-domain), which
     * classes (--eval-classes all|test) and which IDX files (--images) */
    const char *eval_dataset, *eval_classes, *eval_images, *eval_split_file;
    int eval_only; /* eval / predict: no training head is needed (pretrain) */
    const char *eval_task; /* not an option of train: `eval RUN --task SPEC` (held-out tasks, e.g. csv:TEST.csv) */
} train_opts;

/* Defaults for `train` (meta-learning defaults follow the MAML paper's
 * sinusoid setup). */
void train_opts_defaults(train_opts *o);
/* The option table over o; n receives its length. */
const arg_spec *train_opts_table(train_opts *o, int *n);
extern const char *const train_synopsis;
extern const char *const train_about;

/* Defaults that depend on other settings (--eval-steps by algorithm,
 * --momentum: 0.9 supervised, 0 meta-learning, --meta-batch: the learner's,
 * see ml_algo_default_meta_batch), filled in after parsing so config.json
 * records the values used. */
void train_opts_resolve(train_opts *o);

/* Defaults, then the settings a run folder saved in DIR/config.json. Returns
 * 0, or -1 with err set (missing or unreadable config). */
int train_opts_load_run(train_opts *o, const char *dir, char *err, size_t errlen);

int run_supervised(train_opts *o);
int run_meta(train_opts *o, const arg_cmd *cmd);

/* Regression validation tasks (`eval --split val`) are drawn with the
 * evaluation seed XOR this constant ("valid"), so they never coincide with
 * the test tasks of --eval-seed and are the same for every run. */
#define ML_VAL_SEED_XOR 0x76616c6964ULL

#endif
