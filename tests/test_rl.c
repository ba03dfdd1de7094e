/* test_rl.c: meta-RL environments, the policy-gradient estimator, the KL's
 * Hessian-vector products through the adaptation, the TRPO step, thread-count
 * invariance and bit-exact resume (metalearn/env.h, metalearn/rl.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metalearn/env.h"
#include "metalearn/eval.h"
#include "metalearn/run.h"
#include "metalearn/rl.h"
#include "ml_test.h"
#include "run/rl_run.h"

static void test_env_parse(void) {
    ml_env e;
    char err[256];
    CHECK_INT_EQ(ml_env_parse("nav2d", &e, err, sizeof err), ML_OK);
    CHECK_INT_EQ(e.obs_dim, 2);
    CHECK_INT_EQ(e.horizon, 100);
    CHECK_INT_EQ(ml_env_parse("bandit:5", &e, err, sizeof err), ML_OK);
    CHECK_INT_EQ(e.n_actions, 5);
    CHECK_INT_EQ(ml_env_parse("nav2d-rot", &e, err, sizeof err), ML_OK);
    CHECK(ml_env_parse("bandit", &e, err, sizeof err) != ML_OK);
    CHECK_STR_CONTAINS(err, "bandit:K");
    CHECK(ml_env_parse("bandit:1", &e, err, sizeof err) != ML_OK);
    CHECK(ml_env_parse("bandit:x", &e, err, sizeof err) != ML_OK);
    CHECK(ml_env_parse("nav2d:3", &e, err, sizeof err) != ML_OK);
    CHECK(ml_env_parse("cartpole", &e, err, sizeof err) != ML_OK);
    CHECK_STR_CONTAINS(err, "known: nav2d, bandit:K, nav2d-rot");
}

static void test_nav2d_dynamics(void) {
    ml_env e;
    char err[256];
    ml_env_parse("nav2d", &e, err, sizeof err);
    ml_env_task task = {{0.2f, -0.1f}};
    float state[4], obs[4], rew[2];
    uint8_t done[2];
    e.kind->reset(&e, &task, 2, state, obs);
    CHECK(obs[0] == 0 && obs[1] == 0 && obs[2] == 0 && obs[3] == 0);
    float act[4] = {0.5f, -0.05f, 0.1f, -0.1f}; /* the first is clipped to (0.1, -0.05) */
    e.kind->step(&e, &task, 2, state, act, obs, rew, done, NULL);
    CHECK_NEAR(obs[0], 0.1, 1e-7, 0);
    CHECK_NEAR(obs[1], -0.05, 1e-7, 0);
    CHECK_NEAR(rew[0], -sqrt(0.1 * 0.1 + 0.05 * 0.05), 1e-6, 0);
    CHECK_NEAR(rew[1], -0.1, 1e-6, 0);
    CHECK(!done[0] && !done[1]);
    e.kind->step(&e, &task, 2, state, act, obs, rew, done, NULL); /* the second reaches (0.2, -0.2) */
    float act2[4] = {0.1f, -0.05f, 0.0f, 0.1f};
    e.kind->reset(&e, &task, 2, state, obs);
    e.kind->step(&e, &task, 2, state, act2, obs, rew, done, NULL);
    e.kind->step(&e, &task, 2, state, act2, obs, rew, done, NULL);
    CHECK(done[0]); /* at (0.2, -0.1): the goal */
    CHECK_NEAR(rew[0], 0.0, 1e-6, 0);
    CHECK(!done[1]);
}

static void test_nav2d_rot_dynamics(void) {
    ml_env e;
    char err[256];
    ml_env_parse("nav2d-rot", &e, err, sizeof err);
    ml_env_task task = {{0.0f, 1.0f}}; /* cos, sin: a quarter turn */
    float state[2], obs[2], rew[1];
    uint8_t done[1];
    e.kind->reset(&e, &task, 1, state, obs);
    float act[2] = {0.3f, 0.0f}; /* clipped to (0.1, 0), then turned to (0, 0.1) */
    e.kind->step(&e, &task, 1, state, act, obs, rew, done, NULL);
    CHECK_NEAR(obs[0], 0.0, 1e-7, 0);
    CHECK_NEAR(obs[1], 0.1, 1e-7, 0);
    CHECK_NEAR(rew[0], -sqrt(0.3 * 0.3 + 0.2 * 0.2), 1e-6, 0);
    /* tasks: unit rotation vectors with angles spread over the circle */
    ml_rng rng;
    ml_rng_seed(&rng, 3);
    int quadrant[4] = {0};
    for (int i = 0; i < 400; i++) {
        e.kind->sample_task(&e, &rng, &task);
        CHECK_NEAR(task.p[0] * task.p[0] + task.p[1] * task.p[1], 1.0, 1e-5, 0);
        quadrant[(task.p[0] > 0) * 2 + (task.p[1] > 0)]++;
    }
    for (int q = 0; q < 4; q++) CHECK(quadrant[q] > 60);
}

