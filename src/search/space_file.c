/* space_file.c: a search space file ({"base": ..., "space": ...}) loaded and
 * checked against train's option table (metalearn/search.h,
 * ml_search_spec_load), and evolution's breeding step. No trials here. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/errfmt.h"
#include "metalearn/io.h"
#include "metalearn/meta.h"
#include "metalearn/optim.h"
#include "metalearn/run.h"
#include "metalearn/search.h"
#include "search/search_internal.h"

/* Options the search itself sets for every trial: not searchable, and
 * dropped from a base config (a run's config.json carries them). */
static const char *const reserved[] = {"out", "resume", "overwrite", "config", "json", "quiet", "threads", "iters"};

static int is_reserved(const char *name) {
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (!strcmp(name, reserved[i])) return 1;
    return 0;
}

/* A space file or base config is a few kB: a bound keeps /dev/zero or a FIFO
 * that never ends from filling the memory (it did: 16 GB before it failed). */
#define SEARCH_JSON_MAX_BYTES ((size_t)16 << 20)

cJSON *ml__search_read_json(const char *path, char *err, size_t errlen) {
    char *text;
    ml_status st = ml_file_read_text(path, SEARCH_JSON_MAX_BYTES, &text, NULL, NULL, 0);
    if (st == ML_ERR_ARG) {
        ml__errf(err, errlen, "%s: larger than %zu bytes; not a search space or config file?", path,
                 SEARCH_JSON_MAX_BYTES);
        return NULL;
    }
    if (st != ML_OK) {
        ml__errf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        return NULL;
    }
    cJSON *j = ml__search_parse_json(text, path, err, errlen);
    ml_free(text);
    return j;
}

cJSON *ml__search_parse_json(const char *text, const char *label, char *err, size_t errlen) {
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithOpts(text, &end, 1);
    if (!j) {
        int line = 1;
        for (const char *c = text; end && c < end && *c; c++) line += *c == '\n';
        ml__errf(err, errlen, "%s: not valid JSON (line %d)", label, line);
    }
    return j;
}

/* A one-key object {name: value} checked as train would check it. */
static int check_value(const char *label, const char *name, cJSON *value, char *err, size_t errlen) {
    cJSON *o = cJSON_CreateObject();
    if (!o || !value) {
        cJSON_Delete(o);
        cJSON_Delete(value);
        ml__errf(err, errlen, "%s: out of memory", label);
        return -1;
    }
    cJSON_AddItemToObject(o, name, value);
    ml_run_config scratch;
    ml_run_config_default(&scratch);
    ml_option_set train = ml_run_config_option_set(&scratch);
    int r = ml_options_apply_json(&train, o, label, err, errlen);
    cJSON_Delete(o);
    return r ? -1 : 0;
}

/* Every parameter must be a train option of a fitting type whose ends (or
 * choices) train accepts. */
static int check_space(const ml_search_space *space, const char *label, char *err, size_t errlen) {
    ml_run_config scratch;
    ml_run_config_default(&scratch);
    ml_option_set train = ml_run_config_option_set(&scratch);
    for (int i = 0; i < space->n; i++) {
        const ml_search_param *p = &space->params[i];
        const ml_option *spec = ml_options_find(&train, p->name);
        if (!spec) {
            ml__errf(err, errlen, "%s: unknown key '%s' (not a metalearn train option; see metalearn train --help)",
                     label, p->name);
            return -1;
        }
        if (is_reserved(p->name)) {
            ml__errf(err, errlen, "%s: key '%s' is set by the search itself and cannot be searched", label, p->name);
            return -1;
        }
        ml_option_type type = spec->type; /* the table is reused by check_value below */
        int integral = type == ML_OPT_INT || type == ML_OPT_U64;
        if (p->kind != ML_PARAM_CHOICE && (type == ML_OPT_STRING || type == ML_OPT_FLAG)) {
            ml__errf(err, errlen, "%s: key '%s': a %s option takes {\"choice\": [...]}", label, p->name,
                     type == ML_OPT_FLAG ? "true/false" : "text");
            return -1;
        }
        if (integral && (p->kind == ML_PARAM_UNIFORM || p->kind == ML_PARAM_LOG_UNIFORM)) {
            ml__errf(err, errlen, "%s: key '%s': an integer option takes {\"int\": [lo, hi]} or {\"choice\": [...]}",
                     label, p->name);
            return -1;
        }
        if (p->kind == ML_PARAM_CHOICE) {
            for (int c = 0; c < p->n_choices; c++) {
                /* Names train only checks after loading data: checked here, before any trial. */
                const char *str = p->choices[c].type == ML_CHOICE_STRING ? p->choices[c].string : NULL;
                ml_algo algo;
                ml_optim_kind kind;
                if (str && !strcmp(p->name, "algo") && (ml_algo_parse(str, &algo) || !strcmp(str, "supervised"))) {
                    char names[256];
                    ml__errf(err, errlen, "%s: key 'algo': '%s' is not a meta-learner (%s)", label, str,
                             ml_algo_list(names, sizeof names, NULL));
                    return -1;
                }
                if (str && !strcmp(p->name, "optimizer") && ml_optim_kind_parse(str, &kind)) {
                    ml__errf(err, errlen, "%s: key 'optimizer': '%s' is not sgd, adagrad, rmsprop, adam or adamw",
                             label, str);
                    return -1;
                }
                double v = c;
                cJSON *tmp = cJSON_CreateObject();
                if (!tmp || ml_search_to_json(&(ml_search_space){.params = {*p}, .n = 1}, &v, tmp)) {
                    cJSON_Delete(tmp);
                    ml__errf(err, errlen, "out of memory");
                    return -1;
                }
                cJSON *item = cJSON_DetachItemFromObjectCaseSensitive(tmp, p->name);
                cJSON_Delete(tmp);
                if (check_value(label, p->name, item, err, errlen)) return -1;
            }
        } else {
            if (check_value(label, p->name, cJSON_CreateNumber(p->lo), err, errlen) ||
                check_value(label, p->name, cJSON_CreateNumber(p->hi), err, errlen))
                return -1;
        }
    }
    return 0;
}

