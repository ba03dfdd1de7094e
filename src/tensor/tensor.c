/* tensor.c: the context (arena + tape + sticky error), making tensors, views.
 * Not here: arithmetic (ops.c, ops_nn.c) and differentiation (autograd/). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tensor/internal.h"

/* ---- context ---------------------------------------------------------------- */

ml_ctx *ml_ctx_create(size_t arena_bytes) {
    ml_ctx *ctx = ml_calloc(1, sizeof *ctx);
    if (!ctx) return NULL;
    ctx->arena = ml_arena_create(arena_bytes ? arena_bytes : (size_t)1 << 20);
    if (!ctx->arena) {
        ml_free(ctx);
        return NULL;
    }
    ctx->recording = 1;
    return ctx;
}

void ml_ctx_destroy(ml_ctx *ctx) {
    if (!ctx) return;
    ml_arena_destroy(ctx->arena);
    ml_free(ctx);
}

void ml_ctx_reset(ml_ctx *ctx) {
    ml_arena_reset(ctx->arena);
    ctx->tape_head = ctx->tape_tail = NULL;
    ctx->n_tensors = 0;
}

ml_ctx_mark ml_ctx_get_mark(const ml_ctx *ctx) {
    ml_ctx_mark m = {ml_arena_get_mark(ctx->arena), ctx->tape_tail, ctx->n_tensors};
    return m;
}

void ml_ctx_rewind(ml_ctx *ctx, ml_ctx_mark m) {
    ml_arena_rewind(ctx->arena, m.arena);
    ctx->tape_tail = m.tape_tail;
    if (m.tape_tail) m.tape_tail->next = NULL;
    else ctx->tape_head = NULL;
    ctx->n_tensors = m.n_tensors;
}

int ml_ctx_set_recording(ml_ctx *ctx, int on) {
    int prev = ctx->recording;
    ctx->recording = on != 0;
    return prev;
}

int ml_ctx_recording(const ml_ctx *ctx) { return ctx->recording; }

int ml_ctx_set_consume(ml_ctx *ctx, int on) {
    int prev = ctx->consume;
    ctx->consume = on != 0;
    return prev;
}
ml_status ml_ctx_status(const ml_ctx *ctx) { return ctx->status; }
const char *ml_ctx_error(const ml_ctx *ctx) { return ctx->error; }
ml_arena *ml_ctx_arena(ml_ctx *ctx) { return ctx->arena; }

void ml_ctx_clear_error(ml_ctx *ctx) {
    ctx->status = ML_OK;
    ctx->error[0] = 0;
}

ml_tensor *ml_ctx_fail(ml_ctx *ctx, ml_status s, const char *fmt, ...) {
    if (ctx->status != ML_OK) return NULL; /* the first error is the informative one */
    ctx->status = s;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->error, sizeof ctx->error, fmt, ap);
    va_end(ap);
    return NULL;
}

void *ml_ctx_alloc(ml_ctx *ctx, size_t bytes) {
    void *p = ml_arena_alloc(ctx->arena, bytes);
    if (!p) ml_ctx_fail(ctx, ML_ERR_NOMEM, "out of memory: arena could not grow by %zu bytes", bytes);
    return p;
}

ml_node *ml__record(ml_ctx *ctx, ml_op op, ml_tensor *out, ml_tensor *a, ml_tensor *b) {
    return ml__record3(ctx, op, out, a, b, NULL);
}

ml_node *ml__record3(ml_ctx *ctx, ml_op op, ml_tensor *out, ml_tensor *a, ml_tensor *b, ml_tensor *c) {
    if (!ctx->recording) return NULL;
    ml_node *n = ml_ctx_alloc(ctx, sizeof *n);
    if (!n) return NULL;
    memset(n, 0, sizeof *n);
    n->op = op;
    n->in[0] = a;
    n->in[1] = b;
    n->in[2] = c;
    n->n_in = c ? 3 : b ? 2 : (a ? 1 : 0);
    n->out = out;
    n->prev = ctx->tape_tail;
    if (ctx->tape_tail)
        ctx->tape_tail->next = n;
    else
        ctx->tape_head = n;
    ctx->tape_tail = n;
    out->node = n;
    return n;
}

/* ---- making tensors ------------------------------------------------------------ */

