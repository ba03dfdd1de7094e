/* test_meta.c: the meta-learners' gradients against independent computations.
 *   - MAML (1 and 2 inner steps) and Meta-SGD: the meta-gradient equals central
 *     differences of the post-adaptation query loss in the meta-parameters;
 *   - first-order MAML equals MAML with the second-order term removed:
 *     g_maml = g_fo - alpha * H_support g_fo (one step; H by double backward);
 *   - one Reptile step matches its closed form on a linear model;
 *   - results are bit-identical whatever the thread count. */
#include <math.h>
#include <string.h>

#include "meta/meta_internal.h"
#include "meta/task_sum.h"
#include "metalearn/meta.h"
#include "metalearn/pool.h"
#include "ml_test.h"

#define KS 6
#define KQ 7

static float xs[4][KS], ys[4][KS], xq[4][KQ], yq[4][KQ];
static ml_task_data tasks[4];

static void make_tasks(void) {
    ml_rng r;
    ml_rng_seed(&r, 99);
    for (int t = 0; t < 4; t++) {
        double a = 0.5 + 2 * ml_rng_uniform(&r), ph = 3 * ml_rng_uniform(&r);
        for (int i = 0; i < KS; i++) {
            xs[t][i] = (float)(10 * ml_rng_uniform(&r) - 5);
            ys[t][i] = (float)(a * sin(xs[t][i] - ph));
        }
        for (int i = 0; i < KQ; i++) {
            xq[t][i] = (float)(10 * ml_rng_uniform(&r) - 5);
            yq[t][i] = (float)(a * sin(xq[t][i] - ph));
        }
        tasks[t] = (ml_task_data){.n_support = KS, .n_query = KQ, .xs = xs[t], .xq = xq[t], .ys = ys[t], .yq = yq[t]};
    }
}

static void small_mlp(ml_model *m, int hidden, uint64_t seed) {
    ml_model_spec spec;
    char err[128];
    ml_model_spec_parse("mlp:8", &spec, err, sizeof err);
    spec.n_hidden = hidden ? 1 : 0;
    spec.hidden[0] = hidden;
    spec.in_c = spec.in_h = spec.in_w = 1;
    spec.n_out = 1;
    CHECK(ml_model_init(m, &spec, err, sizeof err) == ML_OK);
    ml_rng r;
    ml_rng_seed(&r, seed);
    ml_model_init_params(m, ML_INIT_TORCH, &r);
}

static ml_meta_config config(ml_algo algo, int steps, float alpha) {
    ml_meta_config c = {.algo = algo, .loss = ML_LOSS_MSE, .inner_steps = steps, .inner_lr = alpha, .threads = 1};
    c.outer = ml_optim_config_default(ML_OPTIM_SGD);
    c.outer.lr = 1e-3;
    return c;
}

/* Post-adaptation query loss of task t from meta-parameters `meta`, computed
 * independently of ml_meta (plain steps, nothing recorded across steps). */
static int head_only; /* ANIL: adapt only the last weight and bias */

static double adapted_query_loss(ml_model *m, const float *meta, int metasgd, int steps, float alpha,
                                 const ml_task_data *t) {
    ml_ctx *ctx = ml_ctx_create(0);
    float *phi = malloc((size_t)m->n_floats * sizeof(float));
    memcpy(phi, meta, (size_t)m->n_floats * sizeof(float));
    ml_tensor *p[ML_MAX_PARAMS], *g[ML_MAX_PARAMS];
    for (int s = 0; s < steps; s++) {
        ml_ctx_reset(ctx);
        ml_model_wrap(ctx, m, phi, p);
        ml_tensor *out = ml_model_forward(ctx, m, p, ml_tensor_wrap(ctx, (float *)t->xs, 2, ML_SHAPE(KS, 1)), 1, 0);
        ml_tensor *loss = ml_mse(ctx, out, ml_tensor_wrap(ctx, (float *)t->ys, 1, ML_SHAPE(KS)));
        ml_grad(ctx, loss, p, m->n_params, 0, g);
        for (int i = head_only ? m->n_params - 2 : 0; i < m->n_params; i++)
            for (int64_t j = 0; j < m->params[i].numel; j++) {
                int64_t k = m->params[i].offset + j;
                phi[k] -= (metasgd ? meta[m->n_floats + k] : alpha) * g[i]->data[j];
            }
    }
    ml_ctx_reset(ctx);
    ml_model_wrap(ctx, m, phi, p);
    ml_tensor *out = ml_model_forward(ctx, m, p, ml_tensor_wrap(ctx, (float *)t->xq, 2, ML_SHAPE(KQ, 1)), 1, 0);
    double l = 0;
    for (int i = 0; i < KQ; i++) l += ((double)out->data[i] - t->yq[i]) * ((double)out->data[i] - t->yq[i]);
    ml_ctx_destroy(ctx);
    free(phi);
    return l / KQ;
}

static int force_graph; /* 1: MAML on the recorded graph, not the fused MLP route */

