/* metalearn/tensor.h: tensors, the context that records them, the ops, and
 * ml_grad.
 *
 * A context (ml_ctx) owns one arena and one tape. Every tensor made by an op
 * lives in the arena until ml_ctx_reset (O(1)). While grad recording is on,
 * each op appends a node to the tape; ml_grad walks the tape backwards and
 * returns gradients (like torch.autograd.grad) without storing them in the
 * tensors, so several gradient sets of the same weights can coexist (MAML).
 *
 * Every backward rule is written with the ops below. With create_graph on,
 * those ops are recorded too, so the gradients can be differentiated again
 * (second-order MAML). With it off the same rules run without recording.
 *
 * Errors: op builders return NULL and set a sticky error on the context; an op
 * given a NULL input returns NULL at once, so a whole forward pass is checked
 * once at the end with ml_ctx_status(). A context belongs to one thread. */
#ifndef METALEARN_TENSOR_H
#define METALEARN_TENSOR_H

#include <stdint.h>

#include "metalearn/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ML_MAX_DIMS 4

typedef struct ml_node ml_node;
typedef struct ml_ctx ml_ctx;

/* A float32 tensor, contiguous, PyTorch dimension order (last dim fastest). */
typedef struct ml_tensor {
    float *data;
    int64_t shape[ML_MAX_DIMS];
    int ndim;
    int64_t numel;
    ml_node *node;   /* the op that made it, NULL for leaves and unrecorded results */
    uint32_t id;     /* index within its context, for gradient bookkeeping */
} ml_tensor;

/* ---- context ---------------------------------------------------------------- */
ml_ctx *ml_ctx_create(size_t arena_bytes);
void ml_ctx_destroy(ml_ctx *ctx);
/* Drops every tensor and node made since the last reset. O(1), no heap calls
 * once the arena has grown to the size of the pass. */
void ml_ctx_reset(ml_ctx *ctx);
/* Recording on/off (like torch.no_grad); returns the previous setting. */
/* Everything made after a mark (tensors, tape nodes) is dropped by rewinding
 * to it; what was made before stays valid. For repeated passes over a graph
 * that is kept, e.g. Hessian-vector products in a conjugate-gradient loop. */
typedef struct ml_ctx_mark {
    ml_arena_mark arena;
    ml_node *tape_tail;
    uint32_t n_tensors;
} ml_ctx_mark;
ml_ctx_mark ml_ctx_get_mark(const ml_ctx *ctx);
void ml_ctx_rewind(ml_ctx *ctx, ml_ctx_mark m);
int ml_ctx_set_recording(ml_ctx *ctx, int on);
int ml_ctx_recording(const ml_ctx *ctx);
/* Consume mode (off by default; returns the previous setting): while on, an
 * ml_grad without create_graph may write a gradient over a forward value that
 * only the backward still reads, so the backward needs that much less memory.
 * Today that is the output of a convolution read by nothing but one fused
 * batch norm + ReLU (+ pool) (ml_batchnorm_relu*), the largest activation of
 * a conv block: after ml_grad it holds its gradient. Every other tensor keeps
 * its value. For training steps, which never read those outputs. */
