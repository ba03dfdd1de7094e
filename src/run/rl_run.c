/* rl_run.c: a meta-RL run (metalearn/rl.h) in a run folder, the ml_run
 * handle's implementation when --env is set (run.c hands every call here):
 * the settings of the option table mapped to ml_rl_config, config.json, a
 * log line per outer iteration, atomic checkpoints on the checkpoint clock,
 * resume, Ctrl-C, and the evaluation before and after adaptation steps
 * (eval.json), its adaptation rate chosen on validation tasks when given a
 * grid (--eval-lr).
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
#include "run/meta_run.h"
#include "run/rl_run.h"
#include "rl/rl_internal.h"

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
        snprintf(err, errlen, "--algo '%s' with --env: expected maml, fomaml, pretrain, oracle or random", o->algo);
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


ml_status ml__rl_open_learner(const ml_run_config *o, ml_rl **rl, char *err, size_t errlen) {
    ml_rl_config c;
    ml_status s = rl_config(o, &c, err, errlen);
    if (s) return s;
    s = ml_rl_create(&c, rl, err, errlen);
    return s == ML_OK ? ML_OK : s == ML_ERR_NOMEM ? s : ML_ERR_ARG;
}

struct ml__rl_run {
    ml_run_config *cfg; /* the ml_run's copy */
    ml_run_mode mode;
    ml_rl *rl;
    ml_rl_algo algo;
    char dir[4096], log_path[4200], ckpt[4200];
    int64_t start, saved; /* the session's first iteration; the checkpoint on disk (-1: none) */
    int lock;             /* ml_rundir_lock's descriptor while this run writes its folder, else -1 */
    ml_runlog_tail tail;  /* what the log held before this session */
    ml_checkpoint_clock clock;
    double t0, train_s;
    int started;
};

static ml_status save(ml__rl_run *r, char *err, size_t errlen) {
    ml_status s = ml__rl_save_err(r->rl, r->ckpt, err, errlen); /* names the file and why */
    if (s) return s;
    r->saved = ml_rl_iter(r->rl);
    if (r->started) ml_checkpoint_clock_saved(&r->clock, ml_now());
    return ML_OK;
}

/* The folder for this process alone (one writer per run). */
static ml_status take_folder(ml__rl_run *r, char *err, size_t errlen) {
    r->lock = ml_rundir_lock(r->dir, err, errlen);
    return r->lock == -1 ? ML_ERR_STATE : ML_OK;
}

/* A new run: its folder (refusing an existing run unless overwrite), taken
 * before an old run's files are cleared. */
static ml_status start_new(ml__rl_run *r, const ml_run_config *o, char *err, size_t errlen) {
    return ml_rundir_start_new(r->dir, o->overwrite, &r->lock, err, errlen);
}

static ml_status write_config(const ml_run_config *o, const char *dir, char *err, size_t errlen) {
    ml_run_config copy = *o; /* a saved config never carries permission to replace a run */
    copy.overwrite = 0;
    copy.resume = NULL;
    copy.stop_at = 0;
    copy.json = copy.quiet = 0;
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    ml_option_set set = ml_run_config_option_set(&copy);
    return ml_options_write_json(&set, path, err, errlen) ? ML_ERR_IO : ML_OK;
}

static int files_kept(const ml__rl_run *r) { return r->mode == ML_RUN_NEW || r->mode == ML_RUN_RESUME; }

