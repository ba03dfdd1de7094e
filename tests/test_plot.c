/* test_plot.c: the PNG chart renderer.
 *
 * Every chart is written to ml_test_tmp_dir(), read back and checked the
 * way a strict PNG reader would (signature, chunk CRCs, IHDR, IDAT that
 * inflates to height * (1 + 3 * width) bytes with filter 0 rows), then
 * inspected pixel by pixel: series colours must land in the plot area where
 * the data says. Edge cases must give a valid image, not a crash. */
#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "metalearn/core.h"
#include "metalearn/plot.h"
#include "metalearn/search.h"
#include "ml_test.h"
#include "plot/internal.h"

/* ---- a strict little PNG reader ------------------------------------------- */

static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Decode an image written by ml_plot_*: returns packed RGB (caller frees) or
 * NULL after recording why. */
static uint8_t *png_decode(const char *path, int *w, int *h) {
    size_t len = 0;
    uint8_t *f = (uint8_t *)ml_test_slurp(path, &len);
    *w = *h = 0;
    CHECK(f != NULL);
    if (!f) return NULL;
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    CHECK(len >= 8 && memcmp(f, sig, 8) == 0);
    size_t pos = 8, idat_len = 0;
    uint8_t *idat = NULL, *rgb = NULL;
    int saw_ihdr = 0, saw_iend = 0, n_chunks = 0;
    while (pos + 12 <= len && !saw_iend) {
        uint32_t clen = get_u32(f + pos);
        if (pos + 12 + (size_t)clen > len) break;
        const uint8_t *type = f + pos + 4, *data = f + pos + 8;
        uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), type, 4 + clen);
        CHECK_INT_EQ(crc, get_u32(data + clen));
        if (n_chunks == 0) CHECK(memcmp(type, "IHDR", 4) == 0);
        if (!memcmp(type, "IHDR", 4)) {
            CHECK_INT_EQ(clen, 13);
            *w = (int)get_u32(data);
            *h = (int)get_u32(data + 4);
            CHECK_INT_EQ(data[8], 8);  /* bit depth */
            CHECK_INT_EQ(data[9], 2);  /* RGB */
            CHECK_INT_EQ(data[12], 0); /* no interlace */
            saw_ihdr = 1;
        } else if (!memcmp(type, "IDAT", 4)) {
            idat = realloc(idat, idat_len + clen);
            memcpy(idat + idat_len, data, clen);
            idat_len += clen;
        } else if (!memcmp(type, "IEND", 4)) {
            CHECK_INT_EQ(clen, 0);
            saw_iend = 1;
        }
        pos += 12 + (size_t)clen;
        n_chunks++;
    }
    CHECK(saw_ihdr && saw_iend && idat_len > 0);
    CHECK_INT_EQ(pos, len); /* nothing after IEND, nothing cut short */
    if (saw_ihdr && *w > 0 && *h > 0 && idat) {
        size_t row = 1 + 3 * (size_t)*w;
        uLongf raw_len = row * (size_t)*h + 16; /* slack: detect a stream too long */
        uint8_t *raw = malloc(raw_len);
        int zr = uncompress(raw, &raw_len, idat, idat_len);
        CHECK_INT_EQ(zr, Z_OK);
        CHECK_INT_EQ(raw_len, row * (size_t)*h);
        if (zr == Z_OK && raw_len == row * (size_t)*h) {
            rgb = malloc(3 * (size_t)*w * (size_t)*h);
            int bad_filter = 0;
            for (int y = 0; y < *h; y++) {
                bad_filter += raw[y * row] != 0;
                memcpy(rgb + (size_t)y * 3 * *w, raw + y * row + 1, 3 * (size_t)*w);
            }
            CHECK_INT_EQ(bad_filter, 0);
        }
        free(raw);
    }
    free(idat);
    free(f);
    return rgb;
}

