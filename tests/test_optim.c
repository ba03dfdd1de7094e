/* test_optim.c: optimizers, schedules and clipping against hand arithmetic
 * and against PyTorch 1.13 trajectories (tests/optim_reference.py). */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "metalearn/core.h"
#include "metalearn/optim.h"
#include "ml_test.h"

/* Optimizer state is float32, so expected values computed in double agree to
 * float rounding (~6e-8 relative per operation); 1e-6 leaves room for a few. */
#define RTOL 1e-6
#define ATOL 1e-7

#define CHECK3(got, e0, e1, e2)                   \
    do {                                          \
        CHECK_NEAR((got)[0], (e0), ATOL, RTOL);   \
        CHECK_NEAR((got)[1], (e1), ATOL, RTOL);   \
        CHECK_NEAR((got)[2], (e2), ATOL, RTOL);   \
    } while (0)

/* Hand-checked cases share a start point and two gradients (not functions of
 * the parameters, so only weight decay couples them). */
static const float P0[3] = {1.0f, -2.0f, 0.5f};
static const float G1[3] = {0.5f, -1.0f, 2.0f};
static const float G2[3] = {1.0f, 0.5f, -1.0f};

static void start(ml_optim *o, ml_optim_config c, float *p) {
    CHECK_INT_EQ(ml_optim_init(o, &c, 3), ML_OK);
    memcpy(p, P0, sizeof P0);
}

/* ---- names, defaults, validation ------------------------------------------ */

static void test_kind_names(void) {
    for (int k = 0; k < ML_OPTIM_COUNT; k++) {
        ml_optim_kind got = ML_OPTIM_COUNT;
        CHECK_INT_EQ(ml_optim_kind_parse(ml_optim_kind_name((ml_optim_kind)k), &got), 0);
        CHECK_INT_EQ(got, k);
    }
    ml_optim_kind got;
    CHECK_INT_EQ(ml_optim_kind_parse("adamw", &got), 0);
    CHECK_INT_EQ(got, ML_OPTIM_ADAMW);
    CHECK_INT_EQ(ml_optim_kind_parse("Adam", &got), -1);
    CHECK_INT_EQ(ml_optim_kind_parse("lbfgs", &got), -1);
    CHECK_INT_EQ(ml_optim_kind_parse(NULL, &got), -1);
    CHECK(strcmp(ml_optim_kind_name(ML_OPTIM_COUNT), "?") == 0);

    for (int k = 0; k < ML_SCHED_COUNT; k++) {
        ml_schedule_kind s = ML_SCHED_COUNT;
        CHECK_INT_EQ(ml_schedule_kind_parse(ml_schedule_kind_name((ml_schedule_kind)k), &s), 0);
        CHECK_INT_EQ(s, k);
    }
    ml_schedule_kind s;
    CHECK_INT_EQ(ml_schedule_kind_parse("cosine", &s), 0);
    CHECK_INT_EQ(s, ML_SCHED_COSINE);
    CHECK_INT_EQ(ml_schedule_kind_parse("linear", &s), -1);
}

static void test_defaults(void) {
    ml_optim_config c = ml_optim_config_default(ML_OPTIM_SGD);
    CHECK(c.kind == ML_OPTIM_SGD && c.lr == 0.01 && c.momentum == 0 && c.dampening == 0 &&
          c.weight_decay == 0 && !c.nesterov);
    c = ml_optim_config_default(ML_OPTIM_ADAGRAD);
    CHECK(c.lr == 0.01 && c.eps == 1e-10 && c.lr_decay == 0 && c.initial_accumulator_value == 0);
    c = ml_optim_config_default(ML_OPTIM_RMSPROP);
    CHECK(c.lr == 0.01 && c.alpha == 0.99 && c.eps == 1e-8 && c.momentum == 0 && !c.centered);
    c = ml_optim_config_default(ML_OPTIM_ADAM);
    CHECK(c.lr == 1e-3 && c.beta1 == 0.9 && c.beta2 == 0.999 && c.eps == 1e-8 && c.weight_decay == 0);
    c = ml_optim_config_default(ML_OPTIM_ADAMW);
    CHECK(c.lr == 1e-3 && c.beta1 == 0.9 && c.beta2 == 0.999 && c.eps == 1e-8 && c.weight_decay == 1e-2);
}

static void test_init_rejects_bad_config(void) {
    ml_optim o;
    ml_optim_config c = ml_optim_config_default(ML_OPTIM_SGD);
    c.nesterov = 1; /* torch: nesterov needs momentum ... */
    CHECK_INT_EQ(ml_optim_init(&o, &c, 3), ML_ERR_ARG);
    c.momentum = 0.9;
    c.dampening = 0.1; /* ... and zero dampening */
    CHECK_INT_EQ(ml_optim_init(&o, &c, 3), ML_ERR_ARG);
    c.dampening = 0.0;
    CHECK_INT_EQ(ml_optim_init(&o, &c, 3), ML_OK);
    ml_optim_free(&o);
    ml_optim_free(&o); /* idempotent */

    c = ml_optim_config_default(ML_OPTIM_ADAM);
    c.beta1 = 1.0;
    CHECK_INT_EQ(ml_optim_init(&o, &c, 3), ML_ERR_ARG);
    c = ml_optim_config_default(ML_OPTIM_ADAM);
    c.beta2 = NAN;
    CHECK_INT_EQ(ml_optim_init(&o, &c, 3), ML_ERR_ARG);
    c = ml_optim_config_default(ML_OPTIM_RMSPROP);
    c.eps = -1e-8;
    CHECK_INT_EQ(ml_optim_init(&o, &c, 3), ML_ERR_ARG);
    c = ml_optim_config_default(ML_OPTIM_ADAGRAD);
    c.lr_decay = -0.1;
    CHECK_INT_EQ(ml_optim_init(&o, &c, 3), ML_ERR_ARG);
    c = ml_optim_config_default(ML_OPTIM_SGD);
    c.weight_decay = -1;
    CHECK_INT_EQ(ml_optim_init(&o, &c, 3), ML_ERR_ARG);
    c = ml_optim_config_default(ML_OPTIM_SGD);
    CHECK_INT_EQ(ml_optim_init(&o, &c, -1), ML_ERR_ARG);
    c.kind = ML_OPTIM_COUNT;
    CHECK_INT_EQ(ml_optim_init(&o, &c, 3), ML_ERR_ARG);
    CHECK(o.state0 == NULL && o.state1 == NULL && o.state2 == NULL);
    c = ml_optim_config_default(ML_OPTIM_ADAM);
    CHECK_INT_EQ(ml_optim_init(&o, &c, 0), ML_OK); /* an empty model is not an error */
    ml_optim_step(&o, NULL, NULL, 0.1);
    CHECK_INT_EQ(o.step, 1);
    ml_optim_free(&o);
}

