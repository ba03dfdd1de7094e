/* cmd_search.c: `metalearn search`, a strategy search over `train` options.
 *
 * The search logic (space, sampling, variation, selection, halving schedule)
 * is in the library (metalearn/search.h); this file is the plumbing: every
 * trial is a run folder DIR/trials/NNN trained and scored by child processes
 * of this same executable,
 *     metalearn train --config spec.json --out DIR/trials/NNN --iters R ...
 *     metalearn eval DIR/trials/NNN --split val --tasks V --json
 * so a trial that diverges or crashes is marked failed and the search goes on.
 * --jobs trials run at once, each child with --threads cores/jobs.
 *
 * Determinism and resume: candidates come from an RNG seeded by --seed and
 * fed only logged scores; training is bit-exact whatever the thread count.
 * DIR/trials.jsonl keeps one line per finished (trial, rung); a rerun of the
 * same command replays it and runs only what is missing (a trial stopped
 * half-way continues from its checkpoint with train --resume). */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "metalearn/options.h"
#include "cli/progress.h"
#include "cli/train_opts.h"
#include "core/errfmt.h"
#include "metalearn/io.h"
#include "metalearn/meta.h"
#include "metalearn/plot.h"
#include "metalearn/rundir.h"
#include "metalearn/search.h"

#define MAX_RUNGS 16

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) { g_stop = sig; }

/* Options the search itself sets for every trial: not searchable, and
 * dropped from a base config (a run's config.json carries them). */
static const char *const reserved[] = {"out", "resume", "overwrite", "config", "json", "quiet", "threads", "iters"};

static int is_reserved(const char *name) {
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (!strcmp(name, reserved[i])) return 1;
    return 0;
}

typedef struct trial_result {
    int done;       /* finished (from this run or the log) */
    int ok;         /* trained and scored */
    double score;   /* NaN when failed */
    double seconds;
    char msg[512];  /* failure message, shown in full */
} trial_result;

typedef struct search {
    const char *out, *space_path, *strategy;
    int budget, min_iters, max_iters, eta, population, jobs, threads, val_tasks, quiet;
    uint64_t seed;
    ml_search_space space;
    cJSON *base;        /* merged base config (train options) */
    double *cand;       /* [budget * space.n] */
    char **settings;    /* [budget] settings JSON of each candidate (log check) */
    char **logged;      /* [budget * MAX_RUNGS] settings text from the log, or NULL */
    trial_result *res;  /* [budget * MAX_RUNGS] */
    int rungs[MAX_RUNGS], n_rungs;
    int higher_better;  /* -1 until the first score says which metric */
    const char *metric;
    int ran, failed;    /* (trial, rung) pairs run by this process / failed overall */
} search;

#define RES(s, t, r) (&(s)->res[(size_t)(t) * MAX_RUNGS + (r)])

/* ---- small helpers ----------------------------------------------------------------- */

static cJSON *read_json(const char *path, char *err, size_t errlen) {
    char *text;
    if (ml_file_read_text(path, 0, &text, NULL, NULL, 0) != ML_OK) text = NULL;
    if (!text) {
        ml__errf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        return NULL;
    }
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithOpts(text, &end, 1);
    if (!j) {
        int line = 1;
        for (const char *c = text; end && c < end && *c; c++) line += *c == '\n';
        ml__errf(err, errlen, "%s: not valid JSON (line %d)", path, line);
    }
    ml_free(text);
    return j;
}

/* The last non-empty line of a file (a child's error message). */
static void last_line(const char *path, char *buf, size_t len) {
    char *text;
    if (ml_file_read_text(path, 0, &text, NULL, NULL, 0) != ML_OK) text = NULL;
    buf[0] = 0;
    if (!text) return;
    size_t n = strlen(text);
    while (n && (text[n - 1] == '\n' || text[n - 1] == '\r')) text[--n] = 0;
    char *start = strrchr(text, '\n');
    snprintf(buf, len, "%s", start ? start + 1 : text);
    ml_free(text);
}

static int write_json_file(const char *path, const cJSON *j, char *err, size_t errlen) {
    return ml_json_write_atomic(path, j, err, errlen) ? -1 : 0;
}

static void trial_dir(const search *s, int t, char *buf, size_t len) {
    snprintf(buf, len, "%s/trials/%03d", s->out, t);
}

/* ---- the space and the base config ----------------------------------------------------- */

/* The train option table over a scratch ml_run_config, to validate values. */
static ml_run_config g_scratch;
static ml_option_set train_cmd(void) {
    ml_run_config_default(&g_scratch);
    int n;
    const ml_option *specs = ml_run_config_options(&g_scratch, &n);
    return (ml_option_set){"train", train_synopsis, train_about, specs, n};
}

static const ml_option *find_option(const ml_option_set *cmd, const char *name) {
    for (int k = 0; k < cmd->n_options; k++)
        if (!strcmp(cmd->options[k].name, name)) return &cmd->options[k];
    return NULL;
}

static void drop_reserved(cJSON *obj) {
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++) cJSON_DeleteItemFromObjectCaseSensitive(obj, reserved[i]);
}

/* A one-key object {name: value} checked as train would check it. */
static int check_value(const ml_option_set *cmd, const char *label, const char *name, cJSON *value, char *err, size_t errlen) {
    cJSON *o = cJSON_CreateObject();
    if (!o || !value) {
        cJSON_Delete(o);
        cJSON_Delete(value);
        ml__errf(err, errlen, "%s: out of memory", label);
        return -1;
    }
    cJSON_AddItemToObject(o, name, value);
    ml_run_config_default(&g_scratch);
    int r = ml_options_apply_json(cmd, o, label, err, errlen);
    cJSON_Delete(o);
    return r ? -1 : 0;
}

/* Every parameter must be a train option of a fitting type whose ends (or
 * choices) train accepts. */
