/* test_metrics.c: confusion matrix metrics against hand-computed values,
 * sklearn's zero-division conventions, JSON/table output, and the CI. */
#include "metalearn/eval.h"
#include "ml_test.h"

/* truth 0,0,0,1,1,2,2 vs pred 0,0,1,1,0,0,1: class 2 is never predicted.
 *            pred0 pred1 pred2
 *   truth0     2     1     0
 *   truth1     1     1     0
 *   truth2     1     1     0
 * precision = 2/4, 1/3, 0 (zero division -> 0); recall = 2/3, 1/2, 0;
 * f1 = 4/7, 2/5, 0; accuracy = 3/7. */
static const int32_t T[] = {0, 0, 0, 1, 1, 2, 2};
static const int32_t P[] = {0, 0, 1, 1, 0, 0, 1};

static void check_hand_example(const ml_confusion *c) {
    CHECK_INT_EQ(c->total, 7);
    CHECK_INT_EQ(c->m[0 * c->n_classes + 0], 2);
    CHECK_INT_EQ(c->m[0 * c->n_classes + 1], 1);
    CHECK_INT_EQ(c->m[1 * c->n_classes + 0], 1);
    CHECK_INT_EQ(c->m[2 * c->n_classes + 1], 1);
    CHECK_INT_EQ(c->m[2 * c->n_classes + 2], 0);
    CHECK_NEAR(ml_confusion_accuracy(c), 3.0 / 7, 1e-12, 0);
    CHECK_NEAR(ml_confusion_precision(c, 0), 0.5, 1e-12, 0);
    CHECK_NEAR(ml_confusion_precision(c, 1), 1.0 / 3, 1e-12, 0);
    CHECK_NEAR(ml_confusion_precision(c, 2), 0.0, 0, 0);
    CHECK_NEAR(ml_confusion_recall(c, 0), 2.0 / 3, 1e-12, 0);
    CHECK_NEAR(ml_confusion_recall(c, 1), 0.5, 1e-12, 0);
    CHECK_NEAR(ml_confusion_recall(c, 2), 0.0, 0, 0);
    CHECK_NEAR(ml_confusion_f1(c, 0), 4.0 / 7, 1e-12, 0);
    CHECK_NEAR(ml_confusion_f1(c, 1), 0.4, 1e-12, 0);
    CHECK_NEAR(ml_confusion_f1(c, 2), 0.0, 0, 0);
    CHECK_INT_EQ(ml_confusion_support(c, 0), 3);
    CHECK_INT_EQ(ml_confusion_support(c, 2), 2);
    CHECK_NEAR(ml_confusion_macro_precision(c), (0.5 + 1.0 / 3) / 3, 1e-12, 0);
    CHECK_NEAR(ml_confusion_macro_recall(c), (2.0 / 3 + 0.5) / 3, 1e-12, 0);
    CHECK_NEAR(ml_confusion_macro_f1(c), (4.0 / 7 + 0.4) / 3, 1e-12, 0);
}

static void test_hand_computed(void) {
    ml_confusion c;
    CHECK_INT_EQ(ml_confusion_init(&c, 3), ML_OK);
    for (int i = 0; i < 7; i++) CHECK_INT_EQ(ml_confusion_add(&c, T[i], P[i]), ML_OK);
    check_hand_example(&c);
    ml_confusion_reset(&c);
    CHECK_INT_EQ(c.total, 0);
    CHECK_NEAR(ml_confusion_accuracy(&c), 0.0, 0, 0);
    CHECK_INT_EQ(ml_confusion_add_batch(&c, T, P, 7), ML_OK);
    check_hand_example(&c);
    ml_confusion_free(&c);
    ml_confusion_free(&c); /* zeroed: harmless */
}

/* A label slot that occurs in neither truth nor predictions (an unused way
 * of an episode) is left out of macro averages, as sklearn's labels=None. */
static void test_absent_class_excluded(void) {
    ml_confusion c;
    CHECK_INT_EQ(ml_confusion_init(&c, 5), ML_OK);
    CHECK_INT_EQ(ml_confusion_add_batch(&c, T, P, 7), ML_OK);
    check_hand_example(&c);
    CHECK_NEAR(ml_confusion_precision(&c, 4), 0.0, 0, 0);
    ml_confusion_free(&c);
}