static int is_colour(const uint8_t *p, uint32_t c) {
    return p[0] == (c >> 16 & 255) && p[1] == (c >> 8 & 255) && p[2] == (c & 255);
}

/* Pixels of exactly colour c, with the mean row of those in the left and
 * the right third of the image. */
static long count_colour(const uint8_t *rgb, int w, int h, uint32_t c, double *row_left,
                         double *row_right) {
    long n = 0, nl = 0, nr = 0;
    double sl = 0, sr = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            if (is_colour(rgb + ((size_t)y * w + x) * 3, c)) {
                n++;
                if (x < w / 3) sl += y, nl++;
                if (x >= 2 * w / 3) sr += y, nr++;
            }
    if (row_left) *row_left = nl ? sl / nl : -1;
    if (row_right) *row_right = nr ? sr / nr : -1;
    return n;
}

/* Pixels that are neither white nor gray: data ink (text and frame are gray). */
static long count_tinted(const uint8_t *rgb, int w, int h) {
    long n = 0;
    for (size_t i = 0; i < (size_t)w * h; i++) {
        const uint8_t *p = rgb + 3 * i;
        n += p[0] != p[1] || p[1] != p[2];
    }
    return n;
}

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", ml_test_tmp_dir(), name);
    return buf[k];
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Render, check status, decode; returns the pixels or NULL. */
static uint8_t *render(const char *name, const ml_chart *c, const ml_series *s, int n, int *w,
                       int *h) {
    char err[256] = "";
    const char *path = tmp_path(name);
    ml_status st = ml_plot_png(path, c, s, n, err, sizeof err);
    CHECK_INT_EQ(st, ML_OK);
    if (st != ML_OK) {
        fprintf(stderr, "  %s\n", err);
        return NULL;
    }
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()); /* the atomic writer\'s temp */
    CHECK(!file_exists(tmp));
    return png_decode(path, w, h);
}

/* ---- tests ----------------------------------------------------------------- */

enum { N = 40 };
static double xs[N], up[N], down[N], lo[N], hi[N];

static void fill_data(void) {
    for (int i = 0; i < N; i++) {
        xs[i] = i;
        up[i] = 0.1 + 0.02 * i;
        down[i] = 1.0 - 0.02 * i;
        lo[i] = up[i] - 0.05;
        hi[i] = up[i] + 0.05;
    }
}

static void test_png_structure(void) {
    ml_series s[2] = {{.label = "MAML", .x = xs, .y = up, .n = N, .y_lo = lo, .y_hi = hi},
                      {.label = "Reptile", .x = xs, .y = down, .n = N, .style = ML_PLOT_DASHED}};
    ml_chart c = {.title = "MSE vs steps", .xlabel = "steps", .ylabel = "MSE"};
    int w, h;
    uint8_t *rgb = render("plot_structure.png", &c, s, 2, &w, &h);
    CHECK_INT_EQ(w, 800);
    CHECK_INT_EQ(h, 500);
    CHECK(rgb != NULL);
    if (rgb) {
        CHECK(is_colour(rgb, 0xFFFFFF)); /* white background in the corner */
        CHECK(count_colour(rgb, w, h, ml_plot_palette(0), NULL, NULL) > 100);
        CHECK(count_colour(rgb, w, h, ml_plot_palette(1), NULL, NULL) > 100);
    }
    free(rgb);

    c.width = 333, c.height = 211; /* odd sizes */
    rgb = render("plot_odd.png", &c, s, 2, &w, &h);
    CHECK_INT_EQ(w, 333);
    CHECK_INT_EQ(h, 211);
    free(rgb);
}

/* Without labels there is no legend, so every pixel of a palette colour is
 * data: a rising series must sit lower (larger row) on the left than on the
 * right, a falling one the other way round. */
