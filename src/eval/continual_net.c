/* continual_net.c: the whole-network baselines of the continual-learning
 * protocol (metalearn/continual.h, ml_continual_evaluate_network): the
 * network of a spec, from one seeded random initialisation, every layer
 * learned by SGD one image at a time, driven by the same protocol code as
 * the linear head (continual.c): "scratch" in class order, the oracle on the
 * same images shuffled. The network: the spec's representation (every layer
 * but its own head) and a zero linear head with one output per class. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "continual_internal.h"
#include "metalearn/nn.h"

typedef struct net_learner {
    ml__continual_learner ops;
    ml_model model; /* its own batch-norm buffers: the initial running statistics */
    int n_rep;      /* parameters of the representation (the spec's own head excluded) */
    float *init;    /* the random start [model.n_floats] */
    float *p;       /* the current parameters [model.n_floats] */
    float *head;    /* weight [C, D] then bias [C] */
    int C, C_cap;
    int64_t D, per;
    ml_ctx *ctx;
} net_learner;

/* Logits [1, C] of image x with the current parameters (recorded or not). */
static ml_tensor *logits_of(net_learner *n, const float *x, ml_tensor **params, ml_tensor **hw, ml_tensor **hb) {
    ml_ctx *ctx = n->ctx;
    ml_model_wrap(ctx, &n->model, n->p, params);
    *hw = ml_tensor_wrap(ctx, n->head, 2, ML_SHAPE(n->C, n->D));
    *hb = ml_tensor_wrap(ctx, n->head + (int64_t)n->C * n->D, 1, ML_SHAPE(n->C));
    ml_tensor *f = ml_model_features(ctx, &n->model, params, ml_tensor_wrap(ctx, (float *)x, 2, ML_SHAPE(1, n->per)),
                                     0, 0);
    return ml_linear(ctx, f, *hw, *hb);
}

static int net_reset(ml__continual_learner *l, int C) {
    net_learner *n = (net_learner *)l;
    if (C > n->C_cap) return -1;
    n->C = C;
    memcpy(n->p, n->init, (size_t)n->model.n_floats * sizeof(float));
    memset(n->head, 0, (size_t)C * (n->D + 1) * sizeof(float));
    return 0;
}

static int net_step(ml__continual_learner *l, const float *x, int label, float lr) {
    net_learner *n = (net_learner *)l;
    ml_ctx *ctx = n->ctx;
    ml_ctx_reset(ctx);
    ml_tensor *params[ML_MAX_PARAMS], *hw, *hb, *wrt[ML_MAX_PARAMS + 2], *g[ML_MAX_PARAMS + 2];
    int32_t y = label;
    ml_tensor *loss = ml_cross_entropy(ctx, logits_of(n, x, params, &hw, &hb), &y);
    int nw = 0;
    for (int i = 0; i < n->n_rep; i++) wrt[nw++] = params[i];
    wrt[nw++] = hw;
    wrt[nw++] = hb;
    if (!loss || ml_grad(ctx, loss, wrt, nw, 0, g) != ML_OK) return -1;
    for (int i = 0; i < nw; i++) { /* every wrapped tensor views n->p or n->head: update in place */
        float *dst = wrt[i]->data;
        const float *gi = g[i]->data;
        for (int64_t j = 0; j < wrt[i]->numel; j++) dst[j] -= lr * gi[j];
    }
    return 0;
}

static int net_predict(ml__continual_learner *l, const float *x) {
    net_learner *n = (net_learner *)l;
    ml_ctx *ctx = n->ctx;
    ml_ctx_reset(ctx);
    ml_ctx_set_recording(ctx, 0);
    ml_tensor *params[ML_MAX_PARAMS], *hw, *hb;
    ml_tensor *out = logits_of(n, x, params, &hw, &hb);
    ml_ctx_set_recording(ctx, 1);
    if (!out) return -1;
    int best = 0;
    for (int c = 1; c < n->C; c++)
        if (out->data[c] > out->data[best]) best = c;
    return best;
}

