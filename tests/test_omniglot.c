/* test_omniglot.c: PNG decoding, area resizing, Omniglot / Lake / folder
 * loading, class splits, episodes and bad input.
 *
 * Data comes from $ML_DATA_DIR/omniglot (default ../shared/data); tests that
 * need it print a SKIP line when it is absent. Scratch files go to
 * ml_test_tmp_dir(). The Omniglot set is loaded once and shared. */
#include <spng.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include "metalearn/core.h"
#include "metalearn/images.h"
#include "metalearn/io.h"
#include "ml_test.h"

static char g_small1[1024], g_small2[1024], g_runs[1024], g_tmp[1024];
static int g_have_data;
static ml_image_set g_set; /* both small zips, 28 x 28 */

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static void setup_paths(void) {
    const char *d = ml_test_data_dir();
    snprintf(g_small1, sizeof g_small1, "%s/omniglot/images_background_small1.zip", d);
    snprintf(g_small2, sizeof g_small2, "%s/omniglot/images_background_small2.zip", d);
    snprintf(g_runs, sizeof g_runs, "%s/omniglot/all_runs.zip", d);
    snprintf(g_tmp, sizeof g_tmp, "%s/omniglot_test", ml_test_tmp_dir());
    ml_mkdir_p(g_tmp, NULL, 0);
    g_have_data = file_exists(g_small1) && file_exists(g_small2) && file_exists(g_runs);
    if (!g_have_data) {
        char why[1200];
        snprintf(why, sizeof why, "Omniglot zips not found under %s/omniglot (set ML_DATA_DIR); data tests skipped", d);
        ml_test_skip(why);
    }
}

static int write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    size_t k = fwrite(data, 1, len, f);
    return (fclose(f) == 0) && k == len;
}

/* Bytes of one entry of a zip, malloc'd (test helper, straight libzip). */
static uint8_t *zip_entry(const char *zpath, const char *name, size_t *len) {
    int code;
    zip_t *z = zip_open(zpath, ZIP_RDONLY, &code);
    if (!z) return NULL;
    zip_stat_t st;
    uint8_t *buf = NULL;
    if (zip_stat(z, name, 0, &st) == 0) {
        zip_file_t *f = zip_fopen(z, name, 0);
        buf = malloc(st.size);
        if (f && buf && zip_fread(f, buf, st.size) == (zip_int64_t)st.size) *len = st.size;
        else {
            free(buf);
            buf = NULL;
        }
        if (f) zip_fclose(f);
    }
    zip_discard(z);
    return buf;
}

static const char *k_png_name = "images_background_small1/Greek/character01/0394_01.png";

/* ---- resize ------------------------------------------------------------------- */

static void test_resize_area(void) {
    enum { N = 105, M = 28 };
    static float src[N * N], dst[M * M];
    for (int i = 0; i < N * N; i++) src[i] = 0.3f;
    CHECK_INT_EQ(ml_image_resize_area(src, N, N, dst, M, M), ML_OK);
    float lo = 1, hi = 0;
    for (int i = 0; i < M * M; i++) {
        if (dst[i] < lo) lo = dst[i];
        if (dst[i] > hi) hi = dst[i];
    }
    CHECK_NEAR(lo, 0.3, 1e-6, 0);
    CHECK_NEAR(hi, 0.3, 1e-6, 0);
    /* Random image: the mean is preserved. */
    ml_rng r;
    ml_rng_seed(&r, 7);
    double ms = 0, md = 0;
    for (int i = 0; i < N * N; i++) ms += src[i] = (float)ml_rng_uniform(&r);
    ml_image_resize_area(src, N, N, dst, M, M);
    for (int i = 0; i < M * M; i++) md += dst[i];
    CHECK_NEAR(md / (M * M), ms / (N * N), 1e-6, 0);
    /* Fractional overlap by hand: [a b c] -> 2 pixels of width 1.5. */
    float s3[3] = {1, 2, 4}, d2[2];
    ml_image_resize_area(s3, 1, 3, d2, 1, 2);
    CHECK_NEAR(d2[0], (1 + 0.5 * 2) / 1.5, 1e-6, 0);
    CHECK_NEAR(d2[1], (0.5 * 2 + 4) / 1.5, 1e-6, 0);
    /* Non-square, both axes: 2x4 -> 1x2 is plain 2x2 block means. */
    float s8[8] = {1, 2, 3, 4, 5, 6, 7, 8}, d[2];
    ml_image_resize_area(s8, 2, 4, d, 1, 2);
    CHECK_NEAR(d[0], 3.5, 1e-6, 0);
    CHECK_NEAR(d[1], 5.5, 1e-6, 0);
    CHECK_INT_EQ(ml_image_resize_area(s8, 0, 4, d, 1, 2), ML_ERR_ARG);
}

/* ---- PNG ------------------------------------------------------------------------ */

static uint8_t *encode_png(const void *img, int w, int h, int color_type, size_t *len) {
    spng_ctx *c = spng_ctx_new(SPNG_CTX_ENCODER);
    spng_set_option(c, SPNG_ENCODE_TO_BUFFER, 1);
    struct spng_ihdr ih = {(uint32_t)w, (uint32_t)h, 8, (uint8_t)color_type, 0, 0, 0};
    spng_set_ihdr(c, &ih);
    int ch = color_type == SPNG_COLOR_TYPE_TRUECOLOR ? 3 : color_type == SPNG_COLOR_TYPE_TRUECOLOR_ALPHA ? 4 : 1;
    int e = spng_encode_image(c, img, (size_t)w * h * ch, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE);
    uint8_t *out = e ? NULL : spng_get_png_buffer(c, len, &e);
    spng_ctx_free(c);
    return out;
}

