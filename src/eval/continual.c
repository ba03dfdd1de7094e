/* continual.c: the continual-learning protocol of OML (Javed & White 2019) on
 * frozen features, see metalearn/continual.h. One class order: a zero linear
 * head with one output per class of the sequence; the classes come one after
 * the other, each training image once, one SGD step per image (the protocol's
 * "online" learner); after the reported numbers of classes, the accuracy on
 * the held-out images of every class seen so far (argmax over all outputs).
 * The i.i.d. oracle learns the same images shuffled together for a few
 * epochs. Means and 95% intervals are over the random class orders. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "continual_internal.h"
#include "metalearn/eval.h"

void ml_linear_head_forward(const float *w, const float *b, int C, int64_t D, const float *f, float *out) {
    for (int c = 0; c < C; c++) {
        const float *row = w + (int64_t)c * D;
        float s = b[c];
        for (int64_t j = 0; j < D; j++) s += row[j] * f[j];
        out[c] = s;
    }
}

void ml_linear_head_step_ce(float *w, float *b, int C, int64_t D, const float *f, int label, float lr) {
    float stack[256], *p = C <= 256 ? stack : ml_malloc((size_t)C * sizeof(float));
    if (!p) return;
    ml_linear_head_forward(w, b, C, D, f, p);
    float mx = p[0];
    for (int c = 1; c < C; c++) mx = p[c] > mx ? p[c] : mx;
    double z = 0;
    for (int c = 0; c < C; c++) z += exp((double)(p[c] - mx));
    for (int c = 0; c < C; c++) {
        float g = (float)(exp((double)(p[c] - mx)) / z) - (c == label);
        float *row = w + (int64_t)c * D;
        for (int64_t j = 0; j < D; j++) row[j] -= lr * g * f[j];
        b[c] -= lr * g;
    }
    if (p != stack) ml_free(p);
}

void ml_linear_head_step_mse(float *w, float *b, int64_t D, const float *f, float y, float lr) {
    float out;
    ml_linear_head_forward(w, b, 1, D, f, &out);
    float g = 2.0f * (out - y);
    for (int64_t j = 0; j < D; j++) w[j] -= lr * g * f[j];
    b[0] -= lr * g;
}

void ml_continual_options_default(ml_continual_options *o) {
    memset(o, 0, sizeof *o);
    o->orders = 10;
    o->test_per_class = 5;
    o->forget_classes = 10;
    o->seed = 1;
}

static const float default_rates[] = {0.3f,    0.1f,    0.03f,    0.01f,    0.003f,    0.001f,
                                      0.0003f, 0.0001f, 0.00003f, 0.00001f, 0.000003f};

int ml_continual_default_rates(const float **rates) {
    *rates = default_rates;
    return (int)(sizeof default_rates / sizeof default_rates[0]);
}

static int64_t rows_of(const ml_continual_data *d, int k) { return d->class_start[k + 1] - d->class_start[k]; }

static int64_t train_of(const ml_continual_data *d, const ml_continual_options *o, int k) {
    return o->train_per_class > 0 ? o->train_per_class : rows_of(d, k) - o->test_per_class;
}

static ml_status check_part(const ml_continual_data *d, const char *part, const ml_continual_options *o, char *err,
                            size_t errlen) {
    if (!d || d->n_classes < 1 || d->dim < 1 || !d->feat || !d->class_start) {
        snprintf(err, errlen, "continual: the %s split has no class", part);
        return ML_ERR_ARG;
    }
    for (int k = 0; k < d->n_classes; k++) {
        int64_t rows = rows_of(d, k);
        if (rows - o->test_per_class < 1 || train_of(d, o, k) > rows - o->test_per_class) {
            snprintf(err, errlen,
                     "continual: class %d of the %s split has %lld images: %d held out for testing leave %s "
                     "(--continual-test)",
                     k, part, (long long)rows, o->test_per_class,
                     rows - o->test_per_class < 1 ? "none to learn" : "fewer than --continual-train asks");
            return ML_ERR_ARG;
        }
    }
    return ML_OK;
}

ml_status ml_continual_check(const ml_continual_data *val, const ml_continual_data *test,
                             const ml_continual_options *o, char *err, size_t errlen) {
    if (o->test_per_class < 1) {
        snprintf(err, errlen, "continual: --continual-test %d leaves no image for the test side (at least 1)",
                 o->test_per_class);
        return ML_ERR_ARG;
    }
    if (o->orders < 2 || o->n_counts < 0 || o->n_counts > ML_CONTINUAL_MAX_COUNTS ||
        o->n_rates > ML_CONTINUAL_MAX_RATES || o->oracle_epochs < 0 || o->forget_classes < 1) {
        snprintf(err, errlen, "continual: at least 2 class orders, at most %d class counts and %d rates",
                 ML_CONTINUAL_MAX_COUNTS, ML_CONTINUAL_MAX_RATES);
        return ML_ERR_ARG;
    }
    ml_status st = check_part(test, "test", o, err, errlen);
    if (st == ML_OK) st = check_part(val, "validation", o, err, errlen);
    if (st != ML_OK) return st;
    for (int i = 0; i < o->n_counts; i++) {
        if (o->counts[i] < 1 || (i && o->counts[i] <= o->counts[i - 1])) {
            snprintf(err, errlen, "continual: class counts must be positive and ascending (--continual)");
            return ML_ERR_ARG;
        }
        if (o->counts[i] > test->n_classes) {
            snprintf(err, errlen, "continual: %d classes asked, the run's test split has %d (--continual)",
                     o->counts[i], test->n_classes);
            return ML_ERR_ARG;
        }
    }
    for (int i = 0; i < o->n_rates; i++)
        if (!(o->rates[i] > 0) || !isfinite(o->rates[i])) {
            snprintf(err, errlen, "continual: learning rates must be positive");
            return ML_ERR_ARG;
        }
    return ML_OK;
}

/* Per-order work space. */
typedef struct seq_buf {
    ml__continual_learner *learner;
    int32_t *order;
    int64_t *rows; /* oracle: the shuffled training rows */
    int32_t *row_label;
    int failed;    /* a learner call failed (the network's: out of memory) */
} seq_buf;

