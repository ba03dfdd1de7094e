/* grad.c: ml_grad, reverse-mode differentiation over the tape.
 *
 * The tape is in recording order, which is a topological order, so one
 * backward walk suffices. Two passes:
 *   1. forward over the tape: mark every tensor that depends on some xs[i];
 *   2. backward from the tape's end, the outputs' gradients seeded (the
 *      scalar's 1, or given ones: a vector-Jacobian product): for each node
 *      whose output has a gradient and depends on xs, run its rule and add the contributions
 *      into its inputs' gradients.
 * Gradients live in an array indexed by tensor id (arena memory). Nodes the
 * backward rules record while create_graph is on are appended after the
 * walk's starting point and so are never visited by the walk itself.
 *
 * Consume mode (ml_ctx_set_consume, no create_graph): pass 1 also counts the
 * readers of each tensor on the tape; a rule whose first input is a
 * convolution's output read by this node alone (and neither y nor an xs) may
 * write its gradient over that input (ctx->dead_input), because nothing that
 * runs later in the walk reads it. The walk also reuses its own large
 * gradient buffers once dead (release_if_dead): a gradient is dead after its
 * node's rule has run, an accumulated partial sum once added, unless some
 * gradient still held shares its memory (a view, or the same tensor passed to
 * two inputs). Only buffers the walk allocated are reused, so forward values
 * are never touched. */

#include <string.h>

#include "tensor/internal.h"

/* t's buffer goes to the free list if the walk allocated it and no gradient
 * still held (grads[]) lies inside it. O(tensors), only for
 * buffers of at least ML_RECYCLE_MIN floats, which are few. */
static void release_if_dead(ml__recycler *r, ml_tensor *const *grads, uint32_t nt, const ml_tensor *t) {
    if (!t || t->numel < ML_RECYCLE_MIN || r->n_free == ML_RECYCLE_FREE) return;
    int own = 0;
    for (int i = 0; i < r->n_walk && !own; i++) own = r->walk[i].data == t->data && r->walk[i].numel == t->numel;
    if (!own) return;
    const float *lo = t->data, *hi = t->data + t->numel;
    for (uint32_t id = 0; id < nt; id++)
        if (grads[id] && grads[id]->data >= lo && grads[id]->data < hi) return;
    for (int i = 0; i < r->n_free; i++)
        if (r->free[i].data == t->data) return; /* already free */
    r->free[r->n_free++] = (ml__buf){t->data, t->numel};
}

