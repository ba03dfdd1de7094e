/* ops.c: elementwise ops with broadcasting, reductions, matmul, softmax and
 * the index ops. Forward only: backward rules live in autograd/backward.c.
 * Each op checks shapes at the boundary, computes, then records a node. */
#include <math.h>
#include <string.h>

#include "tensor/conv.h"
#include "tensor/internal.h"
#include "tensor/kernels_par.h"

#define CHECK_IN1(x) \
    if (!(x) || ctx->status != ML_OK) return NULL
#define CHECK_IN2(a, b) \
    if (!(a) || !(b) || ctx->status != ML_OK) return NULL

/* ---- broadcasting -------------------------------------------------------------------
 * Shapes are aligned to the right and padded to 4 dims; a dim of size 1
 * broadcasts (stride 0). */

typedef struct bcast {
    int64_t out[4], sa[4], sb[4]; /* out shape; element strides of a and b */
    int ndim;
} bcast;

static void pad4(const ml_tensor *t, int64_t s[4]) {
    int off = 4 - t->ndim;
    for (int i = 0; i < 4; i++) s[i] = i < off ? 1 : t->shape[i - off];
}

static void strides4(const int64_t s[4], const int64_t out[4], int64_t st[4]) {
    int64_t acc = 1;
    for (int i = 3; i >= 0; i--) {
        st[i] = (s[i] == 1 && out[i] != 1) ? 0 : acc;
        acc *= s[i];
    }
}

static int bcast_init(ml_ctx *ctx, const char *op, const ml_tensor *a, const ml_tensor *b, bcast *bc) {
    int64_t as[4], bs[4];
    pad4(a, as);
    pad4(b, bs);
    for (int i = 0; i < 4; i++) {
        if (as[i] != bs[i] && as[i] != 1 && bs[i] != 1) {
            char s1[64], s2[64];
            ml_ctx_fail(ctx, ML_ERR_SHAPE, "%s: shapes %s and %s do not broadcast", op,
                        ml_shape_str(a, s1, sizeof s1), ml_shape_str(b, s2, sizeof s2));
            return -1;
        }
        bc->out[i] = as[i] == 1 ? bs[i] : as[i];
    }
    strides4(as, bc->out, bc->sa);
    strides4(bs, bc->out, bc->sb);
    bc->ndim = a->ndim > b->ndim ? a->ndim : b->ndim;
    return 0;
}

/* The kernels walk a collapsed view: after bcast_init, adjacent dims that are
 * contiguous in a, b and the output alike are merged ([N,C,H,W] + [1,C,1,1]
 * becomes [N, C, H*W] with strides {0,1,0} for b), so the inner loop runs
 * over H*W elements rather than W, and it vectorises. */
static void bcast_collapse(const bcast *bc, int64_t d[4], int64_t sa[4], int64_t sb[4]) {
    int64_t cd[4], ca[4], cb[4];
    int k = 0;
    for (int i = 0; i < 4; i++) {
        if (bc->out[i] == 1) continue;
        if (k > 0 && ca[k - 1] == bc->sa[i] * bc->out[i] && cb[k - 1] == bc->sb[i] * bc->out[i]) {
            cd[k - 1] *= bc->out[i];
            ca[k - 1] = bc->sa[i];
            cb[k - 1] = bc->sb[i];
            continue;
        }
        cd[k] = bc->out[i], ca[k] = bc->sa[i], cb[k] = bc->sb[i];
        k++;
    }
    for (int i = 0; i < 4; i++) {
        int j = i - (4 - k);
        d[i] = j < 0 ? 1 : cd[j];
        sa[i] = j < 0 ? 0 : ca[j];
        sb[i] = j < 0 ? 0 : cb[j];
    }
}

typedef struct binary_job {
    int64_t d[4], sa[4], sb[4];
    const float *a, *b;
    float *o;
} binary_job;

