/* test_search_run.c: the search driver, ml_search_run (metalearn/search.h):
 * trials in child processes (a crashing trial is logged as failed and never
 * wins), the log, best.json, resume after a stop, bad settings; first with a
 * scripted runner (no training: scores from the settings, so the winner is
 * known), then a tiny real sinusoid search through the library's own
 * runner. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "metalearn/io.h"
#include "metalearn/search.h"
#include "ml_test.h"

static const char *k_space =
    "{\"base\": {\"algo\": \"maml\", \"task\": \"sinusoid\", \"model\": \"mlp:8\", \"iters\": 30},"
    " \"space\": {\"inner-lr\": {\"log_uniform\": [0.001, 1]}, \"inner-steps\": {\"int\": [1, 3]}}}";

static char *read_text(const char *path) {
    char *text = NULL;
    if (ml_file_read_text(path, 0, &text, NULL, NULL, 0) != ML_OK) return NULL;
    return text;
}

static cJSON *read_json(const char *path) {
    char *text = read_text(path);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    ml_free(text);
    return j;
}

static int count_lines(const char *path) {
    char *text = read_text(path);
    int n = 0;
    for (const char *c = text; c && *c; c++) n += *c == '\n';
    ml_free(text);
    return n;
}

static void rm_rf(const char *dir) {
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) fprintf(stderr, "cannot remove %s\n", dir);
}

/* ---- a scripted runner: the score is a known function of the settings -------------- */

static double setting(const char *spec, const char *name) {
    cJSON *j = read_json(spec);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    double x = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    cJSON_Delete(j);
    return x;
}

/* inner-steps 3 crashes (the child, not the search); the rest "train". */
static int fake_train(const ml_search_trial *t, void *user) {
    (void)user;
    if (setting(t->spec, "inner-steps") == 3) abort();
    fprintf(stderr, "trained %s to %d\n", t->dir, t->iters);
    return 0;
}

/* mse = |log10(inner-lr) + 1| + 1 / iters: best near 0.1, better with more iterations. */
static int fake_eval(const ml_search_trial *t, void *user) {
    (void)user;
    double lr = setting(t->spec, "inner-lr");
    printf("{\"results\":[{\"steps\":0,\"mse\":99},{\"steps\":1,\"mse\":%.17g}]}\n", fabs(log10(lr) + 1) + 1.0 / t->iters);
    return 0;
}

static const ml_search_runner k_fake = {fake_train, fake_eval, NULL};

typedef struct counter {
    int trials_done, stop_after;
    volatile sig_atomic_t *stop;
} counter;

static void count(const ml_search_event *e, void *user) {
    counter *c = user;
    if (e->kind != ML_SEARCH_TRIAL_DONE) return;
    c->trials_done++;
    if (c->stop && c->trials_done == c->stop_after) *c->stop = 1;
}

static void config(ml_search_config *c, const char *out) {
    ml_search_config_default(c);
    c->space_text = k_space;
    c->out = out;
    c->budget = 6;
    c->min_iters = 10; /* rungs 10, 30 (max_iters from the base's iters) */
    c->jobs = 2;
    c->threads = 1;
    c->val_tasks = 5;
}

