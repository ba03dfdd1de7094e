/* cmd_search.c: `metalearn search`: argv -> ml_search_config, progress and
 * the final table. The search itself (space, evolution, successive halving,
 * trial folders, the log and resume, best.json, the chart, and the trials,
 * each in a child process) is the library's ml_search_run
 * (metalearn/search.h). */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/progress.h"
#include "metalearn/dist.h"
#include "metalearn/search.h"

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) { g_stop = sig; }

/* ---- progress ------------------------------------------------------------------------------ */

typedef struct view {
    int quiet;
    cli_progress prog;
    ml_progress progress;
    char what[32];
    char ranks[48]; /* "2 processes (mpirun) x " under mpirun */
} view;

static void on_event(const ml_search_event *e, void *user) {
    view *v = user;
    const ml_search_config *c = e->config;
    char where[32] = "";
    switch (e->kind) {
    case ML_SEARCH_STARTED:
        if (!v->quiet)
            fprintf(stderr,
                    "search: %s, %d candidates, %d rung(s) from %d to %d iterations, %s%d job(s) x %d thread(s) -> %s\n",
                    c->strategy, c->budget, e->n_rungs, e->rungs[0], c->max_iters, v->ranks, c->jobs, c->threads,
                    c->out);
        break;
    case ML_SEARCH_RUNG_START:
        v->progress = cli_progress_start(&v->prog, v->quiet);
        snprintf(v->what, sizeof v->what, "search rung %d", e->rung);
        break;
    case ML_SEARCH_TRIAL_DONE:
        cli_progress_end(&v->prog); /* the trial's line below a bar, not inside it */
        if (*v->ranks) snprintf(where, sizeof where, " on rank %d", e->rank); /* under mpirun */
        if (!v->quiet && e->ok)
            fprintf(stderr, "search: trial %03d rung %d (%d it)%s: %s %.5g  [%.1f s]\n", e->trial, e->rung,
                    e->rungs[e->rung], where, e->metric, e->score, e->seconds);
        else if (!v->quiet)
            fprintf(stderr, "search: trial %03d rung %d (%d it)%s: failed: %s\n", e->trial, e->rung,
                    e->rungs[e->rung], where, e->message);
        ml_progress_report(&v->progress, v->what, e->done, e->total);
        break;
    case ML_SEARCH_RUNG_END:
        cli_progress_end(&v->prog);
        break;
    }
}

/* ---- the result ------------------------------------------------------------------------------ */

