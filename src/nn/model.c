/* model.c: model specs, the flat parameter buffer with named views,
 * seeded initialisation, and the forward pass of the MLP and the 4-block CNN.
 * Not here: training loops (cli/, meta/) or optimizers (optim/). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metalearn/nn.h"
#include "tensor/internal.h"

/* ---- layers ------------------------------------------------------------------------- */

ml_tensor *ml_linear(ml_ctx *ctx, ml_tensor *x, ml_tensor *w, ml_tensor *b) {
    ml_tensor *y = ml_matmul(ctx, x, w, 0, 1);
    return b ? ml_bias_add(ctx, y, b) : y;
}

ml_tensor *ml_conv_block(ml_ctx *ctx, ml_tensor *x, ml_tensor *w, ml_tensor *b, ml_tensor *gamma,
                         ml_tensor *beta, float *running_mean, float *running_var, int training,
                         float bn_momentum, float bn_eps) {
    if (training) { /* the conv output in nChw16c where the route applies (conv_bn_blk16.c) */
        int taken;
        ml_tensor *p = ml__conv_bn_relu_pool_blk16(ctx, x, w, gamma, beta, running_mean, running_var, bn_momentum,
                                                   bn_eps, &taken);
        if (!taken) /* an evaluation's first block: the conv inside the batch norm's steps (ops_nn.c) */
            p = ml__conv_bn_relu_pool_direct(ctx, x, w, gamma, beta, running_mean, running_var, bn_momentum, bn_eps,
                                             &taken);
        if (taken) {
            if (b && running_mean && running_var && p) /* as below: the bias only moves the running mean */
                for (int64_t i = 0; i < b->numel; i++) running_mean[i] += bn_momentum * b->data[i];
            return p;
        }
    }
    ml_tensor *h = ml_conv2d(ctx, x, w, 1, 1);
    if (training && b) {
        /* A bias before batch-statistics norm cancels exactly: (h + b) - mean(h + b)
         * = h - mean(h), so the output and every derivative are those without it
         * (its gradient is exactly zero; PyTorch's is rounding noise). Only the
         * running mean sees it, so it is added there, as if it had been applied. */
        h = ml_batchnorm_relu_maxpool(ctx, h, gamma, beta, running_mean, running_var, training, bn_momentum, bn_eps);
        if (running_mean && running_var && h) /* the running statistics were updated */
            for (int64_t i = 0; i < b->numel; i++) running_mean[i] += bn_momentum * b->data[i];
        return h;
    }
    if (b) h = ml_bias_add(ctx, h, b);
    return ml_batchnorm_relu_maxpool(ctx, h, gamma, beta, running_mean, running_var, training, bn_momentum, bn_eps);
}

/* ---- specs ---------------------------------------------------------------------------- */

static const char *const init_names[ML_INIT_KIND_COUNT] = {"torch", "kaiming", "xavier"};

const char *ml_init_kind_name(ml_init_kind k) { return k < ML_INIT_KIND_COUNT ? init_names[k] : "?"; }

int ml_init_kind_parse(const char *name, ml_init_kind *out) {
    for (int i = 0; i < ML_INIT_KIND_COUNT; i++)
        if (!strcmp(name, init_names[i])) {
            *out = (ml_init_kind)i;
            return 0;
        }
    return -1;
}

ml_status ml_model_spec_parse(const char *text, ml_model_spec *spec, char *err, size_t errlen) {
    memset(spec, 0, sizeof *spec);
    spec->bn_momentum = 0.1f;
    spec->bn_eps = 1e-5f;
    const char *colon = strchr(text, ':');
    size_t head = colon ? (size_t)(colon - text) : strlen(text);
    const char *args = colon ? colon + 1 : NULL;
    if (head == 3 && !strncmp(text, "mlp", 3)) {
        spec->kind = ML_MODEL_MLP;
        if (!args) {
            spec->n_hidden = 2;
            spec->hidden[0] = 256;
            spec->hidden[1] = 128;
            return ML_OK;
        }
        const char *p = args;
        while (*p) {
            char *end;
            long v = strtol(p, &end, 10);
            if (end == p || v < 1 || v > 1 << 20 || (*end && *end != ',') || spec->n_hidden == ML_MAX_HIDDEN) {
                snprintf(err, errlen, "model '%s': hidden widths must be up to %d positive integers, e.g. mlp:256,128",
                         text, ML_MAX_HIDDEN);
                return ML_ERR_ARG;
            }
            spec->hidden[spec->n_hidden++] = (int)v;
            p = *end ? end + 1 : end;
        }
        return ML_OK;
    }
    if (head == 4 && !strncmp(text, "cnn4", 4)) {
        spec->kind = ML_MODEL_CNN4;
        spec->blocks = 4;
        spec->filters = 64;
        if (args) {
            char *end;
            long v = strtol(args, &end, 10);
            if (end == args || *end || v < 1 || v > 4096) {
                snprintf(err, errlen, "model '%s': expected cnn4 or cnn4:FILTERS, e.g. cnn4:64", text);
                return ML_ERR_ARG;
            }
            spec->filters = (int)v;
        }
        return ML_OK;
    }
    snprintf(err, errlen, "model '%s': unknown (expected mlp[:W1,W2,...] or cnn4[:FILTERS])", text);
    return ML_ERR_ARG;
}