static void check_meta_gradient_fd(ml_algo algo, int steps) {
    ml_model m;
    small_mlp(&m, 8, 3);
    ml_meta_config c = config(algo, steps, 0.05f);
    ml_meta meta;
    char err[256];
    CHECK(ml_meta_init(&meta, &m, &c, 4, err, sizeof err) == ML_OK);
    CHECK(meta.fused_route == (algo == ML_ALGO_MAML)); /* Meta-SGD and ANIL: always the graph */
    if (force_graph) meta.fused_route = 0;
    double loss;
    float *start = malloc((size_t)meta.n_meta * sizeof(float));
    memcpy(start, meta.meta, (size_t)meta.n_meta * sizeof(float));
    CHECK(ml_meta_step(&meta, &tasks[0], 1, &loss, err, sizeof err) == ML_OK);
    int metasgd = algo == ML_ALGO_METASGD;
    CHECK_NEAR(loss, adapted_query_loss(&m, start, metasgd, steps, 0.05f, &tasks[0]), 1e-5, 1e-4);
    const float h = 1e-3f; /* small enough not to cross ReLU kinks, large enough for float noise */
    int bad = 0;
    double worst = 0;
    for (int64_t j = 0; j < meta.n_meta && !bad; j++) {
        float keep = start[j];
        start[j] = keep + h;
        double lp = adapted_query_loss(&m, start, metasgd, steps, 0.05f, &tasks[0]);
        start[j] = keep - h;
        double lm = adapted_query_loss(&m, start, metasgd, steps, 0.05f, &tasks[0]);
        start[j] = keep;
        double fd = (lp - lm) / ((double)(keep + h) - (double)(keep - h));
        double err_j = fabs(fd - meta.grad[j]) / (1e-3 + fabs(fd));
        if (err_j > worst) worst = err_j;
        if (err_j > 1e-2) {
            ML_FAIL_AT("%s, %d steps: d/dmeta[%lld] = %.6g, finite difference %.6g", ml_algo_name(algo), steps,
                       (long long)j, meta.grad[j], fd);
            bad = 1;
        }
    }
    printf("  %s %d step(s)%s: %lld meta-parameters, worst relative error %.2e\n", ml_algo_name(algo), steps,
           meta.fused_route ? " (fused route)" : "", (long long)meta.n_meta, worst);
    free(start);
    ml_meta_free(&meta);
    ml_model_free(&m);
}

static void test_maml_one_step_matches_finite_differences(void) { check_meta_gradient_fd(ML_ALGO_MAML, 1); }
static void test_maml_two_steps_matches_finite_differences(void) { check_meta_gradient_fd(ML_ALGO_MAML, 2); }
static void test_maml_graph_route_matches_finite_differences(void) {
    force_graph = 1;
    check_meta_gradient_fd(ML_ALGO_MAML, 1);
    check_meta_gradient_fd(ML_ALGO_MAML, 2);
    force_graph = 0;
}
static void test_metasgd_matches_finite_differences(void) { check_meta_gradient_fd(ML_ALGO_METASGD, 1); }
static void test_anil_matches_finite_differences(void) {
    head_only = 1;
    check_meta_gradient_fd(ML_ALGO_ANIL, 2);
    head_only = 0;
}

static void test_protonet_logits_by_hand(void) {
    ml_ctx *ctx = ml_ctx_create(0);
    float s[8] = {0, 0, 2, 0, 4, 4, 6, 4}, q[2] = {1, 1};
    int32_t ys[4] = {0, 0, 1, 1};
    ml_tensor *l = ml_protonet_logits(ctx, ml_tensor_wrap(ctx, s, 2, ML_SHAPE(4, 2)), ys, 2,
                                      ml_tensor_wrap(ctx, q, 2, ML_SHAPE(1, 2)));
    CHECK(l != NULL);
    CHECK_NEAR(l->data[0], -1.0, 1e-6, 0);  /* prototype (1, 0) */
    CHECK_NEAR(l->data[1], -25.0, 1e-5, 0); /* prototype (5, 4) */
    int32_t bad[4] = {0, 0, 0, 0};          /* class 1 without support */
    CHECK(ml_protonet_logits(ctx, ml_tensor_wrap(ctx, s, 2, ML_SHAPE(4, 2)), bad, 2,
                             ml_tensor_wrap(ctx, q, 2, ML_SHAPE(1, 2))) == NULL);
    CHECK_STR_CONTAINS(ml_ctx_error(ctx), "no support");
    ml_ctx_destroy(ctx);
}

/* Synthetic 5-way 2-shot episodes of 16x16 images (class = random pattern +
 * noise): every classification learner must beat chance clearly after a few
 * dozen outer steps. */
