/* png.c: PNG to gray bytes (libspng), exact area resizing, and the one
 * decode-invert-resize step every image reader uses.
 *
 * Not here: finding files (source.c) or any knowledge of datasets. */
#include <math.h>
#include <pthread.h>
#include <spng.h>
#include <stdio.h>
#include <string.h>

#include "images_internal.h"


/* Grows *buf to at least `need` bytes; contents are not kept. */
static int grow(void **buf, size_t *cap, size_t need) {
    if (*cap >= need && *buf) return 1;
    ml_free(*buf);
    *buf = ml_malloc(need ? need : 1);
    *cap = *buf ? need : 0;
    return *buf != NULL;
}

/* ---- PNG ---------------------------------------------------------------------- */


/* bit_lut[b] = the eight 1-bit pixels of byte b as 0 / 255, high bit first. */
static uint8_t bit_lut[256][8];
static pthread_once_t bit_lut_once = PTHREAD_ONCE_INIT;
static void init_bit_lut(void) {
    for (int b = 0; b < 256; b++)
        for (int k = 0; k < 8; k++) bit_lut[b][k] = (b >> (7 - k)) & 1 ? 255 : 0;
}

static void png_fail(char *why, size_t whylen, int r) {
    int cut = r == SPNG_IO_EOF || r == SPNG_EOF;
    ml__errf(why, whylen, "PNG: %s%s", spng_strerror(r), cut ? " (file truncated?)" : "");
}