static void print_result(const ml_search_config *c, const ml_search_summary *r, int json) {
    printf("%s search: %d candidates, rungs", c->strategy, c->budget);
    for (int k = 0; k < r->n_rungs; k++) printf(" %d", r->rungs[k]);
    printf(" iterations; validation %s (%s is better)\n", r->metric, r->higher_better ? "higher" : "lower");
    printf("%4s %6s %7s %12s  %s\n", "rank", "trial", "iters", r->metric, "settings");
    for (int i = 0; i < r->budget && i < 10; i++) {
        const ml_search_result *t = &r->results[r->order[i]];
        if (t->top_rung < 0) printf("%4d %6d %7s %12s  %s\n", i + 1, t->trial, "-", "failed", t->summary);
        else printf("%4d %6d %7d %12.5g  %s\n", i + 1, t->trial, t->iters, t->score, t->summary);
    }
    /* Every failure with its whole reason, on lines of its own (not cut to a column). */
    int shown = 0;
    for (int i = 0; i < r->budget; i++) {
        const ml_search_result *t = &r->results[i];
        if (t->failed_rung < 0) continue;
        if (shown++ == 0) printf("failed trials (never promoted, never best):\n");
        if (shown > 20) {
            printf("  ... and more: see %s/trials.jsonl\n", c->out);
            break;
        }
        printf("  trial %d, rung %d (%d it): %s\n", t->trial, t->failed_rung, t->failed_iters, t->message);
    }
    const ml_search_result *best = &r->results[r->order[0]];
    printf("best: trial %d -> %s/best.json (train it with: metalearn train --config %s/best.json --out RUN)\n",
           best->trial, c->out, c->out);
    if (!json) return;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "command", "search");
    cJSON_AddStringToObject(j, "strategy", c->strategy);
    cJSON_AddNumberToObject(j, "budget", c->budget);
    cJSON *rungs = cJSON_AddArrayToObject(j, "rungs");
    for (int k = 0; k < r->n_rungs; k++) cJSON_AddItemToArray(rungs, cJSON_CreateNumber(r->rungs[k]));
    cJSON_AddStringToObject(j, "metric", r->metric);
    cJSON_AddStringToObject(j, "direction", r->higher_better ? "max" : "min");
    cJSON_AddNumberToObject(j, "trials_run_now", r->trials_run_now);
    cJSON_AddNumberToObject(j, "trials_failed", r->trials_failed);
    cJSON_AddNumberToObject(j, "best_trial", best->trial);
    cJSON_AddNumberToObject(j, "best_rung", best->top_rung);
    cJSON_AddNumberToObject(j, "best_score", best->score);
    cJSON_AddItemToObject(j, "best_settings", cJSON_Parse(best->settings));
    char path[4200];
    snprintf(path, sizeof path, "%s/best.json", c->out);
    cJSON_AddStringToObject(j, "best_config", path);
    cJSON_AddNumberToObject(j, "seconds", round(r->seconds * 1000) / 1000);
    char *line = cJSON_PrintUnformatted(j);
    if (line) printf("%s\n", line);
    cJSON_free(line);
    cJSON_Delete(j);
}

/* ---- the command ------------------------------------------------------------------------------ */

int cmd_search(int argc, char **argv) {
    ml_search_config c;
    ml_search_config_default(&c);
    c.budget = -1;
    int json = 0, quiet = 0;
    ml_option_set lib = ml_search_config_option_set(&c);
    ml_option specs[32];
    memcpy(specs, lib.options, (size_t)lib.n_options * sizeof *specs);
    int n = lib.n_options;
    specs[n++] = (ml_option){"json", ML_OPT_FLAG, &json, "print a summary JSON line last", 0, 0};
    specs[n++] = (ml_option){"quiet", ML_OPT_FLAG, &quiet, "no progress lines on stderr", 0, 0};
    const ml_option_set cmd = {"search", lib.synopsis, lib.about, specs, n};
    const char *pos[1];
    int npos;
    int r = args_parse(&cmd, argc, argv, 2, pos, 0, &npos);
    if (r == ARGS_HELP) return EXIT_OK;
    if (r) return EXIT_USAGE;
    if (!c.space || !c.out || c.budget < 1) {
        fprintf(stderr, "metalearn search: --space, --budget and --out are required\nusage: metalearn search %s\n",
                cmd.synopsis);
        return EXIT_USAGE;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    view v = {.quiet = quiet};
    if (ml_dist_size() > 1) snprintf(v.ranks, sizeof v.ranks, "%d processes (mpirun) x ", ml_dist_size());
    ml_search_summary sum;
    char err[2048];
    ml_status st = ml_search_run(&c, NULL, on_event, &v, &g_stop, &sum, err, sizeof err);
    int status = EXIT_OK;
    if (sum.interrupted) { /* under mpirun: said once, by rank 0 */
        if (ml_dist_rank() == 0)
            fprintf(stderr, "metalearn search: interrupted; finished trials are in %s/trials.jsonl; rerun the same "
                            "command to continue\n", c.out);
        status = 130;
    } else if (st) {
        fprintf(stderr, "metalearn search: %s\n", err);
        status = st == ML_ERR_ARG ? EXIT_USAGE : EXIT_FAIL;
    } else if (sum.results) { /* rank 0's (a worker of an mpirun job has none) */
        print_result(&c, &sum, json);
    }
    ml_search_summary_free(&sum);
    return status;
}
