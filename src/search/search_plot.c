/* search_plot.c: the chart of a strategy search (search.png): scores per
 * trial and rung, the best so far, failed trials marked. Not the search
 * itself (search.c) nor running trials (src/cli/cmd_search.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/errfmt.h"
#include "metalearn/plot.h"
#include "metalearn/search.h"

#define MAX_SERIES 18

ml_status ml_search_plot(const char *path, const ml_search_chart *c, char *err, size_t errlen) {
    int n = c->n_trials, hb = c->higher_better > 0;
    if (n < 1 || c->n_rungs < 1 || c->n_rungs > MAX_SERIES - 2 || !c->score || !c->rung_iters) {
        ml__errf(err, errlen, "plot: %s: a search chart needs trials and 1..%d rungs", path, MAX_SERIES - 2);
        return ML_ERR_ARG;
    }
    /* x, then rung scores are read in place; best so far and failed marks are made here. */
    double *x = malloc((size_t)n * 3 * sizeof(double));
    if (!x) {
        ml__errf(err, errlen, "plot: %s: out of memory", path);
        return ML_ERR_NOMEM;
    }
    double *bsf = x + n, *fail_y = x + 2 * (size_t)n;
    ml_series series[MAX_SERIES];
    char labels[MAX_SERIES][48];
    int positive = 1, ns = 0;
    double worst = NAN;
    for (int t = 0; t < n; t++) x[t] = t;
    for (int r = 0; r < c->n_rungs; r++) {
        const double *y = c->score + (size_t)r * n;
        for (int t = 0; t < n; t++) {
            if (isnan(y[t])) continue;
            if (!(y[t] > 0)) positive = 0;
            if (isnan(worst) || (hb ? y[t] < worst : y[t] > worst)) worst = y[t];
        }
        snprintf(labels[ns], sizeof labels[ns], "rung %d (%d it)", r, c->rung_iters[r]);
        series[ns] = (ml_series){.label = labels[ns], .x = x, .y = y, .n = n, .style = ML_PLOT_MARKERS};
        ns++;
    }
    /* Best so far among first-rung scores: how fast the strategy finds good candidates. */
    double cur = NAN;
    for (int t = 0; t < n; t++) {
        double v = c->score[t];
        if (!isnan(v) && !(c->failed && c->failed[t]) && (isnan(cur) || (hb ? v > cur : v < cur))) cur = v;
        bsf[t] = cur;
    }
    series[ns++] = (ml_series){.label = "best so far (rung 0)", .x = x, .y = bsf, .n = n, .style = ML_PLOT_DASHED};
    int n_failed = 0;
    for (int t = 0; t < n; t++) {
        int f = c->failed && c->failed[t];
        n_failed += f;
        fail_y[t] = f ? (isnan(worst) ? 0.0 : worst) : NAN;
    }
    if (n_failed) {
        snprintf(labels[ns], sizeof labels[ns], "failed: %d (at worst score)", n_failed);
        series[ns] = (ml_series){.label = labels[ns], .x = x, .y = fail_y, .n = n, .style = ML_PLOT_MARKERS};
        ns++;
    }
    const char *metric = c->metric ? c->metric : "score";
    char title[160], ylabel[64];
    snprintf(title, sizeof title, "%s search, %d candidates: validation %s (%s is better)",
             c->strategy ? c->strategy : "", n, metric, hb ? "higher" : "lower");
    snprintf(ylabel, sizeof ylabel, "validation %s", metric);
    ml_chart chart = {.title = title, .xlabel = "trial", .ylabel = ylabel, .log_y = !hb && positive, .x_integer = 1,
                     .width = 960, .height = 540};
    ml_status st = ml_plot_png(path, &chart, series, ns, err, errlen);
    free(x);
    return st;
}