/* ---- building the parameter list --------------------------------------------------------- */

static void add_info(ml_param_info *list, int *count, int64_t *total, const char *name, int ndim,
                     const int64_t *shape) {
    ml_param_info *p = &list[(*count)++];
    snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = ndim;
    p->numel = 1;
    for (int i = 0; i < ndim; i++) {
        p->shape[i] = shape[i];
        p->numel *= shape[i];
    }
    p->offset = *total;
    *total += p->numel;
}

#define PARAM(name, ...) add_info(m->params, &m->n_params, &m->n_floats, name, ML_NDIM(__VA_ARGS__), ML_SHAPE(__VA_ARGS__))
#define BUFFER(name, ...) \
    add_info(m->buffers, &m->n_buffers, &m->n_buffer_floats, name, ML_NDIM(__VA_ARGS__), ML_SHAPE(__VA_ARGS__))

ml_status ml_model_init(ml_model *m, const ml_model_spec *spec, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    m->spec = *spec;
    char name[ML_PARAM_NAME_LEN];
    /* n_out 0: a CNN without head, an embedding (metric-based learners). */
    if (spec->in_c < 1 || spec->in_h < 1 || spec->in_w < 1 || spec->n_out < 0 ||
        (spec->n_out == 0 && spec->kind != ML_MODEL_CNN4)) {
        snprintf(err, errlen, "model: input %dx%dx%d with %d outputs is not a valid shape", spec->in_c,
                 spec->in_h, spec->in_w, spec->n_out);
        return ML_ERR_ARG;
    }
    if (spec->kind == ML_MODEL_MLP) {
        int64_t in = (int64_t)spec->in_c * spec->in_h * spec->in_w;
        for (int i = 0; i <= spec->n_hidden; i++) {
            int64_t out = i < spec->n_hidden ? spec->hidden[i] : spec->n_out;
            snprintf(name, sizeof name, "layers.%d.weight", i);
            PARAM(name, out, in);
            snprintf(name, sizeof name, "layers.%d.bias", i);
            PARAM(name, out);
            in = out;
        }
    } else {
        int c = spec->in_c, h = spec->in_h, w = spec->in_w, f = spec->filters;
        for (int b = 0; b < spec->blocks; b++) {
            if (h < 2 || w < 2) {
                snprintf(err, errlen, "model cnn%d: a %dx%d input is too small for %d pooling blocks",
                         spec->blocks, spec->in_h, spec->in_w, spec->blocks);
                return ML_ERR_ARG;
            }
            snprintf(name, sizeof name, "blocks.%d.conv.weight", b);
            PARAM(name, f, c, 3, 3);
            snprintf(name, sizeof name, "blocks.%d.conv.bias", b);
            PARAM(name, f);
            snprintf(name, sizeof name, "blocks.%d.bn.weight", b);
            PARAM(name, f);
            snprintf(name, sizeof name, "blocks.%d.bn.bias", b);
            PARAM(name, f);
            snprintf(name, sizeof name, "blocks.%d.bn.running_mean", b);
            BUFFER(name, f);
            snprintf(name, sizeof name, "blocks.%d.bn.running_var", b);
            BUFFER(name, f);
            c = f;
            h /= 2;
            w /= 2;
        }
        if (spec->n_out > 0) {
            PARAM("head.weight", spec->n_out, (int64_t)c * h * w);
            PARAM("head.bias", spec->n_out);
        }
    }
    m->data = ml_calloc((size_t)m->n_floats, sizeof(float));
    m->buffer_data = ml_calloc((size_t)(m->n_buffer_floats ? m->n_buffer_floats : 1), sizeof(float));
    if (!m->data || !m->buffer_data) {
        ml_model_free(m);
        snprintf(err, errlen, "model: out of memory for %lld parameters", (long long)m->n_floats);
        return ML_ERR_NOMEM;
    }
    ml_model_reset_buffers(m);
    return ML_OK;
}