static void test_env_seeding(void) {
    ml_env e;
    char err[256];
    ml_env_parse("nav2d", &e, err, sizeof err);
    ml_rng a, b, c;
    ml_rng_seed(&a, 7), ml_rng_seed(&b, 7), ml_rng_seed(&c, 8);
    ml_env_task ta, tb, tc;
    double lo = 1, hi = -1;
    for (int i = 0; i < 200; i++) {
        e.kind->sample_task(&e, &a, &ta);
        e.kind->sample_task(&e, &b, &tb);
        e.kind->sample_task(&e, &c, &tc);
        CHECK(memcmp(&ta, &tb, sizeof ta) == 0);
        CHECK(ta.p[0] != tc.p[0]);
        for (int d = 0; d < 2; d++) lo = ta.p[d] < lo ? ta.p[d] : lo, hi = ta.p[d] > hi ? ta.p[d] : hi;
    }
    CHECK(lo >= -0.5 && lo < -0.45 && hi < 0.5 && hi > 0.45);
    /* bandit: each arm pays 1 with its mean's frequency */
    ml_env_parse("bandit:3", &e, err, sizeof err);
    e.kind->sample_task(&e, &a, &ta);
    enum { N = 30000 };
    static float act[N], obs[N], rew[N];
    static uint8_t done[N];
    for (int arm = 0; arm < 3; arm++) {
        for (int i = 0; i < N; i++) act[i] = (float)arm;
        e.kind->step(&e, &ta, N, NULL, act, obs, rew, done, &a);
        double s = 0;
        for (int i = 0; i < N; i++) s += rew[i];
        double p = ta.p[arm], sd = sqrt(p * (1 - p) / N);
        CHECK_NEAR(s / N, p, 4 * sd + 1e-9, 0);
    }
    CHECK(e.kind->best_mean(&e, &ta) >= ta.p[0] && e.kind->best_mean(&e, &ta) >= ta.p[2]);
}

/* Constant rewards without ends: returns H - t are linear in the time
 * features, the baseline fits them and GAE(1, 1) leaves nothing. Normalised
 * advantages have mean 0 and unit spread. */
static void test_baseline_gae(void) {
    ml_ctx *ctx = ml_ctx_create(1 << 20);
    ml_episodes ep;
    CHECK_INT_EQ(ml_episodes_alloc(ctx, &ep, 6, 3, 2, 2, 2), ML_OK);
    ml_rng rng;
    ml_rng_seed(&rng, 1);
    for (int r = 0; r < 18; r++) {
        ep.x[2 * r] = (float)ml_rng_normal(&rng), ep.x[2 * r + 1] = (float)ml_rng_normal(&rng);
        ep.rew[r] = 1, ep.mask[r] = 1, ep.weight[r] = 1.0f / 18;
    }
    for (int i = 0; i < 3; i++) ep.length[i] = 6;
    CHECK_INT_EQ(ml_rl_advantages(&ep, 1.0, 1.0, 0), ML_OK);
    for (int r = 0; r < 18; r++) CHECK_NEAR(ep.adv[r], 0.0, 2e-2, 0); /* ridge 1e-5 on tiny t^3 features */
    /* random rewards, trajectory 1 ends after step 2 */
    for (int r = 0; r < 18; r++) ep.rew[r] = (float)ml_rng_normal(&rng);
    for (int t = 3; t < 6; t++) ep.mask[t * 3 + 1] = 0, ep.rew[t * 3 + 1] = 0;
    ep.length[1] = 3;
    CHECK_INT_EQ(ml_rl_advantages(&ep, 0.9, 0.95, 1), ML_OK);
    double mean = 0, var = 0;
    for (int i = 0; i < 3; i++) {
        double s = 0, s2 = 0;
        for (int t = 0; t < 6; t++) s += ep.adv[t * 3 + i] * ep.mask[t * 3 + i], s2 += ep.adv[t * 3 + i] * ep.adv[t * 3 + i];
        mean += s / ep.length[i] / 3, var += s2 / ep.length[i] / 3;
    }
    CHECK_NEAR(mean, 0.0, 1e-5, 0);
    CHECK_NEAR(var, 1.0, 1e-4, 0);
    for (int t = 3; t < 6; t++) CHECK(ep.adv[t * 3 + 1] == 0);
    ml_ctx_destroy(ctx);
}

