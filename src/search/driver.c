/* driver.c: ml_search_run, a whole strategy search (metalearn/search.h):
 * candidates, successive halving, the trial folders, the trial log and its
 * replay (resume), best.json and the chart. Every trial step (train, then
 * score on validation tasks) runs in a child process forked here, through
 * the caller's ml_search_runner, so a trial that diverges or crashes is
 * marked failed and the search goes on; `jobs` steps run at once.
 *
 * Determinism and resume: candidates come from an RNG seeded by the seed
 * and fed only logged scores; training is bit-exact whatever the thread
 * count. OUT/trials.jsonl keeps one line per finished (trial, rung); a rerun
 * replays it and runs only what is missing (a trial stopped half-way
 * continues from its checkpoint). Nothing here prints. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/errfmt.h"
#include "metalearn/dist.h"
#include "metalearn/io.h"
#include "metalearn/rundir.h"
#include "metalearn/search.h"
#include "search/search_internal.h"

#define MAX_RUNGS 16

/* ---- the configuration -------------------------------------------------------------- */

void ml_search_config_default(ml_search_config *c) {
    memset(c, 0, sizeof *c);
    c->strategy = "random";
    c->eta = 3;
    c->population = 8;
    c->val_tasks = 200;
    c->seed = 1;
}

ml_option_set ml_search_config_option_set(ml_search_config *c) {
    static _Thread_local ml_option o[13]; /* points into c: one table per thread (as ml_run_config_options) */
    int n = 0;
    o[n++] = (ml_option){"space", ML_OPT_STRING, &c->space, "search space JSON: {\"base\": {...}, \"space\": {\"inner-lr\": {\"log_uniform\": [1e-3, 1]}, ...}}", 1, 0};
    o[n++] = (ml_option){"budget", ML_OPT_INT, &c->budget, "candidates to try (at least 1)", 1, 100000};
    o[n++] = (ml_option){"out", ML_OPT_STRING, &c->out, "search folder: trials/NNN, trials.jsonl, best.json, search.png", 1, 0};
    o[n++] = (ml_option){"config", ML_OPT_STRING, &c->config, "base train config (a run's config.json works); the space's \"base\" overrides it", 1, 0};
    o[n++] = (ml_option){"strategy", ML_OPT_STRING, &c->strategy, "random (default) or evolution", 1, 0};
    o[n++] = (ml_option){"min-iters", ML_OPT_INT, &c->min_iters, "fewest iterations of a rung: rungs are max-iters/eta^k, not below this (default max-iters/eta^2)", 1, 100000000};
    o[n++] = (ml_option){"max-iters", ML_OPT_INT, &c->max_iters, "iterations of the last rung and of best.json (default: the base iters)", 1, 100000000};
    o[n++] = (ml_option){"eta", ML_OPT_INT, &c->eta, "successive halving: keep the best 1/eta per rung, eta times the iterations (default 3)", 2, 100};
    o[n++] = (ml_option){"population", ML_OPT_INT, &c->population, "evolution: candidates per generation (default 8)", 2, 100000};
    o[n++] = (ml_option){"jobs", ML_OPT_INT, &c->jobs, "trials run at once (under mpirun: by each process; default: the cores, shared by the processes of a machine)", 1, 256};
    o[n++] = (ml_option){"threads", ML_OPT_INT, &c->threads, "threads of each trial (default: cores / jobs)", 1, 1024};
    o[n++] = (ml_option){"val-tasks", ML_OPT_INT, &c->val_tasks, "validation tasks / episodes scoring each trial (default 200)", 1, 10000000};
    o[n++] = (ml_option){"seed", ML_OPT_U64, &c->seed, "seed of the candidate generator (default 1)", 0, 1.8e19};
    return (ml_option_set){"search", "--space FILE --budget N --out DIR [--config BASE.json] [--strategy random|evolution] [options]",
                           "Searches over `metalearn train` settings (algorithm, learning rates, inner steps,\n"
                           "meta-batch, shots, augmentation, any option) by random search or an evolutionary\n"
                           "search (tournament selection, uniform crossover, mutation), with successive halving:\n"
                           "every candidate trains the first rung and is scored on validation tasks / classes\n"
                           "(eval --split val, never the test split), the best 1/eta continue eta times longer,\n"
                           "up to --max-iters. Trials are child processes (a diverging trial is marked failed);\n"
                           "DIR/trials.jsonl logs each; rerunning the same command resumes. Writes DIR/best.json\n"
                           "(for train --config) and DIR/search.png. Under mpirun -np N the trials spread over\n"
                           "the N processes (rank 0 proposes them and writes DIR; DIR on a shared file system).",
                           o, n};
}

/* ---- the state of a search ------------------------------------------------------------ */

typedef struct trial_result {
    int done;       /* finished (from this run or the log) */
    int ok;         /* trained and scored */
    double score;   /* NaN when failed */
    double seconds;
    char msg[512];  /* failure message, kept whole */
} trial_result;

typedef struct search {
    ml_search_config c;   /* resolved */
    const ml_search_runner *runner;
    ml_search_report report;
    void *user;
    volatile const sig_atomic_t *stop;
    int lock; /* ml_rundir_lock's descriptor on the search folder (rank 0), else -1 */
    int halt;             /* an error of the search itself: stop like an interruption */
    int child_interrupted; /* a trial's child was stopped by SIGINT */
    int told_to_stop;     /* a worker of an mpirun job: rank 0 stops the search */
    ml_search_spec spec;
    double *cand;         /* [budget * space.n] */
    char **settings;      /* [budget] settings JSON of each candidate (log check) */
    char **logged;        /* [budget * MAX_RUNGS] settings text from the log, or NULL */
    trial_result *res;    /* [budget * MAX_RUNGS] */
    int rungs[MAX_RUNGS], n_rungs;
    int higher_better;    /* -1 until the first score says which metric */
    const char *metric;
    int ran, failed;      /* (trial, rung) pairs run by this call / failed overall */
    struct slot *slots;   /* the job slots: rank 0's of every rank, a worker's its own */
    int n_slots;
} search;

