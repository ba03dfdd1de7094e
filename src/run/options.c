/* options.c: option tables set by name from text, from JSON config files,
 * and written back as JSON (see metalearn/options.h).
 *
 * JSON values are checked like text values (same bounds, same rule that
 * strings are non-empty) but by JSON type rather than by parsing text, so
 * "5" for an integer option is a type error, not a number. */
#include "metalearn/options.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "metalearn/core.h"
#include "metalearn/io.h"
#include "core/errfmt.h"

#define CONFIG_MAX_BYTES (16u << 20) /* a config file, not a data set */


/* ---- string pool: blocks chained from a global head, never moved ------------ */

typedef struct pool_block {
    struct pool_block *next;
    char text[];
} pool_block;

static pool_block *g_pool;

static const char *pool_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    pool_block *b = ml_malloc(sizeof *b + n);
    if (!b) return NULL;
    memcpy(b->text, s, n);
    b->next = g_pool;
    g_pool = b;
    return b->text;
}

void ml_options_free_strings(void) {
    while (g_pool) {
        pool_block *b = g_pool;
        g_pool = b->next;
        ml_free(b);
    }
}

/* ---- reading ------------------------------------------------------------------ */

static const char *json_type_name(const cJSON *j) {
    if (cJSON_IsBool(j)) return "a boolean";
    if (cJSON_IsNumber(j)) return "a number";
    if (cJSON_IsString(j)) return "a string";
    if (cJSON_IsNull(j)) return "null";
    if (cJSON_IsArray(j)) return "an array";
    if (cJSON_IsObject(j)) return "an object";
    return "an invalid value";
}

/* A checked value, written to its target only once every key is good. */
typedef struct pending {
    const ml_option *spec;
    int skip; /* null: the option keeps its value */
    union {
        int i;
        float f;
        uint64_t u;
        const char *s;
    } v;
} pending;

static int bad_type(const char *path, const ml_option *s, const cJSON *j, const char *want, char *err,
                    size_t errlen) {
    ml__errf(err, errlen, "%s: key '%s': expected %s, got %s", path, s->name, want, json_type_name(j));
    return ML_OPTIONS_BAD_VALUE;
}

/* A bound as the user would type it: 1048576, not %g's 1.04858e+06. */
static const char *bound_text(char *buf, size_t len, double x) {
    if (x == floor(x) && fabs(x) < 1e15) snprintf(buf, len, "%.0f", x);
    else snprintf(buf, len, "%g", x);
    return buf;
}

static int check_bounds(const char *path, const ml_option *s, double x, char *err, size_t errlen) {
    if (s->min <= s->max && (x < s->min || x > s->max)) {
        char lo[32], hi[32];
        ml__errf(err, errlen, "%s: key '%s': %.17g is outside %s..%s", path, s->name, x,
                 bound_text(lo, sizeof lo, s->min), bound_text(hi, sizeof hi, s->max));
        return ML_OPTIONS_BAD_VALUE;
    }
    return ML_OPTIONS_OK;
}

