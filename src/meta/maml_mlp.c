/* maml_mlp.c: the fused route of MAML / first-order MAML for ReLU MLPs on the
 * MSE loss (the sinusoid family): one task's meta-gradient computed by
 * hand-written passes instead of a recorded graph.
 *
 * Why: on a 1-40-40-1 MLP with 10 points a task is ~100 small ops, and the
 * per-op cost of the graph (record, allocate, dispatch, ~100 ns each) was
 * most of an iteration (docs/results.md, "Sinusoid MAML: fused tasks").
 *
 * The math (S inner SGD steps at rate a from theta_0 = theta):
 *   theta_{s+1} = theta_s - a g_s,  g_s = grad L_support(theta_s)
 *   meta-gradient = prod_{s=S-1..0} (I - a H_s) grad L_query(theta_S)
 * with H_s the support loss's Hessian at theta_s (symmetric), applied
 * right to left as Hessian-vector products (Pearlmutter's R-operator:
 * forward and backward passes of the directional derivative; ReLU's second
 * derivative is zero, so its masks are all the R-passes need). First-order
 * MAML drops the H_s terms. The result equals the recorded route's up to
 * float rounding (summation order); tests/test_meta.c compares the two and
 * checks the Hessian-vector product against differences of gradients.
 *
 * Everything lives in the worker's arena; one task runs on one thread, so
 * the result does not depend on the thread count. */
#include <string.h>

#include "core/dispatch.h"
#include "meta_internal.h"

#define MAX_LAYERS (ML_MAX_HIDDEN + 1)

typedef struct mlp_shape {
    int layers;                   /* hidden layers + 1 */
    int d[MAX_LAYERS + 1];        /* widths: d[0] inputs ... d[layers] = 1 output */
    int64_t woff[MAX_LAYERS];     /* weight [d[l+1], d[l]] offset in the flat parameters */
    int64_t boff[MAX_LAYERS];     /* bias [d[l+1]] offset */
    int64_t n;                    /* parameter floats */
} mlp_shape;

/* One forward / backward over n points: a[0] = x, z[l] = a[l] W_l^T + b_l,
 * a[l+1] = relu(z[l]), z[layers-1] the outputs; dz[l] = dL / dz[l]. */
typedef struct mlp_pass {
    int n;
    const float *a[MAX_LAYERS];
    float *z[MAX_LAYERS], *dz[MAX_LAYERS];
} mlp_pass;

int ml__maml_mlp_fits(const ml_meta *m) {
    const ml__learner *l = ml__learner_of(m->cfg.algo);
    const ml_model_spec *s = &m->model->spec;
    return l->step_task == ml__gradient_step_task && !l->extras && l->info.adapts == ML_ADAPT_ALL &&
           m->cfg.loss == ML_LOSS_MSE && s->kind == ML_MODEL_MLP && s->n_out == 1 && s->n_hidden < MAX_LAYERS &&
           m->model->n_params == 2 * (s->n_hidden + 1);
}

static void shape_of(const ml_model *model, mlp_shape *sh) {
    sh->layers = model->spec.n_hidden + 1;
    for (int l = 0; l < sh->layers; l++) {
        sh->d[l + 1] = (int)model->params[2 * l].shape[0];
        sh->d[l] = (int)model->params[2 * l].shape[1];
        sh->woff[l] = model->params[2 * l].offset;
        sh->boff[l] = model->params[2 * l + 1].offset;
    }
    sh->n = model->n_floats;
}

/* ---- kernels: row-major, vectorised over the contiguous output row --------------------- */

/* c[m, p] += a[m, k] b[k, p] */
ML_KERNEL static void mm_nn_acc(int m, int k, int p, const float *restrict a, const float *restrict b,
                                float *restrict c) {
    for (int i = 0; i < m; i++) {
        float *restrict ci = c + (int64_t)i * p;
        const float *ai = a + (int64_t)i * k;
        for (int q = 0; q < k; q++) {
            float s = ai[q];
            const float *restrict bq = b + (int64_t)q * p;
            for (int j = 0; j < p; j++) ci[j] += s * bq[j];
        }
    }
}

/* c[m, p] += a[k, m]^T b[k, p] */
ML_KERNEL static void mm_tn_acc(int m, int k, int p, const float *restrict a, const float *restrict b,
                                float *restrict c) {
    for (int i = 0; i < m; i++) {
        float *restrict ci = c + (int64_t)i * p;
        for (int q = 0; q < k; q++) {
            float s = a[(int64_t)q * m + i];
            const float *restrict bq = b + (int64_t)q * p;
            for (int j = 0; j < p; j++) ci[j] += s * bq[j];
        }
    }
}

/* Every weight of src transposed into dst ([out, in] -> [in, out]); biases not copied. */
static void transpose_weights(const mlp_shape *sh, const float *src, float *dst) {
    for (int l = 0; l < sh->layers; l++) {
        int out = sh->d[l + 1], in = sh->d[l];
        const float *w = src + sh->woff[l];
        float *t = dst + sh->woff[l];
        for (int o = 0; o < out; o++)
            for (int k = 0; k < in; k++) t[(int64_t)k * out + o] = w[(int64_t)o * in + k];
    }
}

