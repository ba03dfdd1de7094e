/* dataset.c: lifetime, statistics and normalisation of in-memory datasets.
 *
 * Format readers (idx.c, ...) fill an ml_dataset; this file only works on the
 * filled [n, c, h, w] buffer and does no I/O. */
#include "metalearn/data.h"

#include <math.h>
#include <string.h>

void ml_dataset_free(ml_dataset *d) {
    if (!d) return;
    ml_free(d->x);
    ml_free(d->y);
    memset(d, 0, sizeof *d);
}

ml_status ml_dataset_channel_stats(const ml_dataset *d, double *mean, double *std) {
    if (!d || !mean || !std || !d->x || d->n <= 0 || d->c <= 0 || d->h <= 0 || d->w <= 0)
        return ML_ERR_ARG;
    int64_t plane = (int64_t)d->h * d->w;
    double count = (double)d->n * (double)plane;
    /* Two passes in double: the one-pass E[x^2]-E[x]^2 formula loses digits
     * over 47 million pixels, and the data is in memory anyway. */
    for (int c = 0; c < d->c; c++) {
        double s = 0.0;
        for (int64_t i = 0; i < d->n; i++) {
            const float *p = d->x + (i * d->c + c) * plane;
            for (int64_t j = 0; j < plane; j++) s += p[j];
        }
        double m = s / count, ss = 0.0;
        for (int64_t i = 0; i < d->n; i++) {
            const float *p = d->x + (i * d->c + c) * plane;
            for (int64_t j = 0; j < plane; j++) ss += (p[j] - m) * (p[j] - m);
        }
        mean[c] = m;
        std[c] = sqrt(ss / count);
    }
    return ML_OK;
}

ml_status ml_dataset_normalize(ml_dataset *d, const double *mean, const double *std) {
    if (!d || !mean || !std || (d->n > 0 && !d->x)) return ML_ERR_ARG;
    for (int c = 0; c < d->c; c++)
        if (!(std[c] > 0.0) || !isfinite(std[c]) || !isfinite(mean[c])) return ML_ERR_ARG;
    int64_t plane = (int64_t)d->h * d->w;
    for (int64_t i = 0; i < d->n; i++)
        for (int c = 0; c < d->c; c++) {
            float m = (float)mean[c], inv = (float)(1.0 / std[c]);
            float *p = d->x + (i * d->c + c) * plane;
            for (int64_t j = 0; j < plane; j++) p[j] = (p[j] - m) * inv;
        }
    return ML_OK;
}

void ml_dataset_class_counts(const ml_dataset *d, int64_t *counts) {
    if (!d || !counts) return;
    for (int k = 0; k < d->n_classes; k++) counts[k] = 0;
    for (int64_t i = 0; i < d->n; i++)
        if (d->y[i] >= 0 && d->y[i] < d->n_classes) counts[d->y[i]]++;
}
