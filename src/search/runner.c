/* runner.c: the library's own trial runner for ml_search_run: in the child
 * the driver forked, the trial trains and is scored in-process through the
 * run API (metalearn/run.h), doing what
 *     metalearn train --config spec.json --out DIR --overwrite --iters R --eval-tasks 0 --quiet --threads T
 *     metalearn train --resume DIR --iters R --eval-tasks 0 --quiet --threads T
 *     metalearn eval DIR --split val --tasks V --json --threads T
 * do, with the same messages, so any program (Python too, where
 * /proc/self/exe is the interpreter) can run a search. */
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "metalearn/run.h"
#include "metalearn/search.h"
#include "search/search_internal.h"

static volatile sig_atomic_t g_trial_stop;
static void on_stop(int sig) {
    (void)sig;
    g_trial_stop = 1;
}

/* What a trial's child needs before it runs anything. */
static void child_setup(void) {
    /* GNU libgomp cannot start threads in a child forked after the parent
     * used OpenMP: the child waits for the parent's thread pool forever. A
     * run is parallel across tasks through its own worker threads and keeps
     * one OpenMP thread inside each op anyway (bit-exact whatever the count). */
    omp_set_num_threads(1);
    /* SIGINT / SIGTERM: the run checkpoints and stops. */
    ml_catch_stop_signals(on_stop);
}

/* The exit status of a failed step, its message as the command's. */
static int fail(const char *command, const char *err, int status) {
    fprintf(stderr, "metalearn %s: %s\n", command, err);
    return status;
}

static int exit_status(ml_status s) { return s == ML_ERR_ARG ? 2 : 1; }

static int trial_train(const ml_search_trial *t, void *user) {
    (void)user;
    child_setup();
    ml_run_config cfg;
    ml_run_config_default(&cfg);
    ml_option_set set = ml_run_config_option_set(&cfg);
    char err[1024], path[4200];
    if (t->resume) {
        /* A checkpoint: an earlier rung, or this one interrupted: continue it. */
        snprintf(path, sizeof path, "%s/config.json", t->dir);
        int r = ml_options_apply_file(&set, path, err, sizeof err);
        if (r) return fail("train", err, r == ML_OPTIONS_FILE_ERROR ? 1 : 2);
        cfg.json = 0;
        cfg.stop_at = 0;
        cfg.overwrite = 0;
        char note[1024];
        if (ml_run_config_legacy(&cfg, t->dir, note, sizeof note)) fprintf(stderr, "train: %s\n", note);
        cfg.resume = t->dir;
    } else {
        int r = ml_options_apply_file(&set, t->spec, err, sizeof err);
        if (r) return fail("train", err, r == ML_OPTIONS_FILE_ERROR ? 1 : 2);
        cfg.overwrite = 1; /* what a start that never reached a checkpoint left (its config, log) */
    }
    cfg.out = t->dir;
    cfg.iters = t->iters;
    cfg.eval_tasks = 0;
    cfg.quiet = 1;
    cfg.threads = t->threads;
    ml_run_config_resolve(&cfg);
    ml_run *run;
    ml_run_open_options oo = {.notes = stderr};
    ml_status s = ml_run_open(&run, &cfg, t->resume ? ML_RUN_RESUME : ML_RUN_NEW, &oo, err, sizeof err);
    if (s) return fail("train", err, exit_status(s));
    ml_run_callbacks cb = {.stop = &g_trial_stop};
    int status = 0;
    s = ml_run_train(run, &cb, err, sizeof err);
    if (s == ML_ERR_INTERRUPTED) status = fail("train", err, 130);
    else if (s) status = fail("train", err, 1);
    else if ((s = ml_run_evaluate(run, &(ml_run_eval_options){.out = stdout}, err, sizeof err)))
        status = fail("train", err, exit_status(s));
    ml_run_close(run);
    return status;
}

static int trial_evaluate(const ml_search_trial *t, void *user) {
    (void)user;
    child_setup();
    ml_run_config cfg;
    char err[1024], ckpt[4200];
    if (ml_run_config_load_run(&cfg, t->dir, err, sizeof err)) return fail("eval", err, 1);
    cfg.eval_tasks = t->val_tasks;
    cfg.threads = t->threads;
    cfg.eval_only = 1;
    cfg.json = 1;
    cfg.eval_val = 1;
    cfg.resume = NULL;
    cfg.out = t->dir;
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", t->dir);
    ml_run *run;
    ml_run_open_options oo = {.checkpoint = ckpt, .notes = stderr};
    ml_status s = ml_run_open(&run, &cfg, ML_RUN_EVAL, &oo, err, sizeof err);
    if (s) return fail("eval", err, exit_status(s));
    s = ml_run_evaluate(run, &(ml_run_eval_options){.out = stdout}, err, sizeof err);
    ml_run_close(run);
    return s ? fail("eval", err, exit_status(s)) : 0;
}

static const ml_search_runner k_in_process = {trial_train, trial_evaluate, NULL};

const ml_search_runner *ml__search_default_runner(void) { return &k_in_process; }
