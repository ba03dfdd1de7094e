/* supervised_run.c: a supervised run (`metalearn train --algo supervised`)
 * from its settings: data, normalisation and model set up alike for training
 * and for `metalearn eval RUN`; the run folder (config.json with the resolved
 * settings, one log line per epoch, and the checkpoint ml_supervised_train
 * writes after every epoch). Rank 0 alone writes; resume reads the folder on
 * every rank. */
#include <errno.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "metalearn/dist.h"
#include "metalearn/io.h"
#include "metalearn/run.h"
#include "metalearn/rundir.h"
#include "metalearn/sources.h"
#include "metalearn/train.h"

ml_status ml_supervised_rundir_open(const ml_run_config *o, int resume, int *lock, char *err, size_t errlen) {
    const char *dir = o->out;
    char path[4200];
    if (!dir) return ML_OK;
    if (resume) {
        snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
        if (access(path, F_OK) != 0 && errno == ENOENT) {
            snprintf(err, errlen, "%s: no checkpoint to resume from (the run stopped before its first epoch); start "
                                  "it again with --out %s --overwrite", dir, dir);
            return ML_ERR_STATE;
        }
        if (lock && ml_dist_rank() == 0 && (*lock = ml_rundir_lock(dir, err, errlen)) == -1) return ML_ERR_STATE;
        return ML_OK;
    }
    if (ml_dist_rank() != 0) return ML_OK;
    ml_status s = ml_rundir_start_new(dir, o->overwrite, lock, err, errlen);
    if (s) return s;
    ml_run_config copy = *o; /* a saved config never carries permission to replace a run */
    copy.overwrite = 0;
    copy.resume = NULL;
    copy.stop_at = 0;
    snprintf(path, sizeof path, "%s/config.json", dir);
    ml_option_set set = ml_run_config_option_set(&copy);
    return ml_options_write_json(&set, path, err, errlen) ? ML_ERR_IO : ML_OK;
}

ml_status ml_supervised_rundir_log(const char *dir, const ml_epoch_report *r, char *err, size_t errlen) {
    if (!dir || ml_dist_rank() != 0) return ML_OK;
    char path[4200], line[512];
    snprintf(path, sizeof path, "%s/log.jsonl", dir);
    snprintf(line, sizeof line,
             "{\"epoch\":%d,\"loss\":%.9g,\"train_acc\":%.9g,\"lr\":%.9g,\"seconds\":%.4f,\"cpu_seconds\":%.4f}",
             r->epoch, r->loss, r->train_acc, r->lr, r->seconds, r->cpu_seconds);
    return ml_jsonl_append(path, line, err, errlen);
}

/* ---- setup shared by training and evaluation ------------------------------------------ */

/* An IDX source of the table ("fashion-mnist", "idx:DIR") -> its folder; NULL if none. */
static const char *dataset_dir(const char *spec) {
    const char *arg;
    const ml_source_info *src = ml_source_find(spec, &arg);
    if (!src || !src->supervised) return NULL;
    return src->idx_dir ? (arg ? NULL : src->idx_dir) : arg && *arg ? arg : NULL;
}

typedef struct sup_setup {
    ml_dataset train, test;
    ml_model model;
    ml_model_spec spec;
    ml_optim_kind optim;
    ml_schedule_kind schedule;
    ml_init_kind init;
    const char *dir;
} sup_setup;

static void setup_free(sup_setup *u) {
    ml_model_free(&u->model);
    ml_dataset_free(&u->train);
    ml_dataset_free(&u->test);
}

/* Names checked before any data is touched, so usage errors come first (ML_ERR_ARG). */
static ml_status setup_check_names(const ml_run_config *o, sup_setup *u, char *err, size_t errlen) {
    if (!(u->dir = dataset_dir(o->dataset))) {
        char list[128];
        snprintf(err, errlen, "--dataset '%s': expected %s", o->dataset,
                 ml_source_list(list, sizeof list, ML_SOURCE_IMAGES, 1, " or "));
        return ML_ERR_ARG;
    }
    if (ml_optim_kind_parse(o->optimizer, &u->optim)) {
        snprintf(err, errlen, "--optimizer '%s': expected sgd, adagrad, rmsprop, adam or adamw", o->optimizer);
        return ML_ERR_ARG;
    }
    if (ml_schedule_kind_parse(o->schedule, &u->schedule)) {
        snprintf(err, errlen, "--schedule '%s': expected constant, step or cosine", o->schedule);
        return ML_ERR_ARG;
    }
    if (ml_init_kind_parse(o->init, &u->init)) {
        snprintf(err, errlen, "--init '%s': expected torch, kaiming or xavier", o->init);
        return ML_ERR_ARG;
    }
    char why[400];
    if (ml_model_spec_parse(o->model, &u->spec, why, sizeof why)) {
        snprintf(err, errlen, "--model: %s", why);
        return ML_ERR_ARG;
    }
    return ML_OK;
}

