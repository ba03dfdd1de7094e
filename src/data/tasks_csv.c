/* tasks_csv.c: reads a user's regression tasks from a CSV file.
 *
 * One row per point: task,split,x_1,...,x_D,y (format and accepted dialect in
 * metalearn/tasks.h). The whole file is read into memory and parsed in place;
 * every problem stops the load with one line naming the file, the line and
 * the column. Points end up grouped by task (support rows, then query rows,
 * each in file order) in two flat arrays that the family's tasks view.
 *
 * Not a general CSV library: no quoted newlines, no other separators. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/tasks_internal.h"

typedef struct {
    const char *path;
    char *err;
    size_t errlen;
} csv_ctx;

/* "<path>:<line>: <reason>", or "<path>: <reason>" when line is 0. */
static void csv_err(const csv_ctx *c, int line, const char *fmt, ...) {
    if (!c->err || !c->errlen) return;
    int n = line > 0 ? snprintf(c->err, c->errlen, "%s:%d: ", c->path, line)
                     : snprintf(c->err, c->errlen, "%s: ", c->path);
    if (n < 0 || (size_t)n >= c->errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

/* ---- reading the file ------------------------------------------------------- */

/* The whole file plus a terminating NUL. Grows by doubling through
 * ml_malloc (the allocator has no realloc), so pipes work too. */
static ml_status read_all(const csv_ctx *c, char **out, size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    FILE *fp = fopen(c->path, "rb");
    if (!fp) {
        csv_err(c, 0, "cannot open: %s", strerror(errno));
        return ML_ERR_IO;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = ml_malloc(cap);
    if (!buf) {
        fclose(fp);
        csv_err(c, 0, "out of memory reading the file");
        return ML_ERR_NOMEM;
    }
    for (;;) {
        if (len + 1 >= cap) {
            if (cap > SIZE_MAX / 2) break; /* unreachable in practice; fread below reports */
            char *nb = ml_malloc(cap * 2);
            if (!nb) {
                ml_free(buf);
                fclose(fp);
                csv_err(c, 0, "out of memory reading the file");
                return ML_ERR_NOMEM;
            }
            memcpy(nb, buf, len);
            ml_free(buf);
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - 1 - len, fp);
        len += got;
        if (got == 0) break;
        /* A NUL is never CSV (the parser reports it with its line): stop here,
         * so /dev/zero or a binary pipe is not read into all the memory. */
        if (memchr(buf + len - got, '\0', got)) break;
    }
    if (ferror(fp)) {
        int e = errno;
        ml_free(buf);
        fclose(fp);
        csv_err(c, 0, "read error: %s", strerror(e ? e : EIO));
        return ML_ERR_IO;
    }
    fclose(fp);
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return ML_OK;
}

/* ---- sizing ------------------------------------------------------------------- */

/* Lines holding anything but blanks: an upper bound on the records of
 * [p, end), so blank lines (free to write) cost no memory. */
static size_t count_nonblank_lines(const char *p, const char *end) {
    size_t n = 0;
    int blank = 1;
    for (; p < end; p++) {
        if (*p == '\n') {
            n += !blank;
            blank = 1;
        } else if (*p != ' ' && *p != '\t' && *p != '\r') {
            blank = 0;
        }
    }
    return n + !blank;
}

/* At most how many rows of ncols fields len bytes can hold: every field of
 * a row that is kept holds at least one character and a comma separates
 * them, so a row takes at least 2 * ncols - 1 bytes. The bound keeps the
 * tables a small multiple of the file, however wide its first line. */
static size_t rows_that_fit(size_t len, int ncols, size_t lines) {
    size_t fit = len / (2 * (size_t)ncols - 1) + 1;
    return fit < lines ? fit : lines;
}

/* ---- fields ------------------------------------------------------------------- */

static int is_space(char ch) { return ch == ' ' || ch == '\t'; }

/* Number of comma-separated fields, respecting "quoted" fields; -1 when a
 * quote is not closed. Does not modify the line (parse_fields does). */
static int count_fields(const char *s) {
    int n = 1;
    for (;;) {
        while (is_space(*s)) s++;
        if (*s == '"') {
            for (s++;; s++) {
                if (*s == '\0') return -1;
                if (*s == '"') {
                    if (s[1] == '"') s++;
                    else break;
                }
            }
        }
        while (*s && *s != ',') s++;
        if (!*s) return n;
        s++;
        n++;
    }
}

/* The next non-blank line of [*p, end): NUL-terminated in place (a '\r'
 * before the '\n' dropped), *p moved past it, *line counting every line.
 * Returns its field count (count_fields), 0 at the end of the text, or -1
 * after reporting a NUL byte or an unclosed quote. */
static int next_record(const csv_ctx *c, char **p, char *end, int *line, char **rec) {
    while (*p < end) {
        ++*line;
        char *s = *p, *eol = memchr(s, '\n', (size_t)(end - s));
        if (!eol) eol = end;
        *p = eol < end ? eol + 1 : end;
        if (memchr(s, '\0', (size_t)(eol - s))) {
            csv_err(c, *line, "contains a NUL byte (not a text file?)");
            return -1;
        }
        *eol = '\0';
        if (eol > s && eol[-1] == '\r') eol[-1] = '\0';
        char *q = s;
        while (is_space(*q)) q++;
        if (*q == '\0') continue;
        int nf = count_fields(s);
        if (nf < 0) {
            csv_err(c, *line, "a quoted field is not closed");
            return -1;
        }
        *rec = s;
        return nf;
    }
    return 0;
}

/* Splits the line in place into exactly n fields (count_fields said n),
 * trimming blanks and unquoting. Returns 0, or the 1-based column whose
 * closing quote is followed by something other than a comma. */
static int parse_fields(char *s, char **fields, int n) {
    for (int i = 0; i < n; i++) {
        while (is_space(*s)) s++;
        if (*s == '"') {
            char *w = ++s;
            fields[i] = w;
            for (;; s++) {
                if (*s == '"') {
                    if (s[1] != '"') break;
                    s++;
                }
                *w++ = *s;
            }
            s++; /* past the closing quote */
            while (is_space(*s)) s++;
            if (*s != ',' && *s != '\0') return i + 1;
            *w = '\0';
            if (*s) s++;
        } else {
            fields[i] = s;
            char *end = s;
            while (*end && *end != ',') end++;
            char *next = *end ? end + 1 : end;
            while (end > s && is_space(end[-1])) end--;
            *end = '\0';
            s = next;
        }
    }
    return 0;
}

enum { NUM_OK, NUM_EMPTY, NUM_BAD, NUM_NONFINITE, NUM_RANGE };

static int parse_float(const char *s, float *out) {
    if (!*s) return NUM_EMPTY;
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0') return NUM_BAD;
    if (!isfinite(v)) return errno == ERANGE ? NUM_RANGE : NUM_NONFINITE;
    float fv = (float)v;
    if (!isfinite(fv)) return NUM_RANGE;
    *out = fv;
    return NUM_OK;
}

static int ascii_ieq(const char *a, const char *b) {
    for (; *a && *b; a++, b++) {
        char x = *a >= 'A' && *a <= 'Z' ? (char)(*a - 'A' + 'a') : *a;
        char y = *b >= 'A' && *b <= 'Z' ? (char)(*b - 'A' + 'a') : *b;
        if (x != y) return 0;
    }
    return *a == *b;
}

/* A field quoted in a message, cut so one bad cell cannot flood the line. */
#define FIELD_SHOW 40
#define SHOWN(s) FIELD_SHOW, (s), (strlen(s) > FIELD_SHOW ? "..." : "")

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* ---- the loader ------------------------------------------------------------------ */

typedef struct {
    const char *name; /* into the file buffer */
    int64_t ns, nq;   /* support / query rows */
    int64_t s_cur, q_cur;
} tmp_task;

typedef struct {
    char *buf;
    char **fields;
    int32_t *row_task;
    unsigned char *row_query;
    float *vals;     /* [rows, in_dim + 1]: inputs then target */
    int32_t *table;  /* open addressing, task index or -1 */
    tmp_task *tasks;
} scratch;

static void scratch_free(scratch *s) {
    ml_free(s->buf);
    ml_free(s->fields);
    ml_free(s->row_task);
    ml_free(s->row_query);
    ml_free(s->vals);
    ml_free(s->table);
    ml_free(s->tasks);
}

/* The family's own arrays, built from the parsed rows. */
static ml_status build_family(ml_task_family *f, const csv_ctx *c, scratch *s, int64_t n_rows,
                              int n_tasks) {
    int d = f->in_dim;
    size_t names_len = 0;
    int64_t off = 0;
    for (int i = 0; i < n_tasks; i++) {
        tmp_task *t = &s->tasks[i];
        if (t->ns == 0 || t->nq == 0) {
            csv_err(c, 0, "task '%.60s' has no %s points", t->name, t->ns == 0 ? "support" : "query");
            return ML_ERR_FORMAT;
        }
        if (t->ns > INT_MAX || t->nq > INT_MAX) {
            csv_err(c, 0, "task '%.60s' has more than %d points", t->name, INT_MAX);
            return ML_ERR_FORMAT;
        }
        t->s_cur = off;
        t->q_cur = off + t->ns;
        off += t->ns + t->nq;
        names_len += strlen(t->name) + 1;
    }
    f->tasks = ml_calloc((size_t)n_tasks, sizeof *f->tasks);
    f->x = ml_calloc((size_t)n_rows * (size_t)d, sizeof(float));
    f->y = ml_calloc((size_t)n_rows, sizeof(float));
    f->names = ml_malloc(names_len);
    if (!f->tasks || !f->x || !f->y || !f->names) {
        csv_err(c, 0, "out of memory for %lld points", (long long)n_rows);
        return ML_ERR_NOMEM; /* the caller frees what was attached to f */
    }
    char *nm = f->names;
    for (int i = 0; i < n_tasks; i++) {
        const tmp_task *t = &s->tasks[i];
        ml_csv_task *ct = &f->tasks[i];
        size_t l = strlen(t->name) + 1;
        memcpy(nm, t->name, l);
        ct->name = nm;
        nm += l;
        ct->n_support = (int)t->ns;
        ct->n_query = (int)t->nq;
        ct->xs = f->x + (size_t)t->s_cur * d;
        ct->ys = f->y + t->s_cur;
        ct->xq = f->x + (size_t)t->q_cur * d;
        ct->yq = f->y + t->q_cur;
    }
    for (int64_t r = 0; r < n_rows; r++) {
        tmp_task *t = &s->tasks[s->row_task[r]];
        int64_t dst = s->row_query[r] ? t->q_cur++ : t->s_cur++;
        const float *v = s->vals + (size_t)r * (size_t)(d + 1);
        memcpy(f->x + (size_t)dst * d, v, (size_t)d * sizeof(float));
        f->y[dst] = v[d];
    }
    f->n_tasks = n_tasks;
    return ML_OK;
}

static ml_status load(ml_task_family *f, const csv_ctx *c, scratch *s) {
    size_t len = 0;
    ml_status st = read_all(c, &s->buf, &len);
    if (st != ML_OK) return st;
    char *p = s->buf, *end = s->buf + len;
    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) p += 3; /* UTF-8 BOM */

    /* Rows and tasks are at most the records that fit (a row has at least 4
     * fields): size everything for that once instead of growing, within a
     * small multiple of the file size. */
    size_t n_lines = rows_that_fit(len, 4, count_nonblank_lines(p, end)) + 1;
    if (n_lines > INT_MAX / 4) {
        csv_err(c, 0, "too many lines (%zu)", n_lines);
        return ML_ERR_FORMAT;
    }
    size_t tcap = 16;
    while (tcap < 2 * n_lines) tcap *= 2;
    s->row_task = ml_malloc(n_lines * sizeof *s->row_task);
    s->row_query = ml_malloc(n_lines);
    s->table = ml_malloc(tcap * sizeof *s->table);
    s->tasks = ml_malloc(n_lines * sizeof *s->tasks);
    if (!s->row_task || !s->row_query || !s->table || !s->tasks) {
        csv_err(c, 0, "out of memory for %zu lines", n_lines);
        return ML_ERR_NOMEM;
    }
    memset(s->table, 0xff, tcap * sizeof *s->table);

    int ncols = 0, line = 0, n_tasks = 0, saw_header = 0;
    int64_t n_rows = 0;
    char *rec;
    int nf;
    while ((nf = next_record(c, &p, end, &line, &rec)) != 0) {
        if (nf < 0) return ML_ERR_FORMAT;
        int first = ncols == 0;
        if (first) {
            if (nf < 4) {
                csv_err(c, line, "expected at least 4 columns (task, split, inputs..., target), found %d", nf);
                return ML_ERR_FORMAT;
            }
            ncols = nf;
            f->in_dim = ncols - 3;
            s->fields = ml_malloc((size_t)ncols * sizeof *s->fields);
            s->vals = ml_malloc(rows_that_fit(len, ncols, n_lines) * (size_t)(ncols - 2) * sizeof(float));
            if (!s->fields || !s->vals) {
                csv_err(c, 0, "out of memory for %zu lines of %d columns", n_lines, ncols);
                return ML_ERR_NOMEM;
            }
        } else if (nf != ncols) {
            csv_err(c, line, "expected %d columns (task, split, %d input%s, target), found %d", ncols,
                    ncols - 3, ncols == 4 ? "" : "s", nf);
            return ML_ERR_FORMAT;
        }
        int bad = parse_fields(rec, s->fields, nf);
        if (bad) {
            csv_err(c, line, "column %d: unexpected text after the closing quote", bad);
            return ML_ERR_FORMAT;
        }
        char **fl = s->fields;

        float tmp;
        if (first && parse_float(fl[2], &tmp) == NUM_BAD) {
            saw_header = 1; /* names of the columns, not a point */
            continue;
        }

        if (fl[0][0] == '\0') {
            csv_err(c, line, "column 1 (task id) is empty");
            return ML_ERR_FORMAT;
        }
        int is_query;
        if (ascii_ieq(fl[1], "support")) {
            is_query = 0;
        } else if (ascii_ieq(fl[1], "query")) {
            is_query = 1;
        } else {
            csv_err(c, line, "column 2 ('%.*s%s') must be 'support' or 'query'", SHOWN(fl[1]));
            return ML_ERR_FORMAT;
        }
        float *v = s->vals + (size_t)n_rows * (size_t)(ncols - 2);
        for (int j = 2; j < ncols; j++) {
            switch (parse_float(fl[j], &v[j - 2])) {
            case NUM_OK: break;
            case NUM_EMPTY: csv_err(c, line, "column %d is empty", j + 1); return ML_ERR_FORMAT;
            case NUM_BAD:
                csv_err(c, line, "column %d ('%.*s%s') is not a number", j + 1, SHOWN(fl[j]));
                return ML_ERR_FORMAT;
            case NUM_NONFINITE:
                csv_err(c, line, "column %d ('%.*s%s') is not finite (NaN or Inf)", j + 1, SHOWN(fl[j]));
                return ML_ERR_NUMERIC;
            default:
                csv_err(c, line, "column %d ('%.*s%s') is out of float range", j + 1, SHOWN(fl[j]));
                return ML_ERR_NUMERIC;
            }
        }

        /* Task id -> index, first appearance order. Names point into buf. */
        size_t h = (size_t)hash_str(fl[0]) & (tcap - 1);
        while (s->table[h] >= 0 && strcmp(s->tasks[s->table[h]].name, fl[0]) != 0)
            h = (h + 1) & (tcap - 1);
        if (s->table[h] < 0) {
            s->table[h] = n_tasks;
            s->tasks[n_tasks] = (tmp_task){.name = fl[0]};
            n_tasks++;
        }
        tmp_task *t = &s->tasks[s->table[h]];
        if (is_query) t->nq++;
        else t->ns++;
        s->row_task[n_rows] = s->table[h];
        s->row_query[n_rows] = (unsigned char)is_query;
        n_rows++;
    }

    if (n_rows == 0) {
        csv_err(c, 0, saw_header ? "no data rows after the header" : "file is empty");
        return ML_ERR_FORMAT;
    }
    return build_family(f, c, s, n_rows, n_tasks);
}

ml_status ml__tasks_load_csv(ml_task_family *f, const char *path, char *err, size_t errlen) {
    csv_ctx c = {path, err, errlen};
    f->kind = ML_TASKS_CSV;
    size_t pl = strlen(path) + 1;
    f->path = ml_malloc(pl);
    if (!f->path) {
        csv_err(&c, 0, "out of memory");
        return ML_ERR_NOMEM;
    }
    memcpy(f->path, path, pl);
    scratch s = {0};
    ml_status st = load(f, &c, &s);
    scratch_free(&s);
    return st;
}

/* ---- a plain numeric table (ml_csv_read_numbers) -------------------------------- */

ml_status ml_csv_read_numbers(const char *path, float **data, int64_t *rows, int *cols, char *err, size_t errlen) {
    csv_ctx c = {path, err, errlen};
    *data = NULL;
    *rows = 0;
    *cols = 0;
    char *buf = NULL, **fields = NULL;
    float *vals = NULL;
    size_t len = 0;
    ml_status st = read_all(&c, &buf, &len);
    if (st != ML_OK) return st;
    char *p = buf, *end = buf + len;
    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) p += 3;
    size_t n_lines = count_nonblank_lines(p, end);
    int ncols = 0, line = 0;
    int64_t n = 0;
    st = ML_ERR_FORMAT;
    char *rec;
    int nf;
    while ((nf = next_record(&c, &p, end, &line, &rec)) != 0) {
        if (nf < 0) goto out;
        int first = ncols == 0;
        if (first) {
            ncols = nf;
            fields = ml_malloc((size_t)ncols * sizeof *fields);
            /* At most the rows that fit: a small multiple of the file size. */
            vals = ml_malloc(rows_that_fit(len, ncols, n_lines) * (size_t)ncols * sizeof(float));
            if (!fields || !vals) {
                csv_err(&c, 0, "out of memory for %zu lines of %d columns", n_lines, ncols);
                st = ML_ERR_NOMEM;
                goto out;
            }
        } else if (nf != ncols) {
            csv_err(&c, line, "%d columns, the first row has %d", nf, ncols);
            goto out;
        }
        int bad_quote = parse_fields(rec, fields, ncols);
        if (bad_quote) {
            csv_err(&c, line, "column %d: text after a closing quote", bad_quote);
            goto out;
        }
        /* A first row of names only (no number among them) is the header. */
        int header = first;
        for (int k = 0; k < ncols && header; k++) {
            float v;
            header = parse_float(fields[k], &v) == NUM_BAD;
        }
        for (int k = 0; k < ncols && !header; k++) {
            int r = parse_float(fields[k], vals + n * ncols + k);
            if (r == NUM_OK) continue;
            csv_err(&c, line, "column %d: %s '%s'", k + 1,
                    r == NUM_EMPTY ? "empty value" : r == NUM_BAD ? "not a number" : "not a finite float", fields[k]);
            goto out;
        }
        n += !header;
    }
    if (n == 0) {
        csv_err(&c, 0, ncols ? "no data rows after the header" : "file is empty");
        goto out;
    }
    *data = vals;
    *rows = n;
    *cols = ncols;
    vals = NULL;
    st = ML_OK;
out:
    ml_free(vals);
    ml_free(fields);
    ml_free(buf);
    return st;
}
