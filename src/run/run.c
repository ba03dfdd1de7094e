/* run.c: the public run handle of metalearn/run.h: opening a run folder (new,
 * resume, eval), the outer loop with its log, checkpoint clock and stop
 * flag, and the final evaluation. The pieces underneath (setup, sampling,
 * checkpoints, evaluation) are meta_run.c and fewshot.c; this file owns the
 * run folder's life cycle. It never prints except to the streams the caller
 * gives (notes, the evaluation's out). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metalearn/continual.h"
#include "metalearn/dist.h"
#include "metalearn/io.h"
#include "metalearn/rundir.h"
#include "metalearn/run.h"
#include "run/meta_run.h"
#include "run/rl_run.h"

struct ml_run {
    ml__rl_run *rl; /* --env: a meta-RL run (rl_run.c), which every call below hands on */
    meta_run st;
    ml_run_config cfg;
    ml_run_mode mode;
    char log_path[4096], ckpt_path[4096];
    int it, start_it;
    int saved_it;          /* the iteration of the checkpoint on disk, -1: none */
    ml_runlog_tail logged; /* what the log held before this session (resume) */
    ml_checkpoint_clock clock;
    double t_start, last_loss;
    double train_s; /* this session's training seconds, as ml_run_train ended */
    int t_started;
    int agreed;      /* the processes of an mpirun job have compared their setups */
    int all_stopped; /* ... and found a failure: every process knows it */
    int lock;        /* ml_rundir_lock's descriptor while this run writes its folder, else -1 */
};

/* An mpirun job: every process sets the run up (the same data, the same
 * tasks), then they agree before anything is written: a process that failed
 * (e.g. cannot read the data) or that runs other settings or another build
 * makes every process fail with its message. One process: nothing to do. */
ml_status ml_run_config_agree(ml_run_config *c, int mode, ml_status s, char *err, size_t errlen) {
    if (ml_dist_size() == 1) return s;
    char *json = NULL;
    uint64_t fp = ml_dist_hash(0, &mode, sizeof mode);
    if (!s) {
        /* What cannot change the result may differ: threads (per machine), output. */
        int threads = c->threads, quiet = c->quiet, json_out = c->json;
        c->threads = c->quiet = c->json = 0;
        ml_option_set set = ml_run_config_option_set(c);
        json = ml_options_to_json(&set);
        c->threads = threads, c->quiet = quiet, c->json = json_out;
        if (json) fp = ml_dist_hash(fp, json, strlen(json));
    }
    fp ^= ml_dist_build_id();
    ml_free(json);
    char why[1024];
    snprintf(why, sizeof why, "%s", s ? err : "");
    int first = 0;
    if (ml_dist_agree((int)s, why, fp, &first, err, errlen) == 0) return ML_OK;
    return first ? (ml_status)first : ML_ERR_ARG; /* the failing rank's status: every rank exits alike */
}

static ml_status agree(ml_run *r, ml_status s, char *err, size_t errlen) {
    if (r->agreed || ml_dist_size() == 1) return s;
    r->agreed = 1;
    s = ml_run_config_agree(&r->cfg, (int)r->mode, s, err, errlen);
    if (s) r->all_stopped = 1;
    return s;
}

/* A write by rank 0 alone (the run folder is one): its outcome reaches every
 * process, so all go on or all stop. */
static int shared_failure(int failed, const char *what, char *err, size_t errlen) {
    if (!ml_dist_any(failed)) return 0;
    if (!failed) snprintf(err, errlen, "rank 0 failed to write %s", what);
    return 1;
}

/* The internal steps' statuses (ML__RUN_USAGE: a setting) as ml_status. */
static ml_status status_of(int st) { return st == 0 ? ML_OK : st == ML__RUN_USAGE ? ML_ERR_ARG : ML_ERR_IO; }

