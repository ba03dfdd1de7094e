/* cmd_predict.c: `metalearn predict RUN --support DIR --query DIR`: few-shot
 * learning on the user's own images. The support folder holds one subfolder
 * of PNGs per class; the query folder holds PNGs (flat, or in class
 * subfolders, in which case accuracy is reported too). The run's learner
 * adapts to the support set and labels each query image, with the class
 * probabilities (softmax of the library's scores) in --json and --probs.
 * For a regression run, --support and --query are CSV files of numbers
 * (x_1..x_D,y and x_1..x_D[,y]); the predicted y of each query row goes to
 * stdout as CSV. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/progress.h"
#include "metalearn/images.h"
#include "metalearn/run.h"
#include "cli/train_opts.h"
#include "metalearn/tasks.h"

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

/* Softmax of each row of scores [n, k] in place: class probabilities. */
static void softmax_rows(float *scores, int64_t n, int k) {
    for (int64_t i = 0; i < n; i++) {
        float *r = scores + i * k, mx = r[0];
        for (int c = 1; c < k; c++) mx = r[c] > mx ? r[c] : mx;
        double sum = 0;
        for (int c = 0; c < k; c++) sum += exp((double)r[c] - mx);
        for (int c = 0; c < k; c++) r[c] = (float)(exp((double)r[c] - mx) / sum);
    }
}

/* A regression run: support rows x_1..x_D,y and query rows x_1..x_D (or with
 * y, to report the MSE) from CSV files; CSV x_1..x_D,y out on stdout. */
static int predict_regression(ml_run *run, const char *algo, const ml_progress *progress, const char *support,
                              const char *query, int steps, int json) {
    int D = ml_run_input_dim(run);
    float *s = NULL, *q = NULL, *xs = NULL, *ys = NULL, *xq = NULL, *yq = NULL, *out = NULL;
    int64_t ns = 0, nq = 0;
    int cs = 0, cq = 0, status = EXIT_FAIL;
    char err[1024];
    if (ml_csv_read_numbers(support, &s, &ns, &cs, err, sizeof err) ||
        ml_csv_read_numbers(query, &q, &nq, &cq, err, sizeof err)) {
        fprintf(stderr, "metalearn predict: %s\n", err);
        goto done;
    }
    if (cs != D + 1) {
        fprintf(stderr, "metalearn predict: %s: %d columns; this run's model takes %d input(s), so support rows are "
                        "x_1..x_%d,y (%d columns)\n", support, cs, D, D, D + 1);
        goto done;
    }
    if (cq != D && cq != D + 1) {
        fprintf(stderr, "metalearn predict: %s: %d columns; query rows are x_1..x_%d (%d columns), or with y to score "
                        "(%d)\n", query, cq, D, D, D + 1);
        goto done;
    }
    if (ns > (1 << 20) || nq > (1 << 20)) {
        fprintf(stderr, "metalearn predict: at most 1048576 support and query rows\n");
        goto done;
    }
    xs = malloc((size_t)ns * D * sizeof(float));
    ys = malloc((size_t)ns * sizeof(float));
    xq = malloc((size_t)nq * D * sizeof(float));
    yq = calloc((size_t)nq, sizeof(float));
    out = malloc((size_t)nq * sizeof(float));
    if (!xs || !ys || !xq || !yq || !out) {
        fprintf(stderr, "metalearn predict: out of memory for %lld + %lld rows\n", (long long)ns, (long long)nq);
        goto done;
    }
    for (int64_t i = 0; i < ns; i++) {
        memcpy(xs + i * D, s + i * cs, (size_t)D * sizeof(float));
        ys[i] = s[i * cs + D];
    }
    for (int64_t i = 0; i < nq; i++) {
        memcpy(xq + i * D, q + i * cq, (size_t)D * sizeof(float));
        if (cq > D) yq[i] = q[i * cq + D];
    }
    ml_task_data task = {.n_support = (int)ns, .n_query = (int)nq, .xs = xs, .ys = ys, .xq = xq, .yq = yq};
    if (ml_run_predict(run, &task, steps, progress, NULL, out, err, sizeof err)) {
        fprintf(stderr, "metalearn predict: %s\n", err);
        goto done;
    }
    double se = 0;
    for (int d = 0; d < D; d++) printf("x_%d,", d + 1);
    printf("y\n");
    for (int64_t i = 0; i < nq; i++) {
        for (int d = 0; d < D; d++) printf("%.9g,", xq[i * D + d]);
        printf("%.9g\n", out[i]);
        se += ((double)out[i] - yq[i]) * ((double)out[i] - yq[i]);
    }
    if (cq > D) fprintf(stderr, "predict: query MSE %.6g over %lld rows after %d step(s)\n", se / nq, (long long)nq, steps);
    if (json) {
        printf("{\"command\":\"predict\",\"algo\":\"%s\",\"steps\":%d,\"predictions\":[", algo, steps);
        for (int64_t i = 0; i < nq; i++) printf("%s%.9g", i ? "," : "", out[i]);
        printf("]");
        if (cq > D) printf(",\"mse\":%.9g", se / nq);
        printf("}\n");
    }
    status = EXIT_OK;
done:
    ml_free(s);
    ml_free(q);
    free(xs);
    free(ys);
    free(xq);
    free(yq);
    free(out);
    return status;
}

