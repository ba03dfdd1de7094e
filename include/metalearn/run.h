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

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "metalearn/core.h"
#include "metalearn/eval.h"
#include "metalearn/meta.h"
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
    /* federated meta-learning (metalearn/federated.h): an outer iteration is
     * a round of --client-fraction of the --clients clients, each running
     * --local-iters outer iterations on its own tasks; --rounds sets --iters */
    int federated, clients, local_iters, rounds;
    float client_fraction;
    /* meta-RL (metalearn/rl.h): --env selects it; the learner is --algo
     * maml|fomaml|pretrain|oracle of the RL table, the outer step --outer */
    const char *env, *outer;
    int rollouts, horizon;
    /* supervised: gradient shards per minibatch (metalearn/train.h); 0: not
     * set (one, or one per process under mpirun), resolved before config.json */
    int shards;
    /* --algo oml on images: remembered images of all training classes per
     * trajectory in the meta-loss (replay; 0: only the episode's own) */
    int remember;
    /* meta-RL evaluation: the adaptation rate, or rates to choose from on
     * validation tasks (NULL: --inner-lr) */
    const char *eval_lr;
    /* meta-RL evaluation: the steps after the first adapt at the rate times
     * this (1: every step alike; the MAML authors' evaluation uses 0.5) */
    float eval_later_scale;
    int low_memory; /* --low-memory: the meta-batch's tasks one at a time, threads inside each (ml_meta_config) */
    int exact_first_block; /* --exact-first-block: no lean first block in the query pass (ml_meta_config) */
} ml_run_config;

/* The defaults (meta-learning defaults follow the MAML paper's sinusoid setup). */
void ml_run_config_default(ml_run_config *c);
/* The option table over c (pointers into c): n receives its length. The
 * table is storage of the calling thread reused by its every call: one
 * config at a time per thread (threads may bind their own configs at once). */
const ml_option *ml_run_config_options(ml_run_config *c, int *n);
/* The table as an option set named "train" (messages say "see metalearn
 * train --help"). */
ml_option_set ml_run_config_option_set(ml_run_config *c);
/* Under mpirun, the start of a job: every process brings its set-up status
 * s (err: its message) and the settings c (but --threads, --quiet, --json)
 * with the build as a fingerprint; returns ML_OK on every process when all
 * are ready alike, else on every process the first failing rank's status
 * with err naming that rank (or the ranks whose settings differ). mode: a
 * number the processes must share (ml_run_mode). One process: returns s. */
ml_status ml_run_config_agree(ml_run_config *c, int mode, ml_status s, char *err, size_t errlen);

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

/* 1 when a --dataset spec names image classes for few-shot episodes
 * (omniglot:PATH[,PATH], fashion-mnist, idx:DIR, folder:DIR); regression
 * runs take --task instead. */
int ml_run_dataset_is_fewshot(const char *dataset);

/* ---- the run ----------------------------------------------------------------
 * One meta-learning run (regression tasks or few-shot episodes) behind an
 * opaque handle: what `metalearn train --algo maml|...` and `metalearn eval
 * RUN` do, for any program. A run folder holds config.json (the settings),
 * log.jsonl (a JSON object per log interval), checkpoint.safetensors
 * (parameters by name, learned extras, optimizer state as optim.<state>, and
 * in the metadata the iteration, the task RNG and the open log window, so a
 * resume continues bit for bit), split.json (few-shot classes, CSV tasks) and
 * eval.json (the final evaluation).
 *
 *     ml_run *run;
 *     if (ml_run_open(&run, &cfg, ML_RUN_NEW, NULL, err, sizeof err)) fail(err);
 *     if (ml_run_train(run, NULL, err, sizeof err)) fail(err);
 *     ml_run_eval_options eo = {.out = stdout};
 *     if (ml_run_evaluate(run, &eo, err, sizeof err)) fail(err);
 *     ml_run_close(run);
 *
 * A run belongs to one thread; it uses cfg->threads workers inside. */
typedef struct ml_run ml_run;

typedef enum {
    ML_RUN_NEW,    /* a new run in cfg->out (refused where a run is, unless cfg->overwrite) */
    ML_RUN_RESUME, /* continue the run in cfg->out from its checkpoint (cfg->iters may extend it) */
    ML_RUN_EVAL,   /* evaluate the run in cfg->out: parameters from its checkpoint, nothing written
                    * (cfg->model_only: the model alone, no data loaded, for ml_run_predict) */
    ML_RUN_SCRATCH /* train without a run folder's files: no config.json, split, log or checkpoints
                    * (cfg->out names the folder but nothing is written there): for benchmarks */
} ml_run_mode;

