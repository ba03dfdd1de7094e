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
#include "tensor/kernels_par.h"

#define MAX_LAYERS (ML_MAX_HIDDEN + 1)

/* Rows of every matrix the kernels write are padded to a multiple of 16
 * floats, so the kernels run on whole 16-float vectors; the padding lanes
 * start at zero and stay there (zero inputs, zero weights). */
static int pad16(int d) { return (d + 15) & ~15; }

typedef struct mlp_shape {
    int layers;            /* hidden layers + 1 */
    int d[MAX_LAYERS + 1]; /* widths: d[0] inputs ... d[layers] = 1 output */
    int64_t woff[MAX_LAYERS], boff[MAX_LAYERS]; /* weight [d[l+1], d[l]] and bias offsets in theta */
    /* A packed parameter set (or gradient): per layer W [d[l+1], pad16(d[l])],
     * W^T [d[l], pad16(d[l+1])] and b [pad16(d[l+1])] at these offsets. */
    int64_t pw[MAX_LAYERS], pt[MAX_LAYERS], pb[MAX_LAYERS], packed;
    int64_t n; /* theta's floats */
} mlp_shape;

/* One forward / backward over n points: a[0] = x, z[l] = a[l] W_l^T + b_l,
 * a[l+1] = relu(z[l]), z[layers-1] the outputs; dz[l] = dL / dz[l]. Row
 * strides pad16 of the width. */
typedef struct mlp_pass {
    int n;
    float *a[MAX_LAYERS];
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
    int64_t at = 0;
    for (int l = 0; l < sh->layers; l++) {
        int out = (int)model->params[2 * l].shape[0], in = (int)model->params[2 * l].shape[1];
        sh->d[l + 1] = out;
        sh->d[l] = in;
        sh->woff[l] = model->params[2 * l].offset;
        sh->boff[l] = model->params[2 * l + 1].offset;
        sh->pw[l] = at;
        at += (int64_t)out * pad16(in);
        sh->pt[l] = at;
        at += (int64_t)in * pad16(out);
        sh->pb[l] = at;
        at += pad16(out);
    }
    sh->packed = at;
    sh->n = model->n_floats;
}

/* ---- kernels ------------------------------------------------------------------------------- */

/* c[r rows, 16 nv] = init + sum_q A(i, q) b[q, :] with A(i, q) = a[i sai + q saq],
 * init: c itself (init == c), a row repeated (e.g. a bias) or zero (NULL).
 * The accumulators stay in registers (r and nv are constants once inlined),
 * each output summed in q order, so the vector width changes nothing.
 * With sub (laid out as c), c = sub - rate (init + A b) instead: an SGD step
 * taken at the store, the same rounding as sub_scaled's on a stored c. */
ML_INLINE void mm_block(int r, int nv, int k, const float *a, int64_t sai, int64_t saq, const float *b,
                        int64_t ldb, const float *init, float *c, int64_t ldc, const float *sub, float rate) {
    ml_v16f acc[10][4];
    for (int i = 0; i < r; i++)
        for (int v = 0; v < nv; v++)
            acc[i][v] = init == c ? ml__load16f(c + i * ldc + 16 * v) : init ? ml__load16f(init + 16 * v) : (ml_v16f){0};
    for (int q = 0; q < k; q++) {
        ml_v16f bv[4];
        for (int v = 0; v < nv; v++) bv[v] = ml__load16f(b + q * ldb + 16 * v);
        for (int i = 0; i < r; i++) {
            float s = a[i * sai + q * saq];
            for (int v = 0; v < nv; v++) acc[i][v] += s * bv[v];
        }
    }
    if (sub)
        for (int i = 0; i < r; i++)
            for (int v = 0; v < nv; v++) acc[i][v] = ml__load16f(sub + i * ldc + 16 * v) - rate * acc[i][v];
    for (int i = 0; i < r; i++)
        for (int v = 0; v < nv; v++) memcpy(c + i * ldc + 16 * v, &acc[i][v], sizeof acc[i][v]);
}