static ml_tensor *header_new(ml_ctx *ctx, int ndim, const int64_t *shape) {
    if (ndim < 0 || ndim > ML_MAX_DIMS)
        return ml_ctx_fail(ctx, ML_ERR_SHAPE, "tensor: %d dimensions (at most %d)", ndim, ML_MAX_DIMS);
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (shape[i] && numel > INT64_MAX / 4 / shape[i]))
            return ml_ctx_fail(ctx, ML_ERR_SHAPE, "tensor: bad size %lld in dimension %d",
                               (long long)shape[i], i);
        numel *= shape[i];
    }
    ml_tensor *t = ml_ctx_alloc(ctx, sizeof *t);
    if (!t) return NULL;
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->numel = numel;
    t->id = ctx->n_tensors++;
    return t;
}

/* A consume-mode walk (grad.c): a dead buffer of the same size first, and
 * every large buffer it hands out is listed as the walk's own. */
static float *recycled_data(ml_ctx *ctx, int64_t numel) {
    ml__recycler *r = ctx->recycle;
    for (int i = 0; i < r->n_free; i++)
        if (r->free[i].numel == numel) {
            float *p = r->free[i].data;
            r->free[i] = r->free[--r->n_free];
            return p;
        }
    float *p = ml_ctx_alloc(ctx, (size_t)numel * sizeof(float));
    if (p && r->n_walk < ML_RECYCLE_WALK) r->walk[r->n_walk++] = (ml__buf){p, numel};
    return p;
}

ml_tensor *ml_tensor_new(ml_ctx *ctx, int ndim, const int64_t *shape) {
    if (ctx->status != ML_OK) return NULL;
    ml_tensor *t = header_new(ctx, ndim, shape);
    if (!t) return NULL;
    if (ctx->recycle && t->numel >= ML_RECYCLE_MIN) t->data = recycled_data(ctx, t->numel);
    else t->data = ml_ctx_alloc(ctx, (size_t)t->numel * sizeof(float));
    return t->data ? t : NULL;
}

ml_tensor *ml_tensor_zeros(ml_ctx *ctx, int ndim, const int64_t *shape) {
    ml_tensor *t = ml_tensor_new(ctx, ndim, shape);
    if (t) memset(t->data, 0, (size_t)t->numel * sizeof(float));
    return t;
}

ml_tensor *ml_tensor_full(ml_ctx *ctx, int ndim, const int64_t *shape, float value) {
    ml_tensor *t = ml_tensor_new(ctx, ndim, shape);
    if (t)
        for (int64_t i = 0; i < t->numel; i++) t->data[i] = value;
    return t;
}

ml_tensor *ml_tensor_scalar(ml_ctx *ctx, float value) { return ml_tensor_full(ctx, 0, NULL, value); }

ml_tensor *ml_tensor_wrap(ml_ctx *ctx, float *data, int ndim, const int64_t *shape) {
    if (ctx->status != ML_OK) return NULL;
    ml_tensor *t = header_new(ctx, ndim, shape);
    if (t) t->data = data;
    return t;
}

ml_tensor *ml_tensor_copy(ml_ctx *ctx, const ml_tensor *x) {
    if (!x) return NULL;
    ml_tensor *t = ml_tensor_new(ctx, x->ndim, x->shape);
    if (t) memcpy(t->data, x->data, (size_t)x->numel * sizeof(float));
    return t;
}

int ml_same_shape(const ml_tensor *a, const ml_tensor *b) {
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

const char *ml_shape_str(const ml_tensor *t, char *buf, size_t len) {
    size_t off = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < t->ndim && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, i ? ", %lld" : "%lld", (long long)t->shape[i]);
    if (off < len) snprintf(buf + off, len - off, "]");
    return buf;
}

/* ---- views ----------------------------------------------------------------------- */

ml_tensor *ml_reshape(ml_ctx *ctx, ml_tensor *x, int ndim, const int64_t *shape) {
    if (!x || ctx->status != ML_OK) return NULL;
    int64_t s[ML_MAX_DIMS], known = 1;
    int infer = -1;
    if (ndim < 0 || ndim > ML_MAX_DIMS) return ml_ctx_fail(ctx, ML_ERR_SHAPE, "reshape: %d dimensions", ndim);
    for (int i = 0; i < ndim; i++) {
        s[i] = shape[i];
        if (s[i] == -1) {
            if (infer >= 0) return ml_ctx_fail(ctx, ML_ERR_SHAPE, "reshape: more than one -1");
            infer = i;
        } else {
            known *= s[i];
        }
    }
    if (infer >= 0) s[infer] = known ? x->numel / known : 0;
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) numel *= s[i];
    if (numel != x->numel) {
        char b[64];
        return ml_ctx_fail(ctx, ML_ERR_SHAPE, "reshape: %s has %lld elements, target has %lld",
                           ml_shape_str(x, b, sizeof b), (long long)x->numel, (long long)numel);
    }
    ml_tensor *t = header_new(ctx, ndim, s);
    if (!t) return NULL;
    t->data = x->data;
    ml__record(ctx, ML_OP_RESHAPE, t, x, NULL);
    return t;
}