int ml_ctx_set_consume(ml_ctx *ctx, int on);
ml_status ml_ctx_status(const ml_ctx *ctx);
const char *ml_ctx_error(const ml_ctx *ctx); /* "" when ok */
void ml_ctx_clear_error(ml_ctx *ctx);
/* Sets the sticky error (first error wins); returns NULL for convenience. */
ml_tensor *ml_ctx_fail(ml_ctx *ctx, ml_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
ml_arena *ml_ctx_arena(ml_ctx *ctx);
void *ml_ctx_alloc(ml_ctx *ctx, size_t bytes); /* arena memory; sets NOMEM on failure */

/* ---- making tensors ----------------------------------------------------------- */
ml_tensor *ml_tensor_new(ml_ctx *ctx, int ndim, const int64_t *shape); /* uninitialised */
ml_tensor *ml_tensor_zeros(ml_ctx *ctx, int ndim, const int64_t *shape);
ml_tensor *ml_tensor_full(ml_ctx *ctx, int ndim, const int64_t *shape, float value);
ml_tensor *ml_tensor_scalar(ml_ctx *ctx, float value);
/* Wraps memory the caller owns (e.g. a view into a model's flat parameter
 * buffer). The tensor is a leaf: ml_grad can differentiate with respect to it. */
ml_tensor *ml_tensor_wrap(ml_ctx *ctx, float *data, int ndim, const int64_t *shape);
ml_tensor *ml_tensor_copy(ml_ctx *ctx, const ml_tensor *x); /* unrecorded copy, a new leaf */
#define ML_SHAPE(...) ((const int64_t[]){__VA_ARGS__})
#define ML_NDIM(...) ((int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))
/* ml_tensor_new(ctx, ML_NDIM(2, 3), ML_SHAPE(2, 3)) in short: */
#define ml_new(ctx, ...) ml_tensor_new((ctx), ML_NDIM(__VA_ARGS__), ML_SHAPE(__VA_ARGS__))
int ml_same_shape(const ml_tensor *a, const ml_tensor *b);
/* "[5, 64, 14, 14]" into buf; returns buf. */
const char *ml_shape_str(const ml_tensor *t, char *buf, size_t len);

/* ---- views ------------------------------------------------------------------------ */
/* Same data, new shape (one entry may be -1). */
ml_tensor *ml_reshape(ml_ctx *ctx, ml_tensor *x, int ndim, const int64_t *shape);
/* [N, ...] -> [N, rest] */
ml_tensor *ml_flatten(ml_ctx *ctx, ml_tensor *x);
/* Rows [start, start+count) along dim 0: a view sharing x's data. */
ml_tensor *ml_narrow(ml_ctx *ctx, ml_tensor *x, int64_t start, int64_t count);
/* Concatenation along dim 0 (copies). */
ml_tensor *ml_concat0(ml_ctx *ctx, ml_tensor *a, ml_tensor *b);

/* ---- elementwise, with NumPy/PyTorch broadcasting ---------------------------- */
ml_tensor *ml_add(ml_ctx *ctx, ml_tensor *a, ml_tensor *b);
ml_tensor *ml_sub(ml_ctx *ctx, ml_tensor *a, ml_tensor *b);
ml_tensor *ml_mul(ml_ctx *ctx, ml_tensor *a, ml_tensor *b);
ml_tensor *ml_div(ml_ctx *ctx, ml_tensor *a, ml_tensor *b);
/* x [N, C, ...] + b [C]: bias of a linear or conv layer. */
ml_tensor *ml_bias_add(ml_ctx *ctx, ml_tensor *x, ml_tensor *b);
ml_tensor *ml_scale(ml_ctx *ctx, ml_tensor *x, float s);
ml_tensor *ml_add_scalar(ml_ctx *ctx, ml_tensor *x, float s);
ml_tensor *ml_neg(ml_ctx *ctx, ml_tensor *x);
ml_tensor *ml_exp(ml_ctx *ctx, ml_tensor *x);
ml_tensor *ml_log(ml_ctx *ctx, ml_tensor *x);
ml_tensor *ml_sqrt(ml_ctx *ctx, ml_tensor *x);
ml_tensor *ml_rsqrt(ml_ctx *ctx, ml_tensor *x);
ml_tensor *ml_square(ml_ctx *ctx, ml_tensor *x);
ml_tensor *ml_relu(ml_ctx *ctx, ml_tensor *x);
ml_tensor *ml_tanh(ml_ctx *ctx, ml_tensor *x);
/* g * (x > 0): ReLU's backward, an op of its own so that it is differentiable
 * (in g; its derivative in x is zero almost everywhere). */
ml_tensor *ml_relu_mask(ml_ctx *ctx, ml_tensor *g, ml_tensor *x);

/* ---- reductions and broadcasting ------------------------------------------------ */
/* Sum over the axes whose bit is set in axes_mask (bit i = dim i; negative dims
 * not accepted here). keepdim keeps them as size 1. */
ml_tensor *ml_sum(ml_ctx *ctx, ml_tensor *x, unsigned axes_mask, int keepdim);
ml_tensor *ml_mean(ml_ctx *ctx, ml_tensor *x, unsigned axes_mask, int keepdim);
ml_tensor *ml_sum_all(ml_ctx *ctx, ml_tensor *x);  /* scalar, shape [] */
ml_tensor *ml_mean_all(ml_ctx *ctx, ml_tensor *x); /* scalar */
/* Broadcast to a larger shape (NumPy rules); backward is ml_sum_to. */
ml_tensor *ml_broadcast_to(ml_ctx *ctx, ml_tensor *x, int ndim, const int64_t *shape);
/* Sum a broadcast result back down to `shape`; backward is ml_broadcast_to. */
ml_tensor *ml_sum_to(ml_ctx *ctx, ml_tensor *x, int ndim, const int64_t *shape);

/* ---- linear algebra and layers ---------------------------------------------------- */
/* 2-D: op(a) [m,k] x op(b) [k,n], op = transpose when ta / tb. */
ml_tensor *ml_matmul(ml_ctx *ctx, ml_tensor *a, ml_tensor *b, int ta, int tb);
/* x [N,C,H,W], w [O,C,KH,KW] -> [N,O,OH,OW]; zero padding, no bias. */
ml_tensor *ml_conv2d(ml_ctx *ctx, ml_tensor *x, ml_tensor *w, int stride, int pad);
/* The two backward products of conv2d, exposed as ops (each differentiable). */
ml_tensor *ml_conv2d_backward_data(ml_ctx *ctx, ml_tensor *dy, ml_tensor *w, int h, int wd,
                                   int stride, int pad);
ml_tensor *ml_conv2d_backward_weight(ml_ctx *ctx, ml_tensor *x, ml_tensor *dy, int kh, int kw,
                                     int stride, int pad);
/* 2x2 max-pool, stride 2, floor (PyTorch default). Indices are kept on the node. */
ml_tensor *ml_maxpool2x2(ml_ctx *ctx, ml_tensor *x);
/* [N,C,H,W] -> [N,C] */
ml_tensor *ml_global_avgpool(ml_ctx *ctx, ml_tensor *x);
/* Batch norm over (N,H,W) per channel (or over N for [N,C]). In training it
 * normalises by the batch statistics (biased variance) and, when running_mean
 * and running_var are given, updates them in place with `momentum` (PyTorch's
 * convention, unbiased variance); in evaluation it uses the running statistics.
 * gamma/beta may be NULL (no affine). */
ml_tensor *ml_batchnorm(ml_ctx *ctx, ml_tensor *x, ml_tensor *gamma, ml_tensor *beta,
                        float *running_mean, float *running_var, int training, float momentum,
                        float eps);
/* relu(ml_batchnorm(...)), and ml_maxpool2x2 of that: one fused op in
 * training mode with gamma and beta on [N,C,H,W] (same statistics and
 * running-stat update), else the separate ops. */
ml_tensor *ml_batchnorm_relu(ml_ctx *ctx, ml_tensor *x, ml_tensor *gamma, ml_tensor *beta,
                             float *running_mean, float *running_var, int training, float momentum,
                             float eps);
ml_tensor *ml_batchnorm_relu_maxpool(ml_ctx *ctx, ml_tensor *x, ml_tensor *gamma, ml_tensor *beta,
                                     float *running_mean, float *running_var, int training, float momentum,
                                     float eps);
/* Along the last dimension. */
ml_tensor *ml_softmax(ml_ctx *ctx, ml_tensor *x);
ml_tensor *ml_log_softmax(ml_ctx *ctx, ml_tensor *x);
/* Mean over rows of -log_softmax(logits)[i, labels[i]]; logits [N, C]. */
ml_tensor *ml_cross_entropy(ml_ctx *ctx, ml_tensor *logits, const int32_t *labels);
/* mean((a - b)^2) */
ml_tensor *ml_mse(ml_ctx *ctx, ml_tensor *a, ml_tensor *b);

/* Inverse of a square matrix [n, n] (Gauss-Jordan with partial pivoting in
 * double); a singular matrix is an error. For small systems such as R2-D2's
 * ridge regression in Woodbury form. */
ml_tensor *ml_inverse(ml_ctx *ctx, ml_tensor *a);
/* Identity [n, n], unrecorded constant. */
ml_tensor *ml_eye(ml_ctx *ctx, int64_t n);

/* ---- index ops (closing the op set under differentiation) ------------------------ */
/* out[i] = x[i, labels[i]] for x [N, C]. */
ml_tensor *ml_pick(ml_ctx *ctx, ml_tensor *x, const int32_t *labels);
/* out [N, C] zero but out[i, labels[i]] = g[i]: ml_pick's backward. */
ml_tensor *ml_pick_backward(ml_ctx *ctx, ml_tensor *g, const int32_t *labels, int64_t n_classes);

/* ---- gradients --------------------------------------------------------------------- */
/* Gradients of scalar y with respect to xs[0..n-1], written to out[0..n-1]
 * (a zero tensor where y does not depend on xs[i]). With create_graph the
 * backward ops are recorded, so out[] can be differentiated again. Returns the
 * context's status. */
ml_status ml_grad(ml_ctx *ctx, ml_tensor *y, ml_tensor **xs, int n, int create_graph,
                  ml_tensor **out);
/* Same with an explicit seed dy (same shape as y) for a non-scalar y. */
ml_status ml_grad_seed(ml_ctx *ctx, ml_tensor *y, ml_tensor *dy, ml_tensor **xs, int n,
                       int create_graph, ml_tensor **out);
/* Same with k outputs seeded at once (ys[j] gets dys[j]; the ys distinct): the
 * vector-Jacobian product sum_j dys[j] . d ys[j] / d xs. E.g. a gradient
 * already known at some intermediate tensors walked back through the graph that
 * made them (MAML's query gradient at the adapted weights, through the inner
 * steps). */
ml_status ml_grad_seeds(ml_ctx *ctx, ml_tensor **ys, ml_tensor **dys, int k, ml_tensor **xs, int n,
                        int create_graph, ml_tensor **out);

/* Number of ops in the op table and their names (for tests and profiles). */
int ml_op_count(void);
const char *ml_op_name(int op);

#ifdef __cplusplus
}
#endif
#endif
