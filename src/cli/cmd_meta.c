/* cmd_meta.c: meta-learning on regression task families from the command
 * line: `metalearn train --algo maml|...` (run folder, log, checkpoints,
 * resume, final evaluation) and `metalearn eval RUN`.
 *
 * A run folder holds config.json (the effective settings, readable by
 * --config), log.jsonl (one JSON object per log interval), checkpoint.safetensors
 * (parameters by name, Meta-SGD rates as alpha.<name>, outer optimizer state
 * as optim.<state>, and in the metadata the iteration and the task RNG, so
 * --resume continues bit-for-bit) and eval.json (the final evaluation). */
/* sigaltstack and SA_ONSTACK are XSI, not plain POSIX. */
#define _XOPEN_SOURCE 700
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
#include "metalearn/options.h"
#include "cli/train_opts.h"
#include "metalearn/eval.h"
#include "metalearn/images.h"
#include "metalearn/io.h"
#include "metalearn/meta.h"
#include "metalearn/rundir.h"

static volatile sig_atomic_t g_interrupted;
static void on_signal(int sig) { g_interrupted = sig; }

/* ---- progress ------------------------------------------------------------------------- */

static void format_duration(double s, char *buf, size_t len) {
    if (!isfinite(s) || s < 0) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, len, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else snprintf(buf, len, "%ldm%02lds", t / 60, t % 60);
}

typedef struct train_view {
    int tty, quiet;
    double last_draw;
} train_view;

/* A bar on a terminal (redrawn at most 10 times a second); plain lines every
 * log interval otherwise, so logs of batch jobs stay readable. */
static int on_iteration(void *user, const ml_run_progress *p) {
    train_view *v = user;
    if (v->quiet || (!v->tty && !p->logged)) return 0;
    int final = p->iteration == p->total;
    double loss = v->tty && !isfinite(p->log_loss) ? p->loss : p->log_loss;
    char eta[32];
    format_duration((p->total - p->iteration) / (p->rate > 0 ? p->rate : 1e-9), eta, sizeof eta);
    if (!v->tty) {
        fprintf(stderr, "iter %d/%d  loss %.4f  %.1f it/s  ETA %s\n", p->iteration, p->total, loss, p->rate, eta);
        return 0;
    }
    double now = ml_now();
    if (!final && now - v->last_draw < 0.1) return 0;
    v->last_draw = now;
    int width = 30, filled = (int)((double)width * p->iteration / p->total);
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
    bar[width] = 0;
    fprintf(stderr, "\r[%s] %d/%d  %.1f it/s  ETA %s  loss %.4f ", bar, p->iteration, p->total, p->rate, eta, loss);
    if (final) fputc('\n', stderr);
    return 0;
}

/* ---- training ----------------------------------------------------------------------------- */

/* 2 for a setting the library refused, else 1. */
static int exit_status(ml_status s) { return s == ML_ERR_ARG ? EXIT_USAGE : EXIT_FAIL; }

static void banner(const ml_run_config *o, const ml_run_info *in) {
    ml_algo algo = (ml_algo)0;
    ml_algo_parse(in->algo, &algo); /* the run's own name: it parses */
    if (ml_algo_info(algo)->batch_training)
        fprintf(stderr, "train: pretrain on %s, model %s (%lld parameters) + a %d-class head, minibatch %d, %s %g, "
                        "%d threads -> %s\n", o->dataset, in->model_spec, (long long)in->n_params,
                in->train_classes, in->batch_size, o->optimizer, o->outer_lr, in->threads, in->dir);
    else {
        char inner[96] = "an episode head (no inner steps)";
        if (in->has_inner_steps) snprintf(inner, sizeof inner, "%d inner step(s) at %g", o->inner_steps, o->inner_lr);
        fprintf(stderr, "train: %s on %s, model %s (%lld parameters), K=%d, meta-batch %d, %s, outer %s %g, "
                        "%d threads -> %s\n",
                o->algo, in->fewshot ? o->dataset : o->task, in->model_spec, (long long)in->n_params, o->shots,
                o->meta_batch, inner, o->optimizer, o->outer_lr, in->threads, in->dir);
    }
    if (!o->resume && ml_algo_info(algo)->init_takes_extras && strstr(o->init, ".safetensors"))
        fprintf(stderr, "train: --init %s: parameters%s\n", o->init,
                in->init_rates ? " and Meta-SGD rates (alpha.NAME)" : "; no alpha.NAME rates in it, so the rates start at --inner-lr");
}

