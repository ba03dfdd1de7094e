/* test_supervised.c: supervised training with gradient shards (no MPI
 * needed): one shard is the plain minibatch step of before (a naive twin of
 * the old loop), G shards give the same bits on 1, 2 or 3 threads, shards
 * without batch norm give the minibatch gradient up to rounding, resume is
 * bit-exact, and impossible shard counts are refused. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "metalearn/train.h"
#include "ml_test.h"

/* n images of 1x16x16 in 4 classes: class k brightens quadrant k, plus noise. */
static void make_data(ml_dataset *d, int64_t n) {
    d->n = n, d->c = 1, d->h = 16, d->w = 16, d->n_classes = 4;
    d->x = ml_malloc((size_t)(n * 256) * sizeof(float));
    d->y = ml_malloc((size_t)n * sizeof(int32_t));
    ml_rng rng;
    ml_rng_seed(&rng, 7);
    for (int64_t i = 0; i < n; i++) {
        int k = (int)(i % 4);
        d->y[i] = k;
        for (int p = 0; p < 256; p++) {
            int r = p / 16, c = p % 16, q = (r >= 8) * 2 + (c >= 8);
            d->x[i * 256 + p] = (float)ml_rng_normal(&rng) * 0.5f + (q == k ? 1.5f : 0.0f);
        }
    }
}

static void make_model(ml_model *m, const char *spec_text) {
    ml_model_spec spec;
    char err[256];
    CHECK(ml_model_spec_parse(spec_text, &spec, err, sizeof err) == ML_OK);
    spec.in_c = 1, spec.in_h = 16, spec.in_w = 16, spec.n_out = 4;
    if (ml_model_init(m, &spec, err, sizeof err) != ML_OK) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    ml_rng rng;
    ml_rng_seed(&rng, 3);
    ml_model_init_params(m, ML_INIT_TORCH, &rng);
}

static ml_supervised_config config(int epochs, int shards, int threads) {
    ml_supervised_config cfg = {.epochs = epochs, .batch_size = 16, .optim = ml_optim_config_default(ML_OPTIM_SGD),
                                .schedule = ML_SCHED_CONSTANT, .clip_norm = 0, .seed = 11, .shards = shards,
                                .threads = threads};
    cfg.optim.lr = 0.05;
    cfg.optim.momentum = 0.9;
    return cfg;
}

static int same_model(const ml_model *a, const ml_model *b) {
    return !memcmp(a->data, b->data, (size_t)a->n_floats * sizeof(float)) &&
           !memcmp(a->buffer_data, b->buffer_data, (size_t)a->n_buffer_floats * sizeof(float));
}

/* The training loop before shards, step for step (the naive twin of G = 1). */
static void train_before_shards(ml_model *m, const ml_dataset *d, const ml_supervised_config *cfg) {
    int64_t per = 256, bs = cfg->batch_size, steps = d->n / bs;
    ml_ctx *ctx = ml_ctx_create((size_t)16 << 20);
    float *grad = ml_calloc((size_t)m->n_floats, sizeof(float)), *bx = ml_malloc((size_t)(bs * per) * sizeof(float));
    int32_t *by = ml_malloc((size_t)bs * sizeof(int32_t)), *order = ml_malloc((size_t)d->n * sizeof(int32_t));
    ml_tensor *params[ML_MAX_PARAMS], *grads[ML_MAX_PARAMS];
    ml_optim opt = {0};
    ml_ctx_set_consume(ctx, 1);
    CHECK(ml_optim_init(&opt, &cfg->optim, m->n_floats) == ML_OK);
    ml_rng rng;
    ml_rng_seed(&rng, cfg->seed);
    for (int64_t i = 0; i < d->n; i++) order[i] = (int32_t)i;
    for (int e = 0; e < cfg->epochs; e++) {
        ml_rng_shuffle_i32(&rng, order, d->n);
        for (int64_t s = 0; s < steps; s++) {
            for (int64_t i = 0; i < bs; i++) {
                memcpy(bx + i * per, d->x + order[s * bs + i] * per, (size_t)per * sizeof(float));
                by[i] = d->y[order[s * bs + i]];
            }
            ml_ctx_reset(ctx);
            ml_tensor *x = ml_tensor_wrap(ctx, bx, 4, ML_SHAPE(bs, 1, 16, 16));
            ml_model_wrap(ctx, m, m->data, params);
            ml_tensor *loss = ml_cross_entropy(ctx, ml_model_forward(ctx, m, params, x, 1, 1), by);
            CHECK(ml_grad(ctx, loss, params, m->n_params, 0, grads) == ML_OK);
            for (int i = 0; i < m->n_params; i++)
                memcpy(grad + m->params[i].offset, grads[i]->data, (size_t)m->params[i].numel * sizeof(float));
            ml_optim_step(&opt, m->data, grad, cfg->optim.lr);
        }
    }
    ml_optim_free(&opt);
    ml_free(order), ml_free(by), ml_free(bx), ml_free(grad);
    ml_ctx_destroy(ctx);
}

