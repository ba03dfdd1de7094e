/* internal.h: the op table, tape nodes and the context's insides.
 * Shared by src/tensor and src/autograd only. */
#ifndef ML_TENSOR_INTERNAL_H
#define ML_TENSOR_INTERNAL_H

#include "metalearn/tensor.h"

/* The op table. Each op has a forward (src/tensor/ops*.c) and a backward rule
 * written with ops of this table (src/autograd/backward.c), which keeps the
 * set closed under differentiation. Pairs that close it:
 *   RESHAPE/RESHAPE, NARROW/PAD0, CONCAT0/NARROW, SUM/BROADCAST,
 *   GATHER/SCATTER (max-pool indices, picked labels), RELU->RELU_MASK,
 *   CONV2D/CONV2D_BWD_DATA/CONV2D_BWD_WEIGHT, MATMUL with transpose flags,
 *   NORMALIZE (batch norm without affine) whose backward is recorded as
 *   composite ops when create_graph is on and runs fused otherwise,
 *   BN_RELU (relu(normalize(x) * gamma + beta), the conv block's middle) the
 *   same way, its composite built on NORMALIZE,
 *   INVERSE whose backward -Y^T g Y^T is built from its own output. */
#define ML_OP_LIST(X)   \
    X(RESHAPE)          \
    X(NARROW)           \
    X(PAD0)             \
    X(CONCAT0)          \
    X(ADD)              \
    X(SUB)              \
    X(MUL)              \
    X(DIV)              \
    X(SCALE)            \
    X(ADD_SCALAR)       \
    X(EXP)              \
    X(LOG)              \
    X(SQRT)             \
    X(RSQRT)            \
    X(SQUARE)           \
    X(RELU)             \
    X(RELU_MASK)        \
    X(SUM)              \
    X(BROADCAST)        \
    X(MATMUL)           \
    X(CONV2D)           \
    X(CONV2D_BWD_DATA)  \
    X(CONV2D_BWD_WEIGHT)\
    X(GATHER)           \
    X(SCATTER)          \
    X(SOFTMAX)          \
    X(LOG_SOFTMAX)      \
    X(NORMALIZE)        \
    X(BN_RELU)          \
    X(INVERSE)          \
    X(TANH)             \
    X(BN_GRAD)

typedef enum {
#define ML__OP_ENUM(name) ML_OP_##name,
    ML_OP_LIST(ML__OP_ENUM)
#undef ML__OP_ENUM
    ML_OP_COUNT
} ml_op;

#define ML_NODE_MAX_IN 3

struct ml_node {
    ml_op op;
    int n_in;
    ml_tensor *in[ML_NODE_MAX_IN];
    ml_tensor *out;
    int64_t ip[4];        /* integer parameters: axes, strides, offsets, flags (BN_RELU: ip[1] = 1, input in nChw16c) */
    float fp;             /* float parameter: scale, added scalar (CONV2D: 1 = output in nChw16c, conv_bn_blk16.c) */
    const int32_t *index; /* GATHER/SCATTER: flat source index of each gathered element */
    const uint8_t *code;  /* BN_RELU with the pool: a byte per output, ML__POOL_POS | ML__POOL_GATE */
    float *aux;           /* NORMALIZE: 1/sqrt(var + eps) per channel; BN_RELU: mean, inv, var, pooled xhat */
    int64_t src_shape[ML_MAX_DIMS]; /* NARROW/PAD0/SCATTER/CONV: the other side's shape */
    int src_ndim;
    ml_node *prev, *next; /* the tape, in recording order */
};

#define ML_ERR_LEN 512

/* Consume mode's buffer reuse inside one backward walk (grad.c): gradient
 * buffers of at least ML_RECYCLE_MIN floats that the walk allocated and that
 * nothing references any more go to `free`; ml_tensor_new takes a free buffer
 * of exactly the size asked before it bumps the arena. */
#define ML_RECYCLE_MIN ((int64_t)1 << 14)
#define ML_RECYCLE_FREE 32
#define ML_RECYCLE_WALK 512
typedef struct ml__buf {
    float *data;
    int64_t numel;
} ml__buf;
typedef struct ml__recycler {
    ml__buf free[ML_RECYCLE_FREE]; /* dead buffers, any order */
    int n_free;
    ml__buf walk[ML_RECYCLE_WALK]; /* every large buffer the walk allocated: the only ones ever freed */
    int n_walk;
} ml__recycler;

struct ml_ctx {
    ml_arena *arena;
    ml_node *tape_head, *tape_tail;
    uint32_t n_tensors;
    int recording;
    int consume;                 /* ml_ctx_set_consume: a backward may overwrite dead activations */
    const ml_tensor *dead_input; /* set by ml_grad around one rule: nd->in[0] if nothing reads it later */
    ml__recycler *recycle;       /* set by ml_grad during a consume-mode walk, else NULL */
    ml_status status;
    char error[ML_ERR_LEN];
};