static void test_classification_learners_learn(void) {
    enum { W = 5, S = 2, Q = 3, P = 256, TASKS = 4 };
    ml_rng r;
    ml_rng_seed(&r, 5);
    static float protos[20][P], xs[TASKS][W * S * P], xq[TASKS][W * Q * P];
    static int32_t ls[W * S], lq[W * Q];
    for (int c = 0; c < 20; c++)
        for (int i = 0; i < P; i++) protos[c][i] = (float)(ml_rng_uniform(&r) > 0.7);
    for (int i = 0; i < W * S; i++) ls[i] = i / S;
    for (int i = 0; i < W * Q; i++) lq[i] = i / Q;
    const ml_algo algos[] = {ML_ALGO_PROTONET, ML_ALGO_MATCHING, ML_ALGO_R2D2, ML_ALGO_COSINE, ML_ALGO_ANIL, ML_ALGO_FOMAML};
    for (size_t a = 0; a < sizeof algos / sizeof algos[0]; a++) {
        ml_model m;
        ml_model_spec spec;
        char err[256];
        ml_model_spec_parse("cnn4:8", &spec, err, sizeof err);
        spec.in_c = 1;
        spec.in_h = spec.in_w = 16;
        spec.n_out = ml_algo_is_metric(algos[a]) ? 0 : W;
        CHECK(ml_model_init(&m, &spec, err, sizeof err) == ML_OK);
        ml_model_init_params(&m, ML_INIT_TORCH, &r);
        ml_meta_config c = {.algo = algos[a], .loss = ML_LOSS_CROSS_ENTROPY, .inner_steps = 1, .inner_lr = 0.4f,
                            .threads = 2};
        c.outer = ml_optim_config_default(ML_OPTIM_ADAM);
        c.outer.lr = 3e-3;
        ml_meta meta;
        CHECK(ml_meta_init(&meta, &m, &c, TASKS, err, sizeof err) == ML_OK);
        ml_task_data tasks[TASKS];
        double acc_before = 0, acc_after = 0, loss, acc[TASKS * 2], l2[TASKS * 2];
        for (int it = 0; it <= 60; it++) {
            for (int t = 0; t < TASKS; t++) { /* a fresh episode: 5 of the 20 classes */
                int cls[W];
                for (int k = 0; k < W; k++) cls[k] = (int)ml_rng_below(&r, 20);
                for (int i = 0; i < W * S * P; i++)
                    xs[t][i] = protos[cls[i / (S * P)]][i % P] + 0.3f * (float)ml_rng_normal(&r);
                for (int i = 0; i < W * Q * P; i++)
                    xq[t][i] = protos[cls[i / (Q * P)]][i % P] + 0.3f * (float)ml_rng_normal(&r);
                tasks[t] = (ml_task_data){.n_support = W * S, .n_query = W * Q, .ways = W, .xs = xs[t], .xq = xq[t],
                                          .ls = ls, .lq = lq};
            }
            if (it == 0 || it == 60) {
                CHECK(ml_meta_evaluate(&meta, tasks, TASKS, 1, l2, acc, err, sizeof err) == ML_OK);
                double mean = 0;
                for (int t = 0; t < TASKS; t++) mean += acc[t * 2 + 1] / TASKS;
                if (it == 0) acc_before = mean; else acc_after = mean;
                if (it == 60) break;
            }
            if (ml_meta_step(&meta, tasks, TASKS, &loss, err, sizeof err) != ML_OK) {
                ML_FAIL_AT("%s: %s", ml_algo_name(algos[a]), err);
                break;
            }
        }
        printf("  %-9s query accuracy %.2f -> %.2f after 60 steps\n", ml_algo_name(algos[a]), acc_before, acc_after);
        /* Scoring only some step counts: the same numbers there, NaN elsewhere. */
        double all_l[TASKS * 4], all_a[TASKS * 4], some_l[TASKS * 4], some_a[TASKS * 4];
        const unsigned char report[4] = {0, 1, 0, 0}; /* steps 1 and 3 (the last is always scored) */
        CHECK(ml_meta_evaluate(&meta, tasks, TASKS, 3, all_l, all_a, err, sizeof err) == ML_OK);
        CHECK(ml_meta_evaluate_at(&meta, tasks, TASKS, 3, report, some_l, some_a, err, sizeof err) == ML_OK);
        int metric = ml_algo_is_metric(algos[a]);
        for (int t = 0; t < TASKS; t++)
            for (int st = 0; st < 4; st++) {
                int at = t * 4 + st, scored = metric || report[st] || st == 3;
                if (scored) CHECK(some_l[at] == all_l[at] && some_a[at] == all_a[at]);
                else CHECK(isnan(some_l[at]) && isnan(some_a[at]));
            }
        /* chance is 0.2; the MAML family adapts a fresh head from 2 shots, so a lower bar */
        CHECK(acc_after > (ml_algo_is_metric(algos[a]) ? 0.6 : 0.4) && acc_after > acc_before + 0.2);
        ml_meta_free(&meta);
        ml_model_free(&m);
    }
}

/* g_maml = (I - alpha H_s) g_fo for one inner step, H_s the support-loss Hessian at theta. */
static void test_first_order_is_maml_without_second_order_term(void) {
    ml_model m;
    small_mlp(&m, 8, 5);
    const float alpha = 0.05f;
    ml_meta_config cm = config(ML_ALGO_MAML, 1, alpha), cf = config(ML_ALGO_FOMAML, 1, alpha);
    ml_meta mm, mf;
    char err[256];
    double loss;
    CHECK(ml_meta_init(&mm, &m, &cm, 1, err, sizeof err) == ML_OK);
    CHECK(ml_meta_init(&mf, &m, &cf, 1, err, sizeof err) == ML_OK);
    CHECK(ml_meta_step(&mm, &tasks[1], 1, &loss, err, sizeof err) == ML_OK);
    CHECK(ml_meta_step(&mf, &tasks[1], 1, &loss, err, sizeof err) == ML_OK);
    /* H_s g_fo by double backward at theta (the model's initial data). */
    ml_ctx *ctx = ml_ctx_create(0);
    ml_tensor *p[ML_MAX_PARAMS], *g[ML_MAX_PARAMS], *hv[ML_MAX_PARAMS];
    ml_model_wrap(ctx, &m, m.data, p);
    ml_tensor *out = ml_model_forward(ctx, &m, p, ml_tensor_wrap(ctx, xs[1], 2, ML_SHAPE(KS, 1)), 1, 0);
    ml_tensor *ls = ml_mse(ctx, out, ml_tensor_wrap(ctx, ys[1], 1, ML_SHAPE(KS)));
    CHECK(ml_grad(ctx, ls, p, m.n_params, 1, g) == ML_OK);
    ml_tensor *dot = NULL;
    for (int i = 0; i < m.n_params; i++) {
        ml_tensor *v = ml_tensor_wrap(ctx, mf.grad + m.params[i].offset, m.params[i].ndim, m.params[i].shape);
        ml_tensor *d = ml_sum_all(ctx, ml_mul(ctx, g[i], v));
        dot = dot ? ml_add(ctx, dot, d) : d;
    }
    CHECK(ml_grad(ctx, dot, p, m.n_params, 0, hv) == ML_OK);
    double max_diff_fo = 0;
    for (int i = 0; i < m.n_params; i++)
        for (int64_t j = 0; j < m.params[i].numel; j++) {
            int64_t k = m.params[i].offset + j;
            double want = mf.grad[k] - alpha * hv[i]->data[j];
            CHECK_NEAR(mm.grad[k], want, 1e-5, 1e-3);
            double d = fabs(mm.grad[k] - mf.grad[k]);
            if (d > max_diff_fo) max_diff_fo = d;
        }
    CHECK(max_diff_fo > 1e-4); /* the second-order term is not negligible here */
    ml_ctx_destroy(ctx);
    ml_meta_free(&mm);
    ml_meta_free(&mf);
    ml_model_free(&m);
}

