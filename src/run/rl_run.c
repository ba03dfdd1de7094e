/* rl_run.c: a meta-RL run (metalearn/rl.h) in a run folder, what `metalearn
 * train --env ...` and `metalearn eval RUN` do for it: the settings of the
 * option table mapped to ml_rl_config, config.json, a log line per outer
 * iteration, atomic checkpoints on the checkpoint clock, resume, Ctrl-C, and
 * the evaluation before and after adaptation steps (eval.json).
 * Bit-exact resume holds because an iteration's tasks and rollouts are drawn
 * from (seed, iteration, task) and the checkpoint holds the rest of the
 * state (parameters, Adam moments and step, iteration). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include "metalearn/dist.h"
#include "metalearn/eval.h"
#include "metalearn/io.h"
#include "metalearn/rl.h"
#include "metalearn/run.h"
#include "metalearn/rundir.h"
#include "run/rl_run.h"

int ml_run_config_is_rl(const ml_run_config *c) { return c->env != NULL; }

/* A rate of the option table (a float) as the decimal it was given as, in
 * the learner's double: 0.01f would otherwise reach Adam as 0.0099999998,
 * and the run would differ from bench_maml_rl's with the same settings. */
static double as_given(float v) {
    char text[32];
    snprintf(text, sizeof text, "%.7g", v);
    return strtod(text, NULL);
}

/* The run's settings as the learner's; every refusal names its option. */
static ml_status rl_config(const ml_run_config *o, ml_rl_config *c, char *err, size_t errlen) {
    *c = ml_rl_config_default();
    if (ml_dist_size() > 1) {
        snprintf(err, errlen, "--env: meta-RL runs as one process (start it without mpirun; its threads already "
                              "share the tasks); mpirun started %d processes", ml_dist_size());
        return ML_ERR_ARG;
    }
    if (o->dataset) {
        snprintf(err, errlen, "--env %s and --dataset %s: a meta-RL run has no dataset (its tasks are the "
                              "environment's); give one of them", o->env, o->dataset);
        return ML_ERR_ARG;
    }
    if (o->federated) {
        snprintf(err, errlen, "--env with --federated: federated meta-RL does not exist");
        return ML_ERR_ARG;
    }
    c->env = o->env;
    if (!ml_rl_algo_parse(o->algo, &c->algo)) {
        snprintf(err, errlen, "--algo '%s' with --env: expected maml, fomaml, pretrain or oracle", o->algo);
        return ML_ERR_ARG;
    }
    if (!strcmp(o->outer, "trpo")) c->outer = ML_RL_TRPO;
    else if (!strcmp(o->outer, "adam")) c->outer = ML_RL_ADAM;
    else {
        snprintf(err, errlen, "--outer '%s': expected trpo or adam", o->outer);
        return ML_ERR_ARG;
    }
    c->rollouts = o->rollouts;
    c->horizon = o->horizon;
    c->meta_batch = o->meta_batch;
    c->inner_steps = o->inner_steps;
    c->inner_lr = as_given(o->inner_lr);
    c->outer_lr = as_given(o->outer_lr);
    c->seed = o->seed;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    c->threads = o->threads > 0 ? o->threads : cores > 0 ? (int)cores : 1;
    return ML_OK;
}

ml_status ml__rl_run_open(const ml_run_config *o, ml_rl **rl, char *err, size_t errlen) {
    ml_rl_config c;
    ml_status s = rl_config(o, &c, err, errlen);
    if (s) return s;
    s = ml_rl_create(&c, rl, err, errlen);
    return s == ML_OK ? ML_OK : s == ML_ERR_NOMEM ? s : ML_ERR_ARG;
}

static ml_status save(ml_rl *rl, const char *path, char *err, size_t errlen) {
    ml_status s = ml_rl_save(rl, path);
    if (s) snprintf(err, errlen, "%s: cannot write the checkpoint (%s)", path, ml_status_text(s));
    return s;
}

/* A new run: its folder (refusing an existing run unless overwrite) and config.json. */
static ml_status start_new(const ml_run_config *o, const char *dir, char *err, size_t errlen) {
    const char *held = ml_rundir_existing(dir);
    if (held && !o->overwrite) {
        snprintf(err, errlen, "%s already holds a run (%s): continue it with --resume %s, replace it with "
                              "--overwrite, or choose another --out", dir, held, dir);
        return ML_ERR_STATE;
    }
    if (ml_mkdir_p(dir, err, errlen)) return ML_ERR_IO;
    if (held && ml_rundir_clear(dir, 0, err, errlen)) return ML_ERR_IO;
    return ML_OK;
}