static void test_png_decode(void) {
    char err[512];
    uint8_t *px = NULL;
    int w, h;
    /* RGB and RGBA: mixed to gray, alpha over white. */
    uint8_t rgb[2 * 3] = {255, 0, 0, 10, 20, 30};
    size_t len = 0;
    uint8_t *png = encode_png(rgb, 2, 1, SPNG_COLOR_TYPE_TRUECOLOR, &len);
    CHECK(png != NULL);
    CHECK_INT_EQ(ml_png_decode_gray8(png, len, "rgb.png", &px, &w, &h, err, sizeof err), ML_OK);
    CHECK_INT_EQ(w, 2);
    CHECK_INT_EQ(h, 1);
    if (px) {
        CHECK_INT_EQ(px[0], 76);                                   /* 0.299 * 255 */
        CHECK_INT_EQ(px[1], (299 * 10 + 587 * 20 + 114 * 30 + 500) / 1000);
    }
    ml_free(px);
    free(png);
    uint8_t rgba[4] = {0, 0, 0, 0}; /* fully transparent black: white */
    png = encode_png(rgba, 1, 1, SPNG_COLOR_TYPE_TRUECOLOR_ALPHA, &len);
    CHECK_INT_EQ(ml_png_decode_gray8(png, len, "rgba.png", &px, &w, &h, err, sizeof err), ML_OK);
    if (px) CHECK_INT_EQ(px[0], 255);
    ml_free(px);
    free(png);

    /* Garbage and a truncated real file: one-line errors naming the file. */
    const char junk[] = "this is not a png at all";
    CHECK_INT_EQ(ml_png_decode_gray8(junk, sizeof junk, "junk.png", &px, &w, &h, err, sizeof err), ML_ERR_FORMAT);
    CHECK_STR_CONTAINS(err, "junk.png");
    CHECK_STR_CONTAINS(err, "not a PNG");
    CHECK(px == NULL);
    if (!g_have_data) return;
    uint8_t *real = zip_entry(g_small1, k_png_name, &len);
    CHECK(real != NULL);
    if (!real) return;
    CHECK_INT_EQ(ml_png_decode_gray8(real, len, "real.png", &px, &w, &h, err, sizeof err), ML_OK);
    CHECK_INT_EQ(w, 105);
    CHECK_INT_EQ(h, 105);
    int n0 = 0, n255 = 0;
    for (int i = 0; px && i < w * h; i++) n0 += px[i] == 0, n255 += px[i] == 255;
    CHECK_INT_EQ(n0 + n255, 105 * 105); /* 1-bit gray scaled to 0 / 255 */
    CHECK(n0 > 50 && n255 > 5000);
    ml_free(px);
    err[0] = 0;
    CHECK(ml_png_decode_gray8(real, len / 2, "half.png", &px, &w, &h, err, sizeof err) != ML_OK);
    CHECK_STR_CONTAINS(err, "half.png: PNG: ");
    CHECK(px == NULL);
    real[len - 20] ^= 0x55; /* flip bits inside IDAT/IEND: a CRC or inflate error */
    CHECK(ml_png_decode_gray8(real, len, "flip.png", &px, &w, &h, err, sizeof err) != ML_OK);
    CHECK_STR_CONTAINS(err, "flip.png: PNG: ");
    free(real);
}

/* ---- Omniglot --------------------------------------------------------------------- */

static void test_omniglot_load(void) {
    if (!g_have_data) return;
    const char *paths[2] = {g_small1, g_small2};
    char err[512] = "";
    double t0 = ml_now();
    ml_status st = ml_omniglot_load(paths, 2, NULL, &g_set, err, sizeof err);
    double dt = ml_now() - t0;
    CHECK_INT_EQ(st, ML_OK);
    if (st != ML_OK) {
        fprintf(stderr, "  %s\n", err);
        return;
    }
    printf("  loaded %lld images (%d classes) from 2 zips, 5,840 PNGs seen, 4,840 decoded, in %.1f ms\n",
           (long long)g_set.n, g_set.n_classes, dt * 1e3);
    CHECK_INT_EQ(g_set.n_classes, 242);
    CHECK_INT_EQ(g_set.n_alphabets, 8);
    CHECK_INT_EQ(g_set.n, 242 * 20);
    CHECK_INT_EQ(g_set.size, 28);
    CHECK(g_set.labelled);
    CHECK(g_set.raw == NULL);
    int bad = 0;
    for (int k = 0; k < g_set.n_classes; k++) {
        bad += g_set.class_start[k + 1] - g_set.class_start[k] != 20;
        for (int64_t i = g_set.class_start[k]; i < g_set.class_start[k + 1]; i++) bad += g_set.y[i] != k;
        const char *a = g_set.alphabet_names[g_set.class_alphabet[k]];
        bad += strncmp(g_set.class_names[k], a, strlen(a)) != 0 || !strstr(g_set.class_names[k], "/character");
    }
    CHECK_INT_EQ(bad, 0);
    CHECK_STR_CONTAINS(g_set.alphabet_names[0], "Balinese");
    CHECK_STR_CONTAINS(g_set.class_names[0], "Balinese/character01");
    CHECK_STR_CONTAINS(g_set.image_names[0], "Balinese/character01/0108_01.png");
    double mn = 1, mx = 0, sum = 0;
    int64_t total = g_set.n * 28 * 28;
    for (int64_t i = 0; i < total; i++) {
        float v = g_set.x[i];
        if (v < mn) mn = v;
        if (v > mx) mx = v;
        sum += v;
    }
    CHECK(mn >= 0.0 && mx <= 1.0 + 1e-6);
    CHECK(mx > 0.9);
    /* Strokes are white on black now: a small share of the area. */
    CHECK(sum / total > 0.03 && sum / total < 0.3);
    /* The first image equals the area average of its decoded PNG, inverted. */
    size_t len;
    uint8_t *png = zip_entry(g_small1, "images_background_small1/Balinese/character01/0108_01.png", &len), *px = NULL;
    int w, h;
    if (png && ml_png_decode_gray8(png, len, "p", &px, &w, &h, NULL, 0) == ML_OK) {
        static float f[105 * 105], d[28 * 28];
        for (int i = 0; i < w * h; i++) f[i] = 1.0f - px[i] / 255.0f;
        ml_image_resize_area(f, h, w, d, 28, 28);
        double md = 0;
        for (int i = 0; i < 28 * 28; i++) md = fmax(md, fabs(d[i] - g_set.x[i]));
        CHECK_NEAR(md, 0, 1e-6, 0);
    }
    ml_free(px);
    free(png);

    /* keep_raw and another size, from one zip: 136 characters. */
    ml_image_set s1;
    ml_image_options o = {.size = 14, .invert = ML_INVERT_DEFAULT, .keep_raw = 1};
    CHECK_INT_EQ(ml_omniglot_load(paths, 1, &o, &s1, err, sizeof err), ML_OK);
    CHECK_INT_EQ(s1.n_classes, 136);
    CHECK_INT_EQ(s1.size, 14);
    CHECK_INT_EQ(s1.raw_h, 105);
    CHECK_INT_EQ(s1.raw_w, 105);
    if (s1.raw) {
        int64_t ones = 0, other = 0;
        for (int64_t i = 0; i < s1.n * 105 * 105; i++) ones += s1.raw[i] == 1, other += s1.raw[i] > 1;
        CHECK_INT_EQ(other, 0);
        CHECK(ones > 0);
    }
    ml_image_set_free(&s1);
    CHECK(s1.x == NULL && s1.n == 0);
}