/* o[lo..hi) of the collapsed [d0, d1, d2, d3] output. */
#define BINARY_KERNEL(name, EXPR)                                                          \
    ML_KERNEL static void name(void *arg, int64_t lo, int64_t hi) {                        \
        const binary_job *j = arg;                                                         \
        const int64_t *d = j->d, *sa = j->sa, *sb = j->sb;                                 \
        int64_t c = 0, i0 = 0, i1 = 0, i2 = 0;                                             \
        if (lo) { /* a later thread's part: find where it starts */                        \
            int64_t row = lo / d[3];                                                       \
            c = lo % d[3], i2 = row % d[2], i1 = row / d[2] % d[1], i0 = row / d[2] / d[1]; \
        }                                                                                  \
        float *o = j->o + lo;                                                              \
        while (lo < hi) {                                                                  \
            const float *pa = j->a + i0 * sa[0] + i1 * sa[1] + i2 * sa[2];                 \
            const float *pb = j->b + i0 * sb[0] + i1 * sb[1] + i2 * sb[2];                 \
            int64_t e = d[3] - c < hi - lo ? d[3] : c + (hi - lo), len = e - c;            \
            if (sa[3] == 1 && sb[3] == 1) {                                                \
                pa += c, pb += c;                                                          \
                for (int64_t i = 0; i < len; i++) {                                        \
                    float x = pa[i], y = pb[i];                                            \
                    o[i] = EXPR;                                                           \
                }                                                                          \
            } else if (sa[3] == 1 && sb[3] == 0) {                                         \
                float y = pb[0];                                                           \
                pa += c;                                                                   \
                for (int64_t i = 0; i < len; i++) {                                        \
                    float x = pa[i];                                                       \
                    o[i] = EXPR;                                                           \
                }                                                                          \
            } else if (sa[3] == 0 && sb[3] == 1) {                                         \
                float x = pa[0];                                                           \
                pb += c;                                                                   \
                for (int64_t i = 0; i < len; i++) {                                        \
                    float y = pb[i];                                                       \
                    o[i] = EXPR;                                                           \
                }                                                                          \
            } else {                                                                       \
                for (int64_t i = c; i < e; i++) {                                          \
                    float x = pa[i * sa[3]], y = pb[i * sb[3]];                            \
                    o[i - c] = EXPR;                                                       \
                }                                                                          \
            }                                                                              \
            o += len, lo += len, c = 0;                                                    \
            if (++i2 == d[2]) {                                                            \
                i2 = 0;                                                                    \
                if (++i1 == d[1]) i1 = 0, i0++;                                            \
            }                                                                              \
        }                                                                                  \
    }

BINARY_KERNEL(k_add, x + y)
BINARY_KERNEL(k_sub, x - y)
BINARY_KERNEL(k_mul, x *y)
BINARY_KERNEL(k_div, x / y)

static ml_tensor *binary(ml_ctx *ctx, ml_op op, const char *name, ml__range_fn k, ml_tensor *a,
                         ml_tensor *b) {
    CHECK_IN2(a, b);
    bcast bc;
    if (bcast_init(ctx, name, a, b, &bc)) return NULL;
    ml_tensor *t = ml_tensor_new(ctx, bc.ndim, bc.out + (4 - bc.ndim));
    if (!t) return NULL;
    binary_job j = {.a = a->data, .b = b->data, .o = t->data};
    if (a->numel == t->numel && b->numel == t->numel) { /* no broadcasting: one flat run */
        j.d[0] = j.d[1] = j.d[2] = 1, j.d[3] = t->numel;
        j.sa[0] = j.sa[1] = j.sa[2] = j.sb[0] = j.sb[1] = j.sb[2] = 0;
        j.sa[3] = j.sb[3] = 1;
    } else {
        bcast_collapse(&bc, j.d, j.sa, j.sb);
    }
    ML__PAR_RUN(t->numel, t->numel, 16, k, &j);
    ml__record(ctx, op, t, a, b);
    return t;
}