/* A new node on the tape when recording, else NULL. Sets out->node. */
ml_node *ml__record(ml_ctx *ctx, ml_op op, ml_tensor *out, ml_tensor *a, ml_tensor *b);
/* A node with a third input (NULL until the op needs it). */
ml_node *ml__record3(ml_ctx *ctx, ml_op op, ml_tensor *out, ml_tensor *a, ml_tensor *b, ml_tensor *c);

/* Gather/scatter with explicit flat indices (idx has out numel / g numel entries). */
ml_tensor *ml__gather(ml_ctx *ctx, ml_tensor *x, const int32_t *idx, int ndim,
                      const int64_t *shape);
ml_tensor *ml__scatter(ml_ctx *ctx, ml_tensor *g, const int32_t *idx, int ndim,
                       const int64_t *shape);
/* Batch normalisation without affine: (x - mean) / sqrt(var + eps) per
 * channel (dim 1) over all other dims, biased variance. Writes the batch mean
 * and variance per channel to mean_out / var_out when given. */
ml_tensor *ml__normalize(ml_ctx *ctx, ml_tensor *x, float eps, float *mean_out, float *var_out);
ml_tensor *ml__normalize_backward_fused(ml_ctx *ctx, ml_tensor *g, ml_tensor *xhat, const float *inv);
/* Batch norm's input gradient for the gradient g1 at its affine output, as
 * one differentiable op (bn_grad.c; create_graph's batch-norm rule). */
ml_tensor *ml__bn_grad(ml_ctx *ctx, ml_tensor *a, ml_tensor *g1, ml_tensor *gamma, float eps);
void ml__bn_grad_backward(ml_ctx *ctx, const ml_node *nd, ml_tensor *g, const int need[3], ml_tensor *din[3]);
/* BN_RELU's backward without recording: writes dx, dgamma, dbeta in two passes. */
void ml__bn_relu_backward_fused(ml_ctx *ctx, const ml_node *nd, ml_tensor *g, ml_tensor *din[3]);
/* Block 1's pooled batch norm + ReLU backward from kept values (maml.c's
 * --low-memory query pass, ops_nn.c): bytes to keep for y's node (0: y is not
 * a pooled BN_RELU in NCHW on a plain conv output), the copy, and the
 * backward (dx over x, dgamma, dbeta into din) on x computed again, the
 * same gamma, beta and y, and the gradient g at y. */
int64_t ml__bn_pool_kept_bytes(const ml_tensor *y);
void ml__bn_pool_keep(const ml_tensor *y, void *kept);
void ml__bn_pool_backward_kept(ml_ctx *ctx, ml_tensor *x, ml_tensor *gamma, ml_tensor *beta, ml_tensor *y,
                               void *kept, ml_tensor *g, ml_tensor *din[3]);
/* The pooled forward of channels [lo, hi) with given statistics (ops_nn.c;
 * see there), for block 1's lean query pass (conv_bn_pool_lean.c). */
void ml__bn_pool_planes_with_stats(const float *x, int64_t n, int64_t c, int64_t h, int64_t w, const float *mean,
                                   const float *inv, const float *gamma, const float *beta, float *y,
                                   float *xhat_at, uint8_t *code, float *scratch, int32_t *rows, int64_t lo,
                                   int64_t hi);
/* Block 1 of a query pass without its conv output (conv_bn_pool_lean.c):
 * conv (stride 1, `pad`) from x, batch norm with batch statistics, ReLU,
 * 2x2 max-pool, first-order backward only. The statistics come from the
 * images' patch moments, the conv runs in chunks of images that are pooled
 * and dropped; kept (ml__lean_block_kept_bytes, 8-byte aligned): the moments,
 * mean / inv and the pooled outputs' codes; the pooled output goes to y.
 * The backward takes the gradient g at y and gives d[0..3] for the conv's
 * weight and bias (zero: it cancels in the batch norm), gamma and beta. The
 * values differ from the walk through the float conv output by its rounding. */
#define ML_LEAN_MAX_K 32
typedef struct ml_lean_kept ml_lean_kept;
/* The forward's conv output per chunk of images (1 MB; tests make it small). */
extern int64_t ml__lean_chunk_bytes;
int ml__lean_block_fits(const ml_tensor *x, const ml_tensor *w, int pad);
int64_t ml__lean_block_kept_bytes(int64_t c, int64_t pooled);
uint8_t *ml__lean_block_codes(ml_lean_kept *kp);
ml_lean_kept *ml__lean_block_forward(ml_ctx *ctx, ml_tensor *x, ml_tensor *w, ml_tensor *gamma, ml_tensor *beta,
                                     int pad, float eps, void *kept, float *y);
int ml__lean_block_backward(ml_ctx *ctx, ml_tensor *x, ml_tensor *w, ml_tensor *gamma, const ml_lean_kept *kp,
                            const float *g, ml_tensor *d[4]);