static void test_state_layout(void) {
    struct {
        ml_optim_config c;
        int count;
        const char *names[3];
    } rows[] = {
        {ml_optim_config_default(ML_OPTIM_SGD), 0, {0}},
        {{.kind = ML_OPTIM_SGD, .momentum = 0.9}, 1, {"momentum_buffer"}},
        {ml_optim_config_default(ML_OPTIM_ADAGRAD), 1, {"sum"}},
        {ml_optim_config_default(ML_OPTIM_RMSPROP), 1, {"square_avg"}},
        {{.kind = ML_OPTIM_RMSPROP, .alpha = 0.99, .momentum = 0.5, .centered = 1},
         3, {"square_avg", "momentum_buffer", "grad_avg"}},
        {{.kind = ML_OPTIM_RMSPROP, .alpha = 0.99, .centered = 1}, 2, {"square_avg", "grad_avg"}},
        {ml_optim_config_default(ML_OPTIM_ADAM), 2, {"exp_avg", "exp_avg_sq"}},
        {ml_optim_config_default(ML_OPTIM_ADAMW), 2, {"exp_avg", "exp_avg_sq"}},
    };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        ml_optim o;
        CHECK_INT_EQ(ml_optim_init(&o, &rows[r].c, 5), ML_OK);
        CHECK_INT_EQ(ml_optim_state_count(&o), rows[r].count);
        for (int i = 0; i < rows[r].count; i++) {
            const char *name = NULL;
            float *b = ml_optim_state(&o, i, &name);
            CHECK(b != NULL);
            CHECK(name && strcmp(name, rows[r].names[i]) == 0);
            for (int j = 0; b && j < 5; j++) CHECK(b[j] == 0.0f);
        }
        const char *name = "x";
        CHECK(ml_optim_state(&o, rows[r].count, &name) == NULL && name == NULL);
        CHECK(ml_optim_state(&o, -1, NULL) == NULL);
        ml_optim_free(&o);
    }
    /* Adagrad's "sum" starts at initial_accumulator_value, also after reset. */
    ml_optim o;
    ml_optim_config c = ml_optim_config_default(ML_OPTIM_ADAGRAD);
    c.initial_accumulator_value = 0.25;
    CHECK_INT_EQ(ml_optim_init(&o, &c, 4), ML_OK);
    float p[4] = {1, 2, 3, 4}, g[4] = {1, 1, 1, 1};
    ml_optim_step(&o, p, g, 0.1);
    CHECK(o.state0[0] == 1.25f && o.step == 1);
    ml_optim_reset(&o);
    CHECK(o.state0[3] == 0.25f && o.step == 0);
    ml_optim_free(&o);
}

/* The counting allocator (ml_test.h) shows a failed init leaks nothing. */
static void test_init_out_of_memory(void) {
    ml_allocator a = ml_test_counting_allocator();
    ml_set_allocator(&a);
    ml_optim_config c = {.kind = ML_OPTIM_RMSPROP, .alpha = 0.99, .momentum = 0.9, .centered = 1};
    for (uint64_t k = 1; k <= 3; k++) {
        ml_optim o;
        ml_test_live = 0;
        ml_alloc_fail_after(k);
        CHECK_INT_EQ(ml_optim_init(&o, &c, 100), ML_ERR_NOMEM);
        ml_alloc_fail_after(0);
        CHECK_INT_EQ(ml_test_live, 0);
        CHECK(o.state0 == NULL && o.state1 == NULL && o.state2 == NULL);
    }
    ml_optim o;
    CHECK_INT_EQ(ml_optim_init(&o, &c, 100), ML_OK);
    CHECK_INT_EQ(ml_test_live, 3);
    ml_optim_free(&o);
    CHECK_INT_EQ(ml_test_live, 0);
    ml_set_allocator(NULL);
}

/* ---- hand-computed steps -----------------------------------------------------
 * p0 = (1, -2, 0.5), g1 = (0.5, -1, 2), g2 = (1, 0.5, -1). The arithmetic is
 * written out in the comments; the code evaluates the same in double. */

static void test_sgd_hand(void) {
    ml_optim o;
    float p[3];
    /* plain, lr 0.1, wd 0.1: d = g + 0.1 p
     * 1: d = (0.6, -1.2, 2.05)          p = (0.94, -1.88, 0.295)
     * 2: d = (1.094, 0.312, -0.9705)    p = (0.8306, -1.9112, 0.39205) */
    start(&o, (ml_optim_config){.kind = ML_OPTIM_SGD, .weight_decay = 0.1}, p);
    ml_optim_step(&o, p, G1, 0.1);
    CHECK3(p, 0.94, -1.88, 0.295);
    ml_optim_step(&o, p, G2, 0.1);
    CHECK3(p, 0.8306, -1.9112, 0.39205);
    CHECK_INT_EQ(ml_optim_state_count(&o), 0);
    ml_optim_free(&o);

    /* momentum 0.9, dampening 0.5, wd 0.1, lr 0.1; grads g1, g2, g1
     * 1: d = (0.6, -1.2, 2.05); buf = d (first step: a clone, no dampening)
     *    p = (0.94, -1.88, 0.295)
     * 2: d = (1.094, 0.312, -0.9705)
     *    buf = 0.9 (0.6, -1.2, 2.05) + 0.5 d = (1.087, -0.924, 1.35975)
     *    p = (0.8313, -1.7876, 0.159025)
     * 3: d = (0.58313, -1.17876, 2.0159025)
     *    buf = 0.9 (1.087, -0.924, 1.35975) + 0.5 d = (1.269865, -1.42098, 2.23172625)
     *    p = (0.7043135, -1.645502, -0.064147625) */
    start(&o, (ml_optim_config){.kind = ML_OPTIM_SGD, .momentum = 0.9, .dampening = 0.5, .weight_decay = 0.1}, p);
    ml_optim_step(&o, p, G1, 0.1);
    CHECK3(p, 0.94, -1.88, 0.295);
    CHECK3(o.state0, 0.6, -1.2, 2.05);
    ml_optim_step(&o, p, G2, 0.1);
    CHECK3(o.state0, 1.087, -0.924, 1.35975);
    CHECK3(p, 0.8313, -1.7876, 0.159025);
    ml_optim_step(&o, p, G1, 0.1);
    CHECK3(o.state0, 1.269865, -1.42098, 2.23172625);
    CHECK3(p, 0.7043135, -1.645502, -0.064147625);
    ml_optim_free(&o);

    /* nesterov, momentum 0.9, lr 0.1
     * 1: buf = g1; d = g1 + 0.9 buf = (0.95, -1.9, 3.8); p = (0.905, -1.81, 0.12)
     * 2: buf = 0.9 g1 + g2 = (1.45, -0.4, 0.8); d = g2 + 0.9 buf = (2.305, 0.14, -0.28)
     *    p = (0.6745, -1.824, 0.148) */
    start(&o, (ml_optim_config){.kind = ML_OPTIM_SGD, .momentum = 0.9, .nesterov = 1}, p);
    ml_optim_step(&o, p, G1, 0.1);
    CHECK3(p, 0.905, -1.81, 0.12);
    ml_optim_step(&o, p, G2, 0.1);
    CHECK3(o.state0, 1.45, -0.4, 0.8);
    CHECK3(p, 0.6745, -1.824, 0.148);
    ml_optim_free(&o);
}