int run_meta(ml_run_config *o) {
    char err[1024];
    ml_run *run;
    ml_run_open_options oo = {.notes = stderr};
    ml_status s = ml_run_open(&run, o, o->resume ? ML_RUN_RESUME : ML_RUN_NEW, &oo, err, sizeof err);
    if (s) {
        fprintf(stderr, "metalearn train: %s\n", err);
        return exit_status(s);
    }
    ml_run_info in;
    ml_run_get_info(run, &in);
    if (!o->quiet) banner(o, &in);

    /* The handler runs on its own stack. oneDNN 2.6's JIT GEMM points rsp
     * into the heap while it runs, so a signal frame pushed there corrupted
     * the heap (seen: 1 in 3 Ctrl-Cs aborted; oneDNN issue #4845, fixed in
     * 3.11). Worker threads never take the signal (main.c, pool.c). */
    static char alt_stack[1 << 16];
    stack_t alt = {.ss_sp = alt_stack, .ss_size = sizeof alt_stack, .ss_flags = 0};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    if (sigaltstack(&alt, NULL) == 0) sa.sa_flags |= SA_ONSTACK;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    train_view view = {.tty = isatty(2) && !o->quiet, .quiet = o->quiet};
    ml_run_callbacks cb = {.on_iteration = on_iteration, .user = &view, .stop = &g_interrupted};
    int status = EXIT_FAIL;
    s = ml_run_train(run, &cb, err, sizeof err);
    if (s == ML_ERR_INTERRUPTED) {
        if (view.tty) fputc('\n', stderr);
        fprintf(stderr, "metalearn train: %s\n", err);
        status = 130;
        goto done;
    }
    if (s) {
        fprintf(stderr, "metalearn train: %s\n", err);
        goto done;
    }
    ml_run_get_info(run, &in);
    if (!o->quiet && in.iteration > in.start_iteration)
        fprintf(stderr, "train: %d iterations in %.1f s (%.1f it/s)\n", in.iteration - in.start_iteration, in.session_s,
                (in.iteration - in.start_iteration) / (in.session_s + 1e-9));
    if (in.iteration < o->iters) { /* --stop-at: the checkpoint was saved in the loop */
        if (view.tty) fputc('\n', stderr);
        fprintf(stderr, "metalearn train: stopped at iteration %d of %d (--stop-at); continue with metalearn train "
                        "--resume %s\n", in.iteration, o->iters, in.dir);
        status = EXIT_OK;
        goto done;
    }
    s = ml_run_evaluate(run, &(ml_run_eval_options){.out = stdout}, err, sizeof err);
    if (s) fprintf(stderr, "metalearn train: %s\n", err);
    status = s ? exit_status(s) : EXIT_OK;
done:
    ml_run_close(run);
    return status;
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
    int64_t per = (int64_t)lr.size * lr.size, raw = (int64_t)lr.raw_h * lr.raw_w;
    double errors[64], mean = 0;
    for (int r = 0; r < lr.n_runs && r < 64; r++) {
        int wrong = 0;
        for (int t = 0; t < lr.n_test; t++) {
            int64_t ti = (int64_t)r * lr.n_test + t;
            int best = 0;
            double best_d = INFINITY;
            for (int c = 0; c < lr.n_train; c++) {
                int64_t ci = (int64_t)r * lr.n_train + c;
                double d = mhd ? ml_mhd(lr.test_raw + ti * raw, lr.train_raw + ci * raw, lr.raw_h, lr.raw_w)
                               : ml_pixel_distance(lr.test_x + ti * per, lr.train_x + ci * per, per);
                if (d < best_d) {
                    best_d = d;
                    best = c;
                }
            }
            wrong += best != lr.test_label[ti];
        }
        errors[r] = (double)wrong / lr.n_test;
        mean += errors[r] / lr.n_runs;
    }
    printf("Lake's one-shot runs, 1-nearest neighbour by %s distance:\n", mhd ? "Modified Hausdorff" : "pixel");
    for (int r = 0; r < lr.n_runs; r++) printf("  run %02d  %5.1f%%\n", r + 1, 100 * errors[r]);
    printf("  mean    %5.1f%%\n", 100 * mean);
    if (json) {
        printf("{\"command\":\"eval\",\"algo\":\"nn\",\"distance\":\"%s\",\"lake_runs\":{\"errors\":[", mhd ? "mhd" : "pixel");
        for (int r = 0; r < lr.n_runs; r++) printf("%s%.4f", r ? "," : "", errors[r]);
        printf("],\"mean_error\":%.4f}}\n", mean);
    }
    ml_lake_runs_free(&lr);
    return EXIT_OK;
}