/* The linear head on features. */
typedef struct head_learner {
    ml__continual_learner ops;
    int64_t D;
    int C;
    float *w, *b, *out;
} head_learner;

static int head_reset(ml__continual_learner *l, int C) {
    head_learner *h = (head_learner *)l;
    h->C = C;
    memset(h->w, 0, (size_t)C * h->D * sizeof(float));
    memset(h->b, 0, (size_t)C * sizeof(float));
    return 0;
}

static int head_step(ml__continual_learner *l, const float *x, int label, float lr) {
    head_learner *h = (head_learner *)l;
    ml_linear_head_step_ce(h->w, h->b, h->C, h->D, x, label, lr);
    return 0;
}

static int head_predict(ml__continual_learner *l, const float *x) {
    head_learner *h = (head_learner *)l;
    ml_linear_head_forward(h->w, h->b, h->C, h->D, x, h->out);
    int best = 0;
    for (int j = 1; j < h->C; j++)
        if (h->out[j] > h->out[best]) best = j;
    return best;
}

static void head_free(head_learner *h) {
    ml_free(h->w);
    ml_free(h->b);
    ml_free(h->out);
    memset(h, 0, sizeof *h);
}

static int head_alloc(head_learner *h, int C, int64_t D) {
    memset(h, 0, sizeof *h);
    h->ops = (ml__continual_learner){head_reset, head_step, head_predict};
    h->D = D;
    h->w = ml_calloc((size_t)C * D, sizeof(float));
    h->b = ml_calloc((size_t)C, sizeof(float));
    h->out = ml_calloc((size_t)C, sizeof(float));
    if (h->w && h->b && h->out) return 0;
    head_free(h);
    return -1;
}

/* Accuracy on the test images of the first k classes of the order. */
static double test_accuracy(const ml_continual_data *d, const ml_continual_options *o, seq_buf *s, int k) {
    int64_t right = 0, total = 0;
    for (int c = 0; c < k; c++) {
        int cls = s->order[c];
        int64_t end = d->class_start[cls + 1];
        for (int64_t r = end - o->test_per_class; r < end; r++) {
            int best = s->learner->predict(s->learner, d->feat + r * d->dim);
            s->failed |= best < 0;
            right += best == c;
            total++;
        }
    }
    return total ? (double)right / (double)total : 0;
}

/* One class order: acc[i] / first[i] after counts[i] classes (counts ascending,
 * the last is C), oracle[i] for i >= oracle_from when oracle is not NULL
 * (NAN below). */
