/* test_image_limits.c: image readers refuse oversized input before they
 * inflate or decode it (issue 11: a 510 KB zip holding a 500 MB entry was
 * inflated whole; a 10000x10000 PNG took 500 MB), and the limits can be
 * raised through the options or the environment.
 *
 * Each bomb is read under an allocator that refuses any request over 32 MiB:
 * a reader that checks first fails with ML_ERR_FORMAT and a message naming
 * the limit; one that allocates first fails with ML_ERR_NOMEM. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zip.h>
#include <zlib.h>

#include "metalearn/images.h"
#include "metalearn/io.h"
#include "ml_test.h"

#define CAP ((size_t)32 << 20)

static size_t g_largest;
static void *capped_alloc(size_t bytes, void *user) {
    (void)user;
    if (bytes > g_largest) g_largest = bytes;
    return bytes > CAP ? NULL : malloc(bytes);
}
static void capped_free(void *p, void *user) {
    (void)user;
    free(p);
}
static void cap_on(void) {
    static const ml_allocator a = {capped_alloc, capped_free, NULL};
    g_largest = 0;
    ml_set_allocator(&a);
}

static char g_dir[1024];

static const char *tp(const char *name) {
    static char p[4][1200];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", g_dir, name);
    return p[k];
}

/* ---- a PNG whose header claims w x h, with one empty IDAT ------------------- */

static void put_chunk(uint8_t **o, const char *type, const uint8_t *data, uint32_t n) {
    uint8_t *p = *o;
    p[0] = (uint8_t)(n >> 24), p[1] = (uint8_t)(n >> 16), p[2] = (uint8_t)(n >> 8), p[3] = (uint8_t)n;
    memcpy(p + 4, type, 4);
    if (n) memcpy(p + 8, data, n);
    uint32_t c = (uint32_t)crc32(0, p + 4, 4 + n);
    p[8 + n] = (uint8_t)(c >> 24), p[9 + n] = (uint8_t)(c >> 16), p[10 + n] = (uint8_t)(c >> 8),
              p[11 + n] = (uint8_t)c;
    *o = p + 12 + n;
}

static size_t header_only_png(uint8_t *buf, uint32_t w, uint32_t h) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    memcpy(buf, sig, 8);
    uint8_t *o = buf + 8;
    uint8_t ih[13] = {(uint8_t)(w >> 24), (uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w,
                      (uint8_t)(h >> 24), (uint8_t)(h >> 16), (uint8_t)(h >> 8), (uint8_t)h,
                      8, 0, 0, 0, 0}; /* 8-bit gray */
    put_chunk(&o, "IHDR", ih, 13);
    static const uint8_t empty_zlib[] = {0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01};
    put_chunk(&o, "IDAT", empty_zlib, sizeof empty_zlib);
    put_chunk(&o, "IEND", NULL, 0);
    return (size_t)(o - buf);
}

static int write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    size_t k = fwrite(data, 1, len, f);
    return (fclose(f) == 0) && k == len;
}

static void test_png_dimensions_checked_before_decoding(void) {
    char err[512] = "";
    uint8_t png[128];
    size_t n = header_only_png(png, 8000, 6000); /* 48 M pixels: 48 MB of gray alone */
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/big_png", g_dir);
    ml_mkdir_p(dir, NULL, 0);
    CHECK(write_file(tp("big_png/huge.png"), png, n));
    ml_image_set s;
    cap_on();
    ml_status st = ml_image_folder_load(dir, NULL, &s, err, sizeof err);
    ml_set_allocator(NULL);
    CHECK_INT_EQ(st, ML_ERR_FORMAT);
    CHECK_STR_CONTAINS(err, "huge.png: PNG: image is 8000x6000, more than the limit of 16777216 pixels");
    CHECK_STR_CONTAINS(err, "ML_MAX_IMAGE_PIXELS");
    CHECK(g_largest <= CAP);
    CHECK(strchr(err, '\n') == NULL);

    /* The public decoder applies the same limit. */
    uint8_t *px = NULL;
    int w = 0, h = 0;
    cap_on();
    st = ml_png_decode_gray8(png, n, "huge.png", &px, &w, &h, err, sizeof err);
    ml_set_allocator(NULL);
    CHECK_INT_EQ(st, ML_ERR_FORMAT);
    CHECK_STR_CONTAINS(err, "more than the limit");
    ml_free(px);

    /* Raised through the options: past the check, then the (empty) pixel
     * data is the error. A side beyond the limit is refused by spng's own
     * check with the same hint. */
    ml_image_options opt = {.max_pixels = (int64_t)8000 * 6000};
    st = ml_image_folder_load(dir, &opt, &s, err, sizeof err);
    CHECK(st != ML_OK);
    CHECK(strstr(err, "more than the limit") == NULL);
    CHECK_STR_CONTAINS(err, "huge.png: PNG: ");
    n = header_only_png(png, 20000, 1);
    CHECK(write_file(tp("big_png/huge.png"), png, n));
    opt.max_pixels = 10000;
    CHECK_INT_EQ(ml_image_folder_load(dir, &opt, &s, err, sizeof err), ML_ERR_FORMAT);
    CHECK_STR_CONTAINS(err, "limit of 10000 pixels");
}

