/* cmd_predict.c: `metalearn predict RUN --support DIR --query DIR`: few-shot
 * learning on the user's own images. The support folder holds one subfolder
 * of PNGs per class; the query folder holds PNGs (flat, or in class
 * subfolders, in which case accuracy is reported too). The run's learner
 * adapts to the support set and labels each query image. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/meta_run.h"
#include "cli/train_opts.h"

/* A JSON string: quotes, backslashes and control characters escaped. */
static void json_string(const char *s) {
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

int cmd_predict(int argc, char **argv) {
    static train_opts o;
    const char *support = NULL, *query = NULL;
    int steps = -1, json = 0, threads = 0;
    const arg_spec specs[] = {
        {"support", ARG_STRING, &support, "folder of labelled images: one subfolder of PNGs per class", 1, 0},
        {"query", ARG_STRING, &query, "folder of images to label (flat, or class subfolders to score)", 1, 0},
        {"steps", ARG_INT, &steps, "adaptation steps (default: the run's largest --eval-steps; protonet, matching and r2d2 have none)", 0, 1000},
        {"threads", ARG_INT, &threads, "threads (default: all cores)", 0, 1024},
        {"json", ARG_FLAG, &json, "print the predictions as JSON on the last line", 0, 0},
    };
    const arg_cmd cmd = {"predict", "RUN --support DIR --query DIR [--steps S]",
                         "Adapts a few-shot run to your labelled support images and labels the query\n"
                         "images (PNG; any size, resized to 28x28 and inverted when light on dark).",
                         specs, (int)(sizeof specs / sizeof specs[0])};
    const char *pos[1];
    int npos;
    int r = args_parse(&cmd, argc, argv, 2, pos, 1, &npos);
    if (r == ARGS_HELP) return EXIT_OK;
    if (r) return EXIT_USAGE;
    if (npos != 1 || !support || !query) {
        fprintf(stderr, "metalearn predict: expected a run folder, --support DIR and --query DIR\nusage: metalearn predict %s\n",
                cmd.synopsis);
        return EXIT_USAGE;
    }
    char path[4200], err[1024];
    if (train_opts_load_run(&o, pos[0], err, sizeof err)) {
        fprintf(stderr, "metalearn predict: %s\n", err);
        return EXIT_FAIL;
    }
    if (!fewshot_is_dataset(o.dataset)) {
        fprintf(stderr, "metalearn predict: %s is not a few-shot classification run\n", pos[0]);
        return EXIT_FAIL;
    }
    if (threads > 0) o.threads = threads;
    o.out = pos[0];
    o.resume = NULL;
    o.quiet = 1;
    o.model_only = 1;
    o.eval_only = 1;
    int max_steps = 0, list[16];
    int ns = parse_int_list(o.eval_steps, list, 16, 0);
    for (int i = 0; i < ns; i++) max_steps = list[i] > max_steps ? list[i] : max_steps;
    if (steps >= 0) max_steps = steps;
    ml_algo algo;
    if (!ml_algo_parse(o.algo, &algo) && !ml_algo_has_inner_steps(algo)) {
        if (steps >= 0) {
            fprintf(stderr, "metalearn predict: --steps: a %s run computes its episode head in one pass (no adaptation steps)\n", o.algo);
            return EXIT_USAGE;
        }
        max_steps = 0;
    }

    ml_image_set sup = {0}, qry = {0};
    meta_run run;
    int status = EXIT_FAIL, it;
    int32_t *labels = NULL, *pred = NULL;
    memset(&run, 0, sizeof run);
    if ((status = meta_run_setup(&run, &o, err, sizeof err))) {
        fprintf(stderr, "metalearn predict: %s\n", err);
        goto done;
    }
    status = EXIT_FAIL;
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", pos[0]);
    if (meta_run_load_checkpoint(&run, path, 0, &it, err, sizeof err)) {
        fprintf(stderr, "metalearn predict: %s\n", err);
        goto done;
    }
    ml_image_options opt = {.size = ML_IMAGE_DEFAULT_SIZE};
    if (ml_image_folder_load(support, &opt, &sup, err, sizeof err) || ml_image_folder_load(query, &opt, &qry, err, sizeof err)) {
        fprintf(stderr, "metalearn predict: %s\n", err);
        goto done;
    }
    if (!sup.labelled || sup.n_classes < 2) {
        fprintf(stderr, "metalearn predict: %s: needs one subfolder of images per class (at least 2 classes)\n", support);
        goto done;
    }
    if (!ml_algo_is_metric(run.algo) && run.algo != ML_ALGO_PRETRAIN && sup.n_classes != run.ways) {
        fprintf(stderr, "metalearn predict: %s has %d classes; this %s run has a %d-way head\n", support, sup.n_classes,
                ml_algo_name(run.algo), run.ways);
        goto done;
    }
    /* Query labels: the support class of the same name, when the query folder is labelled. */
    labels = calloc((size_t)qry.n, sizeof *labels);
    pred = calloc((size_t)qry.n, sizeof *pred);
    if (!labels || !pred) goto done;
    for (int64_t i = 0; qry.labelled && i < qry.n; i++) {
        const char *name = qry.class_names[qry.y[i]];
        labels[i] = -1;
        for (int k = 0; k < sup.n_classes; k++)
            if (!strcmp(sup.class_names[k], name)) labels[i] = k;
        if (labels[i] < 0) {
            fprintf(stderr, "metalearn predict: %s: query class '%s' is not among the support classes\n", query, name);
            goto done;
        }
    }
    ml_task_data task = {.n_support = (int)sup.n, .n_query = (int)qry.n, .ways = sup.n_classes, .xs = sup.x,
                         .xq = qry.x, .ls = sup.y, .lq = labels};
    if (ml_meta_predict(&run.meta, &task, max_steps, pred, err, sizeof err)) {
        fprintf(stderr, "metalearn predict: %s\n", err);
        goto done;
    }
    int64_t right = 0;
    for (int64_t i = 0; i < qry.n; i++) {
        printf("%s\t%s\n", qry.image_names[i], sup.class_names[pred[i]]);
        right += labels[i] == pred[i];
    }
    if (qry.labelled) printf("accuracy %.4f (%lld of %lld)\n", (double)right / qry.n, (long long)right, (long long)qry.n);
    if (json) {
        printf("{\"command\":\"predict\",\"algo\":\"%s\",\"steps\":%d,\"predictions\":[", ml_algo_name(run.algo), max_steps);
        for (int64_t i = 0; i < qry.n; i++)
        {
            printf("%s{\"image\":", i ? "," : "");
            json_string(qry.image_names[i]);
            printf(",\"class\":");
            json_string(sup.class_names[pred[i]]);
            printf("}");
        }
        printf("]");
        if (qry.labelled) printf(",\"accuracy\":%.6f", (double)right / qry.n);
        printf("}\n");
    }
    status = EXIT_OK;
done:
    free(labels);
    free(pred);
    ml_image_set_free(&sup);
    ml_image_set_free(&qry);
    meta_run_free(&run);
    return status;
}