/* Rows [0, m) of c in blocks of R (a constant), the rest as one block of
 * m % R rows: a lone row would wait on its FMA latency. */
ML_INLINE void mm_rows(int R, int nv, int m, int k, const float *a, int64_t sai, int64_t saq, const float *b,
                       int64_t ldb, const float *init, float *c, int64_t ldc, const float *sub, float rate) {
    int i = 0;
#define BLOCK(r) mm_block(r, nv, k, a + i * sai, sai, saq, b, ldb, init == c ? c + i * ldc : init, c + i * ldc, ldc, \
                          sub ? sub + i * ldc : NULL, rate)
    for (; i + R <= m; i += R) BLOCK(R);
    switch (m - i) {
    case 1: BLOCK(1); break;
    case 2: BLOCK(2); break;
    case 3: BLOCK(3); break;
    case 4: BLOCK(4); break;
    case 5: if (R > 5) BLOCK(5); break;
    case 6: if (R > 6) BLOCK(6); break;
    case 7: if (R > 7) BLOCK(7); break;
    case 8: if (R > 8) BLOCK(8); break;
    case 9: if (R > 9) BLOCK(9); break;
    default: break;
    }
#undef BLOCK
}

/* c[m, p] = init + A b with A(i, q) = a[i sai + q saq] (i < m, q < k), b [k, p]
 * (row stride ldb), p a multiple of 16: A = a (sai = lda, saq = 1) or a^T
 * (sai = 1, saq = lda); init and sub as mm_block's. */
ML_KERNEL static void mm_acc(int m, int k, int p, const float *a, int64_t sai, int64_t saq, const float *b,
                             int64_t ldb, const float *init, float *c, int64_t ldc, const float *sub, float rate) {
    int j = 0;
#define COLS(j) b + (j), ldb, init == c ? c + (j) : init ? init + (j) : NULL, c + (j), ldc, sub ? sub + (j) : NULL, rate
    /* rows per block: accumulators + the row of b within the 32 registers */
    for (; j + 64 <= p; j += 64) mm_rows(6, 4, m, k, a, sai, saq, COLS(j));
    switch ((p - j) / 16) {
    case 3: mm_rows(5, 3, m, k, a, sai, saq, COLS(j)); break;
    case 2: mm_rows(10, 2, m, k, a, sai, saq, COLS(j)); break;
    case 1: mm_rows(10, 1, m, k, a, sai, saq, COLS(j)); break;
    default: break;
    }
#undef COLS
}

/* c[n, p] = init + a[n, k] b[k, p] (row strides pad16 of k and p; init: c
 * itself to accumulate, a row [p] repeated, or NULL for zero). */
static void mm_nn(int n, int k, int p, const float *a, const float *b, const float *init, float *c) {
    mm_acc(n, k, pad16(p), a, pad16(k), 1, b, pad16(p), init, c, pad16(p), NULL, 0.f);
}

/* c[m, p] = init + a[k, m]^T b[k, p] (row strides pad16 of m and p). */
static void mm_tn(int m, int k, int p, const float *a, const float *b, const float *init, float *c) {
    mm_acc(m, k, pad16(p), a, 1, pad16(m), b, pad16(p), init, c, pad16(p), NULL, 0.f);
}

/* c[m, p] = sub - rate a[k, m]^T b[k, p]: a gradient product and the SGD
 * step on it in one pass (sub laid out as c). */
static void mm_tn_step(int m, int k, int p, const float *a, const float *b, const float *sub, float rate, float *c) {
    mm_acc(m, k, pad16(p), a, 1, pad16(m), b, pad16(p), NULL, c, pad16(p), sub, rate);
}

/* y[j] = x[j] where mask[j] > 0, else 0 (n floats). */
ML_KERNEL static void relu_mask(int64_t n, const float *restrict mask, const float *x, float *y) {
    for (int64_t j = 0; j < n; j++) y[j] = mask[j] > 0.f ? x[j] : 0.f;
}

/* y[j] = w[j] - rate x[j] (n floats; y may be w). */
ML_KERNEL static void sub_scaled(int64_t n, const float *w, float rate, const float *x, float *y) {
    for (int64_t j = 0; j < n; j++) y[j] = w[j] - rate * x[j];
}