static void test_series_where_the_data_is(void) {
    ml_series s[2] = {{.x = xs, .y = up, .n = N}, {.x = xs, .y = down, .n = N}};
    int w, h;
    uint8_t *rgb = render("plot_where.png", NULL, s, 2, &w, &h);
    if (!rgb) return;
    double l0, r0, l1, r1;
    CHECK(count_colour(rgb, w, h, ml_plot_palette(0), &l0, &r0) > 200);
    CHECK(count_colour(rgb, w, h, ml_plot_palette(1), &l1, &r1) > 200);
    CHECK(l0 > r0 + 100);
    CHECK(r1 > l1 + 100);
    /* nothing of the data outside the frame: the outer 5 pixels stay white/gray */
    long edge = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            if ((x < 5 || y < 5 || x >= w - 5 || y >= h - 5) &&
                count_tinted(rgb + ((size_t)y * w + x) * 3, 1, 1))
                edge++;
    CHECK_INT_EQ(edge, 0);
    free(rgb);
}

static void test_error_band_and_bars(void) {
    ml_series plain = {.x = xs, .y = up, .n = N};
    ml_series band = {.x = xs, .y = up, .n = N, .y_lo = lo, .y_hi = hi};
    ml_series bars = {.x = xs, .y = up, .n = N, .y_lo = lo, .y_hi = hi, .style = ML_PLOT_MARKERS,
                      .err_style = ML_PLOT_ERR_BARS};
    int w, h;
    uint8_t *a = render("plot_plain.png", NULL, &plain, 1, &w, &h);
    uint8_t *b = render("plot_band.png", NULL, &band, 1, &w, &h);
    uint8_t *c = render("plot_bars.png", NULL, &bars, 1, &w, &h);
    if (a && b) {
        long ta = count_tinted(a, w, h), tb = count_tinted(b, w, h);
        CHECK(tb > 3 * ta); /* the band is a wide light fill */
        /* the band is lighter than the line: a tint between white and the colour */
        uint32_t col = ml_plot_palette(0);
        int light = 0;
        for (size_t i = 0; i < (size_t)w * h && !light; i++) {
            const uint8_t *p = b + 3 * i;
            light = p[0] > (col >> 16 & 255) + 100 && p[2] > 200 && p[0] != p[2];
        }
        CHECK(light);
    }
    if (c) CHECK(count_colour(c, w, h, ml_plot_palette(0), NULL, NULL) > 300);
    free(a);
    free(b);
    free(c);
}

