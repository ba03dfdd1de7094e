/* config.c: JSON config files for the option tables (see config.h).
 *
 * Values are checked the way args.c checks command-line values (same bounds,
 * same rule that strings are non-empty) but by JSON type rather than by
 * parsing text, so "5" for an integer option is a type error, not a number. */
#include "cli/config.h"

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

void config_free_strings(void) {
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
    const arg_spec *spec;
    int skip; /* null: the option keeps its value */
    union {
        int i;
        float f;
        uint64_t u;
        const char *s;
    } v;
} pending;

static int bad_type(const char *path, const arg_spec *s, const cJSON *j, const char *want, char *err,
                    size_t errlen) {
    ml__errf(err, errlen, "%s: key '%s': expected %s, got %s", path, s->name, want, json_type_name(j));
    return CONFIG_BAD_VALUE;
}

static int check_bounds(const char *path, const arg_spec *s, double x, char *err, size_t errlen) {
    if (s->min <= s->max && (x < s->min || x > s->max)) {
        ml__errf(err, errlen, "%s: key '%s': %.17g is outside %g..%g", path, s->name, x, s->min, s->max);
        return CONFIG_BAD_VALUE;
    }
    return CONFIG_OK;
}

/* Checks one value and stores it in p (strings already copied to the pool). */
static int check_value(const char *path, const arg_spec *s, const cJSON *j, pending *p, char *err, size_t errlen) {
    p->spec = s;
    /* One rule for every type: null means "not set here", so the option keeps
     * its default (or what an earlier settings file gave it). config_write_json
     * writes null for a string that is unset, so this also reads that back. */
    if (cJSON_IsNull(j)) {
        p->skip = 1;
        return CONFIG_OK;
    }
    switch (s->type) {
    case ARG_INT: {
        if (!cJSON_IsNumber(j)) return bad_type(path, s, j, "an integer", err, errlen);
        double x = j->valuedouble;
        if (x != floor(x) || x < INT32_MIN || x > INT32_MAX) {
            ml__errf(err, errlen, "%s: key '%s': %.17g is not an integer", path, s->name, x);
            return CONFIG_BAD_VALUE;
        }
        if (check_bounds(path, s, x, err, errlen)) return CONFIG_BAD_VALUE;
        p->v.i = (int)x;
        return CONFIG_OK;
    }
    case ARG_U64: {
        uint64_t u;
        if (cJSON_IsNumber(j)) {
            double x = j->valuedouble;
            if (x != floor(x) || x < 0 || x > 9007199254740992.0) {
                ml__errf(err, errlen, "%s: key '%s': %.17g is not an integer in 0..2^53 (use a string for larger)",
                        path, s->name, x);
                return CONFIG_BAD_VALUE;
            }
            u = (uint64_t)x;
        } else if (cJSON_IsString(j)) {
            const char *t = j->valuestring;
            char *end;
            errno = 0;
            u = strtoull(t, &end, 10);
            if (*t < '0' || *t > '9' || *end || errno) {
                ml__errf(err, errlen, "%s: key '%s': '%s' is not an unsigned 64-bit integer", path, s->name, t);
                return CONFIG_BAD_VALUE;
            }
        } else {
            return bad_type(path, s, j, "an unsigned integer", err, errlen);
        }
        if (check_bounds(path, s, (double)u, err, errlen)) return CONFIG_BAD_VALUE;
        p->v.u = u;
        return CONFIG_OK;
    }
    case ARG_FLOAT: {
        if (!cJSON_IsNumber(j)) return bad_type(path, s, j, "a number", err, errlen);
        double x = j->valuedouble;
        if (check_bounds(path, s, x, err, errlen)) return CONFIG_BAD_VALUE;
        if (fabs(x) > FLT_MAX) {
            ml__errf(err, errlen, "%s: key '%s': %.17g does not fit a float", path, s->name, x);
            return CONFIG_BAD_VALUE;
        }
        p->v.f = (float)x;
        return CONFIG_OK;
    }
    case ARG_FLAG:
        if (!cJSON_IsBool(j)) return bad_type(path, s, j, "true or false", err, errlen);
        p->v.i = cJSON_IsTrue(j) ? 1 : 0;
        return CONFIG_OK;
    case ARG_STRING:
        if (!cJSON_IsString(j)) return bad_type(path, s, j, "a string", err, errlen);
        if (!*j->valuestring) {
            ml__errf(err, errlen, "%s: key '%s': empty string", path, s->name);
            return CONFIG_BAD_VALUE;
        }
        /* Copied now: the pool only grows, so a later error wastes bytes, not targets. */
        p->v.s = pool_strdup(j->valuestring);
        if (!p->v.s) {
            ml__errf(err, errlen, "%s: out of memory", path);
            return CONFIG_FILE_ERROR;
        }
        return CONFIG_OK;
    }
    ml__errf(err, errlen, "%s: key '%s': unsupported option type", path, s->name);
    return CONFIG_BAD_VALUE;
}

static void store(const pending *p) {
    const arg_spec *s = p->spec;
    if (p->skip) return;
    switch (s->type) {
    case ARG_INT:
    case ARG_FLAG: *(int *)s->target = p->v.i; break;
    case ARG_U64: *(uint64_t *)s->target = p->v.u; break;
    case ARG_FLOAT: *(float *)s->target = p->v.f; break;
    case ARG_STRING: *(const char **)s->target = p->v.s; break;
    }
}

