/* omniglot.c: image sets from Omniglot zips / folders and from a user's
 * folder of class subfolders; their lifetime.
 *
 * Both readers turn their sources into one list of items (class key, image
 * name, where to read it), sort it, and hand it to build_set(), which
 * decodes each kept PNG exactly once. Not here: splits, episodes (episodes.c)
 * and Lake's runs (lake.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "images_internal.h"

/* One PNG found in a source. The strings point into the source's entry name
 * "<origin>/<alpha>/<cls>/<file>" (alpha may be empty for folders). */
typedef struct item {
    int src, entry;
    const char *alpha;
    size_t alpha_len;
    const char *cls;      /* class part after the alphabet */
    size_t cls_len;
    const char *file;     /* base name */
    const char *origin;   /* entry name start; origin_len bytes come before alpha */
    size_t origin_len;
} item;

static int cmp_span(const char *a, size_t na, const char *b, size_t nb) {
    int c = memcmp(a, b, na < nb ? na : nb);
    if (c) return c;
    return na < nb ? -1 : na > nb;
}

static int cmp_item(const void *pa, const void *pb) {
    const item *a = pa, *b = pb;
    int c = cmp_span(a->alpha, a->alpha_len, b->alpha, b->alpha_len);
    if (!c) c = cmp_span(a->cls, a->cls_len, b->cls, b->cls_len);
    if (!c) c = (a->src > b->src) - (a->src < b->src);
    if (!c) c = cmp_span(a->origin, a->origin_len, b->origin, b->origin_len);
    if (!c) c = strcmp(a->file, b->file);
    return c;
}

static int same_class(const item *a, const item *b) {
    return !cmp_span(a->alpha, a->alpha_len, b->alpha, b->alpha_len) &&
           !cmp_span(a->cls, a->cls_len, b->cls, b->cls_len);
}

static int same_origin(const item *a, const item *b) {
    return a->src == b->src && !cmp_span(a->origin, a->origin_len, b->origin, b->origin_len);
}

void ml_image_set_free(ml_image_set *s) {
    if (!s) return;
    ml_free(s->x);
    ml_free(s->y);
    ml_free(s->class_start);
    ml_free(s->class_alphabet);
    ml_free((void *)s->class_names);
    ml_free((void *)s->alphabet_names);
    ml_free((void *)s->image_names);
    ml_free(s->raw);
    ml_free(s->strings);
    ml_free(s->codes);
    ml_free(s->escapes);
    ml_free(s->escape_start);
    ml_free(s->palette);
    memset(s, 0, sizeof *s);
}

static int resolve_size(const ml_image_options *opt) {
    return opt && opt->size > 0 ? opt->size : ML_IMAGE_DEFAULT_SIZE;
}