ml_tensor *ml_add(ml_ctx *ctx, ml_tensor *a, ml_tensor *b) { return binary(ctx, ML_OP_ADD, "add", k_add, a, b); }
ml_tensor *ml_sub(ml_ctx *ctx, ml_tensor *a, ml_tensor *b) { return binary(ctx, ML_OP_SUB, "sub", k_sub, a, b); }
ml_tensor *ml_mul(ml_ctx *ctx, ml_tensor *a, ml_tensor *b) { return binary(ctx, ML_OP_MUL, "mul", k_mul, a, b); }
ml_tensor *ml_div(ml_ctx *ctx, ml_tensor *a, ml_tensor *b) { return binary(ctx, ML_OP_DIV, "div", k_div, a, b); }

ml_tensor *ml_bias_add(ml_ctx *ctx, ml_tensor *x, ml_tensor *b) {
    CHECK_IN2(x, b);
    if (x->ndim < 2 || b->ndim != 1 || b->shape[0] != x->shape[1]) {
        char s1[64], s2[64];
        return ml_ctx_fail(ctx, ML_ERR_SHAPE, "bias_add: input %s, bias %s (want [C] with C = dim 1)",
                           ml_shape_str(x, s1, sizeof s1), ml_shape_str(b, s2, sizeof s2));
    }
    int64_t s[4] = {1, b->shape[0], 1, 1};
    ml_tensor *bv = ml_reshape(ctx, b, x->ndim, s);
    return ml_add(ctx, x, bv);
}

/* ---- unary ---------------------------------------------------------------------------- */

typedef struct unary_job {
    ml_op op;
    float p;
    const float *a;
    float *o;
} unary_job;

ML_KERNEL static void unary_range(void *arg, int64_t lo, int64_t hi) {
    const unary_job *j = arg;
    const float *a = j->a;
    float *o = j->o;
    const float p = j->p;
    switch (j->op) {
    case ML_OP_SCALE:
        for (int64_t i = lo; i < hi; i++) o[i] = a[i] * p;
        break;
    case ML_OP_ADD_SCALAR:
        for (int64_t i = lo; i < hi; i++) o[i] = a[i] + p;
        break;
    case ML_OP_EXP:
        for (int64_t i = lo; i < hi; i++) o[i] = expf(a[i]);
        break;
    case ML_OP_LOG:
        for (int64_t i = lo; i < hi; i++) o[i] = logf(a[i]);
        break;
    case ML_OP_SQRT:
        for (int64_t i = lo; i < hi; i++) o[i] = sqrtf(a[i]);
        break;
    case ML_OP_RSQRT:
        for (int64_t i = lo; i < hi; i++) o[i] = 1.0f / sqrtf(a[i]);
        break;
    case ML_OP_SQUARE:
        for (int64_t i = lo; i < hi; i++) o[i] = a[i] * a[i];
        break;
    case ML_OP_RELU:
        for (int64_t i = lo; i < hi; i++) o[i] = a[i] > 0.f ? a[i] : 0.f;
        break;
    case ML_OP_TANH:
        for (int64_t i = lo; i < hi; i++) o[i] = tanhf(a[i]);
        break;
    default:
        break;
    }
}

static ml_tensor *unary(ml_ctx *ctx, ml_op op, ml_tensor *x, float p) {
    CHECK_IN1(x);
    switch (op) {
    case ML_OP_SCALE: case ML_OP_ADD_SCALAR: case ML_OP_EXP: case ML_OP_LOG:
    case ML_OP_SQRT: case ML_OP_RSQRT: case ML_OP_SQUARE: case ML_OP_RELU: case ML_OP_TANH:
        break;
    default:
        return ml_ctx_fail(ctx, ML_ERR_STATE, "unary: op %s is not unary", ml_op_name(op));
    }
    ml_tensor *t = ml_tensor_new(ctx, x->ndim, x->shape);
    if (!t) return NULL;
    unary_job j = {op, p, x->data, t->data};
    /* exp and log are scalar libm calls: worth splitting at fewer elements. */
    int64_t work = (op == ML_OP_EXP || op == ML_OP_LOG || op == ML_OP_TANH) ? 8 * x->numel : x->numel;
    ML__PAR_RUN(x->numel, work, 16, unary_range, &j);
    ml_node *nd = ml__record(ctx, op, t, x, NULL);
    if (nd) nd->fp = p;
    return t;
}

