/* test_pretrain.c: the transfer baseline (--algo pretrain) against
 * independent computations:
 *   - its training gradient (embedding and the head over all training
 *     classes) equals central differences of a cross-entropy computed here
 *     in double from the embedding's features;
 *   - its evaluation (a zero N-way head trained by plain SGD on the frozen
 *     features of the support set) reproduces a by-hand softmax regression
 *     step for step, starts at exactly the share of label 0 (all logits
 *     equal), and does not depend on the thread count;
 *   - fine-tuning everything equals head-only for one step (the embedding's
 *     gradient is zero through a zero head) and differs after two. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metalearn/meta.h"
#include "ml_test.h"

enum { S = 16, P = S * S, C = 3, B = 6, W = 3, KS = 2, KQ = 3 };

static void tiny_cnn(ml_model *m, uint64_t seed) {
    ml_model_spec spec;
    char err[128];
    CHECK(ml_model_spec_parse("cnn4:2", &spec, err, sizeof err) == ML_OK);
    spec.in_c = 1;
    spec.in_h = spec.in_w = S;
    spec.n_out = 0;
    CHECK(ml_model_init(m, &spec, err, sizeof err) == ML_OK);
    ml_rng r;
    ml_rng_seed(&r, seed);
    ml_model_init_params(m, ML_INIT_TORCH, &r);
}

static void fill(float *x, int n, ml_rng *r) {
    for (int i = 0; i < n; i++) x[i] = (float)ml_rng_uniform(r);
}

/* Features [n, D] of x through theta (batch statistics of x), unrecorded. */
static void features(ml_model *m, float *theta, const float *x, int n, double *out, int64_t *D) {
    ml_ctx *ctx = ml_ctx_create(0);
    ml_ctx_set_recording(ctx, 0);
    ml_tensor *params[ML_MAX_PARAMS];
    ml_model_wrap(ctx, m, theta, params);
    ml_tensor *f = ml_model_forward(ctx, m, params, ml_tensor_wrap(ctx, (float *)x, 2, ML_SHAPE(n, P)), 1, 0);
    CHECK(f != NULL);
    *D = f ? f->shape[1] : 0;
    for (int64_t i = 0; f && i < n * *D; i++) out[i] = f->data[i];
    ml_ctx_destroy(ctx);
}

/* Mean cross-entropy of rows f [n, D] under head w [k, D], b [k]; optional
 * gradients gw, gb; accuracy in *acc. All in double. */
static double softmax_ce(const double *f, int n, int64_t D, const double *w, const double *b, int k,
                         const int32_t *y, double *gw, double *gb, double *acc) {
    double loss = 0, right = 0;
    if (gw) memset(gw, 0, sizeof(double) * (size_t)(k * D));
    if (gb) memset(gb, 0, sizeof(double) * (size_t)k);
    for (int i = 0; i < n; i++) {
        double z[16], mx = -1e300, sum = 0;
        int best = 0;
        for (int c = 0; c < k; c++) {
            z[c] = b[c];
            for (int64_t d = 0; d < D; d++) z[c] += w[c * D + d] * f[i * D + d];
            if (z[c] > mx) mx = z[c];
            if (z[c] > z[best]) best = c;
        }
        for (int c = 0; c < k; c++) sum += exp(z[c] - mx);
        loss += -(z[y[i]] - mx - log(sum)) / n;
        right += best == y[i];
        for (int c = 0; gw && c < k; c++) {
            double g = (exp(z[c] - mx) / sum - (c == y[i])) / n;
            gb[c] += g;
            for (int64_t d = 0; d < D; d++) gw[c * D + d] += g * f[i * D + d];
        }
    }
    if (acc) *acc = right / n;
    return loss;
}

static double pretrain_loss_by_hand(ml_model *m, const float *meta, const float *x, const int32_t *y) {
    static double f[B * 64], w[C * 64], b[C];
    static float theta[4096];
    memcpy(theta, meta, (size_t)m->n_floats * sizeof(float));
    int64_t D;
    features(m, theta, x, B, f, &D);
    for (int64_t i = 0; i < C * D; i++) w[i] = meta[m->n_floats + i];
    for (int c = 0; c < C; c++) b[c] = meta[m->n_floats + C * D + c];
    return softmax_ce(f, B, D, w, b, C, y, NULL, NULL, NULL);
}