/* ---- splits -------------------------------------------------------------------------- */

static void check_split_disjoint(const ml_class_split *sp, int n_classes, int by_alpha) {
    int *owner = calloc((size_t)n_classes, sizeof(int)), clash = 0, covered = 0;
    int alpha_owner[64];
    for (int a = 0; a < 64; a++) alpha_owner[a] = -1;
    for (int p = 0; p < ML_SPLIT_COUNT; p++)
        for (int i = 0; i < sp->part[p].n; i++) {
            int k = sp->part[p].items[i].cls;
            clash += owner[k] != 0;
            owner[k] = p + 1;
            covered++;
            if (by_alpha) {
                int a = g_set.class_alphabet[k];
                clash += alpha_owner[a] >= 0 && alpha_owner[a] != p;
                alpha_owner[a] = p;
            }
        }
    CHECK_INT_EQ(clash, 0);
    CHECK_INT_EQ(covered, n_classes);
    free(owner);
}

static void test_splits(void) {
    if (!g_have_data || !g_set.n) return;
    char err[512];
    ml_rng r;
    ml_rng_seed(&r, 42);
    ml_split_spec spec = {ML_SPLIT_BY_CHARACTER, {0, 0, 0}, {0.6, 0.2, 0.2}};
    ml_class_split sp, sp2, back;
    CHECK_INT_EQ(ml_class_split_make(&g_set, &spec, &r, &sp, err, sizeof err), ML_OK);
    CHECK_INT_EQ(sp.part[0].n, 145);
    CHECK_INT_EQ(sp.part[1].n, 48);
    CHECK_INT_EQ(sp.part[2].n, 49);
    check_split_disjoint(&sp, 242, 0);
    ml_rng_seed(&r, 42);
    CHECK_INT_EQ(ml_class_split_make(&g_set, &spec, &r, &sp2, err, sizeof err), ML_OK);
    int same = 1;
    for (int p = 0; p < 3; p++)
        same &= sp.part[p].n == sp2.part[p].n &&
                !memcmp(sp.part[p].items, sp2.part[p].items, sizeof(ml_class_ref) * (size_t)sp.part[p].n);
    CHECK(same);
    ml_class_split_free(&sp2);

    /* JSON round trip. */
    char path[1100];
    snprintf(path, sizeof path, "%s/split.json", g_tmp);
    CHECK_INT_EQ(ml_class_split_write_json(&sp, &g_set, path, err, sizeof err), ML_OK);
    CHECK_INT_EQ(ml_class_split_read_json(path, &g_set, &back, err, sizeof err), ML_OK);
    same = back.unit == sp.unit;
    for (int p = 0; p < 3; p++)
        same &= sp.part[p].n == back.part[p].n &&
                !memcmp(sp.part[p].items, back.part[p].items, sizeof(ml_class_ref) * (size_t)sp.part[p].n);
    CHECK(same);
    ml_class_split_free(&back);
    ml_class_split_free(&sp);
    const char *bad_json = "{\"format\":\"metalearn-class-split\",\"unit\":\"character\",\"train\":[\"Greek/character99\"],"
                           "\"val\":[],\"test\":[]}";
    write_file(path, bad_json, strlen(bad_json));
    CHECK_INT_EQ(ml_class_split_read_json(path, &g_set, &back, err, sizeof err), ML_ERR_FORMAT);
    CHECK_STR_CONTAINS(err, "Greek/character99");
    CHECK_INT_EQ(ml_class_split_read_json(g_tmp, &g_set, &back, err, sizeof err), ML_ERR_IO); /* a folder */
    CHECK_STR_CONTAINS(err, ": read error: Is a directory");

    /* By alphabet with counts: whole alphabets, one part each. */
    ml_split_spec by_a = {ML_SPLIT_BY_ALPHABET, {5, 1, -1}, {0, 0, 0}};
    CHECK_INT_EQ(ml_class_split_make(&g_set, &by_a, &r, &sp, err, sizeof err), ML_OK);
    check_split_disjoint(&sp, 242, 1);
    CHECK(sp.part[1].n > 0 && sp.part[2].n > 0);
    ml_class_split_free(&sp);
    ml_split_spec too_many = {ML_SPLIT_BY_ALPHABET, {7, 1, 1}, {0, 0, 0}};
    CHECK_INT_EQ(ml_class_split_make(&g_set, &too_many, &r, &sp, err, sizeof err), ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "alphabet");
}