typedef struct ml_run_open_options {
    /* ML_RUN_EVAL: the checkpoint file (default: DIR/checkpoint.safetensors) */
    const char *checkpoint;
    /* One-line notes for a person (data loaded, warnings), unless cfg->quiet; NULL: none. */
    FILE *notes;
    /* --federated: the transport between server and clients (the caller's,
     * left open by ml_run_close); NULL: every client in this process. */
    struct ml_fed_transport *transport;
} ml_run_open_options;

/* Sets the run up from cfg (copied; its strings must outlive the run): checks
 * every setting against the data before any iteration, and for a new run
 * refuses a folder that holds a run (unless cfg->overwrite, which clears it),
 * makes the folder and writes config.json; resume loads the checkpoint and
 * trims the log to it; eval loads the checkpoint's parameters. opt may be
 * NULL. Returns ML_OK, ML_ERR_ARG for a bad setting (usage), or another
 * error for data and files, with a one-line message in err; *out is NULL
 * then.
 *
 * Under mpirun (metalearn/dist.h; MPI starts here if the program has not
 * started it) every process opens the same run with the same settings and
 * then makes the same calls in the same order: each outer step's tasks are
 * split over the processes and their meta-gradients summed in task order on
 * rank 0, so the result is bit-identical to one process; evaluations are
 * split likewise; rank 0 alone writes the run folder (the processes read it
 * on resume: keep it on a file system they share). A process that fails to
 * open (e.g. cannot read the data), or runs other settings or another build,
 * makes every process fail with its rank's message. */
ml_status ml_run_open(ml_run **out, const ml_run_config *cfg, ml_run_mode mode, const ml_run_open_options *opt,
                      char *err, size_t errlen);
void ml_run_close(ml_run *r);

/* What a banner or a status line needs. Strings belong to the run. */
typedef struct ml_run_info {
    const char *dir, *algo, *model_spec;
    int64_t n_params;
    int threads;
    int fewshot;         /* image episodes (else regression tasks) */
    int train_classes;   /* few-shot: training classes (rotations included) */
    int batch_size;      /* pretrain: minibatch */
    int init_rates;      /* Meta-SGD: --init FILE held learned rates */
    int has_inner_steps; /* the learner adapts by gradient steps */
    int iteration;       /* outer iterations done (the checkpoint's, then this session's) */
    int start_iteration; /* where this session began */
    int iters;           /* the run's --iters */
    double session_s;    /* training seconds of this session */
} ml_run_info;
void ml_run_get_info(const ml_run *r, ml_run_info *info);
int ml_run_iteration(const ml_run *r);
int ml_run_tasks_per_step(const ml_run *r); /* tasks (or minibatches) per outer step */
int ml_run_ways(const ml_run *r);           /* few-shot: the run's --ways; regression: 0 */
int ml_run_input_dim(const ml_run *r);      /* inputs of the model (regression: x_1..x_D) */
int ml_run_default_steps(const ml_run *r);  /* adaptation steps: the largest --eval-steps (0: no steps) */

/* One outer iteration: the outer learning rate of the schedule, a batch of
 * tasks (through the task sampler), the meta-step, the sampler's update, the
 * log line every cfg->log_every iterations (with the validation metric every
 * cfg->val_every), and a checkpoint when the checkpoint clock (iterations or
 * minutes) says so or at the stopping point (--stop-at / --iters). loss: the
 * iteration's mean task loss. A failure says which checkpoint is left. */
ml_status ml_run_step(ml_run *r, double *loss, char *err, size_t errlen);

/* Progress of ml_run_train, after every iteration. */
typedef struct ml_run_progress {
    int iteration, total; /* done, --iters */
    int start_iteration;  /* where this session began */
    double loss;          /* this iteration's */
    double log_loss;      /* the mean of the last log line (NAN before the first) */
    int logged;           /* a log line was written at this iteration */
    double rate;          /* iterations per second in this session */
} ml_run_progress;

typedef struct ml_run_callbacks {
    /* after every iteration; a non-zero return stops the run as *stop does */
    int (*on_iteration)(void *user, const ml_run_progress *p);
    void *user;
    /* polled before every iteration (a signal handler may set it); NULL: none */
    const volatile sig_atomic_t *stop;
} ml_run_callbacks;

/* Steps until cfg->iters or cfg->stop_at (the checkpoint is then saved).
 * Stopped by the callbacks, it saves the checkpoint and returns
 * ML_ERR_INTERRUPTED (err says so and how to resume). cb may be NULL. */
