/* bench_rl_plot: the two pictures of docs/results.md's meta-RL section.
 *
 *   bench_rl_plot returns OUT.png RUN.jsonl...   return vs adaptation steps,
 *       one line per run (the last line of each file: bench_maml_rl's result,
 *       labelled by its algo/outer), with 95% intervals.
 *   bench_rl_plot traj OUT.png CKPT ALGO [TASK]   2D-navigation trajectories
 *       of one test task (eval seed 12345) before and after 1 and 3
 *       adaptation steps, goal marked. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "metalearn/plot.h"
#include "metalearn/rl.h"

static char *last_line(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    static char line[1 << 16], last[1 << 16];
    last[0] = 0;
    while (fgets(line, sizeof line, f))
        if (line[0] == '{') memcpy(last, line, sizeof line);
    fclose(f);
    return last[0] ? last : NULL;
}

static int plot_returns(const char *out, int n, char **files) {
    ml_series s[8];
    static double y[8][16], lo[8][16], hi[8][16], x[8][16];
    static char labels[8][64];
    int k = 0;
    for (int i = 0; i < n && k < 8; i++) {
        char *l = last_line(files[i]);
        cJSON *j = l ? cJSON_Parse(l) : NULL;
        cJSON *ret = j ? cJSON_GetObjectItem(j, "return") : NULL, *ci = j ? cJSON_GetObjectItem(j, "ci95") : NULL;
        if (!ret || !ci) {
            fprintf(stderr, "%s: no result line\n", files[i]);
            cJSON_Delete(j);
            return 1;
        }
        const char *algo = cJSON_GetObjectItem(j, "algo")->valuestring;
        const char *outer = cJSON_GetObjectItem(j, "outer")->valuestring;
        int iters = cJSON_GetObjectItem(j, "iters")->valueint;
        if (iters == 0) snprintf(labels[k], sizeof labels[k], "random");
        else if (!strcmp(algo, "maml")) snprintf(labels[k], sizeof labels[k], "MAML-%s (%d it)", !strcmp(outer, "trpo") ? "TRPO" : "Adam", iters);
        else snprintf(labels[k], sizeof labels[k], "%s (%d it)", algo, iters);
        int m = cJSON_GetArraySize(ret);
        for (int t = 0; t < m && t < 16; t++) {
            x[k][t] = t;
            y[k][t] = cJSON_GetArrayItem(ret, t)->valuedouble;
            double h = cJSON_GetArrayItem(ci, t)->valuedouble;
            lo[k][t] = y[k][t] - h, hi[k][t] = y[k][t] + h;
        }
        s[k] = (ml_series){labels[k], x[k], y[k], m, lo[k], hi[k], ML_PLOT_LINE_MARKERS, ML_PLOT_ERR_BARS};
        k++;
        cJSON_Delete(j);
    }
    ml_chart c = {"2D navigation: return vs adaptation steps (40 test tasks, 95% CI)", "adaptation steps",
                  "average return", 0, 0, 0, 0, 0, 0, 0, 0, 1};
    char err[256];
    if (ml_plot_png(out, &c, s, k, err, sizeof err) != ML_OK) return fprintf(stderr, "%s\n", err), 1;
    return 0;
}

static int plot_traj(const char *out, const char *ckpt, const char *algo, int task) {
    ml_rl_config cfg = ml_rl_config_default();
    if (!ml_rl_algo_parse(algo, &cfg.algo)) return fprintf(stderr, "algo %s?\n", algo), 1;
    char err[256];
    ml_rl *rl = NULL;
    if (ml_rl_create(&cfg, &rl, err, sizeof err) != ML_OK) return fprintf(stderr, "%s\n", err), 1;
    if (strcmp(ckpt, "-") && ml_rl_load(rl, ckpt) != ML_OK) return fprintf(stderr, "%s: cannot load\n", ckpt), 1;
    enum { S = 3, NT = 5, H = 100 };
    float *pos = malloc(sizeof(float) * (S + 1) * NT * (H + 1) * 2);
    ml_env_task t;
    if (ml_rl_trajectories(rl, task, 12345, S, NT, pos, &t) != ML_OK) return fprintf(stderr, "trajectories failed\n"), 1;
    static double x[4][NT * (H + 2)], y[4][NT * (H + 2)];
    ml_series s[4];
    const int shown[3] = {0, 1, 3};
    static const char *lab[3] = {"0 steps", "1 step", "3 steps"};
    for (int k = 0; k < 3; k++) {
        int m = 0;
        for (int i = 0; i < NT; i++) {
            for (int p = 0; p <= H; p++) {
                const float *q = pos + (((size_t)shown[k] * NT + i) * (H + 1) + p) * 2;
                x[k][m] = q[0], y[k][m] = q[1], m++;
            }
            x[k][m] = NAN, y[k][m] = NAN, m++; /* break between trajectories */
        }
        s[k] = (ml_series){lab[k], x[k], y[k], m, NULL, NULL, ML_PLOT_LINE, 0};
    }
    x[3][0] = t.p[0], y[3][0] = t.p[1];
    s[3] = (ml_series){"goal", x[3], y[3], 1, NULL, NULL, ML_PLOT_MARKERS, 0};
    ml_chart c = {"2D navigation: trajectories of one test task", "x", "y", 600, 600, 0, 0, -0.6, 0.6, -0.6, 0.6, 0};
    int rc = ml_plot_png(out, &c, s, 4, err, sizeof err) != ML_OK;
    if (rc) fprintf(stderr, "%s\n", err);
    free(pos);
    ml_rl_destroy(rl);
    return rc;
}

int main(int argc, char **argv) {
    if (argc >= 4 && !strcmp(argv[1], "returns")) return plot_returns(argv[2], argc - 3, argv + 3);
    if (argc >= 5 && !strcmp(argv[1], "traj")) return plot_traj(argv[2], argv[3], argv[4], argc > 5 ? atoi(argv[5]) : 0);
    fprintf(stderr, "usage: bench_rl_plot returns OUT.png RUN.jsonl... | traj OUT.png CKPT ALGO [TASK]\n");
    return 2;
}