static int check_space(const search *s, char *err, size_t errlen) {
    ml_option_set cmd = train_cmd();
    for (int i = 0; i < s->space.n; i++) {
        const ml_search_param *p = &s->space.params[i];
        const ml_option *spec = find_option(&cmd, p->name);
        if (!spec) {
            ml__errf(err, errlen, "%s: unknown key '%s' (not a metalearn train option; see metalearn train --help)",
                     s->space_path, p->name);
            return -1;
        }
        if (is_reserved(p->name)) {
            ml__errf(err, errlen, "%s: key '%s' is set by the search itself and cannot be searched", s->space_path,
                     p->name);
            return -1;
        }
        int integral = spec->type == ML_OPT_INT || spec->type == ML_OPT_U64;
        if (p->kind != ML_PARAM_CHOICE && (spec->type == ML_OPT_STRING || spec->type == ML_OPT_FLAG)) {
            ml__errf(err, errlen, "%s: key '%s': a %s option takes {\"choice\": [...]}", s->space_path, p->name,
                     spec->type == ML_OPT_FLAG ? "true/false" : "text");
            return -1;
        }
        if (integral && (p->kind == ML_PARAM_UNIFORM || p->kind == ML_PARAM_LOG_UNIFORM)) {
            ml__errf(err, errlen, "%s: key '%s': an integer option takes {\"int\": [lo, hi]} or {\"choice\": [...]}",
                     s->space_path, p->name);
            return -1;
        }
        if (p->kind == ML_PARAM_CHOICE) {
            for (int c = 0; c < p->n_choices; c++) {
                /* Names train only checks after loading data: checked here, before any trial. */
                const char *str = p->choices[c].type == ML_CHOICE_STRING ? p->choices[c].string : NULL;
                ml_algo algo;
                ml_optim_kind kind;
                if (str && !strcmp(p->name, "algo") && (ml_algo_parse(str, &algo) || !strcmp(str, "supervised"))) {
                    ml__errf(err, errlen, "%s: key 'algo': '%s' is not a meta-learner (maml, fomaml, metasgd, anil, "
                                          "reptile, multitask, protonet, matching, r2d2)", s->space_path, str);
                    return -1;
                }
                if (str && !strcmp(p->name, "optimizer") && ml_optim_kind_parse(str, &kind)) {
                    ml__errf(err, errlen, "%s: key 'optimizer': '%s' is not sgd, adagrad, rmsprop, adam or adamw",
                             s->space_path, str);
                    return -1;
                }
                double v = c;
                cJSON *tmp = cJSON_CreateObject();
                if (!tmp || ml_search_to_json(&(ml_search_space){.params = {*p}, .n = 1}, &v, tmp)) {
                    cJSON_Delete(tmp);
                    ml__errf(err, errlen, "out of memory");
                    return -1;
                }
                cJSON *item = cJSON_DetachItemFromObjectCaseSensitive(tmp, p->name);
                cJSON_Delete(tmp);
                if (check_value(&cmd, s->space_path, p->name, item, err, errlen)) return -1;
            }
        } else {
            if (check_value(&cmd, s->space_path, p->name, cJSON_CreateNumber(p->lo), err, errlen) ||
                check_value(&cmd, s->space_path, p->name, cJSON_CreateNumber(p->hi), err, errlen))
                return -1;
        }
    }
    return 0;
}

/* base = --config BASE.json, then the space file's "base" over it; every
 * value checked; its "iters" becomes the default --max-iters, then the
 * search's own keys are dropped. Returns an exit status. */
static int load_space(search *s, const char *config_path, int *base_iters, char *err, size_t errlen) {
    cJSON *file = read_json(s->space_path, err, errlen);
    if (!file) return EXIT_FAIL;
    int status = EXIT_USAGE;
    if (!cJSON_IsObject(file)) {
        ml__errf(err, errlen, "%s: expected {\"base\": {...}, \"space\": {...}}", s->space_path);
        goto out;
    }
    for (const cJSON *j = file->child; j; j = j->next)
        if (strcmp(j->string, "base") && strcmp(j->string, "space")) {
            ml__errf(err, errlen, "%s: unknown key '%s' (expected \"base\" and \"space\")", s->space_path, j->string);
            goto out;
        }
    ml_option_set cmd = train_cmd();
    if (config_path) {
        s->base = read_json(config_path, err, errlen);
        if (!s->base) {
            status = EXIT_FAIL;
            goto out;
        }
        ml_run_config_default(&g_scratch);
        if (ml_options_apply_json(&cmd, s->base, config_path, err, errlen)) goto out;
    } else {
        s->base = cJSON_CreateObject();
    }
    const cJSON *extra = cJSON_GetObjectItemCaseSensitive(file, "base");
    if (extra) {
        if (!cJSON_IsObject(extra)) {
            ml__errf(err, errlen, "%s: \"base\" must be an object of train options", s->space_path);
            goto out;
        }
        for (const cJSON *j = extra->child; j; j = j->next) {
            if (is_reserved(j->string) && strcmp(j->string, "iters")) {
                ml__errf(err, errlen, "%s: base key '%s' is set by the search itself", s->space_path, j->string);
                goto out;
            }
            cJSON *copy = cJSON_Duplicate(j, 1);
            cJSON_DeleteItemFromObjectCaseSensitive(s->base, j->string);
            if (!copy || !cJSON_AddItemToObject(s->base, j->string, copy)) {
                ml__errf(err, errlen, "out of memory");
                goto out;
            }
        }
    }
    ml_run_config_default(&g_scratch);
    if (ml_options_apply_json(&cmd, s->base, s->space_path, err, errlen)) goto out;
    *base_iters = g_scratch.iters; /* the default --max-iters */
    drop_reserved(s->base);
    int supervised = !strcmp(g_scratch.algo, "supervised");
    const cJSON *space = cJSON_GetObjectItemCaseSensitive(file, "space");
    if (!space) {
        ml__errf(err, errlen, "%s: no \"space\" object", s->space_path);
        goto out;
    }
    if (ml_search_space_parse(space, s->space_path, &s->space, err, errlen)) goto out;
    if (check_space(s, err, errlen)) goto out;
    for (int i = 0; i < s->space.n && supervised; i++) supervised = strcmp(s->space.params[i].name, "algo") != 0;
    if (supervised) {
        ml__errf(err, errlen, "%s: no \"algo\" in the base config or the space (train's default, supervised, is not a "
                              "meta-learner)", s->space_path);
        goto out;
    }
    status = EXIT_OK;
out:
    cJSON_Delete(file);
    return status;
}