ml_status ml_run_train(ml_run *r, const ml_run_callbacks *cb, char *err, size_t errlen);

/* Writes DIR/checkpoint.safetensors at the current iteration (atomically). */
ml_status ml_run_save_checkpoint(ml_run *r, char *err, size_t errlen);

typedef struct ml_run_eval_options {
    FILE *out;            /* the table and, with cfg->json, the JSON line (NULL: stdout) */
    ml_progress progress; /* evaluated tasks, as the evaluation goes */
} ml_run_eval_options;

/* The final evaluation, exactly what `metalearn train` ends with and
 * `metalearn eval` prints: for every --eval-shots and --eval-steps the mean
 * query MSE (regression) or accuracy (few-shot) with a 95% interval, Lake's
 * runs with --lake-runs; a new or resumed run also writes DIR/eval.json. */
ml_status ml_run_evaluate(ml_run *r, const ml_run_eval_options *o, char *err, size_t errlen);

/* The evaluation as numbers: one row per reported (shots, steps) pair, as
 * the table and the --json line give them. */
typedef struct ml_run_eval_row {
    int ways, queries;  /* few-shot episodes (0 for regression) */
    int shots, steps;
    double mean, ci95;  /* query MSE (regression) or accuracy (few-shot); NAN if diverged */
    int diverged_tasks; /* regression: tasks whose loss is not finite */
} ml_run_eval_row;

typedef struct ml_run_eval_result {
    int fewshot;            /* mean is accuracy (else MSE) */
    int n_rows;
    ml_run_eval_row *rows;  /* [n_rows] */
    int lake_runs;          /* Lake's runs evaluated (0: none) */
    int lake_steps;
    double *lake_errors;    /* [lake_runs] error rate per run */
    double lake_mean_error;
    char *json;             /* the --json line of `metalearn eval` / train (no newline) */
    int rl;                 /* a meta-RL run: mean is the return, steps the adaptation steps */
    double eval_lr;         /* meta-RL: the adaptation rate used */
} ml_run_eval_result;

/* ml_run_evaluate without printing: the numbers in *res (free it with
 * ml_run_eval_result_free); a new or resumed run also writes eval.json. */
ml_status ml_run_evaluate_result(ml_run *r, const ml_progress *progress, ml_run_eval_result **res, char *err,
                                 size_t errlen);
void ml_run_eval_result_free(ml_run_eval_result *res);

/* Adapts the run's learned initialisation to task's support set for steps
 * adaptation steps (learners without steps: their episode head) and predicts
 * its query set: regression, out [n_query] outputs; classification (task->ways
 * classes, labels ls), pred [n_query] classes and out [n_query, ways] scores
 * (logits). task->yq / lq may be NULL: they are not used to adapt.
 * progress reports the adaptation steps. */
ml_status ml_run_predict(ml_run *r, const ml_task_data *task, int steps, const ml_progress *progress, int32_t *pred,
                         float *out, char *err, size_t errlen);

/* ---- continual learning (metalearn/continual.h) -------------------------------
 * The run's representation (the learned network without its last layer; an
 * embedding as it is) through OML's protocol: its test classes learned one
 * after another by a new head, the rate chosen on its validation classes.
 * Any learner's run goes through it; note receives one line for a person when
 * the run is not an OML run (its representation was not meta-learned for this,
 * but is used the same way), else "". Few-shot image runs only. The result
 * is saved as RUN/continual.json (whole network: continual_whole_network.json;
 * ml_continual_to_json's line, written atomically), which `metalearn plot`
 * draws. */
struct ml_continual_options;
struct ml_continual_result;
ml_status ml_run_continual(ml_run *r, const struct ml_continual_options *o, struct ml_continual_result *res,
                           char *note, size_t notelen, char *err, size_t errlen);

/* ---- meta-RL runs (metalearn/rl.h) -------------------------------------------
 * cfg->env set: ml_run_open opens a meta-RL run, and the calls above act on
 * it (train, step, save, evaluate, info; predict and continual refuse it).
 * Its folder: config.json, log.jsonl (a line per outer iteration: iter,
 * return_before, return_after, loss, kl, elapsed_s), checkpoint.safetensors
 * (parameters, Adam state and iteration: the tasks of an iteration come from
 * (seed, iteration), so a resume continues bit for bit) and eval.json, which
 * every evaluation writes (an evaluation-only open too: plot draws it).
 * --algo random is the untrained initialisation: training saves it at
 * iteration 0. The evaluation reports the mean return before and after each
 * count of cfg->eval_steps adaptation steps on cfg->eval_tasks test tasks
 * (eval_val: validation tasks) as rows (steps, mean = return, ci95); the
 * steps are taken at cfg->eval_lr, or at the best of its rates on as many
 * validation tasks, or at the inner rate. One process only: under mpirun
 * with N > 1 it is refused. */
