/* train_supervised.c: `metalearn train --algo supervised`: train a classifier on
 * MNIST-format IDX data, print test accuracy and per-class precision /
 * recall / F1, and with --json the final metrics as one JSON object on the
 * last line of stdout. */
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/train_opts.h"
#include "metalearn/dist.h"
#include "metalearn/run.h"
#include "metalearn/sources.h"
#include "metalearn/train.h"


static const char *const fashion_names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                              "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

typedef struct epoch_log {
    ml_run_config *o;
    double seconds_total, last_loss, last_acc;
    int epochs_done;
} epoch_log;

/* Every rank trains; rank 0 alone speaks and logs. */
static void on_epoch_log(const ml_epoch_report *r, void *user) {
    epoch_log *log = user;
    log->seconds_total += r->seconds;
    log->last_loss = r->loss;
    log->last_acc = r->train_acc;
    log->epochs_done = r->epoch;
    char err[512];
    if (ml_supervised_rundir_log(log->o->out, r, err, sizeof err)) fprintf(stderr, "metalearn train: %s\n", err);
    if (!log->o->quiet && ml_dist_rank() == 0)
        fprintf(stderr, "epoch %d/%d  loss %.4f  train acc %.4f  lr %.3g  %.2f s\n", r->epoch, r->epochs,
                r->loss, r->train_acc, r->lr, r->seconds);
}

/* An IDX source of the table ("fashion-mnist", "idx:DIR") -> its folder; NULL if none. */
static const char *dataset_dir(const char *spec) {
    const char *arg;
    const ml_source_info *src = ml_source_find(spec, &arg);
    if (!src || !src->supervised) return NULL;
    return src->idx_dir ? (arg ? NULL : src->idx_dir) : arg && *arg ? arg : NULL;
}