static void net_free(net_learner *n) {
    ml_model_free(&n->model);
    ml_free(n->init);
    ml_free(n->p);
    ml_free(n->head);
    if (n->ctx) ml_ctx_destroy(n->ctx);
    memset(n, 0, sizeof *n);
}

/* The network for up to C classes on images of `per` floats, its start drawn with seed. */
static ml_status net_alloc(net_learner *n, const ml_model_spec *spec, int C, int64_t per, uint64_t seed, char *err,
                           size_t errlen) {
    memset(n, 0, sizeof *n);
    n->ops = (ml__continual_learner){net_reset, net_step, net_predict};
    if ((int64_t)spec->in_c * spec->in_h * spec->in_w != per) {
        snprintf(err, errlen, "continual: the model takes %dx%dx%d inputs, the images have %lld values", spec->in_c,
                 spec->in_h, spec->in_w, (long long)per);
        return ML_ERR_ARG;
    }
    if (ml_model_init(&n->model, spec, err, errlen) != ML_OK) return ML_ERR_ARG;
    ml_rng rng;
    ml_rng_seed(&rng, seed ^ 0x7363726174636868ULL);
    ml_model_init_params(&n->model, ML_INIT_TORCH, &rng);
    n->n_rep = n->model.n_params - (spec->n_out > 0 ? 2 : 0);
    n->per = per;
    n->C_cap = C;
    n->init = ml_malloc((size_t)n->model.n_floats * sizeof(float));
    n->p = ml_malloc((size_t)n->model.n_floats * sizeof(float));
    n->ctx = ml_ctx_create((size_t)1 << 22);
    if (!n->init || !n->p || !n->ctx) goto nomem;
    memcpy(n->init, n->model.data, (size_t)n->model.n_floats * sizeof(float));
    memcpy(n->p, n->init, (size_t)n->model.n_floats * sizeof(float));
    /* The representation's size, from one image of zeros. */
    float *zero = ml_calloc((size_t)per, sizeof(float));
    if (!zero) goto nomem;
    ml_ctx_set_recording(n->ctx, 0);
    ml_tensor *params[ML_MAX_PARAMS];
    ml_model_wrap(n->ctx, &n->model, n->p, params);
    ml_tensor *f = ml_model_features(n->ctx, &n->model, params, ml_tensor_wrap(n->ctx, zero, 2, ML_SHAPE(1, per)), 0, 0);
    ml_ctx_set_recording(n->ctx, 1);
    n->D = f ? f->numel : 0;
    ml_free(zero);
    if (!f) {
        snprintf(err, errlen, "continual: the network: %s", ml_ctx_error(n->ctx));
        return ML_ERR_ARG;
    }
    n->head = ml_calloc((size_t)C * (n->D + 1), sizeof(float));
    if (!n->head) goto nomem;
    return ML_OK;
nomem:
    snprintf(err, errlen, "continual: out of memory for the network");
    return ML_ERR_NOMEM;
}

ml_status ml_continual_evaluate_network(const ml_continual_data *val, const ml_continual_data *test,
                                        const ml_continual_options *o, const ml_model_spec *spec,
                                        ml_continual_result *res, char *err, size_t errlen) {
    memset(res, 0, sizeof *res);
    ml_status st = ml_continual_check(val, test, o, err, errlen);
    if (st != ML_OK) return st;
    if (val->dim != test->dim) {
        snprintf(err, errlen, "continual: validation images have %lld values, test images %lld", (long long)val->dim,
                 (long long)test->dim);
        return ML_ERR_ARG;
    }
    int C = val->n_classes > test->n_classes ? val->n_classes : test->n_classes;
    net_learner net; /* one network: val and test runs reset it to the same start */
    st = net_alloc(&net, spec, C, test->dim, o->seed, err, errlen);
    if (st == ML_OK) st = ml__continual_evaluate_with(val, test, o, &net.ops, &net.ops, 1, res, err, errlen);
    if (st == ML_OK) res->whole_network = 1;
    net_free(&net);
    return st;
}