/* dst [rows, width] (dense) += src [rows, width] (row stride ld): one call
 * for a whole matrix, each element added once. */
ML_KERNEL static void add_rows(int rows, int width, float *restrict dst, const float *restrict src, int64_t ld) {
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < width; j++) dst[(int64_t)r * width + j] += src[(int64_t)r * ld + j];
}

/* dst [rows, width] (dense) = src [rows, width] (row stride ld). */
ML_KERNEL static void copy_rows(int rows, int width, float *restrict dst, const float *restrict src, int64_t ld) {
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < width; j++) dst[(int64_t)r * width + j] = src[(int64_t)r * ld + j];
}

/* col [width, 16]: row k = (row[k], 0, ..., 0). */
ML_KERNEL static void to_column(int width, const float *restrict row, float *restrict col) {
    for (int k = 0; k < width; k++) {
        ml_v16f v = {row[k]};
        memcpy(col + (int64_t)k * 16, &v, sizeof v);
    }
}

/* g[p] = column sums of dz [n, p] (p a multiple of 16), in row order from
 * 0, summed in registers. */
ML_KERNEL static void col_sums(int n, int p, const float *restrict dz, float *restrict g) {
    for (int j = 0; j < p; j += 16) {
        ml_v16f acc = {0};
        for (int i = 0; i < n; i++) acc += ml__load16f(dz + (int64_t)i * p + j);
        memcpy(g + j, &acc, sizeof acc);
    }
}

/* A weight gradient and its transpose: gw [o, pad16(in)] = dz^T a (+ dz2^T a2
 * when dz2) and gt [in, pad16(o)] = a^T dz (+ a2^T dz2), gt skipped when
 * NULL unless in == 1. Both products sum the same terms in the same order,
 * so where one side has width 1 (the sinusoid's input and output layers) it
 * is computed as the cheap row [1, pad16] and copied into the other as a
 * column: padded to 16 lanes, that side's product would do 16x the work for
 * the same numbers. dz rows have stride pad16(o), a rows pad16(in).
 * With fw (one product only, no dz2): an SGD step instead, gw = fw - rate
 * times the gradient and gt = ft - rate times its transpose. gw may be NULL
 * (not wanted) unless o == 1. */
static void weight_grad(int o, int n, int in, const float *dz, const float *a, const float *dz2, const float *a2,
                        float *gw, float *gt, const float *fw, const float *ft, float rate) {
    if (in == 1 || o == 1) {
        float *row = in == 1 ? gt : gw, *col = in == 1 ? gw : gt;
        int width = in == 1 ? o : in;
        if (in == 1) {
            mm_tn(1, n, o, a, dz, NULL, row);
            if (dz2) mm_tn(1, n, o, a2, dz2, row, row);
        } else {
            mm_tn(1, n, in, dz, a, NULL, row);
            if (dz2) mm_tn(1, n, in, dz2, a2, row, row);
        }
        if (col) to_column(width, row, col);
        if (fw) { /* the same step as on stored gradients */
            sub_scaled(in == 1 ? pad16(o) : pad16(in), in == 1 ? ft : fw, rate, row, row);
            if (col) sub_scaled((int64_t)width * 16, in == 1 ? fw : ft, rate, col, col);
        }
        return;
    }
    if (gw && fw)
        mm_tn_step(o, n, in, dz, a, fw, rate, gw);
    else if (gw) {
        mm_tn(o, n, in, dz, a, NULL, gw);
        if (dz2) mm_tn(o, n, in, dz2, a2, gw, gw);
    }
    if (!gt) return;
    if (ft)
        mm_tn_step(in, n, o, a, dz, ft, rate, gt);
    else {
        mm_tn(in, n, o, a, dz, NULL, gt);
        if (dz2) mm_tn(in, n, o, a2, dz2, gt, gt);
    }
}

/* ---- packed parameter sets ------------------------------------------------------------------- */

