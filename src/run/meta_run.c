/* meta_run.c: setting up a meta-learning run, its checkpoints and its final
 * evaluation (see meta_run.h). */
#include "run/meta_run.h"

#include <inttypes.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run/task_select.h"
#include "metalearn/dist.h"
#include "metalearn/eval.h"
#include "metalearn/io.h"
#include "metalearn/sources.h"
#include "metalearn/taskeval.h"

#define MAX_LIST 16

int ml__parse_int_list(const char *s, int *out, int max, int min_value) {
    int n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < min_value || v > 1000000 || n == max || (*end && *end != ',')) return -1;
        out[n++] = (int)v;
        p = *end ? end + 1 : end;
    }
    return n;
}

int ml__parse_split_fractions(const char *s, double f[3]) {
    char *end;
    for (int i = 0; i < 3; i++) {
        f[i] = strtod(s, &end);
        if (end == s || f[i] < 0 || f[i] > 1 || (i < 2 && *end != ',') || (i == 2 && *end)) return -1;
        s = end + 1;
    }
    return f[0] + f[1] + f[2] <= 1.0 + 1e-9 ? 0 : -1;
}

/* A CSV family's task split: made once from the seed (as image classes are
 * split) and written to RUN/split.json, then read back by resume and eval;
 * training draws from its train part only. */
static int csv_split_setup(meta_run *r, const ml_run_config *o, char *err, size_t errlen) {
    char path[2200];
    snprintf(path, sizeof path, "%s/split.json", r->dir);
    double fr[3];
    if (ml__parse_split_fractions(o->split, fr)) {
        snprintf(err, errlen, "--split '%s': expected three fractions train,val,test summing to at most 1", o->split);
        return ML__RUN_USAGE;
    }
    int exists = access(path, F_OK) == 0;
    if (exists && !(o->overwrite && !o->resume && !o->eval_only)) {
        if (ml_task_split_read_json(path, &r->family, &r->task_split, err, errlen)) return ML__RUN_FAIL;
    } else if (o->resume || o->eval_only) {
        snprintf(err, errlen, "%s has no split.json: it was trained on every task of %s (before CSV task splits); "
                              "evaluate it on held-out tasks with eval %s --task csv:FILE", r->dir, r->family.path, r->dir);
        return ML__RUN_FAIL;
    } else {
        ml_rng split_rng;
        ml_rng_seed(&split_rng, o->seed ^ 0x73706c6974ULL);
        if (ml_task_split_make(&r->family, fr, &split_rng, &r->task_split, err, errlen)) {
            snprintf(err + strlen(err), errlen - strlen(err),
                     " (--split %s; with few tasks use --split 1,0,0 and eval --task csv:HELD_OUT.csv)", o->split);
            return ML__RUN_USAGE;
        }
        r->split_unsaved = 1; /* written by meta_run_save_split once the setup has succeeded */
    }
    r->has_task_split = 1;
    if (r->task_split.n[ML_TASK_PART_TRAIN] < 1) {
        snprintf(err, errlen, "%s: the split leaves no training task (--split %s)", path, o->split);
        return ML__RUN_USAGE;
    }
    if (ml_task_family_draw_from(&r->family, r->task_split.idx[ML_TASK_PART_TRAIN], r->task_split.n[ML_TASK_PART_TRAIN],
                                 err, errlen))
        return ML__RUN_FAIL;
    return 0;
}

int meta_run_save_split(meta_run *r, char *err, size_t errlen) {
    if (!r->split_unsaved) return 0;
    char path[2200];
    snprintf(path, sizeof path, "%s/split.json", r->dir);
    int failed = r->fewshot ? ml_class_split_write_json(&r->split, &r->images, path, err, errlen) != ML_OK
                            : ml_task_split_write_json(&r->task_split, &r->family, path, err, errlen) != ML_OK;
    if (failed) return ML__RUN_FAIL;
    r->split_unsaved = 0;
    return 0;
}

/* --init names an initialisation scheme or a .safetensors file of parameters. */
static const char *meta_init_file(const char *init) {
    size_t n = strlen(init);
    return n > 12 && !strcmp(init + n - 12, ".safetensors") ? init : NULL;
}

static int setup(meta_run *r, const ml_run_config *o, char *err, size_t errlen);
static int val_check(const meta_run *r, const ml_run_config *o, char *err, size_t errlen);

void meta_run_dir(const ml_run_config *o, char *buf, size_t len) {
    if (o->out) {
        snprintf(buf, len, "%s", o->out);
        return;
    }
    char task[64];
    snprintf(task, sizeof task, "%s", fewshot_is_dataset(o->dataset) ? "omniglot" : o->task);
    for (char *c = task; *c; c++)
        if (*c == '/' || *c == ':' || *c == '.') *c = '_';
    snprintf(buf, len, "runs/%s-%s-s%" PRIu64, o->algo, task, o->seed);
}

/* Options of the transfer baseline that only make sense with it (or only
 * without it). */
static int pretrain_check(meta_run *r, const ml_run_config *o, char *err, size_t errlen) {
    const char *ft = o->finetune ? o->finetune : "head";
    if (strcmp(ft, "head") && strcmp(ft, "all")) {
        snprintf(err, errlen, "--finetune '%s': expected head or all", ft);
        return ML__RUN_USAGE;
    }
    if (!ml_algo_info(r->algo)->batch_training) {
        if (!strcmp(ft, "all")) {
            snprintf(err, errlen, "--finetune all: only --algo pretrain fine-tunes a new head (got --algo %s)", o->algo);
            return ML__RUN_USAGE;
        }
        return 0;
    }
    if (!r->fewshot) {
        char list[256];
        snprintf(err, errlen, "--algo %s: needs an image dataset (--dataset %s); for regression tasks use --algo multitask",
                 ml_algo_name(r->algo), ml_source_list(list, sizeof list, ML_SOURCE_IMAGES, 0, " or "));
        return ML__RUN_USAGE;
    }
    return 0;
}