/* Linear model y = w x + b, k = 2 plain SGD steps, outer SGD with rate eps:
 * theta' = theta + eps * (phi_2 - theta), gradients written out by hand. */
static void test_reptile_step_closed_form(void) {
    ml_model m;
    small_mlp(&m, 0, 11);
    const float alpha = 0.02f, eps = 0.5f;
    ml_meta_config c = config(ML_ALGO_REPTILE, 2, alpha);
    c.outer.lr = eps;
    ml_meta meta;
    char err[256];
    double loss;
    CHECK(ml_meta_init(&meta, &m, &c, 1, err, sizeof err) == ML_OK);
    double w = m.data[0], b = m.data[1], w0 = w, b0 = b;
    for (int s = 0; s < 2; s++) {
        double gw = 0, gb = 0;
        for (int i = 0; i < KS; i++) {
            double r = w * xs[2][i] + b - ys[2][i];
            gw += 2 * r * xs[2][i] / KS;
            gb += 2 * r / KS;
        }
        w -= alpha * gw;
        b -= alpha * gb;
    }
    CHECK(ml_meta_step(&meta, &tasks[2], 1, &loss, err, sizeof err) == ML_OK);
    CHECK_NEAR(meta.meta[0], w0 + eps * (w - w0), 1e-6, 1e-5);
    CHECK_NEAR(meta.meta[1], b0 + eps * (b - b0), 1e-6, 1e-5);
    ml_meta_free(&meta);
    ml_model_free(&m);
}

/* src/meta/meta.c: from how many task-row floats the update is split */
extern int64_t ml__meta_split_update_floats;
extern int64_t ml__meta_ends_floats;
extern int ml__meta_split_tasks;

static void thread_test_model(ml_model *m) { small_mlp(m, 16, 21); }

/* 1, 2 and 3 threads give the same parameters, with the update serial and
 * split across the threads (2 and 3 threads against the serial 1). */
static void test_results_do_not_depend_on_thread_count(void) {
    ml_meta_config c = config(ML_ALGO_MAML, 2, 0.05f);
    c.outer = ml_optim_config_default(ML_OPTIM_ADAM);
    int64_t split_default = ml__meta_split_update_floats;
    ml_test_meta_threads_invariant(thread_test_model, &c, tasks, 4, 5);
    ml__meta_split_update_floats = 0;
    ml_test_meta_threads_invariant(thread_test_model, &c, tasks, 4, 5);
    ml__meta_split_update_floats = split_default;
    ml__meta_split_tasks = 0; /* the fused route on 2 threads dealt from both ends, not in fixed blocks */
    ml_test_meta_threads_invariant(thread_test_model, &c, tasks, 4, 5);
    ml__meta_split_tasks = 1;
    int64_t ends_default = ml__meta_ends_floats; /* the fused route dealt in order, not from both ends */
    ml__meta_ends_floats = 0;
    ml_test_meta_threads_invariant(thread_test_model, &c, tasks, 4, 5);
    ml__meta_ends_floats = ends_default;
    c.low_memory = 1; /* several threads: one task at a time, the threads inside it */
    ml_test_meta_threads_invariant(thread_test_model, &c, tasks, 4, 5);
}

/* The fused MLP route (src/meta/maml_mlp.c) against its twin, the recorded
 * graph: a 1-16-12-1 MLP, 20 Adam steps on 4 tasks, MAML and first-order
 * MAML with 1 and 2 inner steps; losses of every step and the final
 * parameters agree up to float rounding (different summation orders). */
