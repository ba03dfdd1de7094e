/* safetensors.c: read and write Hugging Face safetensors files (F32 only).
 *
 * Layout: u64 LE header length N | N bytes of JSON, space-padded to a
 * multiple of 8 | tensor data, little endian, offsets relative to its start.
 * The writer emits the header itself (not through cJSON) so the bytes are a
 * pure function of the input: integers printed exactly, no float formatting,
 * fixed key order. The reader trusts nothing in the file: every size and
 * offset is checked against the file size before anything is allocated or
 * read, and every error names the file and the tensor or field. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "metalearn/io.h"
#include "core/errfmt.h"

#define ST_MAX_HEADER (100u << 20) /* the reference implementation's limit */
#define ST_MAX_INT ((int64_t)1 << 53) /* integers cJSON holds exactly */
#define ST_ALIGN 64


static int host_is_le(void) {
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

static void swap32(void *p, size_t n) {
    uint8_t *b = p;
    for (size_t i = 0; i < n; i++, b += 4) {
        uint8_t t0 = b[0], t1 = b[1];
        b[0] = b[3], b[1] = b[2], b[2] = t1, b[3] = t0;
    }
}

static int64_t shape_numel(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d];
    return n;
}

/* Sorts a copy of names and reports the first duplicate, or NULL. */
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
static const char *find_duplicate(const char **names, int n, ml_status *st) {
    *st = ML_OK;
    if (n < 2) return NULL;
    const char **v = ml_malloc((size_t)n * sizeof *v);
    if (!v) {
        *st = ML_ERR_NOMEM;
        return NULL;
    }
    memcpy(v, names, (size_t)n * sizeof *v);
    qsort(v, (size_t)n, sizeof *v, cmp_str);
    const char *dup = NULL;
    for (int i = 1; i < n && !dup; i++)
        if (!strcmp(v[i - 1], v[i])) dup = v[i];
    ml_free(v);
    return dup;
}

/* ==== writing ================================================================== */

/* A string builder that only counts when buf is NULL, so the header is
 * sized in one pass and written in a second with a single allocation. */
typedef struct sbuf {
    char *buf;
    size_t len;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->buf) memcpy(b->buf + b->len, s, n);
    b->len += n;
}
static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }
static void sb_i64(sbuf *b, int64_t v) {
    char t[32];
    int k = snprintf(t, sizeof t, "%" PRId64, v);
    sb_put(b, t, (size_t)k);
}
/* A JSON string: quote, backslash and control characters escaped; UTF-8 as is. */
static void sb_json_str(sbuf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char t[8];
        if (*p == '"' || *p == '\\') {
            t[0] = '\\', t[1] = (char)*p;
            sb_put(b, t, 2);
        } else if (*p < 0x20) {
            snprintf(t, sizeof t, "\\u%04x", *p);
            sb_put(b, t, 6);
        } else {
            sb_put(b, (const char *)p, 1);
        }
    }
    sb_put(b, "\"", 1);
}

static void build_header(sbuf *b, const ml_st_tensor *ts, int n, const char *const *mk, const char *const *mv,
                         int n_meta) {
    sb_put(b, "{", 1);
    if (n_meta > 0) {
        sb_str(b, "\"__metadata__\":{");
        for (int i = 0; i < n_meta; i++) {
            if (i) sb_put(b, ",", 1);
            sb_json_str(b, mk[i]);
            sb_put(b, ":", 1);
            sb_json_str(b, mv[i]);
        }
        sb_put(b, "}", 1);
    }
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        if (i || n_meta > 0) sb_put(b, ",", 1);
        sb_json_str(b, ts[i].name);
        sb_str(b, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < ts[i].ndim; d++) {
            if (d) sb_put(b, ",", 1);
            sb_i64(b, ts[i].shape[d]);
        }
        int64_t bytes = 4 * shape_numel(ts[i].ndim, ts[i].shape);
        sb_str(b, "],\"data_offsets\":[");
        sb_i64(b, off);
        sb_put(b, ",", 1);
        sb_i64(b, off + bytes);
        sb_str(b, "]}");
        off += bytes;
    }
    sb_put(b, "}", 1);
    /* Pad with spaces so the data starts 8-byte aligned in the file. */
    while ((8 + b->len) % 8) sb_put(b, " ", 1);
}

