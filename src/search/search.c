/* search.c: search spaces, sampling and the evolutionary operators of a
 * strategy search (see metalearn/search.h). */
#include "metalearn/search.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/errfmt.h"

/* ---- parsing ------------------------------------------------------------------ */

static const char *const kind_names[] = {"uniform", "log_uniform", "int", "choice"};

static void free_choices(ml_search_param *p) {
    for (int i = 0; i < p->n_choices; i++) ml_free(p->choices[i].string);
    ml_free(p->choices);
    p->choices = NULL;
    p->n_choices = 0;
}

void ml_search_space_free(ml_search_space *s) {
    for (int i = 0; i < s->n; i++) free_choices(&s->params[i]);
    s->n = 0;
}

static ml_status parse_range(const cJSON *arr, const char *label, ml_search_param *p, char *err, size_t errlen) {
    const char *kind = kind_names[p->kind];
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) != 2 || !cJSON_IsNumber(arr->child) ||
        !cJSON_IsNumber(arr->child->next)) {
        ml__errf(err, errlen, "%s: key '%s': %s takes [lo, hi] (two numbers)", label, p->name, kind);
        return ML_ERR_ARG;
    }
    p->lo = arr->child->valuedouble;
    p->hi = arr->child->next->valuedouble;
    if (!isfinite(p->lo) || !isfinite(p->hi) || p->lo > p->hi) {
        ml__errf(err, errlen, "%s: key '%s': %s range [%g, %g] is empty (needs lo <= hi)", label, p->name, kind, p->lo,
                 p->hi);
        return ML_ERR_ARG;
    }
    if (p->kind == ML_PARAM_LOG_UNIFORM && !(p->lo > 0)) {
        ml__errf(err, errlen, "%s: key '%s': log_uniform needs 0 < lo <= hi, got [%g, %g]", label, p->name, p->lo, p->hi);
        return ML_ERR_ARG;
    }
    if (p->kind == ML_PARAM_INT && (p->lo != floor(p->lo) || p->hi != floor(p->hi) || fabs(p->lo) > 1e9 ||
                                    fabs(p->hi) > 1e9)) {
        ml__errf(err, errlen, "%s: key '%s': int range needs integer bounds from -1e9 to 1e9, got [%.17g, %.17g]", label,
                 p->name, p->lo, p->hi);
        return ML_ERR_ARG;
    }
    return ML_OK;
}

static ml_status parse_choices(const cJSON *arr, const char *label, ml_search_param *p, char *err, size_t errlen) {
    int n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : -1;
    if (n < 1) {
        ml__errf(err, errlen, "%s: key '%s': choice takes a non-empty list of values", label, p->name);
        return ML_ERR_ARG;
    }
    p->choices = ml_calloc((size_t)n, sizeof *p->choices);
    if (!p->choices) {
        ml__errf(err, errlen, "%s: out of memory", label);
        return ML_ERR_NOMEM;
    }
    for (const cJSON *c = arr->child; c; c = c->next) {
        ml_choice *ch = &p->choices[p->n_choices++];
        if (cJSON_IsNumber(c) && isfinite(c->valuedouble)) {
            ch->type = ML_CHOICE_NUMBER;
            ch->number = c->valuedouble;
        } else if (cJSON_IsBool(c)) {
            ch->type = ML_CHOICE_BOOL;
            ch->number = cJSON_IsTrue(c);
        } else if (cJSON_IsString(c)) {
            ch->type = ML_CHOICE_STRING;
            size_t len = strlen(c->valuestring) + 1;
            ch->string = ml_malloc(len);
            if (!ch->string) {
                ml__errf(err, errlen, "%s: out of memory", label);
                return ML_ERR_NOMEM;
            }
            memcpy(ch->string, c->valuestring, len);
        } else {
            ml__errf(err, errlen, "%s: key '%s': choice values must be strings, numbers or booleans", label, p->name);
            return ML_ERR_ARG;
        }
    }
    return ML_OK;
}

