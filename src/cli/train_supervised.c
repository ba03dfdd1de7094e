/* train_supervised.c: `metalearn train --algo supervised`: train a classifier on
 * MNIST-format IDX data, print test accuracy and per-class precision /
 * recall / F1, and with --json the final metrics as one JSON object on the
 * last line of stdout. The run itself is the library's (ml_supervised_run_train);
 * this file prints. */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/train_opts.h"
#include "metalearn/dist.h"
#include "metalearn/run.h"
#include "metalearn/train.h"


static const char *const fashion_names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                              "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

typedef struct epoch_log {
    const ml_run_config *o;
} epoch_log;

/* Every rank trains; rank 0 alone speaks. */
static void on_start(const ml_run_config *o, const ml_supervised_result *r, void *user) {
    (void)user;
    if (!o->quiet && ml_dist_rank() == 0)
        fprintf(stderr, "train: %s on %s (%lld train / %lld test, %dx%dx%d), %lld parameters, %s lr %g, batch %d, %d epochs, %d threads, %d shards, %d processes\n",
                o->model, o->dataset, (long long)r->train_examples, (long long)r->test_examples, r->channels, r->height,
                r->width, (long long)r->parameters, o->optimizer, o->lr, o->batch_size, o->epochs, r->threads,
                o->shards, ml_dist_size());
}

static void on_epoch(const ml_epoch_report *r, const char *log_error, void *user) {
    epoch_log *log = user;
    if (log_error) fprintf(stderr, "metalearn train: %s\n", log_error);
    if (!log->o->quiet && ml_dist_rank() == 0)
        fprintf(stderr, "epoch %d/%d  loss %.4f  train acc %.4f  lr %.3g  %.2f s\n", r->epoch, r->epochs,
                r->loss, r->train_acc, r->lr, r->seconds);
}

void print_supervised_metrics(const ml_confusion *conf, int64_t test_examples, const char *dataset) {
    int fashion = !strcmp(dataset, "fashion-mnist") && conf->n_classes == 10;
    printf("test accuracy %.4f (%lld examples)\n", ml_confusion_accuracy(conf), (long long)test_examples);
    ml_confusion_print(conf, stdout, fashion ? fashion_names : NULL);
    printf("macro precision %.4f  recall %.4f  F1 %.4f\n", ml_confusion_macro_precision(conf),
           ml_confusion_macro_recall(conf), ml_confusion_macro_f1(conf));
}

void print_supervised_metrics_json(const ml_confusion *conf) {
    printf("\"test_accuracy\":%.6f,\"macro_precision\":%.6f,\"macro_recall\":%.6f,\"macro_f1\":%.6f,",
           ml_confusion_accuracy(conf), ml_confusion_macro_precision(conf), ml_confusion_macro_recall(conf),
           ml_confusion_macro_f1(conf));
    printf("\"per_class\":[");
    for (int k = 0; k < conf->n_classes; k++)
        printf("%s{\"class\":%d,\"precision\":%.6f,\"recall\":%.6f,\"f1\":%.6f,\"support\":%lld}", k ? "," : "",
               k, ml_confusion_precision(conf, k), ml_confusion_recall(conf, k), ml_confusion_f1(conf, k),
               (long long)ml_confusion_support(conf, k));
    printf("]");
}

int run_supervised(ml_run_config *o_, const volatile sig_atomic_t *stop) {
    ml_run_config o = *o_;
    char err[512];
    epoch_log log = {&o};
    ml_supervised_hooks hooks = {on_start, on_epoch, &log};
    ml_supervised_result res;
    ml_status s = ml_supervised_run_train(&o, stop, &hooks, &res, err, sizeof err);
    int status = EXIT_FAIL, speaker = ml_dist_rank() == 0;
    if (s == ML_ERR_INTERRUPTED) {
        if (speaker)
            fprintf(stderr, "metalearn train: %s%s%s\n", err, o.out ? "; continue with metalearn train --resume " : "",
                    o.out ? o.out : "");
        status = 130;
        goto done;
    }
    if (s) {
        fprintf(stderr, "metalearn train: %s\n", err);
        status = res.usage ? EXIT_USAGE : EXIT_FAIL;
        goto done;
    }
    status = EXIT_OK;
    if (!speaker) goto done; /* rank 0 evaluated and reports */
    const ml_confusion *conf = &res.conf;
    print_supervised_metrics(conf, res.test_examples, o.dataset);
    if (o.json) {
        printf("{\"command\":\"train\",\"algo\":\"supervised\",\"dataset\":\"%s\",\"model\":\"%s\","
               "\"optimizer\":\"%s\",\"lr\":%g,\"batch_size\":%d,\"epochs\":%d,\"seed\":%llu,\"threads\":%d,"
               "\"shards\":%d,\"processes\":%d,"
               "\"train_examples\":%lld,\"test_examples\":%lld,\"parameters\":%lld,"
               "\"final_train_loss\":%.6f,\"final_train_accuracy\":%.6f,",
               o.dataset, o.model, o.optimizer, o.lr, o.batch_size, o.epochs, (unsigned long long)o.seed,
               res.threads, o.shards, ml_dist_size(), (long long)res.train_examples, (long long)res.test_examples,
               (long long)res.parameters, res.final_train_loss, res.final_train_accuracy);
        print_supervised_metrics_json(conf);
        printf(",\"seconds_per_epoch\":%.4f,\"train_seconds\":%.3f,\"eval_seconds\":%.3f}\n",
               res.train_seconds / (res.epochs_done ? res.epochs_done : 1), res.train_seconds, res.eval_seconds);
    }
done:
    ml_supervised_result_free(&res);
    return status;
}
