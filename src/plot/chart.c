/* chart.c: lays out and rasterises a line chart into an RGB canvas.
 *
 * Pipeline: pick axis ranges from the data (or the fixed ones), choose nice
 * ticks, size the margins from the tick labels, then draw grid, error
 * bands, series, frame, legend and text. Shapes are anti-aliased by
 * coverage: each series is rasterised into a float mask (max of the
 * coverages of its segments and markers) and composited once, so joints of
 * a polyline are not darkened by double blending and 100k-point series cost
 * one pass. Not here: PNG encoding (png.c) and glyphs (font.c). */
#include "plot/internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "core/errfmt.h"

/* ---- canvas ----------------------------------------------------------------- */

void ml__canvas_blend(ml__canvas *c, int x, int y, uint32_t rgb, float a) {
    if (x < 0 || y < 0 || x >= c->w || y >= c->h || !(a > 0.0f)) return;
    if (a > 1.0f) a = 1.0f;
    int a8 = (int)(a * 255.0f + 0.5f);
    uint8_t *p = c->rgb + ((size_t)y * (size_t)c->w + (size_t)x) * 3;
    int src[3] = {(int)(rgb >> 16) & 255, (int)(rgb >> 8) & 255, (int)rgb & 255};
    for (int k = 0; k < 3; k++) p[k] = (uint8_t)((p[k] * (255 - a8) + src[k] * a8 + 127) / 255);
}

void ml__canvas_fill_rect(ml__canvas *c, int x0, int y0, int x1, int y1, uint32_t rgb, float a) {
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > c->w) x1 = c->w;
    if (y1 > c->h) y1 = c->h;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) ml__canvas_blend(c, x, y, rgb, a);
}

/* ---- look ------------------------------------------------------------------- */

/* Tableau-like categorical colours: distinguishable, and still apart for
 * the common forms of colour blindness in the first four. */
static const uint32_t ml__palette[8] = {0x1F77B4, 0xFF7F0E, 0x2CA02C, 0xD62728,
                                        0x9467BD, 0x8C564B, 0xE377C2, 0x17BECF};

uint32_t ml_plot_palette(int i) {
    if (i < 0) i = -i;
    return ml__palette[i % 8];
}

#define COL_TEXT 0x222222u
#define COL_TICK_TEXT 0x444444u
#define COL_FRAME 0x555555u
#define COL_GRID 0xE6E6E6u
#define COL_GRID_MINOR 0xF4F4F4u
#define LINE_HW 1.3     /* half width of series lines: 2.6 px */
#define MARKER_R 3.6    /* marker radius */
#define BAND_ALPHA 0.2f /* light enough that crossing bands stay readable */
#define DASH_ON 10.0
#define DASH_OFF 6.0
#define MAX_ABS 1e300 /* larger magnitudes are skipped: padding would overflow */

/* ---- coverage mask ----------------------------------------------------------
 * A float per pixel over a rectangle of the canvas; shapes write max(old,
 * coverage), compositing blends the colour by coverage * alpha. Shape
 * coordinates are canvas pixels, pixel (i, j) has its centre at
 * (i + 0.5, j + 0.5). */
typedef struct mask {
    float *m;
    int x0, y0, w, h; /* the region, in canvas pixels */
} mask;

static void mask_clear(mask *k) { memset(k->m, 0, sizeof(float) * (size_t)k->w * (size_t)k->h); }

static void mask_put(mask *k, int x, int y, double cov) {
    if (cov <= 0.0) return;
    float *p = &k->m[(size_t)(y - k->y0) * (size_t)k->w + (size_t)(x - k->x0)];
    if (cov > 1.0) cov = 1.0;
    if ((float)cov > *p) *p = (float)cov;
}

static void mask_composite(const mask *k, ml__canvas *c, uint32_t rgb, float alpha) {
    for (int j = 0; j < k->h; j++)
        for (int i = 0; i < k->w; i++) {
            float v = k->m[(size_t)j * (size_t)k->w + (size_t)i];
            if (v > 0.0f) ml__canvas_blend(c, k->x0 + i, k->y0 + j, rgb, v * alpha);
        }
}

/* Liang-Barsky: clip a segment to the rectangle; 0 if nothing is left.
 * Keeps the rasteriser's loops bounded when fixed axis ranges put points
 * millions of pixels away. */
static int clip_segment(double *x0, double *y0, double *x1, double *y1, double xmin, double ymin,
                        double xmax, double ymax) {
    double t0 = 0.0, t1 = 1.0, dx = *x1 - *x0, dy = *y1 - *y0;
    double p[4] = {-dx, dx, -dy, dy};
    double q[4] = {*x0 - xmin, xmax - *x0, *y0 - ymin, ymax - *y0};
    for (int i = 0; i < 4; i++) {
        if (p[i] == 0.0) {
            if (q[i] < 0.0) return 0;
        } else {
            double r = q[i] / p[i];
            if (p[i] < 0.0) {
                if (r > t1) return 0;
                if (r > t0) t0 = r;
            } else {
                if (r < t0) return 0;
                if (r < t1) t1 = r;
            }
        }
    }
    double ax = *x0, ay = *y0;
    *x0 = ax + t0 * dx;
    *y0 = ay + t0 * dy;
    *x1 = ax + t1 * dx;
    *y1 = ay + t1 * dy;
    return 1;
}

static int clampi(double v, int lo, int hi) {
    if (!(v > lo)) return lo; /* also catches NaN */
    if (v > hi) return hi;
    return (int)v;
}

/* A segment with round caps of half width hw (a capsule); coverage is the
 * area-ish estimate hw + 0.5 - distance, clamped to [0, 1]. */