ml_status ml__png_gray8(const void *png, size_t len, int64_t max_pixels, uint8_t **buf, size_t *cap, int *w,
                        int *h, char *why, size_t whylen) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (!png || len < 8 || memcmp(png, sig, 8) != 0) {
        ml__errf(why, whylen, "not a PNG file (bad signature)");
        return ML_ERR_FORMAT;
    }
    spng_ctx *ctx = spng_ctx_new(0);
    if (!ctx) {
        ml__errf(why, whylen, "out of memory");
        return ML_ERR_NOMEM;
    }
    ml_status st = ML_OK;
    struct spng_ihdr ih;
    if (max_pixels <= 0) max_pixels = ML_IMAGE_DEFAULT_MAX_PIXELS;
    /* No side may exceed the pixel limit (a 1-pixel-high strip is an image
     * too); spng's own cap is 2^31 - 1. */
    uint32_t side = max_pixels < INT32_MAX ? (uint32_t)max_pixels : (uint32_t)INT32_MAX;
    int r = spng_set_png_buffer(ctx, png, len);
    if (!r) r = spng_set_image_limits(ctx, side, side);
    if (!r) r = spng_set_chunk_limits(ctx, (size_t)1 << 26, (size_t)1 << 26);
    if (!r) r = spng_get_ihdr(ctx, &ih);
    if (r == SPNG_EUSER_WIDTH || r == SPNG_EUSER_HEIGHT) {
        ml__errf(why, whylen, "PNG: %s (more than the limit of %lld pixels; raise it with ML_MAX_IMAGE_PIXELS)",
                 spng_strerror(r), (long long)max_pixels);
        spng_ctx_free(ctx);
        return ML_ERR_FORMAT;
    }
    if (r) {
        png_fail(why, whylen, r);
        spng_ctx_free(ctx);
        return ML_ERR_FORMAT;
    }
    /* From the header alone: decoding a 10000 x 10000 image takes 500 MB. */
    if ((int64_t)ih.width * ih.height > max_pixels) {
        ml__errf(why, whylen, "PNG: image is %ux%u, more than the limit of %lld pixels (raise it with "
                 "ML_MAX_IMAGE_PIXELS)", ih.width, ih.height, (long long)max_pixels);
        spng_ctx_free(ctx);
        return ML_ERR_FORMAT;
    }
    /* Gray up to 8 bits is decoded as stored (SPNG_FMT_PNG: packed rows) and
     * unpacked here: spng's own per-pixel G8 path costs 3x more on Omniglot's
     * 1-bit images. Everything else goes through RGBA8 and is mixed down
     * here, which also resolves palettes and 16-bit samples. */
    int direct = ih.color_type == SPNG_COLOR_TYPE_GRAYSCALE && ih.bit_depth <= 8;
    int fmt = direct ? SPNG_FMT_PNG : SPNG_FMT_RGBA8;
    size_t out_len = 0;
    r = spng_decoded_image_size(ctx, fmt, &out_len);
    if (r) {
        png_fail(why, whylen, r);
        spng_ctx_free(ctx);
        return ML_ERR_FORMAT;
    }
    size_t npix = (size_t)ih.width * ih.height;
    /* Packed rows are unpacked into the same buffer from its end, so it holds
     * the packed copy at offset npix (room for both). */
    size_t packed_at = direct && ih.bit_depth < 8 ? npix : 0;
    if (!grow((void **)buf, cap, packed_at + (out_len > npix ? out_len : npix))) {
        ml__errf(why, whylen, "out of memory (%zu bytes)", out_len);
        spng_ctx_free(ctx);
        return ML_ERR_NOMEM;
    }
    r = spng_decode_image(ctx, *buf + packed_at, out_len, fmt, direct ? 0 : SPNG_DECODE_TRNS);
    if (r) {
        png_fail(why, whylen, r);
        st = ML_ERR_FORMAT;
    } else if (packed_at) {
        pthread_once(&bit_lut_once, init_bit_lut);
        /* Rows of ceil(w * d / 8) bytes, leftmost pixel in the high bits;
         * values scale to 0..255 (1 bit: x255, 2: x85, 4: x17). */
        const int d = ih.bit_depth, per = 8 / d, mask = (1 << d) - 1, mul = 255 / mask;
        const size_t row_bytes = ((size_t)ih.width * d + 7) / 8;
        uint8_t *o = *buf;
        for (uint32_t y = 0; y < ih.height; y++) {
            const uint8_t *in = *buf + packed_at + y * row_bytes;
            uint32_t x = 0;
            if (d == 1) { /* Omniglot: eight pixels per byte from a table */
                for (; x + 8 <= ih.width; x += 8, o += 8) memcpy(o, bit_lut[in[x / 8]], 8);
                if (x < ih.width) {
                    memcpy(o, bit_lut[in[x / 8]], ih.width - x);
                    o += ih.width - x;
                }
                continue;
            }
            for (size_t b = 0; b < row_bytes; b++) {
                const unsigned v = in[b];
                for (int k = 0; k < per && x < ih.width; k++, x++)
                    *o++ = (uint8_t)(((v >> (8 - d * (k + 1))) & (unsigned)mask) * (unsigned)mul);
            }
        }
    } else if (!direct) {
        /* In place: pixel i's 4 bytes are read before byte i is written. */
        uint8_t *p = *buf;
        for (size_t i = 0; i < npix; i++) {
            const uint8_t *q = p + 4 * i;
            uint32_t g = (299u * q[0] + 587u * q[1] + 114u * q[2] + 500u) / 1000u;
            uint32_t a = q[3];
            p[i] = (uint8_t)((g * a + 255u * (255u - a) + 127u) / 255u); /* over white */
        }
    }
    spng_ctx_free(ctx);
    if (st == ML_OK) {
        *w = (int)ih.width;
        *h = (int)ih.height;
    }
    return st;
}

ml_status ml_png_decode_gray8(const void *png, size_t len, const char *name, uint8_t **pixels,
                              int *width, int *height, char *err, size_t errlen) {
    if (!pixels || !width || !height) return ML_ERR_ARG;
    *pixels = NULL;
    *width = *height = 0;
    uint8_t *buf = NULL;
    size_t cap = 0;
    char why[256];
    int64_t max_pixels = 0;
    ml_status st = ml_image_limits(NULL, NULL, &max_pixels, why, sizeof why);
    if (st == ML_OK) st = ml__png_gray8(png, len, max_pixels, &buf, &cap, width, height, why, sizeof why);
    if (st != ML_OK) {
        ml_free(buf);
        *width = *height = 0;
        ml__errf(err, errlen, "%s: %s", name ? name : "(memory)", why);
        return st;
    }
    *pixels = buf;
    return ML_OK;
}

