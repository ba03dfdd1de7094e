/* backward.c: one backward rule per op, each written with recorded ops.
 *
 * Because every rule below builds its result from ops of the table (never
 * by touching raw buffers), running it while the context records makes the
 * gradient itself differentiable: this is what gives second-order MAML and
 * Meta-SGD exact meta-gradients. Each rule quotes the forward it inverts. */
#include <string.h>

#include "tensor/internal.h"

/* dA from a broadcast elementwise op: reduce g*factor back to A's shape. */
static ml_tensor *to_shape(ml_ctx *ctx, ml_tensor *g, const ml_tensor *like) {
    return ml_sum_to(ctx, g, like->ndim, like->shape);
}

/* Recorded backward of y = normalize(a) = (a - mean(a)) * inv, means over every
 * dim but 1: da = inv * (g - mean(g) - y * mean(g * y)). Under create_graph,
 * inv must be a recorded function of a so that its own derivative reaches the
 * second-order gradient. */
static ml_tensor *normalize_backward_recorded(ml_ctx *ctx, ml_tensor *a, ml_tensor *g, ml_tensor *y, float eps) {
    unsigned axes = a->ndim == 4 ? 0xdu : 0x1u;
    ml_tensor *centered = ml_sub(ctx, a, ml_mean(ctx, a, axes, 1));
    ml_tensor *inv = ml_rsqrt(ctx, ml_add_scalar(ctx, ml_mean(ctx, ml_square(ctx, centered), axes, 1), eps));
    ml_tensor *mg = ml_mean(ctx, g, axes, 1);
    ml_tensor *mgy = ml_mean(ctx, ml_mul(ctx, g, y), axes, 1);
    return ml_mul(ctx, inv, ml_sub(ctx, ml_sub(ctx, g, mg), ml_mul(ctx, y, mgy)));
}