static void test_training_gradient_matches_finite_differences(void) {
    ml_model m;
    tiny_cnn(&m, 3);
    ml_meta_config c = {.algo = ML_ALGO_PRETRAIN, .loss = ML_LOSS_CROSS_ENTROPY, .threads = 1, .pretrain_classes = C};
    c.outer = ml_optim_config_default(ML_OPTIM_SGD);
    c.outer.lr = 1e-3;
    ml_meta meta;
    char err[256];
    CHECK(ml_meta_init(&meta, &m, &c, 1, err, sizeof err) == ML_OK);
    CHECK(meta.n_meta == m.n_floats + C * (2 + 1)); /* cnn4:2 on 16x16: 2 features */
    ml_rng r;
    ml_rng_seed(&r, 11);
    static float x[B * P];
    fill(x, B * P, &r);
    int32_t y[B] = {0, 1, 2, 0, 1, 2};
    /* A non-zero head, so the embedding's gradient is not zero. */
    for (int64_t j = meta.n; j < meta.n_meta; j++) meta.meta[j] = (float)(ml_rng_uniform(&r) - 0.5);
    float *start = malloc((size_t)meta.n_meta * sizeof(float));
    memcpy(start, meta.meta, (size_t)meta.n_meta * sizeof(float));
    ml_task_data t = {.n_support = B, .ways = C, .xs = x, .ls = y};
    double loss;
    CHECK(ml_meta_step(&meta, &t, 1, &loss, err, sizeof err) == ML_OK);
    CHECK_NEAR(loss, pretrain_loss_by_hand(&m, start, x, y), 1e-5, 1e-4);
    /* ReLU / max-pool kinks and batch norm over 6 values of a 1x1 map make
     * the loss curve sharply: a coordinate passes when one of three step
     * sizes agrees (the differences converge to the gradient as h shrinks). */
    const float hs[3] = {1e-3f, 1e-4f, 3e-5f};
    double worst = 0;
    int bad = 0;
    for (int64_t j = 0; j < meta.n_meta && !bad; j++) {
        double e = INFINITY, fd = 0;
        for (int k = 0; k < 3 && e > 2e-2; k++) {
            float keep = start[j], h = hs[k];
            start[j] = keep + h;
            double lp = pretrain_loss_by_hand(&m, start, x, y);
            start[j] = keep - h;
            double lm = pretrain_loss_by_hand(&m, start, x, y);
            start[j] = keep;
            fd = (lp - lm) / ((double)(keep + h) - (double)(keep - h));
            double ek = fabs(fd - meta.grad[j]) / (2e-2 + fabs(fd)); /* float32 features: an absolute floor */
            if (ek < e) e = ek;
        }
        if (e > worst) worst = e;
        if (e > 2e-2 && getenv("FD_DEBUG")) {
            for (float h = 1e-2f; h > 1e-5f; h /= 3) {
                float keep = start[j];
                start[j] = keep + h;
                double lp = pretrain_loss_by_hand(&m, start, x, y);
                start[j] = keep - h;
                double lm = pretrain_loss_by_hand(&m, start, x, y);
                start[j] = keep;
                printf("    h %.2e fd %.6g  (lp %.9g lm %.9g)\n", h, (lp - lm) / (2 * h), lp, lm);
            }
        }
        if (e > 2e-2) {
            ML_FAIL_AT("d/dmeta[%lld] = %.6g, finite difference %.6g", (long long)j, meta.grad[j], fd);
            bad = 1;
        }
    }
    /* The whole gradient at once: the derivative along g is |g|^2. */
    double gg = 0;
    for (int64_t j = 0; j < meta.n_meta; j++) gg += (double)meta.grad[j] * meta.grad[j];
    float *moved = malloc((size_t)meta.n_meta * sizeof(float));
    const double eps = 1e-2 / sqrt(gg);
    for (int64_t j = 0; j < meta.n_meta; j++) moved[j] = start[j] + (float)(eps * meta.grad[j]);
    double lp = pretrain_loss_by_hand(&m, moved, x, y);
    for (int64_t j = 0; j < meta.n_meta; j++) moved[j] = start[j] - (float)(eps * meta.grad[j]);
    double lm = pretrain_loss_by_hand(&m, moved, x, y);
    CHECK_NEAR((lp - lm) / (2 * eps), gg, 0, 2e-2);
    free(moved);
    printf("  pretrain: %lld parameters (embedding + %d-class head), worst relative error %.2e\n",
           (long long)meta.n_meta, C, worst);
    free(start);
    ml_meta_free(&meta);
    ml_model_free(&m);
}