static void test_adagrad_hand(void) {
    ml_optim o;
    float p[3];
    /* lr 0.1, lr_decay 0.5, eps 1e-10
     * 1: clr = 0.1; sum = g1^2 = (0.25, 1, 4); std = (0.5, 1, 2)
     *    p = p0 - 0.1 g1/std = (0.9, -1.9, 0.4)
     * 2: clr = 0.1 / (1 + 1 * 0.5); sum = (1.25, 1.25, 5)
     *    p = (0.9 - clr/sqrt(1.25), -1.9 - clr 0.5/sqrt(1.25), 0.4 + clr/sqrt(5)) */
    start(&o, (ml_optim_config){.kind = ML_OPTIM_ADAGRAD, .lr_decay = 0.5, .eps = 1e-10}, p);
    ml_optim_step(&o, p, G1, 0.1);
    CHECK3(o.state0, 0.25, 1.0, 4.0);
    CHECK3(p, 0.9, -1.9, 0.4);
    ml_optim_step(&o, p, G2, 0.1);
    CHECK3(o.state0, 1.25, 1.25, 5.0);
    double clr = 0.1 / 1.5;
    CHECK3(p, 0.9 - clr * 1.0 / (sqrt(1.25) + 1e-10), -1.9 - clr * 0.5 / (sqrt(1.25) + 1e-10),
           0.4 + clr * 1.0 / (sqrt(5.0) + 1e-10));
    ml_optim_free(&o);

    /* initial_accumulator_value 0.75, wd 0.1, eps 1e-3, lr 0.1
     * 1: d = (0.6, -1.2, 2.05); sum = 0.75 + d^2 = (1.11, 2.19, 4.9525)
     *    p = p0 - 0.1 d / (sqrt(sum) + 1e-3)
     * 2: d = g2 + 0.1 p1; sum += d^2; p = p1 - 0.1 d / (sqrt(sum) + 1e-3) */
    start(&o, (ml_optim_config){.kind = ML_OPTIM_ADAGRAD, .weight_decay = 0.1, .eps = 1e-3,
                                .initial_accumulator_value = 0.75}, p);
    ml_optim_step(&o, p, G1, 0.1);
    CHECK3(o.state0, 1.11, 2.19, 4.9525);
    double a = 1.0 - 0.1 * 0.6 / (sqrt(1.11) + 1e-3);
    double b = -2.0 + 0.1 * 1.2 / (sqrt(2.19) + 1e-3);
    double c = 0.5 - 0.1 * 2.05 / (sqrt(4.9525) + 1e-3);
    CHECK3(p, a, b, c);
    ml_optim_step(&o, p, G2, 0.1);
    double da = 1.0 + 0.1 * a, db = 0.5 + 0.1 * b, dc = -1.0 + 0.1 * c;
    double sa = 1.11 + da * da, sb = 2.19 + db * db, sc = 4.9525 + dc * dc;
    CHECK3(o.state0, sa, sb, sc);
    CHECK3(p, a - 0.1 * da / (sqrt(sa) + 1e-3), b - 0.1 * db / (sqrt(sb) + 1e-3),
           c - 0.1 * dc / (sqrt(sc) + 1e-3));
    ml_optim_free(&o);
}

static void test_rmsprop_hand(void) {
    ml_optim o;
    float p[3];
    /* alpha 0.99, eps 1e-8, lr 0.01
     * 1: v = 0.01 g1^2 = (0.0025, 0.01, 0.04); sqrt v = 0.1 |g1|
     *    p = p0 - 0.01 g1 / (sqrt v + 1e-8)  (about p0 - 0.1 sign g1)
     * 2: v = 0.99 v + 0.01 g2^2 = (0.012475, 0.0124, 0.0496)
     *    p = p1 - 0.01 g2 / (sqrt v + 1e-8) */
    start(&o, (ml_optim_config){.kind = ML_OPTIM_RMSPROP, .alpha = 0.99, .eps = 1e-8}, p);
    ml_optim_step(&o, p, G1, 0.01);
    CHECK3(o.state0, 0.0025, 0.01, 0.04);
    double a = 1.0 - 0.01 * 0.5 / (0.05 + 1e-8);
    double b = -2.0 + 0.01 * 1.0 / (0.1 + 1e-8);
    double c = 0.5 - 0.01 * 2.0 / (0.2 + 1e-8);
    CHECK3(p, a, b, c);
    ml_optim_step(&o, p, G2, 0.01);
    CHECK3(o.state0, 0.012475, 0.0124, 0.0496);
    CHECK3(p, a - 0.01 * 1.0 / (sqrt(0.012475) + 1e-8), b - 0.01 * 0.5 / (sqrt(0.0124) + 1e-8),
           c + 0.01 * 1.0 / (sqrt(0.0496) + 1e-8));
    ml_optim_free(&o);

    /* centered, momentum 0.9, alpha 0.9, eps 1e-8, lr 0.01
     * 1: v = 0.1 g1^2 = (0.025, 0.1, 0.4); ga = 0.1 g1 = (0.05, -0.1, 0.2)
     *    avg = sqrt(v - ga^2) + eps = sqrt(0.0225, 0.09, 0.36) = (0.15, 0.3, 0.6)
     *    buf = g1 / avg = (10/3, -10/3, 10/3); p = p0 - 0.01 buf
     * 2: v = 0.9 v + 0.1 g2^2 = (0.1225, 0.115, 0.46)
     *    ga = 0.9 ga + 0.1 g2 = (0.145, -0.04, 0.08)
     *    avg = sqrt(0.101475, 0.1134, 0.4536) + eps
     *    buf = 0.9 buf + g2 / avg; p = p1 - 0.01 buf */
    start(&o, (ml_optim_config){.kind = ML_OPTIM_RMSPROP, .alpha = 0.9, .eps = 1e-8, .momentum = 0.9,
                                .centered = 1}, p);
    ml_optim_step(&o, p, G1, 0.01);
    double b1[3] = {0.5 / (0.15 + 1e-8), -1.0 / (0.3 + 1e-8), 2.0 / (0.6 + 1e-8)};
    CHECK3(o.state0, 0.025, 0.1, 0.4);
    CHECK3(o.state1, b1[0], b1[1], b1[2]);
    CHECK3(o.state2, 0.05, -0.1, 0.2);
    double p1[3] = {1.0 - 0.01 * b1[0], -2.0 - 0.01 * b1[1], 0.5 - 0.01 * b1[2]};
    CHECK3(p, p1[0], p1[1], p1[2]);
    ml_optim_step(&o, p, G2, 0.01);
    CHECK3(o.state0, 0.1225, 0.115, 0.46);
    CHECK3(o.state2, 0.145, -0.04, 0.08);
    double b2[3] = {0.9 * b1[0] + 1.0 / (sqrt(0.101475) + 1e-8), 0.9 * b1[1] + 0.5 / (sqrt(0.1134) + 1e-8),
                    0.9 * b1[2] - 1.0 / (sqrt(0.4536) + 1e-8)};
    CHECK3(o.state1, b2[0], b2[1], b2[2]);
    CHECK3(p, p1[0] - 0.01 * b2[0], p1[1] - 0.01 * b2[1], p1[2] - 0.01 * b2[2]);
    ml_optim_free(&o);

    /* weight decay enters the gradient: wd 0.5, alpha 0.9, one step, eps 0
     * d = g1 + 0.5 p0 = (1, -2, 2.25); v = 0.1 d^2; p = p0 - 0.01 d / sqrt(0.1 d^2)
     *   = p0 - 0.01 sign(d) / sqrt(0.1) */
    start(&o, (ml_optim_config){.kind = ML_OPTIM_RMSPROP, .alpha = 0.9, .weight_decay = 0.5}, p);
    ml_optim_step(&o, p, G1, 0.01);
    CHECK3(o.state0, 0.1, 0.4, 0.50625);
    double s = 0.01 / sqrt(0.1);
    CHECK3(p, 1.0 - s, -2.0 + s, 0.5 - s);
    ml_optim_free(&o);
}