static void test_one_shard_is_the_minibatch_step(void) {
    ml_dataset d;
    make_data(&d, 96);
    const char *specs[] = {"cnn4:4", "mlp:16"};
    for (int k = 0; k < 2; k++) {
        ml_model a = {0}, b = {0};
        make_model(&a, specs[k]);
        make_model(&b, specs[k]);
        ml_supervised_config cfg = config(2, 1, 2);
        char err[256];
        CHECK(ml_supervised_train(&a, &d, &cfg, NULL, NULL, err, sizeof err) == ML_OK);
        train_before_shards(&b, &d, &cfg);
        CHECK(same_model(&a, &b));
        ml_model_free(&a);
        ml_model_free(&b);
    }
    ml_dataset_free(&d);
}

static void test_shards_same_bits_on_any_threads(void) {
    ml_dataset d;
    make_data(&d, 96);
    ml_model ref = {0};
    make_model(&ref, "cnn4:4");
    ml_supervised_config cfg = config(2, 4, 1);
    char err[256];
    CHECK(ml_supervised_train(&ref, &d, &cfg, NULL, NULL, err, sizeof err) == ML_OK);
    for (int t = 2; t <= 3; t++) {
        ml_model m = {0};
        make_model(&m, "cnn4:4");
        cfg.threads = t;
        CHECK(ml_supervised_train(&m, &d, &cfg, NULL, NULL, err, sizeof err) == ML_OK);
        CHECK(same_model(&ref, &m));
        ml_model_free(&m);
    }
    /* Batch norm per shard: 4 shards train another model than one minibatch. */
    ml_model one = {0};
    make_model(&one, "cnn4:4");
    cfg.shards = 1;
    CHECK(ml_supervised_train(&one, &d, &cfg, NULL, NULL, err, sizeof err) == ML_OK);
    CHECK(!same_model(&ref, &one));
    ml_model_free(&one);
    ml_model_free(&ref);
    ml_dataset_free(&d);
}

/* Without batch norm the shards' weighted sum is the minibatch gradient:
 * one step with 3 unequal shards (16 = 5 + 5 + 6) lands where one shard does,
 * up to rounding. */
static void test_shards_weighted_by_size(void) {
    ml_dataset d;
    make_data(&d, 16);
    ml_model a = {0}, b = {0};
    make_model(&a, "mlp:16");
    make_model(&b, "mlp:16");
    ml_supervised_config cfg = config(1, 1, 1);
    char err[256];
    CHECK(ml_supervised_train(&a, &d, &cfg, NULL, NULL, err, sizeof err) == ML_OK);
    cfg.shards = 3;
    CHECK(ml_supervised_train(&b, &d, &cfg, NULL, NULL, err, sizeof err) == ML_OK);
    double worst = 0;
    for (int64_t i = 0; i < a.n_floats; i++) worst = fmax(worst, fabs((double)a.data[i] - b.data[i]));
    CHECK_NEAR(worst, 0.0, 1e-6, 0);
    ml_model_free(&a);
    ml_model_free(&b);
    ml_dataset_free(&d);
}

