/* test_oml.c: OML (src/meta/oml.c) and the continual-learning protocol
 * (src/eval/continual.c) against independent computations.
 *   - the second-order meta-gradient through an online trajectory (one SGD
 *     step on the head per example) equals central differences of the
 *     meta-loss, computed here in double precision by hand, for regression
 *     (meta-learned head) and classification (a zero head per trajectory);
 *   - the first-order meta-gradient equals central differences of the
 *     meta-loss with the head's online updates held constant;
 *   - both again with the paper's meta-loss: a head over all training
 *     classes (the trajectory's rows reset to zero) and a remembered batch of
 *     other training classes scored by every row;
 *   - results are bit-identical whatever the thread count;
 *   - the protocol: the plain-C head step against a hand-computed one,
 *     separable classes learned without forgetting, the setup errors. */
#include <math.h>
#include <string.h>

#include "metalearn/continual.h"
#include "metalearn/meta.h"
#include "metalearn/nn.h"
#include "ml_test.h"

#define H 6   /* hidden units: the representation's width */
#define DIN 3 /* classification inputs */
#define WAYS 3
#define KS 6 /* trajectory: 2 per class for classification */
#define KQ 5

static float rx_s[KS], ry_s[KS], rx_q[KQ], ry_q[KQ]; /* one sine function */
static float cx_s[KS * DIN], cx_q[KQ * DIN];
static int32_t cl_s[KS], cl_q[KQ];

static void make_data(void) {
    ml_rng r;
    ml_rng_seed(&r, 7);
    for (int i = 0; i < KS; i++) {
        rx_s[i] = (float)(10 * ml_rng_uniform(&r) - 5);
        ry_s[i] = (float)(1.5 * sin(rx_s[i] - 0.7));
        cl_s[i] = i / (KS / WAYS); /* class-major, as episodes are */
        for (int d = 0; d < DIN; d++) cx_s[i * DIN + d] = (float)(ml_rng_normal(&r) + (d == cl_s[i]));
    }
    for (int i = 0; i < KQ; i++) {
        rx_q[i] = (float)(10 * ml_rng_uniform(&r) - 5);
        ry_q[i] = (float)(1.5 * sin(rx_q[i] - 0.7));
        cl_q[i] = i % WAYS;
        for (int d = 0; d < DIN; d++) cx_q[i * DIN + d] = (float)(ml_rng_normal(&r) + (d == cl_q[i]));
    }
}

static void make_mlp(ml_model *m, int in, int out, uint64_t seed) {
    ml_model_spec spec;
    char err[128];
    ml_model_spec_parse("mlp:6", &spec, err, sizeof err);
    spec.in_c = spec.in_h = 1;
    spec.in_w = in;
    spec.n_out = out;
    CHECK(ml_model_init(m, &spec, err, sizeof err) == ML_OK);
    ml_rng r;
    ml_rng_seed(&r, seed);
    ml_model_init_params(m, ML_INIT_TORCH, &r);
}

static ml_meta_config config(ml_algo algo, ml_loss_kind loss, float lr) {
    ml_meta_config c = {.algo = algo, .loss = loss, .inner_steps = 1, .inner_lr = lr, .threads = 1};
    c.outer = ml_optim_config_default(ML_OPTIM_SGD);
    c.outer.lr = 1e-3;
    return c;
}

/* The representation relu(W1 x + b1) of n inputs of size in, by hand. */
static void features(const float *p, int in, const float *x, int n, double *f) {
    const float *w1 = p, *b1 = p + H * in;
    for (int i = 0; i < n; i++)
        for (int h = 0; h < H; h++) {
            double s = b1[h];
            for (int d = 0; d < in; d++) s += (double)w1[h * in + d] * x[i * in + d];
            f[i * H + h] = s > 0 ? s : 0;
        }
}