/* ---- the log ------------------------------------------------------------------------------ */

static int read_log(search *s, char *err, size_t errlen) {
    char path[4200];
    snprintf(path, sizeof path, "%s/trials.jsonl", s->out);
    char *text;
    if (ml_file_read_text(path, 0, &text, NULL, NULL, 0) != ML_OK) text = NULL;
    if (!text) return 0; /* a new search */
    int line_no = 0, rc = 0;
    for (char *line = strtok(text, "\n"); line && !rc; line = strtok(NULL, "\n")) {
        line_no++;
        cJSON *j = cJSON_Parse(line);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "trial"), *r = cJSON_GetObjectItemCaseSensitive(j, "rung"),
                    *st = cJSON_GetObjectItemCaseSensitive(j, "settings"),
                    *status = cJSON_GetObjectItemCaseSensitive(j, "status");
        if (!j || !cJSON_IsNumber(t) || !cJSON_IsNumber(r) || !cJSON_IsObject(st) || !cJSON_IsString(status)) {
            /* A torn last line (power cut mid-append) is dropped, anything else is an error. */
            if (!strtok(NULL, "\n")) {
                cJSON_Delete(j);
                break;
            }
            ml__errf(err, errlen, "%s: line %d is not a trial record", path, line_no);
            rc = -1;
        } else if (t->valueint < 0 || t->valueint >= s->budget || r->valueint < 0 || r->valueint >= s->n_rungs) {
            ml__errf(err, errlen, "%s: line %d: trial %d rung %d is outside this search (budget %d, %d rungs)", path,
                     line_no, t->valueint, r->valueint, s->budget, s->n_rungs);
            rc = -1;
        } else {
            trial_result *res = RES(s, t->valueint, r->valueint);
            const cJSON *score = cJSON_GetObjectItemCaseSensitive(j, "score"),
                        *secs = cJSON_GetObjectItemCaseSensitive(j, "seconds"),
                        *msg = cJSON_GetObjectItemCaseSensitive(j, "message"),
                        *metric = cJSON_GetObjectItemCaseSensitive(j, "metric");
            res->done = 1;
            res->ok = !strcmp(status->valuestring, "ok") && cJSON_IsNumber(score);
            res->score = res->ok ? score->valuedouble : NAN;
            res->seconds = cJSON_IsNumber(secs) ? secs->valuedouble : 0;
            snprintf(res->msg, sizeof res->msg, "%s", cJSON_IsString(msg) ? msg->valuestring : "");
            if (res->ok && cJSON_IsString(metric) && s->higher_better < 0) {
                s->higher_better = !strcmp(metric->valuestring, "accuracy");
                s->metric = s->higher_better ? "accuracy" : "mse";
            }
            if (!res->ok) s->failed++;
            char **slot = &s->logged[(size_t)t->valueint * MAX_RUNGS + r->valueint];
            cJSON_free(*slot);
            *slot = cJSON_PrintUnformatted(st);
        }
        cJSON_Delete(j);
    }
    ml_free(text);
    return rc;
}

static int append_log(search *s, int t, int rung, char *err, size_t errlen) {
    const trial_result *res = RES(s, t, rung);
    cJSON *j = cJSON_CreateObject(), *st = cJSON_Parse(s->settings[t]);
    cJSON_AddNumberToObject(j, "trial", t);
    cJSON_AddNumberToObject(j, "rung", rung);
    cJSON_AddNumberToObject(j, "iters", s->rungs[rung]);
    cJSON_AddItemToObject(j, "settings", st);
    cJSON_AddStringToObject(j, "status", res->ok ? "ok" : "failed");
    if (res->ok) {
        cJSON_AddNumberToObject(j, "score", res->score);
        cJSON_AddStringToObject(j, "metric", s->metric);
    } else {
        cJSON_AddNullToObject(j, "score");
        cJSON_AddStringToObject(j, "message", res->msg);
    }
    cJSON_AddNumberToObject(j, "seconds", round(res->seconds * 1000) / 1000);
    char *line = cJSON_PrintUnformatted(j), path[4200];
    cJSON_Delete(j);
    snprintf(path, sizeof path, "%s/trials.jsonl", s->out);
    int rc = line && !ml_jsonl_append(path, line, err, errlen) ? 0 : -1;
    if (!line) ml__errf(err, errlen, "out of memory");
    cJSON_free(line);
    return rc;
}

/* ---- running trials ------------------------------------------------------------------------ */

/* Starts argv[] with stdout and stderr to files; returns the pid or -1. */
static pid_t spawn(char *const argv[], const char *out_path, const char *err_path) {
    pid_t pid = fork();
    if (pid != 0) return pid;
    int fo = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644), fe = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0) _exit(127);
    close(fo);
    close(fe);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    execv("/proc/self/exe", argv);
    _exit(127);
}

typedef struct slot {
    pid_t pid;
    int trial, phase; /* phase 0 train, 1 eval */
    double t0;
} slot;

