/* internal.h: pieces shared by src/plot files (and its tests): the RGB
 * canvas, the bitmap font and the tick chooser. Not part of the public API. */
#ifndef ML_PLOT_INTERNAL_H
#define ML_PLOT_INTERNAL_H

#include <stdint.h>

#include "metalearn/plot.h"

/* Packed RGB pixels [h, w, 3], origin top-left. */
typedef struct ml__canvas {
    uint8_t *rgb;
    int w, h;
} ml__canvas;

/* Blend colour 0xRRGGBB with opacity a in [0, 1] into pixel (x, y); out of
 * range pixels are ignored, so callers need not clip. */
void ml__canvas_blend(ml__canvas *c, int x, int y, uint32_t rgb, float a);
void ml__canvas_fill_rect(ml__canvas *c, int x0, int y0, int x1, int y1, uint32_t rgb,
                          float a); /* [x0, x1) x [y0, y1) */

/* ---- font (font.c) ----------------------------------------------------------
 * Glyphs are 5 columns x 9 rows: rows 0-6 sit on the baseline (cap height 7),
 * rows 7-8 hold descenders. The advance is 6 columns. Drawn at an integer
 * scale s, a string of n characters is 6*s*n - s pixels wide and 9*s tall. */
#define ML__FONT_W 5
#define ML__FONT_H 9
#define ML__FONT_ADV 6
#define ML__FONT_CAP 7

/* Row bits of the glyph for byte ch (bit 4 = leftmost column); bytes outside
 * 32..126 map to '?'. */
const uint8_t *ml__font_glyph(unsigned char ch);
/* Width in pixels of s drawn at scale. */
int ml__text_width(const char *s, int scale);
/* Draw s with its top-left corner at (x, y). */
void ml__draw_text(ml__canvas *c, int x, int y, const char *s, int scale, uint32_t rgb);
/* Draw s rotated 90 degrees counter-clockwise (reading bottom to top): the
 * text occupies [x, x + 9*scale) x [y - width, y), baseline side right. */
void ml__draw_text_up(ml__canvas *c, int x, int y, const char *s, int scale, uint32_t rgb);

/* ---- ticks (chart.c) --------------------------------------------------------
 * Nice ticks 1, 2, 5 x 10^k inside [lo, hi] (lo < hi), about `target` of
 * them. Writes at most cap values to out, returns their count and sets
 * *step. */
int ml__nice_ticks(double lo, double hi, int target, double *out, int cap, double *step);
/* The same with a step of at least 1: ticks on whole numbers (a count or an
 * index axis, where 2.5 means nothing). */
int ml__nice_ticks_int(double lo, double hi, int target, double *out, int cap, double *step);
/* Format tick value v given the spacing of its axis (or 0 on a log axis). */
void ml__format_tick(double v, double step, char *buf, size_t len);

/* ---- legend (chart.c) -------------------------------------------------------
 * Tests set this to see each legend label as drawn (after any cut) and its
 * box in canvas pixels; NULL otherwise. */
extern void (*ml__plot_legend_probe)(const char *label, int x, int y, int w, int h);

#endif