static ml_status write_config(const ml_run_config *o, const char *dir, char *err, size_t errlen) {
    ml_run_config copy = *o; /* a saved config never carries permission to replace a run */
    copy.overwrite = 0;
    copy.resume = NULL;
    copy.stop_at = 0;
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    ml_option_set set = ml_run_config_option_set(&copy);
    return ml_options_write_json(&set, path, err, errlen) ? ML_ERR_IO : ML_OK;
}

ml_status ml_rl_run_train(const ml_run_config *o, ml_run_mode mode, const ml_run_callbacks *cb, FILE *notes,
                          char *err, size_t errlen) {
    const char *dir = mode == ML_RUN_RESUME && o->resume ? o->resume : o->out;
    if (!dir || (mode != ML_RUN_NEW && mode != ML_RUN_RESUME)) {
        snprintf(err, errlen, "--env: a meta-RL run needs --out DIR (or --resume DIR)");
        return ML_ERR_ARG;
    }
    ml_rl *rl = NULL;
    ml_status s = ml__rl_run_open(o, &rl, err, errlen);
    if (s) return s;
    char log_path[4200], ckpt[4200], why[512];
    snprintf(log_path, sizeof log_path, "%s/log.jsonl", dir);
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", dir);
    ml_runlog_tail tail = {0};
    if (mode == ML_RUN_NEW) {
        s = start_new(o, dir, err, errlen);
    } else if (access(ckpt, F_OK) != 0 && errno == ENOENT) {
        snprintf(err, errlen, "%s: no checkpoint to resume from (the run stopped before its first); start it again "
                              "with --out %s --overwrite", dir, dir);
        s = ML_ERR_STATE;
    } else if ((s = ml_rl_load(rl, ckpt)) != ML_OK) {
        snprintf(err, errlen, "%s: cannot read the checkpoint of a meta-RL run with these settings (%s)", ckpt,
                 ml_status_text(s));
    } else {
        s = ml_runlog_trim(log_path, (int)ml_rl_iter(rl), &tail, err, errlen);
    }
    if (!s) {
        ml_rundir_clean_temps(dir, NULL, 0);
        s = write_config(o, dir, err, errlen);
    }
    int64_t start = ml_rl_iter(rl), saved = mode == ML_RUN_RESUME ? start : -1;
    int64_t end = o->stop_at > 0 && o->stop_at < o->iters ? o->stop_at : o->iters;
    if (!s && notes && start >= end)
        fprintf(notes, "train: %s already has %lld iterations (--iters %d)\n", dir, (long long)start, o->iters);
    ml_checkpoint_clock clock;
    double t0 = ml_now();
    ml_checkpoint_clock_start(&clock, o->checkpoint_every, 60.0 * o->checkpoint_minutes, t0);
    while (!s && ml_rl_iter(rl) < end) {
        if (cb && cb->stop && *cb->stop) {
            int64_t it = ml_rl_iter(rl);
            if (it != saved && (s = save(rl, ckpt, err, errlen))) break;
            snprintf(err, errlen, "interrupted at iteration %lld; continue with metalearn train --resume %s",
                     (long long)it, dir);
            s = ML_ERR_INTERRUPTED;
            break;
        }
        ml_rl_stats st;
        if ((s = ml_rl_step(rl, &st)) != ML_OK) {
            snprintf(err, errlen, "iteration %lld failed (%s); the last good checkpoint is %s",
                     (long long)ml_rl_iter(rl) + 1, ml_status_text(s), ckpt);
            break;
        }
        double session = ml_now() - t0;
        char line[512];
        snprintf(line, sizeof line,
                 "{\"iter\":%lld,\"return_before\":%.6g,\"return_after\":%.6g,\"loss\":%.6g,\"kl\":%.6g,"
                 "\"elapsed_s\":%.3f}",
                 (long long)st.iter, st.train_return, st.valid_return, st.loss_after, st.kl_after,
                 tail.elapsed_s + session);
        if (ml_jsonl_append(log_path, line, why, sizeof why)) {
            snprintf(err, errlen, "%s; the last good checkpoint is %s", why, ckpt);
            s = ML_ERR_IO;
            break;
        }
        int it = (int)st.iter;
        if (it == end || ml_checkpoint_clock_due(&clock, it, ml_now())) {
            if ((s = save(rl, ckpt, err, errlen))) break;
            saved = it;
            ml_checkpoint_clock_saved(&clock, ml_now());
        }
        if (cb && cb->on_iteration) {
            ml_run_progress p = {.iteration = it, .total = o->iters, .start_iteration = (int)start,
                                 .loss = st.valid_return, .log_loss = st.valid_return, .logged = 1,
                                 .rate = (it - start) / (session + 1e-9)};
            if (cb->on_iteration(cb->user, &p) && ml_rl_iter(rl) < end) {
                if ((s = save(rl, ckpt, err, errlen))) break;
                snprintf(err, errlen, "stopped at iteration %d; continue with metalearn train --resume %s", it, dir);
                s = ML_ERR_INTERRUPTED;
            }
        }
    }
    ml_rl_destroy(rl);
    return s;
}