/* Output c of the head (w [C, H], b [C]) on feature row f. */
static double out_of(const double *w, const double *b, const double *f, int c) {
    double s = b[c];
    for (int h = 0; h < H; h++) s += w[c * H + h] * f[h];
    return s;
}

/* Loss of one example: squared error (C 1) or softmax cross-entropy; its
 * gradient in the head's outputs into g[C]. */
static double example_loss(const double *w, const double *b, const double *f, int C, double y, int label,
                           double *g) {
    if (C == 1) {
        double d = out_of(w, b, f, 0) - y;
        if (g) g[0] = 2 * d;
        return d * d;
    }
    double o[WAYS], mx = -1e300, z = 0;
    for (int c = 0; c < C; c++) mx = fmax(mx, o[c] = out_of(w, b, f, c));
    for (int c = 0; c < C; c++) z += exp(o[c] - mx);
    for (int c = 0; c < C && g; c++) g[c] = exp(o[c] - mx) / z - (c == label);
    return log(z) + mx - o[label];
}

/* The trajectory and the meta-loss from parameters p, by hand. When frozen
 * is not NULL it holds the head's total online update (final - start) to add
 * instead of recomputing it (the first-order gradient's function);
 * record_update receives that update. */
static double meta_loss(const float *p, int cls, float lr, const double *frozen, double *record_update) {
    const int in = cls ? DIN : 1, C = cls ? WAYS : 1;
    double fs[KS * H], fq[KQ * H], w[WAYS * H], b[WAYS], g[WAYS];
    features(p, in, cls ? cx_s : rx_s, KS, fs);
    features(p, in, cls ? cx_q : rx_q, KQ, fq);
    const float *hw = p + H * in + H, *hb = hw + C * H;
    for (int j = 0; j < C * H; j++) w[j] = cls ? 0 : hw[j];
    for (int c = 0; c < C; c++) b[c] = cls ? 0 : hb[c];
    if (frozen) {
        for (int j = 0; j < C * H; j++) w[j] += frozen[j];
        for (int c = 0; c < C; c++) b[c] += frozen[C * H + c];
    } else {
        for (int i = 0; i < KS; i++) {
            example_loss(w, b, fs + i * H, C, ry_s[i], cl_s[i], g);
            for (int c = 0; c < C; c++) {
                for (int h = 0; h < H; h++) w[c * H + h] -= lr * g[c] * fs[i * H + h];
                b[c] -= lr * g[c];
            }
        }
        if (record_update) {
            for (int j = 0; j < C * H; j++) record_update[j] = w[j] - (cls ? 0 : hw[j]);
            for (int c = 0; c < C; c++) record_update[C * H + c] = b[c] - (cls ? 0 : hb[c]);
        }
    }
    double ls = 0, lq = 0;
    for (int i = 0; i < KS; i++) ls += example_loss(w, b, fs + i * H, C, ry_s[i], cl_s[i], NULL);
    for (int i = 0; i < KQ; i++) lq += example_loss(w, b, fq + i * H, C, ry_q[i], cl_q[i], NULL);
    double ws = (double)KS / (KS + KQ);
    return ws * ls / KS + (1 - ws) * lq / KQ;
}

static ml_task_data task_of(int cls) {
    if (cls)
        return (ml_task_data){.n_support = KS, .n_query = KQ, .ways = WAYS, .xs = cx_s, .xq = cx_q, .ls = cl_s,
                              .lq = cl_q};
    return (ml_task_data){.n_support = KS, .n_query = KQ, .xs = rx_s, .xq = rx_q, .ys = ry_s, .yq = ry_q};
}

