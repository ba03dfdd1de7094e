/* task_split.c: the task-level split of a CSV task family (see
 * metalearn/tasks.h): which tasks train, validate and test, made once from
 * the run's seed, saved as RUN/split.json and read back by name, so resume,
 * eval and search meet the same tasks. Points of one task never cross parts.
 * Not here: drawing tasks (tasks.c) and the class split of image sets
 * (splits.c, whose rounding rule this shares). */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "images_internal.h"
#include "metalearn/io.h"
#include "metalearn/tasks.h"

static const char *const part_key[ML_TASK_PART_COUNT] = {"train", "val", "test"};

void ml_task_split_free(ml_task_split *sp) {
    if (!sp) return;
    for (int p = 0; p < ML_TASK_PART_COUNT; p++) ml_free(sp->idx[p]);
    memset(sp, 0, sizeof *sp);
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static ml_status alloc_parts(ml_task_split *sp, const int n[ML_TASK_PART_COUNT]) {
    for (int p = 0; p < ML_TASK_PART_COUNT; p++) {
        sp->n[p] = n[p];
        sp->idx[p] = ml_malloc(sizeof(int32_t) * (size_t)(n[p] > 0 ? n[p] : 1));
        if (!sp->idx[p]) {
            ml_task_split_free(sp);
            return ML_ERR_NOMEM;
        }
    }
    return ML_OK;
}

ml_status ml_task_split_make(const ml_task_family *f, const double fractions[ML_TASK_PART_COUNT], ml_rng *rng,
                             ml_task_split *out, char *err, size_t errlen) {
    if (!out) return ML_ERR_ARG;
    memset(out, 0, sizeof *out);
    if (!f || !fractions || !rng || f->kind != ML_TASKS_CSV || f->n_tasks < 1) {
        ml__errf(err, errlen, "task split: needs a loaded CSV task family, fractions and an rng");
        return ML_ERR_ARG;
    }
    ml_split_spec spec = {.unit = ML_SPLIT_BY_CHARACTER};
    for (int p = 0; p < ML_TASK_PART_COUNT; p++) spec.fractions[p] = fractions[p];
    int got[3];
    char why[512];
    if (ml__split_counts(&spec, f->n_tasks, "task", got, why, sizeof why) != ML_OK) {
        ml__errf(err, errlen, "%s: %d tasks: %s", f->path, f->n_tasks, why);
        return ML_ERR_ARG;
    }
    int32_t *order = ml_malloc(sizeof(int32_t) * (size_t)f->n_tasks);
    if (!order) return ML_ERR_NOMEM;
    for (int i = 0; i < f->n_tasks; i++) order[i] = i;
    ml_rng_shuffle_i32(rng, order, f->n_tasks);
    ml_status st = alloc_parts(out, got);
    int pos = 0;
    for (int p = 0; p < ML_TASK_PART_COUNT && st == ML_OK; p++) {
        memcpy(out->idx[p], order + pos, sizeof(int32_t) * (size_t)got[p]);
        qsort(out->idx[p], (size_t)got[p], sizeof(int32_t), cmp_i32);
        pos += got[p];
    }
    ml_free(order);
    return st;
}

ml_status ml_task_split_write_json(const ml_task_split *sp, const ml_task_family *f, const char *path, char *err,
                                   size_t errlen) {
    if (!sp || !f || !path) return ML_ERR_ARG;
    cJSON *root = cJSON_CreateObject();
    int ok = root != NULL;
    ok = ok && cJSON_AddStringToObject(root, "format", "metalearn-task-split");
    ok = ok && cJSON_AddNumberToObject(root, "version", 1);
    ok = ok && cJSON_AddStringToObject(root, "file", f->path ? f->path : "");
    for (int p = 0; p < ML_TASK_PART_COUNT && ok; p++) {
        cJSON *arr = cJSON_AddArrayToObject(root, part_key[p]);
        ok = arr != NULL;
        for (int i = 0; i < sp->n[p] && ok; i++) {
            cJSON *s = cJSON_CreateString(ml_task_family_task_name(f, sp->idx[p][i]));
            ok = s && cJSON_AddItemToArray(arr, s);
        }
    }
    ml_status st = ML_ERR_NOMEM;
    if (ok) st = ml_json_write_atomic(path, root, err, errlen);
    else ml__errf(err, errlen, "%s: out of memory building the split JSON", path);
    cJSON_Delete(root);
    return st;
}

ml_status ml_task_split_read_json(const char *path, const ml_task_family *f, ml_task_split *out, char *err,
                                  size_t errlen) {
    if (!out) return ML_ERR_ARG;
    memset(out, 0, sizeof *out);
    if (!path || !f || f->kind != ML_TASKS_CSV) return ML_ERR_ARG;
    char *text;
    size_t len;
    ml_status st = ml_file_read_text(path, 64u << 20, &text, &len, err, errlen);
    if (st != ML_OK) return st;
    cJSON *root = cJSON_ParseWithLength(text, len);
    ml_free(text);
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    if (!cJSON_IsObject(root) || !cJSON_IsString(fmt) || strcmp(fmt->valuestring, "metalearn-task-split")) {
        cJSON_Delete(root);
        ml__errf(err, errlen, "%s: not a task split (\"format\" is not \"metalearn-task-split\")", path);
        return ML_ERR_FORMAT;
    }
    int n[3];
    for (int p = 0; p < ML_TASK_PART_COUNT; p++) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, part_key[p]);
        if (!cJSON_IsArray(arr)) {
            cJSON_Delete(root);
            ml__errf(err, errlen, "%s: \"%s\" is missing or not an array", path, part_key[p]);
            return ML_ERR_FORMAT;
        }
        n[p] = cJSON_GetArraySize(arr);
    }
    int8_t *seen = ml_calloc((size_t)f->n_tasks, 1);
    st = seen ? alloc_parts(out, n) : ML_ERR_NOMEM;
    for (int p = 0; p < ML_TASK_PART_COUNT && st == ML_OK; p++) {
        const cJSON *el;
        int i = 0;
        cJSON_ArrayForEach(el, cJSON_GetObjectItemCaseSensitive(root, part_key[p])) {
            int found = -1; /* a linear scan: splits are read once per run */
            for (int t = 0; cJSON_IsString(el) && t < f->n_tasks && found < 0; t++)
                if (!strcmp(f->tasks[t].name, el->valuestring)) found = t;
            if (found < 0 || seen[found]) {
                ml__errf(err, errlen, "%s: \"%s\"[%d] \"%.80s\": %s %s", path, part_key[p], i,
                         cJSON_IsString(el) ? el->valuestring : "?",
                         !cJSON_IsString(el) ? "is not a string"
                         : found < 0         ? "is not a task of"
                                             : "is listed twice in the split of",
                         f->path);
                st = ML_ERR_FORMAT;
                break;
            }
            seen[found] = 1;
            out->idx[p][i++] = found;
        }
        if (st == ML_OK) qsort(out->idx[p], (size_t)n[p], sizeof(int32_t), cmp_i32);
    }
    ml_free(seen);
    cJSON_Delete(root);
    if (st != ML_OK) ml_task_split_free(out);
    return st;
}

ml_status ml_task_family_draw_from(ml_task_family *f, const int32_t *idx, int n, char *err, size_t errlen) {
    if (!f || n < 0 || (n > 0 && !idx)) return ML_ERR_ARG;
    int32_t *copy = NULL;
    if (n > 0) {
        copy = ml_malloc(sizeof(int32_t) * (size_t)n);
        if (!copy) return ML_ERR_NOMEM;
        for (int i = 0; i < n; i++) {
            if (idx[i] < 0 || idx[i] >= f->n_tasks) {
                ml_free(copy);
                ml__errf(err, errlen, "%s: task index %d out of range (%d tasks)", f->path, (int)idx[i], f->n_tasks);
                return ML_ERR_ARG;
            }
            copy[i] = idx[i];
        }
    }
    ml_free(f->draw_from);
    f->draw_from = copy;
    f->n_draw_from = n;
    return ML_OK;
}
