/* test_io.c: atomic files, mkdir -p, JSON lines, safetensors and config files.
 *
 * Safetensors is cross-checked without the Python package: the test builds
 * the bytes of known files by hand (the layout of the reference
 * implementation's own serialisation test, with F32 for I32) and checks both
 * that we read them and that we write exactly those bytes. Write failures
 * are simulated with RLIMIT_FSIZE (write() fails with EFBIG mid-file) and
 * with paths whose directory is missing or is a regular file. Links the
 * library alone (the command line's parser is tested in test_cli_args.c). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "metalearn/run.h"
#include "metalearn/options.h"
#include "metalearn/core.h"
#include "metalearn/io.h"
#include "ml_test.h"

static char g_dir[512];

/* A path inside this run's scratch directory. */
static const char *tp(const char *name) {
    static char buf[8][768];
    static int k;
    char *b = buf[k++ % 8];
    snprintf(b, sizeof buf[0], "%s/%s", g_dir, name);
    return b;
}

static int write_raw(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, len, f);
    return fclose(f) || w != len ? -1 : 0;
}

static int file_equals(const char *path, const void *data, size_t len) {
    size_t n;
    unsigned char *b = (unsigned char *)ml_test_slurp(path, &n);
    int eq = b && n == len && !memcmp(b, data, len);
    free(b);
    return eq;
}

/* Number of leftover "*.tmp.*" files in dir. */
static int count_temp_files(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strstr(e->d_name, ".tmp.")) n++;
    closedir(d);
    return n;
}