/* ---- exact area resize ----------------------------------------------------------
 * Output pixel j covers source interval [j * n / m, (j + 1) * n / m). Scaled by
 * m, every boundary is an integer, so the overlap with source pixel i,
 * min((j+1) n, (i+1) m) - max(j n, i m), is exact, and its weight is that
 * overlap / n. The taps of one output sum to 1 and every source pixel's
 * weights sum to m / n, which is why the mean is preserved. */

static ml_status axis_taps(int n, int m, int *taps, int32_t **start, float **w) {
    /* An interval of n/m pixels touches at most ceil(n/m) + 1 of them. The
     * window is moved left at the far edge (with zero weights in front), so
     * every tap reads inside the source and the loops need no bounds tests. */
    int t = (n + m - 1) / m + 1;
    if (t > n) t = n;
    *taps = t;
    *start = ml_malloc(sizeof(int32_t) * (size_t)m);
    *w = ml_calloc((size_t)m * (size_t)t, sizeof(float));
    if (!*start || !*w) return ML_ERR_NOMEM;
    for (int j = 0; j < m; j++) {
        int64_t lo = (int64_t)j * n, hi = (int64_t)(j + 1) * n; /* scaled by m */
        int i0 = (int)(lo / m);
        int s0 = i0 + t > n ? n - t : i0;
        (*start)[j] = s0;
        for (int i = i0; i < n && i < s0 + t; i++) {
            int64_t a = lo > (int64_t)i * m ? lo : (int64_t)i * m;
            int64_t b = hi < (int64_t)(i + 1) * m ? hi : (int64_t)(i + 1) * m;
            if (b > a) (*w)[(size_t)j * t + (i - s0)] = (float)((double)(b - a) / (double)n);
        }
    }
    return ML_OK;
}

void ml__area_plan_free(ml__area_plan *p) {
    if (!p) return;
    ml_free(p->y0);
    ml_free(p->x0);
    ml_free(p->wy);
    ml_free(p->wx);
    ml_free(p->tmp);
    memset(p, 0, sizeof *p);
}

ml_status ml__area_plan_prepare(ml__area_plan *p, int sh, int sw, int dh, int dw) {
    if (sh <= 0 || sw <= 0 || dh <= 0 || dw <= 0) return ML_ERR_ARG;
    if (p->tmp && p->sh == sh && p->sw == sw && p->dh == dh && p->dw == dw) return ML_OK;
    ml__area_plan_free(p);
    p->sh = sh, p->sw = sw, p->dh = dh, p->dw = dw;
    ml_status st = axis_taps(sh, dh, &p->ty, &p->y0, &p->wy);
    if (st == ML_OK) st = axis_taps(sw, dw, &p->tx, &p->x0, &p->wx);
    if (st == ML_OK) {
        p->tmp = ml_malloc(sizeof(float) * (size_t)dh * (size_t)sw);
        if (!p->tmp) st = ML_ERR_NOMEM;
    }
    if (st != ML_OK) ml__area_plan_free(p);
    return st;
}

/* src [sh, sw] -> tmp [dh, sw] -> dst [dh, dw]. Rows first: that pass adds
 * whole contiguous rows (it vectorises) and shrinks the data before the
 * strided column pass. */
void ml__area_apply(const ml__area_plan *p, const float *src, float *dst) {
    for (int j = 0; j < p->dh; j++) {
        const float *w = p->wy + (size_t)j * p->ty;
        const float *s = src + (size_t)p->y0[j] * p->sw;
        float *t = p->tmp + (size_t)j * p->sw;
        for (int c = 0; c < p->sw; c++) t[c] = 0.0f;
        for (int k = 0; k < p->ty; k++) {
            const float wk = w[k];
            if (wk == 0.0f) continue;
            const float *sk = s + (size_t)k * p->sw;
            for (int c = 0; c < p->sw; c++) t[c] += wk * sk[c];
        }
    }
    for (int r = 0; r < p->dh; r++) {
        const float *t = p->tmp + (size_t)r * p->sw;
        float *d = dst + (size_t)r * p->dw;
        for (int j = 0; j < p->dw; j++) {
            const float *w = p->wx + (size_t)j * p->tx;
            const float *tj = t + p->x0[j];
            float acc = 0.0f;
            for (int k = 0; k < p->tx; k++) acc += w[k] * tj[k];
            d[j] = acc;
        }
    }
}