/* One synthetic W-way episode: class patterns plus noise. */
static float ep_xs[W * KS * P], ep_xq[W * KQ * P];
static int32_t ep_ls[W * KS], ep_lq[W * KQ];

static ml_task_data make_episode(void) {
    ml_rng r;
    ml_rng_seed(&r, 7);
    static float protos[W][P];
    for (int k = 0; k < W; k++)
        for (int i = 0; i < P; i++) protos[k][i] = (float)(ml_rng_uniform(&r) > 0.6);
    for (int i = 0; i < W * KS; i++) ep_ls[i] = i / KS;
    for (int i = 0; i < W * KQ; i++) ep_lq[i] = i / KQ;
    for (int i = 0; i < W * KS * P; i++) ep_xs[i] = protos[i / (KS * P)][i % P] + 0.3f * (float)ml_rng_normal(&r);
    for (int i = 0; i < W * KQ * P; i++) ep_xq[i] = protos[i / (KQ * P)][i % P] + 0.3f * (float)ml_rng_normal(&r);
    return (ml_task_data){.n_support = W * KS, .n_query = W * KQ, .ways = W, .xs = ep_xs, .xq = ep_xq,
                          .ls = ep_ls, .lq = ep_lq};
}

enum { STEPS = 8 };

static void evaluate(ml_model *m, int finetune_all, int threads, float lr, double *loss, double *acc) {
    ml_meta_config c = {.algo = ML_ALGO_PRETRAIN, .loss = ML_LOSS_CROSS_ENTROPY, .threads = threads,
                        .inner_lr = lr, .finetune_all = finetune_all};
    c.outer = ml_optim_config_default(ML_OPTIM_ADAM);
    c.outer.lr = 1e-3;
    ml_meta meta;
    char err[256];
    CHECK(ml_meta_init(&meta, m, &c, 2, err, sizeof err) == ML_OK);
    CHECK(meta.n_meta == meta.n); /* evaluation only: no training head */
    ml_task_data t[2];
    t[0] = t[1] = make_episode();
    CHECK(ml_meta_evaluate(&meta, t, 2, STEPS, loss, acc, err, sizeof err) == ML_OK);
    /* Both copies of the episode give the same numbers on any worker. */
    for (int s = 0; s <= STEPS; s++) CHECK(loss[s] == loss[STEPS + 1 + s]);
    ml_meta_free(&meta);
}