static ml_status check_write_args(const char *path, const ml_st_tensor *ts, int n, const char *const *mk,
                                  const char *const *mv, int n_meta, char *err, size_t errlen) {
    if (n < 0 || n_meta < 0 || (n > 0 && !ts) || (n_meta > 0 && (!mk || !mv))) {
        ml__errf(err, errlen, "%s: bad arguments (n=%d, n_meta=%d)", path, n, n_meta);
        return ML_ERR_ARG;
    }
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        const ml_st_tensor *t = &ts[i];
        if (!t->name || !*t->name || !strcmp(t->name, "__metadata__")) {
            ml__errf(err, errlen, "%s: tensor %d: name is empty or reserved", path, i);
            return ML_ERR_ARG;
        }
        if (t->ndim < 0 || t->ndim > ML_ST_MAX_DIMS) {
            ml__errf(err, errlen, "%s: tensor '%s': %d dims, at most %d supported", path, t->name, t->ndim,
                    ML_ST_MAX_DIMS);
            return ML_ERR_SHAPE;
        }
        int64_t numel = 1;
        for (int d = 0; d < t->ndim; d++) {
            int64_t s = t->shape[d];
            if (s < 0 || s > ST_MAX_INT || (s && numel > ST_MAX_INT / 4 / s)) {
                ml__errf(err, errlen, "%s: tensor '%s': bad size %" PRId64 " in dim %d", path, t->name, s, d);
                return ML_ERR_SHAPE;
            }
            numel *= s;
        }
        if (numel > 0 && !t->data) {
            ml__errf(err, errlen, "%s: tensor '%s': data is NULL", path, t->name);
            return ML_ERR_ARG;
        }
        total += 4 * numel;
        if (total > ST_MAX_INT) {
            ml__errf(err, errlen, "%s: tensors too large in total", path);
            return ML_ERR_ARG;
        }
    }
    for (int i = 0; i < n_meta; i++)
        if (!mk[i] || !mv[i]) {
            ml__errf(err, errlen, "%s: metadata entry %d is NULL", path, i);
            return ML_ERR_ARG;
        }
    const char **names = n > 1 ? ml_malloc((size_t)n * sizeof *names) : NULL;
    if (n > 1 && !names) goto nomem;
    for (int i = 0; i < n; i++)
        if (names) names[i] = ts[i].name;
    ml_status st;
    const char *dup = find_duplicate(names, n, &st);
    if (dup) ml__errf(err, errlen, "%s: tensor '%s' appears twice", path, dup);
    ml_free(names);
    if (st) goto nomem;
    if (dup) return ML_ERR_ARG;
    dup = find_duplicate((const char **)mk, n_meta, &st);
    if (st) goto nomem;
    if (dup) {
        ml__errf(err, errlen, "%s: metadata key '%s' appears twice", path, dup);
        return ML_ERR_ARG;
    }
    return ML_OK;
nomem:
    ml__errf(err, errlen, "%s: out of memory", path);
    return ML_ERR_NOMEM;
}

ml_status ml_safetensors_write(const char *path, const ml_st_tensor *ts, int n, const char *const *meta_keys,
                               const char *const *meta_values, int n_meta, char *err, size_t errlen) {
    ml_status s = check_write_args(path, ts, n, meta_keys, meta_values, n_meta, err, errlen);
    if (s) return s;
    sbuf hb = {0};
    build_header(&hb, ts, n, meta_keys, meta_values, n_meta);
    size_t hlen = hb.len;
    /* 8 length bytes in front, so the prefix goes out in one write. */
    hb.buf = ml_malloc(8 + hlen);
    if (!hb.buf) {
        ml__errf(err, errlen, "%s: out of memory", path);
        return ML_ERR_NOMEM;
    }
    uint8_t *p = (uint8_t *)hb.buf;
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    hb.len = 8;
    build_header(&hb, ts, n, meta_keys, meta_values, n_meta);

    ml_file_writer w;
    s = ml_file_writer_open(&w, path, err, errlen);
    if (s) {
        ml_free(hb.buf);
        return s;
    }
    ml_file_writer_write(&w, hb.buf, 8 + hlen);
    ml_free(hb.buf);
    int le = host_is_le();
    for (int i = 0; i < n && !w.status; i++) {
        size_t numel = (size_t)shape_numel(ts[i].ndim, ts[i].shape);
        if (le) {
            ml_file_writer_write(&w, ts[i].data, numel * 4);
            continue;
        }
        float chunk[1024]; /* big-endian hosts: swap through a small buffer */
        for (size_t k = 0; k < numel && !w.status; k += 1024) {
            size_t m = numel - k < 1024 ? numel - k : 1024;
            memcpy(chunk, ts[i].data + k, m * 4);
            swap32(chunk, m);
            ml_file_writer_write(&w, chunk, m * 4);
        }
    }
    return ml_file_writer_commit(&w);
}