static void test_edge_cases(void) {
    int w, h;
    uint8_t *rgb;
    /* nothing at all: axes only */
    rgb = render("plot_none.png", NULL, NULL, 0, &w, &h);
    CHECK(rgb && count_tinted(rgb, w, h) == 0);
    free(rgb);

    /* empty series, a one-point series, x == NULL, all-equal y */
    double one = 3.0, eq[5] = {2, 2, 2, 2, 2};
    ml_series s[4] = {{.label = "empty", .n = 0},
                      {.label = "one point", .y = &one, .n = 1},
                      {.label = "steps", .y = up, .n = N},
                      {.label = "flat", .y = eq, .n = 5, .style = ML_PLOT_LINE_MARKERS}};
    rgb = render("plot_small_cases.png", &(ml_chart){.title = "edge"}, s, 4, &w, &h);
    if (rgb) {
        CHECK(count_colour(rgb, w, h, ml_plot_palette(1), NULL, NULL) > 20); /* one point + legend */
        CHECK(count_colour(rgb, w, h, ml_plot_palette(3), NULL, NULL) > 100);
    }
    free(rgb);
    rgb = render("plot_one.png", NULL, &s[1], 1, &w, &h);
    if (rgb) CHECK(count_colour(rgb, w, h, ml_plot_palette(0), NULL, NULL) > 10); /* a visible dot */
    free(rgb);
    rgb = render("plot_flat.png", NULL, &s[3], 1, &w, &h);
    if (rgb) CHECK(count_colour(rgb, w, h, ml_plot_palette(0), NULL, NULL) > 200);
    free(rgb);

    /* NaN and Inf anywhere, including the error bounds, break the line */
    double bx[8] = {0, 1, 2, NAN, 4, 5, INFINITY, 7};
    double by[8] = {1, NAN, 3, 4, -INFINITY, 6, 7, 8};
    double bl[8] = {0, 0, NAN, 3, 3, 5, 6, 7}, bh[8] = {2, 2, 4, 5, INFINITY, 7, 8, 9};
    ml_series bad = {.label = "nan", .x = bx, .y = by, .n = 8, .y_lo = bl, .y_hi = bh, .style = 1};
    rgb = render("plot_nan.png", NULL, &bad, 1, &w, &h);
    if (rgb) CHECK(count_colour(rgb, w, h, ml_plot_palette(0), NULL, NULL) > 50);
    free(rgb);

    /* log axes: non-positive values are skipped, fully invalid series leave axes */
    double lx[6] = {-1, 0, 1, 10, 100, 1000}, ly[6] = {5, 4, 0, -1, 0.5, 0.05};
    ml_series logs = {.label = "log", .x = lx, .y = ly, .n = 6, .style = 1};
    ml_chart lc = {.log_x = 1, .log_y = 1, .title = "log-log"};
    rgb = render("plot_log.png", &lc, &logs, 1, &w, &h);
    if (rgb) CHECK(count_colour(rgb, w, h, ml_plot_palette(0), NULL, NULL) > 50);
    free(rgb);
    double neg[3] = {-1, -2, 0};
    ml_series all_bad = {.x = neg, .y = neg, .n = 3};
    rgb = render("plot_log_empty.png", &lc, &all_bad, 1, &w, &h);
    if (rgb) CHECK_INT_EQ(count_tinted(rgb, w, h), 0);
    free(rgb);

    /* a fixed range clips points far outside without hanging */
    double far[3] = {-1e300, 0.5, 1e300};
    ml_series clip = {.x = xs, .y = far, .n = 3, .style = ML_PLOT_DASHED};
    rgb = render("plot_clip.png", &(ml_chart){.y_min = 0, .y_max = 1}, &clip, 1, &w, &h);
    CHECK(rgb != NULL);
    free(rgb);

    /* long text and non-ASCII bytes are cut or replaced, not overflowed */
    char longtxt[2000];
    memset(longtxt, 'W', sizeof longtxt - 1);
    longtxt[sizeof longtxt - 1] = '\0';
    ml_series lab = {.label = longtxt, .y = up, .n = N};
    ml_chart tc = {.title = longtxt, .xlabel = longtxt, .ylabel = "\xc3\xa9t\xc3\xa9 \t\n",
                   .width = 160, .height = 120};
    rgb = render("plot_text.png", &tc, &lab, 1, &w, &h);
    CHECK(rgb != NULL);
    free(rgb);
}

static void test_huge_n(void) {
    int n = 100000;
    double *x = malloc(sizeof(double) * n), *y = malloc(sizeof(double) * n);
    ml_rng r;
    ml_rng_seed(&r, 7);
    for (int i = 0; i < n; i++) x[i] = i, y[i] = exp(-i / 3e4) + 0.1 * ml_rng_normal(&r);
    ml_series s[2] = {{.label = "noisy", .x = x, .y = y, .n = n},
                      {.label = "markers", .x = x, .y = y, .n = n, .style = ML_PLOT_MARKERS}};
    ml_chart c = {.log_x = 1};
    int w, h;
    double t0 = ml_test_cpu_seconds();
    uint8_t *rgb = render("plot_huge.png", &c, s, 2, &w, &h);
    double dt = ml_test_cpu_seconds() - t0;
    CHECK(rgb != NULL);
    printf("  2 x 100000 points: %.2f s of CPU\n", dt);
    CHECK(dt < 10.0); /* ~0.5 s here; only a hang or quadratic blow-up fails */
    free(rgb);
    free(x);
    free(y);
}