/* ---- episodes -------------------------------------------------------------------------- */

static int in_list(const ml_class_list *l, ml_class_ref c) {
    for (int i = 0; i < l->n; i++)
        if (l->items[i].cls == c.cls && l->items[i].rot == c.rot) return 1;
    return 0;
}

static void check_episode(const ml_episode *e, const ml_class_list *from) {
    const int N = e->ways, K = e->shots, Q = e->queries, P = e->size * e->size;
    int bad_class = 0, dup_class = 0, bad_img = 0, overlap = 0, bad_label = 0, bad_pix = 0;
    static float ref[64 * 64];
    for (int k = 0; k < N; k++) {
        bad_class += !in_list(from, e->classes[k]);
        for (int j = 0; j < k; j++)
            dup_class += e->classes[j].cls == e->classes[k].cls && e->classes[j].rot == e->classes[k].rot;
        int64_t idx[64];
        int m = 0;
        for (int j = 0; j < K; j++) idx[m++] = e->support_index[k * K + j], bad_label += e->ys[k * K + j] != k;
        for (int j = 0; j < Q; j++) idx[m++] = e->query_index[k * Q + j], bad_label += e->yq[k * Q + j] != k;
        for (int a = 0; a < m; a++) {
            bad_img += g_set.y[idx[a]] != e->classes[k].cls;
            for (int b = 0; b < a; b++) overlap += idx[a] == idx[b]; /* K+Q distinct, S and Q disjoint */
        }
        for (int j = 0; j < K; j++) {
            ml_image_set_copy(&g_set, e->support_index[k * K + j], e->classes[k].rot, NULL, NULL, ref);
            bad_pix += memcmp(ref, e->xs + (size_t)(k * K + j) * P, sizeof(float) * P) != 0;
        }
    }
    CHECK_INT_EQ(bad_class, 0);
    CHECK_INT_EQ(dup_class, 0);
    CHECK_INT_EQ(bad_img, 0);
    CHECK_INT_EQ(overlap, 0);
    CHECK_INT_EQ(bad_label, 0);
    CHECK_INT_EQ(bad_pix, 0);
}

static void test_episodes(void) {
    if (!g_have_data || !g_set.n) return;
    char err[512];
    ml_rng r;
    ml_rng_seed(&r, 3);
    ml_split_spec spec = {ML_SPLIT_BY_ALPHABET, {5, 1, 2}, {0, 0, 0}};
    ml_class_split sp;
    CHECK_INT_EQ(ml_class_split_make(&g_set, &spec, &r, &sp, err, sizeof err), ML_OK);
    ml_class_list train_rot;
    CHECK_INT_EQ(ml_class_list_expand_rotations(&sp.part[ML_SPLIT_TRAIN], &train_rot), ML_OK);
    CHECK_INT_EQ(train_rot.n, 4 * sp.part[ML_SPLIT_TRAIN].n);

    ml_episode e, e2;
    CHECK_INT_EQ(ml_episode_init(&e, 5, 1, 15, 28), ML_OK);
    CHECK_INT_EQ(ml_episode_init(&e2, 5, 1, 15, 28), ML_OK);
    int rotated = 0, leaks = 0;
    for (int t = 0; t < 50; t++) {
        CHECK_INT_EQ(ml_episode_sample(&e, &g_set, &train_rot, NULL, &r, err, sizeof err), ML_OK);
        check_episode(&e, &train_rot);
        for (int k = 0; k < 5; k++) {
            rotated += e.classes[k].rot != 0;
            ml_class_ref c0 = {e.classes[k].cls, 0};
            leaks += in_list(&sp.part[ML_SPLIT_VAL], c0) + in_list(&sp.part[ML_SPLIT_TEST], c0);
        }
    }
    CHECK(rotated > 0);
    CHECK_INT_EQ(leaks, 0);
    /* Test classes, 20-way 5-shot 5-query. */
    ml_episode big;
    CHECK_INT_EQ(ml_episode_init(&big, 20, 5, 5, 28), ML_OK);
    CHECK_INT_EQ(ml_episode_sample(&big, &g_set, &sp.part[ML_SPLIT_TEST], NULL, &r, err, sizeof err), ML_OK);
    check_episode(&big, &sp.part[ML_SPLIT_TEST]);
    ml_episode_free(&big);

    /* Same seed, same episode (with augmentation too). */
    ml_augment aug = {10.0, 0.9, 1.1, 2.0, 0.5, 0.0};
    ml_rng a, b;
    ml_rng_seed(&a, 99);
    ml_rng_seed(&b, 99);
    ml_episode_sample(&e, &g_set, &train_rot, &aug, &a, err, sizeof err);
    CHECK_INT_EQ(ml_episode_sample(&e2, &g_set, &train_rot, &aug, &b, err, sizeof err), ML_OK);
    CHECK(!memcmp(e.xs, e2.xs, sizeof(float) * 5 * 784) && !memcmp(e.xq, e2.xq, sizeof(float) * 75 * 784));
    CHECK(!memcmp(e.classes, e2.classes, sizeof(ml_class_ref) * 5));
    CHECK(!memcmp(e.query_index, e2.query_index, sizeof(int64_t) * 75));
    float mx = 0;
    int finite = 1;
    for (int i = 0; i < 75 * 784; i++) mx = fmaxf(mx, e.xq[i]), finite &= isfinite(e.xq[i]);
    CHECK(finite && mx > 0.5f && mx <= 1.0f + 1e-6f);

    /* Rotation: one quarter turn counter-clockwise, dst[r][c] = src[c][S-1-r]. */
    static float rot[784];
    ml_image_set_copy(&g_set, 5, 1, NULL, NULL, rot);
    const float *src = g_set.x + 5 * 784;
    int bad = 0;
    for (int rr = 0; rr < 28; rr++)
        for (int c = 0; c < 28; c++) bad += rot[rr * 28 + c] != src[c * 28 + 27 - rr];
    CHECK_INT_EQ(bad, 0);

    /* Errors: too many ways, too many shots + queries, empty class, bad class. */
    ml_episode e3;
    ml_episode_init(&e3, 300, 1, 1, 28);
    CHECK_INT_EQ(ml_episode_sample(&e3, &g_set, &sp.part[ML_SPLIT_TEST], NULL, &r, err, sizeof err), ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "300 ways");
    ml_episode_free(&e3);
    ml_episode_init(&e3, 5, 10, 11, 28);
    CHECK_INT_EQ(ml_episode_sample(&e3, &g_set, &sp.part[ML_SPLIT_TEST], NULL, &r, err, sizeof err), ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "10 shots + 11 queries");
    CHECK_STR_CONTAINS(err, "/character");
    ml_episode_free(&e3);
    ml_image_set fake = g_set; /* a shallow copy with class 0 emptied */
    int64_t starts[243];
    memcpy(starts, g_set.class_start, sizeof starts);
    starts[1] = 0;
    fake.class_start = starts;
    ml_class_list one = {1, (ml_class_ref[]){{0, 0}}};
    ml_episode_init(&e3, 1, 1, 1, 28);
    CHECK_INT_EQ(ml_episode_sample(&e3, &fake, &one, NULL, &r, err, sizeof err), ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "empty");
    one.items[0].cls = 9999;
    CHECK_INT_EQ(ml_episode_sample(&e3, &g_set, &one, NULL, &r, err, sizeof err), ML_ERR_ARG);
    ml_episode_free(&e3);
    CHECK_INT_EQ(ml_episode_init(&e3, 0, 1, 1, 28), ML_ERR_ARG);

    ml_episode_free(&e);
    ml_episode_free(&e2);
    ml_class_list_free(&train_rot);
    ml_class_split_free(&sp);
}

