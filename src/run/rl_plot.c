/* rl_plot.c: the pictures of meta-RL runs (`metalearn plot RUN...`): return
 * against adaptation steps, one line per run from its eval.json with 95%
 * intervals (MAML beside pretrained, random, oracle: the MAML paper's
 * figure), and for 2D navigation the trajectories of one test task before
 * and after adaptation with the goal marked. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "metalearn/io.h"
#include "metalearn/plot.h"
#include "metalearn/rl.h"
#include "metalearn/run.h"
#include "run/rl_run.h"

#define PLOT_MAX_RUNS 8
#define TRAJ_SHOWN 5 /* trajectories per adaptation stage */

/* "maml-trpo (500 it)" from the run's settings and its log, and the
 * adaptation rate when the evaluation used another than the inner rate
 * (a fine-tuned baseline): "pretrain (500 it, rate 0.05)". */
static void run_label(const ml_run_config *o, const char *dir, double eval_lr, char *out, size_t len) {
    char path[4200], *text = NULL;
    long iters = 0;
    snprintf(path, sizeof path, "%s/log.jsonl", dir);
    if (ml_file_read_text(path, 0, &text, NULL, NULL, 0) == ML_OK && text) {
        const char *last = strrchr(text, '{'); /* the last line's object: {"iter":N,... */
        if (last && !strncmp(last, "{\"iter\":", 8)) iters = strtol(last + 8, NULL, 10);
        ml_free(text);
    }
    char rate[48] = "";
    if (eval_lr >= 0 && fabs(eval_lr - o->inner_lr) > 1e-6 * o->inner_lr) snprintf(rate, sizeof rate, ", rate %g", eval_lr);
    snprintf(out, len, "%s%s%s (%ld it%s)", o->algo, strcmp(o->algo, "maml") ? "" : "-",
             strcmp(o->algo, "maml") ? "" : o->outer, iters, rate);
}

static ml_status plot_returns(const char *const *runs, const ml_run_config *cfgs, int n_runs, const char *out,
                              int *drawn, char *err, size_t errlen) {
    ml_series s[PLOT_MAX_RUNS];
    static double x[PLOT_MAX_RUNS][ML_RL_EVAL_MAX_STEPS], y[PLOT_MAX_RUNS][ML_RL_EVAL_MAX_STEPS];
    static double lo[PLOT_MAX_RUNS][ML_RL_EVAL_MAX_STEPS], hi[PLOT_MAX_RUNS][ML_RL_EVAL_MAX_STEPS];
    static char labels[PLOT_MAX_RUNS][160];
    int k = 0, tasks = 0;
    for (int i = 0; i < n_runs; i++) {
        char path[4200], *text = NULL;
        snprintf(path, sizeof path, "%s/eval.json", runs[i]);
        ml_status rs = ml_file_read_text_if_present(path, 0, &text, NULL, err, errlen);
        if (rs != ML_OK) return rs; /* a folder or unreadable file is not "not evaluated" */
        if (!text) continue;        /* not evaluated yet */
        cJSON *j = cJSON_Parse(text);
        ml_free(text);
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "steps"), *ret = cJSON_GetObjectItemCaseSensitive(j, "return"),
                    *ci = cJSON_GetObjectItemCaseSensitive(j, "ci95"), *nt = cJSON_GetObjectItemCaseSensitive(j, "tasks"),
                    *lr = cJSON_GetObjectItemCaseSensitive(j, "eval_lr");
        int m = cJSON_GetArraySize(st);
        if (!cJSON_IsArray(st) || !cJSON_IsArray(ret) || !cJSON_IsArray(ci) || m < 1 || m > ML_RL_EVAL_MAX_STEPS ||
            cJSON_GetArraySize(ret) != m || cJSON_GetArraySize(ci) != m) {
            snprintf(err, errlen, "%s: expected the arrays steps, return and ci95 of `metalearn eval` (one to %d "
                                  "entries each)", path, ML_RL_EVAL_MAX_STEPS);
            cJSON_Delete(j);
            return ML_ERR_FORMAT;
        }
        for (int t = 0; t < m; t++) {
            x[k][t] = cJSON_GetArrayItem(st, t)->valuedouble;
            y[k][t] = cJSON_GetArrayItem(ret, t)->valuedouble;
            double h = cJSON_GetArrayItem(ci, t)->valuedouble;
            lo[k][t] = y[k][t] - h, hi[k][t] = y[k][t] + h;
        }
        if (cJSON_IsNumber(nt)) tasks = nt->valueint;
        run_label(&cfgs[i], runs[i], cJSON_IsNumber(lr) ? lr->valuedouble : -1, labels[k], sizeof labels[k]);
        s[k] = (ml_series){labels[k], x[k], y[k], m, lo[k], hi[k], ML_PLOT_LINE_MARKERS, ML_PLOT_ERR_BARS};
        k++;
        cJSON_Delete(j);
    }
    *drawn = k;
    if (!k) return ML_OK;
    char title[160], path[4200];
    snprintf(title, sizeof title, "%s: return vs adaptation steps (%d test tasks, 95%% CI)", cfgs[0].env, tasks);
    ml_chart c = {title, "adaptation steps", "average return", 0, 0, 0, 0, 0, 0, 0, 0, 1};
    snprintf(path, sizeof path, "%s/rl_returns.png", out);
    return ml_plot_png(path, &c, s, k, err, errlen);
}

