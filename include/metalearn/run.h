/* metalearn/run.h: a run of a learner, everything `metalearn train` and
 * `metalearn eval` do, as a library: its configuration (this part), and the
 * run itself (set up, step, checkpoint, resume, evaluate).
 *
 * The configuration is one typed struct with documented defaults
 * (ml_run_config_default) and one option table over it
 * (ml_run_config_options): the names, bounds and help of the CLI's flags, of
 * a run's config.json and of the Python package's keyword arguments. */
#ifndef METALEARN_RUN_H
#define METALEARN_RUN_H

#include <stddef.h>
#include <stdint.h>

#include "metalearn/options.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Text settings point at strings that outlive the config (literals, argv,
 * or the option pool of metalearn/options.h, which ml_options_set fills). */
typedef struct ml_run_config {
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
} ml_run_config;

/* The defaults (meta-learning defaults follow the MAML paper's sinusoid setup). */
void ml_run_config_default(ml_run_config *c);
/* The option table over c (pointers into c): n receives its length. The
 * table is static storage reused by every call: one config at a time. */
const ml_option *ml_run_config_options(ml_run_config *c, int *n);
/* The table as an option set named "train" (messages say "see metalearn
 * train --help"). */
ml_option_set ml_run_config_option_set(ml_run_config *c);

/* Defaults that depend on other settings (--eval-steps by algorithm,
 * --momentum: 0.9 supervised, 0 meta-learning, --meta-batch: the learner's,
 * see ml_algo_default_meta_batch), filled in after the settings are given,
 * so config.json records the values used. */
void ml_run_config_resolve(ml_run_config *c);

/* Defaults, then the settings a run folder saved in DIR/config.json, then
 * ml_run_config_resolve. Returns 0, or -1 with err set (missing or
 * unreadable config). */
int ml_run_config_load_run(ml_run_config *c, const char *dir, char *err, size_t errlen);

/* Settings of runs made by older versions, made to mean what they meant then
 * (call after reading DIR/config.json to resume DIR):
 * - a run written before few-shot IDX sets existed stored the supervised
 *   default "fashion-mnist" as its dataset; without a split.json it is a
 *   regression run: dataset cleared;
 * - before --momentum reached the outer optimizer of meta-learning, config.json
 *   recorded 0.9 while the outer step ran without momentum (its checkpoint has
 *   no momentum buffer): such a run resumes as it trained, momentum 0.
 * Returns 1 with a note for the user in note when something changed, else 0. */
int ml_run_config_legacy(ml_run_config *c, const char *dir, char *note, size_t notelen);

/* Regression validation tasks (`eval --split val`) are drawn with the
 * evaluation seed XOR this constant ("valid"), so they never coincide with
 * the test tasks of --eval-seed and are the same for every run. */
#define ML_VAL_SEED_XOR 0x76616c6964ULL

#ifdef __cplusplus
}
#endif
#endif