/* ---- Lake's runs -------------------------------------------------------------------------- */

/* The compact form (8-bit codes, rare values as escapes) holds the same
 * bits: every copy (quarter turns, augmentation with the same draws) equals
 * the float set's, and episodes drawn then filled equal sampled ones. */
static void test_compact_set(void) {
    if (!g_have_data || !g_set.n) return;
    const size_t n = (size_t)g_set.n * 784;
    ml_image_set c = g_set; /* shallow: names shared, pixels its own */
    c.x = ml_malloc(n * sizeof(float));
    CHECK(c.x != NULL);
    if (!c.x) return;
    memcpy(c.x, g_set.x, n * sizeof(float));
    CHECK_INT_EQ(ml_image_set_compact(&c), ML_OK);
    CHECK(c.x == NULL && c.codes != NULL && c.escapes != NULL && c.escape_start != NULL);
    printf("  distinct values: %d, escaped pixels: %lld of %zu\n", c.n_palette, (long long)c.escape_start[c.n], n);
    CHECK(c.n_palette > ML_IMAGE_ESCAPE && c.n_palette <= 4096);
    CHECK(c.escape_start[0] == 0 && c.escape_start[c.n] > 0 && (size_t)c.escape_start[c.n] < n / 10);
    static float a[784], b[784];
    const ml_augment aug = {10.0, 0.9, 1.1, 2.0, 0.5, 0.5};
    int bad = 0;
    for (int64_t i = 0; i < g_set.n; i += 7)
        for (int rot = 0; rot < 4; rot++) {
            ml_rng ra, rb;
            ml_rng_seed(&ra, (uint64_t)i);
            ml_rng_seed(&rb, (uint64_t)i);
            const ml_augment *g = i % 2 ? &aug : NULL;
            CHECK_INT_EQ(ml_image_set_copy(&g_set, i, rot, g, &ra, a), ML_OK);
            CHECK_INT_EQ(ml_image_set_copy(&c, i, rot, g, &rb, b), ML_OK);
            bad += memcmp(a, b, sizeof a) != 0 || ra.s[0] != rb.s[0];
        }
    CHECK_INT_EQ(bad, 0);
    /* Drawn now, filled later: the same episodes and the same rng stream. */
    ml_class_list all;
    CHECK_INT_EQ(ml_class_list_all(&g_set, &all), ML_OK);
    ml_episode e, d;
    CHECK_INT_EQ(ml_episode_init(&e, 5, 1, 15, 28), ML_OK);
    CHECK_INT_EQ(ml_episode_init_drawn(&d, 5, 1, 15, 28), ML_OK);
    CHECK(d.xs == NULL && d.xq == NULL);
    static float xs[5 * 784], xq[75 * 784], ys2[5 * 784], yq2[75 * 784];
    ml_rng ra, rb;
    ml_rng_seed(&ra, 7);
    ml_rng_seed(&rb, 7);
    int same = 1;
    CHECK(e.xq == e.xs + 5 * 784); /* one block: support then queries */
    for (int t = 0; t < 20; t++) {
        CHECK_INT_EQ(ml_episode_sample_weighted(&e, &g_set, &all, NULL, NULL, &ra, NULL, 0), ML_OK);
        CHECK_INT_EQ(ml_episode_draw_weighted(&d, &c, &all, NULL, &rb, NULL, 0), ML_OK);
        CHECK_INT_EQ(ml_episode_fill(&d, &c, xs, xq), ML_OK);
        /* in three parts of rows, the first ending inside the queries */
        const int cut = 3 + t, rows = 80;
        CHECK_INT_EQ(ml_episode_fill_rows(&d, &c, ys2, yq2, cut, rows), ML_OK);
        CHECK_INT_EQ(ml_episode_fill_rows(&d, &c, ys2, yq2, 0, 2), ML_OK);
        CHECK_INT_EQ(ml_episode_fill_rows(&d, &c, ys2, yq2, 2, cut), ML_OK);
        CHECK_INT_EQ(ml_episode_fill_rows(&d, &c, ys2, yq2, 0, rows + 1), ML_ERR_ARG);
        same &= !memcmp(ys2, xs, sizeof xs) && !memcmp(yq2, xq, sizeof xq);
        same &= !memcmp(e.xs, xs, sizeof xs) && !memcmp(e.xq, xq, sizeof xq) &&
                !memcmp(e.ys, d.ys, 5 * sizeof(int32_t)) && !memcmp(e.yq, d.yq, 75 * sizeof(int32_t)) &&
                !memcmp(e.query_index, d.query_index, 75 * sizeof(int64_t)) && ra.s[0] == rb.s[0];
    }
    CHECK(same);
    ml_episode_free(&e);
    ml_episode_free(&d);
    ml_class_list_free(&all);
    ml_free(c.codes);
    ml_free(c.escapes);
    ml_free(c.escape_start);
    ml_free(c.palette);
}