void ml_search_spec_free(ml_search_spec *spec) {
    cJSON_Delete(spec->base);
    spec->base = NULL;
    ml_search_space_free(&spec->space);
}

/* base = the base config, then the space file's "base" over it; every value
 * checked; its "iters" becomes the default max_iters, then the search's own
 * keys are dropped. */
ml_status ml_search_spec_load(ml_search_spec *spec, const char *space_path, const char *space_text,
                              const char *base_config, char *err, size_t errlen) {
    memset(spec, 0, sizeof *spec);
    const char *label = space_text ? (space_path ? space_path : "space") : space_path;
    if (!label) {
        ml__errf(err, errlen, "no search space (a file or JSON text)");
        return ML_ERR_ARG;
    }
    cJSON *file = space_text ? ml__search_parse_json(space_text, label, err, errlen)
                             : ml__search_read_json(space_path, err, errlen);
    if (!file) return ML_ERR_IO;
    ml_status status = ML_ERR_ARG;
    ml_run_config scratch;
    ml_option_set train = ml_run_config_option_set(&scratch);
    if (!cJSON_IsObject(file)) {
        ml__errf(err, errlen, "%s: expected {\"base\": {...}, \"space\": {...}}", label);
        goto out;
    }
    for (const cJSON *j = file->child; j; j = j->next)
        if (strcmp(j->string, "base") && strcmp(j->string, "space")) {
            ml__errf(err, errlen, "%s: unknown key '%s' (expected \"base\" and \"space\")", label, j->string);
            goto out;
        }
    if (base_config) {
        spec->base = ml__search_read_json(base_config, err, errlen);
        if (!spec->base) {
            status = ML_ERR_IO;
            goto out;
        }
        ml_run_config_default(&scratch);
        train = ml_run_config_option_set(&scratch);
        if (ml_options_apply_json(&train, spec->base, base_config, err, errlen)) goto out;
    } else if (!(spec->base = cJSON_CreateObject())) {
        ml__errf(err, errlen, "out of memory");
        status = ML_ERR_NOMEM;
        goto out;
    }
    const cJSON *extra = cJSON_GetObjectItemCaseSensitive(file, "base");
    if (extra) {
        if (!cJSON_IsObject(extra)) {
            ml__errf(err, errlen, "%s: \"base\" must be an object of train options", label);
            goto out;
        }
        for (const cJSON *j = extra->child; j; j = j->next) {
            if (is_reserved(j->string) && strcmp(j->string, "iters")) {
                ml__errf(err, errlen, "%s: base key '%s' is set by the search itself", label, j->string);
                goto out;
            }
            cJSON *copy = cJSON_Duplicate(j, 1);
            cJSON_DeleteItemFromObjectCaseSensitive(spec->base, j->string);
            if (!copy || !cJSON_AddItemToObject(spec->base, j->string, copy)) {
                cJSON_Delete(copy);
                ml__errf(err, errlen, "out of memory");
                status = ML_ERR_NOMEM;
                goto out;
            }
        }
    }
    ml_run_config_default(&scratch);
    train = ml_run_config_option_set(&scratch);
    if (ml_options_apply_json(&train, spec->base, label, err, errlen)) goto out;
    spec->base_iters = scratch.iters;
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        cJSON_DeleteItemFromObjectCaseSensitive(spec->base, reserved[i]);
    int supervised = !strcmp(scratch.algo, "supervised");
    const cJSON *space = cJSON_GetObjectItemCaseSensitive(file, "space");
    if (!space) {
        ml__errf(err, errlen, "%s: no \"space\" object", label);
        goto out;
    }
    ml_status st = ml_search_space_parse(space, label, &spec->space, err, errlen);
    if (st) {
        status = st;
        goto out;
    }
    if (check_space(&spec->space, label, err, errlen)) goto out;
    for (int i = 0; i < spec->space.n && supervised; i++) supervised = strcmp(spec->space.params[i].name, "algo") != 0;
    if (supervised) {
        ml__errf(err, errlen, "%s: no \"algo\" in the base config or the space (train's default, supervised, is not a "
                              "meta-learner)", label);
        goto out;
    }
    status = ML_OK;
out:
    cJSON_Delete(file);
    if (status) ml_search_spec_free(spec);
    return status;
}

/* ---- evolution -------------------------------------------------------------------- */

static int same_candidate(const double *cand, int np, int a, int b) {
    return !memcmp(cand + (size_t)a * np, cand + (size_t)b * np, (size_t)np * sizeof(double));
}

void ml_search_breed(const ml_search_space *s, ml_rng *rng, double *cand, int t, int n_scored, const double *scores,
                     int higher_better) {
    int np = s->n;
    double *child = cand + (size_t)t * np;
    double rate = np > 1 ? 1.0 / np : 1.0, sigma = 0.15;
    int a = ml_search_tournament(rng, scores, n_scored, 3, higher_better),
        b = ml_search_tournament(rng, scores, n_scored, 3, higher_better);
    ml_search_crossover(s, rng, cand + (size_t)a * np, cand + (size_t)b * np, child);
    for (int attempt = 0; attempt < 10; attempt++) {
        ml_search_mutate(s, rng, child, child, attempt ? 1.0 : rate, sigma);
        int dup = 0;
        for (int u = 0; u < t && !dup; u++) dup = same_candidate(cand, np, u, t);
        if (!dup) break;
    }
}