static void test_fused_route_matches_graph(void) {
    const ml_algo algos[2] = {ML_ALGO_MAML, ML_ALGO_FOMAML};
    for (int a = 0; a < 2; a++)
        for (int steps = 1; steps <= 2; steps++) {
            ml_model_spec spec;
            char err[256];
            CHECK(ml_model_spec_parse("mlp:16,12", &spec, err, sizeof err) == ML_OK);
            spec.in_c = spec.in_h = spec.in_w = 1;
            spec.n_out = 1;
            ml_model m;
            CHECK(ml_model_init(&m, &spec, err, sizeof err) == ML_OK);
            ml_rng r;
            ml_rng_seed(&r, 31);
            ml_model_init_params(&m, ML_INIT_TORCH, &r);
            ml_meta_config c = config(algos[a], steps, 0.05f);
            c.threads = 2;
            c.outer = ml_optim_config_default(ML_OPTIM_ADAM);
            c.outer.lr = 3e-3;
            ml_meta fused, graph;
            CHECK(ml_meta_init(&fused, &m, &c, 4, err, sizeof err) == ML_OK);
            CHECK(ml_meta_init(&graph, &m, &c, 4, err, sizeof err) == ML_OK);
            CHECK(fused.fused_route == 1);
            graph.fused_route = 0;
            double worst_loss = 0, worst_param = 0, scale = 0;
            for (int it = 0; it < 20; it++) {
                double lf, lg;
                CHECK(ml_meta_step(&fused, tasks, 4, &lf, err, sizeof err) == ML_OK);
                CHECK(ml_meta_step(&graph, tasks, 4, &lg, err, sizeof err) == ML_OK);
                double d = fabs(lf - lg) / (1e-6 + fabs(lg));
                if (d > worst_loss) worst_loss = d;
            }
            for (int64_t j = 0; j < fused.n; j++) {
                double d = fabs((double)fused.meta[j] - graph.meta[j]);
                if (d > worst_param) worst_param = d;
                if (fabs(graph.meta[j]) > scale) scale = fabs(graph.meta[j]);
            }
            printf("  %s %d step(s), 20 outer steps: loss rel. diff <= %.2e, parameters max |diff| %.2e (scale %.2f)\n",
                   ml_algo_name(algos[a]), steps, worst_loss, worst_param, scale);
            CHECK(worst_loss < 1e-4);
            CHECK(worst_param < 1e-5 * (1 + scale));
            ml_meta_free(&fused);
            ml_meta_free(&graph);
            ml_model_free(&m);
        }
}

static void test_nan_loss_is_reported_and_nothing_changes(void) {
    ml_model m;
    small_mlp(&m, 8, 3);
    ml_meta_config c = config(ML_ALGO_MAML, 1, 0.05f);
    ml_meta meta;
    char err[256] = "";
    double loss;
    CHECK(ml_meta_init(&meta, &m, &c, 1, err, sizeof err) == ML_OK);
    float bad_y[KS];
    memcpy(bad_y, ys[0], sizeof bad_y);
    bad_y[2] = NAN;
    ml_task_data t = tasks[0];
    t.ys = bad_y;
    float before = meta.meta[3];
    CHECK(ml_meta_step(&meta, &t, 1, &loss, err, sizeof err) == ML_ERR_NUMERIC);
    CHECK_STR_CONTAINS(err, "NaN");
    CHECK(meta.meta[3] == before);
    ml_meta_free(&meta);
    ml_model_free(&m);
}

/* Metric learners and pretrain label examples: on regression (MSE) tasks
 * ml_meta_init refuses them, naming the learners that fit. */
static void test_learners_refuse_tasks_they_cannot_learn(void) {
    ml_model m;
    small_mlp(&m, 8, 3);
    char err[256] = "";
    ml_algo metric[] = {ML_ALGO_PROTONET, ML_ALGO_MATCHING, ML_ALGO_R2D2, ML_ALGO_PRETRAIN};
    for (int i = 0; i < 4; i++) {
        CHECK(!ml_algo_fits_loss(metric[i], ML_LOSS_MSE));
        CHECK(ml_algo_fits_loss(metric[i], ML_LOSS_CROSS_ENTROPY));
        ml_meta_config c = config(metric[i], 0, 0.05f);
        ml_meta meta;
        CHECK(ml_meta_init(&meta, &m, &c, 1, err, sizeof err) == ML_ERR_ARG);
        CHECK_STR_CONTAINS(err, "classifies only (regression tasks take maml, fomaml, metasgd, reptile, multitask, anil, oml or oml-fo)");
        ml_meta_free(&meta); /* a refused init leaves nothing allocated */
    }
    for (int a = 0; a < ML_ALGO_COUNT; a++) CHECK(ml_algo_fits_loss((ml_algo)a, ML_LOSS_CROSS_ENTROPY));
    CHECK(ml_algo_check_loss(ML_ALGO_ANIL, ML_LOSS_MSE, err, sizeof err) == ML_OK);
    ml_model_free(&m);
}

/* The learner table answers every question about a learner: names round
 * trip, the list for help texts, options, extra tensors and their names. */