/* ==== reading ================================================================== */

static int pread_all(int fd, void *buf, size_t len, off_t off) {
    char *p = buf;
    while (len) {
        ssize_t k = pread(fd, p, len, off);
        if (k < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        if (k == 0) return EIO; /* file shrank under us */
        p += k, off += k, len -= (size_t)k;
    }
    return 0;
}

/* A JSON number that is an integer in [0, 2^53]. */
static int json_uint(const cJSON *j, int64_t *v) {
    if (!cJSON_IsNumber(j)) return 0;
    double d = j->valuedouble;
    if (!(d >= 0 && d <= (double)ST_MAX_INT) || d != (double)(int64_t)d) return 0;
    *v = (int64_t)d;
    return 1;
}

typedef struct st_parsed {
    int ndim;
    int64_t shape[ML_ST_MAX_DIMS], numel, begin, end;
} st_parsed;

/* Validates one tensor entry of the header against the data length. */
static ml_status parse_tensor(const char *path, const cJSON *t, int64_t data_len, st_parsed *p, char *err,
                              size_t errlen) {
    const char *name = t->string;
    if (!cJSON_IsObject(t)) {
        ml__errf(err, errlen, "%s: tensor '%s': entry is not an object", path, name);
        return ML_ERR_FORMAT;
    }
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(t, "dtype");
    if (!cJSON_IsString(dt)) {
        ml__errf(err, errlen, "%s: tensor '%s': missing or non-string dtype", path, name);
        return ML_ERR_FORMAT;
    }
    if (strcmp(dt->valuestring, "F32")) {
        ml__errf(err, errlen, "%s: tensor '%s': dtype %.32s, expected F32", path, name, dt->valuestring);
        return ML_ERR_FORMAT;
    }
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(t, "shape");
    if (!cJSON_IsArray(sh)) {
        ml__errf(err, errlen, "%s: tensor '%s': missing or non-array shape", path, name);
        return ML_ERR_FORMAT;
    }
    int nd = cJSON_GetArraySize(sh);
    if (nd > ML_ST_MAX_DIMS) {
        ml__errf(err, errlen, "%s: tensor '%s': shape has %d dims, at most %d supported", path, name, nd,
                ML_ST_MAX_DIMS);
        return ML_ERR_SHAPE;
    }
    p->ndim = nd;
    p->numel = 1;
    int d = 0;
    for (const cJSON *e = sh->child; e; e = e->next, d++) {
        int64_t v;
        if (!json_uint(e, &v)) {
            ml__errf(err, errlen, "%s: tensor '%s': shape[%d] is not a non-negative integer", path, name, d);
            return ML_ERR_SHAPE;
        }
        if (v && p->numel > ST_MAX_INT / 4 / v) { /* keeps 4 * numel exact */
            ml__errf(err, errlen, "%s: tensor '%s': shape is too large", path, name);
            return ML_ERR_SHAPE;
        }
        p->shape[d] = v;
        p->numel *= v;
    }
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
    if (!cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2 || !json_uint(of->child, &p->begin) ||
        !json_uint(of->child->next, &p->end)) {
        ml__errf(err, errlen, "%s: tensor '%s': data_offsets must be [begin, end] (non-negative integers)", path,
                name);
        return ML_ERR_FORMAT;
    }
    if (p->begin > p->end || p->end > data_len) {
        ml__errf(err, errlen, "%s: tensor '%s': data_offsets [%" PRId64 ", %" PRId64 "] outside the data (%" PRId64
                             " bytes)",
                path, name, p->begin, p->end, data_len);
        return ML_ERR_FORMAT;
    }
    if (p->end - p->begin != 4 * p->numel) {
        ml__errf(err, errlen, "%s: tensor '%s': data_offsets span %" PRId64 " bytes, shape needs %" PRId64, path,
                name, p->end - p->begin, 4 * p->numel);
        return ML_ERR_SHAPE;
    }
    return ML_OK;
}

/* Safetensors requires the tensors to tile the data section: sorted by
 * offset, each begins where the previous one ends, and the last ends at the
 * end of the file. Checked before the blob is sized, so entries aliasing one
 * region cannot make the reader allocate their sum (3,000 entries over one
 * MiB asked for 3 GB). */
typedef struct st_range {
    int64_t begin, end;
    const char *name;
} st_range;
static int cmp_range(const void *a, const void *b) {
    const st_range *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}
static ml_status check_layout(const char *path, const cJSON *root, int n, int64_t data_len, char *err,
                              size_t errlen) {
    st_range *r = ml_malloc((size_t)(n ? n : 1) * sizeof *r);
    if (!r) {
        ml__errf(err, errlen, "%s: out of memory", path);
        return ML_ERR_NOMEM;
    }
    int i = 0;
    for (const cJSON *t = root->child; t; t = t->next) {
        if (!strcmp(t->string, "__metadata__")) continue;
        st_parsed p;
        parse_tensor(path, t, data_len, &p, NULL, 0); /* validated by check_header */
        r[i++] = (st_range){p.begin, p.end, t->string};
    }
    qsort(r, (size_t)n, sizeof *r, cmp_range);
    ml_status s = ML_OK;
    int64_t at = 0;
    for (i = 0; i < n && !s; i++) {
        if (r[i].begin < at) {
            ml__errf(err, errlen, "%s: tensor '%s': data_offsets [%" PRId64 ", %" PRId64 "] overlap tensor '%s'",
                     path, r[i].name, r[i].begin, r[i].end, r[i - 1].name);
            s = ML_ERR_FORMAT;
        } else if (r[i].begin > at) {
            ml__errf(err, errlen, "%s: tensor '%s': data_offsets [%" PRId64 ", %" PRId64 "] leave a gap after byte %" PRId64,
                     path, r[i].name, r[i].begin, r[i].end, at);
            s = ML_ERR_FORMAT;
        }
        at = r[i].end;
    }
    if (!s && at != data_len) {
        ml__errf(err, errlen, "%s: tensors cover %" PRId64 " of the %" PRId64 " data bytes (trailing bytes)", path, at,
                 data_len);
        s = ML_ERR_FORMAT;
    }
    ml_free(r);
    return s;
}

/* Header checks that need no allocation beyond the cJSON tree. Fills the
 * counts and the sizes the blob needs. */
static ml_status check_header(const char *path, const cJSON *root, int64_t data_len, int *n_out, int *n_meta_out,
                              size_t *str_bytes, size_t *data_bytes, char *err, size_t errlen) {
    if (!cJSON_IsObject(root)) {
        ml__errf(err, errlen, "%s: header is not a JSON object", path);
        return ML_ERR_FORMAT;
    }
    int n = 0, n_meta = 0, seen_meta = 0;
    size_t sb = 0, db = 0;
    for (const cJSON *t = root->child; t; t = t->next) {
        if (!strcmp(t->string, "__metadata__")) {
            if (seen_meta++) {
                ml__errf(err, errlen, "%s: __metadata__ appears twice", path);
                return ML_ERR_FORMAT;
            }
            if (cJSON_IsNull(t)) continue;
            if (!cJSON_IsObject(t)) {
                ml__errf(err, errlen, "%s: __metadata__ is not an object", path);
                return ML_ERR_FORMAT;
            }
            for (const cJSON *m = t->child; m; m = m->next) {
                if (!cJSON_IsString(m)) {
                    ml__errf(err, errlen, "%s: __metadata__ '%s': value is not a string", path, m->string);
                    return ML_ERR_FORMAT;
                }
                sb += strlen(m->string) + strlen(m->valuestring) + 2;
                n_meta++;
            }
            continue;
        }
        st_parsed p;
        ml_status s = parse_tensor(path, t, data_len, &p, err, errlen);
        if (s) return s;
        sb += strlen(t->string) + 1;
        db += ((size_t)p.numel * 4 + ST_ALIGN - 1) / ST_ALIGN * ST_ALIGN;
        if (db > SIZE_MAX / 4) { /* many tensors aliasing one region */
            ml__errf(err, errlen, "%s: tensors too large in total", path);
            return ML_ERR_FORMAT;
        }
        if (++n == INT32_MAX) {
            ml__errf(err, errlen, "%s: too many tensors", path);
            return ML_ERR_FORMAT;
        }
    }
    *n_out = n, *n_meta_out = n_meta, *str_bytes = sb, *data_bytes = db;
    return ML_OK;
}

ml_status ml_safetensors_read(const char *path, ml_safetensors *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    ml_status s = ML_OK;
    char *hdr = NULL;
    cJSON *root = NULL;
    void *blob = NULL;
    const char **names = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        ml__errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return ML_ERR_IO;
    }
#define FAIL(code, ...)                              \
    do {                                             \
        ml__errf(err, errlen, __VA_ARGS__);           \
        s = code;                                    \
        goto done;                                   \
    } while (0)
    struct stat st;
    if (fstat(fd, &st)) FAIL(ML_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) FAIL(ML_ERR_IO, "%s: not a regular file", path);
    int64_t fsize = (int64_t)st.st_size;
    if (fsize < 8) FAIL(ML_ERR_FORMAT, "%s: file is %" PRId64 " bytes, too short for a safetensors header", path, fsize);
    uint8_t lenb[8];
    int e = pread_all(fd, lenb, 8, 0);
    if (e) FAIL(ML_ERR_IO, "%s: read failed: %s", path, strerror(e));
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | lenb[i];
    if (hlen > (uint64_t)(fsize - 8))
        FAIL(ML_ERR_FORMAT, "%s: header length %" PRIu64 " exceeds the file (%" PRId64 " bytes): truncated?", path,
             hlen, fsize);
    if (hlen > ST_MAX_HEADER) FAIL(ML_ERR_FORMAT, "%s: header length %" PRIu64 " exceeds 100 MiB", path, hlen);
    if (hlen < 2) FAIL(ML_ERR_FORMAT, "%s: header length %" PRIu64 " is too short for JSON", path, hlen);
    hdr = ml_malloc((size_t)hlen + 1);
    if (!hdr) FAIL(ML_ERR_NOMEM, "%s: out of memory for a %" PRIu64 "-byte header", path, hlen);
    e = pread_all(fd, hdr, (size_t)hlen, 8);
    if (e) FAIL(ML_ERR_IO, "%s: read failed: %s", path, strerror(e));
    hdr[hlen] = 0;
    if (memchr(hdr, 0, (size_t)hlen)) FAIL(ML_ERR_FORMAT, "%s: header contains a NUL byte", path);
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(hdr, (size_t)hlen, &end, 0);
    if (!root) {
        size_t at = end && end >= hdr ? (size_t)(end - hdr) : 0;
        FAIL(ML_ERR_FORMAT, "%s: header is not valid JSON (error near byte %zu of %" PRIu64 ")", path, at, hlen);
    }
    for (; end < hdr + hlen; end++)
        if (!strchr(" \t\r\n", *end))
            FAIL(ML_ERR_FORMAT, "%s: unexpected bytes after the header JSON (byte %zu)", path, (size_t)(end - hdr));

    int64_t data_len = fsize - 8 - (int64_t)hlen;
    int n, n_meta;
    size_t str_bytes, data_bytes;
    s = check_header(path, root, data_len, &n, &n_meta, &str_bytes, &data_bytes, err, errlen);
    if (!s) s = check_layout(path, root, n, data_len, err, errlen);
    if (s) goto done;

    /* Duplicate names: cJSON keeps repeated keys, so they are checked here,
     * before any data is read. */
    names = ml_malloc(((size_t)n + (size_t)n_meta + 1) * sizeof *names);
    if (!names) FAIL(ML_ERR_NOMEM, "%s: out of memory", path);
    int nn = 0, nm = 0;
    const cJSON *meta = NULL;
    for (const cJSON *t = root->child; t; t = t->next)
        if (strcmp(t->string, "__metadata__")) names[nn++] = t->string;
        else meta = t;
    const char *dup = find_duplicate(names, nn, &s);
    if (s) FAIL(ML_ERR_NOMEM, "%s: out of memory", path);
    if (dup) FAIL(ML_ERR_FORMAT, "%s: tensor '%s' appears twice in the header", path, dup);
    for (const cJSON *kv = cJSON_IsObject(meta) ? meta->child : NULL; kv; kv = kv->next) names[nm++] = kv->string;
    dup = find_duplicate(names, nm, &s);
    if (s) FAIL(ML_ERR_NOMEM, "%s: out of memory", path);
    if (dup) FAIL(ML_ERR_FORMAT, "%s: __metadata__ key '%s' appears twice", path, dup);

    /* One allocation: [data, 64-aligned per tensor][entries][meta ptrs][strings]. */
    size_t off_entries = data_bytes;
    size_t off_meta = off_entries + (size_t)n * sizeof(ml_st_entry);
    size_t off_str = off_meta + 2 * (size_t)n_meta * sizeof(char *);
    size_t total = off_str + str_bytes + ST_ALIGN;
    blob = ml_malloc(total);
    if (!blob) FAIL(ML_ERR_NOMEM, "%s: out of memory (%zu bytes)", path, total);
    char *base = (char *)(((uintptr_t)blob + ST_ALIGN - 1) / ST_ALIGN * ST_ALIGN);
    out->entries = (ml_st_entry *)(base + off_entries);
    out->meta_keys = (char **)(base + off_meta);
    out->meta_values = out->meta_keys + n_meta;
    char *strp = base + off_str, *datap = base;

    int le = host_is_le();
    int i = 0, m = 0;
    for (const cJSON *t = root->child; t; t = t->next) {
        if (!strcmp(t->string, "__metadata__")) {
            for (const cJSON *kv = cJSON_IsObject(t) ? t->child : NULL; kv; kv = kv->next, m++) {
                size_t kl = strlen(kv->string) + 1, vl = strlen(kv->valuestring) + 1;
                out->meta_keys[m] = memcpy(strp, kv->string, kl);
                out->meta_values[m] = memcpy(strp + kl, kv->valuestring, vl);
                strp += kl + vl;
            }
            continue;
        }
        st_parsed p;
        parse_tensor(path, t, data_len, &p, NULL, 0); /* validated above */
        ml_st_entry *en = &out->entries[i++];
        size_t nl = strlen(t->string) + 1;
        en->name = memcpy(strp, t->string, nl);
        strp += nl;
        en->ndim = p.ndim;
        memcpy(en->shape, p.shape, sizeof en->shape);
        en->numel = p.numel;
        en->data = (float *)datap;
        datap += ((size_t)p.numel * 4 + ST_ALIGN - 1) / ST_ALIGN * ST_ALIGN;
        if (p.numel) {
            e = pread_all(fd, en->data, (size_t)p.numel * 4, (off_t)(8 + hlen + (uint64_t)p.begin));
            if (e) FAIL(ML_ERR_IO, "%s: tensor '%s': read failed: %s", path, en->name, strerror(e));
            if (!le) swap32(en->data, (size_t)p.numel);
        }
    }
    out->n = n;
    out->n_meta = n_meta;

#undef FAIL
done:
    ml_free(names);
    cJSON_Delete(root);
    ml_free(hdr);
    close(fd);
    if (s) {
        ml_free(blob);
        memset(out, 0, sizeof *out);
    } else {
        out->blob = blob;
    }
    return s;
}

const ml_st_entry *ml_safetensors_find(const ml_safetensors *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->entries[i].name, name)) return &s->entries[i];
    return NULL;
}

const char *ml_safetensors_meta(const ml_safetensors *s, const char *key) {
    for (int i = 0; i < s->n_meta; i++)
        if (!strcmp(s->meta_keys[i], key)) return s->meta_values[i];
    return NULL;
}

void ml_safetensors_free(ml_safetensors *s) {
    ml_free(s->blob);
    memset(s, 0, sizeof *s);
}
