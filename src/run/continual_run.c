/* continual_run.c: a run through the continual-learning protocol
 * (metalearn/continual.h): the representation of the run's learned
 * parameters (every layer but the last; a headless embedding as it is) is
 * computed once for every image of the run's validation and test classes,
 * then ml_continual_evaluate learns the classes one after another with a new
 * head. Batch norm uses the statistics of fixed chunks of images taken in
 * class order (the same chunks whatever the class order or thread count). */
#include <stdio.h>
#include <string.h>

#include "metalearn/continual.h"
#include "run/meta_run.h"

enum { CHUNK = 100 }; /* images per forward pass */

typedef struct part_features {
    ml_continual_data data;
    float *feat;
    int64_t *class_start;
} part_features;

static void part_free(part_features *p) {
    ml_free(p->feat);
    ml_free(p->class_start);
    memset(p, 0, sizeof *p);
}

/* Features of every image of the classes of list (rotation as listed). */
static int part_compute(meta_run *r, const ml_class_list *list, ml_ctx *ctx, part_features *p, char *err,
                        size_t errlen) {
    memset(p, 0, sizeof *p);
    const ml_image_set *s = &r->images;
    ml_model *model = &r->model;
    int64_t per = (int64_t)s->size * s->size, total = 0;
    p->class_start = ml_calloc((size_t)list->n + 1, sizeof(int64_t));
    if (!p->class_start) goto nomem;
    for (int k = 0; k < list->n; k++) {
        int c = list->items[k].cls;
        p->class_start[k] = total;
        total += s->class_start[c + 1] - s->class_start[c];
    }
    p->class_start[list->n] = total;
    p->data.n_classes = list->n;
    p->data.class_start = p->class_start;
    if (!list->n) return 0; /* ml_continual_check says which part is empty */
    float *x = ml_malloc((size_t)CHUNK * per * sizeof(float));
    if (!x) goto nomem;
    int64_t done = 0, k = 0, j = 0; /* class k of the list, its image j */
    while (done < total) {
        int n = total - done < CHUNK ? (int)(total - done) : CHUNK;
        for (int i = 0; i < n; i++) {
            while (s->class_start[list->items[k].cls] + j >= s->class_start[list->items[k].cls + 1]) k++, j = 0;
            ml_image_set_copy(s, s->class_start[list->items[k].cls] + j, list->items[k].rot, NULL, NULL, x + i * per);
            j++;
        }
        ml_ctx_reset(ctx);
        ml_ctx_set_recording(ctx, 0);
        ml_tensor *params[ML_MAX_PARAMS];
        ml_model_wrap(ctx, model, r->meta.meta, params);
        ml_tensor *f = ml_model_features(ctx, model, params, ml_tensor_wrap(ctx, x, 2, ML_SHAPE(n, per)), 1, 0);
        ml_ctx_set_recording(ctx, 1);
        if (!f) {
            snprintf(err, errlen, "continual: representation: %s", ml_ctx_error(ctx));
            ml_free(x);
            return ML__RUN_FAIL;
        }
        int64_t D = f->numel / n;
        if (!p->feat) {
            p->data.dim = D;
            p->feat = ml_malloc((size_t)total * D * sizeof(float));
            if (!p->feat) {
                ml_free(x);
                goto nomem;
            }
        }
        memcpy(p->feat + done * D, f->data, (size_t)n * D * sizeof(float));
        done += n;
    }
    ml_free(x);
    p->data.feat = p->feat;
    return 0;
nomem:
    snprintf(err, errlen, "continual: out of memory");
    return ML__RUN_FAIL;
}

int meta_run_continual(meta_run *r, const ml_continual_options *o, ml_continual_result *res, char *err,
                       size_t errlen) {
    if (!r->fewshot) {
        snprintf(err, errlen, "continual: --continual needs a few-shot image run (the incremental sine benchmark is "
                              "not implemented yet)");
        return ML__RUN_USAGE;
    }
    if (r->all_classes) {
        snprintf(err, errlen, "continual: the protocol uses the run's own validation and test classes "
                              "(no --dataset / --eval-classes)");
        return ML__RUN_USAGE;
    }
    ml_ctx *ctx = ml_ctx_create((size_t)1 << 20);
    if (!ctx) {
        snprintf(err, errlen, "continual: out of memory");
        return ML__RUN_FAIL;
    }
    part_features val, test;
    memset(&val, 0, sizeof val);
    int st = part_compute(r, &r->split.part[ML_SPLIT_TEST], ctx, &test, err, errlen);
    if (!st) st = part_compute(r, &r->split.part[ML_SPLIT_VAL], ctx, &val, err, errlen);
    ml_ctx_destroy(ctx);
    if (!st) {
        ml_status s = ml_continual_evaluate(&val.data, &test.data, o, res, err, errlen);
        st = s == ML_OK ? 0 : s == ML_ERR_ARG ? ML__RUN_USAGE : ML__RUN_FAIL;
    }
    part_free(&val);
    part_free(&test);
    return st;
}