/* Checks one value and stores it in p (strings already copied to the pool). */
static int check_value(const char *path, const ml_option *s, const cJSON *j, pending *p, char *err, size_t errlen) {
    p->spec = s;
    /* One rule for every type: null means "not set here", so the option keeps
     * its default (or what an earlier settings file gave it). ml_options_write_json
     * writes null for a string that is unset, so this also reads that back. */
    if (cJSON_IsNull(j)) {
        p->skip = 1;
        return ML_OPTIONS_OK;
    }
    switch (s->type) {
    case ML_OPT_INT: {
        if (!cJSON_IsNumber(j)) return bad_type(path, s, j, "an integer", err, errlen);
        double x = j->valuedouble;
        if (x != floor(x) || x < INT32_MIN || x > INT32_MAX) {
            ml__errf(err, errlen, "%s: key '%s': %.17g is not an integer", path, s->name, x);
            return ML_OPTIONS_BAD_VALUE;
        }
        if (check_bounds(path, s, x, err, errlen)) return ML_OPTIONS_BAD_VALUE;
        p->v.i = (int)x;
        return ML_OPTIONS_OK;
    }
    case ML_OPT_U64: {
        uint64_t u;
        if (cJSON_IsNumber(j)) {
            double x = j->valuedouble;
            if (x != floor(x) || x < 0 || x > 9007199254740992.0) {
                ml__errf(err, errlen, "%s: key '%s': %.17g is not an integer in 0..2^53 (use a string for larger)",
                        path, s->name, x);
                return ML_OPTIONS_BAD_VALUE;
            }
            u = (uint64_t)x;
        } else if (cJSON_IsString(j)) {
            const char *t = j->valuestring;
            char *end;
            errno = 0;
            u = strtoull(t, &end, 10);
            if (*t < '0' || *t > '9' || *end || errno) {
                ml__errf(err, errlen, "%s: key '%s': '%s' is not an unsigned 64-bit integer", path, s->name, t);
                return ML_OPTIONS_BAD_VALUE;
            }
        } else {
            return bad_type(path, s, j, "an unsigned integer", err, errlen);
        }
        if (check_bounds(path, s, (double)u, err, errlen)) return ML_OPTIONS_BAD_VALUE;
        p->v.u = u;
        return ML_OPTIONS_OK;
    }
    case ML_OPT_FLOAT: {
        if (!cJSON_IsNumber(j)) return bad_type(path, s, j, "a number", err, errlen);
        double x = j->valuedouble;
        if (check_bounds(path, s, x, err, errlen)) return ML_OPTIONS_BAD_VALUE;
        if (fabs(x) > FLT_MAX) {
            ml__errf(err, errlen, "%s: key '%s': %.17g does not fit a float", path, s->name, x);
            return ML_OPTIONS_BAD_VALUE;
        }
        p->v.f = (float)x;
        return ML_OPTIONS_OK;
    }
    case ML_OPT_FLAG:
        if (!cJSON_IsBool(j)) return bad_type(path, s, j, "true or false", err, errlen);
        p->v.i = cJSON_IsTrue(j) ? 1 : 0;
        return ML_OPTIONS_OK;
    case ML_OPT_STRING:
        if (!cJSON_IsString(j)) return bad_type(path, s, j, "a string", err, errlen);
        if (!*j->valuestring) {
            ml__errf(err, errlen, "%s: key '%s': empty string", path, s->name);
            return ML_OPTIONS_BAD_VALUE;
        }
        /* Copied now: the pool only grows, so a later error wastes bytes, not targets. */
        p->v.s = pool_strdup(j->valuestring);
        if (!p->v.s) {
            ml__errf(err, errlen, "%s: out of memory", path);
            return ML_OPTIONS_FILE_ERROR;
        }
        return ML_OPTIONS_OK;
    }
    ml__errf(err, errlen, "%s: key '%s': unsupported option type", path, s->name);
    return ML_OPTIONS_BAD_VALUE;
}

static void store(const pending *p) {
    const ml_option *s = p->spec;
    if (p->skip) return;
    switch (s->type) {
    case ML_OPT_INT:
    case ML_OPT_FLAG: *(int *)s->target = p->v.i; break;
    case ML_OPT_U64: *(uint64_t *)s->target = p->v.u; break;
    case ML_OPT_FLOAT: *(float *)s->target = p->v.f; break;
    case ML_OPT_STRING: *(const char **)s->target = p->v.s; break;
    }
}

const ml_option *ml_options_find(const ml_option_set *set, const char *name) {
    for (int k = 0; k < set->n_options; k++)
        if (!strcmp(set->options[k].name, name)) return &set->options[k];
    return NULL;
}

static int unknown_key(const ml_option_set *cmd, const char *path, const char *key, char *err, size_t errlen) {
    /* "batch_size" for "batch-size", "inner_rl" for "inner-lr": the likely slips; say so. */
    const char *near = ml_options_suggest(cmd, key, strlen(key));
    if (near)
        ml__errf(err, errlen, "%s: unknown key '%s' (did you mean '%s'? see metalearn %s --help)", path, key, near,
                cmd->name);
    else
        ml__errf(err, errlen, "%s: unknown key '%s' (see metalearn %s --help)", path, key, cmd->name);
    return ML_OPTIONS_BAD_VALUE;
}

int ml_options_apply_file(const ml_option_set *set, const char *path, char *err, size_t errlen) {
    size_t len;
    char *text;
    ml_status st = ml_file_read_text(path, CONFIG_MAX_BYTES, &text, &len, err, errlen);
    if (st == ML_ERR_ARG) ml__errf(err, errlen, "%s: larger than %u bytes; not a config file?", path, CONFIG_MAX_BYTES);
    if (st != ML_OK) return ML_OPTIONS_FILE_ERROR;
    if (memchr(text, 0, len)) {
        ml__errf(err, errlen, "%s: contains a NUL byte; not a JSON text file", path);
        ml_free(text);
        return ML_OPTIONS_FILE_ERROR;
    }
    int r = ml_options_apply_json_text(set, text, path, err, errlen);
    ml_free(text);
    return r;
}

