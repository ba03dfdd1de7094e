/* idx.c: the IDX file format (MNIST, Fashion-MNIST, KMNIST) read through zlib.
 *
 * This is a loader, not a general IDX library: only unsigned-byte files with
 * one to three dimensions, which is every dataset of this family. gzread
 * reads plain files transparently, so ".gz" and uncompressed files share one
 * code path. Every failure becomes one line "<file>: <reason>" and a status;
 * files are hostile input, so sizes from headers are checked for overflow and
 * never trusted for allocation: the buffer grows as bytes actually arrive. */
#include "metalearn/data.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define IDX_TYPE_U8 0x08
#define IDX_MAX_DIMS 3
/* A lying header must not make us allocate gigabytes up front. */
#define IDX_FIRST_CHUNK ((size_t)1 << 20)
/* gzread takes an unsigned and returns an int. */
#define IDX_MAX_READ ((size_t)1 << 30)

static void set_err(char *err, size_t errlen, const char *path, const char *fmt, ...) {
    if (!err || !errlen) return;
    int k = snprintf(err, errlen, "%s: ", path);
    if (k < 0 || (size_t)k >= errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + k, errlen - (size_t)k, fmt, ap);
    va_end(ap);
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Reads up to len bytes; *got says how many arrived. Returns -1 when zlib
 * reports an error (corrupt stream, read failure), 0 otherwise (a short
 * count then means end of file). */
static int gz_read_full(gzFile f, void *buf, size_t len, size_t *got) {
    unsigned char *p = buf;
    *got = 0;
    while (*got < len) {
        size_t want = len - *got;
        if (want > IDX_MAX_READ) want = IDX_MAX_READ;
        int r = gzread(f, p + *got, (unsigned)want);
        if (r < 0) return -1;
        if (r == 0) break;
        *got += (size_t)r;
    }
    return 0;
}

/* Turns zlib's error state into a status and a message. */
static ml_status gz_fail(gzFile f, const char *path, char *err, size_t errlen) {
    int zerr = Z_OK;
    const char *msg = gzerror(f, &zerr);
    if (zerr == Z_ERRNO) {
        set_err(err, errlen, path, "read error: %s", strerror(errno));
        return ML_ERR_IO;
    }
    if (zerr == Z_MEM_ERROR) {
        set_err(err, errlen, path, "out of memory in zlib");
        return ML_ERR_NOMEM;
    }
    /* zlib prefixes its message with the path, which we already print. */
    size_t pl = strlen(path);
    if (msg && !strncmp(msg, path, pl) && !strncmp(msg + pl, ": ", 2)) msg += pl + 2;
    set_err(err, errlen, path, "corrupt gzip stream: %s", msg && *msg ? msg : "unknown zlib error");
    return ML_ERR_FORMAT;
}

static const char *idx_type_name(unsigned t) {
    switch (t) {
    case 0x08: return "ubyte";
    case 0x09: return "signed byte";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    default: return NULL;
    }
}

/* What the file is expected to hold, for messages that speak the dataset's
 * language ("60000 images of 28x28") rather than the format's. */
typedef enum { IDX_ANY, IDX_IMAGES, IDX_LABELS } idx_kind;

static void describe(char *buf, size_t len, idx_kind kind, int nd, const int64_t *dims) {
    if (kind == IDX_IMAGES)
        snprintf(buf, len, "%lld images of %lldx%lld", (long long)dims[0], (long long)dims[1],
                 (long long)dims[2]);
    else if (kind == IDX_LABELS)
        snprintf(buf, len, "%lld labels", (long long)dims[0]);
    else if (nd == 1)
        snprintf(buf, len, "%lld bytes", (long long)dims[0]);
    else if (nd == 2)
        snprintf(buf, len, "%lldx%lld bytes", (long long)dims[0], (long long)dims[1]);
    else
        snprintf(buf, len, "%lldx%lldx%lld bytes", (long long)dims[0], (long long)dims[1],
                 (long long)dims[2]);
}

/* Reads and checks the header, then (data_out not NULL) the payload. */
static ml_status idx_read(const char *path, idx_kind kind, int *ndim_out, int64_t dims_out[3],
                          uint8_t **data_out, char *err, size_t errlen) {
    static const char *const kind_data[] = {"data", "pixel data", "label data"};
    if (data_out) *data_out = NULL;
    *ndim_out = 0;
    for (int i = 0; i < IDX_MAX_DIMS; i++) dims_out[i] = 1;

    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f) {
        if (errno) {
            set_err(err, errlen, path, "cannot open: %s", strerror(errno));
            return ML_ERR_IO;
        }
        set_err(err, errlen, path, "cannot open: out of memory in zlib");
        return ML_ERR_NOMEM;
    }
    gzbuffer(f, 1u << 17); /* fewer syscalls on the 47 MB training images */

    ml_status st = ML_OK;
    uint8_t *buf = NULL;
    unsigned char hdr[4 + 4 * IDX_MAX_DIMS];
    size_t got = 0;

    /* ---- magic ---- */
    if (gz_read_full(f, hdr, 4, &got) < 0) {
        st = gz_fail(f, path, err, errlen);
        goto done;
    }
    if (got < 4) {
        set_err(err, errlen, path, "truncated header: file has %zu bytes, an IDX header needs at least 4",
                got);
        st = ML_ERR_FORMAT;
        goto done;
    }
    uint32_t magic = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
    unsigned type = hdr[2];
    int nd = hdr[3];
    if (kind != IDX_ANY) {
        uint32_t want = kind == IDX_IMAGES ? 0x00000803u : 0x00000801u;
        if (magic != want) {
            set_err(err, errlen, path, "bad magic 0x%08x, expected 0x%08x (%s)", (unsigned)magic,
                    (unsigned)want, kind == IDX_IMAGES ? "idx3 ubyte images" : "idx1 ubyte labels");
            st = ML_ERR_FORMAT;
            goto done;
        }
    } else if (hdr[0] || hdr[1] || !idx_type_name(type)) {
        set_err(err, errlen, path, "bad magic 0x%08x, expected 0x000008NN (IDX ubyte, NN dimensions)",
                (unsigned)magic);
        st = ML_ERR_FORMAT;
        goto done;
    } else if (type != IDX_TYPE_U8) {
        set_err(err, errlen, path, "IDX element type 0x%02x (%s) not supported, only 0x08 (ubyte)",
                type, idx_type_name(type));
        st = ML_ERR_FORMAT;
        goto done;
    } else if (nd < 1 || nd > IDX_MAX_DIMS) {
        set_err(err, errlen, path, "IDX file has %d dimensions, only 1 to %d are supported", nd,
                IDX_MAX_DIMS);
        st = ML_ERR_FORMAT;
        goto done;
    }

    /* ---- dimensions ---- */
    size_t hdr_len = 4 + 4 * (size_t)nd;
    if (gz_read_full(f, hdr + 4, hdr_len - 4, &got) < 0) {
        st = gz_fail(f, path, err, errlen);
        goto done;
    }
    if (got < hdr_len - 4) {
        set_err(err, errlen, path, "truncated header: file has %zu bytes, the header needs %zu",
                4 + got, hdr_len);
        st = ML_ERR_FORMAT;
        goto done;
    }
    /* Bounded by INT64_MAX/4 and SIZE_MAX/4 so callers may form float
     * element counts and byte sizes without checking again. */
    const uint64_t limit = ((uint64_t)SIZE_MAX < (uint64_t)INT64_MAX ? (uint64_t)SIZE_MAX
                                                                      : (uint64_t)INT64_MAX) / 4;
    uint64_t total64 = 1;
    int overflow = 0;
    for (int i = 0; i < nd; i++) {
        const unsigned char *q = hdr + 4 + 4 * i;
        uint32_t d = (uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 | (uint32_t)q[2] << 8 | q[3];
        if (d == 0) {
            set_err(err, errlen, path, "header says dimension %d has size 0", i);
            st = ML_ERR_FORMAT;
            goto done;
        }
        dims_out[i] = d;
        if (total64 > limit / d)
            overflow = 1;
        else
            total64 *= d;
    }
    if (overflow) {
        char desc[96];
        describe(desc, sizeof desc, kind, nd, dims_out);
        set_err(err, errlen, path, "header says %s, which overflows the addressable size", desc);
        st = ML_ERR_FORMAT;
        goto done;
    }

    size_t total = (size_t)total64;
    if (!data_out) {
        *ndim_out = nd;
        goto done;
    }

    /* ---- payload, grown geometrically so a lying header costs nothing ---- */
    size_t cap = total < IDX_FIRST_CHUNK ? total : IDX_FIRST_CHUNK, have = 0;
    buf = ml_malloc(cap);
    if (!buf) {
        set_err(err, errlen, path, "out of memory for %zu bytes", cap);
        st = ML_ERR_NOMEM;
        goto done;
    }
    for (;;) {
        if (gz_read_full(f, buf + have, cap - have, &got) < 0) {
            st = gz_fail(f, path, err, errlen);
            goto done;
        }
        have += got;
        if (have < cap || cap == total) break;
        size_t ncap = cap > total / 2 ? total : cap * 2;
        uint8_t *nb = ml_malloc(ncap);
        if (!nb) {
            set_err(err, errlen, path, "out of memory for %zu bytes", ncap);
            st = ML_ERR_NOMEM;
            goto done;
        }
        memcpy(nb, buf, have);
        ml_free(buf);
        buf = nb;
        cap = ncap;
    }
    if (have < total) {
        char desc[96];
        describe(desc, sizeof desc, kind, nd, dims_out);
        int zerr = Z_OK;
        gzerror(f, &zerr); /* Z_BUF_ERROR: the gzip stream itself was cut */
        set_err(err, errlen, path, "truncated: header says %s, file has %zu bytes of %s%s", desc, have,
                kind_data[kind], zerr == Z_BUF_ERROR ? " (gzip stream ends early)" : "");
        st = ML_ERR_FORMAT;
        goto done;
    }
    /* Reading one byte past the end both catches a header that understates
     * the data and makes zlib check the gzip trailer (CRC and length). */
    unsigned char extra;
    if (gz_read_full(f, &extra, 1, &got) < 0) {
        st = gz_fail(f, path, err, errlen);
        goto done;
    }
    int zerr = Z_OK;
    gzerror(f, &zerr);
    if (!got && zerr == Z_BUF_ERROR) {
        /* gzread reports a cut stream as a quiet end of file (so partly
         * written files can be read); here it means the trailer is gone. */
        set_err(err, errlen, path, "truncated gzip stream: data complete but the gzip trailer is missing");
        st = ML_ERR_FORMAT;
        goto done;
    }
    if (got) {
        char desc[96];
        describe(desc, sizeof desc, kind, nd, dims_out);
        set_err(err, errlen, path, "trailing data: header says %s, file has more than %zu bytes of %s",
                desc, total, kind_data[kind]);
        st = ML_ERR_FORMAT;
        goto done;
    }
    *ndim_out = nd;
    *data_out = buf;
    buf = NULL;

done:
    ml_free(buf);
    gzclose(f);
    if (st != ML_OK) {
        *ndim_out = 0;
        for (int i = 0; i < IDX_MAX_DIMS; i++) dims_out[i] = 1;
    }
    return st;
}

ml_status ml_idx_read_u8(const char *path, int *ndim, int64_t dims[3], uint8_t **data, char *err,
                         size_t errlen) {
    if (err && errlen) err[0] = '\0';
    if (!path || !ndim || !dims || !data) {
        set_err(err, errlen, path ? path : "(null)", "ml_idx_read_u8: NULL argument");
        return ML_ERR_ARG;
    }
    return idx_read(path, IDX_ANY, ndim, dims, data, err, errlen);
}

ml_status ml_dataset_load_idx_files(const char *images_path, const char *labels_path, int n_classes,
                                    ml_dataset *out, char *err, size_t errlen) {
    if (err && errlen) err[0] = '\0';
    if (!out || !images_path || !labels_path) {
        set_err(err, errlen, images_path ? images_path : "(null)",
                "ml_dataset_load_idx_files: NULL argument");
        return ML_ERR_ARG;
    }
    memset(out, 0, sizeof *out);

    int nd_img, nd_lab;
    int64_t di[3], dl[3];
    uint8_t *img = NULL, *lab = NULL;
    float *x = NULL;
    int32_t *y = NULL;
    /* Both headers first: counts that differ are an error before a byte of
     * pixels is inflated (a 1 MB gzip can declare and hold a gigabyte). */
    ml_status st = idx_read(images_path, IDX_IMAGES, &nd_img, di, NULL, err, errlen);
    if (st == ML_OK) st = idx_read(labels_path, IDX_LABELS, &nd_lab, dl, NULL, err, errlen);
    if (st != ML_OK) return st;
    int64_t n = di[0];
    if (dl[0] != n) {
        set_err(err, errlen, labels_path, "%lld labels but %s has %lld images", (long long)dl[0],
                base_name(images_path), (long long)n);
        return ML_ERR_FORMAT;
    }
    st = idx_read(images_path, IDX_IMAGES, &nd_img, di, &img, err, errlen);
    if (st != ML_OK) return st;
    st = idx_read(labels_path, IDX_LABELS, &nd_lab, dl, &lab, err, errlen);
    if (st != ML_OK) goto fail;
    if (dl[0] != n || di[0] != n) { /* a file replaced between the two reads */
        set_err(err, errlen, labels_path, "changed while reading");
        st = ML_ERR_FORMAT;
        goto fail;
    }
    if (di[1] > INT_MAX || di[2] > INT_MAX) {
        set_err(err, errlen, images_path, "image size %lldx%lld is too large", (long long)di[1],
                (long long)di[2]);
        st = ML_ERR_FORMAT;
        goto fail;
    }
    int max_label = 0;
    for (int64_t i = 0; i < n; i++) {
        if (n_classes > 0 && lab[i] >= n_classes) {
            set_err(err, errlen, labels_path, "label %d at index %lld out of range: expected 0..%d",
                    lab[i], (long long)i, n_classes - 1);
            st = ML_ERR_FORMAT;
            goto fail;
        }
        if (lab[i] > max_label) max_label = lab[i];
    }

    /* idx_read bounded the element count by INT64_MAX/4 and SIZE_MAX/4. */
    size_t count = (size_t)n * (size_t)di[1] * (size_t)di[2];
    x = ml_malloc(count * sizeof *x);
    y = ml_malloc((size_t)n * sizeof *y);
    if (!x || !y) {
        set_err(err, errlen, images_path, "out of memory for %lld images", (long long)n);
        st = ML_ERR_NOMEM;
        goto fail;
    }
    /* A table makes every value exactly byte/255 rounded once, as a float
     * division would, at the cost of a lookup. */
    float lut[256];
    for (int v = 0; v < 256; v++) lut[v] = (float)v / 255.0f;
    for (size_t i = 0; i < count; i++) x[i] = lut[img[i]];
    for (int64_t i = 0; i < n; i++) y[i] = lab[i];
    ml_free(img);
    ml_free(lab);

    out->n = n;
    out->c = 1;
    out->h = (int)di[1];
    out->w = (int)di[2];
    out->x = x;
    out->y = y;
    out->n_classes = n_classes > 0 ? n_classes : max_label + 1;
    return ML_OK;

fail:
    ml_free(img);
    ml_free(lab);
    ml_free(x);
    ml_free(y);
    return st;
}

/* Picks the first existing name among the layouts MNIST mirrors use. */
static ml_status find_file(const char *dir, const char *split, const char *what, const char *ext,
                           char *path, size_t len, char *err, size_t errlen) {
    const char *sep = (*dir && dir[strlen(dir) - 1] != '/') ? "/" : "";
    static const char *const fmts[] = {"%s%s%s-%s-%s.gz", "%s%s%s-%s-%s", "%s%s%s-%s.%s.gz",
                                       "%s%s%s-%s.%s"};
    char first[4096];
    for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++) {
        int k = snprintf(path, len, fmts[i], dir, sep, split, what, ext);
        if (k < 0 || (size_t)k >= len) {
            set_err(err, errlen, dir, "path too long");
            return ML_ERR_ARG;
        }
        if (i == 0) snprintf(first, sizeof first, "%s", path);
        if (access(path, F_OK) == 0) return ML_OK;
        if (errno != ENOENT) {
            set_err(err, errlen, path, "cannot open: %s", strerror(errno));
            return ML_ERR_IO;
        }
    }
    set_err(err, errlen, first, "cannot open: %s (also tried without .gz and %s-%s.%s)",
            strerror(ENOENT), split, what, ext);
    return ML_ERR_IO;
}

ml_status ml_dataset_load_idx(const char *dir, const char *split, ml_dataset *out, char *err,
                              size_t errlen) {
    if (err && errlen) err[0] = '\0';
    if (out) memset(out, 0, sizeof *out);
    if (!dir || !split || !out) {
        set_err(err, errlen, dir ? dir : "(null)", "ml_dataset_load_idx: NULL argument");
        return ML_ERR_ARG;
    }
    const char *prefix;
    if (!strcmp(split, "train"))
        prefix = "train";
    else if (!strcmp(split, "test") || !strcmp(split, "t10k"))
        prefix = "t10k";
    else {
        set_err(err, errlen, dir, "unknown split \"%s\": expected \"train\" or \"test\"", split);
        return ML_ERR_ARG;
    }
    char images[4096], labels[4096];
    ml_status st = find_file(dir, prefix, "images", "idx3-ubyte", images, sizeof images, err, errlen);
    if (st != ML_OK) return st;
    st = find_file(dir, prefix, "labels", "idx1-ubyte", labels, sizeof labels, err, errlen);
    if (st != ML_OK) return st;
    return ml_dataset_load_idx_files(images, labels, 10, out, err, errlen);
}