/* Every support / query count the run will ask of its tasks, checked before
 * the first iteration: training's --shots and --query, then each evaluation
 * shot count and --eval-query (a CSV task with fewer rows used to fail at the
 * first step, or only after training). */
static int check_task_rows(const ml_task_family *f, const ml_run_config *o, char *err, size_t errlen) {
    char why[512];
    if (o->model_only) return 0; /* predict: no tasks drawn */
    if (!o->eval_only) {
        if (ml_task_family_check(f, o->shots, -1, why, sizeof why)) {
            snprintf(err, errlen, "--shots %d: %s", o->shots, why);
            return ML__RUN_USAGE;
        }
        if (ml_task_family_check(f, -1, o->query, why, sizeof why)) {
            snprintf(err, errlen, "--query %d: %s", o->query, why);
            return ML__RUN_USAGE;
        }
    }
    if (o->eval_tasks < 1) return 0;
    int shots[MAX_LIST], n = o->eval_shots ? ml__parse_int_list(o->eval_shots, shots, MAX_LIST, 1) : 1;
    if (!o->eval_shots) shots[0] = o->shots;
    for (int i = 0; i < n; i++)
        if (ml_task_family_check(f, shots[i], -1, why, sizeof why)) {
            snprintf(err, errlen, "%s %d: %s",
                     o->eval_shots ? meta_eval_option(o, "--eval-shots", "--shots") : "--shots (evaluated)", shots[i],
                     why);
            return ML__RUN_USAGE;
        }
    if (ml_task_family_check(f, -1, o->eval_query, why, sizeof why)) {
        snprintf(err, errlen, "%s %d: %s", meta_eval_option(o, "--eval-query", "--query"), o->eval_query, why);
        return ML__RUN_USAGE;
    }
    return 0;
}

/* Room for q query points; q = 0 (all rows of a CSV task) needs the largest task's. */
static int query_cap(const ml_task_family *f, int q) {
    int most;
    ml_task_family_max_points(f, NULL, &most);
    return q > 0 ? q : most > 0 ? most : 1;
}

const char *meta_eval_option(const ml_run_config *o, const char *train_name, const char *eval_name) {
    return o->eval_only ? eval_name : train_name;
}

int meta_run_setup(meta_run *r, const ml_run_config *o, char *err, size_t errlen) {
    FILE *notes = r->notes; /* the one field the caller sets first */
    memset(r, 0, sizeof *r);
    r->notes = notes;
    r->out = stdout;
    int status = setup(r, o, err, errlen);
    if (status) meta_run_free(r); /* a failed setup leaves nothing to free */
    return status;
}