/* ml_meta's meta-gradient of one trajectory against central differences. */
static void check_fd(ml_algo algo, int cls) {
    const float lr = 0.1f;
    ml_model m;
    make_mlp(&m, cls ? DIN : 1, cls ? WAYS : 1, 5);
    ml_meta_config c = config(algo, cls ? ML_LOSS_CROSS_ENTROPY : ML_LOSS_MSE, lr);
    ml_meta meta;
    char err[256];
    CHECK(ml_meta_init(&meta, &m, &c, 1, err, sizeof err) == ML_OK);
    float *p = malloc((size_t)meta.n_meta * sizeof(float));
    memcpy(p, meta.meta, (size_t)meta.n_meta * sizeof(float));
    ml_task_data t = task_of(cls);
    double loss, update[WAYS * H + WAYS];
    CHECK(ml_meta_step(&meta, &t, 1, &loss, err, sizeof err) == ML_OK);
    CHECK_NEAR(loss, meta_loss(p, cls, lr, NULL, update), 1e-5, 1e-4);
    int first = algo == ML_ALGO_OML_FO;
    const float h = 1e-3f;
    double worst = 0;
    int bad = 0;
    for (int64_t j = 0; j < meta.n_meta && !bad; j++) {
        float keep = p[j];
        p[j] = keep + h;
        double lp = meta_loss(p, cls, lr, first ? update : NULL, NULL);
        p[j] = keep - h;
        double lm = meta_loss(p, cls, lr, first ? update : NULL, NULL);
        p[j] = keep;
        double fd = (lp - lm) / ((double)(keep + h) - (double)(keep - h));
        double e = fabs(fd - meta.grad[j]) / (1e-3 + fabs(fd));
        worst = fmax(worst, e);
        if (e > 1e-2) {
            ML_FAIL_AT("%s %s: d/dmeta[%lld] = %.6g, finite difference %.6g", ml_algo_name(algo),
                       cls ? "classification" : "regression", (long long)j, meta.grad[j], fd);
            bad = 1;
        }
    }
    printf("  %s %s: %lld meta-parameters, worst relative error %.2e\n", ml_algo_name(algo),
           cls ? "classification" : "regression", (long long)meta.n_meta, worst);
    free(p);
    ml_meta_free(&meta);
    ml_model_free(&m);
}

static void test_oml_regression_matches_finite_differences(void) { check_fd(ML_ALGO_OML, 0); }
static void test_oml_classification_matches_finite_differences(void) { check_fd(ML_ALGO_OML, 1); }
static void test_oml_first_order_matches_finite_differences(void) {
    check_fd(ML_ALGO_OML_FO, 0);
    check_fd(ML_ALGO_OML_FO, 1);
}

/* ---- the class head and the remembered batch (the paper's meta-loss) ---- */

#define CT 5 /* training classes of the head */
#define NR 4 /* remembered images */
static const int32_t task_classes[WAYS] = {4, 0, 2}; /* episode label k is training class task_classes[k] */
static float cx_r[NR * DIN];
static int32_t cl_r[NR] = {1, 3, 4, 1};

static void make_remembered(void) {
    ml_rng r;
    ml_rng_seed(&r, 11);
    for (int i = 0; i < NR; i++)
        for (int d = 0; d < DIN; d++) cx_r[i * DIN + d] = (float)(ml_rng_normal(&r) + (d == cl_r[i] % DIN));
}

/* Cross-entropy of one row over CT outputs; its gradient in the outputs into g[CT]. */
static double class_loss(const double *w, const double *b, const double *f, int label, double *g) {
    double o[CT], mx = -1e300, z = 0;
    for (int c = 0; c < CT; c++) mx = fmax(mx, o[c] = out_of(w, b, f, c));
    for (int c = 0; c < CT; c++) z += exp(o[c] - mx);
    for (int c = 0; c < CT && g; c++) g[c] = exp(o[c] - mx) / z - (c == label);
    return log(z) + mx - o[label];
}

/* The meta-loss with the class head (after theta in p, at offset n), by hand;
 * frozen / record_update as meta_loss. */