ml_tensor *ml_scale(ml_ctx *ctx, ml_tensor *x, float s) { return unary(ctx, ML_OP_SCALE, x, s); }
ml_tensor *ml_add_scalar(ml_ctx *ctx, ml_tensor *x, float s) { return unary(ctx, ML_OP_ADD_SCALAR, x, s); }
ml_tensor *ml_neg(ml_ctx *ctx, ml_tensor *x) { return unary(ctx, ML_OP_SCALE, x, -1.0f); }
ml_tensor *ml_exp(ml_ctx *ctx, ml_tensor *x) { return unary(ctx, ML_OP_EXP, x, 0); }
ml_tensor *ml_log(ml_ctx *ctx, ml_tensor *x) { return unary(ctx, ML_OP_LOG, x, 0); }
ml_tensor *ml_sqrt(ml_ctx *ctx, ml_tensor *x) { return unary(ctx, ML_OP_SQRT, x, 0); }
ml_tensor *ml_rsqrt(ml_ctx *ctx, ml_tensor *x) { return unary(ctx, ML_OP_RSQRT, x, 0); }
ml_tensor *ml_square(ml_ctx *ctx, ml_tensor *x) { return unary(ctx, ML_OP_SQUARE, x, 0); }
ml_tensor *ml_relu(ml_ctx *ctx, ml_tensor *x) { return unary(ctx, ML_OP_RELU, x, 0); }
ml_tensor *ml_tanh(ml_ctx *ctx, ml_tensor *x) { return unary(ctx, ML_OP_TANH, x, 0); }

/* o = x > 0 ? g : 0 over [lo, hi) (a = g, b = x). */
ML_KERNEL static void relu_mask_range(void *arg, int64_t lo, int64_t hi) {
    const binary_job *j = arg;
    const float *gd = j->a, *xd = j->b;
    float *od = j->o;
    /* Load g unconditionally: with the load inside the ?: GCC 12 emits a
     * masked load and spills the vector through the stack every iteration. */
    for (int64_t i = lo; i < hi; i++) {
        const float gv = gd[i];
        od[i] = xd[i] > 0.f ? gv : 0.f;
    }
}

ml_tensor *ml_relu_mask(ml_ctx *ctx, ml_tensor *g, ml_tensor *x) {
    CHECK_IN2(g, x);
    if (!ml_same_shape(g, x)) {
        char s1[64], s2[64];
        return ml_ctx_fail(ctx, ML_ERR_SHAPE, "relu_mask: %s vs %s", ml_shape_str(g, s1, sizeof s1),
                           ml_shape_str(x, s2, sizeof s2));
    }
    ml_tensor *t = ml_tensor_new(ctx, g->ndim, g->shape);
    if (!t) return NULL;
    binary_job j = {.a = g->data, .b = x->data, .o = t->data};
    ML__PAR_RUN(g->numel, g->numel, 16, relu_mask_range, &j);
    ml__record(ctx, ML_OP_RELU_MASK, t, g, x);
    return t;
}

/* ---- reductions --------------------------------------------------------------------------
 * Sums accumulate in double: batch-norm statistics over 60k elements and
 * finite-difference checks both need the extra precision. */

/* x viewed as a collapsed [d0, d1, d2, d3] (adjacent reduced dims merged,
 * adjacent kept dims merged, size-1 dims dropped); os = element strides into
 * the accumulator (0 on reduced dims). Work is split over one kept dim
 * (`split`), so each output element is summed by one thread, in the serial
 * order. */
typedef struct sum_job {
    int64_t d[4], xs[4], os[4];
    int split;
    const float *x;
    double *acc;
} sum_job;