/* Both splits, the training set cut to --limit, both normalised with the
 * training images' statistics, and the model built for them (not initialised). */
static ml_status setup_data_model(const ml_run_config *o, sup_setup *u, char *err, size_t errlen) {
    if (ml_dataset_load_idx(u->dir, "train", &u->train, err, errlen) ||
        ml_dataset_load_idx(u->dir, "test", &u->test, err, errlen))
        return ML_ERR_IO;
    if (o->limit > 0 && o->limit < u->train.n) u->train.n = o->limit;
    double mean[4], std[4];
    if (u->train.c > 4 || ml_dataset_channel_stats(&u->train, mean, std) ||
        ml_dataset_normalize(&u->train, mean, std) || ml_dataset_normalize(&u->test, mean, std)) {
        snprintf(err, errlen, "%s: cannot normalise (constant images or more than 4 channels)", u->dir);
        return ML_ERR_FORMAT;
    }
    u->spec.in_c = u->train.c;
    u->spec.in_h = u->train.h;
    u->spec.in_w = u->train.w;
    u->spec.n_out = u->train.n_classes;
    return ml_model_init(&u->model, &u->spec, err, errlen);
}

static void result_fill(ml_supervised_result *r, const sup_setup *u) {
    r->train_examples = u->train.n;
    r->test_examples = u->test.n;
    r->parameters = u->model.n_floats;
    r->channels = u->train.c;
    r->height = u->train.h;
    r->width = u->train.w;
    r->threads = omp_get_max_threads();
}

static ml_status evaluate_test(sup_setup *u, ml_supervised_result *out, char *err, size_t errlen) {
    if (ml_confusion_init(&out->conf, u->test.n_classes)) {
        snprintf(err, errlen, "%s: the test split has no classes", u->dir);
        return ML_ERR_FORMAT;
    }
    double t0 = ml_now();
    ml_status s = ml_classifier_evaluate(&u->model, &u->test, 100, &out->conf, err, errlen);
    out->eval_seconds = ml_now() - t0;
    return s;
}

void ml_supervised_result_free(ml_supervised_result *r) {
    if (r) ml_confusion_free(&r->conf);
}

/* ---- training ------------------------------------------------------------------------- */

typedef struct epoch_relay {
    const ml_run_config *o;
    const ml_supervised_hooks *hooks;
    ml_supervised_result *out;
} epoch_relay;

static void on_epoch_relay(const ml_epoch_report *r, void *user) {
    epoch_relay *rel = user;
    rel->out->train_seconds += r->seconds;
    rel->out->final_train_loss = r->loss;
    rel->out->final_train_accuracy = r->train_acc;
    rel->out->epochs_done = r->epoch;
    char err[512];
    int failed = ml_supervised_rundir_log(rel->o->out, r, err, sizeof err) != ML_OK;
    if (rel->hooks && rel->hooks->on_epoch) rel->hooks->on_epoch(r, failed ? err : NULL, rel->hooks->user);
}

