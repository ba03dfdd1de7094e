/* cmd_plot.c: `metalearn plot RUN [RUN...]`: PNG learning curves from each
 * run's log.jsonl, and the MAML paper's figure from each run's eval.json:
 * query MSE against the number of adaptation steps, one line per run (e.g.
 * a MAML run and a multitask "pretrained" run), with 95% CI bands. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "metalearn/io.h"
#include "metalearn/meta.h"
#include "metalearn/plot.h"
#include "metalearn/rundir.h"
#include "metalearn/run.h"

#define MAX_RUNS 8
#define MAX_SHOTS 16

typedef struct run_curves {
    char label[128];
    ml_runlog_curves log; /* log.jsonl's curves (metalearn/rundir.h) */
    cJSON *eval;          /* parsed eval.json or NULL */
    cJSON *continual;     /* parsed continual.json (eval --continual) or NULL */
} run_curves;

/* The continual-learning figure: accuracy (or MSE for sine waves) against the
 * number of classes (functions) learned, one line per run with its 95% CI,
 * and the i.i.d. oracle dashed where it was measured. */
static int plot_continual(run_curves *rc, int n_runs, int regression, const char *out, char *err, size_t errlen) {
    ml_series s[2 * MAX_RUNS];
    double *bufs[2 * MAX_RUNS][4];
    char labels[MAX_RUNS][160];
    int n = 0;
    for (int i = 0; i < n_runs; i++) {
        const cJSON *c = rc[i].continual ? cJSON_GetObjectItemCaseSensitive(rc[i].continual, "continual") : NULL;
        const cJSON *bench = cJSON_GetObjectItemCaseSensitive(c, "benchmark");
        const cJSON *rows = cJSON_GetObjectItemCaseSensitive(c, "rows");
        if (!cJSON_IsArray(rows) || !cJSON_IsString(bench) ||
            !strcmp(bench->valuestring, "incremental-sine") != !!regression)
            continue;
        int m = cJSON_GetArraySize(rows);
        for (int oracle = 0; oracle < 2; oracle++) {
            double *x = calloc((size_t)m + 1, sizeof(double)), *y = calloc((size_t)m + 1, sizeof(double));
            double *lo = calloc((size_t)m + 1, sizeof(double)), *hi = calloc((size_t)m + 1, sizeof(double));
            int any = 0;
            for (int t = 0; t < m; t++) {
                const cJSON *row = cJSON_GetArrayItem(rows, t);
                const cJSON *k = cJSON_GetObjectItemCaseSensitive(row, regression ? "functions" : "classes");
                const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, oracle ? "oracle" : regression ? "mse" : "accuracy");
                const cJSON *h = cJSON_GetObjectItemCaseSensitive(row, oracle ? "oracle_ci95" : "ci95");
                x[t] = cJSON_IsNumber(k) ? k->valuedouble : NAN;
                y[t] = cJSON_IsNumber(v) ? v->valuedouble : NAN;
                double hw = cJSON_IsNumber(h) ? h->valuedouble : 0;
                lo[t] = y[t] - hw;
                hi[t] = y[t] + hw;
                any |= isfinite(y[t]);
            }
            bufs[n][0] = x, bufs[n][1] = y, bufs[n][2] = lo, bufs[n][3] = hi;
            if (oracle) snprintf(labels[i], sizeof labels[i], "%.120s oracle", rc[i].label);
            s[n++] = (ml_series){oracle ? labels[i] : rc[i].label, x, y, m, lo, hi,
                                 oracle ? ML_PLOT_DASHED : ML_PLOT_LINE_MARKERS, ML_PLOT_ERR_BARS};
            if (!any) { /* no oracle measured */
                n--;
                for (int b = 0; b < 4; b++) free(bufs[n][b]);
            }
        }
    }
    if (!n) return 0;
    ml_chart chart = {regression ? "Incremental sine waves: functions learned one after another (95% CI)"
                                 : "Continual learning: classes learned one after another (95% CI)",
                      regression ? "functions learned" : "classes learned",
                      regression ? "MSE on the functions so far" : "accuracy on the classes so far", 900, 540, 0, 0,
                      0, 0, 0, regression ? 0 : 1, 1};
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", out, regression ? "continual_sine.png" : "continual.png");
    ml_status st = ml_plot_png(path, &chart, s, n, err, errlen);
    for (int i = 0; i < n; i++)
        for (int b = 0; b < 4; b++) free(bufs[i][b]);
    if (st) return -1;
    printf("%s\n", path);
    return 0;
}