/* The REINFORCE-with-baseline gradient (ml_rl_pg_loss on sampled
 * trajectories) against central differences of the expected return, both
 * from the same noise (common random numbers: the same seed draws the same
 * normals, so a perturbed policy reuses them). Linear Gaussian policy, a goal
 * out of reach so no trajectory ends, horizon 5. */
static void test_pg_vs_finite_differences(void) {
    enum { H = 5, N = 20000 };
    ml_env e;
    char err[256];
    ml_env_parse("nav2d", &e, err, sizeof err);
    ml_env_task task = {{0.8f, -0.6f}};
    ml_policy p;
    CHECK_INT_EQ(ml_policy_init(&p, 2, 2, 0, 0, NULL), ML_OK);
    float theta[8] = {0.2f, -0.1f, 0.05f, 0.15f, 0.04f, -0.03f, (float)log(0.03), (float)log(0.03)};
    ml_ctx *ctx = ml_ctx_create((size_t)64 << 20);
    ml_tensor *params[ML_POLICY_MAX_TENSORS], *g[ML_POLICY_MAX_TENSORS];
    ml_episodes ep;
    ml_rng rng;
    ml_policy_wrap(ctx, &p, theta, params);
    ml_episodes_alloc(ctx, &ep, H, N, 2, 2, 2);
    ml_rng_seed(&rng, 42);
    CHECK_INT_EQ(ml_rl_sample(ctx, &e, &task, &p, params, 0, &rng, &ep), ML_OK);
    for (int i = 0; i < N; i++) CHECK_INT_EQ(ep.length[i], H);
    CHECK_INT_EQ(ml_rl_advantages(&ep, 1.0, 1.0, 0), ML_OK);
    ml_tensor *loss = ml_rl_pg_loss(ctx, &p, params, &ep);
    CHECK_INT_EQ(ml_grad(ctx, loss, params, p.n_tensors, 0, g), ML_OK);
    float pg[8];
    for (int j = 0; j < p.n_tensors; j++) memcpy(pg + p.offset[j], g[j]->data, sizeof(float) * p.numel[j]);
    double err2 = 0, norm2 = 0;
    for (int k = 0; k < 8; k++) {
        double jv[2], h = 2e-3;
        for (int s = 0; s < 2; s++) {
            float th[8];
            memcpy(th, theta, sizeof th);
            th[k] += (float)(s ? -h : h);
            ml_ctx_reset(ctx);
            ml_policy_wrap(ctx, &p, th, params);
            ml_episodes_alloc(ctx, &ep, H, N, 2, 2, 2);
            ml_rng_seed(&rng, 42);
            ml_rl_sample(ctx, &e, &task, &p, params, 0, &rng, &ep);
            jv[s] = ml_episodes_mean_return(&ep);
        }
        double fd = (jv[0] - jv[1]) / (2 * h), est = -pg[k] * H; /* weights are 1 / (H N) */
        printf("    d return / d theta[%d]: estimator %.4f, differences %.4f\n", k, est, fd);
        err2 += (est - fd) * (est - fd), norm2 += fd * fd;
    }
    CHECK(sqrt(err2) < 0.1 * sqrt(norm2));
    ml_ctx_destroy(ctx);
}

/* KL(pi_{theta'(theta)} || pi_old) with theta' one policy-gradient step from
 * theta on fixed trajectories; returns its gradient, and with v its
 * Hessian-vector product by double backward (what TRPO's solver uses). */
