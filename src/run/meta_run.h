/* meta_run.h (internal to src/run): the state of one meta-learning run,
 * behind the public ml_run handle of metalearn/run.h: the task family or
 * image set, model, meta-learner, the task RNG and a reusable meta-batch,
 * plus checkpoints and the final evaluation. Not a public header: programs
 * use metalearn/run.h. */
#ifndef ML_RUN_META_RUN_H
#define ML_RUN_META_RUN_H

#include <stdio.h>

#include "metalearn/run.h"
#include "metalearn/images.h"
#include "metalearn/meta.h"
#include "metalearn/tasks.h"

/* Statuses of the internal steps, as the CLI's exit codes were: a failure
 * (bad data, a file) or a usage error (a setting); run.c maps them onto
 * ml_status (ML_ERR_IO, ML_ERR_ARG). */
enum { ML__RUN_FAIL = 1, ML__RUN_USAGE = 2 };

#include "metalearn/sources.h" /* ML_FASHION_MNIST_DIR */

typedef struct meta_run {
    char dir[2048];
    const char *model_spec;
    int threads;
    ml_algo algo;
    ml_task_family family;
    /* CSV families: the run's train / val / test tasks (RUN/split.json);
     * training draws from the train part only. */
    ml_task_split task_split;
    int has_task_split;
    /* The setup made a new split (classes or CSV tasks) for this run's
     * folder; meta_run_save_split writes it once the run may write at all. */
    int split_unsaved;
    /* eval --task SPEC: every task of this family is a test task */
    ml_task_family eval_family;
    int has_eval_family;
    ml_model model;
    ml_meta meta;
    /* --schedule over the outer iterations, as supervised training does over
     * its steps: a function of the iteration and --iters, so resume stays
     * bit-exact with the same --iters */
    ml_schedule outer_schedule;
    ml_rng rng; /* draws the training tasks; saved in checkpoints */
    /* the losses of the log line being averaged; saved in checkpoints, so a
     * resumed run's first line averages the same window as an uninterrupted one */
    double log_sum;
    int log_count;
    int meta_batch, shots, query;
    ml_regression_task *tasks; /* [meta_batch] buffers */
    ml_task_data *batch;       /* [meta_batch] views of them */
    int write_eval_file;
    int init_rates; /* Meta-SGD: --init FILE held learned rates (alpha.NAME), loaded with the parameters */
    int ready; /* what needs freeing */
    /* few-shot classification (fewshot.c) */
    int fewshot, ways;
    ml_image_set images;
    ml_class_split split;
    ml_class_list train_classes; /* the train split, with rotation classes when asked */
    ml_episode *episodes;        /* [meta_batch] reusable buffers */
    ml_augment augment;          /* training episodes only */
    /* Training episodes without augmentation are drawn in order on the
     * caller's thread and filled by the worker that runs them, into its slot
     * here ([threads][episode's images]): a meta-batch holds threads
     * episodes' images instead of meta_batch (fewshot_sample_batch). */
    float *fill_x;
    const char *data_name;       /* the dataset episodes come from (the run's, or eval --dataset) */
    int all_classes;             /* evaluation episodes over every class of data_name, not the test split */
    /* transfer baseline (--algo pretrain): one supervised minibatch per step */
    int step_tasks;              /* tasks per outer step: meta_batch, or 1 for pretrain */
    int batch_size;
    float *pre_x;                /* [batch_size, 1, S, S] */
    int32_t *pre_y;              /* [batch_size] index into train_classes */
    /* OML's class head (learner info class_head, training on images):
     * per task its classes as train_classes indices and its remembered images */
    int remember;
    int32_t *task_classes;       /* [meta_batch, ways] */
    float *rem_x;                /* [meta_batch, remember, 1, S, S] */
    int32_t *rem_y;              /* [meta_batch, remember] index into train_classes */
    struct task_selector *selector; /* training only (fewshot_select_setup); NULL = uniform */
    FILE *out;   /* the evaluation's table and JSON line (the caller's stream) */
    FILE *notes; /* one-line notes (data loaded, warnings); NULL: none */
    ml_run_eval_result *result; /* the final evaluation's numbers go here too, when set */
    struct fed_run *fed;        /* --federated (federated.c); NULL otherwise */
} meta_run;

/* Appends a row to res (run.c); 0 or -1 (out of memory). */
int ml__eval_result_add(ml_run_eval_result *res, const ml_run_eval_row *row);

/* few-shot classification pieces (fewshot.c) */
int fewshot_is_dataset(const char *dataset);
int fewshot_setup(meta_run *r, const ml_run_config *o, ml_model_spec *spec, char *err, size_t errlen);
void fewshot_free(meta_run *r);
int fewshot_sample_batch(meta_run *r, char *err, size_t errlen);
/* pretrain: one minibatch of --batch-size images of the training classes
 * (a class uniformly, then an image of it), labelled by class index. */