static void test_perfect_and_all_wrong(void) {
    ml_confusion c;
    CHECK_INT_EQ(ml_confusion_init(&c, 2), ML_OK);
    ml_confusion_add(&c, 0, 0);
    ml_confusion_add(&c, 1, 1);
    CHECK_NEAR(ml_confusion_accuracy(&c), 1.0, 0, 0);
    CHECK_NEAR(ml_confusion_macro_f1(&c), 1.0, 0, 0);
    ml_confusion_reset(&c);
    ml_confusion_add(&c, 0, 1);
    ml_confusion_add(&c, 1, 0);
    CHECK_NEAR(ml_confusion_accuracy(&c), 0.0, 0, 0);
    CHECK_NEAR(ml_confusion_macro_f1(&c), 0.0, 0, 0);
    ml_confusion_free(&c);
}

static void test_bad_args(void) {
    ml_confusion c;
    CHECK_INT_EQ(ml_confusion_init(&c, 0), ML_ERR_ARG);
    CHECK_INT_EQ(ml_confusion_init(&c, 3), ML_OK);
    CHECK_INT_EQ(ml_confusion_add(&c, 3, 0), ML_ERR_ARG);
    CHECK_INT_EQ(ml_confusion_add(&c, 0, -1), ML_ERR_ARG);
    int32_t t[] = {0, 1, 7}, p[] = {0, 1, 2};
    CHECK_INT_EQ(ml_confusion_add_batch(&c, t, p, 3), ML_ERR_ARG);
    CHECK_INT_EQ(c.total, 0); /* all-or-nothing */
    CHECK_NEAR(ml_confusion_precision(&c, 9), 0.0, 0, 0);
    ml_confusion other;
    CHECK_INT_EQ(ml_confusion_init(&other, 2), ML_OK);
    CHECK_INT_EQ(ml_confusion_merge(&c, &other), ML_ERR_ARG);
    ml_confusion_free(&other);
    ml_confusion_free(&c);

    ml_alloc_fail_after(1);
    CHECK_INT_EQ(ml_confusion_init(&c, 3), ML_ERR_NOMEM);
    ml_alloc_fail_after(0);
    CHECK(c.m == NULL);
}

static void test_merge(void) {
    ml_confusion a, b;
    CHECK_INT_EQ(ml_confusion_init(&a, 3), ML_OK);
    CHECK_INT_EQ(ml_confusion_init(&b, 3), ML_OK);
    ml_confusion_add_batch(&a, T, P, 4);
    ml_confusion_add_batch(&b, T + 4, P + 4, 3);
    CHECK_INT_EQ(ml_confusion_merge(&a, &b), ML_OK);
    check_hand_example(&a);
    ml_confusion_free(&a);
    ml_confusion_free(&b);
}

static void test_json_and_table(void) {
    ml_confusion c;
    CHECK_INT_EQ(ml_confusion_init(&c, 3), ML_OK);
    ml_confusion_add_batch(&c, T, P, 7);
    char buf[1024];
    size_t need = ml_confusion_to_json(&c, buf, sizeof buf);
    CHECK(need < sizeof buf);
    CHECK_INT_EQ(strlen(buf), need);
    CHECK_STR_CONTAINS(buf, "{\"n\":7,\"accuracy\":0.428571429,");
    CHECK_STR_CONTAINS(buf, "\"precision\":[0.5,0.333333333,0]");
    CHECK_STR_CONTAINS(buf, "\"support\":[3,2,2]");
    CHECK_STR_CONTAINS(buf, "\"confusion\":[[2,1,0],[1,1,0],[1,1,0]]}");
    char small[10];
    CHECK_INT_EQ(ml_confusion_to_json(&c, small, sizeof small), need); /* truncated, counted */
    CHECK_INT_EQ(strlen(small), sizeof small - 1);
    CHECK_INT_EQ(ml_confusion_to_json(&c, NULL, 0), need);

    FILE *f = tmpfile();
    CHECK(f != NULL);
    if (f) {
        const char *names[] = {"cat", "dog", "a-very-long-name"};
        ml_confusion_print(&c, f, names);
        rewind(f);
        char text[2048];
        size_t len = fread(text, 1, sizeof text - 1, f);
        text[len] = '\0';
        fclose(f);
        CHECK_STR_CONTAINS(text, "precision");
        CHECK_STR_CONTAINS(text, "a-very-long-name    0.0000    0.0000    0.0000         2");
        CHECK_STR_CONTAINS(text, "accuracy");
        CHECK_STR_CONTAINS(text, "macro avg");
    }
    ml_confusion_free(&c);
}