static void kl_grad(const ml_policy *p, float *theta, const ml_episodes *train, const ml_episodes *valid,
                    const float *old_head, const float *old_log_std, float lr, const float *v,
                    float *grad, float *hv) {
    ml_ctx *ctx = ml_ctx_create((size_t)16 << 20);
    ml_tensor *leaves[ML_POLICY_MAX_TENSORS], *fast[ML_POLICY_MAX_TENSORS], *g[ML_POLICY_MAX_TENSORS];
    ml_policy_wrap(ctx, p, theta, leaves);
    ml_rl_adapt(ctx, p, leaves, train, lr, 1, 1, fast);
    int64_t rows = (int64_t)valid->horizon * valid->n;
    ml_tensor *head = ml_policy_head(ctx, p, fast, ml_tensor_wrap(ctx, valid->x, 2, ML_SHAPE(rows, p->in_dim)));
    ml_tensor *w = ml_tensor_wrap(ctx, valid->weight, 1, ML_SHAPE(rows));
    ml_tensor *kl = ml_sum_all(ctx, ml_mul(ctx, ml_policy_kl(ctx, p, fast, head, old_head, old_log_std), w));
    ml_grad(ctx, kl, leaves, p->n_tensors, hv != NULL, g);
    for (int j = 0; j < p->n_tensors; j++) memcpy(grad + p->offset[j], g[j]->data, sizeof(float) * p->numel[j]);
    if (hv) {
        ml_tensor *vt[ML_POLICY_MAX_TENSORS], *h[ML_POLICY_MAX_TENSORS], *dot = NULL;
        ml_policy_wrap(ctx, p, (float *)v, vt);
        for (int j = 0; j < p->n_tensors; j++) {
            ml_tensor *term = ml_sum_all(ctx, ml_mul(ctx, g[j], vt[j]));
            dot = dot ? ml_add(ctx, dot, term) : term;
        }
        ml_grad(ctx, dot, leaves, p->n_tensors, 0, h);
        for (int j = 0; j < p->n_tensors; j++) memcpy(hv + p->offset[j], h[j]->data, sizeof(float) * p->numel[j]);
    }
    CHECK_INT_EQ(ml_ctx_status(ctx), ML_OK);
    ml_ctx_destroy(ctx);
}

static void test_kl_hvp_vs_finite_differences(void) {
    ml_env e;
    char err[256];
    ml_env_parse("nav2d", &e, err, sizeof err);
    ml_policy p;
    int hidden[1] = {8};
    ml_policy_init(&p, 2, 2, 0, 1, hidden);
    ml_rng rng;
    ml_rng_seed(&rng, 5);
    float *theta = malloc(sizeof(float) * p.n_params), *v = malloc(sizeof(float) * p.n_params);
    float *th = malloc(sizeof(float) * p.n_params), *gp = malloc(sizeof(float) * p.n_params);
    float *gm = malloc(sizeof(float) * p.n_params), *hv = malloc(sizeof(float) * p.n_params);
    ml_policy_init_params(&p, theta, 0.5, &rng);
    for (int64_t i = 0; i < p.n_params; i++) v[i] = (float)ml_rng_normal(&rng);
    ml_env_task task;
    e.kind->sample_task(&e, &rng, &task);
    ml_ctx *ctx = ml_ctx_create((size_t)16 << 20);
    ml_tensor *leaves[ML_POLICY_MAX_TENSORS], *fast[ML_POLICY_MAX_TENSORS];
    ml_episodes train, valid;
    ml_policy_wrap(ctx, &p, theta, leaves);
    ml_episodes_alloc(ctx, &train, 10, 8, 2, 2, 2);
    ml_episodes_alloc(ctx, &valid, 10, 8, 2, 2, 2);
    ml_rl_sample(ctx, &e, &task, &p, leaves, 0, &rng, &train);
    ml_rl_advantages(&train, 0.99, 1.0, 1);
    const float lr = 0.5f;
    ml_rl_adapt(ctx, &p, leaves, &train, lr, 1, 0, fast);
    ml_rl_sample(ctx, &e, &task, &p, fast, 0, &rng, &valid);
    /* old distribution: the adapted policy at theta, moved a little so the
     * KL's own gradient is not zero and its curvature is all exercised */
    ml_tensor *head = ml_policy_head(ctx, &p, fast, ml_tensor_wrap(ctx, valid.x, 2, ML_SHAPE(80, 2)));
    float *old_head = malloc(sizeof(float) * 160), old_log_std[2];
    for (int r = 0; r < 160; r++) old_head[r] = head->data[r] + 0.05f * (float)ml_rng_normal(&rng);
    for (int a = 0; a < 2; a++) old_log_std[a] = fast[2]->data[a] + 0.1f;
    kl_grad(&p, theta, &train, &valid, old_head, old_log_std, lr, v, gp, hv);
    const double eps = 1e-2;
    for (int s = 0; s < 2; s++) {
        for (int64_t i = 0; i < p.n_params; i++) th[i] = theta[i] + (float)((s ? -eps : eps) * v[i]);
        kl_grad(&p, th, &train, &valid, old_head, old_log_std, lr, NULL, s ? gm : gp, NULL);
    }
    double err2 = 0, norm2 = 0;
    for (int64_t i = 0; i < p.n_params; i++) {
        double fd = (gp[i] - gm[i]) / (2 * eps);
        err2 += (hv[i] - fd) * (hv[i] - fd), norm2 += fd * fd;
    }
    printf("    |Hv - differences| / |differences| = %.2e (|Hv| %.3g)\n", sqrt(err2 / norm2), sqrt(norm2));
    CHECK(sqrt(err2) < 0.02 * sqrt(norm2));
    CHECK(norm2 > 0);
    ml_ctx_destroy(ctx);
    free(theta), free(v), free(th), free(gp), free(gm), free(hv), free(old_head);
}