ml_tensor *ml_flatten(ml_ctx *ctx, ml_tensor *x) {
    if (!x) return NULL;
    if (x->ndim < 1) return ml_ctx_fail(ctx, ML_ERR_SHAPE, "flatten: scalar input");
    return ml_reshape(ctx, x, 2, ML_SHAPE(x->shape[0], -1));
}

ml_tensor *ml_narrow(ml_ctx *ctx, ml_tensor *x, int64_t start, int64_t count) {
    if (!x || ctx->status != ML_OK) return NULL;
    if (x->ndim < 1 || start < 0 || count < 0 || start + count > x->shape[0])
        return ml_ctx_fail(ctx, ML_ERR_SHAPE, "narrow: rows [%lld, %lld) out of %lld", (long long)start,
                           (long long)(start + count), x->ndim ? (long long)x->shape[0] : 0LL);
    int64_t s[ML_MAX_DIMS];
    memcpy(s, x->shape, sizeof s);
    s[0] = count;
    ml_tensor *t = header_new(ctx, x->ndim, s);
    if (!t) return NULL;
    int64_t row = x->shape[0] ? x->numel / x->shape[0] : 0;
    t->data = x->data + start * row;
    ml_node *n = ml__record(ctx, ML_OP_NARROW, t, x, NULL);
    if (n) n->ip[0] = start;
    return t;
}

/* Inverse of narrow: g placed at rows [start, ...) of a zero tensor of `shape`. */
ml_tensor *ml__pad0(ml_ctx *ctx, ml_tensor *g, int64_t start, int ndim, const int64_t *shape) {
    if (!g || ctx->status != ML_OK) return NULL;
    ml_tensor *t = ml_tensor_zeros(ctx, ndim, shape);
    if (!t) return NULL;
    int64_t row = shape[0] ? t->numel / shape[0] : 0;
    memcpy(t->data + start * row, g->data, (size_t)g->numel * sizeof(float));
    ml_node *n = ml__record(ctx, ML_OP_PAD0, t, g, NULL);
    if (n) n->ip[0] = start;
    return t;
}

ml_tensor *ml_concat0(ml_ctx *ctx, ml_tensor *a, ml_tensor *b) {
    if (!a || !b || ctx->status != ML_OK) return NULL;
    int ok = a->ndim == b->ndim && a->ndim >= 1;
    for (int i = 1; ok && i < a->ndim; i++) ok = a->shape[i] == b->shape[i];
    if (!ok) {
        char sa[64], sb[64];
        return ml_ctx_fail(ctx, ML_ERR_SHAPE, "concat0: %s and %s differ beyond dim 0",
                           ml_shape_str(a, sa, sizeof sa), ml_shape_str(b, sb, sizeof sb));
    }
    int64_t s[ML_MAX_DIMS];
    memcpy(s, a->shape, sizeof s);
    s[0] = a->shape[0] + b->shape[0];
    ml_tensor *t = ml_tensor_new(ctx, a->ndim, s);
    if (!t) return NULL;
    memcpy(t->data, a->data, (size_t)a->numel * sizeof(float));
    memcpy(t->data + a->numel, b->data, (size_t)b->numel * sizeof(float));
    ml__record(ctx, ML_OP_CONCAT0, t, a, b);
    return t;
}

/* ---- op names -------------------------------------------------------------------- */

static const char *const op_names[] = {
#define ML__OP_NAME(name) #name,
    ML_OP_LIST(ML__OP_NAME)
#undef ML__OP_NAME
};
_Static_assert(sizeof op_names / sizeof op_names[0] == ML_OP_COUNT, "op table and names disagree");

int ml_op_count(void) { return ML_OP_COUNT; }
const char *ml_op_name(int op) { return op >= 0 && op < ML_OP_COUNT ? op_names[op] : "?"; }
