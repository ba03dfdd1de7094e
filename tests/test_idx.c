/* test_idx.c: the IDX reader on small files written here (plain and gzip'd),
 * every malformed-file case with its one-line message, allocation failures
 * without leaks, a truncation/bit-flip sweep, and Fashion-MNIST if installed. */
#include "metalearn/data.h"
#include "ml_test.h"

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

static char g_dir[512];

/* ---- the counting allocator (ml_test.h): outstanding blocks must return to zero */
static ml_allocator g_counting;

/* ---- writing test files ----------------------------------------------------- */

static const char *tmp_path(const char *name) {
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

static void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void write_bytes(const char *path, int gz, const void *data, size_t len) {
    if (gz) {
        gzFile f = gzopen(path, "wb");
        CHECK(f != NULL);
        if (!f) return;
        if (len) CHECK_INT_EQ(gzwrite(f, data, (unsigned)len), len);
        CHECK_INT_EQ(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        CHECK(f != NULL);
        if (!f) return;
        if (len) CHECK_INT_EQ(fwrite(data, 1, len, f), len);
        fclose(f);
    }
}

/* Header (magic, dims) followed by `len` payload bytes. */
static void write_idx(const char *path, int gz, uint32_t magic, int nd, const uint32_t *dims,
                      const uint8_t *payload, size_t len) {
    size_t hl = 4 + 4 * (size_t)nd;
    unsigned char *buf = malloc(hl + len + 1);
    put_be32(buf, magic);
    for (int i = 0; i < nd; i++) put_be32(buf + 4 + 4 * i, dims[i]);
    if (len) memcpy(buf + hl, payload, len);
    write_bytes(path, gz, buf, hl + len);
    free(buf);
}

/* 5 images of 3x2, pixel i*6+j = 10*i + j, labels 0..4 then. */
enum { NI = 5, IH = 3, IW = 2 };
static uint8_t g_pix[NI * IH * IW], g_lab[NI] = {3, 0, 2, 1, 2};

static void write_good(const char *stem_images, const char *stem_labels, int gz) {
    uint32_t di[3] = {NI, IH, IW}, dl[1] = {NI};
    write_idx(tmp_path(stem_images), gz, 0x803, 3, di, g_pix, sizeof g_pix);
    write_idx(tmp_path(stem_labels), gz, 0x801, 1, dl, g_lab, sizeof g_lab);
}

static void check_good(const ml_dataset *d) {
    CHECK_INT_EQ(d->n, NI);
    CHECK_INT_EQ(d->c, 1);
    CHECK_INT_EQ(d->h, IH);
    CHECK_INT_EQ(d->w, IW);
    CHECK_INT_EQ(d->n_classes, 10);
    if (!d->x || !d->y) return;
    for (int i = 0; i < NI * IH * IW; i++) CHECK_NEAR(d->x[i], g_pix[i] / 255.0f, 0, 0);
    CHECK_NEAR(d->x[7], 11.0f / 255.0f, 0, 0); /* image 1, row 0, col 1 */
    for (int i = 0; i < NI; i++) CHECK_INT_EQ(d->y[i], g_lab[i]);
}

/* ---- good files -------------------------------------------------------------- */

static void test_read_u8(void) {
    uint32_t dims[2] = {3, 4};
    uint8_t v[12];
    for (int i = 0; i < 12; i++) v[i] = (uint8_t)(i * 20);
    for (int gz = 0; gz < 2; gz++) {
        const char *p = tmp_path(gz ? "m.idx2.gz" : "m.idx2");
        write_idx(p, gz, 0x802, 2, dims, v, 12);
        int nd = -1;
        int64_t d[3];
        uint8_t *data = NULL;
        char err[256] = "junk";
        CHECK_INT_EQ(ml_idx_read_u8(p, &nd, d, &data, err, sizeof err), ML_OK);
        CHECK_INT_EQ(err[0], 0);
        CHECK_INT_EQ(nd, 2);
        CHECK_INT_EQ(d[0], 3);
        CHECK_INT_EQ(d[1], 4);
        CHECK_INT_EQ(d[2], 1);
        CHECK(data && memcmp(data, v, 12) == 0);
        ml_free(data);
    }
}

static void test_load_dir_gz_plain_alt(void) {
    ml_dataset d;
    char err[512];
    /* gzip'd, official names */
    write_good("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 1);
    CHECK_INT_EQ(ml_dataset_load_idx(g_dir, "train", &d, err, sizeof err), ML_OK);
    check_good(&d);
    ml_dataset_free(&d);
    CHECK(d.x == NULL && d.n == 0);
    /* plain, no .gz */
    write_good("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 0);
    CHECK_INT_EQ(ml_dataset_load_idx(g_dir, "test", &d, err, sizeof err), ML_OK);
    check_good(&d);
    ml_dataset_free(&d);
    unlink(tmp_path("t10k-images-idx3-ubyte"));
    unlink(tmp_path("t10k-labels-idx1-ubyte"));
    /* MNIST's alternate "images.idx3-ubyte" spelling, plain */
    write_good("t10k-images.idx3-ubyte", "t10k-labels.idx1-ubyte", 0);
    CHECK_INT_EQ(ml_dataset_load_idx(g_dir, "t10k", &d, err, sizeof err), ML_OK);
    check_good(&d);
    ml_dataset_free(&d);
    unlink(tmp_path("t10k-images.idx3-ubyte"));
    unlink(tmp_path("t10k-labels.idx1-ubyte"));

    /* plain bytes under a .gz name: gzread passes them through */
    write_good("x-images.gz", "x-labels.gz", 0);
    CHECK_INT_EQ(ml_dataset_load_idx_files(tmp_path("x-images.gz"), tmp_path("x-labels.gz"), 0, &d,
                                           err, sizeof err),
                 ML_OK);
    CHECK_INT_EQ(d.n_classes, 4); /* inferred: max label 3 */
    ml_dataset_free(&d);

    CHECK_INT_EQ(ml_dataset_load_idx(g_dir, "val", &d, err, sizeof err), ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "unknown split \"val\"");
}

static void test_stats_normalize(void) {
    ml_dataset d;
    char err[512];
    write_good("s-images.gz", "s-labels.gz", 1);
    CHECK_INT_EQ(ml_dataset_load_idx_files(tmp_path("s-images.gz"), tmp_path("s-labels.gz"), 10, &d,
                                           err, sizeof err),
                 ML_OK);
    double mean, std, ref_m = 0, ref_v = 0;
    for (int i = 0; i < NI * IH * IW; i++) ref_m += g_pix[i] / 255.0;
    ref_m /= NI * IH * IW;
    for (int i = 0; i < NI * IH * IW; i++) ref_v += (g_pix[i] / 255.0 - ref_m) * (g_pix[i] / 255.0 - ref_m);
    ref_v /= NI * IH * IW;
    CHECK_INT_EQ(ml_dataset_channel_stats(&d, &mean, &std), ML_OK);
    CHECK_NEAR(mean, ref_m, 1e-7, 0);
    CHECK_NEAR(std, sqrt(ref_v), 1e-7, 0);
    CHECK_INT_EQ(ml_dataset_normalize(&d, &mean, &std), ML_OK);
    double m2, s2;
    ml_dataset_channel_stats(&d, &m2, &s2);
    CHECK_NEAR(m2, 0.0, 1e-6, 0);
    CHECK_NEAR(s2, 1.0, 1e-6, 0);
    double zero = 0.0;
    CHECK_INT_EQ(ml_dataset_normalize(&d, &mean, &zero), ML_ERR_ARG);
    int64_t counts[10];
    ml_dataset_class_counts(&d, counts);
    CHECK_INT_EQ(counts[2], 2);
    CHECK_INT_EQ(counts[9], 0);
    ml_dataset_free(&d);
}

/* ---- bad files: status, file name and reason in one line ----------------------- */

static ml_status load_pair(const char *img, const char *lab, int n_classes, char *err, size_t len) {
    ml_dataset d;
    memset(&d, 0xAB, sizeof d); /* must be zeroed on failure */
    ml_status st = ml_dataset_load_idx_files(tmp_path(img), tmp_path(lab), n_classes, &d, err, len);
    if (st != ML_OK) CHECK(d.x == NULL && d.y == NULL && d.n == 0);
    ml_dataset_free(&d);
    CHECK(strchr(err, '\n') == NULL);
    return st;
}

static void test_missing_file(void) {
    char err[512];
    ml_dataset d;
    CHECK_INT_EQ(load_pair("nope-images", "nope-labels", 10, err, sizeof err), ML_ERR_IO);
    CHECK_STR_CONTAINS(err, "/nope-images: cannot open: No such file or directory");
    char empty[1024];
    snprintf(empty, sizeof empty, "%s", tmp_path("emptydir"));
    mkdir(empty, 0700);
    CHECK_INT_EQ(ml_dataset_load_idx(empty, "train", &d, err, sizeof err), ML_ERR_IO);
    CHECK_STR_CONTAINS(err, "emptydir/train-images-idx3-ubyte.gz: cannot open: No such file");
    rmdir(empty);
    /* images present, labels missing */
    write_good("m-images.gz", "unused.gz", 1);
    CHECK_INT_EQ(load_pair("m-images.gz", "m-labels.gz", 10, err, sizeof err), ML_ERR_IO);
    CHECK_STR_CONTAINS(err, "/m-labels.gz: cannot open");
    /* a directory where a file should be */
    CHECK(load_pair("", "m-labels.gz", 10, err, sizeof err) != ML_OK);
    CHECK_STR_CONTAINS(err, g_dir);
}

static void test_truncated_header(void) {
    char err[512];
    unsigned char h[6] = {0, 0, 8, 3, 0, 0};
    for (int gz = 0; gz < 2; gz++) {
        write_bytes(tmp_path("th-images"), gz, h, 6);
        write_good("unused", "th-labels", gz);
        CHECK_INT_EQ(load_pair("th-images", "th-labels", 10, err, sizeof err), ML_ERR_FORMAT);
        CHECK_STR_CONTAINS(err, "/th-images: truncated header: file has 6 bytes, the header needs 16");
        write_bytes(tmp_path("th-images"), gz, h, 2);
        CHECK_INT_EQ(load_pair("th-images", "th-labels", 10, err, sizeof err), ML_ERR_FORMAT);
        CHECK_STR_CONTAINS(err, "/th-images: truncated header: file has 2 bytes");
        write_bytes(tmp_path("th-images"), gz, h, 0);
        CHECK_INT_EQ(load_pair("th-images", "th-labels", 10, err, sizeof err), ML_ERR_FORMAT);
        CHECK_STR_CONTAINS(err, "/th-images: truncated header: file has 0 bytes");
    }
}

static void test_truncated_data(void) {
    char err[512];
    uint32_t di[3] = {60000, 28, 28}, dl[1] = {60000};
    for (int gz = 0; gz < 2; gz++) {
        write_idx(tmp_path("td-images"), gz, 0x803, 3, di, g_pix, 30);
        write_idx(tmp_path("td-labels"), gz, 0x801, 1, dl, g_lab, sizeof g_lab); /* counts agree */
        CHECK_INT_EQ(load_pair("td-images", "td-labels", 10, err, sizeof err), ML_ERR_FORMAT);
        CHECK_STR_CONTAINS(err, "/td-images: truncated: header says 60000 images of 28x28, file has 30 "
                                "bytes of pixel data");
    }
    /* A gzip stream cut short, not just a short payload. */
    write_good("tz-images.gz", "tz-labels.gz", 1);
    size_t len;
    unsigned char *b = (unsigned char *)ml_test_slurp(tmp_path("tz-images.gz"), &len);
    write_bytes(tmp_path("tz-images.gz"), 0, b, len - 12);
    free(b);
    CHECK_INT_EQ(load_pair("tz-images.gz", "tz-labels.gz", 10, err, sizeof err), ML_ERR_FORMAT);
    CHECK_STR_CONTAINS(err, "/tz-images.gz: ");
    CHECK(strstr(err, "truncated") || strstr(err, "corrupt gzip"));
}

static void test_trailing_data(void) {
    char err[512];
    uint32_t dl[1] = {4}, di[3] = {4, IH, IW};
    write_idx(tmp_path("tr-images"), 0, 0x803, 3, di, g_pix, 4 * IH * IW); /* counts agree */
    write_idx(tmp_path("tr-labels"), 0, 0x801, 1, dl, g_lab, 5);
    CHECK_INT_EQ(load_pair("tr-images", "tr-labels", 10, err, sizeof err), ML_ERR_FORMAT);
    CHECK_STR_CONTAINS(err, "/tr-labels: trailing data: header says 4 labels, file has more than 4");
}

static void test_bad_magic(void) {
    char err[512];
    uint32_t di[3] = {NI, IH, IW};
    write_idx(tmp_path("bm-images.gz"), 1, 0x00000000, 3, di, g_pix, sizeof g_pix);
    write_good("unused", "bm-labels.gz", 1);
    CHECK_INT_EQ(load_pair("bm-images.gz", "bm-labels.gz", 10, err, sizeof err), ML_ERR_FORMAT);
    CHECK_STR_CONTAINS(err, "/bm-images.gz: bad magic 0x00000000, expected 0x00000803 (idx3 ubyte images)");
    /* images and labels swapped */
    CHECK_INT_EQ(load_pair("bm-labels.gz", "bm-labels.gz", 10, err, sizeof err), ML_ERR_FORMAT);
    CHECK_STR_CONTAINS(err, "/bm-labels.gz: bad magic 0x00000801, expected 0x00000803");

    /* generic reader: float IDX and a non-IDX file */
    int nd;
    int64_t d[3];
    uint8_t *data = NULL;
    write_idx(tmp_path("f.idx"), 0, 0x00000D01, 1, di, g_pix, 20);
    CHECK_INT_EQ(ml_idx_read_u8(tmp_path("f.idx"), &nd, d, &data, err, sizeof err), ML_ERR_FORMAT);
    CHECK_STR_CONTAINS(err, "/f.idx: IDX element type 0x0d (float32) not supported");
    write_bytes(tmp_path("f.idx"), 0, "PK\x03\x04hello", 9);
    CHECK_INT_EQ(ml_idx_read_u8(tmp_path("f.idx"), &nd, d, &data, err, sizeof err), ML_ERR_FORMAT);
    CHECK_STR_CONTAINS(err, "/f.idx: bad magic 0x504b0304");
    write_idx(tmp_path("f.idx"), 0, 0x00000804, 1, di, g_pix, 20);
    CHECK_INT_EQ(ml_idx_read_u8(tmp_path("f.idx"), &nd, d, &data, err, sizeof err), ML_ERR_FORMAT);
    CHECK_STR_CONTAINS(err, "/f.idx: IDX file has 4 dimensions");
    CHECK(data == NULL);
}

static void test_dims_zero_and_overflow(void) {
    char err[512];
    int nd;
    int64_t d[3];
    uint8_t *data = NULL;
    uint32_t huge[3] = {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu};
    write_idx(tmp_path("o.idx"), 0, 0x803, 3, huge, g_pix, 10);
    CHECK_INT_EQ(ml_idx_read_u8(tmp_path("o.idx"), &nd, d, &data, err, sizeof err), ML_ERR_FORMAT);
    CHECK_STR_CONTAINS(err, "/o.idx: header says 4294967295x4294967295x4294967295 bytes, which overflows");
    /* Large but representable: must say truncated, not try to allocate 3 GB. */
    uint32_t big[3] = {4000000, 28, 28};
    write_idx(tmp_path("o.idx"), 1, 0x803, 3, big, g_pix, 10);
    CHECK_INT_EQ(ml_idx_read_u8(tmp_path("o.idx"), &nd, d, &data, err, sizeof err), ML_ERR_FORMAT);
    CHECK_STR_CONTAINS(err, "/o.idx: truncated: header says 4000000x28x28 bytes, file has 10 bytes of data");
    uint32_t zero[3] = {5, 0, 2};
    write_idx(tmp_path("o.idx"), 0, 0x803, 3, zero, g_pix, 10);
    CHECK_INT_EQ(ml_idx_read_u8(tmp_path("o.idx"), &nd, d, &data, err, sizeof err), ML_ERR_FORMAT);
    CHECK_STR_CONTAINS(err, "/o.idx: header says dimension 1 has size 0");
    CHECK(data == NULL);
}

/* Counts that disagree are refused from the two headers: a 20 kB gzip that
 * inflates to 16 MB of pixels was read whole first (a 1 MB one: 1 GB). */
static void test_count_mismatch_before_pixels(void) {
    char err[512];
    uint32_t di[3] = {20000, 28, 28}, dl[1] = {NI};
    size_t len = (size_t)di[0] * di[1] * di[2];
    uint8_t *zeros = calloc(len, 1);
    write_idx(tmp_path("cm-images.gz"), 1, 0x803, 3, di, zeros, len);
    free(zeros);
    write_idx(tmp_path("cm-labels.gz"), 1, 0x801, 1, dl, g_lab, NI);
    ml_allocator a = ml_test_counting_allocator();
    ml_set_allocator(&a);
    ml_test_live_bytes = ml_test_peak_bytes = 0;
    CHECK_INT_EQ(load_pair("cm-images.gz", "cm-labels.gz", 10, err, sizeof err), ML_ERR_FORMAT);
    ml_set_allocator(NULL);
    CHECK_STR_CONTAINS(err, "/cm-labels.gz: 5 labels but cm-images.gz has 20000 images");
    CHECK(ml_test_peak_bytes < (1 << 20));
}

static void test_label_mismatch_and_range(void) {
    char err[512];
    uint32_t dl[1] = {NI - 1};
    write_good("lm-images.gz", "unused", 1);
    write_idx(tmp_path("lm-labels.gz"), 1, 0x801, 1, dl, g_lab, NI - 1);
    CHECK_INT_EQ(load_pair("lm-images.gz", "lm-labels.gz", 10, err, sizeof err), ML_ERR_FORMAT);
    CHECK_STR_CONTAINS(err, "/lm-labels.gz: 4 labels but lm-images.gz has 5 images");

    uint8_t bad[NI] = {1, 2, 10, 3, 4};
    dl[0] = NI;
    write_idx(tmp_path("lr-labels.gz"), 1, 0x801, 1, dl, bad, NI);
    CHECK_INT_EQ(load_pair("lm-images.gz", "lr-labels.gz", 10, err, sizeof err), ML_ERR_FORMAT);
    CHECK_STR_CONTAINS(err, "/lr-labels.gz: label 10 at index 2 out of range: expected 0..9");
    CHECK_INT_EQ(load_pair("lm-images.gz", "lr-labels.gz", 0, err, sizeof err), ML_OK);
}

static void test_corrupt_gzip(void) {
    char err[512];
    /* A valid gzip header, then a deflate block of reserved type 3. */
    const unsigned char junk[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0x13, 0x37, 0, 1, 2};
    write_bytes(tmp_path("cg-images.gz"), 0, junk, sizeof junk);
    write_good("unused", "cg-labels.gz", 1);
    CHECK_INT_EQ(load_pair("cg-images.gz", "cg-labels.gz", 10, err, sizeof err), ML_ERR_FORMAT);
    CHECK_STR_CONTAINS(err, "/cg-images.gz: corrupt gzip stream: ");
    /* Payload intact but the trailer CRC wrong: only caught past the end. */
    write_good("cc-images.gz", "cc-labels.gz", 1);
    size_t len;
    unsigned char *b = (unsigned char *)ml_test_slurp(tmp_path("cc-labels.gz"), &len);
    b[len - 8] ^= 0xFF;
    write_bytes(tmp_path("cc-labels.gz"), 0, b, len);
    free(b);
    CHECK_INT_EQ(load_pair("cc-images.gz", "cc-labels.gz", 10, err, sizeof err), ML_ERR_FORMAT);
    CHECK_STR_CONTAINS(err, "/cc-labels.gz: corrupt gzip stream: incorrect data check");
}

/* Every prefix and many single-byte flips of a valid .gz pair: never a crash,
 * never a leak, always an error naming the file or a correct load. */
static void test_sweep_no_crash_no_leak(void) {
    char err[512];
    write_good("sw-images.gz", "sw-labels.gz", 1);
    size_t len;
    unsigned char *orig = (unsigned char *)ml_test_slurp(tmp_path("sw-images.gz"), &len);
    unsigned char *b = malloc(len);
    g_counting = ml_test_counting_allocator();
    ml_set_allocator(&g_counting);
    ml_test_live = 0;
    int ok = 0, bad = 0;
    for (size_t cut = 0; cut < len; cut++) {
        write_bytes(tmp_path("sw-cut.gz"), 0, orig, cut);
        ml_status st = load_pair("sw-cut.gz", "sw-labels.gz", 10, err, sizeof err);
        CHECK(st != ML_OK);
        CHECK_STR_CONTAINS(err, "sw-cut.gz: ");
    }
    for (size_t pos = 0; pos < len; pos++) {
        for (int bit = 0; bit < 8; bit += 3) {
            memcpy(b, orig, len);
            b[pos] ^= (unsigned char)(1u << bit);
            write_bytes(tmp_path("sw-flip.gz"), 0, b, len);
            ml_status st = load_pair("sw-flip.gz", "sw-labels.gz", 10, err, sizeof err);
            if (st == ML_OK)
                ok++; /* e.g. a flipped mtime byte in the gzip header */
            else {
                bad++;
                CHECK_STR_CONTAINS(err, "sw-flip.gz: ");
            }
        }
    }
    ml_set_allocator(NULL);
    CHECK_INT_EQ(ml_test_live, 0);
    CHECK(bad > 0);
    free(b);
    free(orig);
}

static void test_alloc_failure_no_leak(void) {
    char err[512];
    write_good("af-images.gz", "af-labels.gz", 1);
    g_counting = ml_test_counting_allocator();
    ml_set_allocator(&g_counting);
    int nomem = 0;
    for (uint64_t k = 1; k < 50; k++) {
        ml_test_live = 0;
        ml_alloc_fail_after(k);
        ml_dataset d;
        ml_status st = ml_dataset_load_idx_files(tmp_path("af-images.gz"), tmp_path("af-labels.gz"),
                                                 10, &d, err, sizeof err);
        ml_alloc_fail_after(0);
        if (st == ML_OK) {
            check_good(&d);
            ml_dataset_free(&d);
            CHECK_INT_EQ(ml_test_live, 0);
            break;
        }
        nomem++;
        CHECK_INT_EQ(st, ML_ERR_NOMEM);
        CHECK_STR_CONTAINS(err, "out of memory");
        CHECK_INT_EQ(ml_test_live, 0);
    }
    ml_set_allocator(NULL);
    CHECK(nomem >= 4); /* two buffers read, two converted */
}

/* ---- the real thing, if the Debian package is installed ---------------------- */

static void test_fashion_mnist(void) {
    if (access(FASHION_DIR "/train-images-idx3-ubyte.gz", R_OK) != 0) {
        ml_test_skip(FASHION_DIR " not installed (apt install dataset-fashion-mnist)");
        return;
    }
    ml_dataset tr, te;
    char err[512];
    CHECK_INT_EQ(ml_dataset_load_idx(FASHION_DIR, "train", &tr, err, sizeof err), ML_OK);
    CHECK_INT_EQ(ml_dataset_load_idx(FASHION_DIR, "test", &te, err, sizeof err), ML_OK);
    CHECK_INT_EQ(tr.n, 60000);
    CHECK_INT_EQ(te.n, 10000);
    CHECK_INT_EQ(tr.c, 1);
    CHECK_INT_EQ(tr.h, 28);
    CHECK_INT_EQ(tr.w, 28);
    CHECK_INT_EQ(te.h, 28);
    CHECK_INT_EQ(tr.n_classes, 10);
    int64_t ctr[10], cte[10];
    ml_dataset_class_counts(&tr, ctr);
    ml_dataset_class_counts(&te, cte);
    for (int k = 0; k < 10; k++) {
        CHECK_INT_EQ(ctr[k], 6000);
        CHECK_INT_EQ(cte[k], 1000);
    }
    /* The widely quoted Fashion-MNIST statistics. */
    double m, s;
    CHECK_INT_EQ(ml_dataset_channel_stats(&tr, &m, &s), ML_OK);
    CHECK_NEAR(m, 0.2860, 5e-4, 0);
    CHECK_NEAR(s, 0.3530, 5e-4, 0);
    CHECK_INT_EQ(ml_dataset_normalize(&te, &m, &s), ML_OK);
    double m2, s2;
    ml_dataset_channel_stats(&te, &m2, &s2);
    CHECK_NEAR(m2, 0.0, 0.02, 0); /* test split normalised with train numbers */
    CHECK_NEAR(s2, 1.0, 0.02, 0);
    ml_dataset_free(&tr);
    ml_dataset_free(&te);
}

int main(void) {
    for (int i = 0; i < NI * IH * IW; i++) g_pix[i] = (uint8_t)(10 * (i / (IH * IW)) + i % (IH * IW));
    g_pix[NI * IH * IW - 1] = 255;
    const char *base = ml_test_tmp_dir();
    mkdir(base, 0700); /* CTest's ML_TEST_TMP may not exist yet */
    snprintf(g_dir, sizeof g_dir, "%s/ml_test_idx_%ld", base, (long)getpid());
    if (mkdir(g_dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "cannot create %s: %s\n", g_dir, strerror(errno));
        return 1;
    }
    ML_RUN(test_read_u8);
    ML_RUN(test_load_dir_gz_plain_alt);
    ML_RUN(test_stats_normalize);
    ML_RUN(test_missing_file);
    ML_RUN(test_truncated_header);
    ML_RUN(test_truncated_data);
    ML_RUN(test_trailing_data);
    ML_RUN(test_bad_magic);
    ML_RUN(test_dims_zero_and_overflow);
    ML_RUN(test_label_mismatch_and_range);
    ML_RUN(test_count_mismatch_before_pixels);
    ML_RUN(test_corrupt_gzip);
    ML_RUN(test_sweep_no_crash_no_leak);
    ML_RUN(test_alloc_failure_no_leak);
    ML_RUN(test_fashion_mnist);
    /* Everything written went into g_dir, which is ours alone (flat). */
    DIR *dp = opendir(g_dir);
    for (struct dirent *e; dp && (e = readdir(dp));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) unlink(tmp_path(e->d_name));
    if (dp) closedir(dp);
    if (rmdir(g_dir) != 0) fprintf(stderr, "warning: could not remove %s\n", g_dir);
    return ml_test_summary();
}