static void mask_segment_raw(mask *k, double x0, double y0, double x1, double y1, double hw) {
    double dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
    int bx0 = clampi(floor(fmin(x0, x1) - hw - 1), k->x0, k->x0 + k->w);
    int bx1 = clampi(ceil(fmax(x0, x1) + hw + 1), k->x0, k->x0 + k->w);
    int by0 = clampi(floor(fmin(y0, y1) - hw - 1), k->y0, k->y0 + k->h);
    int by1 = clampi(ceil(fmax(y0, y1) + hw + 1), k->y0, k->y0 + k->h);
    /* For a slanted segment only a band around the line can be covered:
     * scan that part of each row instead of the whole bounding box. */
    int banded = fabs(dy) > 1e-3;
    double slope = banded ? dx / dy : 0.0;
    double half = banded ? (hw + 1.0) * sqrt(len2) / fabs(dy) : 0.0;
    for (int y = by0; y < by1; y++) {
        double py = y + 0.5;
        int xs = bx0, xe = bx1;
        if (banded) {
            double xc = x0 + (py - y0) * slope;
            xs = clampi(floor(xc - half), bx0, bx1);
            xe = clampi(ceil(xc + half) + 1, bx0, bx1);
        }
        for (int x = xs; x < xe; x++) {
            double px = x + 0.5, t = 0.0;
            if (len2 > 0.0) {
                t = ((px - x0) * dx + (py - y0) * dy) / len2;
                t = t < 0.0 ? 0.0 : t > 1.0 ? 1.0 : t;
            }
            double ex = px - (x0 + t * dx), ey = py - (y0 + t * dy);
            mask_put(k, x, y, hw + 0.5 - sqrt(ex * ex + ey * ey));
        }
    }
}

static void mask_segment(mask *k, double x0, double y0, double x1, double y1, double hw) {
    double m = hw + 2.0;
    if (!clip_segment(&x0, &y0, &x1, &y1, k->x0 - m, k->y0 - m, k->x0 + k->w + m,
                      k->y0 + k->h + m))
        return;
    mask_segment_raw(k, x0, y0, x1, y1, hw);
}

/* Dashed segment; *phase carries the position in the dash pattern across
 * the segments of one polyline. */
static void mask_dashed(mask *k, double x0, double y0, double x1, double y1, double hw,
                        double *phase) {
    double m = hw + 2.0;
    if (!clip_segment(&x0, &y0, &x1, &y1, k->x0 - m, k->y0 - m, k->x0 + k->w + m,
                      k->y0 + k->h + m))
        return;
    double dx = x1 - x0, dy = y1 - y0, len = sqrt(dx * dx + dy * dy), t = 0.0;
    const double period = DASH_ON + DASH_OFF;
    if (!(len > 0.0)) return;
    while (t < len) {
        double left = *phase < DASH_ON ? DASH_ON - *phase : period - *phase;
        double step = fmin(left, len - t);
        if (*phase < DASH_ON) {
            double a = t / len, b = (t + step) / len;
            mask_segment_raw(k, x0 + a * dx, y0 + a * dy, x0 + b * dx, y0 + b * dy, hw);
        }
        t += step;
        *phase += step;
        if (*phase >= period - 1e-9) *phase = 0.0;
    }
}

static void mask_disc(mask *k, double cx, double cy, double r) {
    int bx0 = clampi(floor(cx - r - 1), k->x0, k->x0 + k->w);
    int bx1 = clampi(ceil(cx + r + 1), k->x0, k->x0 + k->w);
    int by0 = clampi(floor(cy - r - 1), k->y0, k->y0 + k->h);
    int by1 = clampi(ceil(cy + r + 1), k->y0, k->y0 + k->h);
    for (int y = by0; y < by1; y++)
        for (int x = bx0; x < bx1; x++) {
            double ex = x + 0.5 - cx, ey = y + 0.5 - cy;
            mask_put(k, x, y, r + 0.5 - sqrt(ex * ex + ey * ey));
        }
}

/* The vertical strip between (xa, ya_top..ya_bot) and (xb, yb_top..yb_bot):
 * every pixel column whose centre lies in [xa, xb) gets the fraction of
 * each pixel inside the interpolated span. */
static void mask_band(mask *k, double xa, double ta, double ba, double xb, double tb, double bb) {
    if (xb < xa) {
        double s;
        s = xa, xa = xb, xb = s;
        s = ta, ta = tb, tb = s;
        s = ba, ba = bb, bb = s;
    }
    int i0 = clampi(ceil(xa - 0.5), k->x0, k->x0 + k->w);
    int i1 = clampi(ceil(xb - 0.5), k->x0, k->x0 + k->w);
    for (int i = i0; i < i1; i++) {
        double u = (i + 0.5 - xa) / (xb - xa);
        double top = ta + u * (tb - ta), bot = ba + u * (bb - ba);
        if (top > bot) {
            double s = top;
            top = bot, bot = s;
        }
        int j0 = clampi(floor(top), k->y0, k->y0 + k->h);
        int j1 = clampi(ceil(bot), k->y0, k->y0 + k->h);
        for (int j = j0; j < j1; j++) mask_put(k, i, j, fmin(bot, j + 1.0) - fmax(top, (double)j));
    }
}

/* An error bar: vertical line with short horizontal caps. */
static void mask_errbar(mask *k, double x, double top, double bot) {
    mask_segment(k, x, top, x, bot, 0.8);
    mask_segment(k, x - 5.0, top, x + 5.0, top, 0.8);
    mask_segment(k, x - 5.0, bot, x + 5.0, bot, 0.8);
}

/* ---- ticks -------------------------------------------------------------------- */