ML_KERNEL static void sum_range(void *arg, int64_t lo, int64_t hi) {
    const sum_job *j = arg;
    int64_t b0[4] = {0, 0, 0, 0}, b1[4];
    for (int i = 0; i < 4; i++) b1[i] = j->d[i];
    if (j->split >= 0) b0[j->split] = lo, b1[j->split] = hi;
    const int64_t *xs = j->xs, *os = j->os;
    for (int64_t i0 = b0[0]; i0 < b1[0]; i0++)
        for (int64_t i1 = b0[1]; i1 < b1[1]; i1++)
            for (int64_t i2 = b0[2]; i2 < b1[2]; i2++) {
                double *q = j->acc + i0 * os[0] + i1 * os[1] + i2 * os[2];
                const float *p = j->x + i0 * xs[0] + i1 * xs[1] + i2 * xs[2];
                if (os[3] == 0) {
                    *q += ml__sum_row(p + b0[3], b1[3] - b0[3]);
                } else {
                    for (int64_t i3 = b0[3]; i3 < b1[3]; i3++) q[i3] += p[i3];
                }
            }
}

ml_tensor *ml_sum(ml_ctx *ctx, ml_tensor *x, unsigned mask, int keepdim) {
    CHECK_IN1(x);
    if (mask >> x->ndim)
        return ml_ctx_fail(ctx, ML_ERR_ARG, "sum: axes mask 0x%x names dims beyond %d", mask, x->ndim);
    int64_t kshape[4], oshape[4];
    int ko = 0;
    for (int i = 0; i < x->ndim; i++) {
        int red = (mask >> i) & 1;
        kshape[i] = red ? 1 : x->shape[i];
        if (!red) oshape[ko++] = x->shape[i];
    }
    ml_tensor *t = keepdim ? ml_tensor_new(ctx, x->ndim, kshape) : ml_tensor_new(ctx, ko, oshape);
    if (!t) return NULL;
    ml_arena_mark m = ml_arena_get_mark(ctx->arena);
    double *acc = ml_ctx_alloc(ctx, (size_t)t->numel * sizeof(double));
    if (!acc) return NULL;
    memset(acc, 0, (size_t)t->numel * sizeof(double));
    /* Collapse: merge runs of adjacent dims of the same kind (x is contiguous
     * and the kept dims are contiguous in the output, so a run is one dim). */
    int64_t cd[4];
    int cred[4], k = 0;
    for (int i = 0; i < x->ndim; i++) {
        int red = (mask >> i) & 1;
        if (x->shape[i] == 1) continue;
        if (k > 0 && cred[k - 1] == red) {
            cd[k - 1] *= x->shape[i];
            continue;
        }
        cd[k] = x->shape[i], cred[k] = red, k++;
    }
    sum_job j = {.split = -1, .x = x->data, .acc = acc};
    int64_t xacc = 1, oacc = 1;
    for (int i = 3; i >= 0; i--) {
        int c = i - (4 - k);
        j.d[i] = c < 0 ? 1 : cd[c];
        int red = c < 0 ? 1 : cred[c];
        j.xs[i] = xacc;
        j.os[i] = red ? 0 : oacc;
        xacc *= j.d[i];
        if (!red) oacc *= j.d[i];
    }
    for (int i = 0; i < 4 && j.split < 0; i++)
        if (j.os[i] && j.d[i] > 1) j.split = i;
    if (j.split >= 0) ML__PAR_RUN(j.d[j.split], x->numel, 1, sum_range, &j);
    else sum_range(&j, 0, 1);
    for (int64_t i = 0; i < t->numel; i++) t->data[i] = (float)acc[i];
    ml_arena_rewind(ctx->arena, m);
    ml_node *nd = ml__record(ctx, ML_OP_SUM, t, x, NULL);
    if (nd) {
        nd->ip[0] = mask;
        nd->ip[1] = keepdim;
    }
    return t;
}

ml_tensor *ml_mean(ml_ctx *ctx, ml_tensor *x, unsigned mask, int keepdim) {
    CHECK_IN1(x);
    int64_t count = 1;
    for (int i = 0; i < x->ndim; i++)
        if ((mask >> i) & 1) count *= x->shape[i];
    ml_tensor *s = ml_sum(ctx, x, mask, keepdim);
    return ml_scale(ctx, s, count ? 1.0f / (float)count : 0.f);
}