/* Items are sorted, grouped by class and free of duplicates. */
static ml_status build_set(ml__src *srcs, const item *it, int64_t n, const ml_image_options *opt,
                           ml_invert_mode inv, int labelled, ml_image_set *out, char *err,
                           size_t errlen) {
    const int S = resolve_size(opt);
    const int keep_raw = opt && opt->keep_raw;
    if (S > 4096) {
        ml__errf(err, errlen, "image size %d is too large (at most 4096)", S);
        return ML_ERR_ARG;
    }
    int n_classes = 0, n_alpha = 0;
    size_t str_bytes = 0;
    for (int64_t i = 0; i < n; i++) {
        int new_alpha = i == 0 || cmp_span(it[i].alpha, it[i].alpha_len, it[i - 1].alpha, it[i - 1].alpha_len);
        int new_class = new_alpha || !same_class(&it[i], &it[i - 1]);
        n_alpha += new_alpha;
        n_classes += new_class;
        if (new_alpha) str_bytes += it[i].alpha_len + 1;
        if (new_class) str_bytes += it[i].alpha_len + 1 + it[i].cls_len + 1;
        str_bytes += strlen(it[i].alpha) + 1; /* image name runs to the end of the entry */
    }
    ml_image_set s;
    memset(&s, 0, sizeof s);
    s.n = n;
    s.size = S;
    s.n_classes = n_classes;
    s.n_alphabets = n_alpha;
    s.labelled = labelled;
    size_t plane = (size_t)S * S;
    s.x = ml_malloc(sizeof(float) * plane * (size_t)n);
    s.y = ml_malloc(sizeof(int32_t) * (size_t)n);
    s.class_start = ml_malloc(sizeof(int64_t) * ((size_t)n_classes + 1));
    s.class_alphabet = ml_malloc(sizeof(int32_t) * (size_t)n_classes);
    s.class_names = ml_malloc(sizeof(char *) * (size_t)n_classes);
    s.alphabet_names = ml_malloc(sizeof(char *) * (size_t)n_alpha);
    s.image_names = ml_malloc(sizeof(char *) * (size_t)n);
    s.strings = ml_malloc(str_bytes);
    if (!s.x || !s.y || !s.class_start || !s.class_alphabet || !s.class_names || !s.alphabet_names ||
        !s.image_names || !s.strings) {
        ml_image_set_free(&s);
        ml__errf(err, errlen, "out of memory for %lld images of %dx%d", (long long)n, S, S);
        return ML_ERR_NOMEM;
    }
    /* Names first: cheap, and they make the error lines below possible. */
    char *p = s.strings;
    int k = -1, a = -1;
    for (int64_t i = 0; i < n; i++) {
        int new_alpha = i == 0 || cmp_span(it[i].alpha, it[i].alpha_len, it[i - 1].alpha, it[i - 1].alpha_len);
        if (new_alpha) {
            a++;
            memcpy(p, it[i].alpha, it[i].alpha_len);
            p[it[i].alpha_len] = 0;
            s.alphabet_names[a] = p;
            p += it[i].alpha_len + 1;
        }
        if (new_alpha || !same_class(&it[i], &it[i - 1])) {
            k++;
            s.class_start[k] = i;
            s.class_alphabet[k] = a;
            size_t o = 0;
            if (it[i].alpha_len) {
                memcpy(p, it[i].alpha, it[i].alpha_len);
                p[it[i].alpha_len] = '/';
                o = it[i].alpha_len + 1;
            }
            memcpy(p + o, it[i].cls, it[i].cls_len);
            p[o + it[i].cls_len] = 0;
            s.class_names[k] = p;
            p += o + it[i].cls_len + 1;
        }
        s.y[i] = k;
        size_t l = strlen(it[i].alpha);
        memcpy(p, it[i].alpha, l + 1);
        s.image_names[i] = p;
        p += l + 1;
    }
    s.class_start[n_classes] = n;

    /* Decode: each kept PNG once, straight into its row of x. */
    ml__img_decoder dec;
    memset(&dec, 0, sizeof dec);
    dec.max_pixels = srcs[0].max_pixels; /* every source was opened with the same options */
    uint8_t *buf = NULL;
    size_t cap = 0, len = 0;
    char why[256];
    ml_status st = ML_OK;
    for (int64_t i = 0; i < n && st == ML_OK; i++) {
        const ml__src *src = &srcs[it[i].src];
        st = ml__src_read(src, it[i].entry, &buf, &cap, &len, err, errlen);
        if (st != ML_OK) break;
        if (keep_raw && !s.raw) {
            /* The first image fixes the full size; later ones must match. */
            int w = 0, h = 0;
            st = ml__png_gray8(buf, len, dec.max_pixels, &dec.gray, &dec.gray_cap, &w, &h, why, sizeof why);
            if (st == ML_OK) {
                s.raw = ml_malloc((size_t)w * h * (size_t)n);
                if (!s.raw) {
                    st = ML_ERR_NOMEM;
                    snprintf(why, sizeof why, "out of memory for full-size masks");
                }
                s.raw_h = h;
                s.raw_w = w;
            }
        }
        if (st == ML_OK)
            st = ml__img_decode(&dec, buf, len, inv, S, s.x + (size_t)i * plane,
                                keep_raw ? s.raw + (size_t)i * s.raw_h * s.raw_w : NULL, &s.raw_h,
                                &s.raw_w, why, sizeof why);
        if (st != ML_OK) ml__errf(err, errlen, "%s: %s: %s", src->path, src->e[it[i].entry].name, why);
    }
    ml_free(buf);
    ml__img_decoder_free(&dec);
    if (st != ML_OK) {
        ml_image_set_free(&s);
        return st;
    }
    *out = s;
    return ML_OK;
}

/* ---- Omniglot -------------------------------------------------------------------- */