static pid_t start_phase(search *s, slot *sl, int rung) {
    char dir[4200], spec[4300], ckpt[4300], iters[32], threads[32], tasks[32], out[4300], errp[4300];
    trial_dir(s, sl->trial, dir, sizeof dir);
    snprintf(iters, sizeof iters, "%d", s->rungs[rung]);
    snprintf(threads, sizeof threads, "%d", s->threads);
    snprintf(tasks, sizeof tasks, "%d", s->val_tasks);
    if (sl->phase == 0) {
        snprintf(spec, sizeof spec, "%s/spec.json", dir);
        snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", dir);
        snprintf(out, sizeof out, "%s/train.out", dir);
        snprintf(errp, sizeof errp, "%s/train.err", dir);
        /* A checkpoint means an earlier rung, or this one interrupted: continue it. */
        if (access(ckpt, F_OK) == 0) {
            char *argv[] = {"metalearn", "train", "--resume", dir, "--iters", iters, "--eval-tasks", "0", "--quiet",
                            "--threads", threads, NULL};
            return spawn(argv, out, errp);
        }
        /* --overwrite: what a start that never reached a checkpoint left (its config, log) */
        char *argv[] = {"metalearn", "train", "--config", spec, "--out", dir, "--overwrite", "--iters", iters,
                        "--eval-tasks", "0", "--quiet", "--threads", threads, NULL};
        return spawn(argv, out, errp);
    }
    snprintf(out, sizeof out, "%s/eval.out", dir);
    snprintf(errp, sizeof errp, "%s/eval.err", dir);
    char *argv[] = {"metalearn", "eval", dir, "--split", "val", "--tasks", tasks, "--json", "--threads", threads, NULL};
    return spawn(argv, out, errp);
}