static void test_bad_arguments(void) {
    char err[256];
    double y[2] = {1, 2};
    ml_series ok = {.y = y, .n = 2};
    const char *p = tmp_path("plot_bad.png");
    CHECK_INT_EQ(ml_plot_png(NULL, NULL, &ok, 1, err, sizeof err), ML_ERR_ARG);
    CHECK_INT_EQ(ml_plot_png(p, NULL, NULL, 1, err, sizeof err), ML_ERR_ARG);
    CHECK_INT_EQ(ml_plot_png(p, &(ml_chart){.width = 100, .height = 50}, &ok, 1, err, sizeof err),
                 ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "100x50");
    ml_series bad = {.label = "half band", .y = y, .n = 2, .y_lo = y};
    CHECK_INT_EQ(ml_plot_png(p, NULL, &bad, 1, err, sizeof err), ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "half band");
    bad = (ml_series){.y = y, .n = 2, .style = 9};
    CHECK_INT_EQ(ml_plot_png(p, NULL, &bad, 1, err, sizeof err), ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "style");
    bad = (ml_series){.n = 2};
    CHECK_INT_EQ(ml_plot_png(p, NULL, &bad, 1, err, sizeof err), ML_ERR_ARG);
    ml_chart lc = {.log_y = 1, .y_min = -1, .y_max = 1};
    CHECK_INT_EQ(ml_plot_png(p, &lc, &ok, 1, err, sizeof err), ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "log");
    CHECK(!file_exists(p));
}

static void test_unwritable_path(void) {
    char err[256] = "";
    double y[2] = {1, 2};
    ml_series s = {.y = y, .n = 2};
    const char *p = "/nonexistent-dir-ml/sub/chart.png";
    CHECK_INT_EQ(ml_plot_png(p, NULL, &s, 1, err, sizeof err), ML_ERR_IO);
    CHECK_STR_CONTAINS(err, p);
    CHECK(strchr(err, '\n') == NULL);
    /* a directory in the way of the final name: the temp file is removed */
    const char *d = tmp_path("plot_is_a_dir.png");
    mkdir(d, 0755);
    CHECK_INT_EQ(ml_plot_png(d, NULL, &s, 1, err, sizeof err), ML_ERR_IO);
    CHECK_STR_CONTAINS(err, d);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", d, (long)getpid()); /* the atomic writer\'s temp */
    CHECK(!file_exists(tmp));
    rmdir(d);
}

/* The rename replaces an existing file whole, and the same input gives the
 * same bytes. */
static void test_overwrite_and_determinism(void) {
    ml_series s = {.label = "a", .x = xs, .y = up, .n = N, .y_lo = lo, .y_hi = hi};
    const char *p = tmp_path("plot_det.png");
    char err[256];
    FILE *f = fopen(p, "wb");
    if (f) fputs("old contents", f), fclose(f);
    CHECK_INT_EQ(ml_plot_png(p, NULL, &s, 1, err, sizeof err), ML_OK);
    size_t n1 = 0, n2 = 0;
    uint8_t *a = (uint8_t *)ml_test_slurp(p, &n1);
    CHECK_INT_EQ(ml_plot_png(p, NULL, &s, 1, err, sizeof err), ML_OK);
    uint8_t *b = (uint8_t *)ml_test_slurp(p, &n2);
    CHECK(a && b && n1 == n2 && n1 > 100 && memcmp(a, b, n1) == 0);
    free(a);
    free(b);
}

/* Every allocation failing in turn gives ML_ERR_NOMEM and no stray file. */
static void test_alloc_failure(void) {
    ml_series s = {.label = "a", .x = xs, .y = up, .n = N};
    const char *p = tmp_path("plot_oom.png");
    char err[256], tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", p, (long)getpid()); /* the atomic writer\'s temp */
    remove(p);
    int k, ok = 0;
    for (k = 1; k < 20 && !ok; k++) {
        ml_alloc_fail_after((uint64_t)k);
        ml_status st = ml_plot_png(p, NULL, &s, 1, err, sizeof err);
        ml_alloc_fail_after(0);
        if (st == ML_OK) ok = 1;
        else {
            CHECK_INT_EQ(st, ML_ERR_NOMEM);
            CHECK_STR_CONTAINS(err, "out of memory");
            CHECK(!file_exists(p) && !file_exists(tmp));
        }
    }
    CHECK(ok);
    CHECK(k > 2); /* at least one failure was exercised */
}