/* Rows of z set to the bias b. */
static void fill_bias(int n, int p, const float *b, float *z) {
    for (int i = 0; i < n; i++) memcpy(z + (int64_t)i * p, b, (size_t)p * sizeof(float));
}

/* Column sums of dz [n, p] into g [p] (g overwritten), in row order. */
static void col_sums(int n, int p, const float *dz, float *g) {
    memset(g, 0, (size_t)p * sizeof(float));
    for (int i = 0; i < n; i++)
        for (int j = 0; j < p; j++) g[j] += dz[(int64_t)i * p + j];
}

/* ---- passes ------------------------------------------------------------------------------ */

static int alloc_pass(ml_ctx *ctx, const mlp_shape *sh, int n, mlp_pass *p) {
    p->n = n;
    for (int l = 0; l < sh->layers; l++) {
        size_t bytes = (size_t)n * (size_t)sh->d[l + 1] * sizeof(float);
        p->z[l] = ml_ctx_alloc(ctx, bytes);
        p->dz[l] = ml_ctx_alloc(ctx, bytes);
        float *act = l + 1 < sh->layers ? ml_ctx_alloc(ctx, bytes) : NULL;
        if (!p->z[l] || !p->dz[l] || (l + 1 < sh->layers && !act)) return -1;
        if (l + 1 < sh->layers) p->a[l + 1] = act;
    }
    return 0;
}

/* Forward at theta (wt: its weights transposed) on x. */
static void forward(const mlp_shape *sh, const float *theta, const float *wt, const float *x, mlp_pass *p) {
    p->a[0] = x;
    for (int l = 0; l < sh->layers; l++) {
        int in = sh->d[l], out = sh->d[l + 1];
        fill_bias(p->n, out, theta + sh->boff[l], p->z[l]);
        mm_nn_acc(p->n, in, out, p->a[l], wt + sh->woff[l], p->z[l]);
        if (l + 1 < sh->layers) {
            float *a = (float *)p->a[l + 1];
            const float *z = p->z[l];
            for (int64_t j = 0; j < (int64_t)p->n * out; j++) a[j] = z[j] > 0.f ? z[j] : 0.f;
        }
    }
}

/* Backward of the mean squared error against y: dz of every layer and the
 * gradient g (all n parameter floats); returns the loss. */
static float backward(const mlp_shape *sh, const float *theta, const float *y, mlp_pass *p, float *g) {
    int L = sh->layers, n = p->n;
    const float *out = p->z[L - 1];
    float *dy = p->dz[L - 1], loss = 0.f, scale = 2.f / (float)n;
    for (int i = 0; i < n; i++) {
        float e = out[i] - y[i];
        loss += e * e;
        dy[i] = scale * e;
    }
    for (int l = L - 1; l >= 0; l--) {
        int in = sh->d[l], o = sh->d[l + 1];
        float *gw = g + sh->woff[l];
        memset(gw, 0, (size_t)o * (size_t)in * sizeof(float));
        mm_tn_acc(o, n, in, p->dz[l], p->a[l], gw);
        col_sums(n, o, p->dz[l], g + sh->boff[l]);
        if (l == 0) break;
        float *da = p->dz[l - 1]; /* dL/da[l], masked in place into dL/dz[l-1] */
        memset(da, 0, (size_t)n * (size_t)in * sizeof(float));
        mm_nn_acc(n, o, in, p->dz[l], theta + sh->woff[l], da);
        const float *z = p->z[l - 1];
        for (int64_t j = 0; j < (int64_t)n * in; j++) da[j] = z[j] > 0.f ? da[j] : 0.f;
    }
    return loss / (float)n;
}

/* hv = H v: the Hessian of the loss of pass p (its forward and backward at
 * theta, wt: theta's weights transposed) times v (vt: v's weights
 * transposed). ra[l] (l >= 1) and rdz[l]: scratch of n d[l] and n d[l+1]. */
