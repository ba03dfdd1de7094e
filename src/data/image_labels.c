/* image_labels.c: a labelled dataset (IDX: MNIST, Fashion-MNIST, ...) seen as
 * an image set for few-shot episodes: one class per label. Values are kept
 * as they are (byte / 255): Fashion-MNIST is a bright object on a dark
 * background, which already matches Omniglot's bright strokes on 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "images_internal.h"
#include "metalearn/data.h"

ml_status ml_image_set_from_dataset(const ml_dataset *d, const char *source, const ml_image_options *opt,
                                    ml_image_set *out, char *err, size_t errlen) {
    if (!out) return ML_ERR_ARG;
    memset(out, 0, sizeof *out);
    const char *src = source ? source : "dataset";
    if (!d || d->n < 1 || !d->x || !d->y || d->n_classes < 1) {
        ml__errf(err, errlen, "%s: no images", src);
        return ML_ERR_ARG;
    }
    if (d->c != 1) {
        ml__errf(err, errlen, "%s: %d channels; few-shot image sets are grayscale (1 channel)", src, d->c);
        return ML_ERR_ARG;
    }
    const int S = opt && opt->size > 0 ? opt->size : ML_IMAGE_DEFAULT_SIZE;
    if (S > 4096) {
        ml__errf(err, errlen, "image size %d is too large (at most 4096)", S);
        return ML_ERR_ARG;
    }
    const int K = d->n_classes;
    int64_t *count = ml_calloc((size_t)K + 1, sizeof(int64_t));
    if (!count) return ML_ERR_NOMEM;
    for (int64_t i = 0; i < d->n; i++) {
        if (d->y[i] < 0 || d->y[i] >= K) {
            ml__errf(err, errlen, "%s: image %lld has label %d outside [0, %d)", src, (long long)i, d->y[i], K);
            ml_free(count);
            return ML_ERR_FORMAT;
        }
        count[d->y[i]]++;
    }
    for (int k = 0; k < K; k++)
        if (!count[k]) { /* a class of no image would make episodes fail later, far from the cause */
            ml__errf(err, errlen, "%s: label %d has no image (labels must be 0 .. %d, each used)", src, k, K - 1);
            ml_free(count);
            return ML_ERR_FORMAT;
        }
    /* Strings: class names are the label numbers, image names "source#index". */
    size_t src_len = strlen(src), str_bytes = 1 + (size_t)K * 12 + (size_t)d->n * (src_len + 22);
    ml_image_set s = {0};
    s.n = d->n;
    s.size = S;
    s.n_classes = K;
    s.n_alphabets = 1;
    s.labelled = 1;
    s.x = ml_malloc(sizeof(float) * (size_t)d->n * (size_t)S * (size_t)S);
    s.y = ml_malloc(sizeof(int32_t) * (size_t)d->n);
    s.class_start = ml_malloc(sizeof(int64_t) * ((size_t)K + 1));
    s.class_alphabet = ml_calloc((size_t)K, sizeof(int32_t));
    s.class_names = ml_malloc(sizeof(char *) * (size_t)K);
    s.alphabet_names = ml_malloc(sizeof(char *));
    s.image_names = ml_malloc(sizeof(char *) * (size_t)d->n);
    s.strings = ml_malloc(str_bytes);
    ml__area_plan plan;
    memset(&plan, 0, sizeof plan);
    int resize = d->h != S || d->w != S;
    ml_status st = ML_OK;
    if (!s.x || !s.y || !s.class_start || !s.class_alphabet || !s.class_names || !s.alphabet_names ||
        !s.image_names || !s.strings || (resize && ml__area_plan_prepare(&plan, d->h, d->w, S, S) != ML_OK)) {
        st = ML_ERR_NOMEM;
        goto fail;
    }
    char *p = s.strings;
    *p = 0;
    s.alphabet_names[0] = p++;
    s.class_start[0] = 0;
    for (int k = 0; k < K; k++) {
        s.class_start[k + 1] = s.class_start[k] + count[k];
        s.class_names[k] = p;
        p += snprintf(p, 12, "%d", k) + 1;
    }
    /* Stable grouping by label: class k keeps its images in dataset order. */
    memcpy(count, s.class_start, sizeof(int64_t) * (size_t)K);
    const int64_t per_in = (int64_t)d->h * d->w, per_out = (int64_t)S * S;
    for (int64_t i = 0; i < d->n; i++) {
        int64_t at = count[d->y[i]]++;
        s.y[at] = d->y[i];
        if (resize) ml__area_apply(&plan, d->x + i * per_in, s.x + at * per_out);
        else memcpy(s.x + at * per_out, d->x + i * per_in, sizeof(float) * (size_t)per_out);
        s.image_names[at] = p;
        p += snprintf(p, src_len + 22, "%s#%lld", src, (long long)i) + 1;
    }
    ml__area_plan_free(&plan);
    ml_free(count);
    *out = s;
    return ML_OK;
fail:
    ml__area_plan_free(&plan);
    ml_free(count);
    ml_image_set_free(&s);
    ml__errf(err, errlen, "%s: out of memory for %lld images", src, (long long)d->n);
    return st;
}