/* The transposed weights of a packed set from its W parts. */
static void pack_transposes(const mlp_shape *sh, float *ps) {
    for (int l = 0; l < sh->layers; l++) {
        int out = sh->d[l + 1], in = sh->d[l], po = pad16(out), pi = pad16(in);
        const float *w = ps + sh->pw[l];
        float *t = ps + sh->pt[l];
        for (int k = 0; k < in; k++) {
            for (int o = 0; o < out; o++) t[(int64_t)k * po + o] = w[(int64_t)o * pi + k];
            for (int o = out; o < po; o++) t[(int64_t)k * po + o] = 0.f;
        }
    }
}

/* theta (flat, model layout) into a packed set, padding zero. */
static void pack(const mlp_shape *sh, const float *theta, float *ps) {
    for (int l = 0; l < sh->layers; l++) {
        int out = sh->d[l + 1], in = sh->d[l], pi = pad16(in);
        for (int o = 0; o < out; o++) {
            float *row = ps + sh->pw[l] + (int64_t)o * pi;
            memcpy(row, theta + sh->woff[l] + (int64_t)o * in, (size_t)in * sizeof(float));
            memset(row + in, 0, (size_t)(pi - in) * sizeof(float));
        }
        float *b = ps + sh->pb[l];
        memcpy(b, theta + sh->boff[l], (size_t)out * sizeof(float));
        memset(b + out, 0, (size_t)(pad16(out) - out) * sizeof(float));
    }
    pack_transposes(sh, ps);
}

/* Whether a gradient's first weights W_0 [d[1], 1] are read from its W^T
 * row [1, pad16(d[1])] (the same numbers): with one input its column, 16
 * floats per number, is never read by the passes (dX stops above layer 0),
 * so the meta-gradient v and hv do not write it. */
static int w0_in_row(const mlp_shape *sh, int l) { return l == 0 && sh->d[0] == 1; }

/* Where layer l's W [out, in] of a meta-gradient is read from: the row of
 * w0_in_row, else its padded W part; *ld its row stride. */
static const float *weights_of(const mlp_shape *sh, const float *ps, int l, int64_t *ld) {
    *ld = pad16(sh->d[l]);
    return w0_in_row(sh, l) ? ps + sh->pt[l] : ps + sh->pw[l];
}

/* The W and b parts of a meta-gradient back into the flat model layout. */
static void unpack(const mlp_shape *sh, const float *ps, float *theta) {
    for (int l = 0; l < sh->layers; l++) {
        int out = sh->d[l + 1], in = sh->d[l];
        int64_t ld;
        const float *w = weights_of(sh, ps, l, &ld);
        if (w0_in_row(sh, l))
            copy_rows(1, out, theta + sh->woff[l], w, 0);
        else
            copy_rows(out, in, theta + sh->woff[l], w, ld);
        copy_rows(1, out, theta + sh->boff[l], ps + sh->pb[l], 0);
    }
}


/* acc += the W and b parts of a packed set, in the flat model layout (each
 * element once: the same sums as adding unpack's row). */
typedef struct packed_add {
    const mlp_shape *sh;
    const float *ps;
} packed_add;

static void add_packed(float *acc, const void *user) {
    const packed_add *pa = user;
    const mlp_shape *sh = pa->sh;
    for (int l = 0; l < sh->layers; l++) {
        int out = sh->d[l + 1], in = sh->d[l];
        int64_t ld;
        const float *w = weights_of(sh, pa->ps, l, &ld);
        if (w0_in_row(sh, l))
            add_rows(1, out, acc + sh->woff[l], w, 0);
        else
            add_rows(out, in, acc + sh->woff[l], w, ld);
        add_rows(1, out, acc + sh->boff[l], pa->ps + sh->pb[l], 0);
    }
}

/* ---- passes ---------------------------------------------------------------------------------- */

static float *floats(ml_ctx *ctx, int64_t n) {
    return ml_ctx_alloc(ctx, (size_t)(n > 0 ? n : 1) * sizeof(float));
}