/* The score in an eval JSON line: the metric after the most adaptation steps. */
static int parse_score(search *s, int t, trial_result *res) {
    char dir[4200], path[4300], line[65536];
    trial_dir(s, t, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/eval.out", dir);
    last_line(path, line, sizeof line);
    cJSON *j = cJSON_Parse(line);
    const cJSON *results = cJSON_GetObjectItemCaseSensitive(j, "results"), *best = NULL;
    int best_steps = -1;
    for (const cJSON *r = results ? results->child : NULL; r; r = r->next) {
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(r, "steps");
        if (cJSON_IsNumber(st) && st->valueint > best_steps) {
            best_steps = st->valueint;
            best = r;
        }
    }
    const cJSON *acc = cJSON_GetObjectItemCaseSensitive(best, "accuracy"), *mse = cJSON_GetObjectItemCaseSensitive(best, "mse");
    int rc = -1;
    if (!best || (!acc && !mse)) {
        snprintf(res->msg, sizeof res->msg, "%.200s: no results in the eval JSON line", path);
    } else if (!cJSON_IsNumber(acc ? acc : mse) || !isfinite((acc ? acc : mse)->valuedouble)) {
        snprintf(res->msg, sizeof res->msg, "validation %s is not finite (diverged)", acc ? "accuracy" : "mse");
    } else {
        res->score = (acc ? acc : mse)->valuedouble;
        if (s->higher_better < 0) {
            s->higher_better = acc != NULL;
            s->metric = acc ? "accuracy" : "mse";
        }
        rc = 0;
    }
    cJSON_Delete(j);
    return rc;
}

/* Child exit -> failure message, or 0 when it succeeded. */
static int child_failed(search *s, int t, int phase, int wstatus, trial_result *res) {
    if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) return 0;
    char dir[4200], path[4300], line[440];
    trial_dir(s, t, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/%s.err", dir, phase ? "eval" : "train");
    last_line(path, line, sizeof line);
    if (WIFSIGNALED(wstatus))
        snprintf(res->msg, sizeof res->msg, "%s killed by signal %d%s%s", phase ? "eval" : "train", WTERMSIG(wstatus),
                 *line ? ": " : "", line);
    else
        snprintf(res->msg, sizeof res->msg, "%s exit %d: %s", phase ? "eval" : "train", WEXITSTATUS(wstatus),
                 *line ? line : "(no message)");
    return 1;
}

static void report(const search *s, int t, int rung) {
    if (s->quiet) return;
    const trial_result *res = RES(s, t, rung);
    if (res->ok)
        fprintf(stderr, "search: trial %03d rung %d (%d it): %s %.5g  [%.1f s]\n", t, rung, s->rungs[rung], s->metric,
                res->score, res->seconds);
    else
        fprintf(stderr, "search: trial %03d rung %d (%d it): failed: %s\n", t, rung, s->rungs[rung], res->msg);
}

/* Runs (trial, rung) for the listed trials not done yet, --jobs at a time.
 * Returns 0, 130 when interrupted, or 1 on an error of the search itself. */
static int run_batch(search *s, const int *trials, int n, int rung, char *err, size_t errlen) {
    slot slots[256];
    int next = 0, running = 0, rc = 0, forwarded = 0, finished = 0, todo = 0;
    for (int i = 0; i < n; i++) todo += !RES(s, trials[i], rung)->done;
    /* The rung's progress: trials finished of those this call runs. */
    cli_progress prog;
    ml_progress progress = cli_progress_start(&prog, s->quiet);
    char what[32];
    snprintf(what, sizeof what, "search rung %d", rung);
    for (int k = 0; k < s->jobs; k++) slots[k].pid = 0;
    for (;;) {
        if (g_stop && !forwarded) {
            /* Ctrl-C or kill -INT: children save their checkpoints and stop. */
            for (int k = 0; k < s->jobs; k++)
                if (slots[k].pid) kill(slots[k].pid, SIGINT);
            forwarded = 1;
        }
        while (!g_stop && running < s->jobs && next < n) {
            int t = trials[next++];
            if (RES(s, t, rung)->done) continue;
            int k = 0;
            while (slots[k].pid) k++;
            slots[k] = (slot){.trial = t, .phase = 0, .t0 = ml_now()};
            slots[k].pid = start_phase(s, &slots[k], rung);
            if (slots[k].pid < 0) {
                ml__errf(err, errlen, "cannot start a trial: %s", strerror(errno));
                slots[k].pid = 0;
                g_stop = SIGTERM;
                rc = 1;
                break;
            }
            running++;
        }
        if (!running) break;
        int wstatus;
        pid_t pid = waitpid(-1, &wstatus, 0);
        if (pid < 0) {
            if (errno == EINTR) continue;
            ml__errf(err, errlen, "waitpid: %s", strerror(errno));
            return 1;
        }
        int k = 0;
        while (k < s->jobs && slots[k].pid != pid) k++;
        if (k == s->jobs) continue;
        slot *sl = &slots[k];
        sl->pid = 0;
        running--;
        if (g_stop) continue; /* unfinished work is not logged: the rerun redoes it */
        trial_result res = {.score = NAN};
        int failed = child_failed(s, sl->trial, sl->phase, wstatus, &res);
        if (!failed && sl->phase == 0) {
            sl->phase = 1;
            sl->pid = start_phase(s, sl, rung);
            if (sl->pid > 0) {
                running++;
                continue;
            }
            sl->pid = 0;
            snprintf(res.msg, sizeof res.msg, "cannot start eval: %s", strerror(errno));
            failed = 1;
        }
        if (!failed) failed = parse_score(s, sl->trial, &res) != 0;
        res.done = 1;
        res.ok = !failed;
        if (failed) res.score = NAN;
        res.seconds = ml_now() - sl->t0;
        *RES(s, sl->trial, rung) = res;
        s->ran++;
        s->failed += failed;
        cli_progress_end(&prog); /* the trial's line below a bar, not inside it */
        report(s, sl->trial, rung);
        ml_progress_report(&progress, what, ++finished, todo);
        if (append_log(s, sl->trial, rung, err, errlen)) {
            g_stop = SIGTERM;
            rc = 1;
        }
    }
    cli_progress_end(&prog);
    if (rc) return rc;
    return g_stop ? 130 : 0;
}

/* ---- candidates ----------------------------------------------------------------------------- */

/* Records candidate t (settings text, spec.json) and checks it against the log. */
static int add_candidate(search *s, int t, char *err, size_t errlen) {
    cJSON *st = cJSON_CreateObject();
    if (!st || ml_search_to_json(&s->space, s->cand + (size_t)t * s->space.n, st)) {
        cJSON_Delete(st);
        ml__errf(err, errlen, "out of memory");
        return -1;
    }
    s->settings[t] = cJSON_PrintUnformatted(st);
    cJSON_Delete(st);
    for (int r = 0; r < s->n_rungs; r++) {
        const char *logged = s->logged[(size_t)t * MAX_RUNGS + r];
        if (logged && strcmp(logged, s->settings[t])) {
            ml__errf(err, errlen, "%s/trials.jsonl: trial %d was %s, this search draws %s: the log belongs to another "
                                  "search (same --out, different space, --seed or strategy?)",
                     s->out, t, logged, s->settings[t]);
            return -1;
        }
    }
    char dir[4200], path[4300];
    trial_dir(s, t, dir, sizeof dir);
    if (ml_mkdir_p(dir, err, errlen)) return -1;
    static const char *const spec_file[] = {"spec.json"};
    ml_rundir_clean_temps(dir, spec_file, 1); /* the trial's own run files are train's to clean */
    cJSON *spec = cJSON_Duplicate(s->base, 1);
    if (!spec || ml_search_to_json(&s->space, s->cand + (size_t)t * s->space.n, spec)) {
        cJSON_Delete(spec);
        ml__errf(err, errlen, "out of memory");
        return -1;
    }
    snprintf(path, sizeof path, "%s/spec.json", dir);
    int rc = write_json_file(path, spec, err, errlen);
    cJSON_Delete(spec);
    return rc;
}

static int same_candidate(const search *s, int a, int b) {
    return !memcmp(s->cand + (size_t)a * s->space.n, s->cand + (size_t)b * s->space.n, (size_t)s->space.n * sizeof(double));
}

/* Evolution: child of two tournament winners among trials [0, n_scored),
 * mutated until it differs from every earlier candidate (10 tries). */
static void breed(search *s, ml_rng *rng, int t, int n_scored, const double *scores) {
    int np = s->space.n, hb = s->higher_better > 0;
    double *child = s->cand + (size_t)t * np;
    double rate = np > 1 ? 1.0 / np : 1.0, sigma = 0.15;
    int a = ml_search_tournament(rng, scores, n_scored, 3, hb), b = ml_search_tournament(rng, scores, n_scored, 3, hb);
    ml_search_crossover(&s->space, rng, s->cand + (size_t)a * np, s->cand + (size_t)b * np, child);
    for (int attempt = 0; attempt < 10; attempt++) {
        ml_search_mutate(&s->space, rng, child, child, attempt ? 1.0 : rate, sigma);
        int dup = 0;
        for (int u = 0; u < t && !dup; u++) dup = same_candidate(s, u, t);
        if (!dup) break;
    }
}

/* ---- results ---------------------------------------------------------------------------------- */

/* The first rung at which trial t failed (diverged, crashed), or -1. */
static int failed_rung(const search *s, int t) {
    for (int r = 0; r < s->n_rungs; r++)
        if (RES(s, t, r)->done && !RES(s, t, r)->ok) return r;
    return -1;
}

/* Highest rung with a score for trial t, or -1 for a trial that never
 * scored or failed at any rung: a trial that diverged once must not win on
 * the score of an earlier rung (best.json would train a diverging model). */
static int top_rung(const search *s, int t) {
    if (failed_rung(s, t) >= 0) return -1;
    for (int r = s->n_rungs - 1; r >= 0; r--)
        if (RES(s, t, r)->ok) return r;
    return -1;
}

/* Trials ordered by highest scored rung, then score (failed last). */
static void final_order(const search *s, int *order) {
    int n = s->budget, hb = s->higher_better > 0;
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0; j--) {
            int a = order[j - 1], b = order[j], ra = top_rung(s, a), rb = top_rung(s, b);
            double sa = ra >= 0 ? RES(s, a, ra)->score : NAN, sb = rb >= 0 ? RES(s, b, rb)->score : NAN;
            int b_first = rb > ra || (rb == ra && rb >= 0 && (hb ? sb > sa : sb < sa));
            if (!b_first) break;
            order[j - 1] = b;
            order[j] = a;
        }
}