static int setup(meta_run *r, const ml_run_config *o, char *err, size_t errlen) {
    if (ml_algo_parse(o->algo, &r->algo)) {
        snprintf(err, errlen, "--algo '%s': unknown", o->algo);
        return ML__RUN_USAGE;
    }
    int min_steps = ml_algo_info(r->algo)->min_inner_steps;
    if (o->inner_steps < min_steps) { /* a usage error now, not the learner's refusal after the data is read */
        snprintf(err, errlen, "--inner-steps %d: --algo %s adapts by inner steps and needs at least %d", o->inner_steps,
                 o->algo, min_steps);
        return ML__RUN_USAGE;
    }
    if (o->remember != 15 && !ml_algo_reads_option(r->algo, "remember")) {
        snprintf(err, errlen, "--remember: only --algo oml and oml-fo replay remembered images (got --algo %s)", o->algo);
        return ML__RUN_USAGE;
    }
    if (o->matching_scale > 0 && !ml_algo_reads_option(r->algo, "matching-scale")) {
        snprintf(err, errlen, "--matching-scale: only --algo matching has a cosine scale (got --algo %s)", o->algo);
        return ML__RUN_USAGE;
    }
    ml_optim_kind outer_kind;
    if (ml_optim_kind_parse(o->optimizer, &outer_kind)) {
        snprintf(err, errlen, "--optimizer '%s': expected sgd, adagrad, rmsprop, adam or adamw", o->optimizer);
        return ML__RUN_USAGE;
    }
    ml_init_kind init_kind = ML_INIT_TORCH;
    const char *init_file = meta_init_file(o->init);
    if (!init_file && ml_init_kind_parse(o->init, &init_kind)) {
        snprintf(err, errlen, "--init '%s': expected torch, kaiming, xavier or FILE.safetensors", o->init);
        return ML__RUN_USAGE;
    }
    int tmp[MAX_LIST];
    if (o->eval_shots && ml__parse_int_list(o->eval_shots, tmp, MAX_LIST, 1) < 1) {
        snprintf(err, errlen, "%s '%s': expected positive integers like 5,10,20",
                 meta_eval_option(o, "--eval-shots", "--shots"), o->eval_shots);
        return ML__RUN_USAGE;
    }
    ml_schedule_kind sched_kind;
    if (ml_schedule_kind_parse(o->schedule, &sched_kind)) {
        snprintf(err, errlen, "--schedule '%s': expected constant, step or cosine", o->schedule);
        return ML__RUN_USAGE;
    }
    r->outer_schedule = (ml_schedule){.kind = sched_kind,
                                      .base_lr = o->outer_lr,
                                      .step_size = o->iters > 3 ? o->iters / 3 : 1,
                                      .gamma = 0.1,
                                      .total_steps = o->iters,
                                      .min_lr = 0};
    if (o->lake_steps > 0 && !o->lake_runs) {
        snprintf(err, errlen, "--lake-steps %d: there are no Lake's runs to label (give --lake-runs PATH)", o->lake_steps);
        return ML__RUN_USAGE;
    }
    if (ml__parse_int_list(o->eval_steps, tmp, MAX_LIST, 0) < 1) {
        snprintf(err, errlen, "%s '%s': expected integers like 1,10", meta_eval_option(o, "--eval-steps", "--steps"),
                 o->eval_steps);
        return ML__RUN_USAGE;
    }
    r->fewshot = fewshot_is_dataset(o->dataset);
    if (o->dataset && !r->fewshot) {
        char list[256];
        snprintf(err, errlen, "--dataset '%s': unknown for meta-learning (expected %s; regression tasks take --task)",
                 o->dataset, ml_source_list(list, sizeof list, ML_SOURCE_IMAGES, 0, " or "));
        return ML__RUN_USAGE;
    }
    int st_pre = pretrain_check(r, o, err, errlen);
    if (st_pre) return st_pre;
    char why[256];
    if (ml_algo_check_loss(r->algo, r->fewshot ? ML_LOSS_CROSS_ENTROPY : ML_LOSS_MSE, why, sizeof why)) {
        snprintf(err, errlen, "--algo %s with --task %s: %s", o->algo, o->task ? o->task : "(none)", why);
        return ML__RUN_USAGE;
    }
    meta_run_dir(o, r->dir, sizeof r->dir);
    r->model_spec = o->model ? o->model : r->fewshot ? "cnn4" : "mlp:40,40";
    ml_model_spec spec;
    if (ml_model_spec_parse(r->model_spec, &spec, err, errlen)) return ML__RUN_USAGE;
    if (r->fewshot) {
        if (spec.kind != ML_MODEL_CNN4) {
            snprintf(err, errlen, "--model %s: image episodes take a cnn4 model", r->model_spec);
            return ML__RUN_USAGE;
        }
        int st = fewshot_setup(r, o, &spec, err, errlen);
        if (st) return st;
    } else {
        if (spec.kind != ML_MODEL_MLP) {
            snprintf(err, errlen, "--model %s: regression tasks take an mlp model", r->model_spec);
            return ML__RUN_USAGE;
        }
        if (ml_task_family_init(&r->family, o->task, err, errlen)) return ML__RUN_FAIL;
        r->ready = 1; /* the family is freed from here on */
        if (o->eval_task) { /* eval --task: held-out tasks; the run's split does not matter */
            if (ml_task_family_init(&r->eval_family, o->eval_task, err, errlen)) return ML__RUN_FAIL;
            r->has_eval_family = 1;
            if (r->eval_family.in_dim != r->family.in_dim) {
                snprintf(err, errlen, "--task %s: tasks have %d inputs, the run's model takes %d", o->eval_task,
                         r->eval_family.in_dim, r->family.in_dim);
                return ML__RUN_USAGE;
            }
        } else if (r->family.kind == ML_TASKS_CSV) {
            int st = csv_split_setup(r, o, err, errlen);
            if (st) return st;
        }
        int st_rows = check_task_rows(r->has_eval_family ? &r->eval_family : &r->family, o, err, errlen);
        if (st_rows) return st_rows;
        spec.in_c = r->family.in_dim;
        spec.in_h = spec.in_w = 1;
        spec.n_out = 1;
    }
    r->ready = 1;
    if (ml_model_init(&r->model, &spec, err, errlen)) return ML__RUN_FAIL;
    r->ready = 2;
    ml_rng init_rng;
    ml_rng_seed(&init_rng, o->seed);
    ml_model_init_params(&r->model, init_kind, &init_rng);
    /* Tasks come from their own stream, so changing the model does not
     * change which tasks a seed draws. */
    ml_rng_seed(&r->rng, o->seed ^ 0x7461736b73ULL);

    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    r->threads = o->threads > 0 ? o->threads : (int)(cores > 0 ? cores : 1);
    /* Parallel across tasks, one thread inside each op: also what makes the
     * result independent of the thread count. */
    omp_set_num_threads(1);

    ml_meta_config cfg = {.algo = r->algo,
                          .loss = r->fewshot ? ML_LOSS_CROSS_ENTROPY : ML_LOSS_MSE,
                          .inner_steps = o->inner_steps,
                          .inner_lr = o->inner_lr,
                          .outer = ml_optim_config_default(outer_kind),
                          .threads = r->threads};
    cfg.outer.lr = o->outer_lr;
    /* Every outer-optimizer option config.json records reaches the optimizer. */
    if (outer_kind == ML_OPTIM_SGD || outer_kind == ML_OPTIM_RMSPROP) cfg.outer.momentum = o->momentum > 0 ? o->momentum : 0;
    cfg.matching_scale = o->matching_scale; /* > 0 only for a learner that reads it (checked above) */
    cfg.low_memory = o->low_memory;
    cfg.exact_first_block = o->exact_first_block;
    if (ml_algo_info(r->algo)->batch_training) {
        /* The head spans every training class (rotations included); eval
         * and predict need none, whatever dataset they read. */
        cfg.pretrain_classes = o->eval_only ? 0 : r->train_classes.n;
        cfg.finetune_all = o->finetune && !strcmp(o->finetune, "all");
    }
    /* OML on images: the head over every training class (evaluation and
     * regression tasks need none: a new head per episode, the model's own). */
    int class_head = ml_algo_info(r->algo)->class_head && r->fewshot && !o->eval_only;
    if (class_head) cfg.pretrain_classes = r->train_classes.n;
    /* (float) compare: the default 1e-2 of AdamW stays the exact double PyTorch uses */
    if (o->weight_decay >= 0 && (float)cfg.outer.weight_decay != o->weight_decay) cfg.outer.weight_decay = o->weight_decay;
    r->meta_batch = o->meta_batch;
    r->shots = o->shots;
    r->query = o->query;
    if (ml_meta_init(&r->meta, &r->model, &cfg, o->meta_batch, err, errlen)) return ML__RUN_FAIL;
    r->ready = 3;
    r->batch = calloc((size_t)o->meta_batch, sizeof *r->batch);
    if (!r->batch) {
        snprintf(err, errlen, "out of memory");
        return ML__RUN_FAIL;
    }
    if (!r->fewshot) {
        r->tasks = calloc((size_t)o->meta_batch, sizeof *r->tasks);
        if (!r->tasks) {
            snprintf(err, errlen, "out of memory");
            return ML__RUN_FAIL;
        }
        for (int i = 0; i < o->meta_batch; i++)
            if (ml_regression_task_alloc(&r->tasks[i], o->shots, query_cap(&r->family, o->query), r->family.in_dim)) {
                snprintf(err, errlen, "out of memory for %d tasks", o->meta_batch);
                return ML__RUN_FAIL;
            }
    }
    r->step_tasks = o->meta_batch;
    if (ml_algo_info(r->algo)->batch_training && !o->eval_only) {
        r->step_tasks = 1;
        r->batch_size = o->batch_size;
        size_t plane = (size_t)r->images.size * r->images.size;
        r->pre_x = malloc((size_t)o->batch_size * plane * sizeof(float));
        r->pre_y = malloc((size_t)o->batch_size * sizeof(int32_t));
        if (!r->pre_x || !r->pre_y) {
            snprintf(err, errlen, "out of memory for a minibatch of %d images", o->batch_size);
            return ML__RUN_FAIL;
        }
    }
    if (class_head) {
        size_t plane = (size_t)r->images.size * r->images.size, mb = (size_t)o->meta_batch;
        r->remember = o->remember;
        r->task_classes = malloc(mb * (size_t)o->ways * sizeof(int32_t));
        r->rem_x = malloc(mb * (size_t)(o->remember > 0 ? o->remember : 1) * plane * sizeof(float));
        r->rem_y = malloc(mb * (size_t)(o->remember > 0 ? o->remember : 1) * sizeof(int32_t));
        if (!r->task_classes || !r->rem_x || !r->rem_y) {
            snprintf(err, errlen, "out of memory for %d remembered images per task", o->remember);
            return ML__RUN_FAIL;
        }
    }
    r->write_eval_file = ml_dist_rank() == 0; /* one process writes the run folder */
    int st_val = val_check(r, o, err, errlen);
    if (st_val) return st_val;
    if (!o->eval_only && !o->model_only) {
        int st_fed = fed_setup(r, o, err, errlen);
        if (st_fed) return st_fed;
    }
    if (init_file) {
        int it;
        if (meta_run_load_checkpoint(r, init_file, -1, &it, err, errlen)) return ML__RUN_FAIL;
    }
    return 0;
}