static void test_adam_hand(void) {
    ml_optim o;
    float p[3];
    /* Adam, lr 0.1, betas (0.9, 0.999), eps 1e-8, L2 wd 0.1
     * 1: d = (0.6, -1.2, 2.05); m = 0.1 d; v = 0.001 d^2
     *    m/(1-0.9) = d, v/(1-0.999) = d^2: p = p0 - 0.1 d / (|d| + 1e-8)
     * 2: d = g2 + 0.1 p1 (about (1.09, 0.31, -0.96)); m = 0.09 d1 + 0.1 d
     *    v = 0.000999 d1^2 + 0.001 d^2
     *    p = p1 - (0.1/0.19) m / (sqrt(v)/sqrt(0.001999) + 1e-8)
     *    (1 - 0.9^2 = 0.19, 1 - 0.999^2 = 0.001999) */
    start(&o, (ml_optim_config){.kind = ML_OPTIM_ADAM, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                                .weight_decay = 0.1}, p);
    ml_optim_step(&o, p, G1, 0.1);
    const double d1[3] = {0.6, -1.2, 2.05};
    double p1[3];
    for (int i = 0; i < 3; i++) p1[i] = P0[i] - 0.1 * d1[i] / (fabs(d1[i]) + 1e-8);
    CHECK3(o.state0, 0.06, -0.12, 0.205);
    CHECK3(o.state1, 0.00036, 0.00144, 0.0042025);
    CHECK3(p, p1[0], p1[1], p1[2]);
    ml_optim_step(&o, p, G2, 0.1);
    double e[3], m[3], v[3];
    for (int i = 0; i < 3; i++) {
        double d = G2[i] + 0.1 * p1[i];
        m[i] = 0.09 * d1[i] + 0.1 * d;
        v[i] = 0.000999 * d1[i] * d1[i] + 0.001 * d * d;
        e[i] = p1[i] - (0.1 / 0.19) * m[i] / (sqrt(v[i]) / sqrt(0.001999) + 1e-8);
    }
    CHECK3(o.state0, m[0], m[1], m[2]);
    CHECK3(o.state1, v[0], v[1], v[2]);
    CHECK3(p, e[0], e[1], e[2]);
    ml_optim_free(&o);

    /* AdamW, lr 0.1, wd 0.1: decay first, p *= 1 - 0.1*0.1 = 0.99; the
     * moments see the raw gradient.
     * 1: p = 0.99 p0 - 0.1 g1/(|g1| + 1e-8) = (0.89, -1.88, 0.395) + O(eps)
     * 2: m = 0.09 g1 + 0.1 g2 = (0.145, -0.04, 0.08)
     *    v = 0.000999 g1^2 + 0.001 g2^2 = (0.00124975, 0.001249, 0.004996)
     *    p = 0.99 p1 - (0.1/0.19) m / (sqrt(v)/sqrt(0.001999) + 1e-8) */
    start(&o, (ml_optim_config){.kind = ML_OPTIM_ADAMW, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                                .weight_decay = 0.1}, p);
    ml_optim_step(&o, p, G1, 0.1);
    for (int i = 0; i < 3; i++) p1[i] = 0.99 * P0[i] - 0.1 * G1[i] / (fabs(G1[i]) + 1e-8);
    CHECK3(p, p1[0], p1[1], p1[2]);
    CHECK_NEAR(p[0], 0.89, 1e-6, 0);
    ml_optim_step(&o, p, G2, 0.1);
    CHECK3(o.state0, 0.145, -0.04, 0.08);
    CHECK3(o.state1, 0.00124975, 0.001249, 0.004996);
    const double m2[3] = {0.145, -0.04, 0.08}, v2[3] = {0.00124975, 0.001249, 0.004996};
    for (int i = 0; i < 3; i++) e[i] = 0.99 * p1[i] - (0.1 / 0.19) * m2[i] / (sqrt(v2[i]) / sqrt(0.001999) + 1e-8);
    CHECK3(p, e[0], e[1], e[2]);
    CHECK_INT_EQ(o.step, 2);
    ml_optim_free(&o);
}

/* ---- PyTorch trajectories -------------------------------------------------- */

typedef struct {
    const char *label;
    ml_optim_config cfg;
    float traj[5][3]; /* params after steps 1..5 */
    int nstate;
    const char *names[3];
    float states[3][3]; /* after step 5, in ml_optim_state order */
} ref_case;

typedef struct {
    const char *label;
    ml_schedule s;
    double lr[24]; /* get_last_lr() before steps 0..23 */
} ref_sched;