static void test_learner_table(void) {
    char buf[256];
    CHECK_STR_CONTAINS(ml_algo_list(buf, sizeof buf, " or "), "maml, fomaml, metasgd, reptile");
    CHECK_STR_CONTAINS(buf, "r2d2, pretrain");
    char last[64];
    snprintf(last, sizeof last, " or %s", ml_algo_name((ml_algo)(ML_ALGO_COUNT - 1)));
    CHECK_STR_CONTAINS(buf, last);
    for (int a = 0; a < ML_ALGO_COUNT; a++) {
        const ml_learner_info *l = ml_algo_info((ml_algo)a);
        ml_algo back;
        CHECK(l && l->name && l->description && l->default_eval_steps);
        CHECK(ml_algo_parse(l->name, &back) == 0 && back == (ml_algo)a);
        CHECK(ml_algo_has_inner_steps((ml_algo)a) == (l->adapts != ML_ADAPT_NONE));
    }
    CHECK(ml_algo_info(ML_ALGO_COUNT) == NULL);
    CHECK(ml_algo_reads_option(ML_ALGO_MATCHING, "matching-scale"));
    CHECK(!ml_algo_reads_option(ML_ALGO_MATCHING, "matching"));
    CHECK(!ml_algo_reads_option(ML_ALGO_MAML, "matching-scale"));
    CHECK(ml_algo_reads_option(ML_ALGO_PRETRAIN, "finetune"));
    ml_model m;
    small_mlp(&m, 8, 3);
    ml_meta_tensor t[ML_META_MAX_EXTRAS];
    ml_meta_config c = config(ML_ALGO_METASGD, 1, 0.25f);
    CHECK(ml_meta_extras(&c, &m, t) == m.n_params);
    CHECK(!strcmp(t[0].name, "alpha.layers.0.weight"));
    CHECK(t[0].init == 0.25f && t[1].offset == m.params[1].offset);
    c.algo = ML_ALGO_R2D2;
    CHECK(ml_meta_extras(&c, &m, t) == 3 && ml_meta_extra_count(&c) == 3);
    CHECK(!strcmp(t[2].name, "r2d2.bias"));
    c.algo = ML_ALGO_MATCHING;
    CHECK(ml_meta_extras(&c, &m, t) == 0);
    c.matching_scale = 5;
    CHECK(ml_meta_extras(&c, &m, t) == 1 && t[0].init == 5.0f);
    ml_model_free(&m);
}

/* task_sum.c: rows added in task order whichever way they arrive: parked
 * rows (out of order), direct adds of the task that is next (the fused
 * route's ml__task_sum_add_in_order) and adds refused when not next. The
 * total must be bit-identical to 0 + row 0 + row 1 + ... */
typedef struct row_ref {
    const float *row;
    int64_t n;
} row_ref;

static void add_row_ref(float *acc, const void *user) {
    const row_ref *r = user;
    for (int64_t j = 0; j < r->n; j++) acc[j] += r->row[j];
}

/* ml_pool_run_ends: every item once; the caller's items are a prefix taken
 * in order, the helpers' the rest (whatever the timing). */
typedef struct ends_log {
    int worker_of[64];
    int caller_seq[64], n_caller;
} ends_log;

static void log_item(int item, int worker, void *user) {
    ends_log *e = user;
    __atomic_store_n(&e->worker_of[item], worker, __ATOMIC_RELAXED);
    if (worker == 0) e->caller_seq[e->n_caller++] = item; /* only the caller's thread writes these */
}

static void test_pool_from_ends(void) {
    for (int threads = 1; threads <= 3; threads++)
        for (int n = 1; n <= 40; n += 13) {
            ml_pool *p = ml_pool_create(threads);
            CHECK(p != NULL);
            for (int rep = 0; rep < 50; rep++) {
                ends_log e;
                memset(&e, 0, sizeof e);
                for (int i = 0; i < n; i++) e.worker_of[i] = -1;
                ml_pool_run_ends(p, n, log_item, &e);
                int prefix = 0;
                while (prefix < n && e.worker_of[prefix] == 0) prefix++;
                for (int i = 0; i < n; i++) CHECK(e.worker_of[i] >= 0 && e.worker_of[i] < threads);
                for (int i = prefix; i < n; i++) CHECK(e.worker_of[i] != 0);
                CHECK(e.n_caller == prefix);
                for (int i = 0; i < e.n_caller; i++) CHECK(e.caller_seq[i] == i);
            }
            ml_pool_destroy(p);
        }
}

/* ml_pool_run_split: every item once; a helper's items are the front of
 * its block in order, the caller runs the rest (its block, then what the
 * helpers had not started, from the back): with a helper that sleeps now
 * and then, so that the caller takes some of its items. */
/* A helper kept busy for `ms` milliseconds (late for its next item). */
static void busy_ms(double ms) {
    double t0 = ml_now();
    while (ml_now() - t0 < ms * 1e-3) {
    }
}

typedef struct split_log {
    int worker_of[64];
    int helper_seq[64], n_helper; /* items of worker 1, in the order run */
    int rep;
} split_log;

static void log_split_item(int item, int worker, void *user) {
    split_log *e = user;
    if (worker == 1) {
        e->helper_seq[e->n_helper++] = item; /* only worker 1 writes these */
        if ((e->rep + e->n_helper) % 3 == 0) busy_ms(1); /* late: the caller takes from the back */
    }
    __atomic_store_n(&e->worker_of[item], worker, __ATOMIC_RELAXED);
}

static void test_pool_split(void) {
    int stolen = 0;
    for (int threads = 1; threads <= 3; threads++)
        for (int n = 1; n <= 40; n += 13) {
            ml_pool *p = ml_pool_create(threads);
            CHECK(p != NULL);
            for (int rep = 0; rep < 20; rep++) {
                split_log e;
                memset(&e, 0, sizeof e);
                e.rep = rep;
                for (int i = 0; i < n; i++) e.worker_of[i] = -1;
                ml_pool_run_split(p, n, log_split_item, &e);
                for (int i = 0; i < n; i++) CHECK(e.worker_of[i] >= 0 && e.worker_of[i] < threads);
                if (n < threads || threads == 1) continue;
                int lo, hi;
                ml_pool_split_range(threads, n, 1, &lo, &hi);
                for (int k = 0; k < e.n_helper; k++) CHECK(e.helper_seq[k] == lo + k); /* the front, in order */
                for (int i = lo + e.n_helper; i < hi; i++) CHECK(e.worker_of[i] == 0);
                ml_pool_split_range(threads, n, 0, &lo, &hi);
                for (int i = lo; i < hi; i++) CHECK(e.worker_of[i] == 0);
                stolen += threads == 2 && e.n_helper < n - (hi - lo);
            }
            ml_pool_destroy(p);
        }
    CHECK(stolen > 0); /* the late helper's items were taken */
}