/* Buffers of a pass on n points whose inputs x [n, d[0]] are copied in (padded). */
static int alloc_pass(ml_ctx *ctx, const mlp_shape *sh, int n, const float *x, mlp_pass *p) {
    p->n = n;
    int p0 = pad16(sh->d[0]);
    if (!(p->a[0] = floats(ctx, (int64_t)n * p0))) return -1;
    for (int i = 0; i < n; i++) /* a loop, not memcpy + memset per point: a point is one float here */
        for (int j = 0; j < p0; j++) p->a[0][(int64_t)i * p0 + j] = j < sh->d[0] ? x[(int64_t)i * sh->d[0] + j] : 0.f;
    for (int l = 0; l < sh->layers; l++) {
        int64_t size = (int64_t)n * pad16(sh->d[l + 1]);
        if (!(p->z[l] = floats(ctx, size)) || !(p->dz[l] = floats(ctx, size))) return -1;
        if (l + 1 < sh->layers && !(p->a[l + 1] = floats(ctx, size))) return -1;
    }
    return 0;
}

/* Forward at the packed set ps. */
static void forward(const mlp_shape *sh, const float *ps, mlp_pass *p) {
    for (int l = 0; l < sh->layers; l++) {
        int in = sh->d[l], out = sh->d[l + 1];
        mm_nn(p->n, in, out, p->a[l], ps + sh->pt[l], ps + sh->pb[l], p->z[l]);
        if (l + 1 < sh->layers) relu_mask((int64_t)p->n * pad16(out), p->z[l], p->z[l], p->a[l + 1]);
    }
}

/* Backward of the mean squared error against y: dz of every layer and the
 * gradient g as a packed set (its transposes computed, not transposed: the
 * same products summed in the same order); returns the loss. With step,
 * g receives the SGD step ps - rate gradient instead (taken as each part is
 * computed: the gradient itself is never stored). */
static float backward(const mlp_shape *sh, const float *ps, const float *y, mlp_pass *p, float *g, int step, float rate) {
    int L = sh->layers, n = p->n;
    const float *out = p->z[L - 1];
    float *dy = p->dz[L - 1], loss = 0.f, scale = 2.f / (float)n;
    memset(dy, 0, (size_t)n * 16 * sizeof(float));
    for (int i = 0; i < n; i++) {
        float e = out[i * 16] - y[i];
        loss += e * e;
        dy[i * 16] = scale * e;
    }
    for (int l = L - 1; l >= 0; l--) {
        int in = sh->d[l], o = sh->d[l + 1];
        const float *fw = step ? ps + sh->pw[l] : NULL, *ft = step ? ps + sh->pt[l] : NULL;
        /* a stepped set's first W part is never read (the forward uses W^T,
         * dX stops above layer 0): skipped, unless it is the cheap row; a
         * gradient's W_0 column neither (w0_in_row) */
        float *gw = l == 0 && (step ? o > 1 : w0_in_row(sh, l)) ? NULL : g + sh->pw[l];
        weight_grad(o, n, in, p->dz[l], p->a[l], NULL, NULL, gw, g + sh->pt[l], fw, ft, rate);
        col_sums(n, pad16(o), p->dz[l], g + sh->pb[l]);
        if (step) sub_scaled(pad16(o), ps + sh->pb[l], rate, g + sh->pb[l], g + sh->pb[l]);
        if (l == 0) break;
        float *da = p->dz[l - 1]; /* dL/da[l], masked in place into dL/dz[l-1] */
        mm_nn(n, o, in, p->dz[l], ps + sh->pw[l], NULL, da);
        relu_mask((int64_t)n * pad16(in), p->z[l - 1], da, da);
    }
    return loss / (float)n;
}

/* hv = H v: the Hessian of the loss of pass p (its forward and backward at
 * the packed set ps) times the packed set v; hv's transposes only when
 * with_t. ra[l]
 * (l >= 1) and rdz[l]: scratch of n pad16(d[l]) and n pad16(d[l+1]). */