static ml_status parse_param(const cJSON *j, const char *label, ml_search_param *p, char *err, size_t errlen) {
    if (strlen(j->string) >= sizeof p->name) {
        ml__errf(err, errlen, "%s: key '%.40s...': name too long", label, j->string);
        return ML_ERR_ARG;
    }
    snprintf(p->name, sizeof p->name, "%s", j->string);
    if (!cJSON_IsObject(j) || cJSON_GetArraySize(j) != 1) {
        ml__errf(err, errlen, "%s: key '%s': expected one of {\"uniform\": [lo, hi]}, {\"log_uniform\": [lo, hi]}, "
                              "{\"int\": [lo, hi]}, {\"choice\": [...]}", label, p->name);
        return ML_ERR_ARG;
    }
    const cJSON *spec = j->child;
    for (int k = 0; k < 4; k++)
        if (!strcmp(spec->string, kind_names[k])) {
            p->kind = (ml_param_kind)k;
            return k == ML_PARAM_CHOICE ? parse_choices(spec, label, p, err, errlen)
                                        : parse_range(spec, label, p, err, errlen);
        }
    ml__errf(err, errlen, "%s: key '%s': unknown kind '%s' (expected uniform, log_uniform, int or choice)", label,
             p->name, spec->string);
    return ML_ERR_ARG;
}

ml_status ml_search_space_parse(const cJSON *space, const char *label, ml_search_space *out, char *err,
                                size_t errlen) {
    memset(out, 0, sizeof *out);
    if (!cJSON_IsObject(space) || !space->child) {
        ml__errf(err, errlen, "%s: the space must be a non-empty object {\"option\": {\"uniform\": [lo, hi]}, ...}", label);
        return ML_ERR_ARG;
    }
    for (const cJSON *j = space->child; j; j = j->next) {
        for (int i = 0; i < out->n; i++)
            if (!strcmp(out->params[i].name, j->string)) {
                ml__errf(err, errlen, "%s: key '%s' appears twice", label, j->string);
                ml_search_space_free(out);
                return ML_ERR_ARG;
            }
        if (out->n == ML_SEARCH_MAX_PARAMS) {
            ml__errf(err, errlen, "%s: more than %d parameters", label, ML_SEARCH_MAX_PARAMS);
            ml_search_space_free(out);
            return ML_ERR_ARG;
        }
        ml_search_param *p = &out->params[out->n++];
        ml_status st = parse_param(j, label, p, err, errlen);
        if (st) {
            ml_search_space_free(out);
            return st;
        }
    }
    return ML_OK;
}

/* ---- sampling and variation --------------------------------------------------- */

/* 4 significant digits, kept inside the range. */
static double round_sig(double x, double lo, double hi) {
    if (x != 0 && isfinite(x)) {
        double scale = pow(10.0, 3 - floor(log10(fabs(x))));
        x = round(x * scale) / scale;
    }
    return x < lo ? lo : x > hi ? hi : x;
}

static double sample_param(const ml_search_param *p, ml_rng *rng) {
    double u = ml_rng_uniform(rng);
    switch (p->kind) {
    case ML_PARAM_UNIFORM: return round_sig(p->lo + u * (p->hi - p->lo), p->lo, p->hi);
    case ML_PARAM_LOG_UNIFORM: return round_sig(exp(log(p->lo) + u * (log(p->hi) - log(p->lo))), p->lo, p->hi);
    case ML_PARAM_INT: return p->lo + (double)ml_rng_below(rng, (uint32_t)(p->hi - p->lo + 1));
    case ML_PARAM_CHOICE: return (double)ml_rng_below(rng, (uint32_t)p->n_choices);
    }
    return 0;
}

void ml_search_sample(const ml_search_space *s, ml_rng *rng, double *v) {
    for (int i = 0; i < s->n; i++) v[i] = sample_param(&s->params[i], rng);
}

static double mutate_param(const ml_search_param *p, ml_rng *rng, double x, double sigma) {
    switch (p->kind) {
    case ML_PARAM_UNIFORM: return round_sig(x + sigma * (p->hi - p->lo) * ml_rng_normal(rng), p->lo, p->hi);
    case ML_PARAM_LOG_UNIFORM: {
        double lx = log(x) + sigma * (log(p->hi) - log(p->lo)) * ml_rng_normal(rng);
        return round_sig(exp(lx), p->lo, p->hi);
    }
    case ML_PARAM_INT: {
        /* At least a step of one now and then, or narrow ranges never move. */
        double width = p->hi - p->lo, step = sigma * (width > 1 ? width : 1);
        double y = round(x + step * ml_rng_normal(rng));
        if (y == x && width >= 1) y = x + (ml_rng_below(rng, 2) ? 1 : -1);
        return y < p->lo ? p->lo : y > p->hi ? p->hi : y;
    }
    case ML_PARAM_CHOICE:
        if (p->n_choices < 2) return x;
        {
            /* One of the other options, uniformly. */
            int other = (int)ml_rng_below(rng, (uint32_t)(p->n_choices - 1));
            return other >= (int)x ? other + 1 : other;
        }
    }
    return x;
}