int ml_options_apply_json_text(const ml_option_set *set, const char *text, const char *label, char *err,
                               size_t errlen) {
    /* strlen + 1: cJSON looks for the terminating NUL inside the length it is given. */
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, strlen(text) + 1, &end, 1);
    if (!root) {
        int line = 1, col = 1;
        for (const char *c = text; end && c < end && *c; c++)
            if (*c == '\n') line++, col = 1;
            else col++;
        ml__errf(err, errlen, "%s: not valid JSON (line %d, column %d)", label, line, col);
        return ML_OPTIONS_FILE_ERROR;
    }
    int r = ml_options_apply_json(set, root, label, err, errlen);
    cJSON_Delete(root);
    return r;
}

int ml_options_apply_json(const ml_option_set *cmd, const cJSON *root, const char *path, char *err, size_t errlen) {
    if (!cJSON_IsObject(root)) {
        ml__errf(err, errlen, "%s: expected a JSON object {\"option\": value, ...}", path);
        return ML_OPTIONS_FILE_ERROR;
    }
    int n = cJSON_GetArraySize(root), r = ML_OPTIONS_OK, k = 0;
    pending *p = ml_calloc(n ? (size_t)n : 1, sizeof *p);
    if (!p) {
        ml__errf(err, errlen, "%s: out of memory", path);
        return ML_OPTIONS_FILE_ERROR;
    }
    for (const cJSON *j = root->child; j && !r; j = j->next, k++) {
        const ml_option *s = ml_options_find(cmd, j->string);
        if (!s) {
            r = unknown_key(cmd, path, j->string, err, errlen);
            break;
        }
        /* cJSON keeps repeated keys; silently taking the last would hide a typo'd edit. */
        for (int q = 0; q < k; q++)
            if (p[q].spec == s) {
                ml__errf(err, errlen, "%s: key '%s' appears twice", path, s->name);
                r = ML_OPTIONS_BAD_VALUE;
            }
        if (!r) r = check_value(path, s, j, &p[k], err, errlen);
    }
    if (!r)
        for (int q = 0; q < n; q++) store(&p[q]);
    ml_free(p);
    return r;
}

/* ---- writing ------------------------------------------------------------------ */

/* The shortest "%.Ng" that reads back as the same float. */
static void format_float(char *buf, size_t n, float f) {
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, n, "%.*g", prec, (double)f);
        if (strtof(buf, NULL) == f) return;
    }
}

static cJSON *spec_value(const ml_option *s) {
    char buf[40];
    switch (s->type) {
    case ML_OPT_INT: return cJSON_CreateNumber(*(const int *)s->target);
    case ML_OPT_FLAG: return cJSON_CreateBool(*(const int *)s->target != 0);
    case ML_OPT_U64: {
        uint64_t u = *(const uint64_t *)s->target;
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)u);
        /* Above 2^53 a JSON number would not read back exactly. */
        return u <= (1ull << 53) ? cJSON_CreateRaw(buf) : cJSON_CreateString(buf);
    }
    case ML_OPT_FLOAT: {
        float f = *(const float *)s->target;
        if (!isfinite(f)) return cJSON_CreateNull(); /* JSON has no inf/nan */
        format_float(buf, sizeof buf, f);
        return cJSON_CreateRaw(buf);
    }
    case ML_OPT_STRING: {
        const char *v = *(const char *const *)s->target;
        return v ? cJSON_CreateString(v) : cJSON_CreateNull();
    }
    }
    return cJSON_CreateNull();
}

static cJSON *options_object(const ml_option_set *set) {
    cJSON *root = cJSON_CreateObject();
    for (int k = 0; root && k < set->n_options; k++) {
        cJSON *v = spec_value(&set->options[k]);
        if (!v || !cJSON_AddItemToObject(root, set->options[k].name, v)) {
            cJSON_Delete(v);
            cJSON_Delete(root);
            return NULL;
        }
    }
    return root;
}

int ml_options_write_json(const ml_option_set *set, const char *path, char *err, size_t errlen) {
    cJSON *root = options_object(set);
    ml_status s = ML_ERR_NOMEM;
    if (root) s = ml_json_write_atomic(path, root, err, errlen);
    else ml__errf(err, errlen, "%s: out of memory", path);
    cJSON_Delete(root);
    return s ? ML_OPTIONS_FILE_ERROR : ML_OPTIONS_OK;
}

char *ml_options_to_json(const ml_option_set *set) {
    cJSON *root = options_object(set);
    char *text = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!text) return NULL;
    /* cJSON allocates with malloc; callers free with ml_free. */
    size_t n = strlen(text) + 1;
    char *copy = ml_malloc(n);
    if (copy) memcpy(copy, text, n);
    cJSON_free(text);
    return copy;
}

/* ---- text values (command lines, other languages) ----------------------------------- */