ml_status ml__rl_run_open(ml__rl_run **out, ml_run_config *o, ml_run_mode mode, const char *checkpoint,
                          char *err, size_t errlen) {
    *out = NULL;
    if (!o->out && mode != ML_RUN_SCRATCH) {
        snprintf(err, errlen, "--env: a meta-RL run needs --out DIR (or --resume DIR)");
        return ML_ERR_ARG;
    }
    ml__rl_run *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return ML_ERR_NOMEM;
    }
    r->cfg = o;
    r->mode = mode;
    r->saved = -1;
    r->lock = -1;
    snprintf(r->dir, sizeof r->dir, "%s", o->out ? o->out : "");
    snprintf(r->log_path, sizeof r->log_path, "%s/log.jsonl", r->dir);
    snprintf(r->ckpt, sizeof r->ckpt, "%s/checkpoint.safetensors", r->dir);
    ml_status s = ml__rl_open_learner(o, &r->rl, err, errlen);
    if (!s) ml_rl_algo_parse(o->algo, &r->algo);
    if (s) {
    } else if (mode == ML_RUN_NEW) {
        s = start_new(r, o, err, errlen);
    } else if (mode == ML_RUN_EVAL) {
        const char *ck = checkpoint ? checkpoint : r->ckpt;
        if ((s = ml_rl_load(r->rl, ck)) != ML_OK)
            snprintf(err, errlen, "%s: cannot read the checkpoint of a meta-RL run with these settings (%s)", ck,
                     ml_status_text(s));
    } else if (mode == ML_RUN_RESUME) {
        if (access(r->ckpt, F_OK) != 0 && errno == ENOENT) {
            snprintf(err, errlen, "%s: no checkpoint to resume from (the run stopped before its first); start it "
                                  "again with --out %s --overwrite", r->dir, r->dir);
            s = ML_ERR_STATE;
        } else if ((s = take_folder(r, err, errlen)) != ML_OK) {
            /* another process writes it: err says so */
        } else if ((s = ml_rl_load(r->rl, r->ckpt)) != ML_OK) {
            snprintf(err, errlen, "%s: cannot read the checkpoint of a meta-RL run with these settings (%s)", r->ckpt,
                     ml_status_text(s));
        } else {
            s = ml_runlog_trim(r->log_path, (int)ml_rl_iter(r->rl), &r->tail, err, errlen);
            r->saved = ml_rl_iter(r->rl);
        }
    }
    if (!s && files_kept(r)) {
        ml_rundir_clean_temps(r->dir, NULL, 0);
        s = write_config(o, r->dir, err, errlen);
    }
    if (s) {
        ml__rl_run_close(r);
        return s;
    }
    r->start = ml_rl_iter(r->rl);
    *out = r;
    return ML_OK;
}

void ml__rl_run_close(ml__rl_run *r) {
    if (!r) return;
    ml_rl_destroy(r->rl);
    ml_rundir_unlock(r->lock);
    free(r);
}

int ml__rl_run_iteration(const ml__rl_run *r) { return (int)ml_rl_iter(r->rl); }
int ml__rl_run_tasks_per_step(const ml__rl_run *r) { return r->cfg->meta_batch; }
int ml__rl_run_input_dim(const ml__rl_run *r) { return ml_rl_policy(r->rl)->in_dim; }

void ml__rl_run_info(const ml__rl_run *r, ml_run_info *info) {
    static _Thread_local char spec[64];
    const ml_policy *p = ml_rl_policy(r->rl);
    int n = snprintf(spec, sizeof spec, "policy %d", p->width[0]);
    for (int l = 1; l <= p->n_layers && n > 0 && (size_t)n < sizeof spec; l++)
        n += snprintf(spec + n, sizeof spec - (size_t)n, "-%d", p->width[l]);
    *info = (ml_run_info){.dir = r->dir,
                          .algo = r->cfg->algo,
                          .model_spec = spec,
                          .n_params = ml_rl_n_params(r->rl),
                          .threads = r->cfg->threads,
                          .has_inner_steps = 1, /* every policy adapts at evaluation */
                          .iteration = (int)ml_rl_iter(r->rl),
                          .start_iteration = (int)r->start,
                          .iters = r->cfg->iters,
                          .session_s = r->train_s};
}

/* Where this session stops: --stop-at, --iters, or at once for the random
 * policy (its initialisation is the policy). */
static int64_t stop_iteration(const ml__rl_run *r) {
    const ml_run_config *o = r->cfg;
    if (r->algo == ML_RL_RANDOM) return 0;
    return o->stop_at > 0 && o->stop_at < o->iters ? o->stop_at : o->iters;
}

static void start_clock(ml__rl_run *r) {
    if (r->started) return;
    r->started = 1;
    r->t0 = ml_now();
    ml_checkpoint_clock_start(&r->clock, r->cfg->checkpoint_every, 60.0 * r->cfg->checkpoint_minutes, r->t0);
}

