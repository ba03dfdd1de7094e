/* cmd_eval.c: `metalearn eval RUN`: the run's final evaluation again, on
 * other shots, steps, ways, datasets or the validation split (the library's
 * ml_run_evaluate prints the table), and `eval --algo nn`, the
 * learning-free nearest-neighbour baseline on Lake's runs; a supervised run's
 * test metrics (the library's ml_supervised_run_evaluate). */
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/progress.h"
#include "metalearn/dist.h"
#include "metalearn/sources.h"
#include "metalearn/options.h"
#include "cli/train_opts.h"
#include "metalearn/continual.h"
#include "metalearn/eval.h"
#include "metalearn/images.h"
#include "metalearn/io.h"
#include "metalearn/meta.h"
#include "metalearn/rundir.h"

/* 2 for a setting the library refused, else 1. */
static int exit_status(ml_status s) { return s == ML_ERR_ARG ? EXIT_USAGE : EXIT_FAIL; }

/* ---- eval --continual ------------------------------------------------------------------------ */

typedef struct continual_args {
    const char *counts, *rates;
    int test, train, orders, oracle, first, seed, whole;
} continual_args;

/* "0.1,0.03" -> rates; the count or -1. */
static int parse_rates(const char *s, float *out, int max) {
    int n = 0;
    for (const char *p = s; *p;) {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || !(v > 0) || n == max) return -1;
        out[n++] = (float)v;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return -1;
    }
    return n;
}

static int eval_continual(ml_run *run, const continual_args *a, int json) {
    ml_continual_options co;
    ml_continual_options_default(&co);
    for (const char *p = a->counts; *p;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || (*end && *end != ',') || v < 1 || v > 1000000 || co.n_counts == ML_CONTINUAL_MAX_COUNTS) {
            fprintf(stderr, "metalearn eval: --continual '%s': expected class counts such as 10,25,50\n", a->counts);
            return EXIT_USAGE;
        }
        co.counts[co.n_counts++] = (int)v;
        p = *end ? end + 1 : end;
    }
    if (a->rates && (co.n_rates = parse_rates(a->rates, co.rates, ML_CONTINUAL_MAX_RATES)) < 1) {
        fprintf(stderr, "metalearn eval: --continual-lr '%s': expected positive rates such as 0.1,0.03\n", a->rates);
        return EXIT_USAGE;
    }
    co.test_per_class = a->test;
    co.train_per_class = a->train;
    co.orders = a->orders;
    co.oracle_epochs = a->oracle;
    co.forget_classes = a->first;
    co.seed = (uint64_t)a->seed;
    co.whole_network = a->whole;
    ml_continual_result res;
    char err[1024], note[1024];
    ml_status s = ml_run_continual(run, &co, &res, note, sizeof note, err, sizeof err);
    if (note[0]) fprintf(stderr, "note: %s\n", note);
    if (s) {
        fprintf(stderr, "metalearn eval: %s\n", err);
        return exit_status(s);
    }
    if (res.regression) { /* incremental sine waves: MSE, lower is better */
        printf("Incremental sine waves: %d functions one after another, %d points each learned once, %d held out;\n"
               "online SGD on the run's head at lr %g (chosen on validation tasks: MSE %.3f), %d tasks\n",
               res.test_classes, res.train_per_class, res.test_per_class, (double)res.lr, res.val_accuracy, res.orders);
        printf("  functions  MSE (95%% CI)        first function    i.i.d. oracle\n");
        for (int i = 0; i < res.n_rows; i++) {
            const ml_continual_row *w = &res.rows[i];
            printf("  %9d  %7.3f +- %6.3f   %7.3f +- %6.3f", w->classes, w->accuracy, w->ci95, w->first, w->first_ci95);
            if (isfinite(w->oracle)) printf("   %7.3f +- %6.3f", w->oracle, w->oracle_ci95);
            printf("\n");
        }
    } else {
        printf("Continual learning: %d test classes one after another, %d images each learned once, %d held out;\n"
               "online SGD on %s at lr %g (chosen on %d validation classes: %.1f%%), %d class orders\n",
               res.test_classes, res.train_per_class, res.test_per_class,
               res.whole_network ? "the whole network from a random start (scratch)" : "a new head", (double)res.lr,
               res.val_classes, 100 * res.val_accuracy, res.orders);
        printf("  classes  accuracy (95%% CI)    first %-3d classes   i.i.d. oracle\n", res.forget_classes);
        for (int i = 0; i < res.n_rows; i++) {
            const ml_continual_row *w = &res.rows[i];
            printf("  %7d  %5.1f%% +- %4.1f%%     %5.1f%% +- %4.1f%%", w->classes, 100 * w->accuracy, 100 * w->ci95,
                   100 * w->first, 100 * w->first_ci95);
            if (isfinite(w->oracle)) printf("    %5.1f%% +- %4.1f%%", 100 * w->oracle, 100 * w->oracle_ci95);
            printf("\n");
        }
        printf("  forgetting: %.1f%% +- %.1f%% on the first %d classes after all %d\n", 100 * res.forgetting,
               100 * res.forgetting_ci95, res.forget_classes, res.test_classes);
    }
    if (isfinite(res.feature_norm))
        printf("  representation: %.1f%% of its %s features exactly zero, mean length %.3g\n",
               100 * res.feature_zero_fraction, res.regression ? "support points'" : "test images'", res.feature_norm);
    if (isfinite(res.oracle_lr)) printf("  the oracle's lr, chosen on validation the same way: %g\n", (double)res.oracle_lr);
    if (json) {
        ml_run_info info;
        ml_run_get_info(run, &info);
        size_t need = ml_continual_to_json(&res, info.algo, NULL, 0);
        char *text = malloc(need + 1);
        if (!text) {
            fprintf(stderr, "metalearn eval: out of memory\n");
            return EXIT_FAIL;
        }
        ml_continual_to_json(&res, info.algo, text, need + 1);
        printf("%s\n", text);
        free(text);
    }
    return EXIT_OK; /* the library saved RUN/continual.json */
}