static void test_zip_entry_size_checked_before_inflating(void) {
    /* 48 MiB of zeros deflate to about 48 KB. */
    const size_t big = (size_t)48 << 20;
    void *zeros = calloc(1, big);
    const char *p = tp("bomb.zip");
    remove(p);
    int code = 0;
    zip_t *z = zip_open(p, ZIP_CREATE | ZIP_TRUNCATE, &code);
    CHECK(z != NULL);
    if (!z || !zeros) {
        free(zeros);
        return;
    }
    zip_file_add(z, "Alpha/character01/x.png", zip_source_buffer(z, zeros, big, 0), 0);
    CHECK_INT_EQ(zip_close(z), 0);
    free(zeros);

    char err[512] = "";
    ml_image_set s;
    const char *one[1] = {p};
    cap_on();
    ml_status st = ml_omniglot_load(one, 1, NULL, &s, err, sizeof err);
    ml_set_allocator(NULL);
    CHECK_INT_EQ(st, ML_ERR_FORMAT);
    CHECK_STR_CONTAINS(err, "bomb.zip: Alpha/character01/x.png: 50331648 bytes, more than the limit of 16777216");
    CHECK_STR_CONTAINS(err, "ML_MAX_IMAGE_BYTES");
    CHECK(g_largest <= CAP);

    /* Lake's runs read entries the same way. */
    ml_lake_runs lr;
    cap_on();
    st = ml_lake_runs_load(p, NULL, &lr, err, sizeof err);
    ml_set_allocator(NULL);
    CHECK(st != ML_OK && st != ML_ERR_NOMEM);

    /* Raised through the environment: the entry is read, then it is not a PNG. */
    setenv("ML_MAX_IMAGE_BYTES", "60000000", 1);
    st = ml_omniglot_load(one, 1, NULL, &s, err, sizeof err);
    CHECK_INT_EQ(st, ML_ERR_FORMAT);
    CHECK_STR_CONTAINS(err, "not a PNG");
    /* ... and the options take precedence over it. */
    ml_image_options opt = {.max_bytes = 1000};
    st = ml_omniglot_load(one, 1, &opt, &s, err, sizeof err);
    CHECK_STR_CONTAINS(err, "more than the limit of 1000");
    setenv("ML_MAX_IMAGE_BYTES", "lots", 1);
    st = ml_omniglot_load(one, 1, NULL, &s, err, sizeof err);
    CHECK_INT_EQ(st, ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "ML_MAX_IMAGE_BYTES: 'lots' is not a positive integer");
    unsetenv("ML_MAX_IMAGE_BYTES");
}

static void test_limits_resolution(void) {
    uint64_t b = 0;
    int64_t px = 0;
    char err[256] = "";
    unsetenv("ML_MAX_IMAGE_BYTES");
    unsetenv("ML_MAX_IMAGE_PIXELS");
    CHECK_INT_EQ(ml_image_limits(NULL, &b, &px, err, sizeof err), ML_OK);
    CHECK(b == ML_IMAGE_DEFAULT_MAX_BYTES && px == ML_IMAGE_DEFAULT_MAX_PIXELS);
    setenv("ML_MAX_IMAGE_PIXELS", "123", 1);
    CHECK_INT_EQ(ml_image_limits(NULL, &b, &px, err, sizeof err), ML_OK);
    CHECK_INT_EQ(px, 123);
    ml_image_options opt = {.max_pixels = 7, .max_bytes = 9};
    CHECK_INT_EQ(ml_image_limits(&opt, &b, &px, err, sizeof err), ML_OK);
    CHECK(px == 7 && b == 9);
    setenv("ML_MAX_IMAGE_PIXELS", "0", 1);
    CHECK_INT_EQ(ml_image_limits(NULL, &b, &px, err, sizeof err), ML_ERR_ARG);
    setenv("ML_MAX_IMAGE_PIXELS", "-5", 1);
    CHECK_INT_EQ(ml_image_limits(NULL, &b, &px, err, sizeof err), ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "ML_MAX_IMAGE_PIXELS");
    unsetenv("ML_MAX_IMAGE_PIXELS");
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "%s/image_limits.%d", ml_test_tmp_dir(), (int)getpid());
    ml_mkdir_p(g_dir, NULL, 0);
    ML_RUN(test_limits_resolution);
    ML_RUN(test_png_dimensions_checked_before_decoding);
    ML_RUN(test_zip_entry_size_checked_before_inflating);
    return ml_test_summary();
}
