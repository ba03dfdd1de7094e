/* test_task_select.c: weighted episode sampling (ml_episode_sample_weighted),
 * the task samplers' weights (task_select.c) and the body-only forward pass
 * (ml_model_features) the similarity ranking embeds with. */
#include <math.h>
#include <string.h>

#include "run/task_select.h"
#include "metalearn/images.h"
#include "metalearn/nn.h"
#include "metalearn/tensor.h"
#include "ml_test.h"

/* A synthetic set: C classes of 6 images of 4x4, image i filled with i. */
#define C 10
#define PER 6
#define SIDE 4
static float g_x[C * PER * SIDE * SIDE];
static int32_t g_y[C * PER];
static int64_t g_start[C + 1];
static const char *g_names[C] = {"c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9"};
static ml_image_set g_set;
static ml_class_ref g_items[C];
static ml_class_list g_list = {C, g_items};

static void make_set(void) {
    for (int i = 0; i < C * PER; i++) {
        for (int p = 0; p < SIDE * SIDE; p++) g_x[i * SIDE * SIDE + p] = (float)i;
        g_y[i] = i / PER;
    }
    for (int c = 0; c <= C; c++) g_start[c] = (int64_t)c * PER;
    for (int c = 0; c < C; c++) g_items[c] = (ml_class_ref){c, c % 4};
    g_set = (ml_image_set){.n = C * PER, .size = SIDE, .x = g_x, .y = g_y, .n_classes = C, .class_start = g_start,
                           .class_names = g_names};
}

static int same_episode(const ml_episode *a, const ml_episode *b) {
    size_t ns = (size_t)a->ways * a->shots, nq = (size_t)a->ways * a->queries, plane = (size_t)a->size * a->size;
    return !memcmp(a->classes, b->classes, sizeof(ml_class_ref) * a->ways) &&
           !memcmp(a->class_index, b->class_index, sizeof(int32_t) * a->ways) &&
           !memcmp(a->support_index, b->support_index, sizeof(int64_t) * ns) &&
           !memcmp(a->query_index, b->query_index, sizeof(int64_t) * nq) &&
           !memcmp(a->xs, b->xs, sizeof(float) * ns * plane) && !memcmp(a->xq, b->xq, sizeof(float) * nq * plane);
}

/* Equal weights (and NULL) take the old uniform draw bit for bit. */
static void test_uniform_weights_reproduce_old_draw(void) {
    ml_episode a, b;
    CHECK_INT_EQ(ml_episode_init(&a, 3, 2, 2, SIDE), ML_OK);
    CHECK_INT_EQ(ml_episode_init(&b, 3, 2, 2, SIDE), ML_OK);
    float w[C];
    for (int i = 0; i < C; i++) w[i] = 0.25f;
    ml_rng r1, r2;
    ml_rng_seed(&r1, 42);
    ml_rng_seed(&r2, 42);
    int same = 1;
    for (int t = 0; t < 200; t++) {
        CHECK_INT_EQ(ml_episode_sample(&a, &g_set, &g_list, NULL, &r1, NULL, 0), ML_OK);
        CHECK_INT_EQ(ml_episode_sample_weighted(&b, &g_set, &g_list, t % 2 ? w : NULL, NULL, &r2, NULL, 0), ML_OK);
        same &= same_episode(&a, &b);
        for (int k = 0; k < 3; k++) same &= a.classes[k].cls == g_items[a.class_index[k]].cls;
    }
    CHECK(same);
    CHECK(!memcmp(&r1, &r2, sizeof r1)); /* the stream stays in step */
    ml_episode_free(&a);
    ml_episode_free(&b);
}

/* One class per draw: frequencies converge to the normalised weights. */
static void test_counts_converge_to_weights(void) {
    float w[C] = {1, 2, 3, 4, 0, 0, 5, 1, 1, 3};
    double sum = 0;
    for (int i = 0; i < C; i++) sum += w[i];
    ml_episode e;
    CHECK_INT_EQ(ml_episode_init(&e, 1, 1, 1, SIDE), ML_OK);
    ml_rng r;
    ml_rng_seed(&r, 7);
    int count[C] = {0}, n = 40000;
    for (int t = 0; t < n; t++) {
        CHECK_INT_EQ(ml_episode_sample_weighted(&e, &g_set, &g_list, w, NULL, &r, NULL, 0), ML_OK);
        count[e.class_index[0]]++;
    }
    for (int i = 0; i < C; i++) CHECK_NEAR((double)count[i] / n, w[i] / sum, 0.008, 0);
    CHECK_INT_EQ(count[4] + count[5], 0); /* zero weight: never drawn */
    ml_episode_free(&e);
}