static int write_best(const search *s, int best, char *err, size_t errlen) {
    cJSON *spec = cJSON_Duplicate(s->base, 1);
    if (!spec || ml_search_to_json(&s->space, s->cand + (size_t)best * s->space.n, spec)) {
        cJSON_Delete(spec);
        ml__errf(err, errlen, "out of memory");
        return -1;
    }
    cJSON_AddNumberToObject(spec, "iters", s->max_iters);
    char path[4200];
    snprintf(path, sizeof path, "%s/best.json", s->out);
    int rc = write_json_file(path, spec, err, errlen);
    cJSON_Delete(spec);
    return rc;
}

static int write_plot(const search *s, char *err, size_t errlen) {
    int n = s->budget;
    double *y = malloc((size_t)n * s->n_rungs * sizeof(double));
    int *failed = malloc((size_t)n * sizeof(int));
    if (!y || !failed) {
        free(y);
        free(failed);
        ml__errf(err, errlen, "out of memory");
        return -1;
    }
    for (int t = 0; t < n; t++) {
        failed[t] = failed_rung(s, t) >= 0;
        for (int r = 0; r < s->n_rungs; r++) y[(size_t)r * n + t] = RES(s, t, r)->ok ? RES(s, t, r)->score : NAN;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/search.png", s->out);
    ml_search_chart chart = {.strategy = s->strategy, .metric = s->metric, .higher_better = s->higher_better > 0,
                             .n_trials = n, .n_rungs = s->n_rungs, .rung_iters = s->rungs, .score = y, .failed = failed};
    int rc = ml_search_plot(path, &chart, err, errlen) ? -1 : 0;
    free(y);
    free(failed);
    return rc;
}

/* The search's identity: a rerun with other arguments must not mix logs. */
static int check_identity(const search *s, char *err, size_t errlen) {
    cJSON *id = cJSON_CreateObject();
    cJSON_AddStringToObject(id, "strategy", s->strategy);
    cJSON_AddNumberToObject(id, "budget", s->budget);
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)s->seed);
    cJSON_AddStringToObject(id, "seed", seed);
    cJSON_AddNumberToObject(id, "min_iters", s->min_iters);
    cJSON_AddNumberToObject(id, "max_iters", s->max_iters);
    cJSON_AddNumberToObject(id, "eta", s->eta);
    cJSON_AddNumberToObject(id, "population", s->population);
    cJSON_AddNumberToObject(id, "val_tasks", s->val_tasks);
    cJSON_AddItemToObject(id, "base", cJSON_Duplicate(s->base, 1));
    cJSON *space = cJSON_CreateObject();
    for (int i = 0; i < s->space.n; i++) {
        const ml_search_param *p = &s->space.params[i];
        char desc[64];
        snprintf(desc, sizeof desc, "%d:%.17g:%.17g:%d", (int)p->kind, p->lo, p->hi, p->n_choices);
        cJSON_AddStringToObject(space, p->name, desc);
    }
    cJSON_AddItemToObject(id, "space", space);
    char path[4200];
    snprintf(path, sizeof path, "%s/search.json", s->out);
    cJSON *old = NULL;
    int rc = 0;
    if (access(path, F_OK) == 0) {
        old = read_json(path, err, errlen);
        if (!old) rc = -1;
        else if (!cJSON_Compare(old, id, 1)) {
            const char *what = "settings";
            for (const cJSON *j = id->child; j; j = j->next)
                if (!cJSON_Compare(j, cJSON_GetObjectItemCaseSensitive(old, j->string), 1)) {
                    what = j->string;
                    break;
                }
            ml__errf(err, errlen, "%s: this folder holds another search (its %s differs); rerun with the same arguments "
                                  "to resume, or use another --out", path, what);
            rc = -1;
        }
    } else {
        rc = write_json_file(path, id, err, errlen);
    }
    cJSON_Delete(old);
    cJSON_Delete(id);
    return rc;
}

/* ---- the command ------------------------------------------------------------------------------ */