ml_status ml__rl_run_save(ml__rl_run *r, char *err, size_t errlen) {
    if (!files_kept(r)) {
        snprintf(err, errlen, "%s: opened for %s; nothing to save", r->dir,
                 r->mode == ML_RUN_EVAL ? "evaluation" : "scratch training");
        return ML_ERR_STATE;
    }
    return save(r, err, errlen);
}

ml_status ml__rl_run_step(ml__rl_run *r, double *ret, char *err, size_t errlen) {
    if (r->mode == ML_RUN_EVAL) {
        snprintf(err, errlen, "%s: opened for evaluation; it does not train", r->dir);
        return ML_ERR_STATE;
    }
    if (r->algo == ML_RL_RANDOM) {
        snprintf(err, errlen, "--algo random: the untrained initialisation is the policy; there is nothing to train");
        return ML_ERR_STATE;
    }
    start_clock(r);
    ml_rl_stats st;
    ml_status s = ml_rl_step(r->rl, &st);
    if (s) {
        if (r->saved >= 0)
            snprintf(err, errlen, "iteration %lld failed (%s); the last good checkpoint is %s (iteration %lld)",
                     (long long)ml_rl_iter(r->rl) + 1, ml_status_text(s), r->ckpt, (long long)r->saved);
        else
            snprintf(err, errlen, "iteration %lld failed (%s); no checkpoint was saved before this",
                     (long long)ml_rl_iter(r->rl) + 1, ml_status_text(s));
        return s;
    }
    if (ret) *ret = st.valid_return;
    if (!files_kept(r)) return ML_OK;
    char line[512], why[512];
    snprintf(line, sizeof line,
             "{\"iter\":%lld,\"return_before\":%.6g,\"return_after\":%.6g,\"loss\":%.6g,\"kl\":%.6g,"
             "\"elapsed_s\":%.3f}",
             (long long)st.iter, st.train_return, st.valid_return, st.loss_after, st.kl_after,
             r->tail.elapsed_s + ml_now() - r->t0);
    if (ml_jsonl_append(r->log_path, line, why, sizeof why)) {
        snprintf(err, errlen, "%s; the last good checkpoint is %s", why, r->ckpt);
        return ML_ERR_IO;
    }
    if (st.iter == stop_iteration(r) || ml_checkpoint_clock_due(&r->clock, (int)st.iter, ml_now()))
        return save(r, err, errlen);
    return ML_OK;
}