int ml__nice_ticks(double lo, double hi, int target, double *out, int cap, double *step) {
    double range = hi - lo;
    *step = 0.0;
    if (!(range > 0.0) || !isfinite(range) || target < 1) return 0;
    double raw = range / target, mag = pow(10.0, floor(log10(raw))), r = raw / mag;
    double nice = r < 1.5 ? 1.0 : r < 3.5 ? 2.0 : r < 7.5 ? 5.0 : 10.0;
    double s = nice * mag;
    double first = ceil(lo / s - 1e-9), last = floor(hi / s + 1e-9);
    int n = 0;
    *step = s;
    for (double i = first; i <= last && n < cap; i += 1.0) {
        double v = i * s;
        if (fabs(v) < s * 1e-9) v = 0.0; /* no "-0" or "5.55e-17" labels */
        out[n++] = v;
    }
    return n;
}

int ml__nice_ticks_int(double lo, double hi, int target, double *out, int cap, double *step) {
    int n = ml__nice_ticks(lo, hi, target, out, cap, step);
    if (n == 0 || *step >= 1.0) return n;
    *step = 1.0;
    n = 0;
    for (double v = ceil(lo - 1e-9); v <= hi + 1e-9 && n < cap; v += 1.0) out[n++] = v == 0.0 ? 0.0 : v;
    return n;
}

/* "1e+06" -> "1e6", "2e-05" -> "2e-5": shorter labels. */
static void tidy_exponent(char *buf) {
    char *e = strchr(buf, 'e');
    if (!e) return;
    char *src = e + 1, *dst = e + 1;
    if (*src == '+') src++;
    else if (*src == '-') *dst++ = *src++;
    while (*src == '0' && src[1]) src++;
    memmove(dst, src, strlen(src) + 1);
}

void ml__format_tick(double v, double step, char *buf, size_t len) {
    double a = fabs(v);
    if (step > 0.0 && a < 1e6 && step >= 1e-4) {
        int dec = step >= 1.0 ? 0 : (int)ceil(-log10(step) - 1e-9);
        snprintf(buf, len, "%.*f", dec, v);
    } else if (step > 0.0) {
        /* enough significant digits to tell neighbouring ticks apart */
        int digits = 1 + (a > 0.0 ? (int)floor(log10(a)) : 0) - (int)floor(log10(step));
        digits = digits < 1 ? 1 : digits > 15 ? 15 : digits;
        snprintf(buf, len, "%.*g", digits, v);
    } else if (a >= 1e4 || (a > 0.0 && a < 1e-3)) {
        snprintf(buf, len, "%.2e", v); /* log axis: "1e5" reads faster than "100000" */
        char *e = strchr(buf, 'e'), *m = e;
        while (m[-1] == '0') m--;
        if (m[-1] == '.') m--;
        memmove(m, e, strlen(e) + 1);
    } else {
        snprintf(buf, len, "%.6g", v);
    }
    tidy_exponent(buf);
}

/* ---- axes ----------------------------------------------------------------------- */

#define MAX_TICKS 32
#define MAX_MINOR 128

typedef struct axis {
    int log;
    double lo, hi; /* in axis space: log10(value) on a log axis */
    double ticks[MAX_TICKS];
    int nt;
    double step; /* linear tick spacing, 0 on a log axis */
    double minor[MAX_MINOR];
    int nminor;
    char labels[MAX_TICKS][32];
    int label_stride; /* label every k-th tick when they would collide */
    int integer;      /* linear ticks on whole numbers only */
} axis;

static int ok_val(double v, int log) { return isfinite(v) && fabs(v) <= MAX_ABS && (!log || v > 0.0); }
static double to_axis(const axis *a, double v) { return a->log ? log10(v) : v; }
/* Position in [0, 1] across the axis (outside for clipped values). */
static double axis_frac(const axis *a, double v) { return (to_axis(a, v) - a->lo) / (a->hi - a->lo); }

/* Range in axis space from the data's [mn, mx] (already in axis space),
 * padded by 4% so markers at the extremes are not cut by the frame. */
static void axis_auto_range(axis *a, double mn, double mx, int any) {
    if (!any) {
        a->lo = 0.0, a->hi = 1.0; /* [1, 10] on a log axis */
        return;
    }
    double span = mx - mn, mag = fmax(fabs(mn), fabs(mx));
    if (!(span > mag * 1e-12) || span == 0.0) {
        /* all equal: centre the value in a range around it */
        double pad = a->log ? 0.5 : (mag > 0.0 ? mag * 0.1 : 1.0);
        a->lo = mn - pad, a->hi = mx + pad;
        return;
    }
    a->lo = mn - 0.04 * span;
    a->hi = mx + 0.04 * span;
}