static void run_order(const ml_continual_data *d, const ml_continual_options *o, int C, const int *counts,
                      int n_counts, float lr, float oracle_lr, ml_rng *rng, seq_buf *s, double *acc, double *first,
                      double *oracle, int oracle_from) {
    for (int c = 0; c < d->n_classes; c++) s->order[c] = c;
    ml_rng_shuffle_i32(rng, s->order, d->n_classes);
    const int64_t D = d->dim;
    const int nf = o->forget_classes;
    ml__continual_learner *l = s->learner;
    s->failed |= l->reset(l, C);
    for (int c = 0, next = 0; c < C && next < n_counts && !s->failed; c++) {
        int cls = s->order[c];
        int64_t start = d->class_start[cls], n = train_of(d, o, cls);
        for (int64_t r = start; r < start + n; r++) s->failed |= l->step(l, d->feat + r * D, c, lr);
        if (c + 1 == counts[next]) {
            acc[next] = test_accuracy(d, o, s, c + 1);
            first[next] = test_accuracy(d, o, s, c + 1 < nf ? c + 1 : nf);
            next++;
        }
    }
    if (!oracle) return;
    for (int i = 0; i < n_counts; i++) { /* i.i.d.: the first counts[i] classes' images together */
        oracle[i] = NAN;
        if (i < oracle_from || s->failed) continue;
        int64_t n = 0;
        for (int c = 0; c < counts[i]; c++) {
            int cls = s->order[c];
            for (int64_t r = 0; r < train_of(d, o, cls); r++) {
                s->rows[n] = d->class_start[cls] + r;
                s->row_label[n++] = c;
            }
        }
        s->failed |= l->reset(l, C);
        for (int e = 0; e < o->oracle_epochs; e++) {
            for (int64_t j = n - 1; j > 0; j--) { /* Fisher-Yates on (row, label) pairs */
                int64_t k = (int64_t)ml_rng_below(rng, (uint32_t)(j + 1));
                int64_t tr = s->rows[j];
                int32_t tl = s->row_label[j];
                s->rows[j] = s->rows[k];
                s->row_label[j] = s->row_label[k];
                s->rows[k] = tr;
                s->row_label[k] = tl;
            }
            for (int64_t j = 0; j < n; j++) s->failed |= l->step(l, d->feat + s->rows[j] * D, s->row_label[j], oracle_lr);
        }
        oracle[i] = test_accuracy(d, o, s, counts[i]);
    }
}

static void buf_free(seq_buf *s) {
    ml_free(s->order);
    ml_free(s->rows);
    ml_free(s->row_label);
    memset(s, 0, sizeof *s);
}

static int buf_alloc(seq_buf *s, const ml_continual_data *d, ml__continual_learner *l) {
    memset(s, 0, sizeof *s);
    int C = d->n_classes;
    int64_t rows = d->class_start[C] - d->class_start[0];
    s->learner = l;
    s->order = ml_calloc((size_t)C, sizeof(int32_t));
    s->rows = ml_calloc((size_t)rows + 1, sizeof(int64_t));
    s->row_label = ml_calloc((size_t)rows + 1, sizeof(int32_t));
    if (s->order && s->rows && s->row_label) return 0;
    buf_free(s);
    return -1;
}

/* Means and intervals over the orders of v[order * n + i] into mean[i], ci[i]. */
static void summarise(const double *v, int orders, int n, double *tmp, double *mean, double *ci) {
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < orders; k++) tmp[k] = v[(int64_t)k * n + i];
        ml_mean_ci95(tmp, orders, &mean[i], &ci[i]);
    }
}