static void test_evaluation_is_softmax_regression_on_frozen_features(void) {
    ml_model m;
    tiny_cnn(&m, 5);
    const float lr = 0.5f;
    double loss[2 * (STEPS + 1)], acc[2 * (STEPS + 1)];
    evaluate(&m, 0, 1, lr, loss, acc);
    /* By hand: features of the whole episode in one batch, zero head, SGD. */
    ml_task_data t = make_episode();
    static float x[(W * KS + W * KQ) * P];
    memcpy(x, t.xs, sizeof(float) * W * KS * P);
    memcpy(x + W * KS * P, t.xq, sizeof(float) * W * KQ * P);
    static double f[(W * KS + W * KQ) * 64];
    int64_t D;
    features(&m, m.data, x, W * KS + W * KQ, f, &D);
    double w[W * 64] = {0}, b[W] = {0}, gw[W * 64], gb[W], a;
    for (int s = 0; s <= STEPS; s++) {
        double lq = softmax_ce(f + W * KS * D, W * KQ, D, w, b, W, ep_lq, NULL, NULL, &a);
        CHECK_NEAR(loss[s], lq, 1e-5, 1e-4);
        CHECK_NEAR(acc[s], a, 1e-12, 0);
        softmax_ce(f, W * KS, D, w, b, W, ep_ls, gw, gb, NULL);
        for (int64_t i = 0; i < W * D; i++) w[i] -= lr * gw[i];
        for (int c = 0; c < W; c++) b[c] -= lr * gb[c];
    }
    CHECK_NEAR(acc[0], 1.0 / W, 1e-12, 0); /* zero head: every logit equal, label 0 predicted */
    CHECK_NEAR(loss[0], log((double)W), 1e-6, 0);
    double loss2[2 * (STEPS + 1)], acc2[2 * (STEPS + 1)];
    evaluate(&m, 0, 2, lr, loss2, acc2);
    CHECK(memcmp(loss, loss2, sizeof loss) == 0);
    printf("  head only: query loss %.4f -> %.4f, accuracy %.2f -> %.2f in %d steps\n", loss[0], loss[STEPS], acc[0],
           acc[STEPS], STEPS);
    ml_model_free(&m);
}

static void test_finetune_all_moves_the_embedding_from_step_two(void) {
    ml_model m;
    tiny_cnn(&m, 5);
    double head[2 * (STEPS + 1)], all[2 * (STEPS + 1)], acc[2 * (STEPS + 1)];
    evaluate(&m, 0, 1, 0.5f, head, acc);
    evaluate(&m, 1, 1, 0.5f, all, acc);
    CHECK_NEAR(all[0], head[0], 1e-6, 0);
    CHECK_NEAR(all[1], head[1], 1e-5, 1e-5);
    CHECK(fabs(all[STEPS] - head[STEPS]) > 1e-4);
    printf("  query loss after %d steps: head only %.4f, everything %.4f\n", STEPS, head[STEPS], all[STEPS]);
    ml_model_free(&m);
}

static void test_pretrain_setup_errors(void) {
    ml_model m;
    ml_model_spec spec;
    char err[256] = "";
    CHECK(ml_model_spec_parse("cnn4:2", &spec, err, sizeof err) == ML_OK);
    spec.in_c = 1;
    spec.in_h = spec.in_w = S;
    spec.n_out = 5; /* a model with its own head is not an embedding */
    CHECK(ml_model_init(&m, &spec, err, sizeof err) == ML_OK);
    ml_meta_config c = {.algo = ML_ALGO_PRETRAIN, .loss = ML_LOSS_CROSS_ENTROPY, .threads = 1, .pretrain_classes = 4};
    c.outer = ml_optim_config_default(ML_OPTIM_ADAM);
    ml_meta meta;
    CHECK(ml_meta_init(&meta, &m, &c, 1, err, sizeof err) == ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "embedding");
    ml_model_free(&m);
    /* Evaluation-only setup (no head) cannot train. */
    tiny_cnn(&m, 1);
    c.pretrain_classes = 0;
    CHECK(ml_meta_init(&meta, &m, &c, 1, err, sizeof err) == ML_OK);
    static float x[B * P];
    int32_t y[B] = {0};
    ml_task_data t = {.n_support = B, .ways = 1, .xs = x, .ls = y};
    double loss;
    CHECK(ml_meta_step(&meta, &t, 1, &loss, err, sizeof err) != ML_OK);
    CHECK_STR_CONTAINS(err, "no training head");
    CHECK(ml_algo_parse("pretrain", &c.algo) == 0 && c.algo == ML_ALGO_PRETRAIN);
    ml_meta_free(&meta);
    ml_model_free(&m);
}

int main(void) {
    ML_RUN(test_training_gradient_matches_finite_differences);
    ML_RUN(test_evaluation_is_softmax_regression_on_frozen_features);
    ML_RUN(test_finetune_all_moves_the_embedding_from_step_two);
    ML_RUN(test_pretrain_setup_errors);
    return ml_test_summary();
}
