/* splits.c: class lists, rotation classes, and seeded train / val / test
 * splits of an image set by character or by whole alphabet, saved as JSON.
 *
 * Not here: drawing episodes (episodes.c). Parts are stored in ascending class
 * order so a split read back from JSON equals the one written. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "images_internal.h"
#include "metalearn/io.h"

static const char *const part_key[ML_SPLIT_COUNT] = {"train", "val", "test"};

void ml_class_list_free(ml_class_list *l) {
    if (!l) return;
    ml_free(l->items);
    memset(l, 0, sizeof *l);
}

static ml_status list_alloc(ml_class_list *l, int n) {
    memset(l, 0, sizeof *l);
    l->items = ml_malloc(sizeof *l->items * (size_t)(n > 0 ? n : 1));
    if (!l->items) return ML_ERR_NOMEM;
    l->n = n;
    return ML_OK;
}

ml_status ml_class_list_all(const ml_image_set *s, ml_class_list *out) {
    if (!out) return ML_ERR_ARG;
    memset(out, 0, sizeof *out);
    if (!s || s->n_classes <= 0) return ML_ERR_ARG;
    if (list_alloc(out, s->n_classes) != ML_OK) return ML_ERR_NOMEM;
    for (int k = 0; k < s->n_classes; k++) out->items[k] = (ml_class_ref){k, 0};
    return ML_OK;
}

ml_status ml_class_list_expand_rotations(const ml_class_list *in, ml_class_list *out) {
    if (!out) return ML_ERR_ARG;
    memset(out, 0, sizeof *out);
    if (!in || in->n < 0 || in->n > INT32_MAX / 4) return ML_ERR_ARG;
    for (int i = 0; i < in->n; i++)
        if (in->items[i].rot != 0) return ML_ERR_ARG;
    if (list_alloc(out, 4 * in->n) != ML_OK) return ML_ERR_NOMEM;
    for (int i = 0; i < in->n; i++)
        for (int r = 0; r < 4; r++) out->items[4 * i + r] = (ml_class_ref){in->items[i].cls, r};
    return ML_OK;
}

void ml_class_split_free(ml_class_split *sp) {
    if (!sp) return;
    for (int p = 0; p < ML_SPLIT_COUNT; p++) ml_class_list_free(&sp->part[p]);
    memset(sp, 0, sizeof *sp);
}

static int cmp_ref(const void *a, const void *b) {
    const ml_class_ref *x = a, *y = b;
    if (x->cls != y->cls) return x->cls < y->cls ? -1 : 1;
    return (x->rot > y->rot) - (x->rot < y->rot);
}

/* Units per part from counts or fractions; see ml_split_spec. */
ml_status ml__split_counts(const ml_split_spec *spec, int units, const char *unit_name, int got[3], char *err,
                           size_t errlen) {
    int use_counts = spec->counts[0] || spec->counts[1] || spec->counts[2];
    if (use_counts) {
        int rest = -1, sum = 0;
        for (int p = 0; p < ML_SPLIT_COUNT; p++) {
            int c = spec->counts[p];
            if (c == -1) {
                if (rest >= 0) {
                    ml__errf(err, errlen, "split: only one part may take the rest (-1)");
                    return ML_ERR_ARG;
                }
                rest = p;
                got[p] = 0;
            } else if (c < 0) {
                ml__errf(err, errlen, "split: %s count %d is negative", part_key[p], c);
                return ML_ERR_ARG;
            } else {
                got[p] = c;
                sum += c;
            }
        }
        if (sum > units || (rest >= 0 && sum == units)) {
            ml__errf(err, errlen, "split: asks for %d %ss%s but the set has %d", sum, unit_name,
                        rest >= 0 ? " plus a non-empty rest" : "", units);
            return ML_ERR_ARG;
        }
        if (rest >= 0) got[rest] = units - sum;
        return ML_OK;
    }
    double fsum = 0.0;
    for (int p = 0; p < ML_SPLIT_COUNT; p++) {
        double f = spec->fractions[p];
        if (!(f >= 0.0 && f <= 1.0)) {
            ml__errf(err, errlen, "split: %s fraction %g is not in [0, 1]", part_key[p], f);
            return ML_ERR_ARG;
        }
        fsum += f;
    }
    if (fsum <= 0.0) {
        ml__errf(err, errlen, "split: no counts or fractions given");
        return ML_ERR_ARG;
    }
    if (fsum > 1.0 + 1e-9) {
        ml__errf(err, errlen, "split: fractions sum to %g (> 1)", fsum);
        return ML_ERR_ARG;
    }
    int sum = 0;
    for (int p = 0; p < ML_SPLIT_COUNT; p++) {
        got[p] = (int)floor(spec->fractions[p] * units + 0.5);
        sum += got[p];
    }
    if (fabs(fsum - 1.0) <= 1e-9) got[ML_SPLIT_TEST] = units - got[ML_SPLIT_TRAIN] - got[ML_SPLIT_VAL];
    else if (sum > units) got[ML_SPLIT_TEST] -= sum - units; /* rounding overshoot */
    for (int p = 0; p < ML_SPLIT_COUNT; p++) {
        if (got[p] < 0 || (spec->fractions[p] > 0.0 && got[p] == 0)) {
            ml__errf(err, errlen, "split: %s fraction %g of %d %ss gives no %s", part_key[p],
                        spec->fractions[p], units, unit_name, unit_name);
            return ML_ERR_ARG;
        }
    }
    return ML_OK;
}