static void hessian_vector(const mlp_shape *sh, const float *theta, const float *wt, const mlp_pass *p,
                           const float *v, const float *vt, float *hv, float *ra[MAX_LAYERS + 1],
                           float *rdz[MAX_LAYERS]) {
    int L = sh->layers, n = p->n;
    /* R-forward: Rz[l] = Ra[l] W_l^T + a[l] V_l^T + c_l; Ra[l+1] = mask(z[l]) Rz[l]; Ra[0] = 0.
     * Rz[l] is built in ra[l+1] (masked in place), the output's in rdz[L-1]. */
    for (int l = 0; l < L; l++) {
        int in = sh->d[l], out = sh->d[l + 1];
        float *rz = l + 1 < L ? ra[l + 1] : rdz[L - 1];
        fill_bias(n, out, v + sh->boff[l], rz);
        mm_nn_acc(n, in, out, p->a[l], vt + sh->woff[l], rz);
        if (l > 0) mm_nn_acc(n, in, out, ra[l], wt + sh->woff[l], rz);
        if (l + 1 < L) {
            const float *z = p->z[l];
            for (int64_t j = 0; j < (int64_t)n * out; j++) rz[j] = z[j] > 0.f ? rz[j] : 0.f;
        }
    }
    /* R-backward: R(dy) = 2 Rz_out / n; R(gW_l) = Rdz_l^T a_l + dz_l^T Ra_l,
     * R(gb_l) = colsum Rdz_l; R(da_l) = Rdz_l W_l + dz_l V_l, masked by z[l-1]. */
    float scale = 2.f / (float)n;
    for (int i = 0; i < n; i++) rdz[L - 1][i] *= scale;
    for (int l = L - 1; l >= 0; l--) {
        int in = sh->d[l], o = sh->d[l + 1];
        float *hw = hv + sh->woff[l];
        memset(hw, 0, (size_t)o * (size_t)in * sizeof(float));
        mm_tn_acc(o, n, in, rdz[l], p->a[l], hw);
        if (l > 0) mm_tn_acc(o, n, in, p->dz[l], ra[l], hw);
        col_sums(n, o, rdz[l], hv + sh->boff[l]);
        if (l == 0) break;
        float *rda = rdz[l - 1];
        memset(rda, 0, (size_t)n * (size_t)in * sizeof(float));
        mm_nn_acc(n, o, in, rdz[l], theta + sh->woff[l], rda);
        mm_nn_acc(n, o, in, p->dz[l], v + sh->woff[l], rda);
        const float *z = p->z[l - 1];
        for (int64_t j = 0; j < (int64_t)n * in; j++) rda[j] = z[j] > 0.f ? rda[j] : 0.f;
    }
}

/* ---- the task ------------------------------------------------------------------------------ */

static float *floats(ml_ctx *ctx, int64_t n) { return ml_ctx_alloc(ctx, (size_t)(n > 0 ? n : 1) * sizeof(float)); }

void ml__maml_mlp_step_task(ml_meta *m, ml_meta_worker *w, int item, const ml_task_data *t) {
    ml_ctx *ctx = w->ctx;
    ml_ctx_reset(ctx);
    mlp_shape sh;
    shape_of(m->model, &sh);
    int S = m->cfg.inner_steps, second = ml__learner_of(m->cfg.algo)->second_order;
    float rate = m->cfg.inner_lr;
    int64_t n = sh.n;
    int maxd = 1, nmax = t->n_support > t->n_query ? t->n_support : t->n_query;
    for (int l = 0; l <= sh.layers; l++) maxd = sh.d[l] > maxd ? sh.d[l] : maxd;
    /* theta_s and its transposed weights for s = 0..S; one support pass per step */
    float **theta = ml_ctx_alloc(ctx, (size_t)(S + 1) * sizeof(float *));
    float **wt = ml_ctx_alloc(ctx, (size_t)(S + 1) * sizeof(float *));
    mlp_pass *sup = ml_ctx_alloc(ctx, (size_t)(S > 0 ? S : 1) * sizeof(mlp_pass));
    mlp_pass q;
    float *g = floats(ctx, n), *v = floats(ctx, n), *vt = floats(ctx, n), *hv = floats(ctx, n);
    float *ra[MAX_LAYERS + 1] = {0}, *rdz[MAX_LAYERS] = {0};
    int ok = theta && wt && sup && g && v && vt && hv && alloc_pass(ctx, &sh, t->n_query, &q) == 0;
    for (int l = 0; l < sh.layers && ok; l++) {
        ok = (rdz[l] = floats(ctx, (int64_t)nmax * maxd)) && (ra[l + 1] = floats(ctx, (int64_t)nmax * maxd));
    }
    for (int s = 0; s <= S && ok; s++) {
        ok = (wt[s] = floats(ctx, n)) && (s == 0 || (theta[s] = floats(ctx, n))) &&
             (s == S || alloc_pass(ctx, &sh, t->n_support, &sup[s]) == 0);
    }
    if (!ok) {
        ml__meta_fail_task(m, w, item, "fused MAML workspace");
        return;
    }
    theta[0] = m->meta;
    transpose_weights(&sh, theta[0], wt[0]);
    for (int s = 0; s < S; s++) {
        forward(&sh, theta[s], wt[s], t->xs, &sup[s]);
        backward(&sh, theta[s], t->ys, &sup[s], g);
        for (int64_t j = 0; j < n; j++) theta[s + 1][j] = theta[s][j] - rate * g[j];
        transpose_weights(&sh, theta[s + 1], wt[s + 1]);
    }
    forward(&sh, theta[S], wt[S], t->xq, &q);
    float loss = backward(&sh, theta[S], t->yq, &q, v);
    if (second) /* v <- (I - rate H_s) v, s = S-1 .. 0 */
        for (int s = S - 1; s >= 0; s--) {
            transpose_weights(&sh, v, vt);
            hessian_vector(&sh, theta[s], wt[s], &sup[s], v, vt, hv, ra, rdz);
            for (int64_t j = 0; j < n; j++) v[j] -= rate * hv[j];
        }
    m->task_loss[item] = loss;
    memcpy(m->task_grads + (int64_t)item * m->n_meta, v, (size_t)n * sizeof(float));
}