/* BEGIN optim_reference.py (PyTorch 1.13.0a0) */
static const ref_case ref_cases[] = {
    {"sgd", {.kind = ML_OPTIM_SGD, .lr = 0.1, .momentum = 0.0, .dampening = 0.0, .weight_decay = 0.0, .nesterov = 0},
     {{0.482499987f, -1.09718752f, 1.28999996f}, {0.467102885f, -1.00968742f, 1.14584792f}, {0.453633815f, -0.951727331f, 1.06332493f}, {0.441976458f, -0.910693586f, 1.0093832f}, {0.432055533f, -0.880696654f, 0.971959829f}},
     0, {0}, {{0}}},
    {"sgd_mom_damp_wd", {.kind = ML_OPTIM_SGD, .lr = 0.05, .momentum = 0.9, .dampening = 0.1, .weight_decay = 0.01, .nesterov = 0},
     {{0.490999997f, -1.17296875f, 1.64400005f}, {0.476509869f, -1.06039059f, 1.20426166f}, {0.458628297f, -0.938909411f, 0.807241023f}, {0.439136773f, -0.825362623f, 0.487327129f}, {0.419523776f, -0.728107989f, 0.241158918f}},
     1, {"momentum_buffer"}, {{0.65376687f, -3.24182057f, 8.20560741f}}},
    {"sgd_nesterov_wd", {.kind = ML_OPTIM_SGD, .lr = 0.05, .momentum = 0.9, .dampening = 0.0, .weight_decay = 0.01, .nesterov = 1},
     {{0.482899994f, -1.10364056f, 1.32360005f}, {0.461292058f, -0.961687624f, 0.9127177f}, {0.437259734f, -0.837268472f, 0.616345227f}, {0.412494779f, -0.733712018f, 0.393828332f}, {0.388383031f, -0.650574565f, 0.224857822f}},
     1, {"momentum_buffer"}, {{0.706289411f, -2.81753969f, 6.2936039f}}},
    {"adagrad", {.kind = ML_OPTIM_ADAGRAD, .lr = 0.1, .weight_decay = 0.0, .eps = 1e-10, .lr_decay = 0.0, .initial_accumulator_value = 0.0},
     {{0.400000006f, -1.14999998f, 1.89999998f}, {0.338457793f, -1.09600663f, 1.84185779f}, {0.29227823f, -1.05982542f, 1.8015393f}, {0.255874664f, -1.03372645f, 1.77183783f}, {0.226996243f, -1.01434493f, 1.74947584f}},
     1, {"sum"}, {{0.153896824f, 5.94735432f, 164.255585f}}},
    {"adagrad_decay_wd_init", {.kind = ML_OPTIM_ADAGRAD, .lr = 0.1, .weight_decay = 0.01, .eps = 1e-06, .lr_decay = 0.05, .initial_accumulator_value = 0.1},
     {{0.450531662f, -1.15204227f, 1.90009844f}, {0.414129913f, -1.10103703f, 1.84474015f}, {0.386067331f, -1.06806803f, 1.80795264f}, {0.364124417f, -1.04508865f, 1.78190458f}, {0.347035646f, -1.02857924f, 1.76301742f}},
     1, {"sum"}, {{0.246992081f, 6.30909443f, 167.219955f}}},
    {"rmsprop", {.kind = ML_OPTIM_RMSPROP, .lr = 0.01, .momentum = 0.0, .weight_decay = 0.0, .eps = 1e-08, .alpha = 0.99, .centered = 0},
     {{0.400000036f, -1.14999998f, 1.89999998f}, {0.338293374f, -1.09583294f, 1.84168768f}, {0.291872203f, -1.05943048f, 1.80113912f}, {0.255185634f, -1.03309786f, 1.77118659f}, {0.226010978f, -1.01348805f, 1.74857414f}},
     1, {"square_avg"}, {{0.00151122245f, 0.0578464046f, 1.60246074f}}},
    {"rmsprop_mom", {.kind = ML_OPTIM_RMSPROP, .lr = 0.01, .momentum = 0.8, .weight_decay = 0.0, .eps = 1e-08, .alpha = 0.9, .centered = 0},
     {{0.468377233f, -1.21837723f, 1.96837723f}, {0.425331861f, -1.17584252f, 1.92547429f}, {0.379780173f, -1.13184512f, 1.88053989f}, {0.336163729f, -1.09111941f, 1.83832228f}, {0.296790183f, -1.05590868f, 1.80122137f}},
     2, {"square_avg", "momentum_buffer"}, {{0.0116003705f, 0.61675638f, 15.7586145f}, {6.56225538f, -5.86844587f, 6.18349123f}}},
    {"rmsprop_centered_mom_wd", {.kind = ML_OPTIM_RMSPROP, .lr = 0.01, .momentum = 0.9, .weight_decay = 0.01, .eps = 1e-06, .alpha = 0.9, .centered = 1},
     {{0.466667295f, -1.2166667f, 1.9666667f}, {0.417165816f, -1.16775835f, 1.91732728f}, {0.360106796f, -1.11278474f, 1.86110902f}, {0.300628632f, -1.05777633f, 1.80386031f}, {0.242158413f, -1.00667608f, 1.74956489f}},
     3, {"square_avg", "momentum_buffer", "grad_avg"}, {{0.0124414377f, 0.591045856f, 15.2068672f}, {9.74503708f, -8.51671791f, 9.04923534f}, {0.0713502318f, -0.48179546f, 2.47729421f}}},
    {"rmsprop_centered", {.kind = ML_OPTIM_RMSPROP, .lr = 0.01, .momentum = 0.0, .weight_decay = 0.0, .eps = 1e-08, .alpha = 0.99, .centered = 1},
     {{0.399496257f, -1.1494962f, 1.8994962f}, {0.337164849f, -1.09484649f, 1.84062862f}, {0.290007174f, -1.05798793f, 1.7995187f}, {0.252517164f, -1.03123355f, 1.76902401f}, {0.222525686f, -1.01124167f, 1.74590611f}},
     2, {"square_avg", "grad_avg"}, {{0.00151657627f, 0.057600826f, 1.59744358f}, {0.00861048512f, -0.0515155345f, 0.27682358f}}},
    {"adam", {.kind = ML_OPTIM_ADAM, .lr = 0.01, .weight_decay = 0.0, .eps = 1e-08, .beta1 = 0.9, .beta2 = 0.999},
     {{0.49000001f, -1.24000001f, 1.99000001f}, {0.481003404f, -1.23100734f, 1.98100412f}, {0.47301057f, -1.22302377f, 1.9730134f}, {0.466021061f, -1.21604919f, 1.96602774f}, {0.460033864f, -1.21008193f, 1.96004617f}},
     2, {"exp_avg", "exp_avg_sq"}, {{0.0699605718f, -0.592712641f, 2.81574202f}, {0.00014626341f, 0.0105685033f, 0.237371415f}}},
    {"adam_betas_wd", {.kind = ML_OPTIM_ADAM, .lr = 0.01, .weight_decay = 0.01, .eps = 1e-06, .beta1 = 0.8, .beta2 = 0.99},
     {{0.490000069f, -1.24000001f, 1.99000001f}, {0.481006891f, -1.23101389f, 1.98100805f}, {0.473021239f, -1.22304511f, 1.97302604f}, {0.466042161f, -1.21609318f, 1.96605372f}, {0.4600676f, -1.21015465f, 1.96008921f}},
     2, {"exp_avg", "exp_avg_sq"}, {{0.11782445f, -0.976224065f, 4.62173986f}, {0.00151805277f, 0.105482243f, 2.34367299f}}},
    {"adamw", {.kind = ML_OPTIM_ADAMW, .lr = 0.01, .weight_decay = 0.01, .eps = 1e-08, .beta1 = 0.9, .beta2 = 0.999},
     {{0.489950001f, -1.23987496f, 1.98979998f}, {0.480909288f, -1.23077083f, 1.98062515f}, {0.472878009f, -1.22268903f, 1.97247612f}, {0.465855449f, -1.21562922f, 1.96535265f}, {0.459840357f, -1.20958948f, 1.95925343f}},
     2, {"exp_avg", "exp_avg_sq"}, {{0.0699537471f, -0.592312217f, 2.813941f}, {0.000146237289f, 0.0105558401f, 0.237099037f}}},
    {"adamw_wd", {.kind = ML_OPTIM_ADAMW, .lr = 0.05, .weight_decay = 0.1, .eps = 1e-08, .beta1 = 0.85, .beta2 = 0.995},
     {{0.44749999f, -1.19375002f, 1.94000006f}, {0.400597155f, -1.1437968f, 1.88649952f}, {0.359145314f, -1.10016465f, 1.83946908f}, {0.322999626f, -1.06277251f, 1.79882836f}, {0.292050302f, -1.03145492f, 1.76445639f}},
     2, {"exp_avg", "exp_avg_sq"}, {{0.0938447863f, -0.617161632f, 3.22685099f}, {0.000705304847f, 0.0346506499f, 0.892741799f}}},
};
#define REF_SCHED_STEPS 24
static const ref_sched ref_scheds[] = {
    {"step", {ML_SCHED_STEP, .base_lr = 0.1, .step_size = 3, .gamma = 0.5, .warmup_steps = 0},
     {0.10000000000000001, 0.10000000000000001, 0.10000000000000001, 0.050000000000000003, 0.050000000000000003, 0.050000000000000003, 0.025000000000000001, 0.025000000000000001, 0.025000000000000001, 0.012500000000000001, 0.012500000000000001, 0.012500000000000001, 0.0062500000000000003, 0.0062500000000000003, 0.0062500000000000003, 0.0031250000000000002, 0.0031250000000000002, 0.0031250000000000002, 0.0015625000000000001, 0.0015625000000000001, 0.0015625000000000001, 0.00078125000000000004, 0.00078125000000000004, 0.00078125000000000004}},
    {"cosine", {ML_SCHED_COSINE, .base_lr = 0.1, .total_steps = 10, .min_lr = 0.001, .warmup_steps = 0},
     {0.10000000000000001, 0.097577297556610113, 0.090546341221559898, 0.079595369988477424, 0.065796341221559904, 0.050500000000000003, 0.03520365877844011, 0.021404630011522589, 0.010453658778440109, 0.0034227024433899004, 0.001, 0.0034227024433899004, 0.01045365877844014, 0.021404630011522669, 0.035203658778440255, 0.050500000000000218, 0.065796341221560181, 0.079595369988477771, 0.090546341221560314, 0.097577297556610543, 0.10000000000000045, 0.097577297556610543, 0.090546341221560328, 0.079595369988477785}},
    {"warmup_cosine", {ML_SCHED_COSINE, .base_lr = 0.1, .total_steps = 8, .min_lr = 0.0, .warmup_steps = 3},
     {0.033333333333333333, 0.066666666666666666, 0.10000000000000001, 0.10000000000000001, 0.096193976625564337, 0.085355339059327379, 0.069134171618254497, 0.050000000000000003, 0.030865828381745515, 0.014644660940672627, 0.0038060233744356634, 0, 0.0038060233744356634, 0.014644660940672639, 0.030865828381745536, 0.050000000000000065, 0.069134171618254608, 0.085355339059327504, 0.096193976625564462, 0.10000000000000014, 0.096193976625564476, 0.085355339059327504, 0.069134171618254622, 0.050000000000000086}},
    {"warmup_step", {ML_SCHED_STEP, .base_lr = 0.1, .step_size = 2, .gamma = 0.1, .warmup_steps = 4},
     {0.025000000000000001, 0.050000000000000003, 0.075000000000000011, 0.10000000000000001, 0.10000000000000001, 0.10000000000000001, 0.010000000000000002, 0.010000000000000002, 0.0010000000000000002, 0.0010000000000000002, 0.00010000000000000003, 0.00010000000000000003, 1.0000000000000004e-05, 1.0000000000000004e-05, 1.0000000000000004e-06, 1.0000000000000004e-06, 1.0000000000000005e-07, 1.0000000000000005e-07, 1.0000000000000005e-08, 1.0000000000000005e-08, 1.0000000000000005e-09, 1.0000000000000005e-09, 1.0000000000000006e-10, 1.0000000000000006e-10}},
};
/* END optim_reference.py */