static ml_status open_run(ml_run *r, ml_run_mode mode, const ml_run_open_options *opt, char *err, size_t errlen) {
    ml_run_config *o = &r->cfg;
    char path[4096];
    const char *held = NULL;
    if (mode == ML_RUN_NEW) {
        /* A new run never lands on an old one unasked. */
        meta_run_dir(o, path, sizeof path);
        ml_status s = ml_rundir_check_new(path, o->overwrite, &held, err, errlen);
        if (s) return s;
    }
    if (mode == ML_RUN_EVAL) {
        o->eval_only = 1;
        o->resume = NULL;
    }
    if (mode == ML_RUN_SCRATCH) o->resume = NULL;
    r->st.notes = o->quiet ? NULL : opt ? opt->notes : NULL;
    int st = meta_run_setup(&r->st, o, err, errlen);
    ml_status agreed = agree(r, status_of(st), err, errlen);
    if (agreed) return agreed;
    int writer = ml_dist_rank() == 0; /* of the processes of an mpirun job, one writes the folder */
    r->st.out = stdout;
    fed_use_transport(&r->st, opt ? opt->transport : NULL);
    snprintf(r->log_path, sizeof r->log_path, "%s/log.jsonl", r->st.dir);
    snprintf(r->ckpt_path, sizeof r->ckpt_path, "%s/checkpoint.safetensors", r->st.dir);
    r->saved_it = -1;
    if (mode == ML_RUN_EVAL) {
        r->st.write_eval_file = 0; /* eval leaves the run's own eval.json alone */
        const char *ckpt = opt && opt->checkpoint ? opt->checkpoint : r->ckpt_path;
        if (meta_run_load_checkpoint(&r->st, ckpt, 0, &r->it, err, errlen)) return ML_ERR_IO;
        r->start_it = r->it;
        return ML_OK;
    }
    st = fewshot_select_setup(&r->st, o, err, errlen);
    if (st) return status_of(st);
    if (mode == ML_RUN_SCRATCH) return ML_OK;
    if (writer && ml_mkdir_p(r->st.dir, err, errlen)) return ML_ERR_IO;
    /* One writer per folder; a run that another process finished while this
     * one was setting up is refused as it would have been at the start. */
    if (writer && (r->lock = ml_rundir_lock(r->st.dir, err, errlen)) == -1) return ML_ERR_STATE;
    if (writer && mode == ML_RUN_NEW && ml_rundir_check_new(r->st.dir, o->overwrite, &held, err, errlen))
        return ML_ERR_STATE;
    /* --overwrite: the old run goes now that the new one is set up, and
     * every process has agreed; then the new run's split is written. */
    if (writer && held && ml_rundir_clear(r->st.dir, 0, err, errlen)) return ML_ERR_IO;
    if (writer) ml_rundir_clean_temps(r->st.dir, NULL, 0); /* of writers killed mid-write */
    if (writer && meta_run_save_split(&r->st, err, errlen)) return ML_ERR_IO;
    if (mode == ML_RUN_RESUME) {
        if (access(r->ckpt_path, F_OK) != 0 && errno == ENOENT) { /* killed before its first checkpoint */
            snprintf(err, errlen, "%s: no checkpoint to resume from (the run stopped before its first); start it "
                                  "again with --out %s --overwrite", r->st.dir, r->st.dir);
            return ML_ERR_STATE;
        }
        if (meta_run_load_checkpoint(&r->st, r->ckpt_path, 1, &r->start_it, err, errlen)) return ML_ERR_IO;
        /* The log continues from the checkpoint: lines of iterations after
         * it (redone now) and a torn last line go. */
        if (writer && ml_runlog_trim(r->log_path, r->start_it, &r->logged, err, errlen)) return ML_ERR_IO;
        if (r->start_it >= o->iters && r->st.notes)
            fprintf(r->st.notes, "train: %s already has %d iterations (--iters %d): evaluating only\n", r->st.dir,
                    r->start_it, o->iters);
        r->it = r->start_it;
        r->saved_it = r->start_it;
    }
    if (!writer) return ML_OK;
    snprintf(path, sizeof path, "%s/config.json", r->st.dir);
    /* A saved config never carries permission to replace a run. The option
     * table points into the config it is made from: this run's copy. */
    int overwrite = o->overwrite;
    o->overwrite = 0;
    ml_option_set set = ml_run_config_option_set(o);
    ml_status ws = ml_options_write_json(&set, path, err, errlen) ? ML_ERR_IO : ML_OK;
    o->overwrite = overwrite;
    return ws;
}