/* ---- eval ------------------------------------------------------------------------------------ */

/* Lake's runs with a 1-nearest-neighbour classifier: no learning at all. */
static int eval_nn_lake(const char *path, const char *distance, int json) {
    int mhd = !strcmp(distance, "mhd");
    if (!mhd && strcmp(distance, "pixel")) {
        fprintf(stderr, "metalearn eval: --distance '%s': expected pixel or mhd\n", distance);
        return EXIT_USAGE;
    }
    char err[1024];
    ml_lake_runs lr;
    if (ml_lake_runs_load(path, NULL, &lr, err, sizeof err)) {
        fprintf(stderr, "metalearn eval: %s\n", err);
        return EXIT_FAIL;
    }
    double *errors = calloc((size_t)(lr.n_runs > 0 ? lr.n_runs : 1), sizeof *errors);
    if (!errors) {
        fprintf(stderr, "metalearn eval: out of memory\n");
        ml_lake_runs_free(&lr);
        return EXIT_FAIL;
    }
    double mean = ml_lake_runs_nn_errors(&lr, mhd, errors);
    printf("Lake's one-shot runs, 1-nearest neighbour by %s distance:\n", mhd ? "Modified Hausdorff" : "pixel");
    for (int r = 0; r < lr.n_runs; r++) printf("  run %02d  %5.1f%%\n", r + 1, 100 * errors[r]);
    printf("  mean    %5.1f%%\n", 100 * mean);
    if (json) {
        printf("{\"command\":\"eval\",\"algo\":\"nn\",\"distance\":\"%s\",\"lake_runs\":{\"errors\":[", mhd ? "mhd" : "pixel");
        for (int r = 0; r < lr.n_runs; r++) printf("%s%.4f", r ? "," : "", errors[r]);
        printf("],\"mean_error\":%.4f}}\n", mean);
    }
    free(errors);
    ml_lake_runs_free(&lr);
    return EXIT_OK;
}

/* ---- a meta-RL run ----------------------------------------------------------------------------- */

/* The return before and after each count of adaptation steps through the
 * run handle (which also writes RUN/eval.json): a table, with --json also
 * the line {"steps":[...],"return":[...],"ci95":[...],"eval_lr":...}. */