ml_status ml_class_split_make(const ml_image_set *s, const ml_split_spec *spec, ml_rng *rng,
                              ml_class_split *out, char *err, size_t errlen) {
    if (!out) return ML_ERR_ARG;
    memset(out, 0, sizeof *out);
    if (!s || !spec || !rng || s->n_classes <= 0) {
        ml__errf(err, errlen, "split: needs a loaded image set, a spec and an rng");
        return ML_ERR_ARG;
    }
    int by_alpha = spec->unit == ML_SPLIT_BY_ALPHABET;
    if (spec->unit != ML_SPLIT_BY_ALPHABET && spec->unit != ML_SPLIT_BY_CHARACTER) {
        ml__errf(err, errlen, "split: unknown unit %d", (int)spec->unit);
        return ML_ERR_ARG;
    }
    int units = by_alpha ? s->n_alphabets : s->n_classes;
    const char *unit_name = by_alpha ? "alphabet" : "character";
    int got[3];
    ml_status st = ml__split_counts(spec, units, unit_name, got, err, errlen);
    if (st != ML_OK) return st;
    int32_t *order = ml_malloc(sizeof(int32_t) * (size_t)units);
    int32_t *part_of = ml_malloc(sizeof(int32_t) * (size_t)units);
    if (!order || !part_of) {
        ml_free(order);
        ml_free(part_of);
        return ML_ERR_NOMEM;
    }
    for (int i = 0; i < units; i++) order[i] = i;
    ml_rng_shuffle_i32(rng, order, units);
    for (int i = 0; i < units; i++) part_of[i] = -1; /* left out when counts sum below `units` */
    int pos = 0;
    for (int p = 0; p < ML_SPLIT_COUNT; p++)
        for (int c = 0; c < got[p]; c++) part_of[order[pos++]] = p;
    int sizes[3] = {0, 0, 0};
    for (int k = 0; k < s->n_classes; k++) {
        int p = part_of[by_alpha ? s->class_alphabet[k] : k];
        if (p >= 0) sizes[p]++;
    }
    out->unit = spec->unit;
    for (int p = 0; p < ML_SPLIT_COUNT && st == ML_OK; p++) st = list_alloc(&out->part[p], sizes[p]);
    if (st == ML_OK) {
        int fill[3] = {0, 0, 0};
        for (int k = 0; k < s->n_classes; k++) {
            int p = part_of[by_alpha ? s->class_alphabet[k] : k];
            if (p >= 0) out->part[p].items[fill[p]++] = (ml_class_ref){k, 0};
        }
    }
    ml_free(order);
    ml_free(part_of);
    if (st != ML_OK) ml_class_split_free(out);
    return st;
}

/* ---- JSON ----------------------------------------------------------------------- */

ml_status ml_class_split_write_json(const ml_class_split *sp, const ml_image_set *s,
                                    const char *path, char *err, size_t errlen) {
    if (!sp || !s || !path) return ML_ERR_ARG;
    cJSON *root = cJSON_CreateObject();
    int ok = root != NULL;
    ok = ok && cJSON_AddStringToObject(root, "format", "metalearn-class-split");
    ok = ok && cJSON_AddNumberToObject(root, "version", 1);
    ok = ok && cJSON_AddStringToObject(root, "unit", sp->unit == ML_SPLIT_BY_ALPHABET ? "alphabet" : "character");
    for (int p = 0; p < ML_SPLIT_COUNT && ok; p++) {
        cJSON *arr = cJSON_AddArrayToObject(root, part_key[p]);
        ok = arr != NULL;
        for (int i = 0; i < sp->part[p].n && ok; i++) {
            const ml_class_ref *r = &sp->part[p].items[i];
            if (r->cls < 0 || r->cls >= s->n_classes || r->rot != 0) {
                cJSON_Delete(root);
                ml__errf(err, errlen, "%s: split holds class %d rotation %d, not a plain class of this set",
                            path, (int)r->cls, (int)r->rot);
                return ML_ERR_ARG;
            }
            cJSON *str = cJSON_CreateString(s->class_names[r->cls]);
            ok = str && cJSON_AddItemToArray(arr, str);
        }
    }
    ml_status st = ML_ERR_NOMEM;
    if (ok) st = ml_json_write_atomic(path, root, err, errlen);
    else ml__errf(err, errlen, "%s: out of memory building the split JSON", path);
    cJSON_Delete(root);
    return st;
}