ml_status ml_supervised_run_train(ml_run_config *o, const volatile sig_atomic_t *stop, const ml_supervised_hooks *hooks,
                                  ml_supervised_result *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (!o->model) o->model = "mlp";
    if (!o->dataset) o->dataset = "fashion-mnist";
    sup_setup u = {0};
    int lock = -1;
    ml_status s = setup_check_names(o, &u, err, errlen);
    if (s) {
        out->usage = 1;
        return s;
    }
    if (o->threads > 0) omp_set_num_threads(o->threads);
    /* Under mpirun without --shards: one shard per process, recorded in config.json. */
    if (o->shards == 0) o->shards = ml_dist_size();
    ml_supervised_config cfg = {0};
    char ckpt[4200];
    int usage = 0;
    if ((s = setup_data_model(o, &u, err, errlen)) != ML_OK) goto agree;
    ml_rng rng;
    ml_rng_seed(&rng, o->seed);
    ml_model_init_params(&u.model, u.init, &rng);
    cfg = (ml_supervised_config){.epochs = o->epochs,
                                 .batch_size = o->batch_size,
                                 .optim = ml_optim_config_default(u.optim),
                                 .schedule = u.schedule,
                                 .clip_norm = o->clip,
                                 .seed = o->seed + 1,
                                 .shards = o->shards,
                                 .threads = omp_get_max_threads(),
                                 .resume = o->resume != NULL,
                                 .stop = stop};
    if (o->out) {
        snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", o->out);
        cfg.checkpoint = ckpt;
    }
    cfg.optim.lr = o->lr;
    if (u.optim == ML_OPTIM_SGD || u.optim == ML_OPTIM_RMSPROP) cfg.optim.momentum = o->momentum;
    /* (float) compare: the default 1e-2 of AdamW stays the exact double PyTorch uses */
    if (o->weight_decay >= 0 && (float)cfg.optim.weight_decay != o->weight_decay) cfg.optim.weight_decay = o->weight_decay;
    if ((s = ml_supervised_check(&cfg, u.train.n, err, errlen)) != ML_OK) usage = 1;
agree:
    /* Every process set up alike, or every process stops with the failing
     * rank's message; then rank 0 makes the run folder, and its outcome is shared. */
    s = ml_run_config_agree(o, 3, s, err, errlen);
    if (!s) {
        ml_status opened = ml_supervised_rundir_open(o, o->resume != NULL, &lock, err, errlen);
        s = ml_run_config_agree(o, 3, opened, err, errlen);
    }
    if (s) {
        out->usage = usage;
        goto done;
    }
    result_fill(out, &u);
    out->shards = o->shards;
    if (hooks && hooks->on_start) hooks->on_start(o, out, hooks->user);
    epoch_relay rel = {o, hooks, out};
    if ((s = ml_supervised_train(&u.model, &u.train, &cfg, on_epoch_relay, &rel, err, errlen)) != ML_OK) goto done;
    /* the parameters are every rank's; rank 0 evaluates */
    if (ml_dist_rank() == 0) s = evaluate_test(&u, out, err, errlen);
done:
    setup_free(&u);
    ml_rundir_unlock(lock);
    return s;
}

/* ---- evaluation of a saved run -------------------------------------------------------- */

ml_status ml_supervised_run_evaluate(const char *run_dir, const char *checkpoint, int threads, ml_supervised_result *out,
                                     char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    ml_run_config o;
    if (ml_run_config_load_run(&o, run_dir, err, errlen)) return ML_ERR_IO;
    if (!o.algo || strcmp(o.algo, "supervised")) {
        snprintf(err, errlen, "%s: not a supervised run (algo '%s')", run_dir, o.algo ? o.algo : "");
        return ML_ERR_ARG;
    }
    if (!o.model) o.model = "mlp";
    if (!o.dataset) o.dataset = "fashion-mnist";
    char path[4200];
    if (!checkpoint) {
        snprintf(path, sizeof path, "%s/checkpoint.safetensors", run_dir);
        checkpoint = path;
    }
    if (access(checkpoint, F_OK) != 0 && errno == ENOENT) {
        snprintf(err, errlen, "%s: no checkpoint (the run stopped before its first epoch)", checkpoint);
        return ML_ERR_IO;
    }
    sup_setup u = {0};
    ml_status s = setup_check_names(&o, &u, err, errlen);
    if (s) {
        /* a run folder's settings are not the user's options: name the file */
        char why[512];
        snprintf(why, sizeof why, "%s", err);
        snprintf(err, errlen, "%s/config.json: %s", run_dir, why);
        return ML_ERR_FORMAT;
    }
    if (threads > 0) omp_set_num_threads(threads);
    if (!(s = setup_data_model(&o, &u, err, errlen)) &&
        !(s = ml_supervised_load_weights(checkpoint, &u.model, &out->epochs_done, err, errlen))) {
        result_fill(out, &u);
        out->shards = o.shards;
        s = evaluate_test(&u, out, err, errlen);
    }
    setup_free(&u);
    return s;
}