ml_tensor *ml_sum_all(ml_ctx *ctx, ml_tensor *x) {
    CHECK_IN1(x);
    return ml_sum(ctx, x, (1u << x->ndim) - 1, 0);
}

ml_tensor *ml_mean_all(ml_ctx *ctx, ml_tensor *x) {
    CHECK_IN1(x);
    return ml_mean(ctx, x, (1u << x->ndim) - 1, 0);
}

ml_tensor *ml_broadcast_to(ml_ctx *ctx, ml_tensor *x, int ndim, const int64_t *shape) {
    CHECK_IN1(x);
    int64_t xs[4], out[4], st[4];
    pad4(x, xs);
    int off = 4 - ndim;
    for (int i = 0; i < 4; i++) out[i] = i < off ? 1 : shape[i - off];
    for (int i = 0; i < 4; i++)
        if (xs[i] != out[i] && xs[i] != 1) {
            char b[64];
            return ml_ctx_fail(ctx, ML_ERR_SHAPE, "broadcast_to: %s does not broadcast to %d dims",
                               ml_shape_str(x, b, sizeof b), ndim);
        }
    if (ndim < x->ndim) return ml_ctx_fail(ctx, ML_ERR_SHAPE, "broadcast_to: fewer dims than input");
    strides4(xs, out, st);
    ml_tensor *t = ml_tensor_new(ctx, ndim, shape);
    if (!t) return NULL;
    float *o = t->data;
    for (int64_t i0 = 0; i0 < out[0]; i0++)
        for (int64_t i1 = 0; i1 < out[1]; i1++)
            for (int64_t i2 = 0; i2 < out[2]; i2++) {
                const float *p = x->data + i0 * st[0] + i1 * st[1] + i2 * st[2];
                for (int64_t i3 = 0; i3 < out[3]; i3++) *o++ = p[i3 * st[3]];
            }
    ml__record(ctx, ML_OP_BROADCAST, t, x, NULL);
    return t;
}

ml_tensor *ml_sum_to(ml_ctx *ctx, ml_tensor *x, int ndim, const int64_t *shape) {
    CHECK_IN1(x);
    if (ndim > x->ndim) return ml_ctx_fail(ctx, ML_ERR_SHAPE, "sum_to: target has more dims than input");
    int off = x->ndim - ndim;
    unsigned mask = 0;
    for (int i = 0; i < x->ndim; i++) {
        int64_t target = i < off ? 1 : shape[i - off];
        if (i < off || (target == 1 && x->shape[i] != 1)) mask |= 1u << i;
        else if (target != x->shape[i]) {
            char b[64];
            return ml_ctx_fail(ctx, ML_ERR_SHAPE, "sum_to: %s cannot sum to dim %d of size %lld",
                               ml_shape_str(x, b, sizeof b), i, (long long)target);
        }
    }
    if (!mask && ndim == x->ndim) return x;
    ml_tensor *s = mask ? ml_sum(ctx, x, mask, 1) : x;
    return ml_reshape(ctx, s, ndim, shape);
}

/* ---- matmul ----------------------------------------------------------------------------- */