/* Escapes on a made-up set: 300 distinct values (0 and -0 among them) so
 * that the 45 rarest go through the escapes; every image decodes to the
 * same bits. A set with more than 4,096 values stays float. */
static void test_compact_escapes(void) {
    enum { S = 16, N = 5, P = S * S };
    ml_image_set s = {.n = N, .size = S};
    s.x = ml_malloc(sizeof(float) * N * P);
    static float want[N * P], got[P];
    for (int k = 0; k < N * P; k++) /* value v occurs about 300 - v times */
        want[k] = k % 3 ? 0.5f : (float)(k % 300) / 7.0f;
    want[1] = -0.0f;
    want[2] = 0.0f;
    for (int k = 0; k < 300; k++) want[3 * k] = (float)k / 7.0f; /* every value at least once */
    memcpy(s.x, want, sizeof want);
    CHECK_INT_EQ(ml_image_set_compact(&s), ML_OK);
    CHECK(s.x == NULL && s.codes != NULL);
    CHECK(s.n_palette > ML_IMAGE_ESCAPE);
    CHECK(s.palette[0] == 0.5f); /* the most frequent first */
    int64_t escaped = 0;
    for (int k = 0; k < N * P; k++) escaped += s.codes[k] == ML_IMAGE_ESCAPE;
    CHECK(escaped > 0 && escaped == s.escape_start[N]);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        CHECK_INT_EQ(ml_image_set_copy(&s, i, 0, NULL, NULL, got), ML_OK);
        bad += memcmp(got, want + i * P, sizeof got) != 0;
    }
    CHECK_INT_EQ(bad, 0);
    ml_image_set_free(&s);

    /* Out of memory at each of its allocations: ML_ERR_NOMEM, the set as it
     * was, nothing left allocated. */
    int failed = 0;
    for (uint64_t k = 1; k <= 8; k++) {
        ml_image_set f = {.n = N, .size = S};
        f.x = ml_malloc(sizeof want);
        memcpy(f.x, want, sizeof want);
        ml_allocator counting = ml_test_counting_allocator();
        ml_test_live = 0;
        ml_set_allocator(&counting);
        ml_alloc_fail_after(k);
        ml_status st = ml_image_set_compact(&f);
        ml_alloc_fail_after(0);
        ml_set_allocator(NULL);
        if (st == ML_ERR_NOMEM) {
            failed++;
            CHECK(f.x != NULL && f.codes == NULL && !memcmp(f.x, want, sizeof want));
            CHECK_INT_EQ(ml_test_live, 0);
        } else {
            CHECK_INT_EQ(st, ML_OK);
        }
        ml_image_set_free(&f);
    }
    CHECK_INT_EQ(failed, 6); /* table, counts, palette, ranking, escapes, starts */

    enum { M = 5000 };
    ml_image_set many = {.n = (M + 63) / 64, .size = 8};
    many.x = ml_calloc((size_t)many.n * 64, sizeof(float));
    for (int k = 0; k < M; k++) many.x[k] = (float)k;
    CHECK_INT_EQ(ml_image_set_compact(&many), ML_OK);
    CHECK(many.x != NULL && many.codes == NULL);
    ml_image_set_free(&many);
}

static void test_lake_runs(void) {
    if (!g_have_data) return;
    char err[512] = "";
    ml_lake_runs lr;
    double t0 = ml_now();
    ml_status st = ml_lake_runs_load(g_runs, NULL, &lr, err, sizeof err);
    printf("  Lake runs: 800 PNGs in %.1f ms\n", (ml_now() - t0) * 1e3);
    CHECK_INT_EQ(st, ML_OK);
    if (st != ML_OK) {
        fprintf(stderr, "  %s\n", err);
        return;
    }
    CHECK_INT_EQ(lr.n_runs, 20);
    CHECK_INT_EQ(lr.n_train, 20);
    CHECK_INT_EQ(lr.n_test, 20);
    CHECK_INT_EQ(lr.raw_h, 105);
    CHECK_INT_EQ(lr.raw_w, 105);
    int bad = 0, not_perm = 0;
    for (int r = 0; r < 20; r++) {
        int seen[20] = {0};
        for (int j = 0; j < 20; j++) {
            int l = lr.test_label[r * 20 + j];
            bad += l < 0 || l >= 20;
            if (l >= 0 && l < 20) seen[l]++;
        }
        for (int j = 0; j < 20; j++) not_perm += seen[j] != 1;
    }
    CHECK_INT_EQ(bad, 0);
    CHECK_INT_EQ(not_perm, 0); /* every class has exactly one test item */
    /* run01 item01 is class08 (class_labels.txt, first line). */
    CHECK_INT_EQ(lr.test_label[0], 7);
    /* 1-bit images: the mask, as floats, resizes to exactly the stored image. */
    static float f[105 * 105], d[28 * 28];
    for (int i = 0; i < 105 * 105; i++) f[i] = lr.test_raw[(size_t)3 * 105 * 105 + i];
    ml_image_resize_area(f, 105, 105, d, 28, 28);
    double md = 0;
    for (int i = 0; i < 784; i++) md = fmax(md, fabs(d[i] - lr.test_x[3 * 784 + i]));
    CHECK_NEAR(md, 0, 1e-6, 0);
    ml_lake_runs_free(&lr);
    /* The runs are not an Omniglot image set, and say so. */
    ml_image_set s;
    const char *one[1] = {g_runs};
    CHECK_INT_EQ(ml_omniglot_load(one, 1, NULL, &s, err, sizeof err), ML_ERR_FORMAT);
    CHECK_STR_CONTAINS(err, "ml_lake_runs_load");
}