/* g = p^3 - 0.5 p + k in float32, in torch's operation order. */
static void ref_grad(const float *p, float *g) {
    static const float k[3] = {0.3f, -0.2f, 0.1f};
    for (int i = 0; i < 3; i++) {
        float t = p[i] * p[i];
        t = t * p[i];
        float u = 0.5f * p[i];
        g[i] = (t - u) + k[i];
    }
}

/* How many values match PyTorch to the bit (all of them against the
 * checked-in numbers, from torch's AVX2 kernels). Only the tolerance is
 * enforced: a torch whose kernels lack FMA, or a libm whose pow() rounds
 * differently, may move the last bit. ML_TEST_VERBOSE=1 lists mismatches. */
static int g_ref_exact, g_ref_total;

static void count_exact(float got, float want) {
    g_ref_total++;
    if (got == want) g_ref_exact++;
}

static void test_pytorch_trajectories(void) {
    for (size_t c = 0; c < sizeof ref_cases / sizeof ref_cases[0]; c++) {
        const ref_case *r = &ref_cases[c];
        ml_optim o;
        CHECK_INT_EQ(ml_optim_init(&o, &r->cfg, 3), ML_OK);
        float p[3] = {0.5f, -1.25f, 2.0f}, g[3];
        for (int t = 0; t < 5; t++) {
            ref_grad(p, g);
            double lr = r->cfg.lr * (1.0 - 0.1 * t); /* as the script sets group["lr"] */
            ml_optim_step(&o, p, g, lr);
            for (int i = 0; i < 3; i++) {
                CHECK_NEAR(p[i], r->traj[t][i], 0, RTOL);
                count_exact(p[i], r->traj[t][i]);
                if (getenv("ML_TEST_VERBOSE") && p[i] != r->traj[t][i])
                    printf("       %s step %d [%d]: %.9g vs torch %.9g\n", r->label, t + 1, i, p[i],
                           r->traj[t][i]);
            }
            if (ml_test_cur_failed) {
                fprintf(stderr, "  in case %s, step %d\n", r->label, t + 1);
                break;
            }
        }
        CHECK_INT_EQ(ml_optim_state_count(&o), r->nstate);
        for (int s = 0; s < r->nstate; s++) {
            const char *name = NULL;
            const float *b = ml_optim_state(&o, s, &name);
            CHECK(name && strcmp(name, r->names[s]) == 0);
            for (int i = 0; b && i < 3; i++) {
                CHECK_NEAR(b[i], r->states[s][i], 0, RTOL);
                count_exact(b[i], r->states[s][i]);
            }
        }
        ml_optim_free(&o);
    }
    printf("       %d of %d values equal PyTorch's bit for bit\n", g_ref_exact, g_ref_total);
}