static int eval_rl(ml_run_config *o, const char *dir, const char *ckpt, int eval_val) {
    o->out = dir;
    o->resume = NULL;
    o->eval_val = eval_val;
    if (o->eval_tasks < 1) o->eval_tasks = 40; /* a run trained with --eval-tasks 0: eval is asking now */
    char err[1024];
    ml_run *run;
    ml_run_open_options oo = {.checkpoint = ckpt, .notes = stderr};
    ml_status s = ml_run_open(&run, o, ML_RUN_EVAL, &oo, err, sizeof err);
    if (!s) {
        s = ml_run_evaluate(run, &(ml_run_eval_options){.out = stdout}, err, sizeof err);
        ml_run_close(run);
    }
    if (s) fprintf(stderr, "metalearn eval: %s\n", err);
    return s ? exit_status(s) : EXIT_OK;
}

/* ---- a supervised run ------------------------------------------------------------------ */

static int eval_supervised(const char *dir, const char *ckpt, const char *dataset, int threads, int json) {
    char err[1024];
    ml_supervised_result res;
    ml_status s = ml_supervised_run_evaluate(dir, ckpt, threads, &res, err, sizeof err);
    if (s) {
        fprintf(stderr, "metalearn eval: %s\n", err);
        ml_supervised_result_free(&res);
        return exit_status(s);
    }
    if (ml_dist_rank() != 0) { /* under mpirun every rank evaluates; rank 0 reports, as train does */
        ml_supervised_result_free(&res);
        return EXIT_OK;
    }
    print_supervised_metrics(&res.conf, res.test_examples, dataset);
    if (json) {
        printf("{\"command\":\"eval\",\"algo\":\"supervised\",\"dataset\":\"%s\",\"epochs\":%d,"
               "\"test_examples\":%lld,\"parameters\":%lld,",
               dataset, res.epochs_done, (long long)res.test_examples, (long long)res.parameters);
        print_supervised_metrics_json(&res.conf);
        printf(",\"eval_seconds\":%.3f}\n", res.eval_seconds);
    }
    ml_supervised_result_free(&res);
    return EXIT_OK;
}