static double class_meta_loss(const float *p, int64_t n, float lr, const double *frozen, double *record_update) {
    double fs[KS * H], fq[KQ * H], fr[NR * H], w[CT * H], b[CT], w0[CT * H], b0[CT], g[CT];
    features(p, DIN, cx_s, KS, fs);
    features(p, DIN, cx_q, KQ, fq);
    features(p, DIN, cx_r, NR, fr);
    for (int c = 0; c < CT; c++) {
        int reset = 0;
        for (int k = 0; k < WAYS; k++) reset |= task_classes[k] == c;
        for (int h = 0; h < H; h++) w0[c * H + h] = reset ? 0 : p[n + c * H + h];
        b0[c] = reset ? 0 : p[n + CT * H + c];
    }
    memcpy(w, w0, sizeof w);
    memcpy(b, b0, sizeof b);
    if (frozen) {
        for (int j = 0; j < CT * H; j++) w[j] += frozen[j];
        for (int c = 0; c < CT; c++) b[c] += frozen[CT * H + c];
    } else {
        for (int i = 0; i < KS; i++) {
            class_loss(w, b, fs + i * H, task_classes[cl_s[i]], g);
            for (int c = 0; c < CT; c++) {
                for (int h = 0; h < H; h++) w[c * H + h] -= lr * g[c] * fs[i * H + h];
                b[c] -= lr * g[c];
            }
        }
        if (record_update) {
            for (int j = 0; j < CT * H; j++) record_update[j] = w[j] - w0[j];
            for (int c = 0; c < CT; c++) record_update[CT * H + c] = b[c] - b0[c];
        }
    }
    double sum = 0;
    for (int i = 0; i < KS; i++) sum += class_loss(w, b, fs + i * H, task_classes[cl_s[i]], NULL);
    for (int i = 0; i < KQ; i++) sum += class_loss(w, b, fq + i * H, task_classes[cl_q[i]], NULL);
    for (int i = 0; i < NR; i++) sum += class_loss(w, b, fr + i * H, cl_r[i], NULL);
    return sum / (KS + KQ + NR);
}

static void check_class_head_fd(ml_algo algo) {
    const float lr = 0.3f;
    ml_model m;
    make_mlp(&m, DIN, WAYS, 5);
    ml_meta_config c = config(algo, ML_LOSS_CROSS_ENTROPY, lr);
    c.pretrain_classes = CT;
    ml_meta meta;
    char err[256];
    CHECK(ml_meta_init(&meta, &m, &c, 1, err, sizeof err) == ML_OK);
    CHECK(meta.n_meta == meta.n + CT * H + CT);
    ml_rng r; /* a head that is not zero, so its rows' gradients show */
    ml_rng_seed(&r, 3);
    for (int64_t j = meta.n; j < meta.n_meta; j++) meta.meta[j] = (float)(0.5 * ml_rng_normal(&r));
    float *p = malloc((size_t)meta.n_meta * sizeof(float));
    memcpy(p, meta.meta, (size_t)meta.n_meta * sizeof(float));
    ml_task_data t = task_of(1);
    t.classes = task_classes;
    t.n_remember = NR;
    t.xr = cx_r;
    t.lr = cl_r;
    double loss, update[CT * H + CT];
    CHECK(ml_meta_step(&meta, &t, 1, &loss, err, sizeof err) == ML_OK);
    CHECK_NEAR(loss, class_meta_loss(p, meta.n, lr, NULL, update), 1e-5, 1e-4);
    int first = algo == ML_ALGO_OML_FO;
    const float h = 1e-3f;
    double worst = 0, head_grad = 0;
    int bad = 0;
    for (int64_t j = 0; j < meta.n_meta && !bad; j++) {
        float keep = p[j];
        p[j] = keep + h;
        double lp = class_meta_loss(p, meta.n, lr, first ? update : NULL, NULL);
        p[j] = keep - h;
        double lm = class_meta_loss(p, meta.n, lr, first ? update : NULL, NULL);
        p[j] = keep;
        double fd = (lp - lm) / ((double)(keep + h) - (double)(keep - h));
        double e = fabs(fd - meta.grad[j]) / (1e-3 + fabs(fd));
        worst = fmax(worst, e);
        if (j >= meta.n) head_grad = fmax(head_grad, fabs(meta.grad[j]));
        if (e > 1e-2) {
            ML_FAIL_AT("%s class head: d/dmeta[%lld] = %.6g, finite difference %.6g", ml_algo_name(algo), (long long)j,
                       meta.grad[j], fd);
            bad = 1;
        }
    }
    CHECK(head_grad > 1e-3); /* the head's rows are meta-learned */
    for (int h2 = 0; h2 < H; h2++) CHECK(meta.grad[meta.n + 4 * H + h2] == 0.0f); /* a reset row: no gradient */
    printf("  %s class head + %d remembered: %lld meta-parameters, worst relative error %.2e\n", ml_algo_name(algo), NR,
           (long long)meta.n_meta, worst);
    free(p);
    ml_meta_free(&meta);
    ml_model_free(&m);
}