static void test_write_rgb_roundtrip(void) {
    int w = 37, h = 23;
    uint8_t *img = malloc(3 * (size_t)w * h);
    for (int i = 0; i < 3 * w * h; i++) img[i] = (uint8_t)(i * 7 + i / 5);
    const char *p = tmp_path("plot_rgb.png");
    char err[256];
    CHECK_INT_EQ(ml_plot_write_rgb(p, img, w, h, err, sizeof err), ML_OK);
    int rw, rh;
    uint8_t *back = png_decode(p, &rw, &rh);
    CHECK(back && rw == w && rh == h && memcmp(back, img, 3 * (size_t)w * h) == 0);
    free(back);
    free(img);
}

static int is_nice(double step) {
    double m = step / pow(10.0, floor(log10(step)));
    return fabs(m - 1) < 1e-9 || fabs(m - 2) < 1e-9 || fabs(m - 5) < 1e-9;
}

static void test_nice_ticks(void) {
    double t[32], step;
    const double ranges[][2] = {{0, 1},      {-0.04, 1.04}, {0, 97},  {-3.3, 7.1},  {1e-7, 3e-7},
                                {2e6, 9e6},  {0.5, 0.5001}, {-1, -0.2}, {123, 124}, {0, 1e300}};
    for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
        double a = ranges[r][0], b = ranges[r][1];
        int n = ml__nice_ticks(a, b, 5, t, 32, &step);
        CHECK(n >= 3 && n <= 11);
        CHECK(is_nice(step));
        for (int i = 0; i < n; i++) {
            CHECK(t[i] >= a - step * 1e-6 && t[i] <= b + step * 1e-6);
            CHECK_NEAR(t[i] / step, round(t[i] / step), 1e-6, 0);
        }
    }
    int n = ml__nice_ticks(0, 1, 5, t, 32, &step);
    CHECK_INT_EQ(n, 6);
    CHECK_NEAR(step, 0.2, 1e-12, 0);
    CHECK_INT_EQ(ml__nice_ticks(1, 1, 5, t, 32, &step), 0);
    CHECK_INT_EQ(ml__nice_ticks(NAN, 1, 5, t, 32, &step), 0);

    char buf[32];
    ml__format_tick(0.4, 0.2, buf, sizeof buf);
    CHECK(strcmp(buf, "0.4") == 0);
    ml__format_tick(20, 10, buf, sizeof buf);
    CHECK(strcmp(buf, "20") == 0);
    ml__format_tick(0.05, 0.05, buf, sizeof buf);
    CHECK(strcmp(buf, "0.05") == 0);
    ml__format_tick(1.5e-5, 5e-6, buf, sizeof buf);
    CHECK(strcmp(buf, "1.5e-5") == 0);
    ml__format_tick(4e6, 1e6, buf, sizeof buf);
    CHECK(strcmp(buf, "4e6") == 0);
    ml__format_tick(1e5, 0, buf, sizeof buf); /* log axis */
    CHECK(strcmp(buf, "1e5") == 0);
    ml__format_tick(0.01, 0, buf, sizeof buf);
    CHECK(strcmp(buf, "0.01") == 0);
    ml__format_tick(2e-5, 0, buf, sizeof buf);
    CHECK(strcmp(buf, "2e-5") == 0);
}

