/* metrics.c: confusion matrix, per-class and macro metrics, CI over episodes.
 *
 * Counts are int64 and every metric is computed from them on demand, so
 * merging matrices from threads or episodes is exact. The zero-division and
 * macro-average conventions are sklearn's; see metalearn/eval.h. */
#include "metalearn/eval.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

/* ---- accumulation --------------------------------------------------------- */

ml_status ml_confusion_init(ml_confusion *c, int n_classes) {
    if (!c) return ML_ERR_ARG;
    memset(c, 0, sizeof *c);
    if (n_classes < 1) return ML_ERR_ARG;
    c->m = ml_calloc((size_t)n_classes * (size_t)n_classes, sizeof *c->m);
    if (!c->m) return ML_ERR_NOMEM;
    c->n_classes = n_classes;
    return ML_OK;
}

void ml_confusion_free(ml_confusion *c) {
    if (!c) return;
    ml_free(c->m);
    memset(c, 0, sizeof *c);
}

void ml_confusion_reset(ml_confusion *c) {
    if (!c || !c->m) return;
    memset(c->m, 0, (size_t)c->n_classes * (size_t)c->n_classes * sizeof *c->m);
    c->total = 0;
}

ml_status ml_confusion_add(ml_confusion *c, int truth, int pred) {
    if (!c || !c->m || truth < 0 || pred < 0 || truth >= c->n_classes || pred >= c->n_classes)
        return ML_ERR_ARG;
    c->m[(size_t)truth * c->n_classes + pred]++;
    c->total++;
    return ML_OK;
}

ml_status ml_confusion_add_batch(ml_confusion *c, const int32_t *truth, const int32_t *pred,
                                 int64_t n) {
    if (!c || !c->m || n < 0 || (n > 0 && (!truth || !pred))) return ML_ERR_ARG;
    for (int64_t i = 0; i < n; i++)
        if (truth[i] < 0 || pred[i] < 0 || truth[i] >= c->n_classes || pred[i] >= c->n_classes)
            return ML_ERR_ARG;
    for (int64_t i = 0; i < n; i++) c->m[(size_t)truth[i] * c->n_classes + pred[i]]++;
    c->total += n;
    return ML_OK;
}

ml_status ml_confusion_merge(ml_confusion *dst, const ml_confusion *src) {
    if (!dst || !src || !dst->m || !src->m || dst->n_classes != src->n_classes) return ML_ERR_ARG;
    size_t nn = (size_t)dst->n_classes * (size_t)dst->n_classes;
    for (size_t i = 0; i < nn; i++) dst->m[i] += src->m[i];
    dst->total += src->total;
    return ML_OK;
}

/* ---- metrics -------------------------------------------------------------- */

static int64_t col_sum(const ml_confusion *c, int k) { /* predicted as k */
    int64_t s = 0;
    for (int t = 0; t < c->n_classes; t++) s += c->m[(size_t)t * c->n_classes + k];
    return s;
}

static int64_t row_sum(const ml_confusion *c, int k) { /* truly k */
    int64_t s = 0;
    for (int p = 0; p < c->n_classes; p++) s += c->m[(size_t)k * c->n_classes + p];
    return s;
}

static int valid_class(const ml_confusion *c, int k) {
    return c && c->m && k >= 0 && k < c->n_classes;
}

double ml_confusion_accuracy(const ml_confusion *c) {
    if (!c || !c->m || c->total == 0) return 0.0;
    int64_t tr = 0;
    for (int k = 0; k < c->n_classes; k++) tr += c->m[(size_t)k * c->n_classes + k];
    return (double)tr / (double)c->total;
}

double ml_confusion_precision(const ml_confusion *c, int k) {
    if (!valid_class(c, k)) return 0.0;
    int64_t pred = col_sum(c, k);
    return pred ? (double)c->m[(size_t)k * c->n_classes + k] / (double)pred : 0.0;
}

double ml_confusion_recall(const ml_confusion *c, int k) {
    if (!valid_class(c, k)) return 0.0;
    int64_t sup = row_sum(c, k);
    return sup ? (double)c->m[(size_t)k * c->n_classes + k] / (double)sup : 0.0;
}

double ml_confusion_f1(const ml_confusion *c, int k) {
    double p = ml_confusion_precision(c, k), r = ml_confusion_recall(c, k);
    return p + r > 0.0 ? 2.0 * p * r / (p + r) : 0.0;
}

int64_t ml_confusion_support(const ml_confusion *c, int k) {
    return valid_class(c, k) ? row_sum(c, k) : 0;
}

typedef double (*per_class_fn)(const ml_confusion *, int);

/* Unweighted mean over classes seen in truth or predictions (sklearn's
 * labels=None): an N-way episode's unused label slots must not drag the
 * average towards zero. */
static double macro(const ml_confusion *c, per_class_fn fn) {
    if (!c || !c->m) return 0.0;
    double s = 0.0;
    int used = 0;
    for (int k = 0; k < c->n_classes; k++) {
        if (row_sum(c, k) == 0 && col_sum(c, k) == 0) continue;
        s += fn(c, k);
        used++;
    }
    return used ? s / used : 0.0;
}

double ml_confusion_macro_precision(const ml_confusion *c) { return macro(c, ml_confusion_precision); }
double ml_confusion_macro_recall(const ml_confusion *c) { return macro(c, ml_confusion_recall); }
double ml_confusion_macro_f1(const ml_confusion *c) { return macro(c, ml_confusion_f1); }