int fewshot_sample_pretrain(meta_run *r, char *err, size_t errlen);
/* Training only: the --task-sampler (NULL for uniform), its --target. */
int fewshot_select_setup(meta_run *r, const ml_run_config *o, char *err, size_t errlen);
/* After an outer step: feeds the episodes' losses to the sampler. */
void fewshot_after_step(meta_run *r);
int fewshot_final_eval(meta_run *r, const ml_run_config *o, int iterations, double train_s, int iters_run, char *err,
                       size_t errlen);
/* sep then a number as JSON (null when not finite: JSON has no NaN) into buf;
 * returns the length written. */
size_t ml__json_number(char *buf, size_t cap, const char *sep, double v);
/* "0.6,0.1,0.3" -> train, val, test fractions (each in [0, 1], sum <= 1); 0 or -1. */
int ml__parse_split_fractions(const char *s, double f[3]);
/* "5,10,20" -> {5, 10, 20}; returns the count or -1. */
int ml__parse_int_list(const char *s, int *out, int max, int min_value);

/* --federated (federated.c): the clients' partitions, checked before the
 * first round (0 or an exit status with err; nothing to do without
 * --federated), and one round: *loss is the clients' weighted mean loss. */
typedef struct fed_run fed_run;
struct ml_fed_transport;
int fed_setup(meta_run *r, const ml_run_config *o, char *err, size_t errlen);
void fed_free(meta_run *r);
void fed_use_transport(meta_run *r, struct ml_fed_transport *t);
int fed_round(meta_run *r, int round, double *loss, char *err, size_t errlen);
/* Clients and payload bytes of the last round (for the log line). */
void fed_last_round(const meta_run *r, int *clients, int64_t *bytes);
/* A batch of meta_batch tasks drawn by rng from a client's own pool: image
 * classes (fewshot.c) or a task family (meta_run.c). */
int fewshot_sample_from(meta_run *r, const ml_class_list *classes, ml_rng *rng, char *err, size_t errlen);
int meta_run_sample_from(meta_run *r, const ml_task_family *family, ml_rng *rng, char *err, size_t errlen);

/* The run folder: --out, or runs/ALGO-TASK-sSEED. */
void meta_run_dir(const ml_run_config *o, char *buf, size_t len);
/* An evaluation option as the user gave it: "eval-shots" is train's
 * --eval-shots but eval's --shots (likewise steps, query, ways). */
const char *meta_eval_option(const ml_run_config *o, const char *train_name, const char *eval_name);
/* Parses the settings, builds model and meta-learner (r->notes, set by the
 * caller, is kept; the rest of *r is overwritten). Returns 0, or an exit
 * status (1 failure, 2 usage) with err set and nothing left to free. */
int meta_run_setup(meta_run *r, const ml_run_config *o, char *err, size_t errlen);
/* Writes RUN/split.json if the setup made a new one (nothing otherwise).
 * Not part of the setup, which writes nothing: a setup that fails later
 * (or an mpirun job whose other process fails) must not leave a split
 * behind that makes the folder look like a run. */
int meta_run_save_split(meta_run *r, char *err, size_t errlen);
void meta_run_free(meta_run *r);
int meta_run_sample_batch(meta_run *r, char *err, size_t errlen);
int meta_run_save_checkpoint(meta_run *r, const char *path, int iteration, char *err, size_t errlen);
/* full: also restore the optimizer state and the task RNG (resume). */
int meta_run_load_checkpoint(meta_run *r, const char *path, int full, int *iteration, char *err, size_t errlen);
/* The validation metric of --val-every: few-shot runs, the mean accuracy on
 * --eval-tasks episodes of the validation classes (eval --split val's seed);
 * regression, the mean query MSE after the largest
 * --eval-steps on the validation tasks `eval --split val` uses (the CSV
 * split's validation tasks, or --eval-tasks synthetic tasks of the
 * validation seed), K = the first --eval-shots. Its generator is its own, so
 * training is unchanged. Returns 0 or ML__RUN_FAIL with err. */
int meta_run_validate(meta_run *r, const ml_run_config *o, double *val_mse, char *err, size_t errlen);

/* Evaluates on new tasks for every --eval-shots and prints the table (and
 * JSON) on r->out; returns 0 or ML__RUN_FAIL / ML__RUN_USAGE with err set. */
int meta_run_final_eval(meta_run *r, const ml_run_config *o, int iterations, double train_s, int iters_run, char *err,
                        size_t errlen);

/* The continual-learning protocol on the run's validation and test classes
 * (continual_run.c), its result saved in the run folder (continual.json or
 * continual_whole_network.json): 0 or ML__RUN_FAIL / ML__RUN_USAGE with err
 * set. */
struct ml_continual_options;
struct ml_continual_result;
int meta_run_continual(meta_run *r, const struct ml_continual_options *o, struct ml_continual_result *res, char *err,
                       size_t errlen);

#endif