/* Several classes per episode: distinct, zero weights never drawn, the first
 * draw of an episode follows the weights, and one seed gives one sequence. */
static void test_weighted_without_replacement(void) {
    float w[C] = {8, 1, 1, 1, 0, 1, 1, 1, 1, 0};
    ml_episode e, f;
    CHECK_INT_EQ(ml_episode_init(&e, 4, 1, 1, SIDE), ML_OK);
    CHECK_INT_EQ(ml_episode_init(&f, 4, 1, 1, SIDE), ML_OK);
    ml_rng r, r2;
    ml_rng_seed(&r, 3);
    ml_rng_seed(&r2, 3);
    int distinct = 1, zero = 0, first0 = 0, any0 = 0, same = 1, n = 20000;
    for (int t = 0; t < n; t++) {
        CHECK_INT_EQ(ml_episode_sample_weighted(&e, &g_set, &g_list, w, NULL, &r, NULL, 0), ML_OK);
        if (t < 100) {
            CHECK_INT_EQ(ml_episode_sample_weighted(&f, &g_set, &g_list, w, NULL, &r2, NULL, 0), ML_OK);
            same &= same_episode(&e, &f);
        }
        for (int k = 0; k < 4; k++) {
            for (int j = 0; j < k; j++) distinct &= e.class_index[j] != e.class_index[k];
            zero += w[e.class_index[k]] == 0;
            any0 += e.class_index[k] == 0;
        }
        first0 += e.class_index[0] == 0;
    }
    CHECK(distinct);
    CHECK(same);
    CHECK_INT_EQ(zero, 0);
    CHECK_NEAR((double)first0 / n, 8.0 / 15.0, 0.015, 0);
    /* P(class 0 in the episode) = 1 - P(never drawn in 4 draws) > 0.9 here. */
    CHECK((double)any0 / n > 0.9);
    ml_episode_free(&e);
    ml_episode_free(&f);
}

static void test_bad_weights(void) {
    ml_episode e;
    CHECK_INT_EQ(ml_episode_init(&e, 3, 1, 1, SIDE), ML_OK);
    ml_rng r;
    ml_rng_seed(&r, 1);
    char err[256];
    float w[C];
    for (int i = 0; i < C; i++) w[i] = 1;
    w[2] = -1;
    CHECK_INT_EQ(ml_episode_sample_weighted(&e, &g_set, &g_list, w, NULL, &r, err, sizeof err), ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "weight 2");
    w[2] = NAN;
    CHECK_INT_EQ(ml_episode_sample_weighted(&e, &g_set, &g_list, w, NULL, &r, err, sizeof err), ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "finite");
    for (int i = 0; i < C; i++) w[i] = i < 2 ? 1.0f : 0.0f;
    CHECK_INT_EQ(ml_episode_sample_weighted(&e, &g_set, &g_list, w, NULL, &r, err, sizeof err), ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "only 2 classes have a positive weight");
    ml_episode_free(&e);
}

static void test_similar_weights(void) {
    float score[6] = {5, 1, 3, 1, 9, 2}, w[6];
    task_select_similar_weights(score, 6, 2, 0.6f, w);
    /* The two nearest: classes 1 and 3 (tied, both in). */
    double base = 0.4 / 6, top = 0.3 + base, sum = 0;
    for (int i = 0; i < 6; i++) {
        CHECK_NEAR(w[i], i == 1 || i == 3 ? top : base, 1e-6, 0);
        sum += w[i];
    }
    CHECK_NEAR(sum, 1.0, 1e-6, 0);
    /* A tie at the border goes to the lower index. */
    float tie[4] = {2, 1, 2, 2};
    task_select_similar_weights(tie, 4, 2, 1.0f, w);
    CHECK(w[0] > 0 && w[1] > 0 && w[2] == 0 && w[3] == 0);
    /* prob 0: uniform. */
    task_select_similar_weights(score, 6, 2, 0.0f, w);
    for (int i = 0; i < 6; i++) CHECK_NEAR(w[i], 1.0 / 6, 1e-7, 0);
}

