/* test_image_sources.c: a labelled dataset (IDX) as a few-shot image set:
 * one class per label, stable order inside a class, area resize, names, and
 * the errors (a label without images, colour, bad labels). */
#include <string.h>

#include "metalearn/images.h"
#include "ml_test.h"

enum { N = 7, H = 4 };

static float xbuf[N * H * H];
static int32_t ybuf[N] = {2, 0, 1, 2, 0, 2, 1};

static ml_dataset make(void) {
    for (int i = 0; i < N; i++)
        for (int p = 0; p < H * H; p++) xbuf[i * H * H + p] = (float)i + (p % 2 ? 0.5f : 0.0f);
    return (ml_dataset){.n = N, .c = 1, .h = H, .w = H, .x = xbuf, .y = ybuf, .n_classes = 3};
}

static void test_classes_follow_labels_in_dataset_order(void) {
    ml_dataset d = make();
    ml_image_set s;
    char err[256];
    ml_image_options opt = {.size = H};
    CHECK(ml_image_set_from_dataset(&d, "t", &opt, &s, err, sizeof err) == ML_OK);
    CHECK_INT_EQ(s.n_classes, 3);
    CHECK_INT_EQ(s.n_alphabets, 1);
    CHECK(s.labelled == 1 && s.size == H && s.n == N);
    const int64_t starts[4] = {0, 2, 4, 7};
    for (int k = 0; k <= 3; k++) CHECK(s.class_start[k] == starts[k]);
    /* label 2 held images 0, 3, 5 (in that order); same pixels. */
    const int order[N] = {1, 4, 2, 6, 0, 3, 5};
    for (int i = 0; i < N; i++) {
        CHECK(s.x[i * H * H] == (float)order[i] && s.x[i * H * H + 1] == (float)order[i] + 0.5f);
        CHECK_INT_EQ(s.y[i], ybuf[order[i]]);
    }
    CHECK(!strcmp(s.class_names[2], "2"));
    CHECK(!strcmp(s.image_names[4], "t#0"));
    ml_image_set_free(&s);
}

static void test_resize_keeps_the_mean(void) {
    ml_dataset d = make();
    ml_image_set s;
    char err[256];
    ml_image_options opt = {.size = 2};
    CHECK(ml_image_set_from_dataset(&d, "t", &opt, &s, err, sizeof err) == ML_OK);
    CHECK(s.size == 2);
    /* Image 1 (first of class 0): columns alternate 1 and 1.5 -> every 2x2 area averages 1.25. */
    for (int p = 0; p < 4; p++) CHECK_NEAR(s.x[p], 1.25, 1e-6, 0);
    ml_image_set_free(&s);
}

static void test_bad_datasets_are_errors(void) {
    ml_dataset d = make();
    ml_image_set s;
    char err[256] = "";
    d.n_classes = 4; /* label 3 has no image */
    CHECK(ml_image_set_from_dataset(&d, "fm", NULL, &s, err, sizeof err) == ML_ERR_FORMAT);
    CHECK_STR_CONTAINS(err, "fm: label 3 has no image");
    CHECK(s.x == NULL && s.n == 0); /* zeroed on failure */
    d = make();
    d.c = 3;
    CHECK(ml_image_set_from_dataset(&d, "rgb", NULL, &s, err, sizeof err) == ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "channels");
    d = make();
    int32_t bad[N] = {0, 1, 2, 5, 0, 1, 2};
    d.y = bad;
    CHECK(ml_image_set_from_dataset(&d, "lbl", NULL, &s, err, sizeof err) == ML_ERR_FORMAT);
    CHECK_STR_CONTAINS(err, "label 5");
    ml_image_set_free(&s);
}

/* ml_episode_check: too few classes, too few images, an empty class. */
static void test_episode_check(void) {
    int64_t starts[4] = {0, 3, 5, 5};
    const char *names[3] = {"c0", "c1", "c2"};
    ml_image_set s = {.n = 5, .size = 2, .n_classes = 3, .class_start = starts, .class_names = names};
    ml_class_list two = {2, (ml_class_ref[]){{0, 0}, {1, 0}}}, three = {3, (ml_class_ref[]){{0, 0}, {1, 0}, {2, 0}}};
    char err[256];
    CHECK_INT_EQ(ml_episode_check(&s, &two, 2, 2, err, sizeof err), ML_OK);
    CHECK_INT_EQ(ml_episode_check(&s, &two, 3, 1, err, sizeof err), ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "only 2 classes, 3 needed");
    CHECK_INT_EQ(ml_episode_check(&s, &two, 2, 3, err, sizeof err), ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "class c1 has 2 images, needs 3");
    CHECK_INT_EQ(ml_episode_check(&s, &three, 2, 1, err, sizeof err), ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "class c2 is empty");
}

int main(void) {
    ML_RUN(test_classes_follow_labels_in_dataset_order);
    ML_RUN(test_resize_keeps_the_mean);
    ML_RUN(test_bad_datasets_are_errors);
    ML_RUN(test_episode_check);
    return ml_test_summary();
}