/* ---- a user's folders ----------------------------------------------------------------------- */

static void put(const char *dir, const char *rel, const void *data, size_t len) {
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    char *slash = strrchr(p, '/');
    *slash = 0;
    ml_mkdir_p(p, NULL, 0);
    *slash = '/';
    write_file(p, data, len);
}

static void test_image_folders(void) {
    if (!g_have_data || !g_set.n) return;
    char err[512], sup[1100], qry[1100];
    snprintf(sup, sizeof sup, "%s/support", g_tmp);
    snprintf(qry, sizeof qry, "%s/query", g_tmp);
    const char *files[4] = {"Balinese/character01/0108_01.png", "Balinese/character01/0108_02.png",
                            "Balinese/character02/0109_01.png", "Balinese/character02/0109_02.png"};
    for (int i = 0; i < 4; i++) {
        char name[256];
        snprintf(name, sizeof name, "images_background_small1/%s", files[i]);
        size_t len;
        uint8_t *png = zip_entry(g_small1, name, &len);
        if (!png) continue;
        put(sup, i < 2 ? (i ? "alpha/b.png" : "alpha/a.png") : (i == 2 ? "beta/a.png" : "beta/b.png"), png, len);
        put(qry, i == 0 ? "q1.png" : i == 1 ? "q2.png" : i == 2 ? "q3.png" : "q4.png", png, len);
        free(png);
    }
    put(sup, "README.txt", "not an image", 12);
    char p0[1200]; /* leftovers of an interrupted earlier run */
    snprintf(p0, sizeof p0, "%s/q5.png", qry);
    remove(p0);
    snprintf(p0, sizeof p0, "%s/stray.png", sup);
    remove(p0);
    snprintf(p0, sizeof p0, "%s/gamma", sup);
    rmdir(p0);
    ml_image_set s;
    CHECK_INT_EQ(ml_image_folder_load(sup, NULL, &s, err, sizeof err), ML_OK);
    CHECK_INT_EQ(s.n_classes, 2);
    CHECK_INT_EQ(s.n, 4);
    CHECK(s.labelled);
    if (s.n == 4) {
        CHECK_STR_CONTAINS(s.class_names[1], "beta");
        CHECK_STR_CONTAINS(s.image_names[1], "alpha/b.png");
        /* AUTO inversion sees white paper: same pixels as the Omniglot set. */
        CHECK(!memcmp(s.x, g_set.x, sizeof(float) * 2 * 784));
    }
    ml_image_set_free(&s);
    CHECK_INT_EQ(ml_image_folder_load(qry, NULL, &s, err, sizeof err), ML_OK);
    CHECK_INT_EQ(s.n, 4);
    CHECK_INT_EQ(s.labelled, 0);
    CHECK_INT_EQ(s.n_classes, 1);
    ml_image_set_free(&s);

    /* Empty class folder, mixed layout, missing folder, garbage PNG. */
    char p[1200];
    snprintf(p, sizeof p, "%s/gamma", sup);
    ml_mkdir_p(p, NULL, 0);
    CHECK_INT_EQ(ml_image_folder_load(sup, NULL, &s, err, sizeof err), ML_ERR_FORMAT);
    CHECK_STR_CONTAINS(err, "gamma/: empty class");
    rmdir(p);
    put(sup, "stray.png", "x", 1);
    CHECK_INT_EQ(ml_image_folder_load(sup, NULL, &s, err, sizeof err), ML_ERR_FORMAT);
    CHECK_STR_CONTAINS(err, "both PNG files and class folders");
    snprintf(p, sizeof p, "%s/stray.png", sup);
    remove(p);
    snprintf(p, sizeof p, "%s/nope", g_tmp);
    CHECK_INT_EQ(ml_image_folder_load(p, NULL, &s, err, sizeof err), ML_ERR_IO);
    CHECK_STR_CONTAINS(err, "nope");
    put(qry, "q5.png", "\x89PNG\r\n\x1a\n garbage", 17);
    CHECK(ml_image_folder_load(qry, NULL, &s, err, sizeof err) != ML_OK);
    CHECK_STR_CONTAINS(err, "q5.png: PNG: ");
    CHECK(s.x == NULL && s.n == 0);
    snprintf(p, sizeof p, "%s/q5.png", qry);
    remove(p);

    /* Injected allocation failures: a status, never a crash (ASan checks leaks). */
    int fails = 0, oks = 0;
    for (uint64_t n = 1; n < 60; n++) {
        ml_alloc_fail_after(n);
        ml_status st = ml_image_folder_load(sup, NULL, &s, err, sizeof err);
        ml_alloc_fail_after(0);
        if (st == ML_OK) oks++;
        else fails += st == ML_ERR_NOMEM;
        ml_image_set_free(&s);
    }
    CHECK(fails > 5);
    CHECK(oks > 0);
}

/* Omniglot unpacked: one character copied out of small1 into a folder tree,
 * loaded together with small2 (which holds the same character). */
