/* supervised.c: plain minibatch training of a classifier and its evaluation.
 *
 * One context is reused for every step: ml_ctx_reset drops the step's graph in
 * O(1), so after the first step the loop makes no heap calls. Gradients are
 * gathered into one flat buffer mirroring the parameters (llm.c style) so the
 * optimizer step and clipping are flat loops. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "metalearn/train.h"

static void gather_batch(const ml_dataset *d, const int32_t *order, int64_t start, int64_t count,
                         float *x, int32_t *y) {
    int64_t per = (int64_t)d->c * d->h * d->w;
    for (int64_t i = 0; i < count; i++) {
        int64_t k = order ? order[start + i] : start + i;
        memcpy(x + i * per, d->x + k * per, (size_t)per * sizeof(float));
        y[i] = d->y[k];
    }
}

static int argmax_row(const float *v, int64_t n) {
    int64_t best = 0;
    for (int64_t j = 1; j < n; j++)
        if (v[j] > v[best]) best = j;
    return (int)best;
}

ml_status ml_supervised_train(ml_model *m, const ml_dataset *d, const ml_supervised_config *cfg,
                              ml_epoch_fn on_epoch, void *user, char *err, size_t errlen) {
    if (cfg->batch_size < 2 || cfg->epochs < 1 || d->n < 2) {
        snprintf(err, errlen, "train: need batch size >= 2, epochs >= 1 and at least 2 examples");
        return ML_ERR_ARG;
    }
    int64_t per = (int64_t)d->c * d->h * d->w;
    int64_t bs = cfg->batch_size < d->n ? cfg->batch_size : d->n;
    int64_t steps_per_epoch = d->n / bs; /* drop the ragged last batch: batch norm needs > 1 */
    ml_status st = ML_OK;
    ml_ctx *ctx = ml_ctx_create((size_t)64 << 20);
    float *grad = ml_calloc((size_t)m->n_floats, sizeof(float));
    float *bx = ml_malloc((size_t)(bs * per) * sizeof(float));
    int32_t *by = ml_malloc((size_t)bs * sizeof(int32_t));
    int32_t *order = ml_malloc((size_t)d->n * sizeof(int32_t));
    ml_tensor **params = ml_malloc((size_t)m->n_params * sizeof(ml_tensor *));
    ml_tensor **grads = ml_malloc((size_t)m->n_params * sizeof(ml_tensor *));
    ml_optim opt = {0};
    if (ctx) ml_ctx_set_consume(ctx, 1); /* the step reads only the loss and logits after ml_grad */
    if (!ctx || !grad || !bx || !by || !order || !params || !grads ||
        (st = ml_optim_init(&opt, &cfg->optim, m->n_floats)) != ML_OK) {
        snprintf(err, errlen, "train: out of memory");
        st = ML_ERR_NOMEM;
        goto done;
    }
    ml_rng rng;
    ml_rng_seed(&rng, cfg->seed);
    for (int64_t i = 0; i < d->n; i++) order[i] = (int32_t)i;
    ml_schedule sched = {.kind = cfg->schedule,
                         .base_lr = cfg->optim.lr,
                         .step_size = steps_per_epoch * (cfg->epochs > 3 ? cfg->epochs / 3 : 1),
                         .gamma = 0.1,
                         .total_steps = steps_per_epoch * cfg->epochs,
                         .min_lr = 0};
    int64_t global_step = 0;
    for (int epoch = 1; epoch <= cfg->epochs; epoch++) {
        ml_rng_shuffle_i32(&rng, order, d->n);
        double t0 = ml_now(), loss_sum = 0;
        int64_t correct = 0;
        float lr = (float)cfg->optim.lr;
        for (int64_t s = 0; s < steps_per_epoch; s++, global_step++) {
            gather_batch(d, order, s * bs, bs, bx, by);
            ml_ctx_reset(ctx);
            ml_tensor *x = ml_tensor_wrap(ctx, bx, 4, ML_SHAPE(bs, d->c, d->h, d->w));
            ml_model_wrap(ctx, m, m->data, params);
            ml_tensor *logits = ml_model_forward(ctx, m, params, x, 1, 1);
            ml_tensor *loss = ml_cross_entropy(ctx, logits, by);
            if (ml_grad(ctx, loss, params, m->n_params, 0, grads) != ML_OK) {
                snprintf(err, errlen, "train: %s", ml_ctx_error(ctx));
                st = ml_ctx_status(ctx);
                goto done;
            }
            float lv = loss->data[0];
            if (!isfinite(lv)) {
                snprintf(err, errlen, "train: loss became %s at epoch %d, step %lld (try a lower --lr)",
                         isnan(lv) ? "NaN" : "infinite", epoch, (long long)s + 1);
                st = ML_ERR_NUMERIC;
                goto done;
            }
            loss_sum += lv;
            for (int64_t i = 0; i < bs; i++)
                correct += argmax_row(logits->data + i * logits->shape[1], logits->shape[1]) == by[i];
            for (int i = 0; i < m->n_params; i++)
                memcpy(grad + m->params[i].offset, grads[i]->data, (size_t)m->params[i].numel * sizeof(float));
            if (cfg->clip_norm > 0) ml_clip_grad_norm(grad, m->n_floats, cfg->clip_norm);
            lr = ml_schedule_lr(&sched, global_step);
            ml_optim_step(&opt, m->data, grad, lr);
        }
        if (on_epoch) {
            ml_epoch_report r = {epoch, cfg->epochs, loss_sum / (double)steps_per_epoch,
                                 (double)correct / (double)(steps_per_epoch * bs), ml_now() - t0, lr};
            on_epoch(&r, user);
        }
    }
done:
    ml_optim_free(&opt);
    ml_free(grads);
    ml_free(params);
    ml_free(order);
    ml_free(by);
    ml_free(bx);
    ml_free(grad);
    ml_ctx_destroy(ctx);
    return st;
}

ml_status ml_classifier_evaluate(ml_model *m, const ml_dataset *d, int batch_size, ml_confusion *c,
                                 char *err, size_t errlen) {
    int64_t per = (int64_t)d->c * d->h * d->w;
    int64_t bs = batch_size > 0 ? batch_size : 500;
    ml_status st = ML_OK;
    ml_ctx *ctx = ml_ctx_create((size_t)64 << 20);
    ml_tensor **params = ml_malloc((size_t)m->n_params * sizeof(ml_tensor *));
    if (!ctx || !params) {
        snprintf(err, errlen, "evaluate: out of memory");
        st = ML_ERR_NOMEM;
        goto done;
    }
    ml_ctx_set_recording(ctx, 0);
    for (int64_t start = 0; start < d->n; start += bs) {
        int64_t n = d->n - start < bs ? d->n - start : bs;
        ml_ctx_reset(ctx);
        ml_tensor *x = ml_tensor_wrap(ctx, d->x + start * per, 4, ML_SHAPE(n, d->c, d->h, d->w));
        ml_model_wrap(ctx, m, m->data, params);
        ml_tensor *logits = ml_model_forward(ctx, m, params, x, 0, 0);
        if (!logits) {
            snprintf(err, errlen, "evaluate: %s", ml_ctx_error(ctx));
            st = ml_ctx_status(ctx);
            goto done;
        }
        for (int64_t i = 0; i < n; i++)
            ml_confusion_add(c, d->y[start + i], argmax_row(logits->data + i * logits->shape[1], logits->shape[1]));
    }
done:
    ml_free(params);
    ml_ctx_destroy(ctx);
    return st;
}