/* --env: the same handle over a meta-RL run (rl_run.c). */
static ml_status open_rl(ml_run **out, const ml_run_config *cfg, ml_run_mode mode, const ml_run_open_options *opt,
                         char *err, size_t errlen) {
    ml_run *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return ML_ERR_NOMEM;
    }
    r->cfg = *cfg;
    r->lock = -1; /* the RL run holds its own */
    ml_run_config_resolve(&r->cfg);
    if (mode == ML_RUN_RESUME && r->cfg.resume) r->cfg.out = r->cfg.resume;
    r->cfg.resume = mode == ML_RUN_RESUME ? r->cfg.out : NULL;
    r->mode = mode;
    ml_status s = ml__rl_run_open(&r->rl, &r->cfg, mode, opt ? opt->checkpoint : NULL, err, errlen);
    if (s) {
        free(r);
        return s;
    }
    if (!r->cfg.quiet && opt && opt->notes && mode == ML_RUN_RESUME && ml_run_iteration(r) >= r->cfg.iters)
        fprintf(opt->notes, "train: %s already has %d iterations (--iters %d): evaluating only\n", r->cfg.out,
                ml_run_iteration(r), r->cfg.iters);
    *out = r;
    return ML_OK;
}

ml_status ml_run_open(ml_run **out, const ml_run_config *cfg, ml_run_mode mode, const ml_run_open_options *opt,
                      char *err, size_t errlen) {
    *out = NULL;
    if (cfg->env) return open_rl(out, cfg, mode, opt, err, errlen);
    /* Under mpirun a program that never called ml_dist_init (Python, C)
     * still shares the work: MPI starts here. A plain process: no-op. */
    if (ml_dist_init(NULL, NULL, err, errlen)) return ML_ERR_STATE;
    ml_run *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return ML_ERR_NOMEM;
    }
    r->cfg = *cfg;
    r->lock = -1;
    /* Settings that depend on others (eval steps, momentum, meta-batch) are
     * filled in here too, so a caller that skipped ml_run_config_resolve
     * gets the CLI's values, not a NULL list. Idempotent. */
    ml_run_config_resolve(&r->cfg);
    if (mode == ML_RUN_RESUME && !r->cfg.resume) r->cfg.resume = r->cfg.out;
    if (mode != ML_RUN_RESUME && mode != ML_RUN_EVAL) r->cfg.resume = NULL;
    r->mode = mode;
    r->last_loss = NAN;
    ml_status s = open_run(r, mode, opt, err, errlen);
    /* Every process reaches both agreements, whichever step failed. */
    s = agree(r, s, err, errlen);
    r->agreed = r->all_stopped;
    s = agree(r, s, err, errlen);
    if (s) {
        ml_run_close(r);
        return s;
    }
    *out = r;
    return ML_OK;
}

void ml_run_close(ml_run *r) {
    if (!r) return;
    if (r->rl) ml__rl_run_close(r->rl);
    else meta_run_free(&r->st);
    ml_rundir_unlock(r->lock);
    free(r);
}