static int run_search(search *s, int json, char *err, size_t errlen) {
    int np = s->space.n, hb_known;
    ml_rng rng;
    ml_rng_seed(&rng, s->seed);
    int *order = malloc((size_t)s->budget * sizeof(int)), *ids = malloc((size_t)s->budget * sizeof(int));
    double *scores = malloc((size_t)s->budget * sizeof(double));
    if (!order || !ids || !scores) {
        free(order);
        free(ids);
        free(scores);
        ml__errf(err, errlen, "out of memory");
        return EXIT_FAIL;
    }
    int status = EXIT_FAIL;
    double t0 = ml_now();
    int evolve = !strcmp(s->strategy, "evolution");
    int gen = evolve ? s->population : s->budget;
    /* Rung 0: generations of candidates (one generation for random search). */
    for (int n = 0; n < s->budget;) {
        int size = s->budget - n < gen ? s->budget - n : gen;
        for (int t = n; t < n + size; t++) {
            if (!evolve || n == 0) ml_search_sample(&s->space, &rng, s->cand + (size_t)t * np);
            else breed(s, &rng, t, n, scores);
            if (add_candidate(s, t, err, errlen)) goto out;
            ids[t - n] = t;
        }
        int rc = run_batch(s, ids, size, 0, err, errlen);
        if (rc) {
            status = rc;
            goto out;
        }
        n += size;
        for (int t = 0; t < n; t++) scores[t] = RES(s, t, 0)->score;
    }
    /* Successive halving: the best 1/eta of a rung go on to the next; a failed
     * (diverged, crashed) trial has no score at its rung, so it never goes on. */
    hb_known = s->higher_better > 0;
    int n_prev = s->budget;
    for (int r = 1; r < s->n_rungs; r++) {
        for (int t = 0; t < s->budget; t++) scores[t] = RES(s, t, r - 1)->ok ? RES(s, t, r - 1)->score : NAN;
        ml_search_rank(scores, s->budget, hb_known, order);
        int k = ml_search_promoted(n_prev, s->eta), m = 0;
        for (int i = 0; i < k; i++)
            if (!isnan(scores[order[i]])) ids[m++] = order[i];
        if (!m) break;
        int rc = run_batch(s, ids, m, r, err, errlen);
        if (rc) {
            status = rc;
            goto out;
        }
        n_prev = m;
    }
    final_order(s, order);
    int best = order[0], best_rung = top_rung(s, best);
    if (best_rung < 0) {
        int fr = failed_rung(s, best);
        ml__errf(err, errlen, "every trial failed, so no best.json (see %s/trials.jsonl); trial %d: %s", s->out, best,
                 fr >= 0 ? RES(s, best, fr)->msg : "not scored");
        goto out;
    }
    if (write_best(s, best, err, errlen) || write_plot(s, err, errlen)) goto out;
    /* The table of the best trials. */
    printf("%s search: %d candidates, rungs", s->strategy, s->budget);
    for (int r = 0; r < s->n_rungs; r++) printf(" %d", s->rungs[r]);
    printf(" iterations; validation %s (%s is better)\n", s->metric, s->higher_better > 0 ? "higher" : "lower");
    printf("%4s %6s %7s %12s  %s\n", "rank", "trial", "iters", s->metric, "settings");
    for (int i = 0; i < s->budget && i < 10; i++) {
        int t = order[i], tr = top_rung(s, t);
        char row[1024] = "", val[64];
        for (int p = 0; p < np; p++) {
            ml_search_format(&s->space.params[p], s->cand[(size_t)t * np + p], val, sizeof val);
            snprintf(row + strlen(row), sizeof row - strlen(row), "%s%s=%s", p ? " " : "", s->space.params[p].name, val);
        }
        if (tr < 0) printf("%4d %6d %7s %12s  %s\n", i + 1, t, "-", "failed", row);
        else printf("%4d %6d %7d %12.5g  %s\n", i + 1, t, s->rungs[tr], RES(s, t, tr)->score, row);
    }
    /* Every failure with its whole reason, on lines of its own (not cut to a column). */
    int shown = 0;
    for (int t = 0; t < s->budget; t++) {
        int fr = failed_rung(s, t);
        if (fr < 0) continue;
        if (shown++ == 0) printf("failed trials (never promoted, never best):\n");
        if (shown > 20) {
            printf("  ... and more: see %s/trials.jsonl\n", s->out);
            break;
        }
        printf("  trial %d, rung %d (%d it): %s\n", t, fr, s->rungs[fr], RES(s, t, fr)->msg);
    }
    printf("best: trial %d -> %s/best.json (train it with: metalearn train --config %s/best.json --out RUN)\n", best,
           s->out, s->out);
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "command", "search");
        cJSON_AddStringToObject(j, "strategy", s->strategy);
        cJSON_AddNumberToObject(j, "budget", s->budget);
        cJSON *rungs = cJSON_AddArrayToObject(j, "rungs");
        for (int r = 0; r < s->n_rungs; r++) cJSON_AddItemToArray(rungs, cJSON_CreateNumber(s->rungs[r]));
        cJSON_AddStringToObject(j, "metric", s->metric);
        cJSON_AddStringToObject(j, "direction", s->higher_better > 0 ? "max" : "min");
        cJSON_AddNumberToObject(j, "trials_run_now", s->ran);
        cJSON_AddNumberToObject(j, "trials_failed", s->failed);
        cJSON_AddNumberToObject(j, "best_trial", best);
        cJSON_AddNumberToObject(j, "best_rung", best_rung);
        cJSON_AddNumberToObject(j, "best_score", RES(s, best, best_rung)->score);
        cJSON *st = cJSON_Parse(s->settings[best]);
        cJSON_AddItemToObject(j, "best_settings", st);
        char path[4200];
        snprintf(path, sizeof path, "%s/best.json", s->out);
        cJSON_AddStringToObject(j, "best_config", path);
        cJSON_AddNumberToObject(j, "seconds", round((ml_now() - t0) * 1000) / 1000);
        char *line = cJSON_PrintUnformatted(j);
        if (line) printf("%s\n", line);
        cJSON_free(line);
        cJSON_Delete(j);
    }
    status = EXIT_OK;
out:
    free(order);
    free(ids);
    free(scores);
    return status;
}