typedef struct name_idx {
    const char *name;
    int32_t cls;
} name_idx;

static int cmp_name_idx(const void *a, const void *b) {
    return strcmp(((const name_idx *)a)->name, ((const name_idx *)b)->name);
}

ml_status ml_class_split_read_json(const char *path, const ml_image_set *s, ml_class_split *out,
                                   char *err, size_t errlen) {
    if (!out) return ML_ERR_ARG;
    memset(out, 0, sizeof *out);
    if (!path || !s || s->n_classes <= 0) return ML_ERR_ARG;
    FILE *f = fopen(path, "rb");
    if (!f) {
        ml__errf(err, errlen, "%s: %s", path, strerror(errno));
        return ML_ERR_IO;
    }
    char *text = NULL;
    size_t len = 0, cap = 0;
    ml_status st = ML_OK;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            size_t nc = cap ? 2 * cap : 65536;
            char *t = ml_malloc(nc);
            if (!t) {
                st = ML_ERR_NOMEM;
                break;
            }
            if (len) memcpy(t, text, len);
            ml_free(text);
            text = t;
            cap = nc;
        }
        size_t k = fread(text + len, 1, cap - len - 1, f);
        len += k;
        if (k == 0) break;
    }
    int bad = ferror(f), why = errno;
    fclose(f);
    if (st != ML_OK || bad) {
        ml_free(text);
        ml__errf(err, errlen, "%s: %s%s", path, bad ? "read error: " : "out of memory", bad ? strerror(why) : "");
        return bad ? ML_ERR_IO : ML_ERR_NOMEM;
    }
    text[len] = 0;
    cJSON *root = cJSON_ParseWithLength(text, len);
    ml_free(text);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        ml__errf(err, errlen, "%s: not a JSON object", path);
        return ML_ERR_FORMAT;
    }
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    const cJSON *unit = cJSON_GetObjectItemCaseSensitive(root, "unit");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "metalearn-class-split") != 0) {
        cJSON_Delete(root);
        ml__errf(err, errlen, "%s: \"format\" is not \"metalearn-class-split\"", path);
        return ML_ERR_FORMAT;
    }
    out->unit = cJSON_IsString(unit) && strcmp(unit->valuestring, "alphabet") == 0 ? ML_SPLIT_BY_ALPHABET
                                                                                  : ML_SPLIT_BY_CHARACTER;
    /* Names are looked up in a sorted copy, so the set's order does not matter. */
    name_idx *idx = ml_malloc(sizeof *idx * (size_t)s->n_classes);
    int8_t *seen = ml_calloc((size_t)s->n_classes, 1);
    if (!idx || !seen) st = ML_ERR_NOMEM;
    for (int k = 0; st == ML_OK && k < s->n_classes; k++) idx[k] = (name_idx){s->class_names[k], k};
    if (st == ML_OK) qsort(idx, (size_t)s->n_classes, sizeof *idx, cmp_name_idx);
    for (int p = 0; p < ML_SPLIT_COUNT && st == ML_OK; p++) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, part_key[p]);
        if (!cJSON_IsArray(arr)) {
            ml__errf(err, errlen, "%s: \"%s\" is missing or not an array", path, part_key[p]);
            st = ML_ERR_FORMAT;
            break;
        }
        st = list_alloc(&out->part[p], cJSON_GetArraySize(arr));
        int i = 0;
        const cJSON *el;
        cJSON_ArrayForEach(el, arr) {
            if (st != ML_OK) break;
            if (!cJSON_IsString(el)) {
                ml__errf(err, errlen, "%s: \"%s\"[%d] is not a string", path, part_key[p], i);
                st = ML_ERR_FORMAT;
                break;
            }
            name_idx key = {el->valuestring, 0};
            const name_idx *hit = bsearch(&key, idx, (size_t)s->n_classes, sizeof *idx, cmp_name_idx);
            if (!hit) {
                ml__errf(err, errlen, "%s: \"%s\": class \"%s\" is not in the loaded set", path,
                            part_key[p], el->valuestring);
                st = ML_ERR_FORMAT;
            } else if (seen[hit->cls]) {
                ml__errf(err, errlen, "%s: class \"%s\" appears twice", path, el->valuestring);
                st = ML_ERR_FORMAT;
            } else {
                seen[hit->cls] = 1;
                out->part[p].items[i++] = (ml_class_ref){hit->cls, 0};
            }
        }
        if (st == ML_OK)
            qsort(out->part[p].items, (size_t)out->part[p].n, sizeof(ml_class_ref), cmp_ref);
    }
    ml_free(idx);
    ml_free(seen);
    cJSON_Delete(root);
    if (st != ML_OK) ml_class_split_free(out);
    return st;
}