/* Trial numbers: a chart of 5 trials gets ticks 0, 1, 2, 3, 4, never 0.5. */
static void test_integer_ticks(void) {
    double t[32], step;
    int n = ml__nice_ticks_int(-0.16, 4.16, 5, t, 32, &step);
    CHECK_INT_EQ(n, 5);
    CHECK_NEAR(step, 1.0, 0, 0);
    for (int i = 0; i < n; i++) CHECK_NEAR(t[i], i, 0, 0);
    n = ml__nice_ticks_int(-4, 104, 5, t, 32, &step); /* wide ranges keep their nice step */
    CHECK_NEAR(step, 20.0, 0, 0);
    CHECK_INT_EQ(n, 6);
    CHECK_INT_EQ(ml__nice_ticks_int(1, 1, 5, t, 32, &step), 0);
}

/* search.png: failed trials get markers of their own series (palette colour
 * after the rungs and the best-so-far line); none when nothing failed. */
static void test_search_chart_marks_failures(void) {
    enum { T = 6 };
    double score[2 * T] = {0.5, 0.6, NAN, 0.55, NAN, 0.7, NAN, 0.65, NAN, NAN, NAN, 0.75};
    int failed[T] = {0, 0, 1, 0, 1, 0}, none[T] = {0}, iters[2] = {10, 30};
    ml_search_chart c = {.strategy = "random", .metric = "accuracy", .higher_better = 1, .n_trials = T, .n_rungs = 2,
                         .rung_iters = iters, .score = score, .failed = failed};
    char err[256];
    const char *a = tmp_path("search_failed.png");
    CHECK_INT_EQ(ml_search_plot(a, &c, err, sizeof err), ML_OK);
    int w, h;
    uint8_t *rgb = png_decode(a, &w, &h);
    uint32_t fail_colour = ml_plot_palette(3); /* rungs 0, 1, best so far, then failed */
    if (rgb) CHECK(count_colour(rgb, w, h, fail_colour, NULL, NULL) > 20);
    free(rgb);
    c.failed = none;
    const char *b = tmp_path("search_ok.png");
    CHECK_INT_EQ(ml_search_plot(b, &c, err, sizeof err), ML_OK);
    rgb = png_decode(b, &w, &h);
    if (rgb) CHECK_INT_EQ(count_colour(rgb, w, h, fail_colour, NULL, NULL), 0);
    free(rgb);
    c.n_rungs = 0;
    CHECK_INT_EQ(ml_search_plot(b, &c, err, sizeof err), ML_ERR_ARG);
}

static void test_font(void) {
    const uint8_t *space = ml__font_glyph(' ');
    int blank = 1;
    for (int r = 0; r < ML__FONT_H; r++) blank &= space[r] == 0;
    CHECK(blank);
    for (int c = 33; c < 127; c++) {
        const uint8_t *g = ml__font_glyph((unsigned char)c);
        int ink = 0, wide = 0;
        for (int r = 0; r < ML__FONT_H; r++) ink |= g[r], wide |= g[r] & ~0x1F;
        if (!ink || wide) ML_FAIL_AT("glyph '%c': %s", c, ink ? "wider than 5" : "empty");
        for (int d = 33; d < c; d++)
            if (!memcmp(g, ml__font_glyph((unsigned char)d), ML__FONT_H))
                ML_FAIL_AT("glyphs '%c' and '%c' are identical", d, c);
    }
    CHECK(ml__font_glyph(200) == ml__font_glyph('?'));
    CHECK_INT_EQ(ml__text_width("abc", 2), (6 * 3 - 1) * 2);
    CHECK_INT_EQ(ml__text_width("\xc3\xa9", 1), 5); /* one UTF-8 character, one cell */
    CHECK_INT_EQ(ml__text_width("", 2), 0);
}

/* Up to eight long run labels (RL plots: "pretrain (500 it, rate 0.05)")
 * must each be drawn whole and inside the image, on no other label; on a
 * chart too small for that, still inside the image. */
#define LEGEND_MAX 8
static struct {
    int n;
    char text[LEGEND_MAX][64];
    int box[LEGEND_MAX][4];
} legend_seen;