static void test_omniglot_folder(void) {
    if (!g_have_data || !g_set.n) return;
    char err[512], root[1100], rel[256];
    snprintf(root, sizeof root, "%s/unpacked", g_tmp);
    for (int i = 1; i <= 20; i++) {
        char name[256];
        snprintf(name, sizeof name, "images_background_small1/Greek/character01/0394_%02d.png", i);
        size_t len;
        uint8_t *png = zip_entry(g_small1, name, &len);
        CHECK(png != NULL);
        if (!png) return;
        snprintf(rel, sizeof rel, "images_background_small1/Greek/character01/0394_%02d.png", i);
        put(root, rel, png, len);
        free(png);
    }
    ml_image_set s;
    const char *one[1] = {root};
    CHECK_INT_EQ(ml_omniglot_load(one, 1, NULL, &s, err, sizeof err), ML_OK);
    CHECK_INT_EQ(s.n_classes, 1);
    CHECK_INT_EQ(s.n, 20);
    int k = -1;
    for (int c = 0; c < g_set.n_classes; c++)
        if (!strcmp(g_set.class_names[c], "Greek/character01")) k = c;
    CHECK(k >= 0);
    if (s.n == 20 && k >= 0) {
        CHECK_STR_CONTAINS(s.class_names[0], "Greek/character01");
        CHECK(!memcmp(s.x, g_set.x + g_set.class_start[k] * 784, sizeof(float) * 20 * 784));
    }
    ml_image_set_free(&s);
    const char *two[2] = {root, g_small2};
    CHECK_INT_EQ(ml_omniglot_load(two, 2, NULL, &s, err, sizeof err), ML_OK);
    CHECK_INT_EQ(s.n_classes, 156); /* the folder's character is one of small2's */
    ml_image_set_free(&s);
}

/* ---- corrupt archives ------------------------------------------------------------------------ */

static void test_corrupt_archives(void) {
    char err[512], p[1200];
    ml_image_set s;
    const char *one[1];
    snprintf(p, sizeof p, "%s/does_not_exist.zip", g_tmp);
    one[0] = p;
    CHECK_INT_EQ(ml_omniglot_load(one, 1, NULL, &s, err, sizeof err), ML_ERR_IO);
    CHECK_STR_CONTAINS(err, "does_not_exist.zip");
    ml_lake_runs lr;
    CHECK(ml_lake_runs_load(p, NULL, &lr, err, sizeof err) != ML_OK);
    if (!g_have_data) return;

    /* A truncated copy of the zip: its central directory is gone. */
    FILE *f = fopen(g_small1, "rb");
    static uint8_t buf[1 << 21];
    size_t len = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    snprintf(p, sizeof p, "%s/truncated.zip", g_tmp);
    write_file(p, buf, len / 2);
    CHECK_INT_EQ(ml_omniglot_load(one, 1, NULL, &s, err, sizeof err), ML_ERR_FORMAT);
    CHECK_STR_CONTAINS(err, "truncated.zip");
    CHECK(s.x == NULL);

    /* A zip with a garbage PNG entry, and one with a PNG cut short. */
    size_t plen;
    uint8_t *png = zip_entry(g_small1, k_png_name, &plen);
    snprintf(p, sizeof p, "%s/bad_entry.zip", g_tmp);
    for (int variant = 0; variant < 2 && png; variant++) {
        remove(p);
        int code;
        zip_t *z = zip_open(p, ZIP_CREATE | ZIP_TRUNCATE, &code);
        zip_source_t *ok = zip_source_buffer(z, png, plen, 0);
        zip_file_add(z, "Alpha/character01/good.png", ok, 0);
        static const char junk[] = "definitely not a PNG";
        zip_source_t *bad = variant == 0 ? zip_source_buffer(z, junk, sizeof junk, 0)
                                         : zip_source_buffer(z, png, plen - 30, 0);
        zip_file_add(z, "Alpha/character01/bad.png", bad, 0);
        CHECK_INT_EQ(zip_close(z), 0);
        CHECK_INT_EQ(ml_omniglot_load(one, 1, NULL, &s, err, sizeof err), ML_ERR_FORMAT);
        CHECK_STR_CONTAINS(err, "bad_entry.zip: Alpha/character01/bad.png: ");
        CHECK(s.x == NULL);
    }
    /* The same character twice with different drawings is refused. */
    snprintf(p, sizeof p, "%s/conflict.zip", g_tmp);
    remove(p);
    int code;
    zip_t *z = zip_open(p, ZIP_CREATE | ZIP_TRUNCATE, &code);
    zip_file_add(z, "Greek/character01/0394_01.png", zip_source_buffer(z, png, plen, 0), 0);
    zip_close(z);
    const char *two[2] = {g_small1, p};
    CHECK_INT_EQ(ml_omniglot_load(two, 2, NULL, &s, err, sizeof err), ML_ERR_FORMAT);
    CHECK_STR_CONTAINS(err, "Greek/character01");

    /* Injected allocation failures while reading a zip (the one-character
     * conflict.zip, twice: the duplicate check runs too): a status, no leak. */
    const char *same[2] = {p, p};
    int fails = 0, oks = 0;
    for (uint64_t n = 1; n < 40; n++) {
        ml_alloc_fail_after(n);
        ml_status st = ml_omniglot_load(same, 2, NULL, &s, err, sizeof err);
        ml_alloc_fail_after(0);
        oks += st == ML_OK;
        fails += st == ML_ERR_NOMEM;
        CHECK(st == ML_OK || st == ML_ERR_NOMEM);
        if (st == ML_OK) CHECK_INT_EQ(s.n_classes, 1);
        ml_image_set_free(&s);
    }
    CHECK(fails > 5 && oks > 0);
    free(png);
}

int main(void) {
    setup_paths();
    ML_RUN(test_resize_area);
    ML_RUN(test_png_decode);
    ML_RUN(test_omniglot_load);
    ML_RUN(test_splits);
    ML_RUN(test_episodes);
    ML_RUN(test_compact_set);
    ML_RUN(test_compact_escapes);
    ML_RUN(test_lake_runs);
    ML_RUN(test_image_folders);
    ML_RUN(test_omniglot_folder);
    ML_RUN(test_corrupt_archives);
    ml_image_set_free(&g_set);
    return ml_test_summary();
}