/* BN_RELU with the pool: the flat argmax index of each output (for the
 * recorded backward's scatter), expanded from nd->code into arena memory. */
const int32_t *ml__bn_relu_pool_index(ml_ctx *ctx, const ml_node *nd);
/* Tests and bench only: non-zero makes the fused batch norm + ReLU + pool
 * forward take its row-by-row path (pool_row, scalar codes) instead of the
 * whole-plane AVX-512 kernel, so the two can be compared bit for bit. */
extern int ml__bn_pool_rowwise;
/* Tests only: non-zero lets the pooled forward split by images (channels in
 * step, threads waiting for each other per channel) run with more threads
 * than processors, which it otherwise leaves to the channel loop. */
extern int ml__bn_pool_steps_oversubscribe;
/* Block 1 of an evaluation (recording off, batch statistics, 3x3 conv with
 * pad 1 of a 1-4 channel input, no bias): conv, batch norm, ReLU, 2x2
 * max-pool with the conv run plane by plane inside the pool's channel steps
 * (ops_nn.c): the output and running statistics of ml_conv2d +
 * ml_batchnorm_relu_maxpool bit for bit, without the conv output in memory.
 * *taken = 0 where it does not apply (then nothing was done).
 * ml__conv_bn_direct_off (tests) or ML_DIRECT_BLOCK1=0 turns it off. */
extern int ml__conv_bn_direct_off;
ml_tensor *ml__conv_bn_relu_pool_direct(ml_ctx *ctx, ml_tensor *x, ml_tensor *w, ml_tensor *gamma, ml_tensor *beta,
                                        float *running_mean, float *running_var, float momentum, float eps,
                                        int *taken);
/* conv (stride 1, pad 1) -> batch norm (batch statistics) + ReLU + 2x2 pool
 * with the conv output kept in nChw16c (conv_bn_blk16.c). *taken = 0 when the
 * route does not apply (then nothing is made: the caller takes the plain
 * ops). Records a CONV2D node with fp = 1 (output blocked) and a BN_RELU node
 * with ip[1] = 1 (input blocked). */
ml_tensor *ml__conv_bn_relu_pool_blk16(ml_ctx *ctx, ml_tensor *x, ml_tensor *w, ml_tensor *gamma, ml_tensor *beta,
                                       float *running_mean, float *running_var, float momentum, float eps,
                                       int *taken);
/* -1 (default): the route by the environment (ML_CONV_BLK16=0 turns it off);
 * 0: off (the plain twin); 1: on. Tests and benches set it. */
extern int ml__conv_blk16_mode;
/* Tests only: non-zero makes the blocked forward take its generic vector
 * code instead of the AVX-512 kernels (same bits). */
extern int ml__blk16_generic;
/* Set by tests: 1 keeps an evaluation's small conv blocks on the two-region route (conv_bn_blk16.c). */
extern int ml__blk16_tail_off;
/* The first-order backward's pieces on the blocked layout. */
void ml__bn_pool_dx_blk16(int64_t n, int64_t c, int64_t h, int64_t w, const float *x, const float *y,
                          const float *g, const uint8_t *code, const float *mean, const float *inv,
                          const float *coef, float *out);
ml_tensor *ml__conv2d_backward_data_blk16(ml_ctx *ctx, ml_tensor *dy, ml_tensor *w, int h, int wd, int stride,
                                          int pad);
ml_tensor *ml__conv2d_backward_weight_blk16(ml_ctx *ctx, ml_tensor *x, ml_tensor *dy, int kh, int kw, int stride,
                                            int pad);
/* A pooled BN_RELU node's code byte (nd->code), plain or blocked layout:
 * bits 0-1 the argmax's place in its 2x2 window (ops_nn.c's window_code),
 * bit 2 the ReLU gate (pooled y > 0), so the backward never reads y. */
enum { ML__POOL_POS = 3, ML__POOL_GATE = 4 };
/* A recorded backward at a blocked BN_RELU node: its input back to NCHW in
 * place, both nodes' flags cleared. 0, or -1 out of memory. */
int ml__bn_relu_unblock(ml_ctx *ctx, ml_node *nd);
void ml__blk16_from_nchw(const float *src, float *dst, int64_t n, int64_t c, int64_t sp);
void ml__nchw_from_blk16(const float *src, float *dst, int64_t n, int64_t c, int64_t sp);
ml_tensor *ml__pad0(ml_ctx *ctx, ml_tensor *g, int64_t start, int ndim, const int64_t *shape);

/* Backward rule of one node: given the gradient g of node->out, writes the
 * contribution for each input i with need[i] set into din[i]. */
void ml__backward_node(ml_ctx *ctx, ml_node *node, ml_tensor *g, const int need[ML_NODE_MAX_IN],
                       ml_tensor *din[ML_NODE_MAX_IN]);

#endif