int cmd_eval(int argc, char **argv) {
    static ml_run_config o;
    const char *shots = NULL, *steps = NULL, *lake = NULL, *algo = NULL, *distance = "mhd", *split = "test";
    const char *eval_task = NULL;
    const char *dataset = NULL, *eval_classes = NULL, *images = NULL, *finetune = NULL, *split_file = NULL;
    int tasks = -1, query = -1, threads = 0, json = 0, ways = 0, lake_steps = 0, quiet = 0;
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
        {"threads", ML_OPT_INT, &threads, "worker threads (default: all cores)", 0, 1024},
        {"json", ML_OPT_FLAG, &json, "print the results as JSON on the last line", 0, 0},
        {"quiet", ML_OPT_FLAG, &quiet, "no progress on stderr (a bar on a terminal, else a line per 10% or 30 s)", 0, 0},
        {"algo", ML_OPT_STRING, &algo, "nn: the learning-free nearest-neighbour baseline (no RUN; needs --lake-runs)", 1, 0},
        {"distance", ML_OPT_STRING, &distance, "nn: pixel (L2 on 28x28) or mhd (Modified Hausdorff on strokes, default)", 1, 0},
        {"dataset", ML_OPT_STRING, &dataset, "few-shot: evaluate on this dataset instead (omniglot:PATH[,PATH], fashion-mnist, idx:DIR, folder:DIR)", 1, 0},
        {"eval-classes", ML_OPT_STRING, &eval_classes, "few-shot: all classes of --dataset (default for another dataset) or test (its split)", 1, 0},
        {"split-file", ML_OPT_STRING, &split_file, "few-shot: test classes from this split.json (e.g. another run's, same dataset)", 1, 0},
        {"images", ML_OPT_STRING, &images, "few-shot --dataset fashion-mnist|idx:DIR: test (t10k files, default) or train images", 1, 0},
        {"finetune", ML_OPT_STRING, &finetune, "pretrain: fine-tune the new head only (head) or the whole network (all)", 1, 0},
    };
    const ml_option_set cmd = {"eval", "RUN|CHECKPOINT [--split test|val] [--shots 5,10,20] [--steps 1,10] [--tasks 600] [--ways N] "
                                 "[--lake-runs PATH|none] [--dataset D [--eval-classes all|test]] [--task csv:HELD_OUT.csv]",
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
                         "classes (cross-domain; all of its classes by default, its test images for IDX).",
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
    if (shots) o.eval_shots = shots;
    if (steps) o.eval_steps = steps;
    if (tasks > 0) o.eval_tasks = tasks;
    else if (o.eval_tasks < 1) o.eval_tasks = 600; /* a run trained with --eval-tasks 0: eval is asking now */
    if (query >= 0) o.eval_query = query;
    if (threads > 0) o.threads = threads;
    if (ways > 0) o.eval_ways = ways;
    /* Lake's runs are Omniglot: a run's own lake-runs are skipped when another
     * dataset is evaluated, unless --lake-runs asks for them; none turns them off. */
    if ((lake && !strcmp(lake, "none")) || (!lake && dataset && strncmp(dataset, "omniglot:", 9))) {
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
    ml_run_open_options oo = {.checkpoint = ckpt, .notes = stderr};
    ml_status s = ml_run_open(&run, &o, ML_RUN_EVAL, &oo, err, sizeof err);
    if (s) {
        fprintf(stderr, "metalearn eval: %s\n", err);
        return exit_status(s);
    }
    cli_progress prog;
    ml_run_eval_options eo = {.out = stdout, .progress = cli_progress_start(&prog, quiet)};
    s = ml_run_evaluate(run, &eo, err, sizeof err);
    cli_progress_end(&prog);
    if (s) fprintf(stderr, "metalearn eval: %s\n", err);
    ml_run_close(run);
    return s ? exit_status(s) : EXIT_OK;
}