/* The two copies of one character must hold the same drawings. Equal bytes
 * settle it without decoding; otherwise the decoded pixels must match. */
static ml_status check_duplicate(ml__src *srcs, const item *a, const item *b, uint8_t **b1,
                                 size_t *c1, uint8_t **b2, size_t *c2, char *err, size_t errlen) {
    size_t l1 = 0, l2 = 0;
    ml_status st = ml__src_read(&srcs[a->src], a->entry, b1, c1, &l1, err, errlen);
    if (st == ML_OK) st = ml__src_read(&srcs[b->src], b->entry, b2, c2, &l2, err, errlen);
    if (st != ML_OK) return st;
    if (l1 == l2 && memcmp(*b1, *b2, l1) == 0) return ML_OK;
    uint8_t *g1 = NULL, *g2 = NULL;
    int w1, h1, w2, h2;
    size_t gc1 = 0, gc2 = 0;
    char why[256];
    const item *bad = a;
    st = ml__png_gray8(*b1, l1, srcs[a->src].max_pixels, &g1, &gc1, &w1, &h1, why, sizeof why);
    if (st == ML_OK) {
        bad = b;
        st = ml__png_gray8(*b2, l2, srcs[b->src].max_pixels, &g2, &gc2, &w2, &h2, why, sizeof why);
    }
    if (st != ML_OK) {
        ml__errf(err, errlen, "%s: %s: %s", srcs[bad->src].path, srcs[bad->src].e[bad->entry].name, why);
    } else if (w1 != w2 || h1 != h2 || memcmp(g1, g2, (size_t)w1 * h1) != 0) {
        ml__errf(err, errlen, "%s: %s differs from %s: %s (a character given twice must hold the same drawings)",
                    srcs[b->src].path, srcs[b->src].e[b->entry].name, srcs[a->src].path,
                    srcs[a->src].e[a->entry].name);
        st = ML_ERR_FORMAT;
    }
    ml_free(g1);
    ml_free(g2);
    return st;
}

/* Keeps the first origin of every class, checking the others against it.
 * Compacts `it` in place and returns the new length through *n. */
static ml_status dedup(ml__src *srcs, item *it, int64_t *n, char *err, size_t errlen) {
    uint8_t *b1 = NULL, *b2 = NULL;
    size_t c1 = 0, c2 = 0;
    ml_status st = ML_OK;
    int64_t w = 0, i = 0;
    while (i < *n && st == ML_OK) {
        int64_t g = i; /* class group [g, e), first origin [g, f) */
        int64_t f = g + 1;
        while (f < *n && same_class(&it[f], &it[g]) && same_origin(&it[f], &it[g])) f++;
        int64_t o = f;
        while (o < *n && same_class(&it[o], &it[g]) && st == ML_OK) {
            int64_t oe = o + 1;
            while (oe < *n && same_class(&it[oe], &it[g]) && same_origin(&it[oe], &it[o])) oe++;
            if (oe - o != f - g) {
                ml__errf(err, errlen, "%s: %.*s%.*s/%.*s has %lld drawings but %s has %lld: "
                            "a character given twice must hold the same drawings",
                            srcs[it[o].src].path, (int)it[o].origin_len, it[o].origin,
                            (int)it[o].alpha_len, it[o].alpha, (int)it[o].cls_len, it[o].cls,
                            (long long)(oe - o), srcs[it[g].src].path, (long long)(f - g));
                st = ML_ERR_FORMAT;
                break;
            }
            for (int64_t j = 0; j < f - g && st == ML_OK; j++) {
                if (strcmp(it[g + j].file, it[o + j].file) != 0) {
                    ml__errf(err, errlen, "%s: %s: no such drawing in %s (a character given twice must hold the same drawings)",
                                srcs[it[g + j].src].path, srcs[it[g + j].src].e[it[g + j].entry].name,
                                srcs[it[o].src].path);
                    st = ML_ERR_FORMAT;
                } else {
                    st = check_duplicate(srcs, &it[g + j], &it[o + j], &b1, &c1, &b2, &c2, err, errlen);
                }
            }
            o = oe;
        }
        for (int64_t j = g; j < f; j++) it[w++] = it[j];
        i = o;
    }
    ml_free(b1);
    ml_free(b2);
    *n = w;
    return st;
}