ml_tensor *ml_matmul(ml_ctx *ctx, ml_tensor *a, ml_tensor *b, int ta, int tb) {
    CHECK_IN2(a, b);
    if (a->ndim != 2 || b->ndim != 2) return ml_ctx_fail(ctx, ML_ERR_SHAPE, "matmul: inputs must be 2-D");
    int64_t m = ta ? a->shape[1] : a->shape[0], k = ta ? a->shape[0] : a->shape[1];
    int64_t kb = tb ? b->shape[1] : b->shape[0], n = tb ? b->shape[0] : b->shape[1];
    if (k != kb) {
        char s1[64], s2[64];
        return ml_ctx_fail(ctx, ML_ERR_SHAPE, "matmul: %s%s x %s%s: inner sizes %lld and %lld differ",
                           ml_shape_str(a, s1, sizeof s1), ta ? "^T" : "", ml_shape_str(b, s2, sizeof s2),
                           tb ? "^T" : "", (long long)k, (long long)kb);
    }
    ml_tensor *t = ml_tensor_new(ctx, 2, ML_SHAPE(m, n));
    if (!t) return NULL;
    ml__sgemm(ta, tb, m, n, k, 1.0f, a->data, a->shape[1], b->data, b->shape[1], 0.0f, t->data, n);
    ml_node *nd = ml__record(ctx, ML_OP_MATMUL, t, a, b);
    if (nd) {
        nd->ip[0] = ta != 0;
        nd->ip[1] = tb != 0;
    }
    return t;
}

/* ---- inverse -------------------------------------------------------------------------------- */

ml_tensor *ml_eye(ml_ctx *ctx, int64_t n) {
    ml_tensor *t = ml_tensor_zeros(ctx, 2, ML_SHAPE(n, n));
    if (t)
        for (int64_t i = 0; i < n; i++) t->data[i * n + i] = 1.0f;
    return t;
}

ml_tensor *ml_inverse(ml_ctx *ctx, ml_tensor *a) {
    CHECK_IN1(a);
    if (a->ndim != 2 || a->shape[0] != a->shape[1]) {
        char b[64];
        return ml_ctx_fail(ctx, ML_ERR_SHAPE, "inverse: %s is not a square matrix", ml_shape_str(a, b, sizeof b));
    }
    int64_t n = a->shape[0];
    ml_tensor *t = ml_tensor_new(ctx, 2, a->shape);
    ml_arena_mark m = ml_arena_get_mark(ctx->arena);
    double *w = ml_ctx_alloc(ctx, (size_t)(2 * n * n) * sizeof(double)); /* [A | I], row-major, 2n wide */
    if (!t || !w) return NULL;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < 2 * n; j++) w[i * 2 * n + j] = j < n ? a->data[i * n + j] : (j - n == i);
    for (int64_t c = 0; c < n; c++) {
        int64_t piv = c;
        for (int64_t i = c + 1; i < n; i++)
            if (fabs(w[i * 2 * n + c]) > fabs(w[piv * 2 * n + c])) piv = i;
        double p = w[piv * 2 * n + c];
        if (!(fabs(p) > 1e-300)) {
            ml_arena_rewind(ctx->arena, m);
            return ml_ctx_fail(ctx, ML_ERR_NUMERIC, "inverse: %lldx%lld matrix is singular", (long long)n, (long long)n);
        }
        if (piv != c)
            for (int64_t j = 0; j < 2 * n; j++) {
                double tmp = w[c * 2 * n + j];
                w[c * 2 * n + j] = w[piv * 2 * n + j];
                w[piv * 2 * n + j] = tmp;
            }
        for (int64_t j = 0; j < 2 * n; j++) w[c * 2 * n + j] /= p;
        for (int64_t i = 0; i < n; i++) {
            double f = w[i * 2 * n + c];
            if (i == c || f == 0) continue;
            for (int64_t j = 0; j < 2 * n; j++) w[i * 2 * n + j] -= f * w[c * 2 * n + j];
        }
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) t->data[i * n + j] = (float)w[i * 2 * n + n + j];
    ml_arena_rewind(ctx->arena, m);
    ml__record(ctx, ML_OP_INVERSE, t, a, NULL);
    return t;
}

/* ---- softmax ------------------------------------------------------------------------------ */