ml_status ml_image_resize_area(const float *src, int sh, int sw, float *dst, int dh, int dw) {
    if (!src || !dst) return ML_ERR_ARG;
    ml__area_plan p;
    memset(&p, 0, sizeof p);
    ml_status st = ml__area_plan_prepare(&p, sh, sw, dh, dw);
    if (st != ML_OK) return st;
    ml__area_apply(&p, src, dst);
    ml__area_plan_free(&p);
    return ML_OK;
}

/* ---- decode + invert + resize ------------------------------------------------------ */

void ml__img_decoder_free(ml__img_decoder *d) {
    if (!d) return;
    ml_free(d->gray);
    ml_free(d->f);
    ml__area_plan_free(&d->plan);
    memset(d, 0, sizeof *d);
}

ml_status ml__img_decode(ml__img_decoder *d, const void *png, size_t len, ml_invert_mode invert,
                         int S, float *dst, uint8_t *raw, int *raw_h, int *raw_w, char *why,
                         size_t whylen) {
    int w = 0, h = 0;
    ml_status st = ml__png_gray8(png, len, d->max_pixels, &d->gray, &d->gray_cap, &w, &h, why, whylen);
    if (st != ML_OK) return st;
    if (raw) {
        if (*raw_h == 0 && *raw_w == 0) {
            *raw_h = h;
            *raw_w = w;
        } else if (*raw_h != h || *raw_w != w) {
            ml__errf(why, whylen, "image is %dx%d, the others are %dx%d (full-size masks need one size)",
                        w, h, *raw_w, *raw_h);
            return ML_ERR_SHAPE;
        }
    }
    size_t npix = (size_t)w * h;
    if (!grow((void **)&d->f, &d->f_cap, npix * sizeof(float))) {
        ml__errf(why, whylen, "out of memory");
        return ML_ERR_NOMEM;
    }
    int inv = invert != ML_INVERT_NO;
    if (invert == ML_INVERT_AUTO) {
        /* Light background (the usual scan or drawing) means dark strokes. */
        uint64_t sum = 0;
        for (size_t i = 0; i < npix; i++) sum += d->gray[i];
        inv = 2 * sum > 255 * (uint64_t)npix;
    }
    const float k = 1.0f / 255.0f;
    for (size_t i = 0; i < npix; i++) {
        float v = (float)d->gray[i] * k;
        d->f[i] = inv ? 1.0f - v : v;
    }
    if (raw)
        for (size_t i = 0; i < npix; i++) raw[i] = d->f[i] >= 0.5f;
    st = ml__area_plan_prepare(&d->plan, h, w, S, S);
    if (st != ML_OK) {
        ml__errf(why, whylen, "out of memory");
        return st;
    }
    ml__area_apply(&d->plan, d->f, dst);
    return ML_OK;
}

void ml__rot90(const float *src, int S, int rot, float *dst) {
    rot &= 3;
    /* Counter-clockwise like numpy.rot90: dst[r][c] reads the source pixel that
     * lands there after `rot` quarter turns. */
    for (int r = 0; r < S; r++)
        for (int c = 0; c < S; c++) {
            int sr, sc;
            switch (rot) {
            case 0: sr = r, sc = c; break;
            case 1: sr = c, sc = S - 1 - r; break;
            case 2: sr = S - 1 - r, sc = S - 1 - c; break;
            default: sr = S - 1 - c, sc = r; break;
            }
            dst[(size_t)r * S + c] = src[(size_t)sr * S + sc];
        }
}