void ml_model_free(ml_model *m) {
    ml_free(m->data);
    ml_free(m->buffer_data);
    m->data = m->buffer_data = NULL;
}

void ml_model_reset_buffers(ml_model *m) {
    for (int i = 0; i < m->n_buffers; i++) {
        const ml_param_info *p = &m->buffers[i];
        float v = strstr(p->name, "running_var") ? 1.0f : 0.0f;
        for (int64_t j = 0; j < p->numel; j++) m->buffer_data[p->offset + j] = v;
    }
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

void ml_model_init_params(ml_model *m, ml_init_kind kind, ml_rng *rng) {
    for (int i = 0; i < m->n_params; i++) {
        const ml_param_info *p = &m->params[i];
        float *v = m->data + p->offset;
        if (strstr(p->name, ".bn.")) { /* batch norm: scale 1, shift 0 */
            float val = ends_with(p->name, "weight") ? 1.0f : 0.0f;
            for (int64_t j = 0; j < p->numel; j++) v[j] = val;
            continue;
        }
        /* fan_in / fan_out of the weight this tensor belongs to. */
        const ml_param_info *w = ends_with(p->name, "bias") ? &m->params[i - 1] : p;
        int64_t receptive = w->ndim == 4 ? w->shape[2] * w->shape[3] : 1;
        double fan_in = (double)w->shape[1] * receptive, fan_out = (double)w->shape[0] * receptive;
        int is_bias = p != w;
        for (int64_t j = 0; j < p->numel; j++) {
            double x;
            switch (kind) {
            case ML_INIT_KAIMING: /* He normal, fan_in, ReLU gain; zero bias */
                x = is_bias ? 0.0 : ml_rng_normal(rng) * sqrt(2.0 / fan_in);
                break;
            case ML_INIT_XAVIER: /* Glorot uniform; zero bias */
                x = is_bias ? 0.0 : (2 * ml_rng_uniform(rng) - 1) * sqrt(6.0 / (fan_in + fan_out));
                break;
            default: /* PyTorch's Linear/Conv2d default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */
                x = (2 * ml_rng_uniform(rng) - 1) / sqrt(fan_in);
                break;
            }
            v[j] = (float)x;
        }
    }
    ml_model_reset_buffers(m);
}

void ml_model_wrap(ml_ctx *ctx, const ml_model *m, float *flat, ml_tensor **out) {
    for (int i = 0; i < m->n_params; i++)
        out[i] = ml_tensor_wrap(ctx, flat + m->params[i].offset, m->params[i].ndim, m->params[i].shape);
}

/* The body: everything but the last linear layer (the head). */
static ml_tensor *forward(ml_ctx *ctx, ml_model *m, ml_tensor **params, ml_tensor *x, int training, int update_stats,
                          int with_head);
static ml_tensor *cnn_blocks(ml_ctx *ctx, ml_model *m, ml_tensor **params, ml_tensor *h, int first, int last,
                             int training, int update_stats, int with_head);

ml_tensor *ml_model_forward(ml_ctx *ctx, ml_model *m, ml_tensor **params, ml_tensor *x, int training,
                            int update_stats) {
    return forward(ctx, m, params, x, training, update_stats, 1);
}

ml_tensor *ml_model_features(ml_ctx *ctx, ml_model *m, ml_tensor **params, ml_tensor *x, int training,
                             int update_stats) {
    return forward(ctx, m, params, x, training, update_stats, 0);
}

static ml_tensor *forward(ml_ctx *ctx, ml_model *m, ml_tensor **params, ml_tensor *x, int training, int update_stats,
                          int with_head) {
    if (!x) return NULL;
    const ml_model_spec *s = &m->spec;
    int64_t per_example = (int64_t)s->in_c * s->in_h * s->in_w;
    if (x->ndim < 2 || x->numel != x->shape[0] * per_example) {
        char b[64];
        return ml_ctx_fail(ctx, ML_ERR_SHAPE, "model: input %s does not hold examples of %dx%dx%d",
                           ml_shape_str(x, b, sizeof b), s->in_c, s->in_h, s->in_w);
    }
    int64_t n = x->shape[0];
    if (s->kind == ML_MODEL_MLP) {
        ml_tensor *h = ml_reshape(ctx, x, 2, ML_SHAPE(n, per_example));
        for (int i = 0; i <= s->n_hidden; i++) {
            if (i == s->n_hidden && !with_head) return h;
            h = ml_linear(ctx, h, params[2 * i], params[2 * i + 1]);
            if (i < s->n_hidden) h = ml_relu(ctx, h);
        }
        return h;
    }
    ml_tensor *h = ml_reshape(ctx, x, 4, ML_SHAPE(n, s->in_c, s->in_h, s->in_w));
    return cnn_blocks(ctx, m, params, h, 0, s->blocks, training, update_stats, with_head);
}

/* Blocks [first, last) of the CNN on h; after the last block the flatten and
 * (with_head, n_out > 0) the head. */
static ml_tensor *cnn_blocks(ml_ctx *ctx, ml_model *m, ml_tensor **params, ml_tensor *h, int first, int last,
                             int training, int update_stats, int with_head) {
    const ml_model_spec *s = &m->spec;
    for (int b = first; b < last; b++) {
        ml_tensor **p = params + 4 * b;
        float *rm = NULL, *rv = NULL;
        if (!training || update_stats) {
            rm = m->buffer_data + m->buffers[2 * b].offset;
            rv = m->buffer_data + m->buffers[2 * b + 1].offset;
        }
        h = ml_conv_block(ctx, h, p[0], p[1], p[2], p[3], rm, rv, training, s->bn_momentum, s->bn_eps);
    }
    if (last < s->blocks) return h;
    h = ml_flatten(ctx, h);
    if (s->n_out == 0 || !with_head) return h; /* embedding, or the body's features */
    return ml_linear(ctx, h, params[4 * s->blocks], params[4 * s->blocks + 1]);
}

ml_tensor *ml_model_forward_blocks(ml_ctx *ctx, ml_model *m, ml_tensor **params, ml_tensor *h, int first, int last,
                                   int training, int update_stats) {
    const ml_model_spec *s = &m->spec;
    if (!h || ml_ctx_status(ctx) != ML_OK) return NULL;
    if (s->kind == ML_MODEL_MLP || first < 0 || first >= last || last > s->blocks)
        return ml_ctx_fail(ctx, ML_ERR_ARG, "model: blocks [%d, %d) of a model with %d conv blocks", first, last,
                           s->kind == ML_MODEL_MLP ? 0 : s->blocks);
    if (first == 0) {
        if (h->numel != h->shape[0] * (int64_t)s->in_c * s->in_h * s->in_w) {
            char b[64];
            return ml_ctx_fail(ctx, ML_ERR_SHAPE, "model: input %s does not hold examples of %dx%dx%d",
                               ml_shape_str(h, b, sizeof b), s->in_c, s->in_h, s->in_w);
        }
        h = ml_reshape(ctx, h, 4, ML_SHAPE(h->shape[0], s->in_c, s->in_h, s->in_w));
    }
    return cnn_blocks(ctx, m, params, h, first, last, training, update_stats, 1);
}

void ml_model_print_params(const ml_model *m, FILE *out) {
    for (int k = 0; k < 2; k++) {
        int n = k ? m->n_buffers : m->n_params;
        const ml_param_info *list = k ? m->buffers : m->params;
        for (int i = 0; i < n; i++) {
            fprintf(out, "%-28s [", list[i].name);
            for (int d = 0; d < list[i].ndim; d++) fprintf(out, d ? ", %lld" : "%lld", (long long)list[i].shape[d]);
            fprintf(out, "]%s\n", k ? "  (buffer)" : "");
        }
    }
    fprintf(out, "total: %lld parameters, %lld buffer values\n", (long long)m->n_floats,
            (long long)m->n_buffer_floats);
}

int ml_model_find_param(const ml_model *m, const char *name) {
    for (int i = 0; i < m->n_params; i++)
        if (!strcmp(m->params[i].name, name)) return i;
    return -1;
}