ml_status ml__rl_run_train(ml__rl_run *r, const ml_run_callbacks *cb, char *err, size_t errlen) {
    if (r->mode == ML_RUN_EVAL) {
        snprintf(err, errlen, "%s: opened for evaluation; it does not train", r->dir);
        return ML_ERR_STATE;
    }
    start_clock(r);
    const int64_t end = stop_iteration(r);
    ml_status s = ML_OK;
    int stopped = 0;
    while (ml_rl_iter(r->rl) < end) {
        if (cb && cb->stop && *cb->stop) {
            stopped = 1;
            break;
        }
        double ret;
        if ((s = ml__rl_run_step(r, &ret, err, errlen)) != ML_OK) break;
        if (cb && cb->on_iteration) {
            int it = (int)ml_rl_iter(r->rl);
            double session = ml_now() - r->t0;
            ml_run_progress p = {.iteration = it, .total = r->cfg->iters, .start_iteration = (int)r->start,
                                 .loss = ret, .log_loss = ret, .logged = files_kept(r),
                                 .rate = (it - r->start) / (session + 1e-9)};
            if (cb->on_iteration(cb->user, &p) && it < end) {
                stopped = 1;
                break;
            }
        }
    }
    r->train_s = ml_now() - r->t0;
    if (s) return s;
    /* the random policy's initialisation, or an interrupted session's state */
    if (files_kept(r) && r->saved != ml_rl_iter(r->rl) && (s = save(r, err, errlen)) != ML_OK) return s;
    if (stopped) {
        snprintf(err, errlen, "interrupted at iteration %lld; checkpoint saved; continue with metalearn train --resume %s",
                 (long long)ml_rl_iter(r->rl), r->dir);
        return ML_ERR_INTERRUPTED;
    }
    return ML_OK;
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

/* "0.05,0.1,0.2" -> rates, each finite and >= 0; -1 when malformed. */
static int parse_rates(const char *text, double *out, int max) {
    int n = 0;
    for (const char *p = text; *p;) {
        char *e;
        double v = strtod(p, &e);
        if (e == p || !isfinite(v) || v < 0 || n == max || (*e && *e != ',')) return -1;
        out[n++] = v;
        p = *e ? e + 1 : e;
    }
    return n;
}

#define RL_MAX_RATES 16

int ml__rl_eval_rates(const ml_run_config *o, double *rates, int cap) {
    if (o->eval_lr) return parse_rates(o->eval_lr, rates, cap);
    if (cap < 1) return -1;
    rates[0] = as_given(o->inner_lr);
    return 1;
}

/* One message for a bad --eval-lr, whether the evaluation or a plot's schedule
 * (which names the run folder, DIR) finds it. */
static ml_status bad_eval_lr(const ml_run_config *o, const char *dir, char *err, size_t errlen) {
    snprintf(err, errlen, "%s%s--eval-lr '%s': expected one adaptation rate or a comma list of them to choose "
                          "from on validation tasks (at most %d, each >= 0)", dir ? dir : "", dir ? ": " : "",
             o->eval_lr, RL_MAX_RATES);
    return ML_ERR_ARG;
}

ml__rl_schedule ml__rl_eval_schedule(const ml_run_config *o, double rate) {
    return (ml__rl_schedule){rate, rate * as_given(o->eval_later_scale)};
}

ml_status ml__rl_run_schedule(const ml_run_config *o, const char *dir, ml__rl_schedule *out, char *err,
                              size_t errlen) {
    double rates[RL_MAX_RATES];
    char path[4200], *text = NULL;
    snprintf(path, sizeof path, "%s/eval.json", dir);
    if (ml_file_read_text(path, 0, &text, NULL, NULL, 0) == ML_OK && text) {
        cJSON *j = cJSON_Parse(text);
        ml_free(text);
        const cJSON *lr = cJSON_GetObjectItemCaseSensitive(j, "eval_lr"),
                    *scale = cJSON_GetObjectItemCaseSensitive(j, "eval_later_scale");
        int ok = cJSON_IsNumber(lr) && lr->valuedouble >= 0 && (!scale || (cJSON_IsNumber(scale) && scale->valuedouble >= 0));
        if (ok) {
            ml_run_config as_evaluated = *o;
            as_evaluated.eval_later_scale = scale ? (float)scale->valuedouble : 1.0f;
            *out = ml__rl_eval_schedule(&as_evaluated, lr->valuedouble);
        }
        cJSON_Delete(j);
        if (ok) return ML_OK; /* else an eval.json from before eval_lr: the settings' */
    }
    if (ml__rl_eval_rates(o, rates, RL_MAX_RATES) < 1) return bad_eval_lr(o, dir, err, errlen);
    *out = ml__rl_eval_schedule(o, rates[0]);
    return ML_OK;
}

typedef struct rl_eval {
    int n, steps[ML_RL_EVAL_MAX_STEPS], tasks;
    double mean[ML_RL_EVAL_MAX_STEPS], ci95[ML_RL_EVAL_MAX_STEPS];
    int n_rates, chosen;
    double rates[RL_MAX_RATES], score[RL_MAX_RATES]; /* validation: mean return over the steps > 0 */
} rl_eval;

/* Mean return and interval per reported step count of returns [T][S]. */
static void summarise(const double *ret, int T, int S, rl_eval *e, double *col) {
    for (int i = 0; i < e->n; i++) {
        for (int t = 0; t < T; t++) col[t] = ret[(size_t)t * S + e->steps[i]];
        ml_mean_ci95_t(col, T, &e->mean[i], &e->ci95[i]); /* few distinct tasks: Student t, as bench_maml_rl */
    }
}

/* The evaluation: with several --eval-lr rates, each is tried on as many
 * validation tasks (drawn with eval-seed XOR ML_VAL_SEED_XOR, never the test
 * tasks) and the one with the best mean return over the reported steps > 0
 * adapts on the test tasks (the MAML paper's fine-tuned baselines). */
static ml_status evaluate(ml__rl_run *r, rl_eval *e, char *err, size_t errlen) {
    const ml_run_config *o = r->cfg;
    memset(e, 0, sizeof *e);
    e->n = parse_steps(o->eval_steps ? o->eval_steps : "0,1,2,3", e->steps, ML_RL_EVAL_MAX_STEPS);
    if (e->n < 1) {
        snprintf(err, errlen, "--steps '%s': expected adaptation step counts such as 0,1,2,3 (at most %d, each "
                              "0 to 1000)", o->eval_steps, ML_RL_EVAL_MAX_STEPS);
        return ML_ERR_ARG;
    }
    e->n_rates = ml__rl_eval_rates(o, e->rates, RL_MAX_RATES);
    if (e->n_rates < 1) return bad_eval_lr(o, NULL, err, errlen);
    if (o->eval_tasks < 1) {
        snprintf(err, errlen, "--tasks %d: expected at least 1", o->eval_tasks);
        return ML_ERR_ARG;
    }
    int most = 0, adapted = 0;
    for (int i = 0; i < e->n; i++) {
        most = e->steps[i] > most ? e->steps[i] : most;
        adapted += e->steps[i] > 0;
    }
    int T = e->tasks = o->eval_tasks, S = most + 1;
    double *ret = malloc(sizeof(double) * (size_t)T * S), *col = malloc(sizeof(double) * (size_t)T);
    ml_status s = ret && col ? ML_OK : ML_ERR_NOMEM;
    if (s) snprintf(err, errlen, "out of memory for %d evaluation tasks", T);
    uint64_t val_seed = o->eval_seed ^ ML_VAL_SEED_XOR;
    if (e->n_rates > 1 && adapted) {
        for (int k = 0; k < e->n_rates && !s; k++) {
            ml__rl_schedule at = ml__rl_eval_schedule(o, e->rates[k]);
            if ((s = ml_rl_evaluate_steps(r->rl, T, most, val_seed, at.first, at.later, ret)) != ML_OK) {
                snprintf(err, errlen, "evaluation at --eval-lr %g failed (%s)", e->rates[k], ml_status_text(s));
                break;
            }
            summarise(ret, T, S, e, col);
            double sum = 0;
            for (int i = 0; i < e->n; i++) sum += e->steps[i] > 0 ? e->mean[i] : 0;
            e->score[k] = sum / adapted;
            if (e->score[k] > e->score[e->chosen]) e->chosen = k;
        }
    }
    ml__rl_schedule at = ml__rl_eval_schedule(o, e->rates[e->chosen]);
    if (!s && (s = ml_rl_evaluate_steps(r->rl, T, most, o->eval_val ? val_seed : o->eval_seed, at.first, at.later,
                                        ret)) != ML_OK)
        snprintf(err, errlen, "evaluation failed (%s)", ml_status_text(s));
    if (!s) summarise(ret, T, S, e, col);
    free(ret);
    free(col);
    return s;
}

/* The --json line and eval.json: steps, return, ci95 (what plot reads), the
 * adaptation rate used and, for a grid, the validation scores. */
static cJSON *eval_json(const ml__rl_run *r, const rl_eval *e) {
    const ml_run_config *o = r->cfg;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "env", o->env);
    cJSON_AddStringToObject(j, "algo", o->algo);
    cJSON_AddNumberToObject(j, "iterations", (double)ml_rl_iter(r->rl));
    cJSON_AddNumberToObject(j, "tasks", e->tasks);
    cJSON_AddStringToObject(j, "split", o->eval_val ? "val" : "test");
    cJSON_AddNumberToObject(j, "eval_seed", (double)o->eval_seed);
    cJSON_AddNumberToObject(j, "eval_lr", e->rates[e->chosen]);
    if (o->eval_later_scale != 1.0f) cJSON_AddNumberToObject(j, "eval_later_scale", as_given(o->eval_later_scale));
    if (e->n_rates > 1) {
        cJSON *g = cJSON_AddArrayToObject(j, "eval_lr_grid"), *v = cJSON_AddArrayToObject(j, "val_return");
        for (int k = 0; k < e->n_rates; k++) {
            cJSON_AddItemToArray(g, cJSON_CreateNumber(e->rates[k]));
            cJSON_AddItemToArray(v, cJSON_CreateNumber(e->score[k]));
        }
    }
    cJSON *steps = cJSON_AddArrayToObject(j, "steps"), *ret = cJSON_AddArrayToObject(j, "return"),
          *ci = cJSON_AddArrayToObject(j, "ci95");
    for (int i = 0; i < e->n; i++) {
        cJSON_AddItemToArray(steps, cJSON_CreateNumber(e->steps[i]));
        cJSON_AddItemToArray(ret, cJSON_CreateNumber(e->mean[i]));
        cJSON_AddItemToArray(ci, cJSON_CreateNumber(e->ci95[i]));
    }
    return j;
}