ml_status ml__continual_evaluate_with(const ml_continual_data *val, const ml_continual_data *test,
                                      const ml_continual_options *o, ml__continual_learner *lv,
                                      ml__continual_learner *lt, int oracle_last_only, ml_continual_result *res,
                                      char *err, size_t errlen) {
    memset(res, 0, sizeof *res);
    ml_status st = ml_continual_check(val, test, o, err, errlen);
    if (st != ML_OK) return st;
    /* The reported counts, then every test class. */
    int counts[ML_CONTINUAL_MAX_COUNTS + 1], n = 0;
    for (int i = 0; i < o->n_counts; i++)
        if (o->counts[i] < test->n_classes) counts[n++] = o->counts[i];
    counts[n++] = test->n_classes;
    const float *rates = o->n_rates ? o->rates : default_rates;
    int n_rates = o->n_rates ? o->n_rates : (int)(sizeof default_rates / sizeof default_rates[0]);
    int orders = o->orders;
    seq_buf sv, stst;
    double *acc = ml_calloc((size_t)orders * (n + 1), sizeof(double));
    double *first = ml_calloc((size_t)orders * (n + 1), sizeof(double));
    double *orc = ml_calloc((size_t)orders * (n + 1), sizeof(double));
    double *tmp = ml_calloc((size_t)orders, sizeof(double));
    if (!acc || !first || !orc || !tmp || buf_alloc(&sv, val, lv)) {
        ml_free(acc), ml_free(first), ml_free(orc), ml_free(tmp);
        snprintf(err, errlen, "continual: out of memory");
        return ML_ERR_NOMEM;
    }
    if (buf_alloc(&stst, test, lt)) {
        buf_free(&sv);
        ml_free(acc), ml_free(first), ml_free(orc), ml_free(tmp);
        snprintf(err, errlen, "continual: out of memory");
        return ML_ERR_NOMEM;
    }
    /* The rates: best final accuracy on the validation classes (every one of
     * them), the same orders for every rate; the oracle's own rate likewise. */
    int vc = val->n_classes;
    double best = -1, best_oracle = -1;
    res->oracle_lr = NAN;
    for (int i = 0; i < n_rates; i++) {
        double sum = 0, sum_oracle = 0;
        for (int k = 0; k < orders; k++) {
            ml_rng rng;
            ml_rng_seed(&rng, o->seed ^ 0x76616c6964ULL ^ ((uint64_t)k << 32));
            double a = 0, f = 0, orc_a = 0;
            run_order(val, o, vc, &vc, 1, rates[i], rates[i], &rng, &sv, &a, &f, o->oracle_epochs ? &orc_a : NULL, 0);
            sum += a;
            sum_oracle += orc_a;
        }
        if (sum / orders > best) {
            best = sum / orders;
            res->lr = rates[i];
        }
        if (o->oracle_epochs && sum_oracle / orders > best_oracle) {
            best_oracle = sum_oracle / orders;
            res->oracle_lr = rates[i];
        }
    }
    res->val_accuracy = best;
    for (int k = 0; k < orders; k++) {
        ml_rng rng;
        ml_rng_seed(&rng, o->seed ^ ((uint64_t)k << 32));
        run_order(test, o, test->n_classes, counts, n, res->lr, res->oracle_lr, &rng, &stst, acc + (int64_t)k * n,
                  first + (int64_t)k * n, o->oracle_epochs ? orc + (int64_t)k * n : NULL, oracle_last_only ? n - 1 : 0);
    }
    double m[ML_CONTINUAL_MAX_COUNTS + 1], c[ML_CONTINUAL_MAX_COUNTS + 1];
    res->n_rows = n;
    summarise(acc, orders, n, tmp, m, c);
    for (int i = 0; i < n; i++) res->rows[i].classes = counts[i], res->rows[i].accuracy = m[i], res->rows[i].ci95 = c[i];
    summarise(first, orders, n, tmp, m, c);
    for (int i = 0; i < n; i++) res->rows[i].first = m[i], res->rows[i].first_ci95 = c[i];
    summarise(orc, orders, n, tmp, m, c);
    for (int i = 0; i < n; i++) {
        int on = o->oracle_epochs && (!oracle_last_only || i == n - 1);
        res->rows[i].oracle = on ? m[i] : NAN;
        res->rows[i].oracle_ci95 = on ? c[i] : NAN;
    }
    res->forgetting = res->rows[n - 1].first;
    res->forgetting_ci95 = res->rows[n - 1].first_ci95;
    res->forget_classes = o->forget_classes < test->n_classes ? o->forget_classes : test->n_classes;
    res->val_classes = vc;
    res->test_classes = test->n_classes;
    res->train_per_class = o->train_per_class > 0 ? o->train_per_class : (int)train_of(test, o, 0);
    res->test_per_class = o->test_per_class;
    res->orders = orders;
    res->feature_zero_fraction = res->feature_norm = NAN;
    res->whole_network = o->whole_network;
    int failed = sv.failed || stst.failed;
    buf_free(&sv);
    buf_free(&stst);
    ml_free(acc), ml_free(first), ml_free(orc), ml_free(tmp);
    if (failed) {
        snprintf(err, errlen, "continual: the learner failed (out of memory?)");
        return ML_ERR_NOMEM;
    }
    return ML_OK;
}