int ml_run_iteration(const ml_run *r) { return r->rl ? ml__rl_run_iteration(r->rl) : r->it; }
int ml_run_tasks_per_step(const ml_run *r) { return r->rl ? ml__rl_run_tasks_per_step(r->rl) : r->st.step_tasks; }
int ml_run_ways(const ml_run *r) { return !r->rl && r->st.fewshot ? r->st.ways : 0; }
int ml_run_default_steps(const ml_run *r) {
    if (!r->rl && !ml_algo_has_inner_steps(r->st.algo)) return 0;
    int steps[16], n = ml__parse_int_list(r->cfg.eval_steps, steps, 16, 0), most = 0;
    for (int i = 0; i < n; i++) most = steps[i] > most ? steps[i] : most;
    return most;
}
int ml_run_input_dim(const ml_run *r) {
    if (r->rl) return ml__rl_run_input_dim(r->rl);
    const ml_model_spec *s = &r->st.model.spec;
    return (int)((int64_t)s->in_c * s->in_h * s->in_w);
}

void ml_run_get_info(const ml_run *r, ml_run_info *info) {
    if (r->rl) {
        ml__rl_run_info(r->rl, info);
        return;
    }
    *info = (ml_run_info){.dir = r->st.dir,
                          .algo = ml_algo_name(r->st.algo),
                          .model_spec = r->st.model_spec,
                          .n_params = r->st.model.n_floats,
                          .threads = r->st.threads,
                          .fewshot = r->st.fewshot,
                          .train_classes = r->st.train_classes.n,
                          .batch_size = r->st.batch_size,
                          .init_rates = r->st.init_rates,
                          .has_inner_steps = ml_algo_has_inner_steps(r->st.algo),
                          .iteration = r->it,
                          .start_iteration = r->start_it,
                          .iters = r->cfg.iters,
                          .session_s = r->train_s};
}

/* The iteration a session stops at: --stop-at (this invocation) or --iters. */
static int stop_iteration(const ml_run *r) {
    const ml_run_config *o = &r->cfg;
    return o->stop_at > 0 && o->stop_at < o->iters ? o->stop_at : o->iters;
}

static void start_clock(ml_run *r) {
    if (r->t_started) return;
    r->t_started = 1;
    r->t_start = ml_now();
    ml_checkpoint_clock_start(&r->clock, r->cfg.checkpoint_every, 60.0 * r->cfg.checkpoint_minutes, r->t_start);
}

/* A failed iteration: what is on disk to go back to, if anything. */
static void failed_after(const ml_run *r, const char *why, char *err, size_t errlen) {
    if (r->saved_it >= 0)
        snprintf(err, errlen, "%s; the last good checkpoint is %s (iteration %d)", why, r->ckpt_path, r->saved_it);
    else
        snprintf(err, errlen, "%s; no checkpoint was saved before this (nothing to resume)", why);
}

ml_status ml_run_save_checkpoint(ml_run *r, char *err, size_t errlen) {
    if (r->rl) return ml__rl_run_save(r->rl, err, errlen);
    if (r->mode == ML_RUN_EVAL || r->mode == ML_RUN_SCRATCH) {
        snprintf(err, errlen, "%s: opened for %s; nothing to save", r->st.dir,
                 r->mode == ML_RUN_EVAL ? "evaluation" : "scratch training");
        return ML_ERR_STATE;
    }
    int failed = ml_dist_rank() == 0 && meta_run_save_checkpoint(&r->st, r->ckpt_path, r->it, err, errlen);
    if (shared_failure(failed, "the checkpoint", err, errlen)) return ML_ERR_IO;
    if (r->t_started) ml_checkpoint_clock_saved(&r->clock, ml_now());
    r->saved_it = r->it;
    return ML_OK;
}

/* The log line of iteration done_it (1-based), with the validation metric
 * every --val-every iterations. */