static ml_tensor *softmax_impl(ml_ctx *ctx, ml_tensor *x, int log_out) {
    CHECK_IN1(x);
    if (x->ndim < 1) return ml_ctx_fail(ctx, ML_ERR_SHAPE, "softmax: scalar input");
    ml_tensor *t = ml_tensor_new(ctx, x->ndim, x->shape);
    if (!t) return NULL;
    int64_t c = x->shape[x->ndim - 1], rows = c ? x->numel / c : 0;
    for (int64_t r = 0; r < rows; r++) {
        const float *p = x->data + r * c;
        float *o = t->data + r * c;
        float mx = -INFINITY;
        for (int64_t j = 0; j < c; j++) mx = p[j] > mx ? p[j] : mx;
        double s = 0;
        for (int64_t j = 0; j < c; j++) s += exp((double)p[j] - mx);
        if (log_out) {
            double lse = mx + log(s);
            for (int64_t j = 0; j < c; j++) o[j] = (float)(p[j] - lse);
        } else {
            for (int64_t j = 0; j < c; j++) o[j] = (float)(exp((double)p[j] - mx) / s);
        }
    }
    ml__record(ctx, log_out ? ML_OP_LOG_SOFTMAX : ML_OP_SOFTMAX, t, x, NULL);
    return t;
}

ml_tensor *ml_softmax(ml_ctx *ctx, ml_tensor *x) { return softmax_impl(ctx, x, 0); }
ml_tensor *ml_log_softmax(ml_ctx *ctx, ml_tensor *x) { return softmax_impl(ctx, x, 1); }

/* ---- gather / scatter by flat indices ---------------------------------------------------- */

ml_tensor *ml__gather(ml_ctx *ctx, ml_tensor *x, const int32_t *idx, int ndim, const int64_t *shape) {
    CHECK_IN1(x);
    ml_tensor *t = ml_tensor_new(ctx, ndim, shape);
    if (!t) return NULL;
    for (int64_t i = 0; i < t->numel; i++) t->data[i] = x->data[idx[i]];
    ml_node *nd = ml__record(ctx, ML_OP_GATHER, t, x, NULL);
    if (nd) nd->index = idx;
    return t;
}

ml_tensor *ml__scatter(ml_ctx *ctx, ml_tensor *g, const int32_t *idx, int ndim, const int64_t *shape) {
    CHECK_IN1(g);
    ml_tensor *t = ml_tensor_zeros(ctx, ndim, shape);
    if (!t) return NULL;
    for (int64_t i = 0; i < g->numel; i++) t->data[idx[i]] += g->data[i];
    ml_node *nd = ml__record(ctx, ML_OP_SCATTER, t, g, NULL);
    if (nd) nd->index = idx;
    return t;
}

static int32_t *pick_index(ml_ctx *ctx, const ml_tensor *x, const int32_t *labels, int64_t n, int64_t c) {
    int32_t *idx = ml_ctx_alloc(ctx, (size_t)(n ? n : 1) * sizeof(int32_t));
    if (!idx) return NULL;
    for (int64_t i = 0; i < n; i++) {
        if (labels[i] < 0 || labels[i] >= c) {
            ml_ctx_fail(ctx, ML_ERR_ARG, "pick: label %d of row %lld outside [0, %lld)", labels[i],
                        (long long)i, (long long)c);
            return NULL;
        }
        idx[i] = (int32_t)(i * c + labels[i]);
    }
    return idx;
}

ml_tensor *ml_pick(ml_ctx *ctx, ml_tensor *x, const int32_t *labels) {
    CHECK_IN1(x);
    if (x->ndim != 2) return ml_ctx_fail(ctx, ML_ERR_SHAPE, "pick: input must be [N, C]");
    int32_t *idx = pick_index(ctx, x, labels, x->shape[0], x->shape[1]);
    if (!idx) return NULL;
    return ml__gather(ctx, x, idx, 1, ML_SHAPE(x->shape[0]));
}

ml_tensor *ml_pick_backward(ml_ctx *ctx, ml_tensor *g, const int32_t *labels, int64_t n_classes) {
    CHECK_IN1(g);
    if (g->ndim != 1) return ml_ctx_fail(ctx, ML_ERR_SHAPE, "pick_backward: g must be [N]");
    int32_t *idx = pick_index(ctx, g, labels, g->shape[0], n_classes);
    if (!idx) return NULL;
    return ml__scatter(ctx, g, idx, 2, ML_SHAPE(g->shape[0], n_classes));
}