int ml_run_config_is_rl(const ml_run_config *c);

#define ML_RL_EVAL_MAX_STEPS 32

/* `metalearn plot RUN...` for meta-RL runs: in out (made if missing)
 * rl_returns.png (return vs adaptation steps, a line per run with an
 * eval.json, 95% intervals) and, for 2D navigation, rl_trajectories.png
 * (trajectories of a test task of the first run before and after 1 and 3
 * adaptation steps at its evaluation's rates, those of its eval.json or
 * else of its --eval-lr and --eval-later-scale; the goal marked). written
 * gets the files' paths. */
ml_status ml_rl_run_plot(const char *const *runs, int n_runs, const char *out, char *written, size_t written_len,
                         char *err, size_t errlen);

/* ---- supervised training's run folder (src/run/supervised_run.c) ---------------------- */
struct ml_epoch_report;
/* cfg->out (NULL: no folder, ML_OK): a new run (resume 0) refuses a folder
 * holding a run unless cfg->overwrite, makes it and writes config.json (rank 0
 * alone); resume checks that the checkpoint is there. lock non-NULL: rank 0
 * takes the folder for this process (ml_rundir_lock; *lock for
 * ml_rundir_unlock), a new run before a replaced run's files are cleared. */
ml_status ml_supervised_rundir_open(const ml_run_config *cfg, int resume, int *lock, char *err, size_t errlen);
/* Appends the epoch's line to DIR/log.jsonl (rank 0 alone; dir NULL: nothing). */
ml_status ml_supervised_rundir_log(const char *dir, const struct ml_epoch_report *r, char *err, size_t errlen);

/* ---- supervised runs: setup, training and evaluation (src/run/supervised_run.c) ----- */
typedef struct ml_supervised_result {
    ml_confusion conf; /* the test split's; n_classes 0 on MPI ranks other than 0 (rank 0 evaluates) */
    int64_t train_examples, test_examples, parameters;
    int channels, height, width;
    int threads, shards;
    int epochs_done; /* train: epochs run by this call; evaluate: epochs the checkpoint holds */
    double final_train_loss, final_train_accuracy; /* of the last epoch trained (train only) */
    double train_seconds, eval_seconds;
    int usage; /* on failure, 1 when a setting was refused (a usage error), else 0 */
} ml_supervised_result;

typedef struct ml_supervised_hooks {
    /* Once the data and model are ready, before the first epoch (every rank). */
    void (*on_start)(const ml_run_config *cfg, const ml_supervised_result *r, void *user);
    /* After every epoch, on every rank, once its line is in RUN/log.jsonl;
     * log_error: why the line could not be written (training goes on), else NULL. */
    void (*on_epoch)(const struct ml_epoch_report *r, const char *log_error, void *user);
    void *user;
} ml_supervised_hooks;

/* `metalearn train --algo supervised`: fills the defaults of cfg (model mlp,
 * dataset fashion-mnist, shards: the processes), checks every setting
 * against the data, loads the IDX splits (train cut to --limit), normalises
 * both with the training images' channel statistics, builds and initialises
 * the model, opens the run folder (cfg->out) and trains, resuming when
 * cfg->resume. Rank 0 then evaluates on the test split into out. stop: see
 * ml_supervised_config (ML_ERR_INTERRUPTED, checkpoint saved). hooks may be
 * NULL. Free out with ml_supervised_result_free, whatever the status. */
ml_status ml_supervised_run_train(ml_run_config *cfg, const volatile sig_atomic_t *stop, const ml_supervised_hooks *hooks,
                                  ml_supervised_result *out, char *err, size_t errlen);

/* `metalearn eval RUN` on a supervised run: its config.json, the weights of
 * checkpoint (NULL: RUN/checkpoint.safetensors), the normalisation recomputed
 * from the same training images as training (--limit), then the test split
 * into out. threads > 0: worker threads. */
ml_status ml_supervised_run_evaluate(const char *run_dir, const char *checkpoint, int threads, ml_supervised_result *out,
                                     char *err, size_t errlen);
void ml_supervised_result_free(ml_supervised_result *r); /* zeroed is fine */

#ifdef __cplusplus
}
#endif
#endif