/* ---- output --------------------------------------------------------------- */

void ml_confusion_print(const ml_confusion *c, FILE *f, const char *const *names) {
    if (!c || !c->m || !f) return;
    int wname = 9; /* "macro avg" */
    for (int k = 0; names && k < c->n_classes; k++) {
        int l = names[k] ? (int)strlen(names[k]) : 0;
        if (l > wname) wname = l;
    }
    fprintf(f, "%-*s %9s %9s %9s %9s\n", wname, "class", "precision", "recall", "f1", "support");
    for (int k = 0; k < c->n_classes; k++) {
        char num[16];
        const char *name = names && names[k] ? names[k] : (snprintf(num, sizeof num, "%d", k), num);
        fprintf(f, "%-*s %9.4f %9.4f %9.4f %9lld\n", wname, name, ml_confusion_precision(c, k),
                ml_confusion_recall(c, k), ml_confusion_f1(c, k),
                (long long)ml_confusion_support(c, k));
    }
    fprintf(f, "%-*s %9s %9s %9.4f %9lld\n", wname, "accuracy", "", "", ml_confusion_accuracy(c),
            (long long)c->total);
    fprintf(f, "%-*s %9.4f %9.4f %9.4f %9lld\n", wname, "macro avg", ml_confusion_macro_precision(c),
            ml_confusion_macro_recall(c), ml_confusion_macro_f1(c), (long long)c->total);
}

/* snprintf that keeps counting past the end of the buffer. */
typedef struct {
    char *buf;
    size_t cap, len;
} jbuf;

static void jput(jbuf *j, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    size_t room = j->len < j->cap ? j->cap - j->len : 0;
    int k = vsnprintf(room ? j->buf + j->len : NULL, room, fmt, ap);
    va_end(ap);
    if (k > 0) j->len += (size_t)k;
}

static void jarray(jbuf *j, const char *key, const ml_confusion *c, per_class_fn fn) {
    jput(j, ",\"%s\":[", key);
    for (int k = 0; k < c->n_classes; k++) jput(j, "%s%.9g", k ? "," : "", fn(c, k));
    jput(j, "]");
}

size_t ml_confusion_to_json(const ml_confusion *c, char *buf, size_t cap) {
    jbuf j = {buf, buf ? cap : 0, 0};
    if (j.cap) buf[0] = '\0';
    if (!c || !c->m) {
        jput(&j, "null");
        return j.len;
    }
    jput(&j, "{\"n\":%lld,\"accuracy\":%.9g,\"macro_precision\":%.9g,\"macro_recall\":%.9g,"
             "\"macro_f1\":%.9g",
         (long long)c->total, ml_confusion_accuracy(c), ml_confusion_macro_precision(c),
         ml_confusion_macro_recall(c), ml_confusion_macro_f1(c));
    jarray(&j, "precision", c, ml_confusion_precision);
    jarray(&j, "recall", c, ml_confusion_recall);
    jarray(&j, "f1", c, ml_confusion_f1);
    jput(&j, ",\"support\":[");
    for (int k = 0; k < c->n_classes; k++)
        jput(&j, "%s%lld", k ? "," : "", (long long)ml_confusion_support(c, k));
    jput(&j, "],\"confusion\":[");
    for (int t = 0; t < c->n_classes; t++) {
        jput(&j, "%s[", t ? "," : "");
        for (int p = 0; p < c->n_classes; p++)
            jput(&j, "%s%lld", p ? "," : "", (long long)c->m[(size_t)t * c->n_classes + p]);
        jput(&j, "]");
    }
    jput(&j, "]}");
    return j.len;
}

/* ---- confidence intervals ------------------------------------------------- */

/* t_{0.975} for 1..30 degrees of freedom; beyond, z + (z^3 + z) / (4 df)
 * (Cornish-Fisher), within 0.001 of the exact quantile. */
static double t975(int64_t df) {
    static const double t[30] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                                 2.201,  2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                                 2.080,  2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};
    return df <= 30 ? t[df - 1] : 1.959964 + (1.959964 * 1.959964 * 1.959964 + 1.959964) / (4.0 * (double)df);
}

ml_status ml_mean_ci95_t(const double *v, int64_t n, double *mean, double *half) {
    ml_status st = ml_mean_ci95(v, n, mean, half);
    if (n >= 2 && half) *half *= t975(n - 1) / 1.96;
    return st;
}

ml_status ml_mean_ci95(const double *v, int64_t n, double *mean, double *half) {
    if (mean) *mean = 0.0;
    if (half) *half = 0.0;
    if (!v || !mean || !half || n < 1) return ML_ERR_ARG;
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += v[i];
    double m = s / (double)n;
    *mean = m;
    if (n >= 2) {
        /* Two-pass: accuracies cluster near their mean, where the one-pass
         * formula cancels catastrophically. */
        double ss = 0.0;
        for (int64_t i = 0; i < n; i++) ss += (v[i] - m) * (v[i] - m);
        *half = 1.96 * sqrt(ss / (double)(n - 1)) / sqrt((double)n);
    }
    return isfinite(*mean) && isfinite(*half) ? ML_OK : ML_ERR_NUMERIC;
}