int run_supervised(ml_run_config *o_, const volatile sig_atomic_t *stop) {
    ml_run_config o = *o_;
    if (!o.model) o.model = "mlp";
    if (!o.dataset) o.dataset = "fashion-mnist";
    /* Validate names before touching data, so usage errors come first. */
    const char *dir = dataset_dir(o.dataset);
    if (!dir) {
        char list[128];
        fprintf(stderr, "metalearn train: --dataset '%s': expected %s\n", o.dataset,
                ml_source_list(list, sizeof list, ML_SOURCE_IMAGES, 1, " or "));
        return EXIT_USAGE;
    }
    ml_optim_kind ok;
    if (ml_optim_kind_parse(o.optimizer, &ok)) {
        fprintf(stderr, "metalearn train: --optimizer '%s': expected sgd, adagrad, rmsprop, adam or adamw\n",
                o.optimizer);
        return EXIT_USAGE;
    }
    ml_schedule_kind sk;
    if (ml_schedule_kind_parse(o.schedule, &sk)) {
        fprintf(stderr, "metalearn train: --schedule '%s': expected constant, step or cosine\n", o.schedule);
        return EXIT_USAGE;
    }
    ml_init_kind ik;
    if (ml_init_kind_parse(o.init, &ik)) {
        fprintf(stderr, "metalearn train: --init '%s': expected torch, kaiming or xavier\n", o.init);
        return EXIT_USAGE;
    }
    char err[512];
    ml_model_spec spec;
    if (ml_model_spec_parse(o.model, &spec, err, sizeof err)) {
        fprintf(stderr, "metalearn train: --model: %s\n", err);
        return EXIT_USAGE;
    }
    if (o.threads > 0) omp_set_num_threads(o.threads);

    ml_dataset train = {0}, test = {0};
    ml_model model = {0};
    int status = EXIT_FAIL, speaker = ml_dist_rank() == 0, usage = 0;
    /* Under mpirun without --shards: one shard per process, recorded in config.json. */
    if (o.shards == 0) o.shards = ml_dist_size();
    ml_status s = ML_OK;
    if (ml_dataset_load_idx(dir, "train", &train, err, sizeof err) ||
        ml_dataset_load_idx(dir, "test", &test, err, sizeof err)) {
        s = ML_ERR_IO;
        goto agree;
    }
    if (o.limit > 0 && o.limit < train.n) train.n = o.limit;
    /* Normalise both splits with the training set's statistics. */
    double mean[4], std[4];
    if (train.c > 4 || ml_dataset_channel_stats(&train, mean, std) || ml_dataset_normalize(&train, mean, std) ||
        ml_dataset_normalize(&test, mean, std)) {
        snprintf(err, sizeof err, "%s: cannot normalise (constant images or more than 4 channels)", dir);
        s = ML_ERR_FORMAT;
        goto agree;
    }
    spec.in_c = train.c;
    spec.in_h = train.h;
    spec.in_w = train.w;
    spec.n_out = train.n_classes;
    if ((s = ml_model_init(&model, &spec, err, sizeof err)) != ML_OK) goto agree;
    ml_rng rng;
    ml_rng_seed(&rng, o.seed);
    ml_model_init_params(&model, ik, &rng);

    ml_supervised_config cfg = {.epochs = o.epochs,
                                .batch_size = o.batch_size,
                                .optim = ml_optim_config_default(ok),
                                .schedule = sk,
                                .clip_norm = o.clip,
                                .seed = o.seed + 1,
                                .shards = o.shards,
                                .threads = omp_get_max_threads(),
                                .resume = o.resume != NULL,
                                .stop = stop};
    char ckpt[4200];
    if (o.out) {
        snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", o.out);
        cfg.checkpoint = ckpt;
    }
    cfg.optim.lr = o.lr;
    if (ok == ML_OPTIM_SGD || ok == ML_OPTIM_RMSPROP) cfg.optim.momentum = o.momentum;
    /* (float) compare: the default 1e-2 of AdamW stays the exact double PyTorch uses */
    if (o.weight_decay >= 0 && (float)cfg.optim.weight_decay != o.weight_decay) cfg.optim.weight_decay = o.weight_decay;
    if ((s = ml_supervised_check(&cfg, train.n, err, sizeof err)) != ML_OK) {
        usage = 1;
        goto agree;
    }
agree:
    /* Every process set up alike, or every process stops with the failing
     * rank's message; then rank 0 makes the run folder, and its outcome is shared. */
    s = ml_run_config_agree(&o, 3, s, err, sizeof err);
    if (!s) s = ml_run_config_agree(&o, 3, ml_supervised_rundir_open(&o, o.resume != NULL, err, sizeof err), err, sizeof err);
    if (s) {
        fprintf(stderr, "metalearn train: %s\n", err);
        status = usage ? EXIT_USAGE : EXIT_FAIL;
        goto done;
    }
    if (!o.quiet && speaker)
        fprintf(stderr, "train: %s on %s (%lld train / %lld test, %dx%dx%d), %lld parameters, %s lr %g, batch %d, %d epochs, %d threads, %d shards, %d processes\n",
                o.model, o.dataset, (long long)train.n, (long long)test.n, train.c, train.h, train.w,
                (long long)model.n_floats, o.optimizer, o.lr, o.batch_size, o.epochs, omp_get_max_threads(),
                o.shards, ml_dist_size());
    epoch_log log = {&o, 0, 0, 0, 0};
    s = ml_supervised_train(&model, &train, &cfg, on_epoch_log, &log, err, sizeof err);
    if (s == ML_ERR_INTERRUPTED) {
        if (speaker)
            fprintf(stderr, "metalearn train: %s%s%s\n", err, o.out ? "; continue with metalearn train --resume " : "",
                    o.out ? o.out : "");
        status = 130;
        goto done;
    }
    if (s) {
        fprintf(stderr, "metalearn train: %s\n", err);
        goto done;
    }
    if (!speaker) { /* the parameters are every rank's; rank 0 evaluates and reports */
        status = EXIT_OK;
        goto done;
    }
    ml_confusion conf;
    if (ml_confusion_init(&conf, test.n_classes)) goto done;
    double t0 = ml_now();
    if (ml_classifier_evaluate(&model, &test, 100, &conf, err, sizeof err)) {
        fprintf(stderr, "metalearn train: %s\n", err);
        ml_confusion_free(&conf);
        goto done;
    }
    double eval_s = ml_now() - t0;
    int fashion = !strcmp(o.dataset, "fashion-mnist") && test.n_classes == 10;
    printf("test accuracy %.4f (%lld examples)\n", ml_confusion_accuracy(&conf), (long long)test.n);
    ml_confusion_print(&conf, stdout, fashion ? fashion_names : NULL);
    printf("macro precision %.4f  recall %.4f  F1 %.4f\n", ml_confusion_macro_precision(&conf),
           ml_confusion_macro_recall(&conf), ml_confusion_macro_f1(&conf));
    if (o.json) {
        printf("{\"command\":\"train\",\"algo\":\"supervised\",\"dataset\":\"%s\",\"model\":\"%s\","
               "\"optimizer\":\"%s\",\"lr\":%g,\"batch_size\":%d,\"epochs\":%d,\"seed\":%llu,\"threads\":%d,"
               "\"shards\":%d,\"processes\":%d,"
               "\"train_examples\":%lld,\"test_examples\":%lld,\"parameters\":%lld,"
               "\"final_train_loss\":%.6f,\"final_train_accuracy\":%.6f,"
               "\"test_accuracy\":%.6f,\"macro_precision\":%.6f,\"macro_recall\":%.6f,\"macro_f1\":%.6f,",
               o.dataset, o.model, o.optimizer, o.lr, o.batch_size, o.epochs, (unsigned long long)o.seed,
               omp_get_max_threads(), o.shards, ml_dist_size(), (long long)train.n, (long long)test.n, (long long)model.n_floats,
               log.last_loss, log.last_acc, ml_confusion_accuracy(&conf), ml_confusion_macro_precision(&conf),
               ml_confusion_macro_recall(&conf), ml_confusion_macro_f1(&conf));
        printf("\"per_class\":[");
        for (int k = 0; k < conf.n_classes; k++)
            printf("%s{\"class\":%d,\"precision\":%.6f,\"recall\":%.6f,\"f1\":%.6f,\"support\":%lld}", k ? "," : "",
                   k, ml_confusion_precision(&conf, k), ml_confusion_recall(&conf, k), ml_confusion_f1(&conf, k),
                   (long long)ml_confusion_support(&conf, k));
        printf("],\"seconds_per_epoch\":%.4f,\"train_seconds\":%.3f,\"eval_seconds\":%.3f}\n",
               log.seconds_total / (log.epochs_done ? log.epochs_done : 1), log.seconds_total, eval_s);
    }
    ml_confusion_free(&conf);
    status = EXIT_OK;
done:
    ml_model_free(&model);
    ml_dataset_free(&train);
    ml_dataset_free(&test);
    return status;
}