/* --val-every needs validation tasks and a log line to carry the value. */
static int val_check(const meta_run *r, const ml_run_config *o, char *err, size_t errlen) {
    if (o->val_every <= 0) return 0;
    if (o->val_every % o->log_every) {
        snprintf(err, errlen, "--val-every %d: must be a multiple of --log-every %d (the value goes on a log line)",
                 o->val_every, o->log_every);
        return ML__RUN_USAGE;
    }
    int ways = o->eval_ways > 0 ? o->eval_ways : r->ways;
    if (r->fewshot && r->split.part[ML_SPLIT_VAL].n < ways) {
        snprintf(err, errlen, "--val-every: the split has %d validation classes, fewer than %d ways (--split %s)",
                 r->split.part[ML_SPLIT_VAL].n, ways, o->split);
        return ML__RUN_USAGE;
    }
    if (r->has_task_split && r->task_split.n[ML_TASK_PART_VAL] < 1) {
        snprintf(err, errlen, "--val-every: the split has no validation tasks (--split %s)", o->split);
        return ML__RUN_USAGE;
    }
    return 0;
}

int meta_run_validate(meta_run *r, const ml_run_config *o, double *val_mse, char *err, size_t errlen) {
    int shots[MAX_LIST] = {o->shots}, steps[MAX_LIST], max_steps = 0;
    if (o->eval_shots) ml__parse_int_list(o->eval_shots, shots, MAX_LIST, 1);
    int n_steps = ml__parse_int_list(o->eval_steps, steps, MAX_LIST, 0);
    for (int i = 0; i < n_steps; i++) max_steps = steps[i] > max_steps ? steps[i] : max_steps;
    if (r->fewshot) { /* accuracy on episodes of the validation classes, as eval --split val draws them */
        const ml_class_list *val = &r->split.part[ML_SPLIT_VAL];
        int min_images = INT32_MAX;
        for (int i = 0; i < val->n; i++) {
            int64_t c = val->items[i].cls, k = r->images.class_start[c + 1] - r->images.class_start[c];
            if (k < min_images) min_images = (int)k;
        }
        int q = o->eval_query < min_images - shots[0] ? o->eval_query : min_images - shots[0];
        if (q < 1) {
            snprintf(err, errlen, "the validation classes have %d images, no query beside %d shots", min_images, shots[0]);
            return ML__RUN_FAIL;
        }
        ml_rng rng;
        ml_rng_seed(&rng, o->eval_seed);
        return ml_episode_eval_acc(&r->meta, &r->images, val, o->eval_ways > 0 ? o->eval_ways : r->ways, shots[0], q,
                                   o->eval_tasks > 0 ? o->eval_tasks : 600, r->meta_batch, &rng,
                                   ml_algo_has_inner_steps(r->algo) ? max_steps : 0, val_mse, err, errlen)
                   ? ML__RUN_FAIL
                   : 0;
    }
    const int32_t *idx = r->has_task_split ? r->task_split.idx[ML_TASK_PART_VAL] : NULL;
    int n = r->has_task_split ? r->task_split.n[ML_TASK_PART_VAL] : o->eval_tasks > 0 ? o->eval_tasks : 600;
    ml_rng rng; /* the validation seed of eval --split val, fresh each time: the same tasks at every point */
    ml_rng_seed(&rng, o->eval_seed ^ ML_VAL_SEED_XOR);
    return ml_task_eval_mean(&r->meta, &r->family, idx, n, &rng, shots[0], o->eval_query, max_steps, val_mse, err,
                             errlen) ? ML__RUN_FAIL : 0;
}