static void axis_ticks(axis *a) {
    a->nt = a->nminor = 0;
    a->step = 0.0;
    if (!a->log) {
        a->nt = (a->integer ? ml__nice_ticks_int : ml__nice_ticks)(a->lo, a->hi, 5, a->ticks, MAX_TICKS, &a->step);
    } else {
        int d0 = (int)ceil(a->lo - 1e-9), d1 = (int)floor(a->hi + 1e-9);
        int ndec = d1 - d0 + 1;
        if (ndec >= 3) {
            /* powers of ten, thinned to about 6 on very wide ranges */
            int stride = (ndec + 5) / 6;
            for (int d = d0; d <= d1 && a->nt < MAX_TICKS; d++)
                if ((d - d0) % stride == 0) a->ticks[a->nt++] = pow(10.0, d);
            if (stride == 1)
                for (int d = d0 - 1; d <= d1; d++)
                    for (int m = 2; m <= 9 && a->nminor < MAX_MINOR; m++) {
                        double v = m * pow(10.0, d), t = log10(v);
                        if (t >= a->lo && t <= a->hi) a->minor[a->nminor++] = v;
                    }
        } else {
            /* under three decades: 1, 2, 5 x 10^k, else plain linear ticks */
            static const double mult[3] = {1.0, 2.0, 5.0};
            for (int d = (int)floor(a->lo); d <= (int)ceil(a->hi) && a->nt < MAX_TICKS; d++)
                for (int m = 0; m < 3 && a->nt < MAX_TICKS; m++) {
                    double v = mult[m] * pow(10.0, d), t = log10(v);
                    if (t >= a->lo - 1e-12 && t <= a->hi + 1e-12) a->ticks[a->nt++] = v;
                }
            if (a->nt < 3) {
                double step, tmp[MAX_TICKS];
                int n = ml__nice_ticks(pow(10.0, a->lo), pow(10.0, a->hi), 4, tmp, MAX_TICKS, &step);
                a->nt = 0;
                for (int i = 0; i < n; i++)
                    if (tmp[i] > 0.0) a->ticks[a->nt++] = tmp[i];
                a->step = step; /* labels of a linear spacing need its decimals */
            }
        }
    }
    for (int i = 0; i < a->nt; i++) ml__format_tick(a->ticks[i], a->step, a->labels[i], sizeof a->labels[i]);
    a->label_stride = 1;
}

/* ---- text helpers ----------------------------------------------------------------- */

/* Copy s into buf, cut with ".." so it is at most max_w pixels wide. */
static const char *fit_text(const char *s, int scale, int max_w, char *buf, size_t len) {
    if (!s) return "";
    snprintf(buf, len, "%s", s);
    size_t n = strlen(buf);
    if (ml__text_width(buf, scale) <= max_w) return buf;
    while (n > 0) {
        n--;
        if (n + 3 > len) continue;
        memcpy(buf + n, "..", 3);
        if (ml__text_width(buf, scale) <= max_w) return buf;
    }
    buf[0] = '\0';
    return buf;
}

/* ---- the chart -------------------------------------------------------------------- */

static double series_x(const ml_series *s, int i) { return s->x ? s->x[i] : (double)i; }

typedef struct layout {
    int w, h, scale;
    int px0, py0, px1, py1; /* plot area [px0, px1) x [py0, py1) */
} layout;

static double map_x(const layout *L, const axis *a, double v) {
    return L->px0 + axis_frac(a, v) * (L->px1 - L->px0);
}
static double map_y(const layout *L, const axis *a, double v) {
    return L->py1 - axis_frac(a, v) * (L->py1 - L->py0);
}


static void draw_series(ml__canvas *c, mask *k, const layout *L, const axis *ax, const axis *ay,
                        const ml_series *s, uint32_t col) {
    mask_clear(k);
    int have_prev = 0;
    double px = 0.0, py = 0.0, phase = 0.0;
    int lines = s->style != ML_PLOT_MARKERS;
    int markers = s->style == ML_PLOT_LINE_MARKERS || s->style == ML_PLOT_MARKERS;
    /* Error bars share the line's mask so they are one colour with it. */
    if (s->y_lo && s->y_hi && s->err_style == ML_PLOT_ERR_BARS)
        for (int i = 0; i < s->n; i++) {
            double x = series_x(s, i), lo = s->y_lo[i], hi = s->y_hi[i];
            if (ok_val(x, ax->log) && ok_val(s->y[i], ay->log) && ok_val(lo, ay->log) &&
                ok_val(hi, ay->log))
                mask_errbar(k, map_x(L, ax, x), map_y(L, ay, hi), map_y(L, ay, lo));
        }
    for (int i = 0; i < s->n; i++) {
        double x = series_x(s, i), y = s->y[i];
        if (!ok_val(x, ax->log) || !ok_val(y, ay->log)) {
            have_prev = 0; /* a gap, and the dash pattern restarts after it */
            phase = 0.0;
            continue;
        }
        double cx = map_x(L, ax, x), cy = map_y(L, ay, y);
        if (lines && have_prev) {
            if (s->style == ML_PLOT_DASHED) mask_dashed(k, px, py, cx, cy, LINE_HW, &phase);
            else mask_segment(k, px, py, cx, cy, LINE_HW);
        } else if (lines && !markers) {
            /* a lone point (first of a run) must stay visible if no segment follows */
            int next_ok = i + 1 < s->n && ok_val(series_x(s, i + 1), ax->log) &&
                          ok_val(s->y[i + 1], ay->log);
            if (!next_ok) mask_disc(k, cx, cy, MARKER_R);
        }
        if (markers) mask_disc(k, cx, cy, MARKER_R);
        px = cx, py = cy, have_prev = 1;
    }
    mask_composite(k, c, col, 1.0f);
}

static void draw_band(ml__canvas *c, mask *k, const layout *L, const axis *ax, const axis *ay,
                      const ml_series *s, uint32_t col) {
    mask_clear(k);
    int run = 0; /* valid band points in a row so far */
    double pxv = 0.0, pt = 0.0, pb = 0.0;
    for (int i = 0; i <= s->n; i++) {
        int ok = 0;
        double x = 0.0, lo = 0.0, hi = 0.0;
        if (i < s->n) {
            x = series_x(s, i), lo = s->y_lo[i], hi = s->y_hi[i];
            ok = ok_val(x, ax->log) && ok_val(s->y[i], ay->log) && ok_val(lo, ay->log) &&
                 ok_val(hi, ay->log);
        }
        if (!ok) {
            /* an isolated point has no neighbour to span to: show it as a bar */
            if (run == 1) mask_errbar(k, pxv, pt, pb);
            run = 0;
            continue;
        }
        double cx = map_x(L, ax, x), ct = map_y(L, ay, hi), cb = map_y(L, ay, lo);
        if (run > 0) mask_band(k, pxv, pt, pb, cx, ct, cb);
        pxv = cx, pt = ct, pb = cb, run++;
    }
    mask_composite(k, c, col, BAND_ALPHA);
}