/* Splits "<origin>/<alpha>/<cls>/<file>" (origin may be empty). `need_alpha`
 * 0 treats "<cls>/<file>" or "<file>" (folders). Returns 0 when too shallow. */
static int parse_name(const char *name, int src, int entry, int need_alpha, item *out) {
    const char *end = name + strlen(name);
    const char *cut[3] = {NULL, NULL, NULL}; /* last three '/' from the end */
    int found = 0;
    for (const char *q = end - 1; q >= name && found < 3; q--)
        if (*q == '/') cut[found++] = q;
    memset(out, 0, sizeof *out);
    out->src = src;
    out->entry = entry;
    out->origin = name;
    if (need_alpha) {
        if (found < 2) return 0;
        const char *astart = found >= 3 ? cut[2] + 1 : name;
        out->origin_len = (size_t)(astart - name);
        out->alpha = astart;
        out->alpha_len = (size_t)(cut[1] - astart);
        out->cls = cut[1] + 1;
        out->cls_len = (size_t)(cut[0] - out->cls);
        out->file = cut[0] + 1;
        return out->alpha_len > 0 && out->cls_len > 0;
    }
    /* Folder: at most one level of class folders. */
    if (found >= 2) return 0;
    out->alpha = name;
    out->alpha_len = 0;
    out->cls = name;
    out->cls_len = found ? (size_t)(cut[0] - name) : 0;
    out->file = found ? cut[0] + 1 : name;
    return 1;
}

static void close_all(ml__src *srcs, int n) {
    for (int i = 0; i < n; i++) ml__src_close(&srcs[i]);
    ml_free(srcs);
}

ml_status ml_omniglot_load(const char *const *paths, int n_paths, const ml_image_options *opt,
                           ml_image_set *out, char *err, size_t errlen) {
    if (!out) return ML_ERR_ARG;
    memset(out, 0, sizeof *out);
    if (!paths || n_paths <= 0) {
        ml__errf(err, errlen, "omniglot: no paths given");
        return ML_ERR_ARG;
    }
    ml__src *srcs = ml_calloc((size_t)n_paths, sizeof *srcs);
    if (!srcs) return ML_ERR_NOMEM;
    ml_status st = ML_OK;
    int64_t n_items = 0;
    for (int i = 0; i < n_paths && st == ML_OK; i++) {
        st = ml__src_open(&srcs[i], paths[i], opt, err, errlen);
        if (st != ML_OK) break;
        for (int j = 0; j < srcs[i].n; j++) n_items += !srcs[i].e[j].is_dir && ml__has_png_suffix(srcs[i].e[j].name);
        for (int j = 0; j < srcs[i].n && st == ML_OK; j++) {
            const char *nm = srcs[i].e[j].name, *b = strrchr(nm, '/');
            if (strcmp(b ? b + 1 : nm, "class_labels.txt") == 0) {
                ml__errf(err, errlen, "%s: holds %s, so it is Lake's one-shot runs, not an image set "
                            "(load it with ml_lake_runs_load)", paths[i], nm);
                st = ML_ERR_FORMAT;
            }
        }
        if (st != ML_OK) break;
        int ed = ml__src_next_empty_dir(&srcs[i], 0);
        if (ed >= 0) {
            ml__errf(err, errlen, "%s: %s: empty class (folder without images)", paths[i], srcs[i].e[ed].name);
            st = ML_ERR_FORMAT;
        }
    }
    if (st != ML_OK) {
        close_all(srcs, n_paths); /* unopened ones are zeroed, which close accepts */
        return st;
    }
    item *it = ml_malloc(sizeof *it * (size_t)(n_items ? n_items : 1));
    if (!it) {
        close_all(srcs, n_paths);
        return ML_ERR_NOMEM;
    }
    int64_t m = 0;
    for (int i = 0; i < n_paths && st == ML_OK; i++) {
        int png_here = 0;
        for (int j = 0; j < srcs[i].n; j++) {
            const char *name = srcs[i].e[j].name;
            if (srcs[i].e[j].is_dir || !ml__has_png_suffix(name)) continue;
            if (!parse_name(name, i, j, 1, &it[m])) {
                ml__errf(err, errlen, "%s: %s: expected Alphabet/characterNN/NAME.png", paths[i], name);
                st = ML_ERR_FORMAT;
                break;
            }
            m++;
            png_here++;
        }
        if (st == ML_OK && !png_here) {
            ml__errf(err, errlen, "%s: no PNG images (expected Alphabet/characterNN/NAME.png)", paths[i]);
            st = ML_ERR_FORMAT;
        }
    }
    if (st == ML_OK) {
        qsort(it, (size_t)m, sizeof *it, cmp_item);
        st = dedup(srcs, it, &m, err, errlen);
    }
    ml_invert_mode inv = opt && opt->invert != ML_INVERT_DEFAULT ? opt->invert : ML_INVERT_YES;
    if (st == ML_OK) st = build_set(srcs, it, m, opt, inv, 1, out, err, errlen);
    ml_free(it);
    close_all(srcs, n_paths);
    return st;
}