static void test_oml_class_head_matches_finite_differences(void) {
    check_class_head_fd(ML_ALGO_OML);
    check_class_head_fd(ML_ALGO_OML_FO);
}

/* A class head with an episode that does not say its classes, or names one
 * outside the head: a clear error (a failed step ends the learner's use). */
static void class_head_error(const int32_t *classes, const char *want) {
    ml_model m;
    make_mlp(&m, DIN, WAYS, 5);
    ml_meta_config c = config(ML_ALGO_OML, ML_LOSS_CROSS_ENTROPY, 0.1f);
    c.pretrain_classes = CT;
    ml_meta meta;
    char err[256];
    double loss;
    CHECK(ml_meta_init(&meta, &m, &c, 1, err, sizeof err) == ML_OK);
    ml_task_data t = task_of(1);
    t.classes = classes;
    CHECK(ml_meta_step(&meta, &t, 1, &loss, err, sizeof err) != ML_OK);
    CHECK_STR_CONTAINS(err, want);
    ml_meta_free(&meta);
    ml_model_free(&m);
}

static void test_oml_class_head_needs_classes(void) {
    static const int32_t far[WAYS] = {0, 1, CT};
    class_head_error(NULL, "a class head needs the episode's training classes");
    class_head_error(far, "has training class 5, the head has 5");
}

/* The second-order term matters: the two rows give different gradients. */
static void test_first_and_second_order_differ(void) {
    ml_model m;
    make_mlp(&m, 1, 1, 5);
    ml_meta a, b;
    char err[256];
    double loss;
    ml_meta_config ca = config(ML_ALGO_OML, ML_LOSS_MSE, 0.1f), cb = config(ML_ALGO_OML_FO, ML_LOSS_MSE, 0.1f);
    CHECK(ml_meta_init(&a, &m, &ca, 1, err, sizeof err) == ML_OK);
    CHECK(ml_meta_init(&b, &m, &cb, 1, err, sizeof err) == ML_OK);
    ml_task_data t = task_of(0);
    CHECK(ml_meta_step(&a, &t, 1, &loss, err, sizeof err) == ML_OK);
    CHECK(ml_meta_step(&b, &t, 1, &loss, err, sizeof err) == ML_OK);
    double diff = 0;
    for (int64_t j = 0; j < a.n_meta; j++) diff = fmax(diff, fabs(a.grad[j] - b.grad[j]));
    CHECK(diff > 1e-4);
    ml_meta_free(&a);
    ml_meta_free(&b);
    ml_model_free(&m);
}

static void thread_test_model(ml_model *m) { make_mlp(m, DIN, WAYS, 9); }

static void test_oml_does_not_depend_on_thread_count(void) {
    ml_task_data t[4];
    for (int i = 0; i < 4; i++) t[i] = task_of(1);
    for (int i = 0; i < 4; i++) t[i].n_support = KS - (i % 2) * (KS / WAYS); /* different trajectories */
    ml_meta_config c = config(ML_ALGO_OML, ML_LOSS_CROSS_ENTROPY, 0.1f);
    c.outer = ml_optim_config_default(ML_OPTIM_ADAM);
    ml_test_meta_threads_invariant(thread_test_model, &c, t, 4, 4);
}