ml_status ml_continual_evaluate(const ml_continual_data *val, const ml_continual_data *test,
                                const ml_continual_options *o, ml_continual_result *res, char *err, size_t errlen) {
    memset(res, 0, sizeof *res);
    ml_status st = ml_continual_check(val, test, o, err, errlen);
    if (st != ML_OK) return st;
    head_learner hv, ht;
    if (head_alloc(&hv, val->n_classes, val->dim)) {
        snprintf(err, errlen, "continual: out of memory");
        return ML_ERR_NOMEM;
    }
    if (head_alloc(&ht, test->n_classes, test->dim)) {
        head_free(&hv);
        snprintf(err, errlen, "continual: out of memory");
        return ML_ERR_NOMEM;
    }
    st = ml__continual_evaluate_with(val, test, o, &hv.ops, &ht.ops, 0, res, err, errlen);
    head_free(&hv);
    head_free(&ht);
    return st;
}

/* A number, or null when not finite. */
static size_t num(char *buf, size_t cap, size_t used, double v) {
    char *p = used < cap ? buf + used : NULL;
    size_t room = used < cap ? cap - used : 0;
    int k = isfinite(v) ? snprintf(p, room, "%.6g", v) : snprintf(p, room, "null");
    return used + (size_t)(k > 0 ? k : 0);
}

static size_t text(char *buf, size_t cap, size_t used, const char *s) {
    int k = snprintf(used < cap ? buf + used : NULL, used < cap ? cap - used : 0, "%s", s);
    return used + (size_t)(k > 0 ? k : 0);
}

size_t ml_continual_to_json(const ml_continual_result *r, const char *algo, char *buf, size_t cap) {
    char head[512];
    snprintf(head, sizeof head,
             "{\"continual\":{\"algo\":\"%s\",\"benchmark\":\"%s\",\"orders\":%d,\"val_classes\":%d,"
             "\"test_classes\":%d,\"train_per_class\":%d,\"test_per_class\":%d,\"forget_classes\":%d,\"lr\":",
             algo ? algo : "", r->regression ? "incremental-sine" : "classes", r->orders, r->val_classes,
             r->test_classes, r->train_per_class, r->test_per_class, r->forget_classes);
    if (cap) buf[0] = 0;
    size_t u = text(buf, cap, 0, head);
    u = num(buf, cap, u, r->lr);
    u = text(buf, cap, u, ",\"oracle_lr\":");
    u = num(buf, cap, u, r->oracle_lr);
    u = text(buf, cap, u, r->regression ? ",\"val_mse\":" : ",\"val_accuracy\":");
    u = num(buf, cap, u, r->val_accuracy);
    u = text(buf, cap, u, r->whole_network ? ",\"learner\":\"whole-network\"" : ",\"learner\":\"head\"");
    u = text(buf, cap, u, ",\"feature_zero_fraction\":");
    u = num(buf, cap, u, r->feature_zero_fraction);
    u = text(buf, cap, u, ",\"feature_norm\":");
    u = num(buf, cap, u, r->feature_norm);
    u = text(buf, cap, u, ",\"rows\":[");
    for (int i = 0; i < r->n_rows; i++) {
        const ml_continual_row *w = &r->rows[i];
        char cl[64];
        snprintf(cl, sizeof cl, "%s{\"%s\":%d,\"%s\":", i ? "," : "", r->regression ? "functions" : "classes",
                 w->classes, r->regression ? "mse" : "accuracy");
        u = text(buf, cap, u, cl);
        u = num(buf, cap, u, w->accuracy);
        u = text(buf, cap, u, ",\"ci95\":");
        u = num(buf, cap, u, w->ci95);
        u = text(buf, cap, u, ",\"first\":");
        u = num(buf, cap, u, w->first);
        u = text(buf, cap, u, ",\"first_ci95\":");
        u = num(buf, cap, u, w->first_ci95);
        u = text(buf, cap, u, ",\"oracle\":");
        u = num(buf, cap, u, w->oracle);
        u = text(buf, cap, u, ",\"oracle_ci95\":");
        u = num(buf, cap, u, w->oracle_ci95);
        u = text(buf, cap, u, "}");
    }
    u = text(buf, cap, u, "],\"forgetting\":");
    u = num(buf, cap, u, r->forgetting);
    u = text(buf, cap, u, ",\"forgetting_ci95\":");
    u = num(buf, cap, u, r->forgetting_ci95);
    return text(buf, cap, u, "}}");
}