void ml_search_mutate(const ml_search_space *s, ml_rng *rng, const double *parent, double *child, double rate,
                      double sigma) {
    for (int i = 0; i < s->n; i++) {
        /* Draw the coin for every parameter, so the stream does not depend on the outcome. */
        double coin = ml_rng_uniform(rng);
        child[i] = coin < rate ? mutate_param(&s->params[i], rng, parent[i], sigma) : parent[i];
    }
}

void ml_search_crossover(const ml_search_space *s, ml_rng *rng, const double *a, const double *b, double *child) {
    for (int i = 0; i < s->n; i++) child[i] = ml_rng_below(rng, 2) ? b[i] : a[i];
}

/* a better than b (NaN worst). */
static int better(double a, double b, int higher_better) {
    if (isnan(a)) return 0;
    if (isnan(b)) return 1;
    return higher_better ? a > b : a < b;
}

int ml_search_tournament(ml_rng *rng, const double *scores, int n, int k, int higher_better) {
    int best = (int)ml_rng_below(rng, (uint32_t)n);
    for (int i = 1; i < k; i++) {
        int c = (int)ml_rng_below(rng, (uint32_t)n);
        if (better(scores[c], scores[best], higher_better) || (scores[c] == scores[best] && c < best)) best = c;
    }
    return best;
}

void ml_search_rank(const double *scores, int n, int higher_better, int *order) {
    /* Insertion sort: a search has tens to hundreds of trials. */
    for (int i = 0; i < n; i++) {
        int j = i;
        while (j > 0 && better(scores[i], scores[order[j - 1]], higher_better)) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
}

int ml_search_rungs(int min_iters, int max_iters, int eta, int *iters, int max_rungs) {
    if (min_iters < 1 || max_iters < min_iters || eta < 2 || max_rungs < 1) return -1;
    /* Down from the full budget, so every rung is eta times the one before
     * (up to rounding) and no near-duplicate rung sits next to max_iters. */
    int n = 1;
    long long r = max_iters / eta;
    while (r >= min_iters && n < max_rungs) {
        n++;
        r /= eta;
    }
    r = max_iters;
    for (int i = n - 1; i >= 0; i--, r /= eta) iters[i] = (int)r;
    return n;
}

int ml_search_promoted(int n, int eta) {
    int k = eta > 0 ? n / eta : n;
    return k < 1 ? 1 : k;
}

/* ---- output ------------------------------------------------------------------- */

ml_status ml_search_to_json(const ml_search_space *s, const double *v, cJSON *obj) {
    for (int i = 0; i < s->n; i++) {
        const ml_search_param *p = &s->params[i];
        cJSON *item;
        if (p->kind == ML_PARAM_CHOICE) {
            const ml_choice *c = &p->choices[(int)v[i]];
            item = c->type == ML_CHOICE_STRING ? cJSON_CreateString(c->string)
                   : c->type == ML_CHOICE_BOOL ? cJSON_CreateBool(c->number != 0)
                                               : cJSON_CreateNumber(c->number);
        } else {
            item = cJSON_CreateNumber(v[i]);
        }
        if (!item) return ML_ERR_NOMEM;
        if (cJSON_GetObjectItemCaseSensitive(obj, p->name)) {
            if (!cJSON_ReplaceItemInObjectCaseSensitive(obj, p->name, item)) {
                cJSON_Delete(item);
                return ML_ERR_NOMEM;
            }
        } else if (!cJSON_AddItemToObject(obj, p->name, item)) {
            cJSON_Delete(item);
            return ML_ERR_NOMEM;
        }
    }
    return ML_OK;
}

void ml_search_format(const ml_search_param *p, double v, char *buf, size_t len) {
    if (p->kind == ML_PARAM_CHOICE) {
        const ml_choice *c = &p->choices[(int)v];
        if (c->type == ML_CHOICE_STRING) snprintf(buf, len, "%s", c->string);
        else if (c->type == ML_CHOICE_BOOL) snprintf(buf, len, "%s", c->number ? "true" : "false");
        else snprintf(buf, len, "%.6g", c->number);
    } else if (p->kind == ML_PARAM_INT) {
        snprintf(buf, len, "%.0f", v);
    } else {
        snprintf(buf, len, "%.4g", v);
    }
}