ml_status ml_grad_seeds(ml_ctx *ctx, ml_tensor **ys, ml_tensor **dys, int k, ml_tensor **xs, int n,
                        int create_graph, ml_tensor **out) {
    for (int i = 0; i < n; i++) out[i] = NULL;
    if (ctx->status != ML_OK) return ctx->status;
    for (int j = 0; j < k; j++) {
        if (!ys[j] || !dys[j]) {
            ml_ctx_fail(ctx, ML_ERR_ARG, "grad: NULL output or seed %d", j);
            return ctx->status;
        }
        if (!ml_same_shape(ys[j], dys[j])) {
            ml_ctx_fail(ctx, ML_ERR_SHAPE, "grad: seed %d's shape differs from its output's", j);
            return ctx->status;
        }
        for (int i = 0; i < j; i++)
            if (ys[i] == ys[j]) {
                ml_ctx_fail(ctx, ML_ERR_ARG, "grad: output %d seeded twice", j);
                return ctx->status;
            }
    }
    uint32_t nt = ctx->n_tensors;
    ml_node *last = ctx->tape_tail;
    unsigned char *dep = ml_ctx_alloc(ctx, nt ? nt : 1);
    ml_tensor **grads = ml_ctx_alloc(ctx, (size_t)(nt ? nt : 1) * sizeof *grads);
    if (!dep || !grads) return ctx->status;
    memset(dep, 0, nt);
    memset(grads, 0, (size_t)nt * sizeof *grads);
    for (int i = 0; i < n; i++) {
        if (!xs[i] || xs[i]->id >= nt) {
            ml_ctx_fail(ctx, ML_ERR_ARG, "grad: input %d is NULL or from another context", i);
            return ctx->status;
        }
        dep[xs[i]->id] = 1;
    }

    /* Consume mode: readers per tensor, saturating at 2 (only "one" matters);
     * KEEP marks y and the xs, whose values and gradients the caller wants. */
    enum { KEEP = 3 };
    unsigned char *readers = NULL;
    if (ctx->consume && !create_graph) {
        if (!(readers = ml_ctx_alloc(ctx, nt ? nt : 1))) return ctx->status;
        memset(readers, 0, nt);
        for (int j = 0; j < k; j++)
            if (ys[j]->id < nt) readers[ys[j]->id] = KEEP;
        for (int i = 0; i < n; i++) readers[xs[i]->id] = KEEP;
    }

    /* Pass 1: which tensors depend on the inputs. */
    for (ml_node *nd = ctx->tape_head; nd; nd = nd->next) {
        int d = 0;
        for (int i = 0; i < nd->n_in; i++) d |= dep[nd->in[i]->id];
        if (readers)
            for (int i = 0; i < nd->n_in; i++)
                if (readers[nd->in[i]->id] < 2) readers[nd->in[i]->id]++;
        if (d) dep[nd->out->id] = 1;
        if (nd == last) break;
    }
    for (int j = 0; j < k; j++)
        if (ys[j]->id < nt) grads[ys[j]->id] = dys[j];

    /* Pass 2: walk back. Recording follows create_graph while rules run. */
    ml__recycler *rec = NULL;
    if (readers) {
        if (!(rec = ml_ctx_alloc(ctx, sizeof *rec))) return ctx->status;
        rec->n_free = rec->n_walk = 0;
        ctx->recycle = rec;
    }
    int was_recording = ml_ctx_set_recording(ctx, create_graph);
    for (ml_node *nd = last; nd && ctx->status == ML_OK; nd = nd->prev) {
        ml_tensor *g = grads[nd->out->id];
        if (!g || !dep[nd->out->id]) continue;
        int need[ML_NODE_MAX_IN] = {0};
        for (int i = 0; i < nd->n_in; i++) need[i] = dep[nd->in[i]->id];
        ml_tensor *din[ML_NODE_MAX_IN];
        const ml_tensor *a = nd->n_in ? nd->in[0] : NULL;
        ctx->dead_input = readers && a && readers[a->id] == 1 && a->node && a->node->op == ML_OP_CONV2D ? a : NULL;
        ml__backward_node(ctx, nd, g, need, din);
        ctx->dead_input = NULL;
        for (int i = 0; i < nd->n_in; i++) {
            if (!need[i] || !din[i]) continue;
            uint32_t id = nd->in[i]->id;
            if (!grads[id]) {
                grads[id] = din[i];
                continue;
            }
            ml_tensor *old = grads[id];
            grads[id] = ml_add(ctx, old, din[i]);
            if (rec) {
                release_if_dead(rec, grads, nt, old);
                release_if_dead(rec, grads, nt, din[i]);
            }
        }
        if (rec && readers[nd->out->id] != KEEP) { /* not y, not an xs: its gradient is dead */
            grads[nd->out->id] = NULL;
            release_if_dead(rec, grads, nt, g);
        }
        /* Intermediate gradients of tensors nobody asked for are dead now;
         * the arena reclaims them at reset. */
    }
    for (int i = 0; i < n && ctx->status == ML_OK; i++) {
        ml_tensor *gx = grads[xs[i]->id];
        if (!gx) {
            gx = ml_tensor_zeros(ctx, xs[i]->ndim, xs[i]->shape);
        } else if (!create_graph && gx->data == xs[i]->data) {
            gx = ml_tensor_copy(ctx, gx); /* never alias the input's own memory */
        }
        out[i] = gx;
    }
    ml_ctx_set_recording(ctx, was_recording);
    ctx->recycle = NULL;
    return ctx->status;
}

ml_status ml_grad_seed(ml_ctx *ctx, ml_tensor *y, ml_tensor *dy, ml_tensor **xs, int n, int create_graph,
                       ml_tensor **out) {
    return ml_grad_seeds(ctx, &y, &dy, 1, xs, n, create_graph, out);
}

ml_status ml_grad(ml_ctx *ctx, ml_tensor *y, ml_tensor **xs, int n, int create_graph, ml_tensor **out) {
    if (!y) {
        for (int i = 0; i < n; i++) out[i] = NULL;
        if (ctx->status == ML_OK) ml_ctx_fail(ctx, ML_ERR_ARG, "grad: NULL output");
        return ctx->status;
    }
    if (y->numel != 1) {
        char b[64];
        ml_ctx_fail(ctx, ML_ERR_SHAPE, "grad: output %s is not a scalar (use ml_grad_seed)",
                    ml_shape_str(y, b, sizeof b));
        return ctx->status;
    }
    int was = ml_ctx_set_recording(ctx, 0); /* the seed is a constant */
    ml_tensor *one = ml_tensor_full(ctx, y->ndim, y->shape, 1.0f);
    ml_ctx_set_recording(ctx, was);
    return ml_grad_seed(ctx, y, one, xs, n, create_graph, out);
}

/* For tests: marks seen[op] for every op on the tape; returns the node count. */
int ml__tape_ops(ml_ctx *ctx, int *seen, int n);
int ml__tape_ops(ml_ctx *ctx, int *seen, int n) {
    int count = 0;
    for (ml_node *nd = ctx->tape_head; nd; nd = nd->next, count++)
        if ((int)nd->op < n) seen[nd->op] = 1;
    return count;
}