static ml_rl_config tiny_config(void) {
    ml_rl_config c = ml_rl_config_default();
    c.n_hidden = 1, c.hidden[0] = 8;
    c.rollouts = 4, c.horizon = 12, c.meta_batch = 3;
    c.cg_iters = 4, c.ls_steps = 6;
    return c;
}

static void test_trpo_respects_kl_bound(void) {
    ml_rl_config c = tiny_config();
    c.max_kl = 1e-3;
    ml_rl *rl = NULL;
    char err[256];
    CHECK_INT_EQ(ml_rl_create(&c, &rl, err, sizeof err), ML_OK);
    int accepted = 0;
    for (int it = 0; it < 3; it++) {
        ml_rl_stats s;
        CHECK_INT_EQ(ml_rl_step(rl, &s), ML_OK);
        CHECK(s.kl_after < c.max_kl);
        if (s.step_size > 0) {
            accepted++;
            CHECK(s.loss_after < s.loss_before);
            CHECK(s.kl_after > 0);
        }
    }
    CHECK(accepted > 0);
    ml_rl_destroy(rl);
}

static void run_steps(ml_rl_config c, int steps, float *out, int64_t n) {
    ml_rl *rl = NULL;
    char err[256];
    CHECK_INT_EQ(ml_rl_create(&c, &rl, err, sizeof err), ML_OK);
    for (int i = 0; i < steps; i++) CHECK_INT_EQ(ml_rl_step(rl, NULL), ML_OK);
    memcpy(out, ml_rl_params(rl), sizeof(float) * (size_t)n);
    ml_rl_destroy(rl);
}

static void test_threads_same_result(void) {
    ml_rl_config c = tiny_config();
    ml_policy p;
    ml_policy_init(&p, 2, 2, 0, 1, c.hidden);
    float *a = malloc(sizeof(float) * p.n_params), *b = malloc(sizeof(float) * p.n_params);
    c.threads = 1;
    run_steps(c, 2, a, p.n_params);
    c.threads = 2;
    run_steps(c, 2, b, p.n_params);
    CHECK(memcmp(a, b, sizeof(float) * p.n_params) == 0);
    /* and evaluation */
    double ra[3 * 3], rb[3 * 3];
    ml_rl *rl = NULL;
    char err[256];
    c.threads = 1;
    ml_rl_create(&c, &rl, err, sizeof err);
    CHECK_INT_EQ(ml_rl_evaluate(rl, 3, 2, 9, ra), ML_OK);
    ml_rl_destroy(rl);
    c.threads = 2;
    ml_rl_create(&c, &rl, err, sizeof err);
    CHECK_INT_EQ(ml_rl_evaluate(rl, 3, 2, 9, rb), ML_OK);
    ml_rl_destroy(rl);
    CHECK(memcmp(ra, rb, sizeof ra) == 0);
    free(a), free(b);
}

static void test_resume_bit_exact(void) {
    for (int outer = 0; outer < 2; outer++) {
        ml_rl_config c = tiny_config();
        c.outer = outer ? ML_RL_ADAM : ML_RL_TRPO;
        c.algo = outer ? ML_RL_FOMAML : ML_RL_MAML;
        ml_policy p;
        ml_policy_init(&p, 2, 2, 0, 1, c.hidden);
        float *a = malloc(sizeof(float) * p.n_params);
        run_steps(c, 3, a, p.n_params);
        char path[512];
        snprintf(path, sizeof path, "%s/rl_resume.safetensors", ml_test_tmp_dir());
        ml_rl *rl = NULL;
        char err[256];
        ml_rl_create(&c, &rl, err, sizeof err);
        ml_rl_step(rl, NULL);
        ml_rl_step(rl, NULL);
        CHECK_INT_EQ(ml_rl_save(rl, path), ML_OK);
        ml_rl_destroy(rl);
        c.seed = 1; /* the same run */
        ml_rl_create(&c, &rl, err, sizeof err);
        CHECK_INT_EQ(ml_rl_load(rl, path), ML_OK);
        CHECK_INT_EQ(ml_rl_iter(rl), 2);
        CHECK_INT_EQ(ml_rl_step(rl, NULL), ML_OK);
        CHECK(memcmp(a, ml_rl_params(rl), sizeof(float) * p.n_params) == 0);
        ml_rl_destroy(rl);
        free(a);
    }
}