#define RES(s, t, r) (&(s)->res[(size_t)(t) * MAX_RUNGS + (r)])

static int stopped(const search *s) {
    return s->halt || s->child_interrupted || s->told_to_stop || (s->stop && *s->stop);
}

static void emit(const search *s, ml_search_event e) {
    if (!s->report) return;
    e.config = &s->c;
    e.n_rungs = s->n_rungs;
    e.rungs = s->rungs;
    if (!e.metric) e.metric = s->metric;
    s->report(&e, s->user);
}

static void trial_dir(const search *s, int t, char *buf, size_t len) {
    snprintf(buf, len, "%s/trials/%03d", s->c.out, t);
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

/* ---- the log ------------------------------------------------------------------------------ */

static int read_log(search *s, char *err, size_t errlen) {
    char path[4200];
    snprintf(path, sizeof path, "%s/trials.jsonl", s->c.out);
    char *text;
    size_t len;
    /* Absent: a new search. Present but unreadable: an error, never a fresh
     * start that would run the finished trials again over their folders. */
    if (ml_file_read_text_if_present(path, 0, &text, &len, err, errlen) != ML_OK) return -1;
    if (!text) return 0;
    int torn_tail = len > 0 && text[len - 1] != '\n';
    int line_no = 0, rc = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line && !rc; line = strtok_r(NULL, "\n", &save)) {
        line_no++;
        cJSON *j = cJSON_Parse(line);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "trial"), *r = cJSON_GetObjectItemCaseSensitive(j, "rung"),
                    *st = cJSON_GetObjectItemCaseSensitive(j, "settings"),
                    *status = cJSON_GetObjectItemCaseSensitive(j, "status");
        if (!j || !cJSON_IsNumber(t) || !cJSON_IsNumber(r) || !cJSON_IsObject(st) || !cJSON_IsString(status)) {
            /* A torn last line (power cut mid-append) is dropped, anything else is an error. */
            if (!strtok_r(NULL, "\n", &save)) {
                cJSON_Delete(j);
                /* Cut off, or the next append would extend it into a line that
                 * is never a record: the trial ran again at every resume. */
                if (torn_tail && truncate(path, (off_t)(line - text))) {
                    ml__errf(err, errlen, "%s: cannot cut its torn last line: %s", path, strerror(errno));
                    rc = -1;
                }
                break;
            }
            ml__errf(err, errlen, "%s: line %d is not a trial record", path, line_no);
            rc = -1;
        } else if (t->valueint < 0 || t->valueint >= s->c.budget || r->valueint < 0 || r->valueint >= s->n_rungs) {
            ml__errf(err, errlen, "%s: line %d: trial %d rung %d is outside this search (budget %d, %d rungs)", path,
                     line_no, t->valueint, r->valueint, s->c.budget, s->n_rungs);
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
    snprintf(path, sizeof path, "%s/trials.jsonl", s->c.out);
    int rc = line && !ml_jsonl_append(path, line, err, errlen) ? 0 : -1;
    if (!line) ml__errf(err, errlen, "out of memory");
    cJSON_free(line);
    return rc;
}

/* ---- running trials ------------------------------------------------------------------------ */

/* A job slot: one trial step at a time. Rank 0's own slots run children
 * forked here; under mpirun the other ranks' slots (rank > 0) run theirs
 * and answer with one message when the step ends. */
typedef struct slot {
    int rank;         /* the process whose slot this is */
    int busy;
    pid_t pid;        /* this process's child of the current phase */
    int trial, rung, phase; /* phase 0 train, 1 eval */
    double t0;
} slot;

/* ---- messages between the ranks of an mpirun job ------------------------------------------
 * Rank 0 (the driver) hands (trial, rung) steps to free slots of any rank in
 * candidate order (MSG_RUN); a worker answers each with exactly one message:
 * MSG_RESULT (the trial_result, as rank 0 would have logged it) or
 * MSG_ABORTED (not finished: the worker was interrupted) or MSG_NO_START
 * (it could not fork: an error of the search, in err). MSG_STOP asks a
 * worker to interrupt its trials; MSG_END (the search's outcome) releases it.
 * Fixed-size rows; the same build on every rank (checked at the start). */
enum { TAG_TO_WORKER = 0x5e01, TAG_TO_DRIVER = 0x5e02 };
enum { MSG_RUN = 1, MSG_STOP, MSG_END, MSG_RESULT, MSG_ABORTED, MSG_NO_START };

typedef struct trial_msg {
    int32_t kind, trial, rung;
    int32_t metric;           /* MSG_RESULT: 0 not known, 1 mse, 2 accuracy */
    int32_t status, interrupted; /* MSG_END: the search's status and interruption */
    trial_result res;         /* MSG_RESULT */
    char err[1024];           /* MSG_END: the search's error; MSG_NO_START: the worker's */
} trial_msg;

static int send_msg(int rank, int tag, trial_msg m) { return ml_dist_send(&m, sizeof m, rank, tag); }

/* Forks the child of one phase of a trial: stdout and stderr to the phase's
 * files, the runner's function, its return value the exit status. */
static pid_t start_phase(search *s, const slot *sl) {
    char dir[4200], spec[4300], ckpt[4300], out[4300], errp[4300];
    trial_dir(s, sl->trial, dir, sizeof dir);
    snprintf(spec, sizeof spec, "%s/spec.json", dir);
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", dir);
    const char *phase = sl->phase ? "eval" : "train";
    snprintf(out, sizeof out, "%s/%s.out", dir, phase);
    snprintf(errp, sizeof errp, "%s/%s.err", dir, phase);
    ml_search_trial trial = {.trial = sl->trial, .rung = sl->rung, .iters = s->rungs[sl->rung], .dir = dir,
                             .spec = spec, .resume = access(ckpt, F_OK) == 0, .threads = s->c.threads,
                             .val_tasks = s->c.val_tasks};
    /* Unwritten stdio buffers would be written twice, once by the child. */
    fflush(stdout);
    fflush(stderr);
    pid_t parent = getpid(), pid = fork();
    if (pid != 0) return pid;
    /* Under mpirun the MPI state copied by fork is the parent's: the trial
     * runs as a job of one and never calls MPI, not even at exit. */
    ml_dist_detach();
    int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644), fe = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0) _exit(127);
    close(fo);
    close(fe);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    /* The search process killed (e.g. a rank of an mpirun job that ended):
     * the trial gets SIGTERM, saves its checkpoint and stops, not orphaned. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(143);
    int rc = sl->phase ? s->runner->evaluate(&trial, s->runner->user) : s->runner->train(&trial, s->runner->user);
    fflush(stdout);
    fflush(stderr);
    _exit(rc & 255);
}
static int parse_score(search *s, int t, trial_result *res) {
    char dir[4200], path[4300];
    trial_dir(s, t, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/eval.out", dir);
    char *line = ml_malloc(65536);
    if (!line) {
        snprintf(res->msg, sizeof res->msg, "out of memory");
        return -1;
    }
    last_line(path, line, 65536);
    cJSON *j = cJSON_Parse(line);
    ml_free(line);
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

/* Waits for one of this process's running children (only ours: a host
 * program's other children are left alone), a message from another rank
 * (source -1: any; into *msg, *from), or the stop flag. Returns the slot
 * index, -3 for a message, -1 when the stop flag needs handling, -2 on a
 * waitpid error. Sleeps between polls: an idle rank leaves the cores to
 * the trials (MPI's blocking receive would spin). */
