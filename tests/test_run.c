/* test_run.c: the public run API (metalearn/run.h) driven as a C program
 * would: a short sinusoid MAML run through ml_run_open / ml_run_train writes
 * the checkpoint `metalearn train` writes with the same settings (byte for
 * byte; ML_CLI names the command, set by CTest), --stop-at and a stop from
 * the progress callback resume to the same bytes, evaluation prints the
 * table, predict adapts, a scratch run writes no files, and bad settings
 * come back as messages. Public headers only. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "metalearn/io.h"
#include "metalearn/run.h"
#include "ml_test.h"

static char g_tmp[1024];

/* The settings of the CLI command in test_same_as_cli. */
static void small_config(ml_run_config *c, const char *out) {
    ml_test_sine_run_config(c, out);
    c->meta_batch = 5;
    c->iters = 20;
    c->log_every = 5;
    c->seed = 3;
    ml_run_config_resolve(c);
}

/* A whole run through the handle; returns ml_run_train's status. */
static ml_status train(const ml_run_config *c, ml_run_mode mode, const ml_run_callbacks *cb, int *iteration) {
    char err[1024];
    ml_run *r;
    ml_status s = ml_run_open(&r, c, mode, NULL, err, sizeof err);
    if (s) {
        fprintf(stderr, "  open: %s\n", err);
        return s;
    }
    s = ml_run_train(r, cb, err, sizeof err);
    if (iteration) *iteration = ml_run_iteration(r);
    ml_run_close(r);
    return s;
}

static void path_of(char *buf, size_t len, const char *run, const char *file) {
    snprintf(buf, len, "%s/%s/%s", g_tmp, run, file);
}

static void test_full_run(void) {
    char out[1100];
    snprintf(out, sizeof out, "%s/full", g_tmp);
    ml_run_config c;
    small_config(&c, out);
    c.overwrite = 1;
    int it = 0;
    CHECK_INT_EQ(train(&c, ML_RUN_NEW, NULL, &it), ML_OK);
    CHECK_INT_EQ(it, 20);
    char p[1200];
    path_of(p, sizeof p, "full", "config.json");
    struct stat sb;
    CHECK(stat(p, &sb) == 0);
}

static void test_same_as_cli(void) {
    const char *cli = getenv("ML_CLI");
    if (!cli || !*cli) {
        printf("  (skipped: ML_CLI names no metalearn command)\n");
        return;
    }
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "'%s' train --algo maml --task sinusoid --model mlp:16,16 --meta-batch 5 --shots 5 --query 5 --iters 20 "
             "--log-every 5 --eval-tasks 0 --threads 1 --seed 3 --quiet --overwrite --out '%s/cli' >/dev/null",
             cli, g_tmp);
    CHECK_INT_EQ(system(cmd), 0);
    char a[1200], b[1200];
    path_of(a, sizeof a, "full", "checkpoint.safetensors");
    path_of(b, sizeof b, "cli", "checkpoint.safetensors");
    CHECK(ml_test_same_file(a, b));
}

static void test_stop_at_then_resume(void) {
    char out[1100];
    snprintf(out, sizeof out, "%s/stopat", g_tmp);
    ml_run_config c;
    small_config(&c, out);
    c.overwrite = 1;
    c.stop_at = 10;
    int it = 0;
    CHECK_INT_EQ(train(&c, ML_RUN_NEW, NULL, &it), ML_OK);
    CHECK_INT_EQ(it, 10);
    c.stop_at = 0;
    c.overwrite = 0;
    CHECK_INT_EQ(train(&c, ML_RUN_RESUME, NULL, &it), ML_OK);
    CHECK_INT_EQ(it, 20);
    char a[1200], b[1200];
    path_of(a, sizeof a, "full", "checkpoint.safetensors");
    path_of(b, sizeof b, "stopat", "checkpoint.safetensors");
    CHECK(ml_test_same_file(a, b));
}

/* Stops after iteration 7, as a Ctrl-C in Python would. */
static int stop_at_7(void *user, const ml_run_progress *p) {
    (*(int *)user)++;
    return p->iteration == 7;
}

static void test_callback_stop_then_resume(void) {
    char out[1100];
    snprintf(out, sizeof out, "%s/stopped", g_tmp);
    ml_run_config c;
    small_config(&c, out);
    c.overwrite = 1;
    int calls = 0, it = 0;
    ml_run_callbacks cb = {.on_iteration = stop_at_7, .user = &calls};
    CHECK_INT_EQ(train(&c, ML_RUN_NEW, &cb, &it), ML_ERR_INTERRUPTED);
    CHECK_INT_EQ(it, 7);
    CHECK_INT_EQ(calls, 7);
    c.overwrite = 0;
    CHECK_INT_EQ(train(&c, ML_RUN_RESUME, NULL, &it), ML_OK);
    char a[1200], b[1200];
    path_of(a, sizeof a, "full", "checkpoint.safetensors");
    path_of(b, sizeof b, "stopped", "checkpoint.safetensors");
    CHECK(ml_test_same_file(a, b));
}

