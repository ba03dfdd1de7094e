/* lake.c: Lake et al.'s 20 within-alphabet 20-way one-shot runs
 * (all_runs.zip or its folder), decoded the same way as Omniglot plus the
 * full-resolution stroke masks the Modified Hausdorff Distance baseline needs.
 *
 * Not here: any classifier or the error rate. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "images_internal.h"

void ml_lake_runs_free(ml_lake_runs *r) {
    if (!r) return;
    ml_free(r->train_x);
    ml_free(r->test_x);
    ml_free(r->test_label);
    ml_free(r->train_raw);
    ml_free(r->test_raw);
    memset(r, 0, sizeof *r);
}

static const char *base_name(const char *p, size_t len, size_t *blen) {
    size_t i = len;
    while (i > 0 && p[i - 1] != '/' && p[i - 1] != '\\') i--;
    *blen = len - i;
    return p + i;
}

/* PNG entries directly in prefix + sub ("training/" or "test/"): [*first, *first + count). */
static int list_pngs(const ml__src *s, const char *prefix, size_t plen, const char *sub, int *first) {
    size_t sl = strlen(sub);
    int count = 0;
    *first = -1;
    for (int i = 0; i < s->n; i++) {
        const char *nm = s->e[i].name;
        if (s->e[i].is_dir || strncmp(nm, prefix, plen) != 0 || strncmp(nm + plen, sub, sl) != 0) continue;
        if (strchr(nm + plen + sl, '/') || !ml__has_png_suffix(nm)) continue;
        if (*first < 0) *first = i;
        count++;
    }
    return count;
}

/* Parses class_labels.txt of one run into labels[n_test]. */
static ml_status parse_labels(const ml__src *s, int entry, const char *txt, size_t len, int tr0, int n_train,
                              int te0, int n_test, int32_t *labels, char *err, size_t errlen) {
    for (int j = 0; j < n_test; j++) labels[j] = -1;
    size_t pos = 0;
    int line = 0;
    while (pos < len) {
        size_t end = pos;
        while (end < len && txt[end] != '\n') end++;
        line++;
        const char *tok[2];
        size_t tl[2];
        int nt = 0;
        size_t q = pos;
        while (q < end && nt < 3) {
            while (q < end && isspace((unsigned char)txt[q])) q++;
            if (q >= end) break;
            size_t t0 = q;
            while (q < end && !isspace((unsigned char)txt[q])) q++;
            if (nt < 2) tok[nt] = txt + t0, tl[nt] = q - t0;
            nt++;
        }
        if (nt != 0 && nt != 2) {
            ml__errf(err, errlen, "%s: %s:%d: expected \"test/itemMM.png training/classKK.png\"", s->path,
                        s->e[entry].name, line);
            return ML_ERR_FORMAT;
        }
        if (nt == 2) {
            size_t b0l, b1l;
            const char *b0 = base_name(tok[0], tl[0], &b0l), *b1 = base_name(tok[1], tl[1], &b1l);
            int ti = -1, ci = -1;
            for (int j = 0; j < n_test && ti < 0; j++) {
                size_t l;
                const char *b = base_name(s->e[te0 + j].name, strlen(s->e[te0 + j].name), &l);
                if (l == b0l && memcmp(b, b0, l) == 0) ti = j;
            }
            for (int j = 0; j < n_train && ci < 0; j++) {
                size_t l;
                const char *b = base_name(s->e[tr0 + j].name, strlen(s->e[tr0 + j].name), &l);
                if (l == b1l && memcmp(b, b1, l) == 0) ci = j;
            }
            if (ti < 0 || ci < 0) {
                ml__errf(err, errlen, "%s: %s:%d: no image %.*s in the run", s->path, s->e[entry].name, line,
                            ti < 0 ? (int)b0l : (int)b1l, ti < 0 ? b0 : b1);
                return ML_ERR_FORMAT;
            }
            if (labels[ti] >= 0) {
                ml__errf(err, errlen, "%s: %s:%d: %.*s is labelled twice", s->path, s->e[entry].name, line,
                            (int)b0l, b0);
                return ML_ERR_FORMAT;
            }
            labels[ti] = ci;
        }
        pos = end + 1;
    }
    for (int j = 0; j < n_test; j++)
        if (labels[j] < 0) {
            ml__errf(err, errlen, "%s: %s: test image %s has no label", s->path, s->e[entry].name,
                        s->e[te0 + j].name);
            return ML_ERR_FORMAT;
        }
    return ML_OK;
}

static int is_labels_file(const ml__src_entry *e, size_t *plen) {
    static const char key[] = "class_labels.txt";
    size_t n = strlen(e->name), k = sizeof key - 1;
    if (e->is_dir || n < k || strcmp(e->name + n - k, key) != 0 || (n > k && e->name[n - k - 1] != '/'))
        return 0;
    *plen = n - k;
    return 1;
}