/* ---- the protocol ------------------------------------------------------------------------ */

static void test_head_step_by_hand(void) {
    float w[2 * 3] = {0.1f, -0.2f, 0.3f, 0.0f, 0.5f, -0.1f}, b[2] = {0.2f, -0.3f}, f[3] = {1.0f, 2.0f, -1.0f};
    double o0 = 0.2 + 0.1 - 0.4 - 0.3, o1 = -0.3 + 0 + 1.0 + 0.1;
    double p0 = exp(o0) / (exp(o0) + exp(o1)), p1 = 1 - p0;
    float w0 = w[1], b1 = b[1];
    ml_linear_head_step_ce(w, b, 2, 3, f, 1, 0.5f);
    CHECK_NEAR(w[1], w0 - 0.5 * p0 * 2.0, 1e-6, 1e-6);
    CHECK_NEAR(b[1], b1 - 0.5 * (p1 - 1), 1e-6, 1e-6);
    float v[2] = {0.5f, 0.25f}, c = 0.1f, g[2] = {2.0f, -4.0f};
    ml_linear_head_step_mse(v, &c, 2, g, 1.0f, 0.1f); /* out 1 - 1 + 0.1 = 0.1: gradient 2 (0.1 - 1) = -1.8 */
    CHECK_NEAR(v[0], 0.5 + 0.1 * 1.8 * 2.0, 1e-6, 1e-6);
    CHECK_NEAR(c, 0.1 + 0.1 * 1.8, 1e-6, 1e-6);
}

/* Classes on orthogonal one-hot features never interfere: every order ends
 * at accuracy 1, the oracle too; the setup errors name the option. */
static void test_protocol_separable_and_errors(void) {
    enum { NC = 12, PER = 4 };
    static float feat[NC * PER * NC];
    static int64_t start[NC + 1];
    memset(feat, 0, sizeof feat);
    for (int k = 0; k <= NC; k++) start[k] = (int64_t)k * PER;
    for (int k = 0; k < NC; k++)
        for (int i = 0; i < PER; i++) feat[(k * PER + i) * NC + k] = 1.0f;
    ml_continual_data d = {NC, NC, feat, start};
    ml_continual_options o;
    ml_continual_options_default(&o);
    o.test_per_class = 1;
    o.counts[0] = 5;
    o.counts[1] = 10;
    o.n_counts = 2;
    o.oracle_epochs = 2;
    o.forget_classes = 3;
    ml_continual_result r, r2;
    char err[256];
    CHECK(ml_continual_evaluate(&d, &d, &o, &r, err, sizeof err) == ML_OK);
    CHECK(r.n_rows == 3 && r.rows[2].classes == NC && r.test_classes == NC && r.train_per_class == PER - 1);
    for (int i = 0; i < r.n_rows; i++) {
        CHECK_NEAR(r.rows[i].accuracy, 1.0, 0, 1e-12);
        CHECK_NEAR(r.rows[i].oracle, 1.0, 0, 1e-12);
    }
    CHECK_NEAR(r.forgetting, 1.0, 0, 1e-12);
    CHECK(ml_continual_evaluate(&d, &d, &o, &r2, err, sizeof err) == ML_OK);
    CHECK(memcmp(&r, &r2, sizeof r) == 0); /* seeded */
    char json[2048];
    CHECK(ml_continual_to_json(&r, "oml", json, sizeof json) < sizeof json);
    CHECK_STR_CONTAINS(json, "\"classes\":12,\"accuracy\":1,");
    o.counts[1] = NC + 1;
    CHECK(ml_continual_evaluate(&d, &d, &o, &r, err, sizeof err) == ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "13 classes asked, the run's test split has 12");
    o.counts[1] = 10;
    o.test_per_class = 0;
    CHECK(ml_continual_evaluate(&d, &d, &o, &r, err, sizeof err) == ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "no image for the test side");
    o.test_per_class = PER;
    CHECK(ml_continual_evaluate(&d, &d, &o, &r, err, sizeof err) == ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "none to learn");
    o.test_per_class = 1;
    ml_continual_data empty = {0, NC, feat, start};
    CHECK(ml_continual_evaluate(&empty, &d, &o, &r, err, sizeof err) == ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "validation split has no class");
}