static void hessian_vector(const mlp_shape *sh, const float *ps, const mlp_pass *p, const float *v, float *hv,
                           int with_t, float *ra[MAX_LAYERS + 1], float *rdz[MAX_LAYERS]) {
    int L = sh->layers, n = p->n;
    /* R-forward: Rz[l] = Ra[l] W_l^T + a[l] V_l^T + c_l; Ra[l+1] = mask(z[l]) Rz[l]; Ra[0] = 0.
     * Rz[l] is built in ra[l+1] (masked in place), the output's in rdz[L-1]. */
    for (int l = 0; l < L; l++) {
        int in = sh->d[l], out = sh->d[l + 1];
        float *rz = l + 1 < L ? ra[l + 1] : rdz[L - 1];
        mm_nn(n, in, out, p->a[l], v + sh->pt[l], v + sh->pb[l], rz);
        if (l > 0) mm_nn(n, in, out, ra[l], ps + sh->pt[l], rz, rz);
        if (l + 1 < L) relu_mask((int64_t)n * pad16(out), p->z[l], rz, rz);
    }
    /* R-backward: R(dy) = 2 Rz_out / n; R(gW_l) = Rdz_l^T a_l + dz_l^T Ra_l,
     * R(gb_l) = colsum Rdz_l; R(da_l) = Rdz_l W_l + dz_l V_l, masked by z[l-1]. */
    float scale = 2.f / (float)n;
    for (int64_t j = 0; j < (int64_t)n * 16; j++) rdz[L - 1][j] *= scale;
    for (int l = L - 1; l >= 0; l--) {
        int in = sh->d[l], o = sh->d[l + 1];
        /* hw = Rdz^T a (+ dz^T Ra); ht its transpose, written when wanted or
         * when it is the cheap side (hv's W^T parts are scratch otherwise) */
        weight_grad(o, n, in, rdz[l], p->a[l], l > 0 ? p->dz[l] : NULL, l > 0 ? ra[l] : NULL,
                    w0_in_row(sh, l) ? NULL : hv + sh->pw[l], with_t || in == 1 ? hv + sh->pt[l] : NULL, NULL, NULL,
                    0.f);
        col_sums(n, pad16(o), rdz[l], hv + sh->pb[l]);
        if (l == 0) break;
        float *rda = rdz[l - 1];
        mm_nn(n, o, in, rdz[l], ps + sh->pw[l], NULL, rda);
        mm_nn(n, o, in, p->dz[l], v + sh->pw[l], rda, rda);
        relu_mask((int64_t)n * pad16(in), p->z[l - 1], rda, rda);
    }
}

/* v -= rate hv over the parts later read: W (W_0 from its row when
 * w0_in_row), b, and every W^T when with_t (another Hessian-vector product
 * follows; hv has its W^T parts then). */
static void step_back(const mlp_shape *sh, float *v, const float *hv, float rate, int with_t) {
    for (int l = 0; l < sh->layers; l++) {
        int64_t w_len = sh->pt[l] - sh->pw[l], t_len = sh->pb[l] - sh->pt[l];
        if (!w0_in_row(sh, l)) sub_scaled(w_len, v + sh->pw[l], rate, hv + sh->pw[l], v + sh->pw[l]);
        if (with_t || w0_in_row(sh, l)) sub_scaled(t_len, v + sh->pt[l], rate, hv + sh->pt[l], v + sh->pt[l]);
        sub_scaled(pad16(sh->d[l + 1]), v + sh->pb[l], rate, hv + sh->pb[l], v + sh->pb[l]);
    }
}

/* ---- the task ---------------------------------------------------------------------------------- */