static int wait_any(search *s, slot *slots, int n, int *wstatus, int source, int tag, trial_msg *msg, int *from,
                    int forwarded) {
    for (;;) {
        for (int k = 0; k < n; k++) {
            if (!slots[k].pid) continue;
            pid_t r = waitpid(slots[k].pid, wstatus, WNOHANG);
            if (r == slots[k].pid) return k;
            if (r < 0 && errno != EINTR) return -2;
        }
        if (ml_dist_size() > 1 && ml_dist_poll(msg, sizeof *msg, source, tag, from)) return -3;
        if (stopped(s) && !forwarded) return -1;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* This process's child of slot sl ended with wstatus. Returns 0 when the
 * trial went on to its eval phase (a new child), else 1 with *res: done
 * (scored or failed) or, when the search is stopping, not done (unfinished
 * work is not logged: the rerun redoes it). */
static int child_ended(search *s, slot *sl, int wstatus, trial_result *res) {
    sl->pid = 0;
    memset(res, 0, sizeof *res);
    res->score = NAN;
    /* A child stopped by SIGINT (a Ctrl-C at a terminal reaches the whole
     * process group, also when the host program does not raise the stop
     * flag, e.g. Python) is an interruption of the search, not a failed
     * trial: the other children are stopped too. */
    if ((WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGINT) || (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 130))
        s->child_interrupted = 1;
    if (stopped(s)) return 1;
    int failed = child_failed(s, sl->trial, sl->phase, wstatus, res);
    if (!failed && sl->phase == 0) {
        sl->phase = 1;
        sl->pid = start_phase(s, sl);
        if (sl->pid > 0) return 0;
        sl->pid = 0;
        snprintf(res->msg, sizeof res->msg, "cannot start eval: %s", strerror(errno));
        failed = 1;
    }
    if (!failed) failed = parse_score(s, sl->trial, res) != 0;
    res->done = 1;
    res->ok = !failed;
    if (failed) res->score = NAN;
    res->seconds = ml_now() - sl->t0;
    return 1;
}

/* A finished (trial, rung) into the results, the log and the report (rank 0). */
static int record(search *s, int t, int rung, const trial_result *res, int rank, int finished, int todo, char *err,
                  size_t errlen) {
    *RES(s, t, rung) = *res;
    s->ran++;
    s->failed += !res->ok;
    int rc = append_log(s, t, rung, err, errlen);
    emit(s, (ml_search_event){.kind = ML_SEARCH_TRIAL_DONE, .rung = rung, .trial = t, .done = finished, .total = todo,
                              .ok = res->ok, .score = res->score, .seconds = res->seconds,
                              .message = res->ok ? NULL : res->msg, .rank = rank});
    return rc;
}

/* Starts the first phase of (t, rung) in free slot sl: a child here, or a
 * message to the worker owning the slot. Returns 0 or -1 (errno). */
static int start_step(search *s, slot *sl, int t, int rung) {
    *sl = (slot){.rank = sl->rank, .busy = 1, .trial = t, .rung = rung, .phase = 0, .t0 = ml_now()};
    if (sl->rank != ml_dist_rank()) {
        if (send_msg(sl->rank, TAG_TO_WORKER, (trial_msg){.kind = MSG_RUN, .trial = t, .rung = rung}) == 0) return 0;
        errno = EIO;
        return -1;
    }
    sl->pid = start_phase(s, sl);
    if (sl->pid > 0) return 0;
    sl->pid = 0;
    return -1;
}

/* Runs (trial, rung) for the listed trials not done yet on the free slots
 * of every rank, in list order. Returns 0, 130 when interrupted, or 1 on an
 * error of the search itself. Rank 0 only. */
static int run_batch(search *s, const int *trials, int n, int rung, char *err, size_t errlen) {
    slot *slots = s->slots;
    int n_slots = s->n_slots, next = 0, running = 0, rc = 0, forwarded = 0, finished = 0, todo = 0;
    for (int i = 0; i < n; i++) todo += !RES(s, trials[i], rung)->done;
    emit(s, (ml_search_event){.kind = ML_SEARCH_RUNG_START, .rung = rung, .trial = -1, .total = todo});
    for (int k = 0; k < n_slots; k++) slots[k].busy = slots[k].pid = 0;
    for (;;) {
        if (stopped(s) && !forwarded) {
            /* Ctrl-C or an error: children save their checkpoints and stop. */
            for (int k = 0; k < n_slots; k++)
                if (slots[k].pid) kill(slots[k].pid, SIGINT);
            for (int r = 1; r < ml_dist_size(); r++) send_msg(r, TAG_TO_WORKER, (trial_msg){.kind = MSG_STOP});
            forwarded = 1;
        }
        while (!stopped(s) && running < n_slots && next < n) {
            int t = trials[next++];
            if (RES(s, t, rung)->done) continue;
            int k = 0;
            while (slots[k].busy) k++;
            if (start_step(s, &slots[k], t, rung)) {
                ml__errf(err, errlen, "cannot start a trial: %s", strerror(errno));
                slots[k].busy = 0;
                s->halt = 1;
                rc = 1;
                break;
            }
            running++;
        }
        if (!running) break;
        int wstatus, from = 0;
        trial_msg msg;
        int k = wait_any(s, slots, n_slots, &wstatus, -1, TAG_TO_DRIVER, &msg, &from, forwarded);
        if (k == -1) continue;
        if (k == -2) {
            ml__errf(err, errlen, "waitpid: %s", strerror(errno));
            s->halt = 1;
            rc = 1;
            for (int j = 0; j < n_slots; j++) /* this process's children are lost; the workers' still answer */
                if (slots[j].pid) slots[j].busy = slots[j].pid = 0, running--;
            continue;
        }
        trial_result res;
        int t, rank = 0;
        if (k == -3) { /* a worker's step ended */
            for (k = 0; k < n_slots; k++)
                if (slots[k].busy && slots[k].rank == from && slots[k].trial == msg.trial) break;
            if (k == n_slots || (msg.kind != MSG_RESULT && msg.kind != MSG_ABORTED && msg.kind != MSG_NO_START))
                continue; /* not ours */
            slots[k].busy = 0;
            running--;
            if (msg.kind == MSG_ABORTED) s->child_interrupted = 1; /* the worker was interrupted */
            if (msg.kind == MSG_NO_START && !s->halt) {
                ml__errf(err, errlen, "%s", msg.err);
                s->halt = 1;
                rc = 1;
            }
            if (stopped(s)) continue;
            if (msg.metric && s->higher_better < 0) {
                s->higher_better = msg.metric == 2;
                s->metric = msg.metric == 2 ? "accuracy" : "mse";
            }
            res = msg.res;
            t = msg.trial;
            rank = from;
        } else {
            if (!child_ended(s, &slots[k], wstatus, &res)) continue; /* on to its eval */
            slots[k].busy = 0;
            running--;
            if (!res.done) continue;
            t = slots[k].trial;
        }
        if (record(s, t, rung, &res, rank, ++finished, todo, err, errlen)) {
            s->halt = 1;
            rc = 1;
        }
    }
    emit(s, (ml_search_event){.kind = ML_SEARCH_RUNG_END, .rung = rung, .trial = -1, .done = finished, .total = todo});
    if (rc) return rc;
    return stopped(s) ? 130 : 0;
}

/* A worker (rank > 0 of an mpirun job): runs the steps rank 0 hands it in
 * its own job slots until MSG_END, which carries the search's outcome. */
static ml_status serve(search *s, ml_search_summary *sum, char *err, size_t errlen) {
    slot *slots = s->slots;
    int n_slots = s->n_slots, forwarded = 0;
    for (;;) {
        if (stopped(s) && !forwarded) {
            for (int k = 0; k < n_slots; k++)
                if (slots[k].pid) kill(slots[k].pid, SIGINT);
            forwarded = 1;
        }
        int wstatus;
        trial_msg msg;
        int k = wait_any(s, slots, n_slots, &wstatus, 0, TAG_TO_WORKER, &msg, NULL, forwarded);
        if (k == -1) continue;
        if (k == -2) ml_dist_abort("waitpid failed in a search worker", 1);
        if (k == -3) {
            if (msg.kind == MSG_END) {
                snprintf(err, errlen, "%s", msg.err);
                if (sum) sum->interrupted = msg.interrupted;
                return (ml_status)msg.status;
            }
            if (msg.kind == MSG_STOP) s->told_to_stop = 1;
            if (msg.kind != MSG_RUN) continue;
            k = 0;
            while (k < n_slots && slots[k].busy) k++;
            trial_msg reply = {.kind = MSG_ABORTED, .trial = msg.trial, .rung = msg.rung};
            if (!stopped(s) && k < n_slots && msg.rung >= 0 && msg.rung < s->n_rungs) {
                if (start_step(s, &slots[k], msg.trial, msg.rung) == 0) continue;
                slots[k].busy = 0; /* an error of the search, not of the trial: rank 0 stops */
                reply.kind = MSG_NO_START;
                snprintf(reply.err, sizeof reply.err, "rank %d: cannot start a trial: %s", ml_dist_rank(),
                         strerror(errno));
            }
            if (send_msg(0, TAG_TO_DRIVER, reply)) ml_dist_abort("a search worker cannot reach rank 0", 1);
            continue;
        }
        trial_result res;
        if (!child_ended(s, &slots[k], wstatus, &res)) continue;
        slots[k].busy = 0;
        trial_msg reply = {.kind = res.done ? MSG_RESULT : MSG_ABORTED, .trial = slots[k].trial,
                           .rung = slots[k].rung, .res = res};
        reply.metric = s->higher_better < 0 ? 0 : s->higher_better ? 2 : 1;
        if (send_msg(0, TAG_TO_DRIVER, reply)) ml_dist_abort("a search worker cannot reach rank 0", 1);
    }
}

/* ---- candidates ----------------------------------------------------------------------------- */

/* Records candidate t (settings text, spec.json) and checks it against the log. */
static int add_candidate(search *s, int t, char *err, size_t errlen) {
    cJSON *st = cJSON_CreateObject();
    if (!st || ml_search_to_json(&s->spec.space, s->cand + (size_t)t * s->spec.space.n, st)) {
        cJSON_Delete(st);
        ml__errf(err, errlen, "out of memory");
        return -1;
    }
    cJSON_free(s->settings[t]);
    s->settings[t] = cJSON_PrintUnformatted(st);
    cJSON_Delete(st);
    if (!s->settings[t]) {
        ml__errf(err, errlen, "out of memory");
        return -1;
    }
    for (int r = 0; r < s->n_rungs; r++) {
        const char *logged = s->logged[(size_t)t * MAX_RUNGS + r];
        if (logged && strcmp(logged, s->settings[t])) {
            ml__errf(err, errlen, "%s/trials.jsonl: trial %d was %s, this search draws %s: the log belongs to another "
                                  "search (same --out, different space, --seed or strategy?)",
                     s->c.out, t, logged, s->settings[t]);
            return -1;
        }
    }
    char dir[4200], path[4300];
    trial_dir(s, t, dir, sizeof dir);
    if (ml_mkdir_p(dir, err, errlen)) return -1;
    static const char *const spec_file[] = {"spec.json"};
    ml_rundir_clean_temps(dir, spec_file, 1); /* the trial's own run files are train's to clean */
    cJSON *spec = cJSON_Duplicate(s->spec.base, 1);
    if (!spec || ml_search_to_json(&s->spec.space, s->cand + (size_t)t * s->spec.space.n, spec)) {
        cJSON_Delete(spec);
        ml__errf(err, errlen, "out of memory");
        return -1;
    }
    snprintf(path, sizeof path, "%s/spec.json", dir);
    int rc = ml_json_write_atomic(path, spec, err, errlen) ? -1 : 0;
    cJSON_Delete(spec);
    return rc;
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
    int n = s->c.budget, hb = s->higher_better > 0;
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
    cJSON *spec = cJSON_Duplicate(s->spec.base, 1);
    if (!spec || ml_search_to_json(&s->spec.space, s->cand + (size_t)best * s->spec.space.n, spec)) {
        cJSON_Delete(spec);
        ml__errf(err, errlen, "out of memory");
        return -1;
    }
    cJSON_AddNumberToObject(spec, "iters", s->c.max_iters);
    char path[4200];
    snprintf(path, sizeof path, "%s/best.json", s->c.out);
    int rc = ml_json_write_atomic(path, spec, err, errlen) ? -1 : 0;
    cJSON_Delete(spec);
    return rc;
}

static int write_plot(const search *s, char *err, size_t errlen) {
    int n = s->c.budget;
    double *y = ml_malloc((size_t)n * s->n_rungs * sizeof(double));
    int *failed = ml_malloc((size_t)n * sizeof(int));
    if (!y || !failed) {
        ml_free(y);
        ml_free(failed);
        ml__errf(err, errlen, "out of memory");
        return -1;
    }
    for (int t = 0; t < n; t++) {
        failed[t] = failed_rung(s, t) >= 0;
        for (int r = 0; r < s->n_rungs; r++) y[(size_t)r * n + t] = RES(s, t, r)->ok ? RES(s, t, r)->score : NAN;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/search.png", s->c.out);
    ml_search_chart chart = {.strategy = s->c.strategy, .metric = s->metric, .higher_better = s->higher_better > 0,
                             .n_trials = n, .n_rungs = s->n_rungs, .rung_iters = s->rungs, .score = y, .failed = failed};
    int rc = ml_search_plot(path, &chart, err, errlen) ? -1 : 0;
    ml_free(y);
    ml_free(failed);
    return rc;
}

/* The search's identity: a rerun with other arguments must not mix logs.
 * Returns 0, -1 (i/o) or -2 (another search). */
static cJSON *identity(const search *s) {
    cJSON *id = cJSON_CreateObject();
    cJSON_AddStringToObject(id, "strategy", s->c.strategy);
    cJSON_AddNumberToObject(id, "budget", s->c.budget);
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)s->c.seed);
    cJSON_AddStringToObject(id, "seed", seed);
    cJSON_AddNumberToObject(id, "min_iters", s->c.min_iters);
    cJSON_AddNumberToObject(id, "max_iters", s->c.max_iters);
    cJSON_AddNumberToObject(id, "eta", s->c.eta);
    cJSON_AddNumberToObject(id, "population", s->c.population);
    cJSON_AddNumberToObject(id, "val_tasks", s->c.val_tasks);
    cJSON_AddItemToObject(id, "base", cJSON_Duplicate(s->spec.base, 1));
    cJSON *space = cJSON_CreateObject();
    for (int i = 0; i < s->spec.space.n; i++) {
        const ml_search_param *p = &s->spec.space.params[i];
        char desc[64];
        snprintf(desc, sizeof desc, "%d:%.17g:%.17g:%d", (int)p->kind, p->lo, p->hi, p->n_choices);
        cJSON_AddStringToObject(space, p->name, desc);
    }
    cJSON_AddItemToObject(id, "space", space);
    return id;
}

static int check_identity(const search *s, char *err, size_t errlen) {
    cJSON *id = identity(s);
    if (!id) {
        ml__errf(err, errlen, "out of memory");
        return -1;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/search.json", s->c.out);
    cJSON *old = NULL;
    int rc = 0;
    if (access(path, F_OK) == 0) {
        old = ml__search_read_json(path, err, errlen);
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
            rc = -2;
        }
    } else {
        rc = ml_json_write_atomic(path, id, err, errlen) ? -1 : 0;
    }
    cJSON_Delete(old);
    cJSON_Delete(id);
    return rc;
}

/* ---- the summary ------------------------------------------------------------------------------ */

void ml_search_summary_free(ml_search_summary *sum) {
    for (int t = 0; sum->results && t < sum->budget; t++) {
        ml_free((char *)sum->results[t].settings);
        ml_free((char *)sum->results[t].summary);
        ml_free((char *)sum->results[t].message);
    }
    ml_free(sum->results);
    ml_free(sum->order);
    memset(sum, 0, sizeof *sum);
}

static char *copy_text(const char *text) {
    size_t n = strlen(text) + 1;
    char *c = ml_malloc(n);
    if (c) memcpy(c, text, n);
    return c;
}

static ml_status fill_summary(const search *s, const int *order, ml_search_summary *sum, char *err, size_t errlen) {
    int n = s->c.budget, np = s->spec.space.n;
    sum->results = ml_calloc((size_t)n, sizeof *sum->results);
    sum->order = ml_calloc((size_t)n, sizeof *sum->order);
    if (!sum->results || !sum->order) goto oom;
    sum->budget = n;
    memcpy(sum->order, order, (size_t)n * sizeof *order);
    for (int t = 0; t < n; t++) {
        ml_search_result *r = &sum->results[t];
        r->trial = t;
        r->top_rung = top_rung(s, t);
        r->iters = r->top_rung >= 0 ? s->rungs[r->top_rung] : 0;
        r->score = r->top_rung >= 0 ? RES(s, t, r->top_rung)->score : NAN;
        r->failed_rung = failed_rung(s, t);
        r->failed_iters = r->failed_rung >= 0 ? s->rungs[r->failed_rung] : 0;
        r->message = copy_text(r->failed_rung >= 0 ? RES(s, t, r->failed_rung)->msg : "");
        r->settings = copy_text(s->settings[t]);
        char row[1024] = "", val[64];
        for (int p = 0; p < np; p++) {
            ml_search_format(&s->spec.space.params[p], s->cand[(size_t)t * np + p], val, sizeof val);
            snprintf(row + strlen(row), sizeof row - strlen(row), "%s%s=%s", p ? " " : "", s->spec.space.params[p].name,
                     val);
        }
        r->summary = copy_text(row);
        if (!r->message || !r->settings || !r->summary) goto oom;
    }
    return ML_OK;
oom:
    ml__errf(err, errlen, "out of memory");
    return ML_ERR_NOMEM;
}

/* ---- the search --------------------------------------------------------------------------------- */

static ml_status run_search(search *s, ml_search_summary *sum, char *err, size_t errlen) {
    int np = s->spec.space.n, budget = s->c.budget;
    ml_rng rng;
    ml_rng_seed(&rng, s->c.seed);
    int *order = ml_malloc((size_t)budget * sizeof(int)), *ids = ml_malloc((size_t)budget * sizeof(int));
    double *scores = ml_malloc((size_t)budget * sizeof(double));
    ml_status status = ML_ERR_NOMEM;
    if (!order || !ids || !scores) {
        ml__errf(err, errlen, "out of memory");
        goto out;
    }
    status = ML_ERR_IO;
    int evolve = !strcmp(s->c.strategy, "evolution");
    int gen = evolve ? s->c.population : budget;
    /* Rung 0: generations of candidates (one generation for random search). */
    for (int n = 0; n < budget;) {
        int size = budget - n < gen ? budget - n : gen;
        for (int t = n; t < n + size; t++) {
            if (!evolve || n == 0) ml_search_sample(&s->spec.space, &rng, s->cand + (size_t)t * np);
            else ml_search_breed(&s->spec.space, &rng, s->cand, t, n, scores, s->higher_better > 0);
            if (add_candidate(s, t, err, errlen)) goto out;
            ids[t - n] = t;
        }
        int rc = run_batch(s, ids, size, 0, err, errlen);
        if (rc) goto stopped;
        n += size;
        for (int t = 0; t < n; t++) scores[t] = RES(s, t, 0)->score;
    }
    /* Successive halving: the best 1/eta of a rung go on to the next; a failed
     * (diverged, crashed) trial has no score at its rung, so it never goes on. */
    int hb_known = s->higher_better > 0, n_prev = budget;
    for (int r = 1; r < s->n_rungs; r++) {
        for (int t = 0; t < budget; t++) scores[t] = RES(s, t, r - 1)->ok ? RES(s, t, r - 1)->score : NAN;
        ml_search_rank(scores, budget, hb_known, order);
        int k = ml_search_promoted(n_prev, s->c.eta), m = 0;
        for (int i = 0; i < k; i++)
            if (!isnan(scores[order[i]])) ids[m++] = order[i];
        if (!m) break;
        int rc = run_batch(s, ids, m, r, err, errlen);
        if (rc) goto stopped;
        n_prev = m;
    }
    final_order(s, order);
    int best = order[0];
    if (top_rung(s, best) < 0) {
        int fr = failed_rung(s, best);
        ml__errf(err, errlen, "every trial failed, so no best.json (see %s/trials.jsonl); trial %d: %s", s->c.out, best,
                 fr >= 0 ? RES(s, best, fr)->msg : "not scored");
        status = ML_ERR_NUMERIC;
        goto out;
    }
    if (write_best(s, best, err, errlen) || write_plot(s, err, errlen)) goto out;
    status = sum ? fill_summary(s, order, sum, err, errlen) : ML_OK;
    goto out;
stopped:
    if (!s->halt) {
        if (sum) sum->interrupted = 1;
        ml__errf(err, errlen, "interrupted; finished trials are in %s/trials.jsonl; rerun the same search to continue",
                 s->c.out);
        status = ML_ERR_STATE;
    }
out:
    ml_free(order);
    ml_free(ids);
    ml_free(scores);
    return status;
}

static ml_status resolve(search *s, char *err, size_t errlen) {
    ml_search_config *c = &s->c;
    if (!c->space && !c->space_text) {
        ml__errf(err, errlen, "no search space (--space)");
        return ML_ERR_ARG;
    }
    if (!c->out || !*c->out) {
        ml__errf(err, errlen, "no search folder (--out)");
        return ML_ERR_ARG;
    }
    if (c->budget < 1) {
        ml__errf(err, errlen, "--budget %d: at least 1 candidate", c->budget);
        return ML_ERR_ARG;
    }
    if (!c->strategy || (strcmp(c->strategy, "random") && strcmp(c->strategy, "evolution"))) {
        ml__errf(err, errlen, "--strategy '%s': expected random or evolution", c->strategy ? c->strategy : "");
        return ML_ERR_ARG;
    }
    if (c->eta < 2 || c->population < 1 || c->val_tasks < 1 || c->jobs < 0 || c->jobs > 256 || c->threads < 0 ||
        c->min_iters < 0 || c->max_iters < 0) {
        ml__errf(err, errlen, "search settings out of range (eta >= 2, population >= 1, val-tasks >= 1, jobs 0..256)");
        return ML_ERR_ARG;
    }
    ml_status st = ml_search_spec_load(&s->spec, c->space, c->space_text, c->config, err, errlen);
    if (st) return st;
    if (!c->max_iters) c->max_iters = s->spec.base_iters;
    if (!c->min_iters) c->min_iters = c->max_iters / (c->eta * c->eta) > 0 ? c->max_iters / (c->eta * c->eta) : 1;
    s->n_rungs = ml_search_rungs(c->min_iters, c->max_iters, c->eta, s->rungs, MAX_RUNGS);
    if (s->n_rungs < 1) {
        ml__errf(err, errlen, "--min-iters %d must not exceed --max-iters %d", c->min_iters, c->max_iters);
        return ML_ERR_ARG;
    }
    if (c->population > c->budget) c->population = c->budget;
    /* Under mpirun the ranks on this machine share its cores. */
    long cores = sysconf(_SC_NPROCESSORS_ONLN) / ml_dist_node_size();
    if (cores < 1) cores = 1;
    if (!c->jobs) c->jobs = cores < 256 ? (int)cores : 256;
    if (!c->threads) c->threads = cores / c->jobs > 0 ? (int)(cores / c->jobs) : 1;
    return ML_OK;
}

/* Every rank's status (and fingerprint): all go on, or all fail with the
 * first failing rank's message and status. */
static ml_status agree_status(ml_status status, uint64_t fp, char *err, size_t errlen) {
    if (ml_dist_size() == 1) return status;
    char why[1024];
    snprintf(why, sizeof why, "%s", status ? err : "");
    int first = 0;
    if (ml_dist_agree((int)status, why, fp, &first, err, errlen) == 0) return ML_OK;
    return first ? (ml_status)first : ML_ERR_ARG;
}

/* An mpirun job: every rank resolved the same settings from the same
 * files (a rank that cannot read them, or runs other settings or another
 * build, fails them all with its message). Threads and jobs may differ:
 * they never change a trial's result. */
static ml_status agree_settings(search *s, ml_status status, char *err, size_t errlen) {
    uint64_t fp = ml_dist_build_id();
    if (!status) {
        cJSON *id = identity(s);
        char *text = id ? cJSON_PrintUnformatted(id) : NULL;
        cJSON_Delete(id);
        if (!text) {
            ml__errf(err, errlen, "out of memory");
            status = ML_ERR_NOMEM;
        } else {
            fp = ml_dist_hash(ml_dist_hash(fp, text, strlen(text)), s->c.out, strlen(s->c.out));
            cJSON_free(text);
        }
    }
    return agree_status(status, fp, err, errlen);
}

/* The job slots: this process's jobs, and on rank 0 every worker's after
 * its own (slots[k].rank), gathered from the ranks (each its --jobs). */
static ml_status make_slots(search *s, char *err, size_t errlen) {
    int size = ml_dist_size(), rank = ml_dist_rank();
    int *jobs = ml_calloc((size_t)size, sizeof(int));
    int ok = jobs != NULL;
    if (jobs) jobs[rank] = s->c.jobs;
    if (size > 1 && ml_dist_any(!ok)) ok = 0;
    if (ok) ml_dist_allgather_rows(jobs, sizeof(int), size);
    int n = 0;
    for (int r = 0; ok && r < size; r++)
        if (r == rank || rank == 0) n += jobs[r];
    s->slots = ok ? ml_calloc((size_t)n, sizeof(slot)) : NULL;
    for (int r = 0, k = 0; s->slots && r < size; r++)
        for (int j = 0; (r == rank || rank == 0) && j < jobs[r]; j++) s->slots[k++].rank = r;
    s->n_slots = n;
    ml_free(jobs);
    if (s->slots) return ML_OK;
    ml__errf(err, errlen, "out of memory");
    return ML_ERR_NOMEM;
}

ml_status ml_search_run(const ml_search_config *c, const ml_search_runner *runner, ml_search_report report,
                        void *user, volatile const sig_atomic_t *stop, ml_search_summary *summary, char *err,
                        size_t errlen) {
    double t0 = ml_now();
    if (summary) memset(summary, 0, sizeof *summary);
    search s;
    memset(&s, 0, sizeof s);
    s.c = *c;
    s.runner = runner ? runner : ml__search_default_runner();
    s.report = report;
    s.user = user;
    s.stop = stop;
    s.higher_better = -1;
    s.lock = -1;
    /* Under mpirun a program that never called ml_dist_init (Python, C)
     * still spreads its trials: MPI starts here. A plain process: no-op. */
    if (ml_dist_init(NULL, NULL, err, errlen)) return ML_ERR_STATE;
    const int driver = ml_dist_rank() == 0; /* rank 0 (one process: the only one) */
    ml_status status = agree_settings(&s, resolve(&s, err, errlen), err, errlen);
    if (status) goto done;
    status = ML_ERR_NOMEM;
    size_t budget = (size_t)s.c.budget;
    s.cand = ml_calloc(budget * (s.spec.space.n ? s.spec.space.n : 1), sizeof(double));
    s.settings = ml_calloc(budget, sizeof(char *));
    s.logged = ml_calloc(budget * MAX_RUNGS, sizeof(char *));
    s.res = ml_calloc(budget * MAX_RUNGS, sizeof(trial_result));
    if (!s.cand || !s.settings || !s.logged || !s.res) {
        ml__errf(err, errlen, "out of memory for %d candidates", s.c.budget);
        goto agree;
    }
    status = ML_OK;
    if (driver) { /* the search folder is rank 0's alone */
        char trials[4200];
        snprintf(trials, sizeof trials, "%s/trials", s.c.out);
        /* temporaries of a search killed while writing its own files */
        static const char *const search_files[] = {"best.json", "search.png", "search.json", "trials.jsonl"};
        ml_rundir_clean_temps(s.c.out, search_files, 4);
        status = ML_ERR_IO;
        if (ml_mkdir_p(trials, err, errlen)) goto agree;
        /* one search per folder: the same command twice would run and log every trial twice */
        if ((s.lock = ml_rundir_lock(s.c.out, err, errlen)) == -1) {
            status = ML_ERR_STATE;
            goto agree;
        }
        int id = check_identity(&s, err, errlen);
        if (id) {
            status = id == -2 ? ML_ERR_ARG : ML_ERR_IO;
            goto agree;
        }
        if (read_log(&s, err, errlen)) goto agree;
        status = ML_OK;
    }
agree:
    status = agree_status(status, 0, err, errlen);
    if (!status) status = make_slots(&s, err, errlen);
    if (status) goto done;
    if (!driver) {
        status = serve(&s, summary, err, errlen);
        goto done;
    }
    emit(&s, (ml_search_event){.kind = ML_SEARCH_STARTED, .rung = -1, .trial = -1});
    status = run_search(&s, summary, err, errlen);
    /* The workers end with the search's outcome, so every rank exits alike. */
    for (int r = 1; r < ml_dist_size(); r++) {
        trial_msg end = {.kind = MSG_END, .status = (int32_t)status, .interrupted = status == ML_ERR_STATE};
        snprintf(end.err, sizeof end.err, "%s", status ? err : "");
        if (ml_dist_send(&end, sizeof end, r, TAG_TO_WORKER)) ml_dist_abort("cannot reach the search workers", 1);
    }
done:
    if (summary) {
        summary->metric = s.metric;
        summary->higher_better = s.higher_better > 0;
        summary->n_rungs = s.n_rungs;
        memcpy(summary->rungs, s.rungs, sizeof s.rungs);
        summary->trials_run_now = s.ran;
        summary->trials_failed = s.failed;
        summary->seconds = ml_now() - t0;
        if (status && !summary->interrupted) ml_search_summary_free(summary);
    }
    if (s.settings)
        for (size_t t = 0; t < (size_t)s.c.budget; t++) cJSON_free(s.settings[t]);
    if (s.logged)
        for (size_t i = 0; i < (size_t)s.c.budget * MAX_RUNGS; i++) cJSON_free(s.logged[i]);
    ml_free(s.settings);
    ml_free(s.logged);
    ml_free(s.cand);
    ml_rundir_unlock(s.lock);
    ml_free(s.res);
    ml_free(s.slots);
    ml_search_spec_free(&s.spec);
    return status;
}
