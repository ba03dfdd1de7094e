/* test_threads.c: supervised training (one batch per step, so every thread
 * works inside the batch's kernels) gives byte-identical parameters and
 * batch-norm statistics on 1, 2 and 3 OpenMP threads (issue 17). Batches of
 * 40 images are cut into several backward-weight chunks (conv.c, conv_dnnl.c);
 * cnn4:16 takes oneDNN's primitives after the first layer, cnn4:10 the im2col
 * route everywhere. mlp:64 (50k parameters) is large enough for the step
 * after the batch (rows summed, Adam) to be split over the threads too,
 * with and without gradient clipping (which needs the whole sum first). */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "metalearn/core.h"
#include "metalearn/data.h"
#include "metalearn/nn.h"
#include "metalearn/optim.h"
#include "metalearn/train.h"
#include "ml_test.h"

enum { N = 80, SIDE = 28, CLASSES = 4 };

static void make_data(ml_dataset *d) {
    ml_rng rng;
    ml_rng_seed(&rng, 7);
    d->n = N, d->c = 1, d->h = SIDE, d->w = SIDE, d->n_classes = CLASSES;
    d->x = malloc(sizeof(float) * N * SIDE * SIDE);
    d->y = malloc(sizeof(int32_t) * N);
    for (int i = 0; i < N; i++) {
        d->y[i] = i % CLASSES;
        for (int p = 0; p < SIDE * SIDE; p++) d->x[i * SIDE * SIDE + p] = (float)ml_rng_normal(&rng);
        for (int r = 0; r < 5; r++) /* a bright square whose place is the class */
            for (int c = 0; c < 5; c++) d->x[i * SIDE * SIDE + (4 + r + 14 * (d->y[i] / 2)) * SIDE + 4 + c + 14 * (d->y[i] % 2)] += 3.f;
    }
}

/* Trains a fresh model on `threads` threads; returns parameters then buffers. */
static float *train(const ml_dataset *d, const char *model, float clip, int threads, int64_t *n_out) {
    char err[256] = "";
    ml_model_spec spec;
    ml_model m;
    CHECK(ml_model_spec_parse(model, &spec, err, sizeof err) == ML_OK);
    spec.in_c = 1, spec.in_h = SIDE, spec.in_w = SIDE, spec.n_out = CLASSES;
    CHECK(ml_model_init(&m, &spec, err, sizeof err) == ML_OK);
    ml_rng rng;
    ml_rng_seed(&rng, 3);
    ml_model_init_params(&m, ML_INIT_TORCH, &rng);
    ml_supervised_config cfg = {.epochs = 1, .batch_size = 40, .optim = ml_optim_config_default(ML_OPTIM_ADAM), .seed = 5,
                               .clip_norm = clip, .schedule = ML_SCHED_COSINE};
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    CHECK(ml_supervised_train(&m, d, &cfg, NULL, NULL, err, sizeof err) == ML_OK);
    omp_set_num_threads(saved);
    *n_out = m.n_floats + m.n_buffer_floats;
    float *out = malloc(sizeof(float) * (size_t)*n_out);
    memcpy(out, m.data, sizeof(float) * (size_t)m.n_floats);
    memcpy(out + m.n_floats, m.buffer_data, sizeof(float) * (size_t)m.n_buffer_floats);
    ml_model_free(&m);
    return out;
}

static void check_model(const ml_dataset *d, const char *model, float clip) {
    int64_t n1, n;
    float *one = train(d, model, clip, 1, &n1);
    for (int t = 2; t <= 3; t++) {
        float *other = train(d, model, clip, t, &n);
        if (n != n1 || memcmp(one, other, sizeof(float) * (size_t)n))
            ML_FAIL_AT("%s: 1 and %d threads give different parameters", model, t);
        free(other);
    }
    free(one);
}

static void test_supervised_same_on_any_thread_count(void) {
    ml_dataset d;
    make_data(&d);
    check_model(&d, "cnn4:16", 0);
    check_model(&d, "cnn4:10", 0);
    check_model(&d, "mlp:64", 0);
    check_model(&d, "mlp:64", 0.5f);
    free(d.x), free(d.y);
}

int main(void) {
    ML_RUN(test_supervised_same_on_any_thread_count);
    return ml_test_summary();
}