static void test_evaluate(void) {
    char out[1100], err[1024];
    snprintf(out, sizeof out, "%s/full", g_tmp);
    ml_run_config c;
    small_config(&c, out);
    c.eval_tasks = 10;
    ml_run *r;
    CHECK_INT_EQ(ml_run_open(&r, &c, ML_RUN_EVAL, NULL, err, sizeof err), ML_OK);
    if (!r) return;
    CHECK_INT_EQ(ml_run_iteration(r), 20);
    char table[1200];
    path_of(table, sizeof table, "full", "eval.txt");
    FILE *f = fopen(table, "w");
    CHECK(f != NULL);
    if (!f) return;
    ml_run_eval_options eo = {.out = f};
    CHECK_INT_EQ(ml_run_evaluate(r, &eo, err, sizeof err), ML_OK);
    fclose(f);
    /* an evaluation never trains */
    double loss;
    CHECK_INT_EQ(ml_run_step(r, &loss, err, sizeof err), ML_ERR_STATE);
    ml_run_close(r);
    size_t n;
    char *text = ml_test_slurp(table, &n);
    CHECK_STR_CONTAINS(text, "10 new test tasks");
    CHECK_STR_CONTAINS(text, "(before adaptation)");
    free(text);
}

/* The evaluation as numbers: a row per "shots" object of the JSON line. */
static void test_evaluate_result(void) {
    char out[1100], err[1024];
    snprintf(out, sizeof out, "%s/full", g_tmp);
    ml_run_config c;
    small_config(&c, out);
    c.eval_tasks = 10;
    c.eval_shots = "5,10";
    ml_run *r;
    CHECK_INT_EQ(ml_run_open(&r, &c, ML_RUN_EVAL, NULL, err, sizeof err), ML_OK);
    if (!r) return;
    ml_run_eval_result *res = NULL;
    CHECK_INT_EQ(ml_run_evaluate_result(r, NULL, &res, err, sizeof err), ML_OK);
    ml_run_close(r);
    if (!res) return;
    CHECK_INT_EQ(res->fewshot, 0);
    CHECK_INT_EQ(res->n_rows, 6); /* shots 5, 10 x steps 0, 1, 10 */
    int objects = 0;
    for (const char *p = res->json; (p = strstr(p, "{\"shots\":")); p++) objects++;
    CHECK_INT_EQ(objects, res->n_rows);
    CHECK_STR_CONTAINS(res->json, "\"command\":\"eval\"");
    CHECK_INT_EQ(res->rows[0].shots, 5);
    CHECK_INT_EQ(res->rows[0].steps, 0);
    CHECK_INT_EQ(res->rows[5].shots, 10);
    CHECK_INT_EQ(res->rows[5].steps, 10);
    for (int i = 0; i < res->n_rows; i++) CHECK(isfinite(res->rows[i].mean) && res->rows[i].ci95 > 0);
    char num[64]; /* the JSON line carries the same numbers */
    snprintf(num, sizeof num, "\"mse\":%.6g,\"ci95\":%.6g", res->rows[4].mean, res->rows[4].ci95);
    CHECK_STR_CONTAINS(res->json, num);
    ml_run_eval_result_free(res);
}

/* predict: the run adapted to a few points of a sine, as `metalearn predict` does. */
static void test_predict(void) {
    char out[1100], err[1024];
    snprintf(out, sizeof out, "%s/full", g_tmp);
    ml_run_config c;
    small_config(&c, out);
    c.model_only = 1; /* no data loaded */
    ml_run *r;
    CHECK_INT_EQ(ml_run_open(&r, &c, ML_RUN_EVAL, NULL, err, sizeof err), ML_OK);
    if (!r) return;
    CHECK_INT_EQ(ml_run_input_dim(r), 1);
    CHECK_INT_EQ(ml_run_ways(r), 0);
    CHECK_INT_EQ(ml_run_default_steps(r), 10); /* the largest of the default --eval-steps 1,10 */
    float xs[5] = {-2, -1, 0, 1, 2}, ys[5], xq[3] = {-0.5f, 0.5f, 1.5f}, pred0[3], pred1[3];
    for (int i = 0; i < 5; i++) ys[i] = sinf(xs[i]);
    ml_task_data t = {.n_support = 5, .n_query = 3, .xs = xs, .ys = ys, .xq = xq};
    CHECK_INT_EQ(ml_run_predict(r, &t, 0, NULL, NULL, pred0, err, sizeof err), ML_OK);
    CHECK_INT_EQ(ml_run_predict(r, &t, 1, NULL, NULL, pred1, err, sizeof err), ML_OK);
    for (int i = 0; i < 3; i++) CHECK(isfinite(pred0[i]) && isfinite(pred1[i]));
    CHECK(pred0[0] != pred1[0]); /* a step changed the model */
    ml_run_close(r);
}