/* Trajectories of test task 0 (the evaluation's first) before and after 1
 * and `steps` adaptation steps at the evaluation's schedule; 2D
 * observations with a goal only. */
static ml_status plot_trajectories(const ml_run_config *o, const char *dir, const char *out, int steps, int *drawn,
                                   char *err, size_t errlen) {
    *drawn = 0;
    ml_env probe;
    if (ml_env_parse(o->env, &probe, err, errlen)) return ML_ERR_FORMAT;
    if (probe.obs_dim != 2 || !probe.kind->goal) return ML_OK; /* no positions to draw (bandits) */
    ml_rl *rl = NULL;
    ml_status s = ml__rl_open_learner(o, &rl, err, errlen);
    if (s) return s;
    const ml_env *env = ml_rl_env(rl);
    char path[4200];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
    if ((s = ml_rl_load(rl, path)) != ML_OK) {
        snprintf(err, errlen, "%s: cannot read the checkpoint (%s)", path, ml_status_text(s));
        ml_rl_destroy(rl);
        return s;
    }
    int H = o->horizon > 0 ? o->horizon : env->horizon, NT = TRAJ_SHOWN;
    size_t per_stage = (size_t)NT * (H + 1) * 2;
    float *pos = malloc(sizeof(float) * per_stage * (steps + 1));
    double *xy = malloc(sizeof(double) * 2 * 3 * (size_t)NT * (H + 2));
    ml_env_task task;
    ml__rl_schedule at; /* the evaluation's, so the pictures adapt as its returns did */
    if (!pos || !xy) {
        snprintf(err, errlen, "out of memory for trajectories");
        s = ML_ERR_NOMEM;
    } else if ((s = ml__rl_run_schedule(o, dir, &at, err, errlen)) != ML_OK) {
        /* err names the run and the option */
    } else if ((s = ml_rl_trajectories_steps(rl, 0, o->eval_seed, steps, NT, at.first, at.later, pos, &task)) !=
               ML_OK) {
        snprintf(err, errlen, "%s: trajectories failed (%s)", dir, ml_status_text(s));
    } else {
        const int shown[3] = {0, 1, steps};
        char labels[3][32];
        ml_series ser[4];
        int n_stages = steps > 1 ? 3 : 2;
        for (int k = 0; k < n_stages; k++) {
            double *x = xy + (size_t)k * 2 * NT * (H + 2), *y = x + (size_t)NT * (H + 2);
            int m = 0;
            for (int i = 0; i < NT; i++) {
                for (int p = 0; p <= H; p++) {
                    const float *q = pos + (size_t)shown[k] * per_stage + ((size_t)i * (H + 1) + p) * 2;
                    x[m] = q[0], y[m] = q[1], m++;
                }
                x[m] = y[m] = NAN, m++; /* a break between trajectories */
            }
            snprintf(labels[k], sizeof labels[k], "%d step%s", shown[k], shown[k] == 1 ? "" : "s");
            ser[k] = (ml_series){labels[k], x, y, m, NULL, NULL, ML_PLOT_LINE, 0};
        }
        float goal[2];
        env->kind->goal(env, &task, goal);
        double gx = goal[0], gy = goal[1];
        ser[n_stages] = (ml_series){"goal", &gx, &gy, 1, NULL, NULL, ML_PLOT_MARKERS, 0};
        char title[160];
        snprintf(title, sizeof title, "%s %s: one test task, adapting", o->env, o->algo);
        ml_chart ch = {title, "x", "y", 600, 600, 0, 0, -0.6, 0.6, -0.6, 0.6, 0};
        snprintf(path, sizeof path, "%s/rl_trajectories.png", out);
        s = ml_plot_png(path, &ch, ser, n_stages + 1, err, errlen);
        if (!s) *drawn = 1;
    }
    free(pos);
    free(xy);
    ml_rl_destroy(rl);
    return s;
}

ml_status ml_rl_run_plot(const char *const *runs, int n_runs, const char *out, char *written, size_t written_len,
                         char *err, size_t errlen) {
    static ml_run_config cfgs[PLOT_MAX_RUNS];
    if (n_runs < 1 || n_runs > PLOT_MAX_RUNS) {
        snprintf(err, errlen, "plot: 1 to %d meta-RL runs, not %d", PLOT_MAX_RUNS, n_runs);
        return ML_ERR_ARG;
    }
    for (int i = 0; i < n_runs; i++) {
        if (ml_run_config_load_run(&cfgs[i], runs[i], err, errlen)) return ML_ERR_IO;
        if (!cfgs[i].env) {
            snprintf(err, errlen, "%s is not a meta-RL run (no env in its config.json): plot meta-RL runs together, "
                                  "other runs separately", runs[i]);
            return ML_ERR_ARG;
        }
    }
    if (ml_mkdir_p(out, err, errlen)) return ML_ERR_IO;
    int returns = 0, traj = 0;
    ml_status s = plot_returns(runs, cfgs, n_runs, out, &returns, err, errlen);
    if (!s) s = plot_trajectories(&cfgs[0], runs[0], out, 3, &traj, err, errlen);
    if (written_len) written[0] = 0;
    if (!s && returns) snprintf(written, written_len, "%s/rl_returns.png", out);
    if (!s && traj) {
        size_t n = strlen(written);
        snprintf(written + n, written_len - n, "%s%s/rl_trajectories.png", n ? " " : "", out);
    }
    return s;
}