/* ---- a user's folder ----------------------------------------------------------------- */

ml_status ml_image_folder_load(const char *dir, const ml_image_options *opt, ml_image_set *out,
                               char *err, size_t errlen) {
    if (!out) return ML_ERR_ARG;
    memset(out, 0, sizeof *out);
    struct stat stt;
    if (!dir || stat(dir, &stt) != 0) {
        ml__errf(err, errlen, "%s: %s", dir ? dir : "(null)", dir ? strerror(errno) : "no folder given");
        return ML_ERR_IO;
    }
    if (!S_ISDIR(stt.st_mode)) {
        ml__errf(err, errlen, "%s: not a folder (expected DIR/class/NAME.png or DIR/NAME.png)", dir);
        return ML_ERR_ARG;
    }
    ml__src src;
    ml_status st = ml__src_open(&src, dir, opt, err, errlen);
    if (st != ML_OK) return st;
    int ed = ml__src_next_empty_dir(&src, 0);
    if (ed >= 0) {
        ml__errf(err, errlen, "%s/%s: empty class (folder without PNG images)", dir, src.e[ed].name);
        ml__src_close(&src);
        return ML_ERR_FORMAT;
    }
    item *it = ml_malloc(sizeof *it * (size_t)(src.n ? src.n : 1));
    if (!it) {
        ml__src_close(&src);
        return ML_ERR_NOMEM;
    }
    int64_t m = 0, flat = 0, nested = 0;
    for (int j = 0; j < src.n && st == ML_OK; j++) {
        const char *name = src.e[j].name;
        if (src.e[j].is_dir || !ml__has_png_suffix(name)) continue;
        if (!parse_name(name, 0, j, 0, &it[m])) {
            ml__errf(err, errlen, "%s/%s: nested too deep (expected DIR/class/NAME.png or DIR/NAME.png)", dir, name);
            st = ML_ERR_FORMAT;
            break;
        }
        if (it[m].cls_len) nested++;
        else flat++;
        m++;
    }
    if (st == ML_OK && m == 0) {
        ml__errf(err, errlen, "%s: no PNG images (expected DIR/class/NAME.png or DIR/NAME.png)", dir);
        st = ML_ERR_FORMAT;
    }
    if (st == ML_OK && flat && nested) {
        ml__errf(err, errlen, "%s: holds both PNG files and class folders; use one layout", dir);
        st = ML_ERR_FORMAT;
    }
    /* Class folders with only non-PNG files are empty classes too. */
    for (int j = 0; j < src.n && st == ML_OK && nested; j++) {
        if (!src.e[j].is_dir) continue;
        size_t l = strlen(src.e[j].name);
        int has = 0;
        for (int q = j + 1; q < src.n && strncmp(src.e[q].name, src.e[j].name, l) == 0; q++)
            has |= !src.e[q].is_dir && ml__has_png_suffix(src.e[q].name);
        if (!has) {
            ml__errf(err, errlen, "%s/%s: empty class (folder without PNG images)", dir, src.e[j].name);
            st = ML_ERR_FORMAT;
        }
    }
    if (st == ML_OK) {
        qsort(it, (size_t)m, sizeof *it, cmp_item);
        ml_invert_mode inv = opt && opt->invert != ML_INVERT_DEFAULT ? opt->invert : ML_INVERT_AUTO;
        st = build_set(&src, it, m, opt, inv, nested > 0, out, err, errlen);
    }
    ml_free(it);
    ml__src_close(&src);
    return st;
}
