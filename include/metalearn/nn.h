/* metalearn/nn.h: layers as functions of explicit parameters, and models
 * built from a spec with all parameters in one flat buffer.
 *
 * A model never hides its weights: ml_model_forward takes the parameter
 * tensors as an argument, so the same model runs with its stored parameters
 * (wrapped views of the flat buffer) or with any other set, e.g. MAML's fast
 * weights computed by an inner loop. */
#ifndef METALEARN_NN_H
#define METALEARN_NN_H

#include <stdio.h>

#include "metalearn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* y = x W^T + b, W [out, in] (PyTorch's layout), b [out] or NULL. */
ml_tensor *ml_linear(ml_ctx *ctx, ml_tensor *x, ml_tensor *w, ml_tensor *b);
/* conv3x3 (pad 1) + bias -> batch norm -> ReLU -> 2x2 max-pool. */
ml_tensor *ml_conv_block(ml_ctx *ctx, ml_tensor *x, ml_tensor *w, ml_tensor *b, ml_tensor *gamma,
                         ml_tensor *beta, float *running_mean, float *running_var, int training,
                         float bn_momentum, float bn_eps);

typedef enum { ML_MODEL_MLP, ML_MODEL_CNN4, ML_MODEL_KIND_COUNT } ml_model_kind;
typedef enum { ML_INIT_TORCH, ML_INIT_KAIMING, ML_INIT_XAVIER, ML_INIT_KIND_COUNT } ml_init_kind;

#define ML_MAX_HIDDEN 8
#define ML_MAX_PARAMS 32
#define ML_PARAM_NAME_LEN 48

typedef struct ml_model_spec {
    ml_model_kind kind;
    int in_c, in_h, in_w;            /* input shape per example */
    int n_out;                       /* outputs (classes or targets); 0 = CNN without head (embedding) */
    int n_hidden, hidden[ML_MAX_HIDDEN]; /* MLP hidden widths */
    int filters;                     /* CNN: channels per block (64) */
    int blocks;                      /* CNN: number of conv blocks (4) */
    float bn_momentum, bn_eps;
} ml_model_spec;

/* Parses "mlp", "mlp:256,128", "cnn4", "cnn4:32" (filters). Input shape and
 * n_out are set by the caller (they come from the data). */
ml_status ml_model_spec_parse(const char *text, ml_model_spec *spec, char *err, size_t errlen);
const char *ml_init_kind_name(ml_init_kind k);
int ml_init_kind_parse(const char *name, ml_init_kind *out);

/* A named view into a flat buffer. */
typedef struct ml_param_info {
    char name[ML_PARAM_NAME_LEN];
    int ndim;
    int64_t shape[ML_MAX_DIMS];
    int64_t offset, numel;
} ml_param_info;

typedef struct ml_model {
    ml_model_spec spec;
    int n_params; /* trainable, in one flat buffer */
    ml_param_info params[ML_MAX_PARAMS];
    int64_t n_floats;
    float *data;
    int n_buffers; /* batch-norm running statistics, in a second flat buffer */
    ml_param_info buffers[ML_MAX_PARAMS];
    int64_t n_buffer_floats;
    float *buffer_data;
} ml_model;

ml_status ml_model_init(ml_model *m, const ml_model_spec *spec, char *err, size_t errlen);
void ml_model_free(ml_model *m);
/* Seeded initialisation: PyTorch's defaults, Kaiming (He) normal or Xavier uniform. */
void ml_model_init_params(ml_model *m, ml_init_kind kind, ml_rng *rng);
void ml_model_reset_buffers(ml_model *m);
/* Leaf tensors viewing `flat` (m->data or any buffer of m->n_floats floats). */
void ml_model_wrap(ml_ctx *ctx, const ml_model *m, float *flat, ml_tensor **out);
/* Forward pass of a batch x [N, C, H, W] (or [N, features] for an MLP) with the
 * given parameter tensors. training: batch norm uses batch statistics and,
 * when update_stats, updates the running statistics in m->buffer_data. */
ml_tensor *ml_model_forward(ml_ctx *ctx, ml_model *m, ml_tensor **params, ml_tensor *x, int training,
                            int update_stats);
/* The same pass without the head (the last linear layer): the features a
 * head model's classifier sees. A headless CNN (n_out 0) gives its embedding,
 * as ml_model_forward does; an MLP gives its last hidden layer (its input
 * when it has no hidden layer). */
ml_tensor *ml_model_features(ml_ctx *ctx, ml_model *m, ml_tensor **params, ml_tensor *x, int training,
                             int update_stats);
/* A CNN's conv blocks [first, last) on h, as ml_model_forward runs them: h is
 * the model's input when first is 0, block first-1's output otherwise; when
 * last is the block count the flatten and the head follow (the output of
 * ml_model_forward). For recomputing a block's activations instead of keeping
 * them (MAML's query pass). An MLP or a bad range fails the context. */
ml_tensor *ml_model_forward_blocks(ml_ctx *ctx, ml_model *m, ml_tensor **params, ml_tensor *h, int first, int last,
                                   int training, int update_stats);
/* Writes one line per tensor: name and shape. */
void ml_model_print_params(const ml_model *m, FILE *out);
int ml_model_find_param(const ml_model *m, const char *name);

#ifdef __cplusplus
}
#endif
#endif