static ml_status log_line(ml_run *r, int done_it, char *err, size_t errlen) {
    const ml_run_config *o = &r->cfg;
    meta_run *run = &r->st;
    char why[1024];
    r->last_loss = run->log_sum / run->log_count;
    /* elapsed_s: training seconds since the run began, resumes included */
    double session = ml_now() - r->t_start;
    char line[640], window[32] = "", val[48] = "", fed[64] = "";
    if (run->log_count != o->log_every) /* a short last window, or one begun before an old checkpoint */
        snprintf(window, sizeof window, ",\"window\":%d", run->log_count);
    if (o->val_every > 0 && done_it % o->val_every == 0) {
        double v;
        if (meta_run_validate(run, o, &v, why, sizeof why)) {
            snprintf(err, errlen, "validation: %s; the last good checkpoint is %s", why, r->ckpt_path);
            return ML_ERR_IO;
        }
        ml__json_number(val, sizeof val, run->fewshot ? ",\"val_acc\":" : ",\"val_mse\":", v);
    }
    if (run->fed) { /* a round: how many clients took part, payload bytes both ways */
        int clients;
        int64_t bytes;
        fed_last_round(run, &clients, &bytes);
        snprintf(fed, sizeof fed, ",\"clients\":%d,\"round_bytes\":%lld", clients, (long long)bytes);
    }
    snprintf(line, sizeof line,
             "{\"iter\":%d,\"loss\":%.6g%s%s%s,\"elapsed_s\":%.3f,\"iters_per_s\":%.2f,\"outer_lr\":%g}", done_it,
             r->last_loss, window, val, fed, r->logged.elapsed_s + session, (done_it - r->start_it) / (session + 1e-9),
             run->meta.cfg.outer.lr);
    int failed = ml_dist_rank() == 0 && ml_jsonl_append(r->log_path, line, why, sizeof why);
    if (shared_failure(failed, "the log", why, sizeof why)) {
        failed_after(r, why, err, errlen);
        return ML_ERR_IO;
    }
    run->log_sum = 0;
    run->log_count = 0;
    return ML_OK;
}

static ml_status step(ml_run *r, double *loss, int *logged, char *err, size_t errlen) {
    const ml_run_config *o = &r->cfg;
    meta_run *run = &r->st;
    char why[1024];
    if (r->mode == ML_RUN_EVAL) {
        snprintf(err, errlen, "%s: opened for evaluation; it does not train", run->dir);
        return ML_ERR_STATE;
    }
    start_clock(r);
    int it = r->it;
    run->meta.cfg.outer.lr = (float)ml_schedule_lr(&run->outer_schedule, it);
    int failed;
    if (run->fed) /* a federated round: clients sample their own tasks */
        failed = fed_round(run, it, loss, why, sizeof why) != 0;
    else {
        failed = meta_run_sample_batch(run, why, sizeof why) != 0;
        failed = shared_failure(failed, "its tasks (drawing them)", why, sizeof why) ||
                 ml_meta_step(&run->meta, run->batch, run->step_tasks, loss, why, sizeof why);
    }
    if (failed) {
        failed_after(r, why, err, errlen);
        return ML_ERR_IO;
    }
    fewshot_after_step(run);
    run->log_sum += *loss;
    run->log_count++;
    int done_it = it + 1;
    r->it = done_it;
    *logged = 0;
    if (r->mode == ML_RUN_SCRATCH) return ML_OK; /* no log, no checkpoints */
    if (done_it % o->log_every == 0 || done_it == o->iters) {
        ml_status s = log_line(r, done_it, err, errlen);
        if (s) return s;
        *logged = 1;
    }
    /* --checkpoint-minutes reads each process's clock: rank 0's decision counts for all */
    int due = ml_checkpoint_clock_due(&r->clock, done_it, ml_now()) || done_it == stop_iteration(r);
    ml_dist_broadcast(&due, sizeof due, 0);
    if (due)
        return ml_run_save_checkpoint(r, err, errlen);
    return ML_OK;
}

ml_status ml_run_step(ml_run *r, double *loss, char *err, size_t errlen) {
    if (r->rl) return ml__rl_run_step(r->rl, loss, err, errlen);
    int logged;
    double l;
    return step(r, loss ? loss : &l, &logged, err, errlen);
}