/* ---- checkpoint and resume ------------------------------------------------- */

static void fill(float *x, int n, float a, float b) {
    for (int i = 0; i < n; i++) x[i] = a * sinf((float)i * 0.7f + b);
}

/* Run 7 steps straight, or 3 steps, copy state + step into a fresh
 * optimizer, and 4 more: the parameters must agree to the bit. */
static void test_resume_bit_exact(void) {
    enum { N = 37 };
    ml_optim_config cfgs[] = {
        {.kind = ML_OPTIM_SGD, .momentum = 0.9, .dampening = 0.1, .weight_decay = 0.01},
        {.kind = ML_OPTIM_SGD, .momentum = 0.9, .nesterov = 1},
        {.kind = ML_OPTIM_ADAGRAD, .lr_decay = 0.1, .eps = 1e-10, .initial_accumulator_value = 0.1},
        {.kind = ML_OPTIM_RMSPROP, .alpha = 0.9, .eps = 1e-8, .momentum = 0.5, .centered = 1},
        ml_optim_config_default(ML_OPTIM_ADAM),
        ml_optim_config_default(ML_OPTIM_ADAMW),
    };
    for (size_t c = 0; c < sizeof cfgs / sizeof cfgs[0]; c++) {
        float pa[N], pb[N], g[N];
        fill(pa, N, 1.0f, 0.0f);
        memcpy(pb, pa, sizeof pa);
        ml_optim a, b, b2;
        CHECK_INT_EQ(ml_optim_init(&a, &cfgs[c], N), ML_OK);
        CHECK_INT_EQ(ml_optim_init(&b, &cfgs[c], N), ML_OK);
        CHECK_INT_EQ(ml_optim_init(&b2, &cfgs[c], N), ML_OK);
        for (int t = 0; t < 7; t++) {
            fill(g, N, 0.5f, (float)t);
            ml_optim_step(&a, pa, g, 0.01);
            if (t < 3) {
                ml_optim_step(&b, pb, g, 0.01);
                continue;
            }
            if (t == 3) { /* "save" b and "load" into b2 */
                for (int s = 0; s < ml_optim_state_count(&b); s++) {
                    const char *n1, *n2;
                    float *src = ml_optim_state(&b, s, &n1), *dst = ml_optim_state(&b2, s, &n2);
                    CHECK(strcmp(n1, n2) == 0);
                    memcpy(dst, src, N * sizeof(float));
                }
                b2.step = b.step;
            }
            ml_optim_step(&b2, pb, g, 0.01);
        }
        CHECK(memcmp(pa, pb, sizeof pa) == 0);
        CHECK_INT_EQ(b2.step, 7);
        ml_optim_free(&a);
        ml_optim_free(&b);
        ml_optim_free(&b2);
    }
}

/* A long buffer (vectorised loops, odd length) must give, element for
 * element, what the same optimizer gives on a one-element buffer. */
static void test_long_buffer_matches_elementwise(void) {
    enum { N = 1003 };
    static float p[N], g[N], q[N];
    for (int k = 0; k < ML_OPTIM_COUNT; k++) {
        ml_optim_config c = ml_optim_config_default((ml_optim_kind)k);
        c.weight_decay = 0.01;
        c.momentum = (k == ML_OPTIM_SGD || k == ML_OPTIM_RMSPROP) ? 0.9 : 0.0;
        c.centered = k == ML_OPTIM_RMSPROP;
        ml_optim big;
        CHECK_INT_EQ(ml_optim_init(&big, &c, N), ML_OK);
        ml_optim one[7];
        for (int j = 0; j < 7; j++) CHECK_INT_EQ(ml_optim_init(&one[j], &c, 1), ML_OK);
        fill(p, N, 1.0f, 0.3f);
        memcpy(q, p, sizeof p);
        for (int t = 0; t < 3; t++) {
            fill(g, N, 2.0f, (float)t);
            ml_optim_step(&big, p, g, 0.05);
            /* single-element optimizers replay a few positions */
            for (int j = 0; j < 7; j++) {
                int i = j * 167;
                ml_optim_step(&one[j], &q[i], &g[i], 0.05);
            }
        }
        for (int j = 0; j < 7; j++) {
            int i = j * 167;
            CHECK(p[i] == q[i]);
            ml_optim_free(&one[j]);
        }
        ml_optim_free(&big);
    }
}

/* ml_optim_step_range over parts that cover the buffer, then
 * ml_optim_advance: ml_optim_step's bits (the meta-learner splits the
 * outer update across its threads this way). */
static void test_ranges_match_step(void) {
    enum { N = 1003 };
    static float p[N], q[N], g[N];
    const int64_t cuts[] = {0, 16, 500, 512, 1003};
    for (int k = 0; k < ML_OPTIM_COUNT; k++) {
        ml_optim_config c = ml_optim_config_default((ml_optim_kind)k);
        c.weight_decay = 0.01;
        c.momentum = (k == ML_OPTIM_SGD || k == ML_OPTIM_RMSPROP) ? 0.9 : 0.0;
        c.centered = k == ML_OPTIM_RMSPROP;
        ml_optim a, b;
        CHECK_INT_EQ(ml_optim_init(&a, &c, N), ML_OK);
        CHECK_INT_EQ(ml_optim_init(&b, &c, N), ML_OK);
        fill(p, N, 1.0f, 0.3f);
        memcpy(q, p, sizeof p);
        for (int t = 0; t < 4; t++) {
            fill(g, N, 2.0f, (float)t);
            ml_optim_step(&a, p, g, 0.05);
            for (int r = 3; r >= 0; r--) ml_optim_step_range(&b, q, g, 0.05, cuts[r], cuts[r + 1]);
            ml_optim_advance(&b);
        }
        CHECK(memcmp(p, q, sizeof p) == 0);
        CHECK_INT_EQ(b.step, a.step);
        ml_optim_free(&a);
        ml_optim_free(&b);
    }
}