static const arg_spec *find_spec(const arg_cmd *cmd, const char *name) {
    for (int k = 0; k < cmd->n_specs; k++)
        if (!strcmp(cmd->specs[k].name, name)) return &cmd->specs[k];
    return NULL;
}

static int unknown_key(const arg_cmd *cmd, const char *path, const char *key, char *err, size_t errlen) {
    /* "batch_size" for "batch-size", "inner_rl" for "inner-lr": the likely slips; say so. */
    const char *near = args_suggest(cmd, key, strlen(key));
    if (near)
        ml__errf(err, errlen, "%s: unknown key '%s' (did you mean '%s'? see metalearn %s --help)", path, key, near,
                cmd->name);
    else
        ml__errf(err, errlen, "%s: unknown key '%s' (see metalearn %s --help)", path, key, cmd->name);
    return CONFIG_BAD_VALUE;
}

int config_apply_file(const arg_cmd *cmd, const char *path, char *err, size_t errlen) {
    size_t len;
    char *text;
    ml_status st = ml_file_read_text(path, CONFIG_MAX_BYTES, &text, &len, err, errlen);
    if (st == ML_ERR_ARG) ml__errf(err, errlen, "%s: larger than %u bytes; not a config file?", path, CONFIG_MAX_BYTES);
    if (st != ML_OK) return CONFIG_FILE_ERROR;
    if (memchr(text, 0, len)) {
        ml__errf(err, errlen, "%s: contains a NUL byte; not a JSON text file", path);
        ml_free(text);
        return CONFIG_FILE_ERROR;
    }
    /* len + 1: cJSON looks for the terminating NUL inside the length it is given. */
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len + 1, &end, 1);
    if (!root) {
        int line = 1, col = 1;
        for (const char *c = text; end && c < end && *c; c++)
            if (*c == '\n') line++, col = 1;
            else col++;
        ml__errf(err, errlen, "%s: not valid JSON (line %d, column %d)", path, line, col);
        ml_free(text);
        return CONFIG_FILE_ERROR;
    }
    ml_free(text);
    int r = config_apply_json(cmd, root, path, err, errlen);
    cJSON_Delete(root);
    return r;
}

int config_apply_json(const arg_cmd *cmd, const cJSON *root, const char *path, char *err, size_t errlen) {
    if (!cJSON_IsObject(root)) {
        ml__errf(err, errlen, "%s: expected a JSON object {\"option\": value, ...}", path);
        return CONFIG_FILE_ERROR;
    }
    int n = cJSON_GetArraySize(root), r = CONFIG_OK, k = 0;
    pending *p = ml_calloc(n ? (size_t)n : 1, sizeof *p);
    if (!p) {
        ml__errf(err, errlen, "%s: out of memory", path);
        return CONFIG_FILE_ERROR;
    }
    for (const cJSON *j = root->child; j && !r; j = j->next, k++) {
        const arg_spec *s = find_spec(cmd, j->string);
        if (!s) {
            r = unknown_key(cmd, path, j->string, err, errlen);
            break;
        }
        /* cJSON keeps repeated keys; silently taking the last would hide a typo'd edit. */
        for (int q = 0; q < k; q++)
            if (p[q].spec == s) {
                ml__errf(err, errlen, "%s: key '%s' appears twice", path, s->name);
                r = CONFIG_BAD_VALUE;
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

static cJSON *spec_value(const arg_spec *s) {
    char buf[40];
    switch (s->type) {
    case ARG_INT: return cJSON_CreateNumber(*(const int *)s->target);
    case ARG_FLAG: return cJSON_CreateBool(*(const int *)s->target != 0);
    case ARG_U64: {
        uint64_t u = *(const uint64_t *)s->target;
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)u);
        /* Above 2^53 a JSON number would not read back exactly. */
        return u <= (1ull << 53) ? cJSON_CreateRaw(buf) : cJSON_CreateString(buf);
    }
    case ARG_FLOAT: {
        float f = *(const float *)s->target;
        if (!isfinite(f)) return cJSON_CreateNull(); /* JSON has no inf/nan */
        format_float(buf, sizeof buf, f);
        return cJSON_CreateRaw(buf);
    }
    case ARG_STRING: {
        const char *v = *(const char *const *)s->target;
        return v ? cJSON_CreateString(v) : cJSON_CreateNull();
    }
    }
    return cJSON_CreateNull();
}

int config_write_json(const arg_cmd *cmd, const char *path, char *err, size_t errlen) {
    cJSON *root = cJSON_CreateObject();
    int ok = root != NULL;
    for (int k = 0; ok && k < cmd->n_specs; k++) {
        cJSON *v = spec_value(&cmd->specs[k]);
        ok = v && cJSON_AddItemToObject(root, cmd->specs[k].name, v);
        if (!ok) cJSON_Delete(v);
    }
    ml_status s = ML_ERR_NOMEM;
    if (ok) s = ml_json_write_atomic(path, root, err, errlen);
    else ml__errf(err, errlen, "%s: out of memory", path);
    cJSON_Delete(root);
    return s ? CONFIG_FILE_ERROR : CONFIG_OK;
}