ml_status ml_run_train(ml_run *r, const ml_run_callbacks *cb, char *err, size_t errlen) {
    if (r->rl) return ml__rl_run_train(r->rl, cb, err, errlen);
    if (r->mode == ML_RUN_EVAL) {
        snprintf(err, errlen, "%s: opened for evaluation; it does not train", r->st.dir);
        return ML_ERR_STATE;
    }
    start_clock(r);
    const int stop = stop_iteration(r);
    int stopped = 0;
    while (r->it < stop) {
        /* A stop on any process (Ctrl-C, a callback) stops them all here. */
        if (ml_dist_any(stopped || (cb && cb->stop && *cb->stop))) {
            stopped = 1;
            break;
        }
        double loss;
        int logged;
        ml_status s = step(r, &loss, &logged, err, errlen);
        if (s) return s;
        if (cb && cb->on_iteration) {
            double session = ml_now() - r->t_start;
            ml_run_progress p = {.iteration = r->it,
                                 .total = r->cfg.iters,
                                 .start_iteration = r->start_it,
                                 .loss = loss,
                                 .log_loss = r->last_loss,
                                 .logged = logged,
                                 .rate = (r->it - r->start_it) / (session + 1e-9)};
            if (cb->on_iteration(cb->user, &p)) stopped = 1;
        }
        if (stopped && ml_dist_size() == 1) break;
    }
    r->train_s = ml_now() - r->t_start;
    /* also when it came with the last iteration */
    stopped = ml_dist_any(stopped || (cb && cb->stop && *cb->stop));
    if (stopped) {
        char why[1024];
        if (ml_run_save_checkpoint(r, why, sizeof why)) {
            snprintf(err, errlen, "interrupted; saving the checkpoint failed: %s", why);
            return ML_ERR_IO;
        }
        snprintf(err, errlen, "interrupted at iteration %d; checkpoint saved; continue with metalearn train --resume %s",
                 r->it, r->st.dir);
        return ML_ERR_INTERRUPTED;
    }
    return ML_OK;
}

ml_status ml_run_evaluate(ml_run *r, const ml_run_eval_options *o, char *err, size_t errlen) {
    if (r->rl) /* --eval-tasks 0: no evaluation, as for the other runs */
        return r->cfg.eval_tasks < 1 ? ML_OK
                                     : ml__rl_run_evaluate(r->rl, o && o->out ? o->out : stdout, r->cfg.json, NULL,
                                                           err, errlen);
    r->st.out = o && o->out ? o->out : stdout;
    ml_progress none = {0};
    r->st.meta.progress = o ? o->progress : none;
    int st;
    if (r->mode == ML_RUN_EVAL) {
        st = meta_run_final_eval(&r->st, &r->cfg, r->it, 0, 0, err, errlen);
    } else {
        /* The whole run's training time: the log's up to the checkpoint, so
         * an evaluation-only resume does not report 0 s. */
        st = meta_run_final_eval(&r->st, &r->cfg, r->it, r->logged.elapsed_s + r->train_s,
                                 r->logged.last_iter + r->it - r->start_it, err, errlen);
    }
    r->st.meta.progress = none;
    return status_of(st);
}

ml_status ml_run_predict(ml_run *r, const ml_task_data *task, int steps, const ml_progress *progress, int32_t *pred,
                         float *out, char *err, size_t errlen) {
    if (r->rl) {
        snprintf(err, errlen, "%s is a meta-RL run: it acts in its environment (evaluate it), it predicts no "
                              "query set", r->cfg.out);
        return ML_ERR_ARG;
    }
    /* The learner's evaluation path reads query targets (unused for the
     * outputs): zeros where the caller has none. */
    ml_task_data t = *task;
    void *zeros = NULL;
    if ((t.ways ? (void *)t.lq : (void *)t.yq) == NULL) {
        zeros = calloc((size_t)(t.n_query > 0 ? t.n_query : 1), t.ways ? sizeof(int32_t) : sizeof(float));
        if (!zeros) {
            snprintf(err, errlen, "out of memory for %d query points", t.n_query);
            return ML_ERR_NOMEM;
        }
        if (t.ways) t.lq = zeros;
        else t.yq = zeros;
    }
    ml_progress none = {0};
    r->st.meta.progress = progress ? *progress : none;
    ml_status s = ml_meta_predict_outputs(&r->st.meta, &t, steps, pred, out, err, errlen);
    r->st.meta.progress = none;
    free(zeros);
    return s;
}