int cmd_search(int argc, char **argv) {
    search s;
    memset(&s, 0, sizeof s);
    const char *config = NULL;
    int json = 0;
    s.strategy = "random";
    s.budget = -1;
    s.eta = 3;
    s.population = 8;
    s.val_tasks = 200;
    s.seed = 1;
    s.higher_better = -1;
    const ml_option specs[] = {
        {"space", ML_OPT_STRING, &s.space_path, "search space JSON: {\"base\": {...}, \"space\": {\"inner-lr\": {\"log_uniform\": [1e-3, 1]}, ...}}", 1, 0},
        {"budget", ML_OPT_INT, &s.budget, "candidates to try (at least 1)", 1, 100000},
        {"out", ML_OPT_STRING, &s.out, "search folder: trials/NNN, trials.jsonl, best.json, search.png", 1, 0},
        {"config", ML_OPT_STRING, &config, "base train config (a run's config.json works); the space's \"base\" overrides it", 1, 0},
        {"strategy", ML_OPT_STRING, &s.strategy, "random (default) or evolution", 1, 0},
        {"min-iters", ML_OPT_INT, &s.min_iters, "fewest iterations of a rung: rungs are max-iters/eta^k, not below this (default max-iters/eta^2)", 1, 100000000},
        {"max-iters", ML_OPT_INT, &s.max_iters, "iterations of the last rung and of best.json (default: the base iters)", 1, 100000000},
        {"eta", ML_OPT_INT, &s.eta, "successive halving: keep the best 1/eta per rung, eta times the iterations (default 3)", 2, 100},
        {"population", ML_OPT_INT, &s.population, "evolution: candidates per generation (default 8)", 2, 100000},
        {"jobs", ML_OPT_INT, &s.jobs, "trials run at once (default: the number of cores)", 1, 256},
        {"threads", ML_OPT_INT, &s.threads, "threads of each trial (default: cores / jobs)", 1, 1024},
        {"val-tasks", ML_OPT_INT, &s.val_tasks, "validation tasks / episodes scoring each trial (default 200)", 1, 10000000},
        {"seed", ML_OPT_U64, &s.seed, "seed of the candidate generator (default 1)", 0, 1.8e19},
        {"json", ML_OPT_FLAG, &json, "print a summary JSON line last", 0, 0},
        {"quiet", ML_OPT_FLAG, &s.quiet, "no progress lines on stderr", 0, 0},
    };
    const ml_option_set cmd = {"search", "--space FILE --budget N --out DIR [--config BASE.json] [--strategy random|evolution] [options]",
                         "Searches over `metalearn train` settings (algorithm, learning rates, inner steps,\n"
                         "meta-batch, shots, augmentation, any option) by random search or an evolutionary\n"
                         "search (tournament selection, uniform crossover, mutation), with successive halving:\n"
                         "every candidate trains the first rung and is scored on validation tasks / classes\n"
                         "(eval --split val, never the test split), the best 1/eta continue eta times longer,\n"
                         "up to --max-iters. Trials are child processes (a diverging trial is marked failed);\n"
                         "DIR/trials.jsonl logs each; rerunning the same command resumes. Writes DIR/best.json\n"
                         "(for train --config) and DIR/search.png.",
                         specs, (int)(sizeof specs / sizeof specs[0])};
    const char *pos[1];
    int npos;
    int r = args_parse(&cmd, argc, argv, 2, pos, 0, &npos);
    if (r == ARGS_HELP) return EXIT_OK;
    if (r) return EXIT_USAGE;
    if (!s.space_path || !s.out || s.budget < 1) {
        fprintf(stderr, "metalearn search: --space, --budget and --out are required\nusage: metalearn search %s\n",
                cmd.synopsis);
        return EXIT_USAGE;
    }
    if (strcmp(s.strategy, "random") && strcmp(s.strategy, "evolution")) {
        fprintf(stderr, "metalearn search: --strategy '%s': expected random or evolution\n", s.strategy);
        return EXIT_USAGE;
    }
    char err[2048];
    int base_iters = 0, status = load_space(&s, config, &base_iters, err, sizeof err);
    if (status) {
        fprintf(stderr, "metalearn search: %s\n", err);
        goto done;
    }
    status = EXIT_USAGE;
    if (!s.max_iters) s.max_iters = base_iters;
    if (!s.min_iters) s.min_iters = s.max_iters / (s.eta * s.eta) > 0 ? s.max_iters / (s.eta * s.eta) : 1;
    s.n_rungs = ml_search_rungs(s.min_iters, s.max_iters, s.eta, s.rungs, MAX_RUNGS);
    if (s.n_rungs < 1) {
        fprintf(stderr, "metalearn search: --min-iters %d must not exceed --max-iters %d\n", s.min_iters, s.max_iters);
        goto done;
    }
    if (s.population > s.budget) s.population = s.budget;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1) cores = 1;
    if (!s.jobs) s.jobs = (int)cores;
    if (!s.threads) s.threads = cores / s.jobs > 0 ? (int)(cores / s.jobs) : 1;
    status = EXIT_FAIL;
    s.cand = calloc((size_t)s.budget * (s.space.n ? s.space.n : 1), sizeof(double));
    s.settings = calloc((size_t)s.budget, sizeof(char *));
    s.logged = calloc((size_t)s.budget * MAX_RUNGS, sizeof(char *));
    s.res = calloc((size_t)s.budget * MAX_RUNGS, sizeof(trial_result));
    if (!s.cand || !s.settings || !s.logged || !s.res) {
        fprintf(stderr, "metalearn search: out of memory for %d candidates\n", s.budget);
        goto done;
    }
    char trials[4200];
    snprintf(trials, sizeof trials, "%s/trials", s.out);
    /* temporaries of a search killed while writing its own files */
    static const char *const search_files[] = {"best.json", "search.png", "trials.jsonl"};
    ml_rundir_clean_temps(s.out, search_files, 3);
    if (ml_mkdir_p(trials, err, sizeof err) || check_identity(&s, err, sizeof err) || read_log(&s, err, sizeof err)) {
        fprintf(stderr, "metalearn search: %s\n", err);
        status = strstr(err, "another search") ? EXIT_USAGE : EXIT_FAIL;
        goto done;
    }
    if (!s.quiet)
        fprintf(stderr, "search: %s, %d candidates, %d rung(s) from %d to %d iterations, %d job(s) x %d thread(s) -> %s\n",
                s.strategy, s.budget, s.n_rungs, s.rungs[0], s.max_iters, s.jobs, s.threads, s.out);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: waitpid returns EINTR */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    status = run_search(&s, json, err, sizeof err);
    if (status == 130)
        fprintf(stderr, "metalearn search: interrupted; finished trials are in %s/trials.jsonl; rerun the same command "
                        "to continue\n", s.out);
    else if (status)
        fprintf(stderr, "metalearn search: %s\n", err);
done:
    if (s.settings)
        for (int t = 0; t < s.budget; t++) cJSON_free(s.settings[t]);
    if (s.logged)
        for (size_t i = 0; i < (size_t)s.budget * MAX_RUNGS; i++) cJSON_free(s.logged[i]);
    free(s.settings);
    free(s.logged);
    free(s.cand);
    free(s.res);
    cJSON_Delete(s.base);
    ml_search_space_free(&s.space);
    return status;
}