static void record_legend(const char *label, int x, int y, int w, int h) {
    if (legend_seen.n >= LEGEND_MAX) return;
    snprintf(legend_seen.text[legend_seen.n], sizeof legend_seen.text[0], "%s", label);
    int *b = legend_seen.box[legend_seen.n++];
    b[0] = x, b[1] = y, b[2] = x + w, b[3] = y + h;
}

static void test_legend_fits(void) {
    static const char *names[LEGEND_MAX] = {"maml-trpo (500 it)", "maml-adam (500 it)",
                                            "pretrain (500 it, rate 0.05)", "random (0 it, rate 0.1)",
                                            "oracle (255 it, rate 0.1)", "maml-trpo (1000 it, rate 0.02)",
                                            "fomaml-adam (500 it)", "reptile (500 it, rate 0.3)"};
    static double y[LEGEND_MAX][N], ylo[LEGEND_MAX][N], yhi[LEGEND_MAX][N];
    ml_series s[LEGEND_MAX];
    for (int k = 0; k < LEGEND_MAX; k++) {
        for (int i = 0; i < N; i++) {
            y[k][i] = -100 + 10 * k + 0.5 * i * (k % 3);
            ylo[k][i] = y[k][i] - 5, yhi[k][i] = y[k][i] + 5;
        }
        s[k] = (ml_series){names[k], xs, y[k], N, ylo[k], yhi[k], ML_PLOT_LINE_MARKERS, ML_PLOT_ERR_BARS};
    }
    const int sizes[3][2] = {{800, 500}, {600, 600}, {333, 211}};
    ml__plot_legend_probe = record_legend;
    for (int n = 1; n <= LEGEND_MAX; n++)
        for (int z = 0; z < 3; z++) {
            ml_chart c = {.title = "nav2d: return vs adaptation steps (40 test tasks, 95% CI)",
                          .xlabel = "adaptation steps", .ylabel = "average return",
                          .width = sizes[z][0], .height = sizes[z][1]};
            memset(&legend_seen, 0, sizeof legend_seen);
            int w, h;
            uint8_t *rgb = render("plot_legend.png", &c, s, n, &w, &h);
            free(rgb);
            int whole = z < 2; /* the full-size charts show every label whole */
            if (whole) CHECK_INT_EQ(legend_seen.n, n);
            for (int i = 0; i < legend_seen.n; i++) {
                const int *b = legend_seen.box[i];
                CHECK(b[0] >= 0 && b[1] >= 0 && b[2] <= sizes[z][0] && b[3] <= sizes[z][1]);
                if (whole && strcmp(legend_seen.text[i], names[i])) ML_FAIL_AT("legend \"%s\" for \"%s\"", legend_seen.text[i], names[i]);
                for (int j = 0; j < i; j++) {
                    const int *o = legend_seen.box[j];
                    CHECK(b[2] <= o[0] || o[2] <= b[0] || b[3] <= o[1] || o[3] <= b[1]);
                }
            }
        }
    ml__plot_legend_probe = NULL;
}

int main(void) {
    mkdir(ml_test_tmp_dir(), 0755);
    fill_data();
    ML_RUN(test_png_structure);
    ML_RUN(test_series_where_the_data_is);
    ML_RUN(test_error_band_and_bars);
    ML_RUN(test_edge_cases);
    ML_RUN(test_huge_n);
    ML_RUN(test_bad_arguments);
    ML_RUN(test_unwritable_path);
    ML_RUN(test_overwrite_and_determinism);
    ML_RUN(test_alloc_failure);
    ML_RUN(test_write_rgb_roundtrip);
    ML_RUN(test_nice_ticks);
    ML_RUN(test_integer_ticks);
    ML_RUN(test_search_chart_marks_failures);
    ML_RUN(test_font);
    ML_RUN(test_legend_fits);
    return ml_test_summary();
}