/* The fused route on 2 threads in fixed blocks with a helper late in some
 * steps (the caller then runs the end of the helper's block): the same bits
 * as 1 thread. */
static void late_helper(int item, int worker, void *user) {
    (void)item;
    if (worker == 1 && *(int *)user % 2) busy_ms(2);
}

static void test_fused_split_with_late_helper(void) {
    ml_meta_config c = config(ML_ALGO_MAML, 1, 0.05f);
    c.outer = ml_optim_config_default(ML_OPTIM_ADAM);
    float *ref = NULL;
    for (int threads = 1; threads <= 2; threads++) {
        ml_model m;
        thread_test_model(&m);
        c.threads = threads;
        ml_meta meta;
        char err[256];
        double loss;
        CHECK(ml_meta_init(&meta, &m, &c, 4, err, sizeof err) == ML_OK);
        for (int it = 0; it < 8; it++) {
            meta.prepare_task = late_helper;
            meta.prepare_user = &it;
            CHECK(ml_meta_step(&meta, tasks, 4, &loss, err, sizeof err) == ML_OK);
        }
        ml_test_same_as_first(&ref, &meta);
        ml_meta_free(&meta);
        ml_model_free(&m);
    }
    free(ref);
}

static void test_task_sum_orders(void) {
    enum { N = 37, T = 7 };
    static float rows[T][N];
    float want[N] = {0};
    uint64_t x = 12345;
    for (int t = 0; t < T; t++)
        for (int j = 0; j < N; j++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            rows[t][j] = (float)((double)(x >> 11) / 9007199254740992.0 - 0.5) * (float)(1 + 1000 * (j % 3));
        }
    for (int t = 0; t < T; t++)
        for (int j = 0; j < N; j++) want[j] += rows[t][j];
    ml__task_sum *s = ml__task_sum_create(N, T);
    CHECK(s != NULL);
    /* arrival order; direct = 1: try the in-order add first */
    const int order[T] = {2, 0, 1, 5, 3, 4, 6}, direct[T] = {1, 1, 0, 0, 1, 1, 1};
    for (int rep = 0; rep < 2; rep++) { /* the second step reuses the slots */
        ml__task_sum_reset(s);
        for (int k = 0; k < T; k++) {
            int t = order[k];
            row_ref r = {rows[t], N};
            int added = direct[k] && ml__task_sum_add_in_order(s, t, add_row_ref, &r);
            /* in order: 0 (direct), 3 (after 0-2), 4 and 6; 2 must be refused (0 not added yet) */
            if (direct[k]) CHECK(added == (t == 0 || t == 3 || t == 4 || t == 6));
            if (!added) {
                float *row = ml__task_sum_row(s);
                CHECK(row != NULL);
                memcpy(row, rows[t], sizeof rows[t]);
                ml__task_sum_commit(s, t, row);
            }
        }
        CHECK(ml__task_sum_done(s, T));
        CHECK(memcmp(ml__task_sum_total(s), want, sizeof want) == 0);
    }
    ml__task_sum_destroy(s);
}

/* Second-order MAML and ANIL on a CNN: ml_meta_step's meta-gradient (query
 * gradient first, with low_memory the first block's conv run twice and its
 * batch norm's backward from kept values, then the inner step walked with it
 * as the seed: meta/maml.c) is the same bits as one walk
 * from the query loss through everything (computed here as the learner did
 * before). With block 1 lean (the default: its query pass without the conv
 * output, conv_bn_pool_lean.c) it is the same up to that output's rounding,
 * and the same bits on 1 and 2 threads with low_memory off and on. */
static void one_walk_meta_gradient(ml_model *m, int head, const float *theta_in, const ml_task_data *t, float *out) {
    ml_ctx *ctx = ml_ctx_create(0);
    ml_ctx_set_consume(ctx, 1);
    int np = m->n_params, first = head ? np - 2 : 0;
    const int64_t per = (int64_t)m->spec.in_c * m->spec.in_h * m->spec.in_w;
    ml_tensor *theta[ML_MAX_PARAMS], *fast[ML_MAX_PARAMS], *g[ML_MAX_PARAMS], *meta[ML_MAX_PARAMS];
    ml_model_wrap(ctx, m, (float *)theta_in, theta);
    ml_tensor *xs = ml_tensor_wrap(ctx, (float *)t->xs, 2, ML_SHAPE(t->n_support, per));
    ml_tensor *out_s = ml_model_forward(ctx, m, theta, xs, 1, 0);
    CHECK(ml_grad(ctx, ml_cross_entropy(ctx, out_s, t->ls), theta + first, np - first, 1, g + first) == ML_OK);
    for (int i = 0; i < np; i++) fast[i] = i < first ? theta[i] : ml_sub(ctx, theta[i], ml_scale(ctx, g[i], 0.4f));
    ml_tensor *xq = ml_tensor_wrap(ctx, (float *)t->xq, 2, ML_SHAPE(t->n_query, per));
    ml_tensor *out_q = ml_model_forward(ctx, m, fast, xq, 1, 0);
    CHECK(ml_grad(ctx, ml_cross_entropy(ctx, out_q, t->lq), theta, np, 0, meta) == ML_OK);
    for (int i = 0; i < np; i++)
        memcpy(out + m->params[i].offset, meta[i]->data, (size_t)meta[i]->numel * sizeof(float));
    ml_ctx_destroy(ctx);
}