int cmd_predict(int argc, char **argv) {
    static ml_run_config o;
    const char *support = NULL, *query = NULL;
    int steps = -1, json = 0, threads = 0, probs = 0, quiet = 0;
    const ml_option specs[] = {
        {"support", ML_OPT_STRING, &support, "folder of labelled images: one subfolder of PNGs per class; regression: CSV rows x_1..x_D,y", 1, 0},
        {"query", ML_OPT_STRING, &query, "folder of images to label (flat, or class subfolders to score); regression: CSV rows x_1..x_D[,y]", 1, 0},
        {"probs", ML_OPT_FLAG, &probs, "classification: print a table of every query image's class probabilities", 0, 0},
        {"steps", ML_OPT_INT, &steps, "adaptation steps (default: the run's largest --eval-steps; learners with an episode head, e.g. protonet, have none)", 0, 1000},
        {"threads", ML_OPT_INT, &threads, "threads (default: all cores)", 0, 1024},
        {"json", ML_OPT_FLAG, &json, "print the predictions as JSON on the last line", 0, 0},
        {"quiet", ML_OPT_FLAG, &quiet, "no progress of the adaptation steps on stderr", 0, 0},
    };
    const ml_option_set cmd = {"predict", "RUN --support DIR|FILE.csv --query DIR|FILE.csv [--steps S] [--probs] [--json]",
                         "Adapts a few-shot run to your labelled support images and labels the query\n"
                         "images (PNG; any size, area-averaged to 28x28; an image that is mostly light, i.e.\n"
                         "dark strokes on a light background, is inverted to match the training data).\n"
                         "--json adds each image's class probabilities; --probs prints them as a table.\n"
                         "A regression run adapts to the support rows (CSV x_1..x_D,y) and prints the query\n"
                         "rows (CSV x_1..x_D, or with y to report the MSE) with the predicted y as CSV.",
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
    char err[1024];
    if (ml_run_config_load_run(&o, pos[0], err, sizeof err)) {
        fprintf(stderr, "metalearn predict: %s\n", err);
        return EXIT_FAIL;
    }
    int regression = !ml_run_dataset_is_fewshot(o.dataset);
    if (threads > 0) o.threads = threads;
    o.out = pos[0];
    o.resume = NULL;
    o.quiet = 1;
    o.model_only = 1;
    o.eval_only = 1;
    ml_algo algo = (ml_algo)0;
    if (!ml_algo_parse(o.algo, &algo) && !ml_algo_has_inner_steps(algo) && steps >= 0) {
        fprintf(stderr, "metalearn predict: --steps: a %s run computes its episode head in one pass (no adaptation steps)\n", o.algo);
        return EXIT_USAGE;
    }

    ml_image_set sup = {0}, qry = {0};
    cli_progress prog = {0};
    ml_run *run = NULL;
    int status = EXIT_FAIL;
    int32_t *labels = NULL, *pred = NULL;
    float *prob = NULL;
    ml_status st = ml_run_open(&run, &o, ML_RUN_EVAL, NULL, err, sizeof err);
    if (st) {
        fprintf(stderr, "metalearn predict: %s\n", err);
        status = st == ML_ERR_ARG ? EXIT_USAGE : EXIT_FAIL;
        goto done;
    }
    const int max_steps = steps >= 0 ? steps : ml_run_default_steps(run);
    ml_progress progress = cli_progress_start(&prog, quiet);
    if (regression) {
        status = predict_regression(run, o.algo, &progress, support, query, max_steps, json);
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
    if (!ml_algo_info(algo)->any_ways && sup.n_classes != ml_run_ways(run)) {
        fprintf(stderr, "metalearn predict: %s has %d classes; this %s run has a %d-way head\n", support, sup.n_classes,
                ml_algo_name(algo), ml_run_ways(run));
        goto done;
    }
    /* Query labels: the support class of the same name, when the query folder is labelled. */
    labels = calloc((size_t)qry.n, sizeof *labels);
    pred = calloc((size_t)qry.n, sizeof *pred);
    prob = malloc((size_t)qry.n * sup.n_classes * sizeof *prob);
    if (!labels || !pred || !prob) goto done;
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
    if (ml_run_predict(run, &task, max_steps, &progress, pred, prob, err, sizeof err)) {
        fprintf(stderr, "metalearn predict: %s\n", err);
        goto done;
    }
    int K = sup.n_classes;
    softmax_rows(prob, qry.n, K);
    int64_t right = 0;
    for (int64_t i = 0; i < qry.n; i++) {
        printf("%s\t%s\n", qry.image_names[i], sup.class_names[pred[i]]);
        right += labels[i] == pred[i];
    }
    if (qry.labelled) printf("accuracy %.4f (%lld of %lld)\n", (double)right / qry.n, (long long)right, (long long)qry.n);
    if (probs) {
        printf("\nclass probabilities (softmax of the scores after %d step(s)):\n%-32s", max_steps, "image");
        for (int c = 0; c < K; c++) printf(" %10.10s", sup.class_names[c]);
        printf("\n");
        for (int64_t i = 0; i < qry.n; i++) {
            size_t nl = strlen(qry.image_names[i]);
            printf("%-32s", nl > 32 ? qry.image_names[i] + nl - 32 : qry.image_names[i]);
            for (int c = 0; c < K; c++) printf(" %10.4f", prob[i * K + c]);
            printf("\n");
        }
    }
    if (json) {
        printf("{\"command\":\"predict\",\"algo\":\"%s\",\"steps\":%d,\"predictions\":[", ml_algo_name(algo), max_steps);
        for (int64_t i = 0; i < qry.n; i++)
        {
            printf("%s{\"image\":", i ? "," : "");
            json_string(qry.image_names[i]);
            printf(",\"class\":");
            json_string(sup.class_names[pred[i]]);
            printf(",\"probabilities\":{");
            for (int c = 0; c < K; c++) {
                if (c) putchar(',');
                json_string(sup.class_names[c]);
                printf(":%.6f", prob[i * K + c]);
            }
            printf("}}");
        }
        printf("]");
        if (qry.labelled) printf(",\"accuracy\":%.6f", (double)right / qry.n);
        printf("}\n");
    }
    status = EXIT_OK;
done:
    cli_progress_end(&prog);
    free(labels);
    free(pred);
    free(prob);
    ml_image_set_free(&sup);
    ml_image_set_free(&qry);
    ml_run_close(run);
    return status;
}