static void test_scripted_search(void) {
    char out[4096], path[4400], err[1024] = "";
    snprintf(out, sizeof out, "%s/search_run_scripted", ml_test_tmp_dir());
    rm_rf(out);
    ml_search_config c;
    config(&c, out);
    ml_search_summary sum;
    counter cnt = {0};
    CHECK_INT_EQ(ml_search_run(&c, &k_fake, count, &cnt, NULL, &sum, err, sizeof err), ML_OK);
    if (err[0] && sum.budget == 0) fprintf(stderr, "  %s\n", err);
    CHECK_INT_EQ(sum.n_rungs, 2);
    CHECK_INT_EQ(sum.rungs[0], 10);
    CHECK_INT_EQ(sum.rungs[1], 30);
    CHECK(sum.metric && !strcmp(sum.metric, "mse"));
    CHECK_INT_EQ(sum.higher_better, 0);
    snprintf(path, sizeof path, "%s/trials.jsonl", out);
    int lines = count_lines(path);
    CHECK_INT_EQ(sum.trials_run_now, lines);
    CHECK_INT_EQ(cnt.trials_done, lines);
    CHECK(lines >= 6 && lines <= 8);
    /* The winner: the lowest score at the highest rung, never a crashed trial. */
    int best = sum.order ? sum.order[0] : -1;
    double expect_best = INFINITY;
    int crashed = 0;
    for (int t = 0; t < sum.budget; t++) {
        const ml_search_result *r = &sum.results[t];
        if (r->failed_rung >= 0) {
            crashed++;
            CHECK_STR_CONTAINS(r->message, "train killed by signal 6");
            CHECK_INT_EQ(r->top_rung, -1);
            CHECK_STR_CONTAINS(r->settings, "\"inner-steps\":3");
        } else if (r->top_rung == sum.n_rungs - 1 && r->score < expect_best) {
            expect_best = r->score;
        }
    }
    CHECK(crashed > 0); /* seed 1 draws inner-steps 3 twice */
    CHECK_INT_EQ(sum.trials_failed, crashed);
    CHECK(best >= 0 && sum.results[best].top_rung == 1);
    CHECK_NEAR(sum.results[best].score, expect_best, 0, 0);
    /* best.json: the base and the winner's settings, iters = max_iters, nothing of the search's own. */
    snprintf(path, sizeof path, "%s/best.json", out);
    cJSON *bj = read_json(path);
    CHECK(bj != NULL);
    CHECK_INT_EQ(cJSON_GetObjectItemCaseSensitive(bj, "iters")->valueint, 30);
    CHECK(!strcmp(cJSON_GetObjectItemCaseSensitive(bj, "algo")->valuestring, "maml"));
    CHECK(!cJSON_GetObjectItemCaseSensitive(bj, "out"));
    cJSON *won = cJSON_Parse(best >= 0 ? sum.results[best].settings : "{}");
    CHECK(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(bj, "inner-lr"),
                        cJSON_GetObjectItemCaseSensitive(won, "inner-lr"), 1));
    cJSON_Delete(won);
    char *best_text = cJSON_PrintUnformatted(bj);
    cJSON_Delete(bj);
    snprintf(path, sizeof path, "%s/search.png", out);
    struct stat st;
    CHECK(stat(path, &st) == 0 && st.st_size > 100);
    ml_search_summary_free(&sum);

    /* A rerun runs nothing and gives the same answer. */
    CHECK_INT_EQ(ml_search_run(&c, &k_fake, NULL, NULL, NULL, &sum, err, sizeof err), ML_OK);
    CHECK_INT_EQ(sum.trials_run_now, 0);
    CHECK_INT_EQ(sum.order ? sum.order[0] : -1, best);
    ml_search_summary_free(&sum);

    /* The same folder with another seed is another search: refused. */
    c.seed = 2;
    CHECK_INT_EQ(ml_search_run(&c, &k_fake, NULL, NULL, NULL, &sum, err, sizeof err), ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "another search");
    ml_search_summary_free(&sum);

    /* Stopped after two trials, then run again: the result of the uninterrupted search. */
    char out2[4200];
    snprintf(out2, sizeof out2, "%s_stopped", out);
    rm_rf(out2);
    config(&c, out2);
    volatile sig_atomic_t stop = 0;
    counter stopper = {.stop_after = 2, .stop = &stop};
    CHECK_INT_EQ(ml_search_run(&c, &k_fake, count, &stopper, &stop, &sum, err, sizeof err), ML_ERR_STATE);
    CHECK_INT_EQ(sum.interrupted, 1);
    ml_search_summary_free(&sum);
    snprintf(path, sizeof path, "%s/trials.jsonl", out2);
    CHECK_INT_EQ(count_lines(path), 2);
    snprintf(path, sizeof path, "%s/best.json", out2);
    CHECK(access(path, F_OK) != 0);
    stop = 0;
    CHECK_INT_EQ(ml_search_run(&c, &k_fake, NULL, NULL, &stop, &sum, err, sizeof err), ML_OK);
    CHECK_INT_EQ(sum.trials_run_now, lines - 2);
    cJSON *bj2 = read_json(path);
    char *best2 = cJSON_PrintUnformatted(bj2);
    CHECK(best_text && best2 && !strcmp(best_text, best2));
    cJSON_free(best2);
    cJSON_Delete(bj2);
    cJSON_free(best_text);
    ml_search_summary_free(&sum);
}

/* Trial 1 stopped by SIGINT, as a Ctrl-C at a terminal stops every process
 * of the group. */
static int interrupted_train(const ml_search_trial *t, void *user) {
    (void)user;
    if (t->trial == 1) raise(SIGINT);
    return 0;
}

/* A trial's child stopped by SIGINT stops the search (not a failed trial),
 * even without the stop flag; nothing unfinished is logged. */
static void test_child_interrupt(void) {
    char out[4096], path[4400], err[1024] = "";
    snprintf(out, sizeof out, "%s/search_run_sigint", ml_test_tmp_dir());
    rm_rf(out);
    ml_search_config c;
    config(&c, out);
    c.jobs = 1;
    const ml_search_runner runner = {interrupted_train, fake_eval, NULL};
    ml_search_summary sum;
    CHECK_INT_EQ(ml_search_run(&c, &runner, NULL, NULL, NULL, &sum, err, sizeof err), ML_ERR_STATE);
    CHECK_INT_EQ(sum.interrupted, 1);
    CHECK_STR_CONTAINS(err, "interrupted");
    ml_search_summary_free(&sum);
    snprintf(path, sizeof path, "%s/trials.jsonl", out);
    char *log = read_text(path);
    CHECK_STR_CONTAINS(log, "\"trial\":0,");
    CHECK(log && !strstr(log, "\"trial\":1,"));
    CHECK_INT_EQ(count_lines(path), 1);
    ml_free(log);
}

/* A real search through the library's own runner (trials trained and scored
 * in-process in forked children): 2 sinusoid candidates, rungs of 10 and 30
 * iterations. */