void meta_run_free(meta_run *r) {
    fed_free(r);
    if (r->tasks)
        for (int i = 0; i < r->meta_batch; i++) ml_regression_task_free(&r->tasks[i]);
    free(r->tasks);
    free(r->batch);
    free(r->pre_x);
    free(r->pre_y);
    free(r->task_classes);
    free(r->rem_x);
    free(r->rem_y);
    if (r->ready >= 3) ml_meta_free(&r->meta);
    if (r->ready >= 2) ml_model_free(&r->model);
    if (r->ready >= 1) ml_task_family_free(&r->family);
    ml_task_family_free(&r->eval_family);
    ml_task_split_free(&r->task_split);
    fewshot_free(r);
    memset(r, 0, sizeof *r);
}

static ml_task_data view(const ml_regression_task *t) {
    return (ml_task_data){.n_support = t->k, .n_query = t->q, .xs = t->xs, .xq = t->xq, .ys = t->ys, .yq = t->yq};
}

static void fill_targets(int item, int worker, void *user) {
    (void)worker;
    meta_run *r = user;
    ml_task_fill_targets(&r->family, &r->tasks[item]);
}

int meta_run_sample_batch(meta_run *r, char *err, size_t errlen) {
    if (ml_algo_info(r->algo)->batch_training) return fewshot_sample_pretrain(r, err, errlen);
    if (r->fewshot) return fewshot_sample_batch(r, err, errlen);
    /* The random numbers in order on this thread, the targets (sin of the
     * points) by the worker that runs the task: same tasks, less serial
     * time, and no extra hand-over to the threads. */
    for (int i = 0; i < r->meta_batch; i++) {
        if (ml_task_sample_draws(&r->family, &r->rng, r->shots, r->query, &r->tasks[i], err, errlen))
            return ML__RUN_FAIL;
        r->batch[i] = view(&r->tasks[i]);
    }
    r->meta.prepare_task = fill_targets;
    r->meta.prepare_user = r;
    return 0;
}

int meta_run_sample_from(meta_run *r, const ml_task_family *family, ml_rng *rng, char *err, size_t errlen) {
    for (int i = 0; i < r->meta_batch; i++) {
        if (ml_task_sample(family, rng, r->shots, r->query, &r->tasks[i], err, errlen)) return ML__RUN_FAIL;
        r->batch[i] = view(&r->tasks[i]);
    }
    return 0;
}

/* ---- checkpoints -------------------------------------------------------------------------- */

#define MAX_TENSORS (3 * ML_MAX_PARAMS + 11)
int meta_run_save_checkpoint(meta_run *r, const char *path, int iteration, char *err, size_t errlen) {
    ml_model *m = &r->model;
    ml_meta *mm = &r->meta;
    ml_st_tensor ts[MAX_TENSORS];
    char names[MAX_TENSORS][ML_PARAM_NAME_LEN + 16]; /* per call: runs in other threads save too */
    int n = 0;
    for (int i = 0; i < m->n_params; i++) {
        const ml_param_info *p = &m->params[i];
        ts[n] = (ml_st_tensor){p->name, p->ndim, {0}, mm->meta + p->offset};
        memcpy(ts[n].shape, p->shape, sizeof p->shape);
        n++;
    }
    /* The learner's extra tensors: Meta-SGD's rates, the heads' scalars, pretrain's head. */
    ml_meta_tensor extra[ML_META_MAX_EXTRAS];
    int n_extra = ml_meta_extras(&mm->cfg, m, extra);
    for (int k = 0; k < n_extra; k++) {
        ts[n] = (ml_st_tensor){extra[k].name, extra[k].ndim, {0}, mm->meta + mm->n + extra[k].offset};
        memcpy(ts[n].shape, extra[k].shape, sizeof extra[k].shape);
        n++;
    }
    for (int i = 0; i < ml_optim_state_count(&mm->opt); i++) {
        const char *sname;
        float *buf = ml_optim_state(&mm->opt, i, &sname);
        snprintf(names[n], sizeof names[n], "optim.%s", sname);
        ts[n] = (ml_st_tensor){names[n], 1, {mm->n_meta}, buf};
        n++;
    }
    if (r->selector) n += task_select_save(r->selector, ts + n); /* the draws' state, for --resume */
    char it[32], step[32], rng[80], wsum[40], wcount[16];
    snprintf(it, sizeof it, "%d", iteration);
    snprintf(wsum, sizeof wsum, "%.17g", r->log_sum); /* reads back exactly */
    snprintf(wcount, sizeof wcount, "%d", r->log_count);
    snprintf(step, sizeof step, "%" PRId64, mm->opt.step);
    snprintf(rng, sizeof rng, "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64, r->rng.s[0], r->rng.s[1],
             r->rng.s[2], r->rng.s[3]);
    const char *keys[] = {"format", "algo", "model", "iteration", "optim_step", "task_rng", "log_window_sum",
                          "log_window_count"};
    const char *vals[] = {"metalearn-checkpoint-1", ml_algo_name(r->algo), r->model_spec, it, step, rng, wsum, wcount};
    return ml_safetensors_write(path, ts, n, keys, vals, 8, err, errlen) ? ML__RUN_FAIL : 0;
}