static void test_mean_ci95(void) {
    /* mean 0.65; sample var = 2*(0.15^2 + 0.05^2)/3 = 0.05/3;
     * half = 1.96 * sqrt(0.05/3) / sqrt(4) */
    const double v[] = {0.5, 0.6, 0.7, 0.8};
    double m, h;
    CHECK_INT_EQ(ml_mean_ci95(v, 4, &m, &h), ML_OK);
    CHECK_NEAR(m, 0.65, 1e-15, 0);
    CHECK_NEAR(h, 1.96 * sqrt(0.05 / 3) / 2, 1e-15, 0);
    CHECK_NEAR(h, 0.126517456, 1e-9, 0); /* python: 1.96*statistics.stdev(v)/2 */

    /* Over 4 distinct units, Student's t with 3 degrees of freedom (3.182). */
    CHECK_INT_EQ(ml_mean_ci95_t(v, 4, &m, &h), ML_OK);
    CHECK_NEAR(h, 3.182 * sqrt(0.05 / 3) / 2, 1e-12, 0);

    CHECK_INT_EQ(ml_mean_ci95(v, 1, &m, &h), ML_OK);
    CHECK_NEAR(m, 0.5, 0, 0);
    CHECK_NEAR(h, 0.0, 0, 0);
    CHECK_INT_EQ(ml_mean_ci95(v, 0, &m, &h), ML_ERR_ARG);
    CHECK_INT_EQ(ml_mean_ci95(NULL, 3, &m, &h), ML_ERR_ARG);

    /* Near-constant accuracies: the two-pass std must not cancel to junk. */
    double w[1000];
    for (int i = 0; i < 1000; i++) w[i] = 0.9 + (i % 2 ? 1e-9 : -1e-9);
    CHECK_INT_EQ(ml_mean_ci95(w, 1000, &m, &h), ML_OK);
    CHECK_NEAR(m, 0.9, 1e-13, 0);
    CHECK_NEAR(h, 1.96 * 1e-9 * sqrt(1000.0 / 999) / sqrt(1000.0), 1e-18, 1e-6);

    const double bad[] = {0.5, NAN};
    CHECK_INT_EQ(ml_mean_ci95(bad, 2, &m, &h), ML_ERR_NUMERIC);
}

static void test_modified_hausdorff_distance(void) {
    enum { H = 9, W = 9 };
    uint8_t a[H * W] = {0}, b[H * W] = {0}, c[H * W] = {0}, empty[H * W] = {0};
    a[1 * W + 1] = a[1 * W + 3] = 1;         /* two points 2 apart */
    b[5 * W + 5] = b[5 * W + 7] = 1;         /* the same, shifted: centring removes the shift */
    c[4 * W + 4] = c[4 * W + 6] = c[6 * W + 5] = 1;
    CHECK_NEAR(ml_mhd(a, a, H, W), 0, 1e-12, 0);
    CHECK_NEAR(ml_mhd(a, b, H, W), 0, 1e-12, 0);
    CHECK_NEAR(ml_mhd(a, c, H, W), ml_mhd(c, a, H, W), 1e-12, 0); /* symmetric */
    /* By hand: a centred {(0,-1),(0,1)}; c centred {(-2/3,-1),(-2/3,1),(4/3,0)}.
     * a->c: each point 2/3 from its nearest; c->a: 2/3, 2/3, |(4/3, -1)| = 5/3. */
    CHECK_NEAR(ml_mhd(a, c, H, W), (2.0 / 3 + 2.0 / 3 + 5.0 / 3) / 3, 1e-12, 0);
    CHECK(isinf(ml_mhd(a, empty, H, W)));
    CHECK_NEAR(ml_mhd(empty, empty, H, W), 0, 0, 0);
    float x[3] = {1, 2, 3}, y[3] = {1, 0, 5};
    CHECK_NEAR(ml_pixel_distance(x, y, 3), 8, 0, 0);
}

int main(void) {
    ML_RUN(test_modified_hausdorff_distance);
    ML_RUN(test_hand_computed);
    ML_RUN(test_absent_class_excluded);
    ML_RUN(test_perfect_and_all_wrong);
    ML_RUN(test_bad_args);
    ML_RUN(test_merge);
    ML_RUN(test_json_and_table);
    ML_RUN(test_mean_ci95);
    return ml_test_summary();
}