static void test_resume_is_bit_exact(void) {
    ml_dataset d;
    make_data(&d, 64);
    char path[512];
    snprintf(path, sizeof path, "%s/test_supervised_%d.safetensors", ml_test_tmp_dir(), (int)getpid());
    ml_model full = {0}, part = {0};
    make_model(&full, "cnn4:4");
    make_model(&part, "cnn4:4");
    ml_supervised_config cfg = config(3, 2, 2);
    char err[256];
    CHECK(ml_supervised_train(&full, &d, &cfg, NULL, NULL, err, sizeof err) == ML_OK);
    cfg.epochs = 1;
    cfg.checkpoint = path;
    CHECK(ml_supervised_train(&part, &d, &cfg, NULL, NULL, err, sizeof err) == ML_OK);
    ml_model_free(&part);
    make_model(&part, "cnn4:4"); /* a fresh process: everything comes from the checkpoint */
    cfg.epochs = 3;
    cfg.resume = 1;
    cfg.threads = 1;
    CHECK(ml_supervised_train(&part, &d, &cfg, NULL, NULL, err, sizeof err) == ML_OK);
    CHECK(same_model(&full, &part));
    /* A stop mid-epoch (after the first step of epoch 2: the flag is checked
     * after every step), then a resume: the same bits again. */
    ml_model_free(&part);
    make_model(&part, "cnn4:4");
    cfg.resume = 0;
    cfg.epochs = 1;
    CHECK(ml_supervised_train(&part, &d, &cfg, NULL, NULL, err, sizeof err) == ML_OK);
    volatile sig_atomic_t stop = 1;
    cfg.epochs = 3, cfg.resume = 1, cfg.stop = &stop;
    CHECK(ml_supervised_train(&part, &d, &cfg, NULL, NULL, err, sizeof err) == ML_ERR_INTERRUPTED);
    CHECK_STR_CONTAINS(err, "interrupted at epoch 2, step 1 of 4; checkpoint saved");
    ml_model_free(&part);
    make_model(&part, "cnn4:4");
    cfg.stop = NULL;
    CHECK(ml_supervised_train(&part, &d, &cfg, NULL, NULL, err, sizeof err) == ML_OK);
    CHECK(same_model(&full, &part));
    cfg.shards = 4; /* the shards decide the result: another G is refused */
    CHECK(ml_supervised_train(&part, &d, &cfg, NULL, NULL, err, sizeof err) == ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "--shards 2");
    remove(path);
    ml_model_free(&full);
    ml_model_free(&part);
    ml_dataset_free(&d);
}

static void test_refuses_tiny_shards(void) {
    ml_supervised_config cfg = config(1, 9, 1);
    char err[256] = "";
    CHECK(ml_supervised_check(&cfg, 100, err, sizeof err) == ML_ERR_ARG);
    CHECK_STR_CONTAINS(err, "--shards 9 with a minibatch of 16");
    cfg.shards = 8;
    CHECK(ml_supervised_check(&cfg, 100, err, sizeof err) == ML_OK);
    CHECK(ml_supervised_check(&cfg, 10, err, sizeof err) == ML_ERR_ARG); /* a minibatch of 10: 5 shards at most */
}

int main(void) {
    ML_RUN(test_one_shard_is_the_minibatch_step);
    ML_RUN(test_shards_same_bits_on_any_threads);
    ML_RUN(test_shards_weighted_by_size);
    ML_RUN(test_resume_is_bit_exact);
    ML_RUN(test_refuses_tiny_shards);
    return ml_test_summary();
}