/* Peak heap of MAML-TRPO steps per task, in units of one rows x width
 * activation of the policy (rows = trajectories x horizon). The loss
 * gradient, the products and the line search share the task's one arena
 * after its kept graph; a task used to hold 2.5x as much (a second arena for
 * the line search, the loss gradient and each rollout step's tensors kept,
 * the products' walk without buffer reuse). */
static void test_trpo_step_memory(void) {
    ml_rl_config c = ml_rl_config_default(); /* 2 x 64 hidden, 20 rollouts */
    c.horizon = 25, c.meta_batch = 4, c.cg_iters = 3, c.ls_steps = 3;
    ml_allocator a = ml_test_counting_allocator();
    ml_test_live_bytes = ml_test_peak_bytes = 0;
    ml_set_allocator(&a);
    ml_rl *rl = NULL;
    char err[256];
    CHECK_INT_EQ(ml_rl_create(&c, &rl, err, sizeof err), ML_OK);
    for (int i = 0; i < 2; i++) CHECK_INT_EQ(ml_rl_step(rl, NULL), ML_OK);
    ml_rl_destroy(rl);
    ml_set_allocator(NULL);
    const double rows = (double)c.horizon * c.rollouts, activation = rows * c.hidden[0] * sizeof(float);
    const double per_task = (double)ml_test_peak_bytes / c.meta_batch;
    printf("  peak heap %.1f MB: %.1f MB per task = %.0f activations of %d x %d\n", ml_test_peak_bytes / 1e6,
           per_task / 1e6, per_task / activation, (int)rows, c.hidden[0]);
    CHECK(per_task < 300 * activation); /* measured: 197 (before: 222, 565) */
}

/* A run with --env through the ml_run handle is the learner itself: two
 * steps and the evaluation's rows equal ml_rl's with the same settings;
 * --eval-lr changes the adapted returns only; the random policy does not train. */
static void test_run_handle(void) {
    ml_run_config o;
    ml_run_config_default(&o);
    o.env = "nav2d", o.algo = "maml", o.rollouts = 3, o.horizon = 8, o.meta_batch = 2, o.threads = 1, o.seed = 4;
    o.eval_tasks = 3, o.eval_steps = "0,2", o.eval_seed = 9;
    ml_run *run = NULL;
    char err[512];
    CHECK_INT_EQ(ml_run_open(&run, &o, ML_RUN_SCRATCH, NULL, err, sizeof err), ML_OK);
    if (!run) return;
    CHECK_INT_EQ(ml_run_step(run, NULL, err, sizeof err), ML_OK);
    CHECK_INT_EQ(ml_run_step(run, NULL, err, sizeof err), ML_OK);
    CHECK_INT_EQ(ml_run_iteration(run), 2);
    ml_run_eval_result *res = NULL;
    CHECK_INT_EQ(ml_run_evaluate_result(run, NULL, &res, err, sizeof err), ML_OK);
    ml_run_close(run);
    ml_rl_config c = ml_rl_config_default();
    c.rollouts = 3, c.horizon = 8, c.meta_batch = 2, c.threads = 1, c.seed = 4;
    ml_rl *rl = NULL;
    CHECK_INT_EQ(ml_rl_create(&c, &rl, err, sizeof err), ML_OK);
    CHECK_INT_EQ(ml_rl_step(rl, NULL), ML_OK);
    CHECK_INT_EQ(ml_rl_step(rl, NULL), ML_OK);
    double r[3 * 3], col[3], mean, half;
    CHECK_INT_EQ(ml_rl_evaluate(rl, 3, 2, 9, r), ML_OK);
    CHECK(res && res->rl && res->n_rows == 2 && res->eval_lr == 0.1 && res->json);
    for (int i = 0; res && i < res->n_rows && i < 2; i++) {
        int s = i ? 2 : 0;
        for (int t = 0; t < 3; t++) col[t] = r[t * 3 + s];
        ml_mean_ci95_t(col, 3, &mean, &half);
        CHECK(res->rows[i].steps == s && res->rows[i].mean == mean && res->rows[i].ci95 == half);
    }
    /* another rate: the same returns before adapting, others after */
    double r2[3 * 3];
    CHECK_INT_EQ(ml_rl_evaluate_lr(rl, 3, 2, 9, 0.5, r2), ML_OK);
    CHECK(r2[0] == r[0] && r2[3] == r[3] && r2[2] != r[2]);
    ml_rl_destroy(rl);
    ml_run_eval_result_free(res);
    o.algo = "random";
    CHECK_INT_EQ(ml_run_open(&run, &o, ML_RUN_SCRATCH, NULL, err, sizeof err), ML_OK);
    if (!run) return;
    CHECK_INT_EQ(ml_run_step(run, NULL, err, sizeof err), ML_ERR_STATE);
    CHECK(strstr(err, "nothing to train") != NULL);
    CHECK_INT_EQ(ml_run_train(run, NULL, err, sizeof err), ML_OK);
    CHECK_INT_EQ(ml_run_iteration(run), 0);
    ml_run_close(run);
}