ml_status ml_lake_runs_load(const char *path, const ml_image_options *opt, ml_lake_runs *out, char *err,
                            size_t errlen) {
    if (!out) return ML_ERR_ARG;
    memset(out, 0, sizeof *out);
    const int S = opt && opt->size > 0 ? opt->size : ML_IMAGE_DEFAULT_SIZE;
    ml_invert_mode inv = opt && opt->invert != ML_INVERT_DEFAULT ? opt->invert : ML_INVERT_YES;
    if (S > 4096) {
        ml__errf(err, errlen, "image size %d is too large (at most 4096)", S);
        return ML_ERR_ARG;
    }
    ml__src src;
    ml_status st = ml__src_open(&src, path, opt, err, errlen);
    if (st != ML_OK) return st;
    ml_lake_runs r;
    memset(&r, 0, sizeof r);
    r.size = S;
    /* First pass: runs and their sizes, so every buffer is allocated once. */
    for (int i = 0; i < src.n && st == ML_OK; i++) {
        size_t pl;
        if (!is_labels_file(&src.e[i], &pl)) continue;
        int tr0, te0;
        int ntr = list_pngs(&src, src.e[i].name, pl, "training/", &tr0);
        int nte = list_pngs(&src, src.e[i].name, pl, "test/", &te0);
        if (ntr == 0 || nte == 0) {
            ml__errf(err, errlen, "%s: %.*s: a run needs training/*.png and test/*.png", path, (int)pl,
                        src.e[i].name);
            st = ML_ERR_FORMAT;
        } else if (r.n_runs == 0) {
            r.n_train = ntr, r.n_test = nte;
        } else if (ntr != r.n_train || nte != r.n_test) {
            ml__errf(err, errlen, "%s: %.*s has %d training and %d test images, the first run %d and %d",
                        path, (int)pl, src.e[i].name, ntr, nte, r.n_train, r.n_test);
            st = ML_ERR_FORMAT;
        }
        r.n_runs++;
    }
    if (st == ML_OK && r.n_runs == 0) {
        ml__errf(err, errlen, "%s: no runs found (expected runNN/class_labels.txt, training/, test/)", path);
        st = ML_ERR_FORMAT;
    }
    size_t plane = (size_t)S * S;
    if (st == ML_OK) {
        size_t ntr = (size_t)r.n_runs * r.n_train, nte = (size_t)r.n_runs * r.n_test;
        r.train_x = ml_malloc(sizeof(float) * plane * ntr);
        r.test_x = ml_malloc(sizeof(float) * plane * nte);
        r.test_label = ml_malloc(sizeof(int32_t) * nte);
        if (!r.train_x || !r.test_x || !r.test_label) {
            ml__errf(err, errlen, "%s: out of memory", path);
            st = ML_ERR_NOMEM;
        }
    }
    ml__img_decoder dec;
    memset(&dec, 0, sizeof dec);
    dec.max_pixels = src.max_pixels;
    uint8_t *buf = NULL;
    size_t cap = 0, len = 0;
    char why[256];
    int run = 0;
    for (int i = 0; i < src.n && st == ML_OK; i++) {
        size_t pl;
        if (!is_labels_file(&src.e[i], &pl)) continue;
        int tr0, te0;
        list_pngs(&src, src.e[i].name, pl, "training/", &tr0);
        list_pngs(&src, src.e[i].name, pl, "test/", &te0);
        st = ml__src_read(&src, i, &buf, &cap, &len, err, errlen);
        if (st == ML_OK)
            st = parse_labels(&src, i, (const char *)buf, len, tr0, r.n_train, te0, r.n_test,
                              r.test_label + (size_t)run * r.n_test, err, errlen);
        int total = r.n_train + r.n_test;
        for (int j = 0; j < total && st == ML_OK; j++) {
            int is_train = j < r.n_train;
            int e = is_train ? tr0 + j : te0 + (j - r.n_train);
            size_t row = (size_t)run * (is_train ? r.n_train : r.n_test) + (size_t)(is_train ? j : j - r.n_train);
            st = ml__src_read(&src, e, &buf, &cap, &len, err, errlen);
            if (st != ML_OK) break;
            if (!r.train_raw) {
                /* The first image fixes the full size (105 x 105 for Omniglot). */
                int w = 0, h = 0;
                st = ml__png_gray8(buf, len, dec.max_pixels, &dec.gray, &dec.gray_cap, &w, &h, why, sizeof why);
                if (st == ML_OK) {
                    r.raw_h = h, r.raw_w = w;
                    r.train_raw = ml_malloc((size_t)w * h * (size_t)r.n_runs * r.n_train);
                    r.test_raw = ml_malloc((size_t)w * h * (size_t)r.n_runs * r.n_test);
                    if (!r.train_raw || !r.test_raw) {
                        st = ML_ERR_NOMEM;
                        snprintf(why, sizeof why, "out of memory for full-size masks");
                    }
                }
            }
            if (st == ML_OK) {
                size_t rp = (size_t)r.raw_h * r.raw_w;
                st = ml__img_decode(&dec, buf, len, inv, S, (is_train ? r.train_x : r.test_x) + row * plane,
                                    (is_train ? r.train_raw : r.test_raw) + row * rp, &r.raw_h, &r.raw_w, why,
                                    sizeof why);
            }
            if (st != ML_OK) ml__errf(err, errlen, "%s: %s: %s", path, src.e[e].name, why);
        }
        run++;
    }
    ml_free(buf);
    ml__img_decoder_free(&dec);
    ml__src_close(&src);
    if (st != ML_OK) {
        ml_lake_runs_free(&r);
        return st;
    }
    *out = r;
    return ML_OK;
}