/* ---- the evaluation as numbers ---------------------------------------------------------- */

int ml__eval_result_add(ml_run_eval_result *res, const ml_run_eval_row *row) {
    ml_run_eval_row *rows = realloc(res->rows, (size_t)(res->n_rows + 1) * sizeof *rows);
    if (!rows) return -1;
    res->rows = rows;
    rows[res->n_rows++] = *row;
    return 0;
}

void ml_run_eval_result_free(ml_run_eval_result *res) {
    if (!res) return;
    free(res->rows);
    free(res->lake_errors);
    free(res->json);
    free(res);
}

ml_status ml_run_evaluate_result(ml_run *r, const ml_progress *progress, ml_run_eval_result **res, char *err,
                                 size_t errlen) {
    *res = NULL;
    ml_run_eval_result *out = calloc(1, sizeof *out);
    char *text = NULL;
    size_t len = 0;
    /* The same evaluation, its printed table and JSON line caught in memory:
     * the numbers come in out, the JSON line is kept. */
    FILE *mem = open_memstream(&text, &len);
    if (!out || !mem) {
        if (mem) fclose(mem);
        free(text);
        free(out);
        snprintf(err, errlen, "out of memory");
        return ML_ERR_NOMEM;
    }
    if (r->rl) {
        fclose(mem);
        free(text);
        ml_status s = ml__rl_run_evaluate(r->rl, NULL, 0, out, err, errlen);
        if (s) {
            ml_run_eval_result_free(out);
            return s;
        }
        *res = out;
        return ML_OK;
    }
    out->fewshot = r->st.fewshot;
    int json = r->cfg.json;
    r->cfg.json = 1;
    r->st.result = out;
    ml_run_eval_options eo = {.out = mem, .progress = progress ? *progress : (ml_progress){0}};
    ml_status s = ml_run_evaluate(r, &eo, err, errlen);
    r->st.result = NULL;
    r->cfg.json = json;
    fclose(mem);
    if (!s && text) { /* the JSON line is the last one */
        while (len && text[len - 1] == '\n') text[--len] = 0;
        char *nl = strrchr(text, '\n');
        out->json = strdup(nl ? nl + 1 : text);
        if (!out->json) {
            snprintf(err, errlen, "out of memory");
            s = ML_ERR_NOMEM;
        }
    }
    free(text);
    if (s) {
        ml_run_eval_result_free(out);
        return s;
    }
    *res = out;
    return ML_OK;
}

/* ---- continual learning ---------------------------------------------------------------- */

ml_status ml_run_continual(ml_run *r, const struct ml_continual_options *o, struct ml_continual_result *res,
                           char *note, size_t notelen, char *err, size_t errlen) {
    if (r->rl) {
        snprintf(err, errlen, "%s is a meta-RL run: the continual-learning protocol takes image or sine runs",
                 r->cfg.out);
        return ML_ERR_ARG;
    }
    const ml_learner_info *info = ml_algo_info(r->st.algo);
    if (note && notelen) {
        note[0] = 0;
        if (info && !info->online_head && !o->whole_network)
            snprintf(note, notelen,
                     "%s is a %s run, not OML: the protocol uses its representation (%s) with a new head learned "
                     "online",
                     r->st.dir, info->name, info->metric || r->st.model.spec.n_out == 0 ? "its embedding"
                                                                                         : "the network without its "
                                                                                           "last layer");
    }
    return status_of(meta_run_continual(&r->st, o, res, err, errlen));
}