/* Trajectory pictures adapt on the evaluation's schedule (--eval-lr,
 * --eval-later-scale, or what RUN/eval.json records), not at the inner rate:
 * one schedule function for both, and the picture changes with it. */
static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (f) fputs(text, f), fclose(f);
}

static void test_plot_uses_eval_schedule(void) {
    char dir[512], fig[600], path[700], err[512];
    snprintf(dir, sizeof dir, "%s/rl_schedule_run", ml_test_tmp_dir());
    snprintf(fig, sizeof fig, "%s/fig", dir);
    ml_run_config o;
    ml_run_config_default(&o);
    o.env = "nav2d", o.algo = "maml", o.rollouts = 3, o.horizon = 8, o.meta_batch = 2, o.threads = 1, o.seed = 4;
    o.iters = 2, o.eval_tasks = 2, o.eval_steps = "0,1,2", o.eval_seed = 9, o.quiet = 1, o.overwrite = 1;
    o.eval_lr = "0.05", o.eval_later_scale = 0.5f, o.out = dir;
    ml_run *run = NULL;
    CHECK_INT_EQ(ml_run_open(&run, &o, ML_RUN_NEW, NULL, err, sizeof err), ML_OK);
    if (!run) return;
    CHECK_INT_EQ(ml_run_train(run, NULL, err, sizeof err), ML_OK);
    ml_run_config saved;
    ml__rl_schedule at;
    CHECK_INT_EQ(ml_run_config_load_run(&saved, dir, err, sizeof err), ML_OK);
    CHECK_INT_EQ(ml__rl_run_schedule(&saved, dir, &at, err, sizeof err), ML_OK); /* not evaluated yet */
    CHECK(at.first == 0.05 && at.later == 0.025);
    ml_run_eval_result *res = NULL;
    CHECK_INT_EQ(ml_run_evaluate_result(run, NULL, &res, err, sizeof err), ML_OK);
    ml_run_eval_result_free(res);
    ml_run_close(run);

    /* the settings' schedule, and eval.json's once evaluated */
    CHECK_INT_EQ(ml__rl_run_schedule(&saved, dir, &at, err, sizeof err), ML_OK);
    CHECK(at.first == 0.05 && at.later == 0.025);
    snprintf(path, sizeof path, "%s/eval.json", dir);
    size_t n;
    char *json = ml_test_slurp(path, &n);
    CHECK(json && strstr(json, "\"eval_lr\":0.05,\"eval_later_scale\":0.5,"));
    free(json);
    write_text(path, "{\"eval_lr\":0.2,\"steps\":[0],\"return\":[-1],\"ci95\":[0.5]}\n");
    CHECK_INT_EQ(ml__rl_run_schedule(&saved, dir, &at, err, sizeof err), ML_OK);
    CHECK(at.first == 0.2 && at.later == 0.2);

    /* the trajectories adapt as the evaluation does: inner rate by default,
     * the later scale from the second step on */
    ml_rl *rl = NULL;
    CHECK_INT_EQ(ml__rl_open_learner(&saved, &rl, err, sizeof err), ML_OK);
    if (!rl) return;
    enum { NT = 2, H = 8, S = 3, PER = NT * (H + 1) * 2 };
    static float a[(S + 1) * PER], b[(S + 1) * PER], c[(S + 1) * PER];
    ml_env_task task;
    CHECK_INT_EQ(ml_rl_trajectories(rl, 0, 9, S, NT, a, &task), ML_OK);
    CHECK_INT_EQ(ml_rl_trajectories_steps(rl, 0, 9, S, NT, 0.1, 0.1, b, &task), ML_OK);
    CHECK(!memcmp(a, b, sizeof a)); /* 0.1: the inner rate */
    CHECK_INT_EQ(ml_rl_trajectories_steps(rl, 0, 9, S, NT, 0.1, 0.05, c, &task), ML_OK);
    CHECK(!memcmp(a, c, 2 * PER * sizeof(float)) && memcmp(a, c, sizeof a)); /* steps 0, 1 alike, later not */
    CHECK(ml_rl_trajectories_steps(rl, 0, 9, S, NT, -1, 0.1, c, &task) == ML_ERR_ARG);
    ml_rl_destroy(rl);

    /* and the picture: the same run plotted with eval.json at the inner rate
     * and at another schedule differs */
    const char *runs[1] = {dir};
    char written[1400], png[700], first[700];
    snprintf(png, sizeof png, "%s/rl_trajectories.png", fig);
    snprintf(first, sizeof first, "%s/inner.png", dir);
    write_text(path, "{\"eval_lr\":0.1,\"steps\":[0],\"return\":[-1],\"ci95\":[0.5]}\n");
    CHECK_INT_EQ(ml_rl_run_plot(runs, 1, fig, written, sizeof written, err, sizeof err), ML_OK);
    CHECK(rename(png, first) == 0);
    CHECK_INT_EQ(ml_rl_run_plot(runs, 1, fig, written, sizeof written, err, sizeof err), ML_OK);
    CHECK(ml_test_same_file(png, first)); /* deterministic */
    write_text(path, "{\"eval_lr\":0.1,\"eval_later_scale\":0.5,\"steps\":[0],\"return\":[-1],\"ci95\":[0.5]}\n");
    CHECK_INT_EQ(ml_rl_run_plot(runs, 1, fig, written, sizeof written, err, sizeof err), ML_OK);
    size_t na, nb;
    char *x = ml_test_slurp(png, &na), *y = ml_test_slurp(first, &nb);
    CHECK(x && y && (na != nb || memcmp(x, y, na)));
    free(x);
    free(y);
}