/* "0,1,2,3" -> step counts as given, each in [0, 1000]; -1 when malformed. */
static int parse_steps(const char *text, int *out, int max) {
    int n = 0;
    for (const char *p = text; *p;) {
        char *e;
        long v = strtol(p, &e, 10);
        if (e == p || v < 0 || v > 1000 || n == max || (*e && *e != ',')) return -1;
        out[n++] = (int)v;
        p = *e ? e + 1 : e;
    }
    return n;
}

static ml_status write_eval(const ml_run_config *o, const char *dir, const ml_rl_run_eval *r, char *err,
                            size_t errlen) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "env", o->env);
    cJSON_AddStringToObject(j, "algo", o->algo);
    cJSON_AddNumberToObject(j, "tasks", r->tasks);
    cJSON_AddNumberToObject(j, "eval_seed", (double)o->eval_seed);
    cJSON *steps = cJSON_AddArrayToObject(j, "steps"), *ret = cJSON_AddArrayToObject(j, "return"),
          *ci = cJSON_AddArrayToObject(j, "ci95");
    for (int i = 0; i < r->n; i++) {
        cJSON_AddItemToArray(steps, cJSON_CreateNumber(r->steps[i]));
        cJSON_AddItemToArray(ret, cJSON_CreateNumber(r->mean[i]));
        cJSON_AddItemToArray(ci, cJSON_CreateNumber(r->ci95[i]));
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/eval.json", dir);
    ml_status s = ml_json_write_atomic(path, j, err, errlen);
    cJSON_Delete(j);
    return s;
}

ml_status ml_rl_run_evaluate(const ml_run_config *o, ml_rl_run_eval *res, char *err, size_t errlen) {
    memset(res, 0, sizeof *res);
    const char *dir = o->out;
    int n = parse_steps(o->eval_steps ? o->eval_steps : "0,1,2,3", res->steps, ML_RL_EVAL_MAX_STEPS);
    if (n < 1) {
        snprintf(err, errlen, "--steps '%s': expected adaptation step counts such as 0,1,2,3 (at most %d, each "
                              "0 to 1000)", o->eval_steps, ML_RL_EVAL_MAX_STEPS);
        return ML_ERR_ARG;
    }
    if (o->eval_tasks < 1) {
        snprintf(err, errlen, "--tasks %d: expected at least 1", o->eval_tasks);
        return ML_ERR_ARG;
    }
    int most = 0;
    for (int i = 0; i < n; i++) most = res->steps[i] > most ? res->steps[i] : most;
    ml_rl *rl = NULL;
    ml_status s = ml__rl_run_open(o, &rl, err, errlen);
    if (s) return s;
    char ckpt[4200];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", dir);
    if ((s = ml_rl_load(rl, ckpt)) != ML_OK) {
        snprintf(err, errlen, "%s: cannot read the checkpoint (%s)", ckpt, ml_status_text(s));
        ml_rl_destroy(rl);
        return s;
    }
    int T = o->eval_tasks, S = most + 1;
    double *r = malloc(sizeof(double) * (size_t)T * S), *col = malloc(sizeof(double) * (size_t)T);
    if (!r || !col) {
        snprintf(err, errlen, "out of memory for %d evaluation tasks", T);
        s = ML_ERR_NOMEM;
    } else if ((s = ml_rl_evaluate(rl, T, most, o->eval_seed, r)) != ML_OK) {
        snprintf(err, errlen, "evaluation failed (%s)", ml_status_text(s));
    } else {
        res->n = n;
        res->tasks = T;
        for (int i = 0; i < n; i++) {
            for (int t = 0; t < T; t++) col[t] = r[(size_t)t * S + res->steps[i]];
            ml_mean_ci95_t(col, T, &res->mean[i], &res->ci95[i]); /* few distinct tasks: Student t, as bench_maml_rl */
        }
        s = write_eval(o, dir, res, err, errlen);
    }
    free(r);
    free(col);
    ml_rl_destroy(rl);
    return s;
}