static void rm_rf(const char *path) {
    struct stat st;
    if (lstat(path, &st)) return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            for (struct dirent *e; (e = readdir(d));) {
                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
                char sub[1024];
                snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
                rm_rf(sub);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* ==== atomic files ============================================================= */

static void test_atomic_write_and_replace(void) {
    char err[256] = "";
    const char *p = tp("a.txt");
    CHECK_INT_EQ(ml_file_write_atomic(p, "first", 5, err, sizeof err), ML_OK);
    CHECK(file_equals(p, "first", 5));
    CHECK_INT_EQ(ml_file_write_atomic(p, "second!", 7, err, sizeof err), ML_OK);
    CHECK(file_equals(p, "second!", 7));
    CHECK_INT_EQ(ml_file_write_atomic(p, "", 0, err, sizeof err), ML_OK);
    CHECK(file_equals(p, "", 0));
    CHECK_INT_EQ(count_temp_files(g_dir), 0);
}

/* Whole-file reads: any size (past the first 4 KiB block), the size
 * limit, and a missing file, each with a message naming the path. */
static void test_read_text(void) {
    char err[256] = "", *text = NULL;
    size_t len = 0;
    const char *p = tp("big.txt");
    static char data[10000];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (char)('a' + i % 26);
    CHECK_INT_EQ(ml_file_write_atomic(p, data, sizeof data, err, sizeof err), ML_OK);
    CHECK_INT_EQ(ml_file_read_text(p, 0, &text, &len, err, sizeof err), ML_OK);
    CHECK(text && len == sizeof data && !memcmp(text, data, len) && text[len] == 0);
    ml_free(text);
    CHECK_INT_EQ(ml_file_read_text(p, 4096, &text, &len, err, sizeof err), ML_ERR_ARG);
    CHECK(text == NULL);
    CHECK_STR_CONTAINS(err, "big.txt: larger than 4096 bytes");
    CHECK_INT_EQ(ml_file_read_text(tp("nope.txt"), 0, &text, NULL, err, sizeof err), ML_ERR_IO);
    CHECK(text == NULL);
    CHECK_STR_CONTAINS(err, "nope.txt: cannot open");
}

static void test_atomic_bad_directory(void) {
    char err[256] = "";
    /* Directory missing. */
    const char *p = tp("no/such/dir/x.bin");
    CHECK_INT_EQ(ml_file_write_atomic(p, "x", 1, err, sizeof err), ML_ERR_IO);
    CHECK_STR_CONTAINS(err, p);
    CHECK_STR_CONTAINS(err, "No such file");
    /* "Directory" is a regular file. */
    CHECK_INT_EQ(write_raw(tp("plainfile"), "keep", 4), 0);
    p = tp("plainfile/x.bin");
    err[0] = 0;
    CHECK_INT_EQ(ml_file_write_atomic(p, "x", 1, err, sizeof err), ML_ERR_IO);
    CHECK_STR_CONTAINS(err, p);
    CHECK(file_equals(tp("plainfile"), "keep", 4));
    /* Read-only directory (root ignores permissions, so only when not root). */
    if (geteuid() != 0) {
        const char *ro = tp("ro");
        CHECK_INT_EQ(ml_mkdir_p(ro, err, sizeof err), ML_OK);
        CHECK_INT_EQ(write_raw(tp("ro/f"), "old", 3), 0);
        chmod(ro, 0555);
        CHECK_INT_EQ(ml_file_write_atomic(tp("ro/f"), "new", 3, err, sizeof err), ML_ERR_IO);
        CHECK_STR_CONTAINS(err, "ro/f");
        CHECK(file_equals(tp("ro/f"), "old", 3));
        chmod(ro, 0755);
    }
}

/* A file size limit makes write() fail with EFBIG part-way, the closest
 * portable stand-in for a full disk. Returns the previous limit. */
static struct rlimit limit_file_size(rlim_t bytes) {
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = bytes;
    signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &lim);
    return old;
}

static void test_atomic_failure_keeps_old_file(void) {
    char err[256] = "";
    const char *p = tp("keep.bin");
    CHECK_INT_EQ(ml_file_write_atomic(p, "old contents", 12, err, sizeof err), ML_OK);
    size_t big = 1 << 20;
    char *data = calloc(big, 1);
    struct rlimit old = limit_file_size(4096);
    ml_status s = ml_file_write_atomic(p, data, big, err, sizeof err);
    setrlimit(RLIMIT_FSIZE, &old);
    CHECK_INT_EQ(s, ML_ERR_IO);
    CHECK_STR_CONTAINS(err, p);
    CHECK_STR_CONTAINS(err, "too large"); /* strerror(EFBIG) */
    CHECK(file_equals(p, "old contents", 12));
    CHECK_INT_EQ(count_temp_files(g_dir), 0);

    /* Same for a checkpoint. */
    const char *ck = tp("keep.safetensors");
    ml_st_tensor t = {"w", 1, {(int64_t)(big / 4)}, (const float *)data};
    CHECK_INT_EQ(ml_safetensors_write(ck, &t, 1, NULL, NULL, 0, err, sizeof err), ML_OK);
    size_t n0;
    unsigned char *before = (unsigned char *)ml_test_slurp(ck, &n0);
    float *data2 = malloc(big);
    for (size_t i = 0; i < big / 4; i++) data2[i] = (float)i;
    t.data = data2;
    old = limit_file_size(100000);
    s = ml_safetensors_write(ck, &t, 1, NULL, NULL, 0, err, sizeof err);
    setrlimit(RLIMIT_FSIZE, &old);
    CHECK_INT_EQ(s, ML_ERR_IO);
    CHECK_STR_CONTAINS(err, ck);
    CHECK(before && file_equals(ck, before, n0));
    CHECK_INT_EQ(count_temp_files(g_dir), 0);
    free(before);
    free(data2);
    free(data);
}

static void test_streaming_writer(void) {
    char err[256] = "";
    const char *p = tp("stream.txt");
    CHECK_INT_EQ(ml_file_write_atomic(p, "old", 3, err, sizeof err), ML_OK);
    ml_file_writer w;
    CHECK_INT_EQ(ml_file_writer_open(&w, p, err, sizeof err), ML_OK);
    ml_file_writer_write(&w, "abc", 3);
    ml_file_writer_write(&w, "def", 3);
    ml_file_writer_abort(&w);
    ml_file_writer_abort(&w); /* idempotent */
    CHECK(file_equals(p, "old", 3));
    CHECK_INT_EQ(count_temp_files(g_dir), 0);

    CHECK_INT_EQ(ml_file_writer_open(&w, p, err, sizeof err), ML_OK);
    for (int i = 0; i < 1000; i++) ml_file_writer_write(&w, "0123456789", 10);
    CHECK_INT_EQ((long long)w.bytes, 10000);
    CHECK_INT_EQ(ml_file_writer_commit(&w), ML_OK);
    size_t n;
    unsigned char *b = (unsigned char *)ml_test_slurp(p, &n);
    CHECK_INT_EQ(n, 10000);
    CHECK(b && !memcmp(b + 9990, "0123456789", 10));
    free(b);
    ml_file_writer_abort(&w); /* after commit: no-op, the file stays */
    CHECK(file_equals(p, "0123456789", 10) == 0);
    CHECK_INT_EQ(access(p, F_OK), 0);
}

static void test_mkdir_p(void) {
    char err[256] = "";
    CHECK_INT_EQ(ml_mkdir_p(tp("m/a/b/c"), err, sizeof err), ML_OK);
    struct stat st;
    CHECK(!stat(tp("m/a/b/c"), &st) && S_ISDIR(st.st_mode));
    CHECK_INT_EQ(ml_mkdir_p(tp("m/a/b/c"), err, sizeof err), ML_OK);   /* exists: fine */
    CHECK_INT_EQ(ml_mkdir_p(tp("m//a/b/d/"), err, sizeof err), ML_OK); /* doubled and trailing slash */
    CHECK(!stat(tp("m/a/b/d"), &st) && S_ISDIR(st.st_mode));
    CHECK_INT_EQ(write_raw(tp("m/file"), "x", 1), 0);
    CHECK_INT_EQ(ml_mkdir_p(tp("m/file/sub"), err, sizeof err), ML_ERR_IO);
    CHECK_STR_CONTAINS(err, "m/file/sub");
    CHECK_INT_EQ(ml_mkdir_p(tp("m/file"), err, sizeof err), ML_ERR_IO);
    CHECK_STR_CONTAINS(err, "Not a directory");
}

static void test_jsonl_append(void) {
    char err[256] = "";
    const char *p = tp("log.jsonl");
    CHECK_INT_EQ(ml_jsonl_append(p, "{\"step\":1}", err, sizeof err), ML_OK);
    CHECK_INT_EQ(ml_jsonl_append(p, "{\"step\":2,\"loss\":0.5}", err, sizeof err), ML_OK);
    CHECK_INT_EQ(ml_jsonl_append(p, "{\"a\":\n1}", err, sizeof err), ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "log.jsonl");
    const char want[] = "{\"step\":1}\n{\"step\":2,\"loss\":0.5}\n";
    CHECK(file_equals(p, want, sizeof want - 1));
    CHECK_INT_EQ(ml_jsonl_append(tp("nodir/log.jsonl"), "{}", err, sizeof err), ML_ERR_IO);
    CHECK_STR_CONTAINS(err, "nodir/log.jsonl");
}

/* ==== safetensors ================================================================ */

static void test_st_roundtrip(void) {
    char err[256] = "";
    float a[6], b[2 * 3 * 4 * 5], c = 3.25f, big[1000];
    for (int i = 0; i < 6; i++) a[i] = (float)i - 2.5f;
    for (int i = 0; i < 120; i++) b[i] = 1.0f / (float)(i + 1);
    for (int i = 0; i < 1000; i++) big[i] = (float)i * 1e-3f;
    b[7] = -0.0f;
    b[8] = 1e-42f; /* denormal survives */
    ml_st_tensor ts[] = {
        {"layer1.weight", 2, {2, 3}, a},  {"conv.w", 4, {2, 3, 4, 5}, b}, {"scalar", 0, {0}, &c},
        {"empty", 2, {0, 7}, NULL},       {"zz \"quoted\"\\name", 1, {1000}, big},
    };
    const char *mk[] = {"step", "format", "note"}, *mv[] = {"42", "metalearn", "tab\there \"q\""};
    const char *p = tp("rt.safetensors");
    CHECK_INT_EQ(ml_safetensors_write(p, ts, 5, mk, mv, 3, err, sizeof err), ML_OK);

    ml_safetensors s;
    CHECK_INT_EQ(ml_safetensors_read(p, &s, err, sizeof err), ML_OK);
    CHECK_INT_EQ(s.n, 5);
    CHECK_INT_EQ(s.n_meta, 3);
    for (int i = 0; i < 5 && i < s.n; i++) {
        const ml_st_entry *e = &s.entries[i];
        CHECK(!strcmp(e->name, ts[i].name)); /* header order = write order */
        CHECK_INT_EQ(e->ndim, ts[i].ndim);
        int64_t numel = 1;
        for (int d = 0; d < e->ndim; d++) {
            CHECK_INT_EQ(e->shape[d], ts[i].shape[d]);
            numel *= ts[i].shape[d];
        }
        CHECK_INT_EQ(e->numel, numel);
        if (numel) {
            CHECK(!memcmp(e->data, ts[i].data, (size_t)numel * 4)); /* bit-exact */
            CHECK_INT_EQ((uintptr_t)e->data % 64, 0);
        }
    }
    const ml_st_entry *e = ml_safetensors_find(&s, "conv.w");
    CHECK(e && e->data[8] == 1e-42f && signbit(e->data[7]));
    CHECK(ml_safetensors_find(&s, "nope") == NULL);
    CHECK(ml_safetensors_meta(&s, "step") && !strcmp(ml_safetensors_meta(&s, "step"), "42"));
    CHECK(ml_safetensors_meta(&s, "note") && !strcmp(ml_safetensors_meta(&s, "note"), "tab\there \"q\""));
    CHECK(ml_safetensors_meta(&s, "missing") == NULL);
    ml_safetensors_free(&s);
    CHECK(s.blob == NULL && s.n == 0);
    ml_safetensors_free(&s); /* safe twice */
}

static void test_st_byte_identical(void) {
    char err[256] = "";
    float w[12], v[5];
    for (int i = 0; i < 12; i++) w[i] = (float)(i * i) / 7.0f;
    for (int i = 0; i < 5; i++) v[i] = -(float)i;
    ml_st_tensor ts[] = {{"w", 2, {3, 4}, w}, {"v", 1, {5}, v}};
    const char *mk[] = {"epoch"}, *mv[] = {"3"};
    CHECK_INT_EQ(ml_safetensors_write(tp("b1.safetensors"), ts, 2, mk, mv, 1, err, sizeof err), ML_OK);
    CHECK_INT_EQ(ml_safetensors_write(tp("b2.safetensors"), ts, 2, mk, mv, 1, err, sizeof err), ML_OK);
    size_t n1, n2, n3;
    unsigned char *b1 = (unsigned char *)ml_test_slurp(tp("b1.safetensors"), &n1);
    unsigned char *b2 = (unsigned char *)ml_test_slurp(tp("b2.safetensors"), &n2);
    CHECK(b1 && b2 && n1 == n2 && !memcmp(b1, b2, n1));
    /* Read, write back what was read: same bytes again (resume -> save). */
    ml_safetensors s;
    CHECK_INT_EQ(ml_safetensors_read(tp("b1.safetensors"), &s, err, sizeof err), ML_OK);
    ml_st_tensor back[2];
    for (int i = 0; i < 2 && i < s.n; i++) {
        back[i].name = s.entries[i].name;
        back[i].ndim = s.entries[i].ndim;
        memcpy(back[i].shape, s.entries[i].shape, sizeof back[i].shape);
        back[i].data = s.entries[i].data;
    }
    CHECK_INT_EQ(ml_safetensors_write(tp("b3.safetensors"), back, s.n, (const char *const *)s.meta_keys,
                                      (const char *const *)s.meta_values, s.n_meta, err, sizeof err),
                 ML_OK);
    ml_safetensors_free(&s);
    unsigned char *b3 = (unsigned char *)ml_test_slurp(tp("b3.safetensors"), &n3);
    CHECK(b3 && n3 == n1 && !memcmp(b1, b3, n1));
    /* The data starts 8-byte aligned in the file. */
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | b1[i];
    CHECK_INT_EQ(hl % 8, 0);
    CHECK_INT_EQ(n1, 8 + hl + 17 * 4);
    free(b1);
    free(b2);
    free(b3);
}

/* Builds "<u64 LE len><header><data>" in buf; returns the total length. */
static size_t build_file(unsigned char *buf, const char *header, const void *data, size_t dlen) {
    uint64_t n = strlen(header);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(n >> (8 * i));
    memcpy(buf + 8, header, n);
    if (dlen) memcpy(buf + 8 + n, data, dlen);
    return 8 + n + dlen;
}

static void test_st_handbuilt(void) {
    char err[256] = "";
    /* The reference serialisation test's file ("@" = 64-byte header, 4 spaces
     * of padding), with F32 values 1, -2, 0.5, 3 in little-endian bytes. */
    static const unsigned char data[16] = {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0,
                                           0x00, 0x00, 0x00, 0x3f, 0x00, 0x00, 0x40, 0x40};
    unsigned char file[512];
    size_t len = build_file(file, "{\"test\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}    ", data, 16);
    CHECK_INT_EQ(file[0], '@');
    CHECK_INT_EQ(write_raw(tp("hand.safetensors"), file, len), 0);
    ml_safetensors s;
    CHECK_INT_EQ(ml_safetensors_read(tp("hand.safetensors"), &s, err, sizeof err), ML_OK);
    const ml_st_entry *e = ml_safetensors_find(&s, "test");
    CHECK(e && e->ndim == 2 && e->shape[0] == 2 && e->shape[1] == 2 && e->numel == 4);
    if (e) {
        CHECK(e->data[0] == 1.0f && e->data[1] == -2.0f && e->data[2] == 0.5f && e->data[3] == 3.0f);
        /* ... and writing the same tensor gives exactly these bytes. */
        ml_st_tensor t = {"test", 2, {2, 2}, e->data};
        CHECK_INT_EQ(ml_safetensors_write(tp("hand2.safetensors"), &t, 1, NULL, NULL, 0, err, sizeof err), ML_OK);
        CHECK(file_equals(tp("hand2.safetensors"), file, len));
    }
    ml_safetensors_free(&s);

    /* With metadata (written first by the reference too). */
    len = build_file(file,
                     "{\"__metadata__\":{\"framework\":\"pt\"},\"test1\":{\"dtype\":\"F32\",\"shape\":[2,2],"
                     "\"data_offsets\":[0,16]}} ",
                     data, 16);
    CHECK_INT_EQ((len - 16) % 8, 0);
    const char *fk[] = {"framework"}, *fv[] = {"pt"};
    ml_st_tensor t1 = {"test1", 2, {2, 2}, (const float *)data}; /* little-endian host */
    CHECK_INT_EQ(ml_safetensors_write(tp("hand3.safetensors"), &t1, 1, fk, fv, 1, err, sizeof err), ML_OK);
    CHECK(file_equals(tp("hand3.safetensors"), file, len));

    /* Other writers' layouts: pretty JSON, keys in another order, tensors not
     * in offset order, no padding. */
    unsigned char d2[20] = {0};
    memcpy(d2 + 4, data, 16); /* "b" at [4,20) */
    memcpy(d2, data + 8, 4);  /* "a" = [0.5] at [0,4) */
    len = build_file(file,
                     "{\n  \"b\": {\"data_offsets\": [4, 20], \"shape\": [4], \"dtype\": \"F32\", \"extra\": 1},\n"
                     "  \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},\n"
                     "  \"__metadata__\": null\n}",
                     d2, sizeof d2);
    CHECK_INT_EQ(write_raw(tp("hand4.safetensors"), file, len), 0);
    CHECK_INT_EQ(ml_safetensors_read(tp("hand4.safetensors"), &s, err, sizeof err), ML_OK);
    CHECK_INT_EQ(s.n, 2);
    CHECK_INT_EQ(s.n_meta, 0);
    if (s.n == 2) {
        CHECK(!strcmp(s.entries[0].name, "b") && s.entries[0].data[1] == -2.0f && s.entries[0].data[3] == 3.0f);
        CHECK(!strcmp(s.entries[1].name, "a") && s.entries[1].data[0] == 0.5f);
    }
    ml_safetensors_free(&s);
}

/* Writes header+data, reads it, expects failure with the file name and `want` in the message. */
static void expect_bad(const char *name, const char *header, size_t dlen, ml_status want_status, const char *want) {
    char err[256] = "";
    unsigned char file[1024], data[64] = {0};
    size_t len = build_file(file, header, data, dlen);
    const char *p = tp(name);
    CHECK_INT_EQ(write_raw(p, file, len), 0);
    ml_safetensors s;
    memset(&s, 0xab, sizeof s);
    ml_status st = ml_safetensors_read(p, &s, err, sizeof err);
    if (st != want_status) ML_FAIL_AT("%s: status %s, expected %s (%s)", name, ml_status_name(st),
                                      ml_status_name(want_status), err);
    CHECK_STR_CONTAINS(err, p);
    CHECK_STR_CONTAINS(err, want);
    CHECK(s.blob == NULL && s.n == 0 && s.entries == NULL);
    CHECK(strchr(err, '\n') == NULL);
}

#define T(x) "{\"t\":{" x "}}"
static void test_st_bad_files(void) {
    char err[256] = "";
    ml_safetensors s;
    /* Shorter than 8 bytes; missing file. */
    CHECK_INT_EQ(write_raw(tp("short.safetensors"), "\x10\0\0", 3), 0);
    CHECK_INT_EQ(ml_safetensors_read(tp("short.safetensors"), &s, err, sizeof err), ML_ERR_FORMAT);
    CHECK_STR_CONTAINS(err, "short.safetensors: file is 3 bytes");
    CHECK_INT_EQ(ml_safetensors_read(tp("missing.safetensors"), &s, err, sizeof err), ML_ERR_IO);
    CHECK_STR_CONTAINS(err, "missing.safetensors: cannot open");
    /* Header length beyond the file. */
    unsigned char hdr[16] = {0xff, 0xff, 0, 0, 0, 0, 0, 0, '{', '}'};
    CHECK_INT_EQ(write_raw(tp("hlen.safetensors"), hdr, 10), 0);
    CHECK_INT_EQ(ml_safetensors_read(tp("hlen.safetensors"), &s, err, sizeof err), ML_ERR_FORMAT);
    CHECK_STR_CONTAINS(err, "hlen.safetensors: header length 65535 exceeds the file");
    hdr[0] = 0xff, hdr[7] = 0xff; /* ~2^64: no overflow in the check */
    CHECK_INT_EQ(write_raw(tp("hlen2.safetensors"), hdr, 10), 0);
    CHECK_INT_EQ(ml_safetensors_read(tp("hlen2.safetensors"), &s, err, sizeof err), ML_ERR_FORMAT);

    expect_bad("json.safetensors", "{\"t\":{\"dtype\":\"F32\",", 0, ML_ERR_FORMAT, "not valid JSON");
    expect_bad("json2.safetensors", "{} xx", 0, ML_ERR_FORMAT, "unexpected bytes after");
    expect_bad("array.safetensors", "[1,2]   ", 0, ML_ERR_FORMAT, "not a JSON object");
    expect_bad("bf16.safetensors", "{\"head.weight\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4,
               ML_ERR_FORMAT, "tensor 'head.weight': dtype BF16, expected F32");
    expect_bad("nodtype.safetensors", T("\"shape\":[1],\"data_offsets\":[0,4]"), 4, ML_ERR_FORMAT,
               "tensor 't': missing or non-string dtype");
    expect_bad("dims5.safetensors", T("\"dtype\":\"F32\",\"shape\":[1,1,1,1,1],\"data_offsets\":[0,4]"), 4,
               ML_ERR_SHAPE, "tensor 't': shape has 5 dims");
    expect_bad("neg.safetensors", T("\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,4]"), 4, ML_ERR_SHAPE,
               "tensor 't': shape[1] is not a non-negative integer");
    expect_bad("frac.safetensors", T("\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]"), 4, ML_ERR_SHAPE,
               "shape[0]");
    expect_bad("huge.safetensors", T("\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]"),
               4, ML_ERR_SHAPE, "shape is too large");
    expect_bad("mismatch.safetensors", T("\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]"), 16, ML_ERR_SHAPE,
               "tensor 't': data_offsets span 8 bytes, shape needs 12");
    expect_bad("range.safetensors", T("\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]"), 16, ML_ERR_FORMAT,
               "tensor 't': data_offsets [8, 24] outside the data (16 bytes)");
    expect_bad("order.safetensors", T("\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]"), 16, ML_ERR_FORMAT,
               "outside the data");
    expect_bad("offs.safetensors", T("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]"), 16, ML_ERR_FORMAT,
               "data_offsets must be [begin, end]");
    expect_bad("dup.safetensors",
               "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
               8, ML_ERR_FORMAT, "tensor 't' appears twice");
    expect_bad("meta.safetensors", "{\"__metadata__\":{\"step\":3}}", 0, ML_ERR_FORMAT,
               "__metadata__ 'step': value is not a string");
    expect_bad("notobj.safetensors", "{\"t\":[1,2]}", 0, ML_ERR_FORMAT, "tensor 't': entry is not an object");
    /* The tensors must tile the data section, as the reference requires. */
    expect_bad("overlap.safetensors",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
               12, ML_ERR_FORMAT, "tensor 'b': data_offsets [4, 12] overlap tensor 'a'");
    expect_bad("gap.safetensors",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
               12, ML_ERR_FORMAT, "tensor 'b': data_offsets [8, 12] leave a gap after byte 4");
    expect_bad("trailing.safetensors", T("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]"), 16,
               ML_ERR_FORMAT, "tensors cover 4 of the 16 data bytes");
}

/* An allocator that refuses any single request over 64 MiB and records the
 * largest one asked for. */
static size_t g_largest_request;
static void *capped_alloc(size_t bytes, void *user) {
    (void)user;
    if (bytes > g_largest_request) g_largest_request = bytes;
    return bytes > ((size_t)64 << 20) ? NULL : malloc(bytes);
}
static void capped_free(void *p, void *user) {
    (void)user;
    free(p);
}

/* Issue 11: 3,000 entries aliasing one 1 MiB region made the reader allocate
 * their sum (3 GB). The file must be refused as malformed before anything of
 * that size is asked for. */
static void test_st_alias_bomb(void) {
    enum { N = 3000, MIB = 1 << 20 };
    size_t cap = (size_t)N * 80 + 64;
    char *hdr = malloc(cap);
    size_t o = (size_t)snprintf(hdr, cap, "{");
    for (int i = 0; i < N; i++)
        o += (size_t)snprintf(hdr + o, cap - o, "%s\"t%d\":{\"dtype\":\"F32\",\"shape\":[%d],\"data_offsets\":[0,%d]}",
                              i ? "," : "", i, MIB / 4, MIB);
    o += (size_t)snprintf(hdr + o, cap - o, "}");
    while ((8 + o) % 8) hdr[o++] = ' ';
    hdr[o] = 0;
    unsigned char *file = calloc(1, 8 + o + MIB);
    size_t len = build_file(file, hdr, NULL, 0) + MIB; /* the data: 1 MiB of zeros */
    const char *p = tp("alias.safetensors");
    CHECK_INT_EQ(write_raw(p, file, len), 0);
    free(file);
    free(hdr);
    ml_allocator capped = {capped_alloc, capped_free, NULL};
    g_largest_request = 0;
    ml_set_allocator(&capped);
    ml_safetensors s;
    char err[256] = "";
    ml_status st = ml_safetensors_read(p, &s, err, sizeof err);
    ml_set_allocator(NULL);
    CHECK_INT_EQ(st, ML_ERR_FORMAT);
    CHECK_STR_CONTAINS(err, "overlap tensor");
    CHECK(g_largest_request < ((size_t)64 << 20));
    if (st == ML_OK) ml_safetensors_free(&s);
}

/* Every truncation of a valid file is rejected cleanly. */
static void test_st_truncations(void) {
    char err[256];
    float w[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    ml_st_tensor ts[] = {{"w", 2, {3, 3}, w}};
    const char *mk[] = {"k"}, *mv[] = {"v"};
    CHECK_INT_EQ(ml_safetensors_write(tp("full.safetensors"), ts, 1, mk, mv, 1, err, sizeof err), ML_OK);
    size_t n;
    unsigned char *b = (unsigned char *)ml_test_slurp(tp("full.safetensors"), &n);
    int rejected = 0;
    for (size_t k = 0; b && k < n; k++) {
        write_raw(tp("cut.safetensors"), b, k);
        ml_safetensors s;
        err[0] = 0;
        if (ml_safetensors_read(tp("cut.safetensors"), &s, err, sizeof err) != ML_OK && strstr(err, "cut.safetensors"))
            rejected++;
        else
            ml_safetensors_free(&s);
    }
    CHECK_INT_EQ(rejected, (long long)n);
    free(b);
}

static void test_st_write_errors(void) {
    char err[256] = "";
    float w[2] = {0};
    ml_st_tensor dup[] = {{"x", 1, {2}, w}, {"x", 1, {2}, w}};
    CHECK_INT_EQ(ml_safetensors_write(tp("e.safetensors"), dup, 2, NULL, NULL, 0, err, sizeof err), ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "tensor 'x' appears twice");
    ml_st_tensor bad = {"y", 5, {1, 1, 1, 1}, w};
    CHECK_INT_EQ(ml_safetensors_write(tp("e.safetensors"), &bad, 1, NULL, NULL, 0, err, sizeof err), ML_ERR_SHAPE);
    ml_st_tensor neg = {"y", 1, {-1}, w};
    CHECK_INT_EQ(ml_safetensors_write(tp("e.safetensors"), &neg, 1, NULL, NULL, 0, err, sizeof err), ML_ERR_SHAPE);
    ml_st_tensor nodata = {"y", 1, {2}, NULL};
    CHECK_INT_EQ(ml_safetensors_write(tp("e.safetensors"), &nodata, 1, NULL, NULL, 0, err, sizeof err), ML_ERR_ARG);
    ml_st_tensor reserved = {"__metadata__", 1, {2}, w};
    CHECK_INT_EQ(ml_safetensors_write(tp("e.safetensors"), &reserved, 1, NULL, NULL, 0, err, sizeof err), ML_ERR_ARG);
    const char *mk[] = {"a", "a"}, *mv[] = {"1", "2"};
    CHECK_INT_EQ(ml_safetensors_write(tp("e.safetensors"), dup, 1, mk, mv, 2, err, sizeof err), ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "metadata key 'a' appears twice");
    CHECK_INT_EQ(access(tp("e.safetensors"), F_OK), -1); /* nothing written */
    /* An empty checkpoint is valid. */
    CHECK_INT_EQ(ml_safetensors_write(tp("none.safetensors"), NULL, 0, NULL, NULL, 0, err, sizeof err), ML_OK);
    ml_safetensors s;
    CHECK_INT_EQ(ml_safetensors_read(tp("none.safetensors"), &s, err, sizeof err), ML_OK);
    CHECK_INT_EQ(s.n, 0);
    ml_safetensors_free(&s);
}

/* Out of memory at every allocation: a status, never a crash (leaks show under ASan). */
static void test_st_alloc_failures(void) {
    char err[256];
    float w[6] = {1, 2, 3, 4, 5, 6};
    ml_st_tensor ts[] = {{"a", 1, {6}, w}, {"b", 2, {2, 3}, w}};
    const char *mk[] = {"k", "j"}, *mv[] = {"v", "u"};
    int ok_w = 0, ok_r = 0;
    for (uint64_t k = 1; k <= 12; k++) {
        ml_alloc_fail_after(k);
        ml_status s = ml_safetensors_write(tp("oom.safetensors"), ts, 2, mk, mv, 2, err, sizeof err);
        ml_alloc_fail_after(0);
        CHECK(s == ML_OK || s == ML_ERR_NOMEM);
        ok_w += s == ML_OK;
    }
    CHECK(ok_w > 0);
    for (uint64_t k = 1; k <= 12; k++) {
        ml_safetensors st;
        ml_alloc_fail_after(k);
        ml_status s = ml_safetensors_read(tp("oom.safetensors"), &st, err, sizeof err);
        ml_alloc_fail_after(0);
        CHECK(s == ML_OK || s == ML_ERR_NOMEM);
        if (s == ML_OK) {
            ok_r++;
            CHECK(st.n == 2 && st.entries[1].data[5] == 6.0f);
        }
        ml_safetensors_free(&st);
    }
    CHECK(ok_r > 0);
    CHECK_INT_EQ(count_temp_files(g_dir), 0);
}

/* ==== config files ================================================================= */

typedef struct opts {
    int epochs, batch, json, quiet;
    float lr, momentum;
    uint64_t seed;
    const char *optimizer, *out;
} opts;

static opts g_o;
static const ml_option g_specs[] = {
    {"epochs", ML_OPT_INT, &g_o.epochs, "passes", 1, 1000},
    {"lr", ML_OPT_FLOAT, &g_o.lr, "learning rate", 1e-12, 1e3},
    {"momentum", ML_OPT_FLOAT, &g_o.momentum, "momentum", 0, 0.9999},
    {"optimizer", ML_OPT_STRING, &g_o.optimizer, "sgd or adam", 1, 0},
    {"out", ML_OPT_STRING, &g_o.out, "run folder", 1, 0},
    {"seed", ML_OPT_U64, &g_o.seed, "seed", 0, 1.8e19},
    {"batch-size", ML_OPT_INT, &g_o.batch, "examples per step", 1, 1 << 20},
    {"json", ML_OPT_FLAG, &g_o.json, "json output", 0, 0},
    {"quiet", ML_OPT_FLAG, &g_o.quiet, "quiet", 0, 0},
};
static const ml_option_set g_cmd = {"train", "[options]", "test command", g_specs, (int)(sizeof g_specs / sizeof g_specs[0])};

static void reset_opts(void) {
    g_o = (opts){.epochs = 10, .batch = 64, .lr = 1e-3f, .momentum = 0.9f, .seed = 1, .optimizer = "adam", .json = 1};
}

static int write_text(const char *path, const char *text) { return write_raw(path, text, strlen(text)); }

static void test_config_roundtrip(void) {
    char err[256] = "";
    reset_opts();
    g_o.lr = 0.1f; /* not exactly representable: must come back bit-identical */
    g_o.momentum = 0.123456789f;
    g_o.seed = 1152921504606846977ull; /* 2^60 + 1, beyond 2^53: written as a string */
    g_o.optimizer = "sgd";
    g_o.out = NULL; /* unset string -> null */
    g_o.json = 0, g_o.quiet = 1;
    g_o.epochs = 7;
    const char *p = tp("effective.json");
    CHECK_INT_EQ(ml_options_write_json(&g_cmd, p, err, sizeof err), ML_OPTIONS_OK);
    size_t n;
    char *text = ml_test_slurp(p, &n);
    CHECK_STR_CONTAINS(text, "\"lr\":\t0.1,");
    CHECK_STR_CONTAINS(text, "\"seed\":\t\"1152921504606846977\"");
    CHECK_STR_CONTAINS(text, "\"out\":\tnull");
    CHECK(text && n && text[n - 1] == '\n');
    free(text);
    opts want = g_o;
    reset_opts(); /* out's default is NULL: the null written above reads back to it */
    CHECK_INT_EQ(ml_options_apply_file(&g_cmd, p, err, sizeof err), ML_OPTIONS_OK);
    CHECK_INT_EQ(g_o.epochs, want.epochs);
    CHECK(g_o.lr == want.lr && g_o.momentum == want.momentum);
    CHECK(g_o.seed == want.seed);
    CHECK(g_o.optimizer && !strcmp(g_o.optimizer, "sgd"));
    CHECK(g_o.out == NULL);
    CHECK_INT_EQ(g_o.json, 0);
    CHECK_INT_EQ(g_o.quiet, 1);
    /* Writing again gives the same bytes. */
    CHECK_INT_EQ(ml_options_write_json(&g_cmd, tp("effective2.json"), err, sizeof err), ML_OPTIONS_OK);
    char *t1 = ml_test_slurp(p, &n);
    CHECK(t1 && file_equals(tp("effective2.json"), t1, n));
    free(t1);
}

/* null, for every option type, means "not set here": the value stays. */
static void test_config_null_keeps_value(void) {
    char err[256] = "";
    reset_opts();
    g_o.out = "x";
    CHECK_INT_EQ(write_text(tp("n.json"), "{\"epochs\": null, \"lr\": null, \"seed\": null, \"json\": null, "
                                          "\"optimizer\": null, \"out\": null, \"batch-size\": 3}"), 0);
    CHECK_INT_EQ(ml_options_apply_file(&g_cmd, tp("n.json"), err, sizeof err), ML_OPTIONS_OK);
    CHECK_INT_EQ(g_o.epochs, 10);
    CHECK(g_o.lr == 1e-3f && g_o.seed == 1 && g_o.json == 1);
    CHECK(g_o.optimizer && !strcmp(g_o.optimizer, "adam"));
    CHECK(g_o.out && !strcmp(g_o.out, "x"));
    CHECK_INT_EQ(g_o.batch, 3);
    /* A repeated key is still an error when one of the two is null. */
    CHECK_INT_EQ(write_text(tp("n2.json"), "{\"epochs\": null, \"epochs\": 4}"), 0);
    CHECK_INT_EQ(ml_options_apply_file(&g_cmd, tp("n2.json"), err, sizeof err), ML_OPTIONS_BAD_VALUE);
    CHECK_STR_CONTAINS(err, "appears twice");
}

static void test_config_strings_outlive_tree(void) {
    char err[256] = "";
    reset_opts();
    CHECK_INT_EQ(write_text(tp("s.json"), "{\"optimizer\": \"rmsprop\", \"out\": \"runs/a\", \"seed\": 5}"), 0);
    CHECK_INT_EQ(ml_options_apply_file(&g_cmd, tp("s.json"), err, sizeof err), ML_OPTIONS_OK);
    /* Another file parsed and freed in between must not disturb the strings. */
    CHECK_INT_EQ(write_text(tp("s2.json"), "{\"epochs\": 3}"), 0);
    CHECK_INT_EQ(ml_options_apply_file(&g_cmd, tp("s2.json"), err, sizeof err), ML_OPTIONS_OK);
    CHECK(!strcmp(g_o.optimizer, "rmsprop") && !strcmp(g_o.out, "runs/a"));
    CHECK_INT_EQ(g_o.seed, 5);
    CHECK_INT_EQ(g_o.epochs, 3);
}

static void test_config_precedence(void) {
    char err[256] = "";
    reset_opts();
    CHECK_INT_EQ(write_text(tp("p.json"), "{\"epochs\": 50, \"lr\": 0.5, \"optimizer\": \"sgd\"}"), 0);
    CHECK_INT_EQ(ml_options_apply_file(&g_cmd, tp("p.json"), err, sizeof err), ML_OPTIONS_OK);
    /* Settings given after the file (the CLI's flags, a Python keyword) win. */
    CHECK_INT_EQ(ml_options_set(&g_cmd, "lr", "0.25", err, sizeof err), ML_OPTIONS_OK);
    CHECK_INT_EQ(ml_options_set(&g_cmd, "quiet", "true", err, sizeof err), ML_OPTIONS_OK);
    CHECK_INT_EQ(g_o.epochs, 50);   /* from the file */
    CHECK(g_o.lr == 0.25f);         /* set later: wins */
    CHECK(!strcmp(g_o.optimizer, "sgd"));
    CHECK_INT_EQ(g_o.quiet, 1);
}

static void expect_config(const char *name, const char *text, int want, const char *msg) {
    char err[256] = "";
    const char *p = tp(name);
    if (text) CHECK_INT_EQ(write_text(p, text), 0);
    reset_opts();
    opts before = g_o;
    int r = ml_options_apply_file(&g_cmd, p, err, sizeof err);
    if (r != want) ML_FAIL_AT("%s: returned %d, expected %d (%s)", name, r, want, err);
    CHECK_STR_CONTAINS(err, p);
    CHECK_STR_CONTAINS(err, msg);
    /* All or nothing: nothing was applied. */
    CHECK(!memcmp(&before, &g_o, sizeof g_o));
}

static void test_config_errors(void) {
    char err[256];
    CHECK_INT_EQ(write_text(tp("run.json"), "{\"epochs\": 5, \"lr_inner\": 0.1}"), 0);
    /* Relative to the scratch dir, to check the exact message. */
    char cwd[1024];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    if (chdir(g_dir) == 0) {
        CHECK_INT_EQ(ml_options_apply_file(&g_cmd, "run.json", err, sizeof err), ML_OPTIONS_BAD_VALUE);
        CHECK(!strcmp(err, "run.json: unknown key 'lr_inner' (see metalearn train --help)"));
        if (strcmp(err, "run.json: unknown key 'lr_inner' (see metalearn train --help)")) ML_FAIL_AT("got: %s", err);
        CHECK(chdir(cwd) == 0);
    }
    /* A key holding a line break (found by fuzz_config) still gives one line. */
    expect_config("newline_key.json", "{\"lr\\ninner\": 0.1}", ML_OPTIONS_BAD_VALUE, "unknown key 'lr?inner'");
    expect_config("hint.json", "{\"batch_size\": 4}", ML_OPTIONS_BAD_VALUE,
                  "unknown key 'batch_size' (did you mean 'batch-size'? see metalearn train --help)");
    expect_config("missing.json", NULL, ML_OPTIONS_FILE_ERROR, "cannot open");
    expect_config("corrupt.json", "{\n  \"epochs\": 5,\n  \"lr\": 0.1,,\n}", ML_OPTIONS_FILE_ERROR,
                  "not valid JSON (line 3");
    expect_config("trailing.json", "{\"epochs\": 5} {", ML_OPTIONS_FILE_ERROR, "not valid JSON");
    expect_config("array.json", "[1]", ML_OPTIONS_FILE_ERROR, "expected a JSON object");
    expect_config("empty.json", "", ML_OPTIONS_FILE_ERROR, "not valid JSON");
    expect_config("type1.json", "{\"lr\": 0.5, \"epochs\": \"5\"}", ML_OPTIONS_BAD_VALUE,
                  "key 'epochs': expected an integer, got a string");
    expect_config("type2.json", "{\"epochs\": 2.5}", ML_OPTIONS_BAD_VALUE, "key 'epochs': 2.5 is not an integer");
    expect_config("type3.json", "{\"json\": 1}", ML_OPTIONS_BAD_VALUE, "key 'json': expected true or false, got a number");
    expect_config("type4.json", "{\"optimizer\": 3}", ML_OPTIONS_BAD_VALUE, "key 'optimizer': expected a string");
    expect_config("type5.json", "{\"optimizer\": \"\"}", ML_OPTIONS_BAD_VALUE, "key 'optimizer': empty string");
    expect_config("type6.json", "{\"lr\": [1]}", ML_OPTIONS_BAD_VALUE, "key 'lr': expected a number, got an array");
    expect_config("type7.json", "{\"seed\": -1}", ML_OPTIONS_BAD_VALUE, "key 'seed'");
    expect_config("type8.json", "{\"seed\": \"12x\"}", ML_OPTIONS_BAD_VALUE, "key 'seed': '12x' is not");
    expect_config("bounds1.json", "{\"lr\": 0.5, \"epochs\": 0}", ML_OPTIONS_BAD_VALUE, "key 'epochs': 0 is outside 1..1000");
    expect_config("bounds2.json", "{\"momentum\": 1.5}", ML_OPTIONS_BAD_VALUE, "key 'momentum': 1.5 is outside 0..0.9999");
    expect_config("bounds3.json", "{\"lr\": 1e300}", ML_OPTIONS_BAD_VALUE, "key 'lr'");
    expect_config("twice.json", "{\"epochs\": 5, \"epochs\": 6}", ML_OPTIONS_BAD_VALUE, "key 'epochs' appears twice");
    /* An empty object is fine. */
    CHECK_INT_EQ(write_text(tp("empty_obj.json"), " { } \n"), 0);
    CHECK_INT_EQ(ml_options_apply_file(&g_cmd, tp("empty_obj.json"), err, sizeof err), ML_OPTIONS_OK);
    /* Writing into a missing directory is a file error naming the path. */
    CHECK_INT_EQ(ml_options_write_json(&g_cmd, tp("nodir/e.json"), err, sizeof err), ML_OPTIONS_FILE_ERROR);
    CHECK_STR_CONTAINS(err, "nodir/e.json");
}

/* Set by name from text, as the Python package does: same bounds and
 * messages as the command line, strings copied (the caller's buffer may go). */
static void test_options_set_text(void) {
    char err[256] = "", buf[16];
    reset_opts();
    CHECK_INT_EQ(ml_options_set(&g_cmd, "epochs", "12", err, sizeof err), ML_OPTIONS_OK);
    CHECK_INT_EQ(g_o.epochs, 12);
    CHECK_INT_EQ(ml_options_set(&g_cmd, "epochs", "0", err, sizeof err), ML_OPTIONS_BAD_VALUE);
    CHECK_STR_CONTAINS(err, "--epochs: 0 is outside 1..1000");
    CHECK_INT_EQ(g_o.epochs, 12);
    CHECK_INT_EQ(ml_options_set(&g_cmd, "lr", "fast", err, sizeof err), ML_OPTIONS_BAD_VALUE);
    CHECK_STR_CONTAINS(err, "'fast' is not a number");
    CHECK_INT_EQ(ml_options_set(&g_cmd, "batch_size", "3", err, sizeof err), ML_OPTIONS_BAD_VALUE);
    CHECK_STR_CONTAINS(err, "did you mean 'batch-size'");
    CHECK_INT_EQ(ml_options_set(&g_cmd, "quiet", "true", err, sizeof err), ML_OPTIONS_OK);
    CHECK_INT_EQ(g_o.quiet, 1);
    CHECK_INT_EQ(ml_options_set(&g_cmd, "quiet", "maybe", err, sizeof err), ML_OPTIONS_BAD_VALUE);
    CHECK_INT_EQ(ml_options_set(&g_cmd, "optimizer", "", err, sizeof err), ML_OPTIONS_BAD_VALUE);
    snprintf(buf, sizeof buf, "sgd");
    CHECK_INT_EQ(ml_options_set(&g_cmd, "optimizer", buf, err, sizeof err), ML_OPTIONS_OK);
    buf[0] = 'X';
    CHECK(!strcmp(g_o.optimizer, "sgd"));
    /* JSON text in, JSON text out */
    CHECK_INT_EQ(ml_options_apply_json_text(&g_cmd, "{\"epochs\": 3, \"out\": \"r\"}", "kwargs", err, sizeof err),
                 ML_OPTIONS_OK);
    CHECK_INT_EQ(ml_options_apply_json_text(&g_cmd, "{\"epochs\": ", "kwargs", err, sizeof err), ML_OPTIONS_FILE_ERROR);
    CHECK_STR_CONTAINS(err, "kwargs: not valid JSON");
    char *text = ml_options_to_json(&g_cmd);
    CHECK(text != NULL);
    if (text) {
        CHECK_STR_CONTAINS(text, "\"epochs\":3");
        CHECK_STR_CONTAINS(text, "\"out\":\"r\"");
        ml_free(text);
    }
}

/* The run's own table: every option has a unique name, a help line and a
 * default that the table's bounds accept (what config.json would write back). */
static void test_run_config_table(void) {
    static ml_run_config c;
    ml_run_config_default(&c);
    ml_option_set set = ml_run_config_option_set(&c);
    CHECK(set.n_options > 40);
    for (int i = 0; i < set.n_options; i++) {
        const ml_option *o = &set.options[i];
        CHECK(o->help && *o->help);
        for (int j = 0; j < i; j++) CHECK(strcmp(o->name, set.options[j].name) != 0);
    }
    char err[256] = "";
    CHECK_INT_EQ(ml_options_set(&set, "inner-lr", "0.4", err, sizeof err), ML_OPTIONS_OK);
    CHECK(c.inner_lr == 0.4f);
    CHECK_INT_EQ(ml_options_set(&set, "algo", "protonet", err, sizeof err), ML_OPTIONS_OK);
    ml_run_config_resolve(&c);
    CHECK_INT_EQ(c.meta_batch, 1); /* the learner's default */
    CHECK(c.momentum == 0.0f);     /* meta-learning: no momentum unless asked */
}

int main(void) {
    char err[256];
    snprintf(g_dir, sizeof g_dir, "%s/test_io.%ld", ml_test_tmp_dir(), (long)getpid());
    if (ml_mkdir_p(g_dir, err, sizeof err)) {
        fprintf(stderr, "test_io: %s\n", err);
        return 1;
    }
    ML_RUN(test_atomic_write_and_replace);
    ML_RUN(test_read_text);
    ML_RUN(test_atomic_bad_directory);
    ML_RUN(test_atomic_failure_keeps_old_file);
    ML_RUN(test_streaming_writer);
    ML_RUN(test_mkdir_p);
    ML_RUN(test_jsonl_append);
    ML_RUN(test_st_roundtrip);
    ML_RUN(test_st_byte_identical);
    ML_RUN(test_st_handbuilt);
    ML_RUN(test_st_bad_files);
    ML_RUN(test_st_alias_bomb);
    ML_RUN(test_st_truncations);
    ML_RUN(test_st_write_errors);
    ML_RUN(test_st_alloc_failures);
    ML_RUN(test_config_roundtrip);
    ML_RUN(test_config_null_keeps_value);
    ML_RUN(test_config_strings_outlive_tree);
    ML_RUN(test_config_precedence);
    ML_RUN(test_config_errors);
    ML_RUN(test_options_set_text);
    ML_RUN(test_run_config_table);
    ml_options_free_strings();
    if (!ml_test_failed) rm_rf(g_dir); /* kept on failure for inspection */
    return ml_test_summary();
}