static void test_bandit_learns(void) {
    /* categorical policy on bandit:5: a few Adam pretrain steps raise the return */
    ml_rl_config c = ml_rl_config_default();
    c.env = "bandit:5", c.algo = ML_RL_MAML, c.outer = ML_RL_ADAM, c.outer_lr = 0.05;
    c.n_hidden = 1, c.hidden[0] = 8, c.rollouts = 10, c.meta_batch = 4, c.inner_lr = 0.5;
    ml_rl *rl = NULL;
    char err[256];
    CHECK_INT_EQ(ml_rl_create(&c, &rl, err, sizeof err), ML_OK);
    double r[8 * 3];
    CHECK_INT_EQ(ml_rl_evaluate(rl, 8, 2, 3, r), ML_OK);
    double before = 0, after = 0;
    for (int t = 0; t < 8; t++) before += r[t * 3], after += r[t * 3 + 2];
    printf("    bandit:5, 10 pulls: return %.3f before, %.3f after 2 steps (8 tasks)\n", before / 8, after / 8);
    CHECK(before / 8 > 0 && before / 8 < 10);
    ml_rl_stats s;
    CHECK_INT_EQ(ml_rl_step(rl, &s), ML_OK);
    ml_rl_destroy(rl);
}

static void test_bandit_classic(void) {
    ml_env e;
    char err[256];
    ml_env_parse("bandit:5", &e, err, sizeof err);
    double ucb10, ts10, ucb100, ts100;
    CHECK_INT_EQ(ml_bandit_regret_classic(&e, 10, 200, 1, &ucb10, &ts10), ML_OK);
    CHECK_INT_EQ(ml_bandit_regret_classic(&e, 100, 200, 1, &ucb100, &ts100), ML_OK);
    printf("    bandit:5 regret, UCB1 %.2f / %.2f, Thompson %.2f / %.2f (10 / 100 pulls)\n", ucb10, ucb100, ts10, ts100);
    /* a random arm loses (best - mean) ~ 0.33 a pull for K = 5: both do better, and grow sublinearly */
    CHECK(ucb10 > 0 && ucb10 < 3.3 && ts10 > 0 && ts10 < 3.3);
    CHECK(ucb100 < 10 * ucb10 && ts100 < 10 * ts10);
    ml_env_parse("nav2d", &e, err, sizeof err);
    CHECK(ml_bandit_regret_classic(&e, 10, 1, 1, &ucb10, &ts10) != ML_OK);
}

int main(void) {
    ML_RUN(test_bandit_classic);
    ML_RUN(test_env_parse);
    ML_RUN(test_nav2d_dynamics);
    ML_RUN(test_nav2d_rot_dynamics);
    ML_RUN(test_env_seeding);
    ML_RUN(test_baseline_gae);
    ML_RUN(test_pg_vs_finite_differences);
    ML_RUN(test_kl_hvp_vs_finite_differences);
    ML_RUN(test_trpo_respects_kl_bound);
    ML_RUN(test_threads_same_result);
    ML_RUN(test_resume_bit_exact);
    ML_RUN(test_trpo_step_memory);
    ML_RUN(test_run_handle);
    ML_RUN(test_plot_uses_eval_schedule);
    ML_RUN(test_bandit_learns);
    return ml_test_summary();
}
