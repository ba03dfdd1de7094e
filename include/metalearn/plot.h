/* metalearn/plot.h: line charts written as PNG files, for `metalearn plot`.
 *
 * A chart is a set of series (x, y and an optional error band) drawn on
 * linear or log axes with nice ticks, a title, axis labels and a legend
 * (in a corner of the plot area where it covers no point and cuts no
 * label, else below the x axis in columns).
 * It is meant for learning curves and search scores, not for publication
 * figures: one fixed look, a built-in 5x9 bitmap font (ASCII only, other
 * bytes show as '?'), and no dependency beyond zlib.
 *
 * Points whose x or y is NaN/Inf, or not positive on a log axis, are
 * skipped and break the line there (a gap, as matplotlib draws NaN).
 * The file is written to path + ".tmp" and renamed, so a reader never sees
 * half a PNG. Nothing here prints. */
#ifndef METALEARN_PLOT_H
#define METALEARN_PLOT_H

#include <stddef.h>
#include <stdint.h>

#include "metalearn/core.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    ML_PLOT_LINE = 0,         /* solid line */
    ML_PLOT_LINE_MARKERS = 1, /* solid line with a dot at each point */
    ML_PLOT_MARKERS = 2,      /* dots only (scatter) */
    ML_PLOT_DASHED = 3,       /* dashed line */
    ML_PLOT_STYLE_COUNT
};

enum {
    ML_PLOT_ERR_BAND = 0, /* translucent fill between y_lo and y_hi */
    ML_PLOT_ERR_BARS = 1, /* a vertical bar with caps at each point */
    ML_PLOT_ERR_COUNT
};

typedef struct ml_series {
    const char *label; /* legend text; NULL or "" leaves the series out of the legend */
    const double *x;   /* [n]; NULL means 0, 1, ..., n-1 (e.g. adaptation steps) */
    const double *y;   /* [n] */
    int n;
    const double *y_lo, *y_hi; /* [n] each, e.g. a 95% CI; both NULL for none */
    int style;                 /* ML_PLOT_LINE ... ML_PLOT_DASHED */
    int err_style;             /* ML_PLOT_ERR_BAND or ML_PLOT_ERR_BARS */
} ml_series;

typedef struct ml_chart {
    const char *title, *xlabel, *ylabel; /* each may be NULL */
    int width, height;                   /* pixels; 0 means 800 x 500 */
    int log_x, log_y;
    /* Fixed axis ranges, used when min < max (zero-init means automatic),
     * e.g. y in [0, 1] for accuracy curves. Points outside are clipped. */
    double x_min, x_max, y_min, y_max;
    /* x ticks on whole numbers only (trial numbers, steps): no "2.5". */
    int x_integer;
} ml_chart;

/* Render the chart and write it as an 8-bit RGB PNG. chart may be NULL
 * (all defaults); n_series may be 0 (axes only). Returns ML_ERR_ARG for bad
 * arguments or a size outside 160x120 .. 8192x8192, ML_ERR_NOMEM, or
 * ML_ERR_IO; err (if not NULL) then gets a one-line message naming the
 * path. */
ml_status ml_plot_png(const char *path, const ml_chart *chart, const ml_series *series,
                      int n_series, char *err, size_t errlen);

/* Write a packed RGB image [height, width, 3] as a PNG, atomically as above. */
ml_status ml_plot_write_rgb(const char *path, const uint8_t *rgb, int width, int height,
                            char *err, size_t errlen);

/* Colour of series i as 0xRRGGBB: a fixed palette of 8, repeating. */
uint32_t ml_plot_palette(int i);

#ifdef __cplusplus
}
#endif
#endif