/* ---- schedules ------------------------------------------------------------- */

static void test_schedules_vs_pytorch(void) {
    for (size_t c = 0; c < sizeof ref_scheds / sizeof ref_scheds[0]; c++) {
        for (int t = 0; t < REF_SCHED_STEPS; t++) {
            double lr = ml_schedule_lr(&ref_scheds[c].s, t);
            /* torch steps its schedulers recursively and drifts from the
             * closed form by ~1e-16 relative; the atol covers the cosine's
             * exact zero at T_max. */
            CHECK_NEAR(lr, ref_scheds[c].lr[t], 1e-15, 1e-12);
        }
    }
}

static void test_schedules_hand(void) {
    ml_schedule s = {.kind = ML_SCHED_CONSTANT, .base_lr = 0.5};
    CHECK(ml_schedule_lr(&s, 0) == 0.5 && ml_schedule_lr(&s, 1000000) == 0.5);
    s.warmup_steps = 4; /* 0.125, 0.25, 0.375, 0.5, then constant */
    CHECK_NEAR(ml_schedule_lr(&s, 0), 0.125, 0, RTOL);
    CHECK_NEAR(ml_schedule_lr(&s, 2), 0.375, 0, RTOL);
    CHECK_NEAR(ml_schedule_lr(&s, 3), 0.5, 0, RTOL);
    CHECK_NEAR(ml_schedule_lr(&s, 9), 0.5, 0, RTOL);
    CHECK_NEAR(ml_schedule_lr(&s, -5), 0.125, 0, RTOL); /* negative steps act as 0 */

    s = (ml_schedule){.kind = ML_SCHED_STEP, .base_lr = 1.0, .step_size = 10, .gamma = 0.1};
    CHECK_NEAR(ml_schedule_lr(&s, 9), 1.0, 0, RTOL);
    CHECK_NEAR(ml_schedule_lr(&s, 10), 0.1, 0, RTOL);
    CHECK_NEAR(ml_schedule_lr(&s, 25), 0.01, 0, RTOL);
    s.step_size = 0; /* acts as 1 */
    CHECK_NEAR(ml_schedule_lr(&s, 2), 0.01, 0, RTOL);

    /* cosine, T = 4, 0.2 -> 0: 0.2, 0.2 (1 + cos(pi/4))/2, 0.1, ..., 0 at T */
    s = (ml_schedule){.kind = ML_SCHED_COSINE, .base_lr = 0.2, .total_steps = 4};
    CHECK_NEAR(ml_schedule_lr(&s, 0), 0.2, 0, RTOL);
    CHECK_NEAR(ml_schedule_lr(&s, 1), 0.1 * (1.0 + sqrt(0.5)), 0, RTOL);
    CHECK_NEAR(ml_schedule_lr(&s, 2), 0.1, 0, RTOL);
    CHECK_NEAR(ml_schedule_lr(&s, 4), 0.0, 1e-12, 0);
    CHECK_NEAR(ml_schedule_lr(&s, 8), 0.2, 0, RTOL); /* periodic, as in torch */
}

/* ---- clipping --------------------------------------------------------------- */

static void test_clip_grad_norm(void) {
    /* ||(3, -4, 1)|| = sqrt(26) = 5.0990195; max 2 scales by 2 / (sqrt(26) + 1e-6).
     * PyTorch: norm 5.09901953 -> (1.17669666, -1.56892884, 0.392232209). */
    float g[3] = {3.0f, -4.0f, 1.0f};
    float norm = ml_clip_grad_norm(g, 3, 2.0f);
    CHECK_NEAR(norm, sqrt(26.0), 0, RTOL);
    double f = 2.0 / (sqrt(26.0) + 1e-6);
    CHECK3(g, 3.0 * f, -4.0 * f, 1.0 * f);
    CHECK3(g, 1.17669666, -1.56892884, 0.392232209);
    norm = ml_clip_grad_norm(g, 3, 2.0f); /* now at the limit: scaled by ~1 - 5e-7 */
    CHECK_NEAR(norm, 2.0, 0, RTOL);

    /* Under the limit: untouched, bit for bit. */
    float h[3] = {3.0f, -4.0f, 1.0f};
    norm = ml_clip_grad_norm(h, 3, 10.0f);
    CHECK_NEAR(norm, sqrt(26.0), 0, RTOL);
    CHECK(h[0] == 3.0f && h[1] == -4.0f && h[2] == 1.0f);

    /* Several buffers share one norm. PyTorch: ||(1, 2, -2, 0.5, 4)|| =
     * 5.02493763, max 1.5 -> (0.298511118, 0.597022235) (-0.597022235,
     * 0.149255559, 1.19404447). */
    float a[2] = {1.0f, 2.0f}, b[3] = {-2.0f, 0.5f, 4.0f};
    float *bufs[2] = {a, b};
    int64_t ns[2] = {2, 3};
    norm = ml_clip_grad_norm_multi(bufs, ns, 2, 1.5f);
    CHECK_NEAR(norm, sqrt(25.25), 0, RTOL);
    CHECK_NEAR(a[0], 0.298511118, ATOL, RTOL);
    CHECK_NEAR(a[1], 0.597022235, ATOL, RTOL);
    CHECK3(b, -0.597022235, 0.149255559, 1.19404447);

    /* Non-finite norm: reported, gradients left for the caller to inspect. */
    float z[2] = {INFINITY, 1.0f};
    norm = ml_clip_grad_norm(z, 2, 1.0f);
    CHECK(isinf(norm));
    CHECK(z[1] == 1.0f);
    CHECK(ml_clip_grad_norm(NULL, 0, 1.0f) == 0.0f);
}

int main(void) {
    ML_RUN(test_kind_names);
    ML_RUN(test_defaults);
    ML_RUN(test_init_rejects_bad_config);
    ML_RUN(test_state_layout);
    ML_RUN(test_init_out_of_memory);
    ML_RUN(test_sgd_hand);
    ML_RUN(test_adagrad_hand);
    ML_RUN(test_rmsprop_hand);
    ML_RUN(test_adam_hand);
    ML_RUN(test_pytorch_trajectories);
    ML_RUN(test_resume_bit_exact);
    ML_RUN(test_long_buffer_matches_elementwise);
    ML_RUN(test_ranges_match_step);
    ML_RUN(test_schedules_vs_pytorch);
    ML_RUN(test_schedules_hand);
    ML_RUN(test_clip_grad_norm);
    return ml_test_summary();
}