int cmd_eval(int argc, char **argv) {
    static ml_run_config o;
    const char *shots = NULL, *steps = NULL, *lake = NULL, *algo = NULL, *distance = "mhd", *split = "test";
    const char *eval_task = NULL, *eval_lr = NULL;
    const char *dataset = NULL, *eval_classes = NULL, *images = NULL, *finetune = NULL, *split_file = NULL;
    int tasks = -1, query = -1, threads = 0, json = 0, ways = 0, lake_steps = 0, quiet = 0;
    float eval_later_scale = -1;
    continual_args ca = {.counts = NULL, .test = 5, .orders = 10, .first = 10, .seed = 1};
    char sources[256], dataset_help[320];
    snprintf(dataset_help, sizeof dataset_help, "few-shot: evaluate on this dataset instead (%s)",
             ml_source_list(sources, sizeof sources, ML_SOURCE_IMAGES, 0, " or "));
    const ml_option specs[] = {
        {"shots", ML_OPT_STRING, &shots, "support points per task, e.g. 5,10,20 (default: the run's)", 1, 0},
        {"steps", ML_OPT_STRING, &steps, "adaptation steps to report, e.g. 1,10 (default: the run's)", 1, 0},
        {"tasks", ML_OPT_INT, &tasks, "new tasks / episodes to evaluate on (default: the run's, 600)", 1, 10000000},
        {"episodes", ML_OPT_INT, &tasks, "same as --tasks", 1, 10000000},
        {"query", ML_OPT_INT, &query, "query points per task / per class (default: the run's; 0 = all rows of a CSV task)", 0, 100000},
        {"ways", ML_OPT_INT, &ways, "few-shot: classes per episode (default: the run's)", 2, 256},
        {"lake-runs", ML_OPT_STRING, &lake, "few-shot: also evaluate on Lake's 20 one-shot runs (all_runs.zip or folder), or none "
                                         "(default: the run's, except with a --dataset other than Omniglot)", 1, 0},
        {"lake-steps", ML_OPT_INT, &lake_steps, "few-shot: adaptation steps before labelling Lake's runs (default: the largest --steps)", 1, 100000},
        {"split", ML_OPT_STRING, &split, "test (default) or val: validation classes / CSV tasks of split.json, or validation tasks", 1, 0},
        {"task", ML_OPT_STRING, &eval_task, "regression: evaluate on every task of this family instead, each once (csv:HELD_OUT.csv)", 1, 0},
        {"eval-lr", ML_OPT_STRING, &eval_lr, "meta-RL: adaptation rate, or a comma list of rates of which the best on validation tasks is used (default: the run's, --inner-lr)", 1, 0},
        {"eval-later-scale", ML_OPT_FLOAT, &eval_later_scale, "meta-RL: the steps after the first adapt at the rate times this (default: the run's, 1; the MAML authors' evaluation: 0.5)", 0, 1e3},
        {"threads", ML_OPT_INT, &threads, "worker threads (default: all cores)", 0, 1024},
        {"json", ML_OPT_FLAG, &json, "print the results as JSON on the last line", 0, 0},
        {"quiet", ML_OPT_FLAG, &quiet, "no progress on stderr (a bar on a terminal, else a line per 10% or 30 s)", 0, 0},
        {"algo", ML_OPT_STRING, &algo, "nn: the learning-free nearest-neighbour baseline (no RUN; needs --lake-runs)", 1, 0},
        {"distance", ML_OPT_STRING, &distance, "nn: pixel (L2 on 28x28) or mhd (Modified Hausdorff on strokes, default)", 1, 0},
        {"dataset", ML_OPT_STRING, &dataset, dataset_help, 1, 0},
        {"eval-classes", ML_OPT_STRING, &eval_classes, "few-shot: all classes of --dataset (default for another dataset) or test (its split)", 1, 0},
        {"split-file", ML_OPT_STRING, &split_file, "few-shot: test classes from this split.json (e.g. another run's, same dataset)", 1, 0},
        {"images", ML_OPT_STRING, &images, "few-shot --dataset fashion-mnist|idx:DIR: test (t10k files, default) or train images", 1, 0},
        {"finetune", ML_OPT_STRING, &finetune, "pretrain: fine-tune the new head only (head) or the whole network (all)", 1, 0},
        {"continual", ML_OPT_STRING, &ca.counts, "the continual-learning protocol instead (OML's): test classes (sine-seq runs: functions) "
                                              "learned one after another, scored after this many and all, e.g. 10,25,50", 1, 0},
        {"continual-test", ML_OPT_INT, &ca.test, "continual: images per class held out for testing (default 5; the rest are learned)", 0, 100000},
        {"continual-train", ML_OPT_INT, &ca.train, "continual: images per class (points per sine function) learned, once each (default 0: all but the test images; 40 points)", 0, 100000},
        {"continual-orders", ML_OPT_INT, &ca.orders, "continual: random class orders (default 10)", 2, 100000},
        {"continual-lr", ML_OPT_STRING, &ca.rates, "continual: learning rates tried on the validation classes (default 0.3,0.1,0.03,...,0.00001,0.000003)", 1, 0},
        {"continual-oracle", ML_OPT_INT, &ca.oracle, "continual: also the i.i.d. oracle, the same images shuffled for this many epochs (default 0: off)", 0, 10000},
        {"continual-first", ML_OPT_INT, &ca.first, "continual: forgetting is the accuracy on the first this many classes after all (default 10)", 1, 100000},
        {"continual-whole-network", ML_OPT_FLAG, &ca.whole, "continual: the whole-network baselines instead: the run's network from a random start, every layer learned online (scratch) or i.i.d. (--continual-oracle, after all classes)", 0, 0},
        {"continual-seed", ML_OPT_INT, &ca.seed, "continual: seed of the class orders (default 1)", 0, 2147483647},
    };
    const ml_option_set cmd = {"eval", "RUN|CHECKPOINT [--split test|val] [--shots 5,10,20] [--steps 1,10] [--tasks 600] [--ways N] "
                                 "[--lake-runs PATH|none] [--dataset D [--eval-classes all|test]] [--task csv:HELD_OUT.csv] "
                                 "[--continual 10,25,50 [--continual-oracle EPOCHS]]",
                         "A supervised run (train --algo supervised --out RUN): test accuracy, per-class and\n"
                         "macro precision/recall/F1 on its test split, normalised with the statistics of the\n"
                         "training images it trained on (--limit); --json: {\"test_accuracy\",\"macro_*\",\"per_class\"}.\n"
                         "A meta-RL run (train --env): the mean return before and after each of --steps\n"
                         "(default 0,1,2,3) adaptation steps on --tasks (default 40) test tasks, 95% intervals;\n"
                         "the steps at --eval-lr (a list: the rate best on as many validation tasks, drawn\n"
                         "with eval-seed XOR 0x76616c6964; never the test tasks), the steps after the first\n"
                         "at that rate times --eval-later-scale (0.5: the MAML authors' evaluation);\n"
                         "--split val: validation tasks; --json: {\"steps\",\"return\",\"ci95\",\"eval_lr\"};\n"
                         "saved as RUN/eval.json.\n"
                         "Evaluates a meta-learning run on new tasks: adapts from the learned\n"
                         "initialisation on K support examples and reports, for each number of shots and\n"
                         "adaptation steps, query MSE (regression) or accuracy on episodes of held-out\n"
                         "classes (few-shot), with a 95% confidence interval; --lake-runs adds Lake's 20\n"
                         "one-shot runs (the run's own --lake-runs are used unless --lake-runs none, or\n"
                         "--dataset names another dataset than Omniglot). CHECKPOINT is a checkpoint.safetensors file with the run's\n"
                         "config.json beside it. A CSV run is scored on the test tasks of its split.json,\n"
                         "each task once (K support rows drawn by --eval-seed), with the interval over\n"
                         "those distinct tasks; --task csv:FILE scores every task of a held-out file instead.\n"
                         "--split val scores on the validation classes / CSV tasks of the run's split.json,\n"
                         "or on validation tasks drawn with seed eval-seed XOR 0x76616c6964 (synthetic\n"
                         "tasks), never on test data: what `metalearn search` uses.\n"
                         "--dataset evaluates a few-shot run on another dataset's\n"
                         "classes (cross-domain; all of its classes by default, its test images for IDX).\n"
                         "--continual runs OML's continual-learning protocol on the run's representation\n"
                         "(any learner: a non-OML run uses its network without the last layer) and saves\n"
                         "RUN/continual.json, which `metalearn plot` draws (with --continual-whole-network:\n"
                         "RUN/continual_whole_network.json).",
                         specs, (int)(sizeof specs / sizeof specs[0])};
    const char *pos[1];
    int npos;
    int r = args_parse(&cmd, argc, argv, 2, pos, 1, &npos);
    if (r == ARGS_HELP) return EXIT_OK;
    if (r) return EXIT_USAGE;
    if (algo) {
        if (strcmp(algo, "nn")) {
            fprintf(stderr, "metalearn eval: --algo '%s': only nn is evaluated without a run\n", algo);
            return EXIT_USAGE;
        }
        if (npos || !lake || !strcmp(lake, "none")) {
            fprintf(stderr, "metalearn eval: --algo nn takes no run and needs --lake-runs PATH\n");
            return EXIT_USAGE;
        }
        return eval_nn_lake(lake, distance, json);
    }
    int eval_val = !strcmp(split, "val");
    if (!eval_val && strcmp(split, "test")) {
        fprintf(stderr, "metalearn eval: --split '%s': expected test or val\n", split);
        return EXIT_USAGE;
    }
    if (npos != 1) {
        fprintf(stderr, "metalearn eval: expected a run folder or a checkpoint file\nusage: metalearn eval %s\n",
                cmd.synopsis);
        return EXIT_USAGE;
    }
    char dir[2048], ckpt[4096], err[1024];
    size_t len = strlen(pos[0]);
    if (len > 12 && !strcmp(pos[0] + len - 12, ".safetensors")) {
        snprintf(ckpt, sizeof ckpt, "%s", pos[0]);
        const char *slash = strrchr(pos[0], '/');
        snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - pos[0]) : 1, slash ? pos[0] : ".");
    } else {
        snprintf(dir, sizeof dir, "%s", pos[0]);
        snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", dir);
    }
    if (ml_run_config_load_run(&o, dir, err, sizeof err)) {
        fprintf(stderr, "metalearn eval: %s\n", err);
        return EXIT_FAIL;
    }
    if (ml_run_config_is_rl(&o)) {
        if (steps) o.eval_steps = steps;
        if (tasks > 0) o.eval_tasks = tasks;
        if (threads > 0) o.threads = threads;
        if (eval_lr) o.eval_lr = eval_lr;
        if (eval_later_scale >= 0) o.eval_later_scale = eval_later_scale;
        o.json = json;
        return eval_rl(&o, dir, ckpt, eval_val);
    }
    if (o.algo && !strcmp(o.algo, "supervised")) { /* a folder written by train --algo supervised */
        if (shots || steps || tasks > 0 || query >= 0 || ways || lake || dataset || eval_classes || images ||
            split_file || finetune || eval_task || eval_lr || eval_later_scale >= 0 || ca.counts || eval_val) {
            fprintf(stderr, "metalearn eval: %s is a supervised run: it is scored on its test split; only --threads "
                            "and --json apply\n", dir);
            return EXIT_USAGE;
        }
        return eval_supervised(dir, ckpt, o.dataset ? o.dataset : "fashion-mnist", threads, json);
    }
    if (eval_lr || eval_later_scale >= 0) {
        fprintf(stderr, "metalearn eval: --%s applies to meta-RL runs; %s is not one\n",
                eval_lr ? "eval-lr" : "eval-later-scale", dir);
        return EXIT_USAGE;
    }
    if (shots) o.eval_shots = shots;
    if (steps) o.eval_steps = steps;
    if (tasks > 0) o.eval_tasks = tasks;
    else if (o.eval_tasks < 1) o.eval_tasks = 600; /* a run trained with --eval-tasks 0: eval is asking now */
    if (query >= 0) o.eval_query = query;
    if (threads > 0) o.threads = threads;
    if (ways > 0) o.eval_ways = ways;
    /* Lake's runs are Omniglot: a run's own lake-runs are skipped when another
     * dataset is evaluated, unless --lake-runs asks for them; none turns them off. */
    const ml_source_info *src = ml_source_find(dataset, NULL);
    if ((lake && !strcmp(lake, "none")) || (!lake && dataset && !(src && src->has_alphabets))) {
        o.lake_runs = NULL;
        o.lake_steps = 0;
    } else if (lake) {
        o.lake_runs = lake;
    }
    if (lake_steps > 0) o.lake_steps = lake_steps;
    if (finetune) o.finetune = finetune;
    if ((dataset || eval_classes || images || split_file) && !ml_run_dataset_is_fewshot(o.dataset)) {
        fprintf(stderr, "metalearn eval: --dataset, --eval-classes and --images apply to few-shot runs; %s is a "
                        "regression run\n", dir);
        return EXIT_USAGE;
    }
    if (images && strcmp(images, "train") && strcmp(images, "test")) {
        fprintf(stderr, "metalearn eval: --images '%s': expected test or train\n", images);
        return EXIT_USAGE;
    }
    if (eval_task && ml_run_dataset_is_fewshot(o.dataset)) {
        fprintf(stderr, "metalearn eval: --task applies to regression runs; %s is a few-shot run (see --dataset)\n", dir);
        return EXIT_USAGE;
    }
    o.eval_task = eval_task;
    o.eval_dataset = dataset;
    o.eval_classes = eval_classes;
    o.eval_images = images;
    o.eval_split_file = split_file;
    o.eval_only = 1;
    o.json = json;
    o.eval_val = eval_val;
    o.resume = NULL;
    o.out = dir;
    ml_run *run;
    ml_run_open_options oo = {.checkpoint = ckpt, .notes = ml_dist_rank() == 0 ? stderr : NULL}; /* mpirun: rank 0 speaks */
    ml_status s = ml_run_open(&run, &o, ML_RUN_EVAL, &oo, err, sizeof err);
    if (s) {
        fprintf(stderr, "metalearn eval: %s\n", err);
        return exit_status(s);
    }
    if (ca.counts) {
        int st = eval_continual(run, &ca, json);
        ml_run_close(run);
        return st;
    }
    cli_progress prog;
    ml_run_eval_options eo = {.out = stdout, .progress = cli_progress_start(&prog, quiet)};
    s = ml_run_evaluate(run, &eo, err, sizeof err);
    cli_progress_end(&prog);
    if (s) fprintf(stderr, "metalearn eval: %s\n", err);
    ml_run_close(run);
    return s ? exit_status(s) : EXIT_OK;
}