/* Legend: one entry per labelled series. Inside the plot area, in the
 * corner that covers the fewest data points, when every label fits whole
 * and no point hides under it; else below the x axis in as many columns as
 * the width allows (the plot area gives up the height), so five to eight
 * long run labels stay readable. Cutting labels or dropping rows is the
 * last resort of charts too small for either. */
typedef struct legend {
    int n;               /* entries shown */
    int cols, cell_w;    /* columns and their pitch */
    int text_max;        /* labels wider than this are cut with ".." */
    int x0, y0, bw, bh;  /* the box */
} legend;

#define LEGEND_ROW(s) (ML__FONT_H * (s) + 6)
#define LEGEND_SAMPLE(s) (14 * (s))
#define LEGEND_PAD(s) (4 * (s))

void (*ml__plot_legend_probe)(const char *label, int x, int y, int w, int h);

static int legend_count(const ml_series *series, int n_series, int scale, int *text_w) {
    int n = 0;
    *text_w = 0;
    for (int i = 0; i < n_series; i++) {
        if (!series[i].label || !series[i].label[0]) continue;
        int w = ml__text_width(series[i].label, scale);
        if (w > *text_w) *text_w = w;
        n++;
    }
    return n;
}

/* The corner legend; returns 1 when it shows every label whole over no data
 * point (or when forced: then it cuts and drops as it must), 0 when the
 * legend should go below. lg->n == 0: no legend. */
static int legend_inside(legend *lg, const layout *L, const axis *ax, const axis *ay,
                         const ml_series *series, int n_series, int force) {
    int s = L->scale, row = LEGEND_ROW(s), sample = LEGEND_SAMPLE(s), pad = LEGEND_PAD(s);
    int pw = L->px1 - L->px0, ph = L->py1 - L->py0, full_w;
    int n = legend_count(series, n_series, s, &full_w);
    memset(lg, 0, sizeof *lg);
    int max_text = pw * 45 / 100 - sample - 3 * pad;
    int fit_rows = (ph - 2 * pad - 20) / row;
    if (n == 0) return 1;
    if (max_text < 6 * s || fit_rows < 1) return force; /* no room: no legend when forced */
    int whole = full_w <= max_text && n <= fit_rows;
    if (!whole && !force) return 0;
    if (n > fit_rows) n = fit_rows;
    int text_w = full_w < max_text ? full_w : max_text;
    lg->n = n, lg->cols = 1, lg->text_max = max_text;
    lg->bw = pad + sample + pad + text_w + pad + 2;
    lg->cell_w = lg->bw;
    lg->bh = pad + n * row - 6 + pad + 2;

    int inset = 10, best = 0;
    long best_hits = -1;
    for (int corner = 0; corner < 4; corner++) { /* TR, TL, BR, BL */
        int x0 = corner % 2 == 0 ? L->px1 - inset - lg->bw : L->px0 + inset;
        int y0 = corner < 2 ? L->py0 + inset : L->py1 - inset - lg->bh;
        long hits = 0;
        for (int si = 0; si < n_series; si++)
            for (int i = 0; i < series[si].n; i++) {
                double x = series_x(&series[si], i), y = series[si].y[i];
                if (!ok_val(x, ax->log) || !ok_val(y, ay->log)) continue;
                const ml_series *se = &series[si];
                double cx = map_x(L, ax, x);
                double ys[3] = {y, se->y_lo ? se->y_lo[i] : NAN, se->y_hi ? se->y_hi[i] : NAN};
                for (int k3 = 0; k3 < 3; k3++) { /* error bounds are ink too */
                    if (!ok_val(ys[k3], ay->log)) continue;
                    double cy = map_y(L, ay, ys[k3]);
                    hits += cx >= x0 - 4 && cx < x0 + lg->bw + 4 && cy >= y0 - 4 && cy < y0 + lg->bh + 4;
                }
            }
        if (best_hits < 0 || hits < best_hits) best_hits = hits, best = corner;
    }
    if (best_hits > 0 && !force) return 0;
    lg->x0 = best % 2 == 0 ? L->px1 - inset - lg->bw : L->px0 + inset;
    lg->y0 = best < 2 ? L->py0 + inset : L->py1 - inset - lg->bh;
    return 1;
}

/* The legend below the axis, for an image w wide at scale s: its size only
 * (the caller places it once the plot area has made room). */
static void legend_below(legend *lg, int w, int s, const ml_series *series, int n_series) {
    int row = LEGEND_ROW(s), sample = LEGEND_SAMPLE(s), pad = LEGEND_PAD(s), full_w;
    int n = legend_count(series, n_series, s, &full_w);
    int avail = w - 8 * s - 2, fixed = pad + sample + pad + 3 * pad; /* entry minus its text, gap included */
    memset(lg, 0, sizeof *lg);
    lg->n = n;
    lg->text_max = avail - fixed > 6 * s ? avail - fixed : 6 * s;
    int text_w = full_w < lg->text_max ? full_w : lg->text_max;
    lg->cell_w = fixed + text_w;
    lg->cols = avail / lg->cell_w;
    if (lg->cols < 1) lg->cols = 1;
    if (lg->cols > n) lg->cols = n;
    int rows = n ? (n + lg->cols - 1) / lg->cols : 0;
    lg->bw = lg->cols * lg->cell_w - 2 * pad + 2; /* no gap after the last column */
    lg->bh = pad + rows * row - 6 + pad + 2;
}