static void test_sinusoid_search(void) {
    char out[4096], path[4400], err[1024] = "";
    snprintf(out, sizeof out, "%s/search_run_sinusoid", ml_test_tmp_dir());
    rm_rf(out);
    ml_search_config c;
    ml_search_config_default(&c);
    c.space_text = "{\"base\": {\"algo\": \"maml\", \"task\": \"sinusoid\", \"model\": \"mlp:16,16\", \"meta-batch\": 5,"
                   " \"shots\": 5, \"query\": 5, \"eval-steps\": \"1\", \"eval-query\": 10, \"iters\": 30},"
                   " \"space\": {\"inner-lr\": {\"log_uniform\": [0.001, 0.5]}}}";
    c.out = out;
    c.budget = 2;
    c.eta = 2;
    c.min_iters = 10; /* rungs 15, 30 */
    c.jobs = 2;
    c.threads = 1;
    c.val_tasks = 10;
    ml_search_summary sum;
    ml_status st = ml_search_run(&c, NULL, NULL, NULL, NULL, &sum, err, sizeof err);
    CHECK_INT_EQ(st, ML_OK);
    if (st) fprintf(stderr, "  %s\n", err);
    CHECK_INT_EQ(sum.n_rungs, 2);
    CHECK_INT_EQ(sum.rungs[1], 30);
    CHECK_INT_EQ(sum.trials_run_now, 3); /* 2 at the first rung, the better one at the second */
    CHECK_INT_EQ(sum.trials_failed, 0);
    CHECK(sum.metric && !strcmp(sum.metric, "mse"));
    int best = sum.order ? sum.order[0] : -1;
    CHECK(best >= 0 && sum.results[best].top_rung == 1 && isfinite(sum.results[best].score));
    snprintf(path, sizeof path, "%s/trials.jsonl", out);
    CHECK_INT_EQ(count_lines(path), 3);
    char *log = read_text(path);
    CHECK_STR_CONTAINS(log, "\"rung\":1,\"iters\":30,");
    CHECK_STR_CONTAINS(log, "\"status\":\"ok\",\"score\":");
    ml_free(log);
    /* The trial trained in its folder: a checkpoint and the run's config. */
    snprintf(path, sizeof path, "%s/trials/%03d/checkpoint.safetensors", out, best);
    CHECK(access(path, F_OK) == 0);
    snprintf(path, sizeof path, "%s/best.json", out);
    cJSON *bj = read_json(path);
    CHECK(bj && cJSON_GetObjectItemCaseSensitive(bj, "iters")->valueint == 30);
    cJSON *won = cJSON_Parse(best >= 0 ? sum.results[best].settings : "{}");
    CHECK(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(bj, "inner-lr"),
                        cJSON_GetObjectItemCaseSensitive(won, "inner-lr"), 1));
    cJSON_Delete(won);
    cJSON_Delete(bj);
    ml_search_summary_free(&sum);
}

/* Bad settings are refused before any trial, with the file and key named. */
static void test_bad_settings(void) {
    char out[4096], err[1024] = "";
    snprintf(out, sizeof out, "%s/search_run_bad", ml_test_tmp_dir());
    rm_rf(out);
    ml_search_config c;
    config(&c, out);
    c.space_text = "{\"base\": {\"algo\": \"maml\"}, \"space\": {\"inner_lr\": {\"uniform\": [0, 1]}}}";
    CHECK_INT_EQ(ml_search_run(&c, &k_fake, NULL, NULL, NULL, NULL, err, sizeof err), ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "space: unknown key 'inner_lr'");
    c.space_text = "{\"space\": ";
    CHECK_INT_EQ(ml_search_run(&c, &k_fake, NULL, NULL, NULL, NULL, err, sizeof err), ML_ERR_IO);
    CHECK_STR_CONTAINS(err, "not valid JSON");
    config(&c, out);
    c.strategy = "grid";
    CHECK_INT_EQ(ml_search_run(&c, &k_fake, NULL, NULL, NULL, NULL, err, sizeof err), ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "expected random or evolution");
    config(&c, out);
    c.min_iters = 50;
    CHECK_INT_EQ(ml_search_run(&c, &k_fake, NULL, NULL, NULL, NULL, err, sizeof err), ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "must not exceed");
    CHECK(access(out, F_OK) != 0); /* nothing written */
    /* The option table sets the configuration by name, as the CLI's flags do. */
    ml_option_set set = ml_search_config_option_set(&c);
    CHECK_INT_EQ(ml_options_set(&set, "strategy", "evolution", err, sizeof err), 0);
    CHECK_INT_EQ(ml_options_set(&set, "population", "4", err, sizeof err), 0);
    CHECK(!strcmp(c.strategy, "evolution"));
    CHECK_INT_EQ(c.population, 4);
    CHECK(ml_options_set(&set, "eta", "1", err, sizeof err) != 0);
}

int main(void) {
    ML_RUN(test_scripted_search);
    ML_RUN(test_child_interrupt);
    ML_RUN(test_sinusoid_search);
    ML_RUN(test_bad_settings);
    return ml_test_summary();
}