/* The entries of a run's eval.json that trace query MSE over adaptation
 * steps ("mse" arrays of a regression run); NULL for runs whose learner has
 * no inner steps or whose evaluation is not by steps (few-shot accuracy). */
static const cJSON *adaptation_results(const cJSON *eval) {
    const cJSON *algo = cJSON_GetObjectItemCaseSensitive(eval, "algo");
    ml_algo a;
    if (!cJSON_IsString(algo) || ml_algo_parse(algo->valuestring, &a) || !ml_algo_has_inner_steps(a)) return NULL;
    return cJSON_GetObjectItemCaseSensitive(eval, "results");
}

int cmd_plot(int argc, char **argv) {
    const char *out = NULL;
    int log_y = 0;
    const ml_option specs[] = {
        {"out", ML_OPT_STRING, &out, "folder for the PNG files, created if missing (default: the first run's folder)", 1, 0},
        {"log-y", ML_OPT_FLAG, &log_y, "logarithmic loss axis for the learning curves", 0, 0},
    };
    const ml_option_set cmd = {"plot", "RUN [RUN...] [--out DIR]",
                         "Draws learning_curve.png (query loss over meta-iterations, from log.jsonl, with\n"
                         "the validation MSE of --val-every runs beside it; few-shot validation accuracy in\n"
                         "validation_accuracy.png) and\n"
                         "adaptation_K<shots>.png (query MSE vs. adaptation steps with 95% CI, from eval.json;\n"
                         "regression runs of learners with inner steps) for one or more runs, e.g. a maml run\n"
                         "beside a multitask (pretrained) run; continual.png (accuracy vs. classes learned)\n"
                         "and continual_sine.png from the runs' continual.json (eval --continual).\n"
                         "Meta-RL runs (train --env): rl_returns.png (return vs adaptation steps from eval.json)\n"
                         "and, for 2D navigation, rl_trajectories.png (a test task before / after adaptation).",
                         specs, (int)(sizeof specs / sizeof specs[0])};
    const char *runs[MAX_RUNS];
    int n_runs;
    int r = args_parse(&cmd, argc, argv, 2, runs, MAX_RUNS, &n_runs);
    if (r == ARGS_HELP) return EXIT_OK;
    if (r) return EXIT_USAGE;
    if (n_runs < 1) {
        fprintf(stderr, "metalearn plot: name at least one run folder\nusage: metalearn plot %s\n", cmd.synopsis);
        return EXIT_USAGE;
    }
    if (!out) out = runs[0];
    static ml_run_config first;
    char err[1024], path[4200];
    if (ml_run_config_load_run(&first, runs[0], err, sizeof err) == 0 && ml_run_config_is_rl(&first)) {
        /* meta-RL runs: the library draws their figures */
        char written[8600];
        ml_status s = ml_rl_run_plot(runs, n_runs, out, written, sizeof written, err, sizeof err);
        if (s) {
            fprintf(stderr, "metalearn plot: %s\n", err);
            return s == ML_ERR_ARG ? EXIT_USAGE : EXIT_FAIL;
        }
        if (!written[0]) {
            fprintf(stderr, "metalearn plot: nothing to draw: evaluate the runs first (metalearn eval RUN)\n");
            return EXIT_FAIL;
        }
        printf("%s\n", written);
        return EXIT_OK;
    }
    run_curves rc[MAX_RUNS];
    memset(rc, 0, sizeof rc);
    int status = EXIT_FAIL, any_log = 0, any_eval = 0;
    for (int i = 0; i < n_runs; i++) {
        snprintf(path, sizeof path, "%s/eval.json", runs[i]);
        char *text;
        if (ml_file_read_text_if_present(path, 0, &text, NULL, err, sizeof err) != ML_OK) {
            fprintf(stderr, "metalearn plot: %s\n", err);
            goto done;
        }
        if (text) {
            rc[i].eval = cJSON_Parse(text);
            ml_free(text);
            if (!rc[i].eval) {
                fprintf(stderr, "metalearn plot: %s: not valid JSON\n", path);
                goto done;
            }
            any_eval = 1;
        }
        snprintf(path, sizeof path, "%s/continual.json", runs[i]);
        if (ml_file_read_text_if_present(path, 0, &text, NULL, err, sizeof err) != ML_OK) {
            fprintf(stderr, "metalearn plot: %s\n", err);
            goto done;
        }
        if (text) {
            rc[i].continual = cJSON_Parse(text);
            ml_free(text);
            if (!rc[i].continual) {
                fprintf(stderr, "metalearn plot: %s: not valid JSON\n", path);
                goto done;
            }
        }
        snprintf(path, sizeof path, "%s/log.jsonl", runs[i]);
        if (ml_runlog_read_curves(path, &rc[i].log, err, sizeof err)) {
            fprintf(stderr, "metalearn plot: %s\n", err);
            goto done;
        }
        any_log |= rc[i].log.n > 0;
        const cJSON *algo = rc[i].eval ? cJSON_GetObjectItemCaseSensitive(rc[i].eval, "algo") : NULL;
        const char *base = strrchr(runs[i], '/');
        base = base && base[1] ? base + 1 : runs[i];
        if (cJSON_IsString(algo) && strcmp(algo->valuestring, base))
            snprintf(rc[i].label, sizeof rc[i].label, "%s (%s)", algo->valuestring, base);
        else
            snprintf(rc[i].label, sizeof rc[i].label, "%s", base);
    }
    if (!any_log && !any_eval) {
        snprintf(path, sizeof path, "%s/log.jsonl", runs[0]);
        if (access(path, F_OK) == 0) /* a run killed before its first log line: the file is there */
            fprintf(stderr, "metalearn plot: %s: no complete log line yet and no eval.json: nothing to draw\n", path);
        else
            fprintf(stderr, "metalearn plot: %s: no log.jsonl or eval.json (is it a run folder?)\n", runs[0]);
        goto done;
    }
    if (ml_mkdir_p(out, err, sizeof err)) { /* --out DIR need not exist yet */
        fprintf(stderr, "metalearn plot: %s\n", err);
        goto done;
    }
    if (any_log) {
        ml_series s[2 * MAX_RUNS];
        char val_label[MAX_RUNS][160];
        int n = 0;
        for (int i = 0; i < n_runs; i++) {
            if (rc[i].log.n) s[n++] = (ml_series){rc[i].label, rc[i].log.iter, rc[i].log.loss, rc[i].log.n, NULL, NULL, 0, 0};
            if (rc[i].log.n_val && !rc[i].log.val_is_acc) { /* the validation MSE beside the training loss: overfitting shows as a gap */
                snprintf(val_label[i], sizeof val_label[i], "%.120s validation MSE", rc[i].label);
                s[n++] = (ml_series){val_label[i], rc[i].log.val_iter, rc[i].log.val, rc[i].log.n_val, NULL, NULL, 0, 0};
            }
        }
        ml_chart chart = {"Meta-training: query loss after adaptation", "meta-iteration", "query loss", 900, 540, 0, log_y,
                          0, 0, 0, 0, 1};
        snprintf(path, sizeof path, "%s/learning_curve.png", out);
        if (ml_plot_png(path, &chart, s, n, err, sizeof err)) {
            fprintf(stderr, "metalearn plot: %s\n", err);
            goto done;
        }
        printf("%s\n", path);
        /* Few-shot validation accuracy has its own axis. */
        n = 0;
        for (int i = 0; i < n_runs; i++)
            if (rc[i].log.n_val && rc[i].log.val_is_acc)
                s[n++] = (ml_series){rc[i].label, rc[i].log.val_iter, rc[i].log.val, rc[i].log.n_val, NULL, NULL, 0, 0};
        if (n) {
            ml_chart vchart = {"Validation accuracy during meta-training (--val-every)", "meta-iteration",
                               "validation accuracy", 900, 540, 0, 0, 0, 0, 0, 0, 0};
            snprintf(path, sizeof path, "%s/validation_accuracy.png", out);
            if (ml_plot_png(path, &vchart, s, n, err, sizeof err)) {
                fprintf(stderr, "metalearn plot: %s\n", err);
                goto done;
            }
            printf("%s\n", path);
        }
    }
    /* One figure per number of shots found in any run's evaluation. */
    int shots_seen[MAX_SHOTS], n_shots = 0;
    for (int i = 0; i < n_runs; i++) {
        const cJSON *res = adaptation_results(rc[i].eval), *e;
        cJSON_ArrayForEach(e, res) {
            const cJSON *k = cJSON_GetObjectItemCaseSensitive(e, "shots");
            if (!cJSON_IsNumber(k) || !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(e, "mse"))) continue;
            int seen = 0;
            for (int j = 0; j < n_shots; j++) seen |= shots_seen[j] == k->valueint;
            if (!seen && n_shots < MAX_SHOTS) shots_seen[n_shots++] = k->valueint;
        }
    }
    for (int si = 0; si < n_shots; si++) {
        ml_series s[MAX_RUNS];
        double *bufs[MAX_RUNS][3];
        int n = 0;
        for (int i = 0; i < n_runs; i++) {
            const cJSON *res = adaptation_results(rc[i].eval), *e;
            cJSON_ArrayForEach(e, res) {
                const cJSON *k = cJSON_GetObjectItemCaseSensitive(e, "shots");
                const cJSON *mse = cJSON_GetObjectItemCaseSensitive(e, "mse"), *ci = cJSON_GetObjectItemCaseSensitive(e, "ci95");
                if (!cJSON_IsNumber(k) || k->valueint != shots_seen[si] || !cJSON_IsArray(mse)) continue;
                int m = cJSON_GetArraySize(mse);
                double *y = calloc((size_t)m, sizeof(double)), *lo = calloc((size_t)m, sizeof(double)),
                       *hi = calloc((size_t)m, sizeof(double));
                for (int t = 0; t < m; t++) {
                    const cJSON *v = cJSON_GetArrayItem(mse, t);
                    y[t] = cJSON_IsNumber(v) ? v->valuedouble : NAN; /* null: diverged */
                    double h = cJSON_IsArray(ci) && t < cJSON_GetArraySize(ci) ? cJSON_GetArrayItem(ci, t)->valuedouble : 0;
                    lo[t] = y[t] - h;
                    hi[t] = y[t] + h;
                }
                bufs[n][0] = y;
                bufs[n][1] = lo;
                bufs[n][2] = hi;
                s[n++] = (ml_series){rc[i].label, NULL, y, m, lo, hi, 1, 0};
                break;
            }
        }
        char title[128];
        snprintf(title, sizeof title, "%d-shot adaptation to new tasks (95%% CI)", shots_seen[si]);
        /* The error before adaptation bounds the interesting range; a learner
         * that diverges with more steps (Meta-SGD's rates are tuned for one)
         * leaves the top of the chart instead of flattening every other line. */
        double top = 0;
        for (int i = 0; i < n; i++)
            if (s[i].n > 0 && isfinite(s[i].y[0]) && s[i].y[0] > top) top = s[i].y[0];
        ml_chart chart = {title, "gradient steps", "query MSE", 900, 540, 0, 0, 0, 0, 0, top > 0 ? 1.15 * top : 0, 1};
        snprintf(path, sizeof path, "%s/adaptation_K%d.png", out, shots_seen[si]);
        ml_status st = ml_plot_png(path, &chart, s, n, err, sizeof err);
        for (int i = 0; i < n; i++)
            for (int b = 0; b < 3; b++) free(bufs[i][b]);
        if (st) {
            fprintf(stderr, "metalearn plot: %s\n", err);
            goto done;
        }
        printf("%s\n", path);
    }
    for (int regression = 0; regression < 2; regression++)
        if (plot_continual(rc, n_runs, regression, out, err, sizeof err)) {
            fprintf(stderr, "metalearn plot: %s\n", err);
            goto done;
        }
    status = EXIT_OK;
done:
    for (int i = 0; i < n_runs; i++) {
        ml_runlog_curves_free(&rc[i].log);
        cJSON_Delete(rc[i].eval);
        cJSON_Delete(rc[i].continual);
    }
    return status;
}