static void draw_legend(ml__canvas *c, mask *k, const layout *L, const legend *lg, const ml_series *series,
                        int n_series) {
    if (lg->n == 0) return;
    int s = L->scale, row = LEGEND_ROW(s), sample = LEGEND_SAMPLE(s), pad = LEGEND_PAD(s);
    int x0 = lg->x0, y0 = lg->y0, bw = lg->bw, bh = lg->bh;
    char buf[256];
    ml__canvas_fill_rect(c, x0, y0, x0 + bw, y0 + bh, 0xFFFFFF, 0.88f);
    ml__canvas_fill_rect(c, x0, y0, x0 + bw, y0 + 1, 0xBBBBBB, 1.0f);
    ml__canvas_fill_rect(c, x0, y0 + bh - 1, x0 + bw, y0 + bh, 0xBBBBBB, 1.0f);
    ml__canvas_fill_rect(c, x0, y0, x0 + 1, y0 + bh, 0xBBBBBB, 1.0f);
    ml__canvas_fill_rect(c, x0 + bw - 1, y0, x0 + bw, y0 + bh, 0xBBBBBB, 1.0f);

    int shown = 0;
    for (int i = 0; i < n_series && shown < lg->n; i++) {
        const ml_series *se = &series[i];
        if (!se->label || !se->label[0]) continue;
        uint32_t col = ml_plot_palette(i);
        int ty = y0 + 1 + pad + shown / lg->cols * row; /* row-major: reads left to right */
        double cy = ty + ML__FONT_CAP * s / 2.0, sx0 = x0 + 1 + pad + shown % lg->cols * lg->cell_w,
               sx1 = sx0 + sample;
        /* a small window onto the plot area's buffer, wherever the box is */
        mask sub = {k->m, (int)sx0 - 4, ty - 4, sample + 8, ML__FONT_H * s + 8};
        if (se->y_lo && se->y_hi && se->err_style == ML_PLOT_ERR_BAND)
            ml__canvas_fill_rect(c, (int)sx0, (int)cy - 3 * s, (int)sx1, (int)cy + 3 * s, col,
                                 BAND_ALPHA);
        mask_clear(&sub);
        if (se->style == ML_PLOT_DASHED) {
            double phase = 0.0;
            mask_dashed(&sub, sx0 + 1, cy, sx1 - 1, cy, LINE_HW, &phase);
        } else if (se->style != ML_PLOT_MARKERS) {
            mask_segment(&sub, sx0 + 1, cy, sx1 - 1, cy, LINE_HW);
        }
        if (se->style == ML_PLOT_MARKERS || se->style == ML_PLOT_LINE_MARKERS)
            mask_disc(&sub, (sx0 + sx1) / 2, cy, MARKER_R);
        if (se->y_lo && se->y_hi && se->err_style == ML_PLOT_ERR_BARS)
            mask_segment(&sub, (sx0 + sx1) / 2, cy - 3 * s, (sx0 + sx1) / 2, cy + 3 * s, 0.8);
        mask_composite(&sub, c, col, 1.0f);
        const char *t = fit_text(se->label, s, lg->text_max, buf, sizeof buf);
        ml__draw_text(c, (int)sx1 + pad, ty, t, s, COL_TEXT);
        if (ml__plot_legend_probe) ml__plot_legend_probe(t, (int)sx1 + pad, ty, ml__text_width(t, s), ML__FONT_H * s);
        shown++;
    }
}

/* Data extent in axis space over the valid points (and error bounds for y). */
static void data_extent(const ml_series *series, int n_series, int log_x, int log_y,
                        double ext[4], int *any) {
    *any = 0;
    for (int si = 0; si < n_series; si++) {
        const ml_series *s = &series[si];
        for (int i = 0; i < s->n; i++) {
            double x = series_x(s, i);
            /* error bounds count only where the point itself is drawn */
            if (!ok_val(x, log_x) || !ok_val(s->y[i], log_y)) continue;
            double ys[3] = {s->y[i], s->y_lo ? s->y_lo[i] : NAN, s->y_hi ? s->y_hi[i] : NAN};
            for (int k = 0; k < 3; k++) {
                if (!ok_val(ys[k], log_y)) continue;
                double tx = log_x ? log10(x) : x, ty = log_y ? log10(ys[k]) : ys[k];
                if (!*any) {
                    ext[0] = ext[1] = tx, ext[2] = ext[3] = ty, *any = 1;
                } else {
                    ext[0] = fmin(ext[0], tx), ext[1] = fmax(ext[1], tx);
                    ext[2] = fmin(ext[2], ty), ext[3] = fmax(ext[3], ty);
                }
            }
        }
    }
}

static ml_status setup_axis(axis *a, int log, int integer, double fmin_, double fmax_, double mn, double mx,
                            int any, const char *name, char *err, size_t errlen) {
    memset(a, 0, sizeof *a);
    a->log = log;
    a->integer = integer;
    if (fmin_ < fmax_) {
        if (!isfinite(fmin_) || !isfinite(fmax_) || (log && !(fmin_ > 0.0))) {
            ml__errf(err, errlen, "plot: %s range [%g, %g] is not usable%s", name, fmin_, fmax_,
                    log ? " on a log axis (must be positive)" : "");
            return ML_ERR_ARG;
        }
        a->lo = log ? log10(fmin_) : fmin_;
        a->hi = log ? log10(fmax_) : fmax_;
    } else {
        axis_auto_range(a, mn, mx, any);
    }
    axis_ticks(a);
    return ML_OK;
}