/* The whole-network baselines on the same protocol: one-hot "images" through
 * an MLP from a random start; the oracle (all classes shuffled, several
 * epochs) learns them all, scratch online is worse on the first classes, and
 * the run is seeded. */
static void test_whole_network_baselines(void) {
    enum { NC = 6, PER = 6, DIM = 8 };
    static float img[NC * PER * DIM];
    static int64_t start[NC + 1];
    memset(img, 0, sizeof img);
    for (int k = 0; k <= NC; k++) start[k] = (int64_t)k * PER;
    for (int k = 0; k < NC; k++)
        for (int i = 0; i < PER; i++) img[(k * PER + i) * DIM + k] = 1.0f;
    ml_continual_data d = {NC, DIM, img, start};
    ml_continual_options o;
    ml_continual_options_default(&o);
    o.test_per_class = 1;
    o.counts[0] = 3;
    o.n_counts = 1;
    o.oracle_epochs = 20;
    o.forget_classes = 2;
    o.orders = 3;
    o.rates[0] = 0.3f;
    o.rates[1] = 0.1f;
    o.n_rates = 2;
    o.whole_network = 1;
    ml_model_spec spec;
    char err[256];
    CHECK(ml_model_spec_parse("mlp:16", &spec, err, sizeof err) == ML_OK);
    spec.in_c = spec.in_h = 1;
    spec.in_w = DIM;
    spec.n_out = 2; /* the spec's own head: not used, the protocol's head has one output per class */
    ml_continual_result r, r2;
    ml_status st = ml_continual_evaluate_network(&d, &d, &o, &spec, &r, err, sizeof err);
    if (st != ML_OK) fprintf(stderr, "  %s\n", err);
    CHECK(st == ML_OK);
    CHECK(r.whole_network == 1 && r.n_rows == 2 && r.rows[1].classes == NC);
    CHECK(isnan(r.rows[0].oracle) && !isnan(r.rows[1].oracle)); /* the oracle after all classes only */
    CHECK_NEAR(r.rows[1].oracle, 1.0, 0, 1e-12);
    CHECK(r.rows[1].accuracy <= r.rows[1].oracle);
    CHECK(ml_continual_evaluate_network(&d, &d, &o, &spec, &r2, err, sizeof err) == ML_OK);
    CHECK(memcmp(&r, &r2, sizeof r) == 0); /* seeded */
    char json[2048];
    ml_continual_to_json(&r, "oml", json, sizeof json);
    CHECK_STR_CONTAINS(json, "\"learner\":\"whole-network\"");
    spec.in_w = DIM + 1;
    CHECK(ml_continual_evaluate_network(&d, &d, &o, &spec, &r, err, sizeof err) == ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "the images have 8 values");
}

int main(void) {
    make_data();
    make_remembered();
    ML_RUN(test_oml_regression_matches_finite_differences);
    ML_RUN(test_oml_classification_matches_finite_differences);
    ML_RUN(test_oml_first_order_matches_finite_differences);
    ML_RUN(test_oml_class_head_matches_finite_differences);
    ML_RUN(test_oml_class_head_needs_classes);
    ML_RUN(test_first_and_second_order_differ);
    ML_RUN(test_oml_does_not_depend_on_thread_count);
    ML_RUN(test_head_step_by_hand);
    ML_RUN(test_protocol_separable_and_errors);
    ML_RUN(test_whole_network_baselines);
    return ml_test_summary();
}