/* bench's run: steps, writes nothing of a run folder. */
static void test_scratch(void) {
    char out[1100], err[1024], p[1200];
    snprintf(out, sizeof out, "%s/scratch", g_tmp);
    ml_run_config c;
    small_config(&c, out);
    ml_run *r;
    CHECK_INT_EQ(ml_run_open(&r, &c, ML_RUN_SCRATCH, NULL, err, sizeof err), ML_OK);
    if (!r) return;
    double loss = NAN;
    for (int i = 0; i < 3; i++) CHECK_INT_EQ(ml_run_step(r, &loss, err, sizeof err), ML_OK);
    CHECK(isfinite(loss));
    CHECK_INT_EQ(ml_run_tasks_per_step(r), 5);
    CHECK_INT_EQ(ml_run_save_checkpoint(r, err, sizeof err), ML_ERR_STATE);
    ml_run_close(r);
    struct stat sb;
    path_of(p, sizeof p, "scratch", "config.json");
    CHECK(stat(p, &sb) != 0);
    path_of(p, sizeof p, "scratch", "log.jsonl");
    CHECK(stat(p, &sb) != 0);
}

/* A config straight from ml_run_config_default, never resolved: the run
 * resolves it (it crashed on the NULL --eval-steps list before). */
static void test_unresolved_config(void) {
    char out[1100], err[1024] = "";
    snprintf(out, sizeof out, "%s/unresolved", g_tmp);
    ml_run_config c;
    ml_run_config_default(&c);
    c.algo = "maml";
    c.model = "mlp:8";
    c.iters = 2;
    c.meta_batch = 2;
    c.threads = 1;
    c.quiet = 1;
    c.out = out;
    ml_run *r = NULL;
    CHECK_INT_EQ(ml_run_open(&r, &c, ML_RUN_SCRATCH, NULL, err, sizeof err), ML_OK);
    double loss = NAN;
    if (r) CHECK_INT_EQ(ml_run_step(r, &loss, err, sizeof err), ML_OK);
    ml_run_close(r);
}

static void test_bad_settings(void) {
    char out[1100], err[1024] = "";
    snprintf(out, sizeof out, "%s/bad", g_tmp);
    ml_run_config c;
    small_config(&c, out);
    c.algo = "nope";
    ml_run *r = (ml_run *)&c; /* must come back NULL */
    CHECK_INT_EQ(ml_run_open(&r, &c, ML_RUN_NEW, NULL, err, sizeof err), ML_ERR_ARG);
    CHECK(r == NULL);
    CHECK_STR_CONTAINS(err, "--algo 'nope'");
    small_config(&c, out);
    c.task = "csv:/nonexistent/tasks.csv";
    CHECK(ml_run_open(&r, &c, ML_RUN_NEW, NULL, err, sizeof err) != ML_OK);
    CHECK_STR_CONTAINS(err, "/nonexistent/tasks.csv");
    /* a folder holding a run is not replaced unasked */
    snprintf(out, sizeof out, "%s/full", g_tmp);
    small_config(&c, out);
    CHECK_INT_EQ(ml_run_open(&r, &c, ML_RUN_NEW, NULL, err, sizeof err), ML_ERR_STATE);
    CHECK_STR_CONTAINS(err, "already holds a run");
    /* nothing to resume */
    snprintf(out, sizeof out, "%s/never", g_tmp);
    small_config(&c, out);
    CHECK(ml_run_open(&r, &c, ML_RUN_RESUME, NULL, err, sizeof err) != ML_OK);
}

int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "%s/test_run", ml_test_tmp_dir());
    char err[256];
    if (ml_mkdir_p(g_tmp, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    ML_RUN(test_full_run);
    ML_RUN(test_same_as_cli);
    ML_RUN(test_stop_at_then_resume);
    ML_RUN(test_callback_stop_then_resume);
    ML_RUN(test_evaluate);
    ML_RUN(test_evaluate_result);
    ML_RUN(test_predict);
    ML_RUN(test_scratch);
    ML_RUN(test_unresolved_config);
    ML_RUN(test_bad_settings);
    return ml_test_summary();
}