ml_status ml_plot_png(const char *path, const ml_chart *chart, const ml_series *series,
                      int n_series, char *err, size_t errlen) {
    static const ml_chart defaults = {0};
    const ml_chart *ch = chart ? chart : &defaults;
    if (err && errlen) err[0] = '\0';
    if (!path || !*path) {
        ml__errf(err, errlen, "plot: no output path");
        return ML_ERR_ARG;
    }
    if (n_series < 0 || (n_series > 0 && !series)) {
        ml__errf(err, errlen, "plot: %s: bad series list (%d series)", path, n_series);
        return ML_ERR_ARG;
    }
    for (int i = 0; i < n_series; i++) {
        const ml_series *s = &series[i];
        const char *why = s->n < 0                           ? "negative n"
                          : s->n > 0 && !s->y                ? "y is NULL"
                          : !s->y_lo != !s->y_hi             ? "only one of y_lo, y_hi given"
                          : s->style < 0 || s->style >= ML_PLOT_STYLE_COUNT ? "unknown style"
                          : s->err_style < 0 || s->err_style >= ML_PLOT_ERR_COUNT
                              ? "unknown err_style"
                              : NULL;
        if (why) {
            ml__errf(err, errlen, "plot: %s: series %d (%s): %s", path, i,
                    s->label ? s->label : "unlabelled", why);
            return ML_ERR_ARG;
        }
    }
    layout L = {0};
    L.w = ch->width ? ch->width : 800;
    L.h = ch->height ? ch->height : 500;
    if (L.w < 160 || L.h < 120 || L.w > 8192 || L.h > 8192) {
        ml__errf(err, errlen, "plot: %s: size %dx%d outside 160x120 .. 8192x8192", path, L.w, L.h);
        return ML_ERR_ARG;
    }

    double ext[4] = {0, 0, 0, 0};
    int any;
    axis ax, ay;
    data_extent(series, n_series, ch->log_x != 0, ch->log_y != 0, ext, &any);
    ml_status st = setup_axis(&ax, ch->log_x != 0, ch->x_integer != 0, ch->x_min, ch->x_max, ext[0], ext[1], any, "x",
                              err, errlen);
    if (st == ML_OK)
        st = setup_axis(&ay, ch->log_y != 0, 0, ch->y_min, ch->y_max, ext[2], ext[3], any, "y", err,
                        errlen);
    if (st != ML_OK) return st;

    /* Margins from the text that goes in them. */
    int s = (L.w >= 480 && L.h >= 300) ? 2 : 1, ts = s + 1;
    int lh = ML__FONT_H * s, tick = 5, gap = 4 * s;
    int ytw = 0;
    for (int i = 0; i < ay.nt; i++) {
        int w = ml__text_width(ay.labels[i], s);
        if (w > ytw) ytw = w;
    }
    int has_title = ch->title && ch->title[0], has_xl = ch->xlabel && ch->xlabel[0];
    int has_yl = ch->ylabel && ch->ylabel[0];
    L.scale = s;
    L.px0 = 5 * s + (has_yl ? lh + gap : 0) + ytw + gap + tick;
    L.py0 = has_title ? 5 * s + ML__FONT_H * ts + 4 * s : 6 * s + lh / 2;
    int last_w = ax.nt ? ml__text_width(ax.labels[ax.nt - 1], s) : 0;
    L.px1 = L.w - (last_w / 2 + 4 * s > 10 * s ? last_w / 2 + 4 * s : 10 * s);
    L.py1 = L.h - (tick + gap + lh + (has_xl ? gap + lh : 0) + 4 * s);
    /* The legend below the x axis when it does not fit in a corner, if the
     * plot area keeps a useful height. */
    legend lg;
    if (!legend_inside(&lg, &L, &ax, &ay, series, n_series, 0)) {
        legend_below(&lg, L.w, s, series, n_series);
        if (L.py1 - lg.bh - gap - L.py0 >= 80) {
            L.py1 -= lg.bh + gap;
            lg.x0 = (L.w - lg.bw) / 2;
            lg.y0 = L.py1 + 1 + tick + gap + lh + (has_xl ? gap + lh : 0) + gap;
        } else {
            legend_inside(&lg, &L, &ax, &ay, series, n_series, 1);
        }
    }
    int pw = L.px1 - L.px0, ph = L.py1 - L.py0;
    if (pw < 40 || ph < 40) {
        ml__errf(err, errlen, "plot: %s: %dx%d leaves no room for the plot area", path, L.w, L.h);
        return ML_ERR_ARG;
    }
    /* Thin out labels that would touch their neighbours. */
    for (int i = 1; i < ax.nt; i++) {
        double d = fabs(map_x(&L, &ax, ax.ticks[i]) - map_x(&L, &ax, ax.ticks[i - 1]));
        int need = (ml__text_width(ax.labels[i], s) + ml__text_width(ax.labels[i - 1], s)) / 2 + 3 * s;
        while (ax.label_stride < ax.nt && d * ax.label_stride < need) ax.label_stride++;
    }
    for (int i = 1; i < ay.nt; i++) {
        double d = fabs(map_y(&L, &ay, ay.ticks[i]) - map_y(&L, &ay, ay.ticks[i - 1]));
        while (ay.label_stride < ay.nt && d * ay.label_stride < lh + s) ay.label_stride++;
    }

    ml__canvas c = {ml_malloc((size_t)L.w * (size_t)L.h * 3), L.w, L.h};
    mask k = {ml_malloc(sizeof(float) * (size_t)pw * (size_t)ph), L.px0, L.py0, pw, ph};
    if (!c.rgb || !k.m) {
        ml_free(c.rgb);
        ml_free(k.m);
        ml__errf(err, errlen, "plot: %s: out of memory for a %dx%d image", path, L.w, L.h);
        return ML_ERR_NOMEM;
    }
    memset(c.rgb, 255, (size_t)L.w * (size_t)L.h * 3);

    /* Grid first, data over it, frame and text last. */
    for (int i = 0; i < ax.nminor; i++) {
        int x = clampi(floor(map_x(&L, &ax, ax.minor[i])), L.px0, L.px1 - 1);
        ml__canvas_fill_rect(&c, x, L.py0, x + 1, L.py1, COL_GRID_MINOR, 1.0f);
    }
    for (int i = 0; i < ay.nminor; i++) {
        int y = clampi(floor(map_y(&L, &ay, ay.minor[i])), L.py0, L.py1 - 1);
        ml__canvas_fill_rect(&c, L.px0, y, L.px1, y + 1, COL_GRID_MINOR, 1.0f);
    }
    for (int i = 0; i < ax.nt; i++) {
        int x = clampi(floor(map_x(&L, &ax, ax.ticks[i])), L.px0, L.px1 - 1);
        ml__canvas_fill_rect(&c, x, L.py0, x + 1, L.py1, COL_GRID, 1.0f);
    }
    for (int i = 0; i < ay.nt; i++) {
        int y = clampi(floor(map_y(&L, &ay, ay.ticks[i])), L.py0, L.py1 - 1);
        ml__canvas_fill_rect(&c, L.px0, y, L.px1, y + 1, COL_GRID, 1.0f);
    }
    for (int i = 0; i < n_series; i++)
        if (series[i].y_lo && series[i].y_hi && series[i].err_style == ML_PLOT_ERR_BAND)
            draw_band(&c, &k, &L, &ax, &ay, &series[i], ml_plot_palette(i));
    for (int i = 0; i < n_series; i++)
        draw_series(&c, &k, &L, &ax, &ay, &series[i], ml_plot_palette(i));

    /* Frame just outside the plot area, so it never hides data pixels. */
    ml__canvas_fill_rect(&c, L.px0 - 1, L.py0 - 1, L.px1 + 1, L.py0, COL_FRAME, 1.0f);
    ml__canvas_fill_rect(&c, L.px0 - 1, L.py1, L.px1 + 1, L.py1 + 1, COL_FRAME, 1.0f);
    ml__canvas_fill_rect(&c, L.px0 - 1, L.py0, L.px0, L.py1, COL_FRAME, 1.0f);
    ml__canvas_fill_rect(&c, L.px1, L.py0, L.px1 + 1, L.py1, COL_FRAME, 1.0f);

    draw_legend(&c, &k, &L, &lg, series, n_series);

    for (int i = 0; i < ax.nt; i++) {
        int x = clampi(floor(map_x(&L, &ax, ax.ticks[i])), L.px0, L.px1 - 1);
        ml__canvas_fill_rect(&c, x, L.py1 + 1, x + 1, L.py1 + 1 + tick, COL_FRAME, 1.0f);
        if (i % ax.label_stride) continue;
        int w = ml__text_width(ax.labels[i], s);
        int tx = x - w / 2;
        if (tx < 0) tx = 0;
        if (tx + w > L.w) tx = L.w - w;
        ml__draw_text(&c, tx, L.py1 + 1 + tick + gap, ax.labels[i], s, COL_TICK_TEXT);
    }
    for (int i = 0; i < ay.nt; i++) {
        int y = clampi(floor(map_y(&L, &ay, ay.ticks[i])), L.py0, L.py1 - 1);
        ml__canvas_fill_rect(&c, L.px0 - 1 - tick, y, L.px0 - 1, y + 1, COL_FRAME, 1.0f);
        if (i % ay.label_stride) continue;
        int w = ml__text_width(ay.labels[i], s);
        ml__draw_text(&c, L.px0 - 1 - tick - gap - w, y - (ML__FONT_CAP * s) / 2, ay.labels[i], s,
                      COL_TICK_TEXT);
    }
    char buf[512];
    if (has_title) {
        /* a size larger when it fits, else the body size */
        if (ml__text_width(ch->title, ts) > L.w - 8 * s) ts = s;
        const char *t = fit_text(ch->title, ts, L.w - 8 * s, buf, sizeof buf);
        int w = ml__text_width(t, ts), x = (L.px0 + L.px1 - w) / 2;
        if (x < 4 * s) x = 4 * s;
        if (x + w > L.w - 4 * s) x = L.w - 4 * s - w;
        ml__draw_text(&c, x, 5 * s + ML__FONT_H * (s + 1 - ts) / 2, t, ts, COL_TEXT);
    }
    if (has_xl) {
        const char *t = fit_text(ch->xlabel, s, L.w - 8 * s, buf, sizeof buf);
        int w = ml__text_width(t, s), x = (L.px0 + L.px1 - w) / 2;
        if (x < 4 * s) x = 4 * s;
        if (x + w > L.w - 4 * s) x = L.w - 4 * s - w;
        ml__draw_text(&c, x, L.py1 + 1 + tick + gap + lh + gap, t, s, COL_TEXT);
    }
    if (has_yl) {
        const char *t = fit_text(ch->ylabel, s, L.h - 8 * s, buf, sizeof buf);
        int w = ml__text_width(t, s), y = (L.py0 + L.py1 + w) / 2;
        if (y > L.h - 4 * s) y = L.h - 4 * s;
        if (y - w < 4 * s) y = 4 * s + w;
        ml__draw_text_up(&c, 5 * s, y, t, s, COL_TEXT);
    }

    st = ml_plot_write_rgb(path, c.rgb, L.w, L.h, err, errlen);
    ml_free(c.rgb);
    ml_free(k.m);
    return st;
}