static int text_bool(const char *v, int *out) {
    if (!strcmp(v, "1") || !strcmp(v, "true")) return *out = 1, 0;
    if (!strcmp(v, "0") || !strcmp(v, "false")) return *out = 0, 0;
    return -1;
}

int ml_options_set_text(const ml_option *s, const char *v, char *err, size_t errlen) {
    char *end;
    errno = 0;
    switch (s->type) {
    case ML_OPT_INT:
    case ML_OPT_U64:
    case ML_OPT_FLOAT: {
        /* Unsigned 64-bit values above 2^63 (seeds) parse as such, as a config file's strings do. */
        int unsigned_digits = s->type == ML_OPT_U64 && v[strspn(v, " \t")] != '-';
        unsigned long long u = 0;
        double x;
        if (s->type == ML_OPT_FLOAT) x = strtod(v, &end);
        else if (unsigned_digits) x = (double)(u = strtoull(v, &end, 10));
        else x = (double)strtoll(v, &end, 10);
        if (end == v || *end || errno || !isfinite(x)) {
            ml__errf(err, errlen, "--%s: '%s' is not a number", s->name, v);
            return ML_OPTIONS_BAD_VALUE;
        }
        if (s->min <= s->max && (x < s->min || x > s->max)) {
            char lo[32], hi[32];
            ml__errf(err, errlen, "--%s: %s is outside %s..%s", s->name, v, bound_text(lo, sizeof lo, s->min),
                     bound_text(hi, sizeof hi, s->max));
            return ML_OPTIONS_BAD_VALUE;
        }
        if (s->type == ML_OPT_INT) *(int *)s->target = (int)x;
        else if (s->type == ML_OPT_U64) *(uint64_t *)s->target = (uint64_t)u;
        else *(float *)s->target = (float)x;
        return ML_OPTIONS_OK;
    }
    case ML_OPT_STRING: {
        if (!*v) {
            ml__errf(err, errlen, "--%s: empty value", s->name);
            return ML_OPTIONS_BAD_VALUE;
        }
        const char *copy = pool_strdup(v);
        if (!copy) {
            ml__errf(err, errlen, "--%s: out of memory", s->name);
            return ML_OPTIONS_BAD_VALUE;
        }
        *(const char **)s->target = copy;
        return ML_OPTIONS_OK;
    }
    case ML_OPT_FLAG: {
        int b;
        if (text_bool(v, &b)) {
            ml__errf(err, errlen, "--%s: '%s' is not true/false (or 1/0)", s->name, v);
            return ML_OPTIONS_BAD_VALUE;
        }
        *(int *)s->target = b;
        return ML_OPTIONS_OK;
    }
    }
    ml__errf(err, errlen, "--%s: unsupported option type", s->name);
    return ML_OPTIONS_BAD_VALUE;
}

int ml_options_set(const ml_option_set *set, const char *name, const char *text, char *err, size_t errlen) {
    const ml_option *o = ml_options_find(set, name);
    if (!o) {
        const char *near = ml_options_suggest(set, name, strlen(name));
        if (near) ml__errf(err, errlen, "unknown option '%s' (did you mean '%s'?)", name, near);
        else ml__errf(err, errlen, "unknown option '%s'", name);
        return ML_OPTIONS_BAD_VALUE;
    }
    return ml_options_set_text(o, text, err, errlen);
}

/* ---- suggestions ---------------------------------------------------------------------- */

/* Optimal-string-alignment distance (Levenshtein plus adjacent swaps,
 * "inner-rl" -> "inner-lr" is 1), '_' equal to '-'; stops at 99. */
static int edit_distance(const char *a, size_t la, const char *b) {
    size_t lb = strlen(b);
    if (la > 63 || lb > 63) return 99;
    int d[64][64];
    for (size_t i = 0; i <= la; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            char x = a[i - 1] == '_' ? '-' : a[i - 1], y = b[j - 1];
            int best = d[i - 1][j - 1] + (x != y);
            if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && x == b[j - 2] && (a[i - 2] == '_' ? '-' : a[i - 2]) == y && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[la][lb];
}

const char *ml_suggest_name(const char *const *names, int n, const char *name, size_t len) {
    const char *best = NULL;
    int best_d = 3; /* more than 2 edits is another word, not a slip */
    for (int k = 0; k < n; k++) {
        int d = edit_distance(name, len, names[k]);
        if (d < best_d && 2 * (size_t)d < len) best = names[k], best_d = d;
    }
    return best;
}

const char *ml_options_suggest(const ml_option_set *set, const char *name, size_t len) {
    const char *names[256];
    int n = set->n_options < 256 ? set->n_options : 256;
    for (int k = 0; k < n; k++) names[k] = set->options[k].name;
    return ml_suggest_name(names, n, name, len);
}