static void test_cnn_meta_gradient_is_one_walk(void) {
    enum { W = 3, S = 2, Q = 4, H = 16 };
    ml_rng r;
    ml_rng_seed(&r, 5);
    static float xs[W * S * H * H], xq[W * Q * H * H];
    static int32_t ls[W * S], lq[W * Q];
    for (int i = 0; i < W * S * H * H; i++) xs[i] = (float)ml_rng_uniform(&r);
    for (int i = 0; i < W * Q * H * H; i++) xq[i] = (float)ml_rng_uniform(&r);
    for (int i = 0; i < W * S; i++) ls[i] = i / S;
    for (int i = 0; i < W * Q; i++) lq[i] = i / Q;
    ml_task_data t = {.n_support = W * S, .n_query = W * Q, .xs = xs, .xq = xq, .ls = ls, .lq = lq};
    const ml_algo algos[] = {ML_ALGO_MAML, ML_ALGO_ANIL};
    float *lean_first = NULL; /* the lean route's gradient of its first run, per learner */
    for (int a = 0; a < 2; a++)
        for (int run = 0; run < 8; run++) { /* threads 1, 2; low_memory off, on; block 1 lean off, on */
            const int threads = 1 + run % 2, low_memory = run / 2 % 2, lean = run / 4;
            ml_model m;
            ml_model_spec spec;
            char err[256];
            ml_model_spec_parse("cnn4:4", &spec, err, sizeof err);
            spec.in_c = 1;
            spec.in_h = spec.in_w = H;
            spec.n_out = W;
            CHECK(ml_model_init(&m, &spec, err, sizeof err) == ML_OK);
            ml_rng pr; /* the same parameters in every run of a learner */
            ml_rng_seed(&pr, 100 + (uint64_t)a);
            ml_model_init_params(&m, ML_INIT_TORCH, &pr);
            ml_meta_config c = {.algo = algos[a], .loss = ML_LOSS_CROSS_ENTROPY, .inner_steps = 1, .inner_lr = 0.4f,
                                .threads = threads, .low_memory = low_memory,
                                .exact_first_block = !lean};
            c.outer = ml_optim_config_default(ML_OPTIM_SGD);
            ml_meta meta;
            CHECK(ml_meta_init(&meta, &m, &c, 1, err, sizeof err) == ML_OK);
            float *start = malloc((size_t)meta.n_meta * sizeof(float));
            float *want = malloc((size_t)meta.n_meta * sizeof(float));
            memcpy(start, meta.meta, (size_t)meta.n_meta * sizeof(float));
            double loss;
            CHECK(ml_meta_step(&meta, &t, 1, &loss, err, sizeof err) == ML_OK);
            one_walk_meta_gradient(&m, algos[a] == ML_ALGO_ANIL, start, &t, want);
            if (!lean) {
                CHECK(memcmp(want, meta.grad, (size_t)meta.n_meta * sizeof(float)) == 0);
            } else { /* the same up to the conv output's rounding; the same bits on 1-2 threads, with low_memory or not */
                double scale = 0;
                for (int64_t j = 0; j < meta.n_meta; j++) scale = fmax(scale, fabs(want[j]));
                for (int64_t j = 0; j < meta.n_meta; j++)
                    if (fabs(meta.grad[j] - want[j]) > 1e-4 * scale + 1e-3 * fabs(want[j])) {
                        ML_FAIL_AT("%s lean: d/dmeta[%lld] = %.9g, one walk %.9g", ml_algo_name(algos[a]),
                                   (long long)j, meta.grad[j], want[j]);
                        break;
                    }
                if (!lean_first) {
                    lean_first = malloc((size_t)meta.n_meta * sizeof(float));
                    memcpy(lean_first, meta.grad, (size_t)meta.n_meta * sizeof(float));
                } else {
                    CHECK(memcmp(lean_first, meta.grad, (size_t)meta.n_meta * sizeof(float)) == 0);
                }
                if (run == 7) free(lean_first), lean_first = NULL;
            }
            free(start);
            free(want);
            ml_meta_free(&meta);
            ml_model_free(&m);
        }
}

int main(void) {
    make_tasks();
    ML_RUN(test_maml_one_step_matches_finite_differences);
    ML_RUN(test_maml_two_steps_matches_finite_differences);
    ML_RUN(test_maml_graph_route_matches_finite_differences);
    ML_RUN(test_fused_route_matches_graph);
    ML_RUN(test_metasgd_matches_finite_differences);
    ML_RUN(test_anil_matches_finite_differences);
    ML_RUN(test_cnn_meta_gradient_is_one_walk);
    ML_RUN(test_protonet_logits_by_hand);
    ML_RUN(test_classification_learners_learn);
    ML_RUN(test_first_order_is_maml_without_second_order_term);
    ML_RUN(test_reptile_step_closed_form);
    ML_RUN(test_results_do_not_depend_on_thread_count);
    ML_RUN(test_nan_loss_is_reported_and_nothing_changes);
    ML_RUN(test_learners_refuse_tasks_they_cannot_learn);
    ML_RUN(test_learner_table);
    ML_RUN(test_task_sum_orders);
    ML_RUN(test_pool_from_ends);
    ML_RUN(test_pool_split);
    ML_RUN(test_fused_split_with_late_helper);
    return ml_test_summary();
}