static int copy_tensor(const ml_safetensors *st, const char *file, const char *name, const ml_param_info *p,
                       float *dst, char *err, size_t errlen) {
    const ml_st_entry *e = ml_safetensors_find(st, name);
    if (!e) {
        snprintf(err, errlen, "%s: no tensor '%s' (see metalearn params --model ...)", file, name);
        return -1;
    }
    int same = e->ndim == p->ndim;
    for (int d = 0; same && d < p->ndim; d++) same = e->shape[d] == p->shape[d];
    if (!same) {
        char a[96] = "", b[96] = "";
        for (int d = 0; d < e->ndim; d++) snprintf(a + strlen(a), sizeof a - strlen(a), d ? ",%lld" : "%lld", (long long)e->shape[d]);
        for (int d = 0; d < p->ndim; d++) snprintf(b + strlen(b), sizeof b - strlen(b), d ? ",%lld" : "%lld", (long long)p->shape[d]);
        snprintf(err, errlen, "%s: tensor '%s' has shape [%s], the model expects [%s]", file, name, a, b);
        return -1;
    }
    memcpy(dst, e->data, (size_t)p->numel * sizeof(float));
    return 0;
}

/* full = 1: everything (resume); 0: parameters and Meta-SGD rates (eval);
 * -1: --init FILE: parameters, and a Meta-SGD run's per-parameter rates
 * when the file has them (alpha.NAME for every parameter NAME, as a
 * metasgd checkpoint writes them; r->init_rates says so), else the rates
 * start at --inner-lr. */
int meta_run_load_checkpoint(meta_run *r, const char *path, int full, int *iteration, char *err, size_t errlen) {
    ml_safetensors st;
    if (ml_safetensors_read(path, &st, err, errlen)) return ML__RUN_FAIL;
    /* Evaluating a MAML checkpoint as FOMAML would fit tensor for tensor and
     * report the wrong learner; --init (full < 0) takes parameters of any. */
    const char *saved_algo = ml_safetensors_meta(&st, "algo");
    if (full >= 0 && saved_algo && strcmp(saved_algo, ml_algo_name(r->algo))) {
        snprintf(err, errlen, "%s: a %s checkpoint, but the run's config.json says --algo %s", path, saved_algo,
                 ml_algo_name(r->algo));
        ml_safetensors_free(&st);
        return ML__RUN_FAIL;
    }
    ml_model *m = &r->model;
    ml_meta *mm = &r->meta;
    int rc = ML__RUN_FAIL;
    char name[ML_PARAM_NAME_LEN + 16];
    ml_meta_tensor extra[ML_META_MAX_EXTRAS];
    int n_extra = ml_meta_extras(&mm->cfg, m, extra);
    int with_extras = full >= 0;
    if (full < 0 && ml_algo_info(r->algo)->init_takes_extras) {
        /* Any of them (alpha.NAME) means the file carries them: then all must be there. */
        for (int k = 0; k < n_extra && !with_extras; k++) with_extras = ml_safetensors_find(&st, extra[k].name) != NULL;
        r->init_rates = with_extras;
    }
    /* Read into a scratch copy first: a bad file leaves the run untouched. */
    float *meta = malloc((size_t)mm->n_meta * sizeof(float));
    if (!meta) goto out;
    memcpy(meta, mm->meta, (size_t)mm->n_meta * sizeof(float));
    for (int i = 0; i < m->n_params; i++)
        if (copy_tensor(&st, path, m->params[i].name, &m->params[i], meta + m->params[i].offset, err, errlen)) goto out;
    /* The extras (pretrain's training head only when resuming: eval sets up none). */
    for (int k = 0; with_extras && k < n_extra; k++) {
        if (full == 1 && !ml_safetensors_find(&st, extra[k].name)) {
            /* A checkpoint of an older build: its learner had fewer tensors. */
            const ml_learner_info *li = ml_algo_info(r->algo);
            snprintf(err, errlen,
                     "%s: no tensor '%s': the run predates %s's %s (an older build); `metalearn eval` still "
                     "reads it, but it cannot be resumed: train a new run",
                     path, extra[k].name, li->name, li->class_head ? "class head over the training classes" : "extra tensors");
            goto out;
        }
        ml_param_info p = {"", extra[k].ndim, {0}, 0, extra[k].numel};
        memcpy(p.shape, extra[k].shape, sizeof p.shape);
        if (copy_tensor(&st, path, extra[k].name, &p, meta + mm->n + extra[k].offset, err, errlen)) goto out;
    }
    *iteration = 0;
    const char *its = ml_safetensors_meta(&st, "iteration");
    if (its) *iteration = atoi(its);
    if (full == 1) {
        const char *algo = ml_safetensors_meta(&st, "algo"), *rng = ml_safetensors_meta(&st, "task_rng"),
                   *step = ml_safetensors_meta(&st, "optim_step");
        if (!algo || strcmp(algo, ml_algo_name(r->algo)) || !rng || strlen(rng) != 64 || !step || !its) {
            snprintf(err, errlen, "%s: not a %s checkpoint of this run (metadata algo/iteration/task_rng missing or different)",
                     path, ml_algo_name(r->algo));
            goto out;
        }
        for (int i = 0; i < ml_optim_state_count(&mm->opt); i++) {
            const char *sname;
            float *buf = ml_optim_state(&mm->opt, i, &sname);
            snprintf(name, sizeof name, "optim.%s", sname);
            const ml_st_entry *e = ml_safetensors_find(&st, name);
            if (!e || e->numel != mm->n_meta) {
                snprintf(err, errlen, "%s: optimizer state '%s' missing or of the wrong size", path, name);
                goto out;
            }
            memcpy(buf, e->data, (size_t)mm->n_meta * sizeof(float));
        }
        if (r->selector && task_select_load(r->selector, &st, path, err, errlen)) goto out;
        mm->opt.step = strtoll(step, NULL, 10);
        for (int w = 0; w < 4; w++) {
            char word[17];
            memcpy(word, rng + 16 * w, 16);
            word[16] = 0;
            r->rng.s[w] = strtoull(word, NULL, 16);
        }
        mm->steps_done = *iteration;
        /* Written since log windows are carried; older checkpoints start a
         * new (then labelled) window. */
        const char *wsum = ml_safetensors_meta(&st, "log_window_sum"), *wcount = ml_safetensors_meta(&st, "log_window_count");
        r->log_sum = wsum && wcount ? strtod(wsum, NULL) : 0;
        r->log_count = wsum && wcount ? atoi(wcount) : 0;
        if (r->log_count < 0 || !isfinite(r->log_sum)) r->log_count = 0, r->log_sum = 0;
    }
    memcpy(mm->meta, meta, (size_t)mm->n_meta * sizeof(float));
    rc = 0;
out:
    free(meta);
    ml_safetensors_free(&st);
    return rc;
}