static void test_curriculum_weights(void) {
    float ema[4] = {0.5f, 2.0f, 0, 1.0f}, seen[4] = {1, 1, 0, 1}, w[4];
    float none[4] = {0};
    task_select_curriculum_weights(ema, none, 4, 2.0f, 0.0, w);
    for (int i = 0; i < 4; i++) CHECK_INT_EQ(w[i] == 1.0f, 1); /* nothing seen: uniform */
    task_select_curriculum_weights(ema, seen, 4, 2.0f, 0.0, w);
    CHECK(w[0] > w[3] && w[3] > w[1]); /* start: easy first */
    CHECK_NEAR(w[2], exp(-2.0 * ((7.0 / 6 - 7.0 / 6))), 1e-6, 0); /* unseen = the mean: z = 0 */
    task_select_curriculum_weights(ema, seen, 4, 2.0f, 1.0, w);
    CHECK(w[1] > w[3] && w[3] > w[0]); /* end: hard first */
    task_select_curriculum_weights(ema, seen, 4, 2.0f, 0.5, w);
    for (int i = 0; i < 4; i++) CHECK_NEAR(w[i], 1.0, 1e-6, 0); /* halfway: uniform */
}

static void test_record_running_loss(void) {
    task_selector t;
    CHECK_INT_EQ(task_select_init(&t, TASK_SAMPLER_CURRICULUM, C), 0);
    ml_episode e[2];
    CHECK_INT_EQ(ml_episode_init(&e[0], 2, 1, 1, SIDE), ML_OK);
    CHECK_INT_EQ(ml_episode_init(&e[1], 2, 1, 1, SIDE), ML_OK);
    e[0].class_index[0] = 3, e[0].class_index[1] = 5;
    e[1].class_index[0] = 5, e[1].class_index[1] = 1;
    double loss[2] = {2.0, 1.0};
    task_select_record(&t, e, loss, 2);
    CHECK_NEAR(t.ema[3], 2.0, 1e-7, 0);
    CHECK_NEAR(t.ema[5], (1 - TASK_SELECT_EMA) * 2.0 + TASK_SELECT_EMA * 1.0, 1e-6, 0);
    CHECK_NEAR(t.ema[1], 1.0, 1e-7, 0);
    CHECK(t.seen[3] == 1 && t.seen[0] == 0);
    ml_st_tensor ts[3];
    CHECK_INT_EQ(task_select_save(&t, ts), 2);
    CHECK_STR_CONTAINS(ts[0].name, "task_sampler.ema");
    task_select_free(&t);
    ml_episode_free(&e[0]);
    ml_episode_free(&e[1]);
}

/* The body alone, then the head, gives the model's output. */
static void test_model_features(void) {
    ml_model_spec spec;
    char err[256];
    CHECK_INT_EQ(ml_model_spec_parse("cnn4:8", &spec, err, sizeof err), ML_OK);
    spec.in_c = 1, spec.in_h = spec.in_w = 28, spec.n_out = 5;
    ml_model m;
    CHECK_INT_EQ(ml_model_init(&m, &spec, err, sizeof err), ML_OK);
    ml_rng r;
    ml_rng_seed(&r, 5);
    ml_model_init_params(&m, ML_INIT_TORCH, &r);
    ml_ctx *ctx = ml_ctx_create(0);
    float x[6 * 28 * 28];
    for (int i = 0; i < 6 * 28 * 28; i++) x[i] = (float)ml_rng_uniform(&r);
    ml_tensor *p[ML_MAX_PARAMS];
    ml_model_wrap(ctx, &m, m.data, p);
    ml_tensor *xt = ml_tensor_wrap(ctx, x, 4, ML_SHAPE(6, 1, 28, 28));
    ml_tensor *f = ml_model_features(ctx, &m, p, xt, 1, 0), *y = ml_model_forward(ctx, &m, p, xt, 1, 0);
    ml_tensor *y2 = ml_linear(ctx, f, p[m.n_params - 2], p[m.n_params - 1]);
    CHECK(f && y && y2);
    if (f && y && y2) {
        CHECK_INT_EQ(f->shape[0], 6);
        CHECK_INT_EQ(f->numel, 6 * 8); /* 28 -> 14 -> 7 -> 3 -> 1, 8 filters */
        CHECK_INT_EQ(y->numel, 6 * 5);
        double maxd = 0;
        for (int i = 0; i < 30; i++) maxd = fmax(maxd, fabs(y->data[i] - y2->data[i]));
        CHECK_NEAR(maxd, 0, 1e-6, 0);
    }
    ml_ctx_destroy(ctx);
    ml_model_free(&m);
}

int main(void) {
    make_set();
    ML_RUN(test_uniform_weights_reproduce_old_draw);
    ML_RUN(test_counts_converge_to_weights);
    ML_RUN(test_weighted_without_replacement);
    ML_RUN(test_bad_weights);
    ML_RUN(test_similar_weights);
    ML_RUN(test_curriculum_weights);
    ML_RUN(test_record_running_loss);
    ML_RUN(test_model_features);
    return ml_test_summary();
}