void ml__backward_node(ml_ctx *ctx, ml_node *nd, ml_tensor *g, const int need[ML_NODE_MAX_IN],
                       ml_tensor *din[ML_NODE_MAX_IN]) {
    ml_tensor *a = nd->in[0], *b = nd->in[1], *y = nd->out;
    for (int i = 0; i < ML_NODE_MAX_IN; i++) din[i] = NULL;
    switch (nd->op) {
    case ML_OP_RESHAPE: /* y = reshape(a) */
        din[0] = ml_reshape(ctx, g, a->ndim, a->shape);
        break;
    case ML_OP_NARROW: /* y = a[start : start + rows] */
        din[0] = ml__pad0(ctx, g, nd->ip[0], a->ndim, a->shape);
        break;
    case ML_OP_PAD0: /* y = zeros with y[start : ...] = a */
        din[0] = ml_narrow(ctx, g, nd->ip[0], a->shape[0]);
        break;
    case ML_OP_CONCAT0: /* y = [a; b] */
        if (need[0]) din[0] = ml_narrow(ctx, g, 0, a->shape[0]);
        if (need[1]) din[1] = ml_narrow(ctx, g, a->shape[0], b->shape[0]);
        break;
    case ML_OP_ADD: /* y = a + b */
        if (need[0]) din[0] = to_shape(ctx, g, a);
        if (need[1]) din[1] = to_shape(ctx, g, b);
        break;
    case ML_OP_SUB: /* y = a - b */
        if (need[0]) din[0] = to_shape(ctx, g, a);
        if (need[1]) din[1] = to_shape(ctx, ml_neg(ctx, g), b);
        break;
    case ML_OP_MUL: /* y = a * b */
        if (need[0]) din[0] = to_shape(ctx, ml_mul(ctx, g, b), a);
        if (need[1]) din[1] = to_shape(ctx, ml_mul(ctx, g, a), b);
        break;
    case ML_OP_DIV: /* y = a / b: da = g / b, db = -g * y / b */
        if (need[0]) din[0] = to_shape(ctx, ml_div(ctx, g, b), a);
        if (need[1]) din[1] = to_shape(ctx, ml_neg(ctx, ml_div(ctx, ml_mul(ctx, g, y), b)), b);
        break;
    case ML_OP_SCALE: /* y = s * a */
        din[0] = ml_scale(ctx, g, nd->fp);
        break;
    case ML_OP_ADD_SCALAR: /* y = a + s */
        din[0] = g;
        break;
    case ML_OP_EXP: /* y = exp(a): da = g * y */
        din[0] = ml_mul(ctx, g, y);
        break;
    case ML_OP_LOG: /* y = log(a): da = g / a */
        din[0] = ml_div(ctx, g, a);
        break;
    case ML_OP_SQRT: /* y = sqrt(a): da = g / (2 y) */
        din[0] = ml_scale(ctx, ml_div(ctx, g, y), 0.5f);
        break;
    case ML_OP_RSQRT: /* y = a^(-1/2): da = -1/2 g y^3 */
        din[0] = ml_scale(ctx, ml_mul(ctx, g, ml_mul(ctx, y, ml_square(ctx, y))), -0.5f);
        break;
    case ML_OP_SQUARE: /* y = a^2: da = 2 g a */
        din[0] = ml_scale(ctx, ml_mul(ctx, g, a), 2.0f);
        break;
    case ML_OP_TANH: /* y = tanh(a): da = g (1 - y^2), recorded in y so it differentiates again */
        din[0] = ml_sub(ctx, g, ml_mul(ctx, g, ml_square(ctx, y)));
        break;
    case ML_OP_RELU: /* y = max(a, 0): da = g * [a > 0] */
        din[0] = ml_relu_mask(ctx, g, a);
        break;
    case ML_OP_RELU_MASK: /* y = a * [b > 0]: linear in a, flat in b */
        if (need[0]) din[0] = ml_relu_mask(ctx, g, b);
        break;
    case ML_OP_SUM: { /* y = sum(a, axes): da = broadcast(g) */
        int64_t kshape[ML_MAX_DIMS];
        for (int i = 0; i < a->ndim; i++) kshape[i] = (nd->ip[0] >> i) & 1 ? 1 : a->shape[i];
        ml_tensor *gk = nd->ip[1] ? g : ml_reshape(ctx, g, a->ndim, kshape);
        din[0] = ml_broadcast_to(ctx, gk, a->ndim, a->shape);
        break;
    }
    case ML_OP_BROADCAST: /* y = broadcast(a): da = sum_to(g, a) */
        din[0] = to_shape(ctx, g, a);
        break;
    case ML_OP_MATMUL: { /* y = op(a) op(b) */
        int ta = (int)nd->ip[0], tb = (int)nd->ip[1];
        if (need[0]) din[0] = ta ? ml_matmul(ctx, b, g, tb, 1) : ml_matmul(ctx, g, b, 0, !tb);
        if (need[1]) din[1] = tb ? ml_matmul(ctx, g, a, 1, ta) : ml_matmul(ctx, a, g, !ta, 0);
        break;
    }
    /* The three conv ops are the partial products of one bilinear form
     * B(x, dy, w) = <conv(x, w), dy>, so each one's derivatives are the
     * other two. */
    case ML_OP_CONV2D: /* y = conv(a = x, b = w) */
        if (nd->fp != 0.f && !ctx->recording) { /* y and g in nChw16c (conv_bn_blk16.c) */
            if (need[1])
                din[1] = ml__conv2d_backward_weight_blk16(ctx, a, g, (int)b->shape[2], (int)b->shape[3],
                                                          (int)nd->ip[0], (int)nd->ip[1]);
            if (need[0])
                din[0] = ml__conv2d_backward_data_blk16(ctx, g, b, (int)a->shape[2], (int)a->shape[3],
                                                        (int)nd->ip[0], (int)nd->ip[1]);
            break;
        }
        /* Not recording: dw first, while dx is not yet allocated, so that
         * backward-weight's scratch (its largest) sits lower in the arena.
         * Recording keeps the tape order (dx's node first). */
        if (need[1] && !ctx->recording)
            din[1] = ml_conv2d_backward_weight(ctx, a, g, (int)b->shape[2], (int)b->shape[3], (int)nd->ip[0],
                                               (int)nd->ip[1]);
        if (need[0])
            din[0] = ml_conv2d_backward_data(ctx, g, b, (int)a->shape[2], (int)a->shape[3], (int)nd->ip[0],
                                             (int)nd->ip[1]);
        if (need[1] && ctx->recording)
            din[1] = ml_conv2d_backward_weight(ctx, a, g, (int)b->shape[2], (int)b->shape[3], (int)nd->ip[0],
                                               (int)nd->ip[1]);
        break;
    case ML_OP_CONV2D_BWD_DATA: /* y = dB/dx(a = dy, b = w) */
        if (need[0]) din[0] = ml_conv2d(ctx, g, b, (int)nd->ip[0], (int)nd->ip[1]);
        if (need[1])
            din[1] = ml_conv2d_backward_weight(ctx, g, a, (int)b->shape[2], (int)b->shape[3], (int)nd->ip[0],
                                               (int)nd->ip[1]);
        break;
    case ML_OP_CONV2D_BWD_WEIGHT: /* y = dB/dw(a = x, b = dy) */
        if (need[0])
            din[0] = ml_conv2d_backward_data(ctx, b, g, (int)a->shape[2], (int)a->shape[3], (int)nd->ip[0],
                                             (int)nd->ip[1]);
        if (need[1]) din[1] = ml_conv2d(ctx, a, g, (int)nd->ip[0], (int)nd->ip[1]);
        break;
    case ML_OP_GATHER: /* y[i] = a[idx[i]]: da = scatter(g) */
        din[0] = ml__scatter(ctx, g, nd->index, a->ndim, a->shape);
        break;
    case ML_OP_SCATTER: /* y[idx[i]] += a[i]: da = gather(g) */
        din[0] = ml__gather(ctx, g, nd->index, a->ndim, a->shape);
        break;
    case ML_OP_SOFTMAX: { /* y = softmax(a): da = y * (g - sum(g * y)) */
        unsigned last = 1u << (a->ndim - 1);
        ml_tensor *dot = ml_sum(ctx, ml_mul(ctx, g, y), last, 1);
        din[0] = ml_mul(ctx, y, ml_sub(ctx, g, dot));
        break;
    }
    case ML_OP_LOG_SOFTMAX: { /* y = a - logsumexp(a): da = g - exp(y) * sum(g) */
        unsigned last = 1u << (a->ndim - 1);
        din[0] = ml_sub(ctx, g, ml_mul(ctx, ml_exp(ctx, y), ml_sum(ctx, g, last, 1)));
        break;
    }
    case ML_OP_NORMALIZE: { /* y = (a - mean(a)) * inv, inv = rsqrt(var(a) + eps) */
        /* da = inv * (g - mean(g) - y * mean(g * y)), means over every dim but 1. */
        din[0] = ctx->recording ? normalize_backward_recorded(ctx, a, g, y, nd->fp)
                                : ml__normalize_backward_fused(ctx, g, y, nd->aux);
        break;
    }
    case ML_OP_BN_RELU: { /* y = relu(normalize(a) * gamma + beta), gamma = b, beta = in[2];
                             ip[0]: y is then max-pooled 2x2, argmax in nd->code */
        if (!ctx->recording) {
            ml__bn_relu_backward_fused(ctx, nd, g, din);
            break;
        }
        /* A blocked input (conv_bn_blk16.c) goes back to NCHW first. */
        if (ml__bn_relu_unblock(ctx, nd)) break; /* out of memory: the context says so */
        /* Recorded: g1 = g * [y > 0] (scattered back to each window's argmax
         * with the pool) is the gradient at the affine output; xhat for
         * dgamma is recomputed as a recorded NORMALIZE so that its derivative
         * is on the tape. */
        ml_tensor *g1 = ml_relu_mask(ctx, g, y);
        if (nd->ip[0]) {
            const int32_t *idx = ml__bn_relu_pool_index(ctx, nd);
            if (!idx) break;
            g1 = ml__scatter(ctx, g1, idx, a->ndim, a->shape);
        }
        /* da as one recorded op (bn_grad.c) rather than ~10 composite tensors
         * of the block's size kept for the meta-gradient. */
        if (need[0]) din[0] = ml__bn_grad(ctx, a, g1, b, nd->fp);
        if (need[1]) din[1] = ml_sum(ctx, ml_mul(ctx, g1, ml__normalize(ctx, a, nd->fp, NULL, NULL)), 0xdu, 0);
        if (need[2]) din[2] = ml_sum(ctx, g1, 0xdu, 0);
        break;
    }
    case ML_OP_BN_GRAD: /* y = bn_grad(a, g1 = b, gamma = in[2]), bn_grad.c */
        ml__bn_grad_backward(ctx, nd, g, need, din);
        break;
    case ML_OP_INVERSE: /* y = a^-1: da = -y^T g y^T */
        din[0] = ml_neg(ctx, ml_matmul(ctx, ml_matmul(ctx, y, g, 1, 0), y, 0, 1));
        break;
    case ML_OP_COUNT:
        break;
    }
    for (int i = 0; i < ML_NODE_MAX_IN; i++)
        if (i >= nd->n_in || !need[i]) din[i] = NULL;
}