void ml__maml_mlp_step_task(ml_meta *m, ml_meta_worker *w, int item, const ml_task_data *t) {
    ml_ctx *ctx = w->ctx;
    ml_ctx_reset(ctx);
    mlp_shape sh;
    shape_of(m->model, &sh);
    int S = m->cfg.inner_steps, second = ml__learner_of(m->cfg.algo)->second_order;
    float rate = m->cfg.inner_lr;
    int64_t np = sh.packed;
    int maxd = 16, nmax = t->n_support > t->n_query ? t->n_support : t->n_query;
    for (int l = 0; l <= sh.layers; l++) maxd = pad16(sh.d[l]) > maxd ? pad16(sh.d[l]) : maxd;
    /* theta_s packed for s = 0..S, one support pass per inner step */
    float **theta = ml_ctx_alloc(ctx, (size_t)(S + 1) * sizeof(float *));
    mlp_pass *sup = ml_ctx_alloc(ctx, (size_t)(S > 0 ? S : 1) * sizeof(mlp_pass));
    mlp_pass q;
    float *v = floats(ctx, np), *hv = floats(ctx, np);
    float *ra[MAX_LAYERS + 1] = {0}, *rdz[MAX_LAYERS] = {0};
    int ok = theta && sup && v && hv && alloc_pass(ctx, &sh, t->n_query, t->xq, &q) == 0;
    for (int l = 0; l < sh.layers && ok; l++)
        ok = (rdz[l] = floats(ctx, (int64_t)nmax * maxd)) && (ra[l + 1] = floats(ctx, (int64_t)nmax * maxd));
    for (int s = 0; s <= S && ok; s++)
        ok = (s == 0 || (theta[s] = floats(ctx, np))) && (s == S || alloc_pass(ctx, &sh, t->n_support, t->xs, &sup[s]) == 0);
    if (!ok) {
        ml__meta_fail_task(m, w, item, "fused MAML workspace");
        return;
    }
    /* theta_0 is the same for every task of a step: packed once per worker */
    int64_t need = sh.n + np + 16; /* + room to start the packed set on 64 bytes */
    int fresh = w->fused_cap < need;
    if (ml__meta_grow_floats(&w->fused_theta, &w->fused_cap, need)) {
        ml__meta_fail_task(m, w, item, "fused MAML workspace");
        return;
    }
    /* on a 64-byte boundary like the arena's buffers: the kernels' 16-float
     * loads of theta_0's rows then never straddle two cache lines */
    float *packed0 = w->fused_theta + sh.n;
    packed0 += (16 - ((uintptr_t)packed0 / sizeof(float)) % 16) % 16;
    /* theta is not written during a step: compared on the worker's first task only */
    if (fresh || (!w->fused_checked && memcmp(w->fused_theta, m->meta, (size_t)sh.n * sizeof(float)))) {
        memcpy(w->fused_theta, m->meta, (size_t)sh.n * sizeof(float));
        pack(&sh, m->meta, packed0);
    }
    w->fused_checked = 1;
    theta[0] = packed0;
    for (int s = 0; s < S; s++) {
        forward(&sh, theta[s], &sup[s]);
        backward(&sh, theta[s], t->ys, &sup[s], theta[s + 1], 1, rate); /* the gradient and the step in one */
    }
    forward(&sh, theta[S], &q);
    float loss = backward(&sh, theta[S], t->yq, &q, v, 0, 0.f);
    if (second) /* v <- (I - rate H_s) v, s = S-1 .. 0 */
        for (int s = S - 1; s >= 0; s--) {
            hessian_vector(&sh, theta[s], &sup[s], v, hv, s > 0, ra, rdz);
            step_back(&sh, v, hv, rate, s > 0); /* the last: only W and b are read back */
        }
    m->task_loss[item] = loss;
    if (w->keeps_own) { /* fixed blocks: the caller's row, added after the batch (meta.c) */
        unpack(&sh, v, w->own_rows + (int64_t)(item - w->own_base) * sh.n);
        w->own_first = item < w->own_first ? item : w->own_first;
        return;
    }
    /* the route takes learners without extras only: W and b are the whole row */
    packed_add pa = {&sh, v};
    /* a task dealt from the back is next in order only at the very end: it
     * writes its row without first taking task_sum's lock to ask (the commit
     * adds it if it is next after all) */
    if (!w->from_back && ml__meta_task_add_in_order(m, item, add_packed, &pa)) return;
    float *row = ml__meta_task_row(m, w, item);
    if (!row) return;
    unpack(&sh, v, row); /* the whole row: the route takes learners without extras only */
    ml__meta_task_row_done(m, item, row);
}