ml_status ml__rl_run_evaluate(ml__rl_run *r, FILE *out, int json, ml_run_eval_result *res, char *err,
                              size_t errlen) {
    rl_eval e;
    ml_status s = evaluate(r, &e, err, errlen);
    if (s) return s;
    const ml_run_config *o = r->cfg;
    if (res) {
        res->rl = 1;
        res->eval_lr = e.rates[e.chosen];
        for (int i = 0; i < e.n && !s; i++) {
            ml_run_eval_row row = {.steps = e.steps[i], .mean = e.mean[i], .ci95 = e.ci95[i]};
            if (ml__eval_result_add(res, &row)) s = ML_ERR_NOMEM;
        }
    }
    /* One rendering, one line: the --json line, RUN/eval.json (as every
     * other result file) and the result's json. */
    cJSON *j = eval_json(r, &e);
    char *line = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (res && line && !(res->json = strdup(line))) s = ML_ERR_NOMEM;
    if (!line || s) {
        cJSON_free(line);
        snprintf(err, errlen, "out of memory");
        return ML_ERR_NOMEM;
    }
    /* Every evaluation of a meta-RL run is kept in RUN/eval.json (plot draws
     * it), an evaluation-only open included. */
    char path[4200];
    snprintf(path, sizeof path, "%s/eval.json", r->dir);
    if (r->mode != ML_RUN_SCRATCH) {
        size_t len = strlen(line);
        line[len] = '\n'; /* a text file's last line; the NUL is put back below */
        s = ml_file_write_atomic(path, line, len + 1, err, errlen);
        line[len] = 0;
    }
    if (!s && out) {
        char later[64] = "";
        if (o->eval_later_scale != 1.0f)
            snprintf(later, sizeof later, ", later steps at %g", e.rates[e.chosen] * as_given(o->eval_later_scale));
        fprintf(out, "%s on %s, %lld outer iterations, %d %s tasks: return before / after adaptation steps at "
                     "rate %g%s (95%% interval)\n", o->algo, o->env, (long long)ml_rl_iter(r->rl), e.tasks,
                o->eval_val ? "validation" : "test", e.rates[e.chosen], later);
        if (e.n_rates > 1) {
            fprintf(out, "adaptation rate chosen on %d validation tasks (mean return over the steps > 0):", e.tasks);
            for (int k = 0; k < e.n_rates; k++)
                fprintf(out, " %g: %.3f%s", e.rates[k], e.score[k], k == e.chosen ? " *" : "");
            fputc('\n', out);
        }
        fprintf(out, "%6s  %12s  %10s\n", "steps", "return", "ci95");
        for (int i = 0; i < e.n; i++) fprintf(out, "%6d  %12.3f  %10.3f\n", e.steps[i], e.mean[i], e.ci95[i]);
        if (json) fprintf(out, "%s\n", line);
    }
    cJSON_free(line);
    return s;
}