size_t ml__json_number(char *buf, size_t cap, const char *sep, double v) {
    int n = isfinite(v) ? snprintf(buf, cap, "%s%.6g", sep, v) : snprintf(buf, cap, "%snull", sep);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* ---- final evaluation ------------------------------------------------------------------- */

int meta_run_final_eval(meta_run *r, const ml_run_config *o, int iterations, double train_s, int iters_run, char *err,
                        size_t errlen) {
    snprintf(err, errlen, "out of memory"); /* what a bare failure below means */
    if (r->fewshot) return fewshot_final_eval(r, o, iterations, train_s, iters_run, err, errlen);
    int shots[MAX_LIST], steps[MAX_LIST];
    int n_shots = o->eval_shots ? ml__parse_int_list(o->eval_shots, shots, MAX_LIST, 1) : 1;
    if (!o->eval_shots) shots[0] = o->shots;
    int n_steps = ml__parse_int_list(o->eval_steps, steps, MAX_LIST, 0);
    int max_steps = 0;
    for (int i = 0; i < n_steps; i++) max_steps = steps[i] > max_steps ? steps[i] : max_steps;
    int E = o->eval_tasks;
    char why[1024];
    if (E < 1) { /* no evaluation asked for: report training only */
        if (o->json)
            fprintf(r->out, "{\"command\":\"train\",\"algo\":\"%s\",\"task\":\"%s\",\"model\":\"%s\",\"run\":\"%s\","
                   "\"iterations\":%d,\"train_seconds\":%.3f,\"iters_per_second\":%.3f,\"threads\":%d,\"results\":[]}\n",
                   ml_algo_name(r->algo), o->task, r->model_spec, r->dir, iterations, train_s,
                   iters_run > 0 ? iters_run / (train_s + 1e-9) : 0.0, r->threads);
        return 0;
    }
    /* Which tasks: new draws from a synthetic family; for CSV the split's test
     * (or validation) tasks, or every task of eval --task, each exactly once,
     * so the mean and its interval are over distinct tasks. */
    const ml_task_family *fam = r->has_eval_family ? &r->eval_family : &r->family;
    const int32_t *idx = NULL;
    int32_t *all = NULL;
    const char *what = o->eval_val ? "validation" : "test", *source = "sampled";
    if (r->has_eval_family && fam->kind == ML_TASKS_CSV) {
        all = malloc(sizeof(int32_t) * (size_t)fam->n_tasks);
        if (!all) {
            snprintf(err, errlen, "out of memory");
            return ML__RUN_FAIL;
        }
        for (int t = 0; t < fam->n_tasks; t++) all[t] = t;
        idx = all;
        E = fam->n_tasks;
        what = "held-out";
        source = "file";
    } else if (r->has_task_split && !r->has_eval_family) {
        int part = o->eval_val ? ML_TASK_PART_VAL : ML_TASK_PART_TEST;
        idx = r->task_split.idx[part];
        E = r->task_split.n[part];
        source = "split";
        if (E < 1) {
            snprintf(err, errlen, "%s/split.json has no %s tasks (--split %s); evaluate on held-out tasks with "
                            "eval %s --task csv:FILE", r->dir, what, o->split, r->dir);
            return ML__RUN_FAIL;
        }
    }
    if (idx && E < 5 && !o->quiet && r->notes)
        fprintf(r->notes, "metalearn: warning: only %d distinct %s task(s): the 95%% interval over tasks is wide%s\n", E,
                what, E < 2 ? " (none for one task)" : "");
    int stride = max_steps + 1;
    double *loss_at = malloc((size_t)E * stride * sizeof(double));
    double *col = malloc((size_t)E * sizeof(double));
    double *mean = malloc((size_t)n_shots * stride * sizeof(double));
    double *half = malloc((size_t)n_shots * stride * sizeof(double));
    int *diverged = calloc((size_t)n_shots * stride, sizeof(int)); /* tasks whose loss is not finite */
    int status = ML__RUN_FAIL;
    if (!loss_at || !col || !mean || !half || !diverged) {
        snprintf(err, errlen, "out of memory for %d evaluation tasks", E);
        goto done;
    }
    ml_meta_progress_begin(&r->meta, (int64_t)E * n_shots);
    double t0 = ml_now();
    for (int si = 0; si < n_shots; si++) {
        /* The same seed for every run and every K: all models meet the same functions. */
        ml_rng rng;
        ml_rng_seed(&rng, o->eval_val ? o->eval_seed ^ ML_VAL_SEED_XOR : o->eval_seed);
        if (ml_task_eval(&r->meta, fam, idx, E, &rng, shots[si], o->eval_query, max_steps, loss_at, why, sizeof why)) {
            snprintf(err, errlen, "evaluation: %s", why);
            goto done;
        }
        for (int s = 0; s <= max_steps; s++) {
            for (int t = 0; t < E; t++) {
                col[t] = loss_at[(int64_t)t * stride + s];
                diverged[si * stride + s] += !isfinite(col[t]);
            }
            /* A diverged task makes the mean meaningless: reported as such. */
            if (diverged[si * stride + s] || (idx ? ml_mean_ci95_t : ml_mean_ci95)(col, E, &mean[si * stride + s], &half[si * stride + s]) != ML_OK) {
                mean[si * stride + s] = NAN;
                half[si * stride + s] = NAN;
            }
        }
    }
    double eval_s = ml_now() - t0;
    char nq[32] = "all";
    if (o->eval_query > 0) snprintf(nq, sizeof nq, "%d", o->eval_query);
    if (idx)
        fprintf(r->out, "evaluation: %s, %d distinct %s tasks (%s), each once: K support rows drawn by the eval seed, %s%s "
               "query points; inner lr %g (mean squared error, Student-t 95%% CI over the %d tasks)\n",
               ml_algo_name(r->algo), E, what, r->has_eval_family ? fam->path : "split.json",
               o->eval_query > 0 ? "up to " : "", nq, o->inner_lr, E);
    else
        fprintf(r->out, "evaluation: %s, %d new %s tasks, %s query points each, inner lr %g (mean squared error, 95%% CI)\n",
               ml_algo_name(r->algo), E, what, nq, o->inner_lr);
    fprintf(r->out, "%8s %8s %12s %12s\n", "shots", "steps", "mse", "+-95%");
    for (int si = 0; si < n_shots; si++)
        for (int k = -1; k < n_steps; k++) {
            if (k >= 0 && steps[k] == 0) continue;
            int s = k < 0 ? 0 : steps[k], at = si * stride + s;
            if (diverged[at])
                fprintf(r->out, "%8d %8d     diverged in %d of %d tasks\n", shots[si], s, diverged[at], E);
            else
                fprintf(r->out, "%8d %8d %12.4f %12.4f%s\n", shots[si], s, mean[at], half[at], s ? "" : "   (before adaptation)");
        }
    if (r->write_eval_file) {
        char path[4200];
        size_t cap = 4096 + (size_t)n_shots * stride * 64, off = 0;
        char *buf = malloc(cap);
        if (!buf) goto done;
        off += (size_t)snprintf(buf + off, cap - off,
                                "{\"algo\":\"%s\",\"task\":\"%s\",\"model\":\"%s\",\"iterations\":%d,\"eval_tasks\":%d,"
                                "\"distinct_tasks\":%s,\"tasks_from\":\"%s\",\"eval_query\":%d,\"inner_lr\":%g,"
                                "\"eval_seed\":%" PRIu64 ",\"split\":\"%s\",\"results\":[",
                                ml_algo_name(r->algo), o->task, r->model_spec, iterations, E, idx ? "true" : "false", source,
                                o->eval_query, o->inner_lr, o->eval_seed, o->eval_val ? "val" : "test");
        for (int si = 0; si < n_shots; si++) {
            off += (size_t)snprintf(buf + off, cap - off, "%s{\"shots\":%d,\"mse\":[", si ? "," : "", shots[si]);
            for (int s = 0; s <= max_steps; s++)
                off += ml__json_number(buf + off, cap - off, s ? "," : "", mean[si * stride + s]);
            off += (size_t)snprintf(buf + off, cap - off, "],\"ci95\":[");
            for (int s = 0; s <= max_steps; s++)
                off += ml__json_number(buf + off, cap - off, s ? "," : "", half[si * stride + s]);
            off += (size_t)snprintf(buf + off, cap - off, "],\"diverged_tasks\":[");
            for (int s = 0; s <= max_steps; s++)
                off += (size_t)snprintf(buf + off, cap - off, "%s%d", s ? "," : "", diverged[si * stride + s]);
            off += (size_t)snprintf(buf + off, cap - off, "]}");
        }
        off += (size_t)snprintf(buf + off, cap - off, "]}\n");
        snprintf(path, sizeof path, "%s/eval.json", r->dir);
        int bad = ml_file_write_atomic(path, buf, off, why, sizeof why) != ML_OK;
        free(buf);
        if (bad) {
            snprintf(err, errlen, "%s", why);
            goto done;
        }
    }
    if (o->json) {
        fprintf(r->out, "{\"command\":\"%s\",\"algo\":\"%s\",\"task\":\"%s\",\"model\":\"%s\",\"run\":\"%s\",\"iterations\":%d,"
               "\"train_seconds\":%.3f,\"iters_per_second\":%.3f,\"eval_seconds\":%.3f,\"threads\":%d,\"split\":\"%s\","
               "\"eval_tasks\":%d,\"distinct_tasks\":%s,\"tasks_from\":\"%s\",\"results\":[",
               r->write_eval_file ? "train" : "eval", ml_algo_name(r->algo), o->task, r->model_spec, r->dir, iterations,
               train_s, iters_run > 0 ? iters_run / (train_s + 1e-9) : 0.0, eval_s, r->threads, o->eval_val ? "val" : "test",
               E, idx ? "true" : "false", source);
        int first = 1;
        for (int si = 0; si < n_shots; si++)
            for (int s = 0; s <= max_steps; s++) {
                int wanted = s == 0;
                for (int k = 0; k < n_steps; k++) wanted |= steps[k] == s;
                if (!wanted) continue;
                char m[48], h[48];
                ml__json_number(m, sizeof m, "", mean[si * stride + s]);
                ml__json_number(h, sizeof h, "", half[si * stride + s]);
                fprintf(r->out, "%s{\"shots\":%d,\"steps\":%d,\"mse\":%s,\"ci95\":%s,\"diverged_tasks\":%d}", first ? "" : ",",
                       shots[si], s, m, h, diverged[si * stride + s]);
                first = 0;
                ml_run_eval_row row = {.shots = shots[si], .steps = s, .mean = mean[si * stride + s],
                                       .ci95 = half[si * stride + s], .diverged_tasks = diverged[si * stride + s]};
                if (r->result && ml__eval_result_add(r->result, &row)) goto done;
            }
        fprintf(r->out, "]}\n");
    }
    status = 0;
done:
    free(all);
    free(loss_at);
    free(col);
    free(mean);
    free(half);
    free(diverged);
    return status;
}
