/* optim.c: SGD, Adagrad, RMSprop, Adam and AdamW over flat float32 buffers.
 *
 * Each update is written to reproduce torch.optim 1.13 (the single-tensor
 * path that torch uses by default on CPU) operation by operation: scalars
 * are computed in double the way Python computes them, then rounded to float
 * exactly where ATen rounds them (a Scalar argument becomes scalar_t), and
 * the element-wise expressions keep ATen's association order and fusing
 * (see "update rules" below), so trajectories match PyTorch's bit for bit
 * in the reference test. That needs -ffp-contract=off, which -std=c11 (our
 * CMake setting) implies; -std=gnu11 lets GCC fuse a few more multiply-adds
 * than torch does and costs the last bit here and there.
 *
 * Not here: amsgrad, maximize, sparse gradients, per-group hyperparameters
 * (a caller wanting groups runs one ml_optim per slice of the buffer). */
#include "metalearn/optim.h"

#include <math.h>
#include <string.h>

#include "core/dispatch.h"

/* ---- names ---------------------------------------------------------------- */

static const char *const kind_names[ML_OPTIM_COUNT] = {
    [ML_OPTIM_SGD] = "sgd",         [ML_OPTIM_ADAGRAD] = "adagrad",
    [ML_OPTIM_RMSPROP] = "rmsprop", [ML_OPTIM_ADAM] = "adam",
    [ML_OPTIM_ADAMW] = "adamw",
};

const char *ml_optim_kind_name(ml_optim_kind kind) {
    if ((int)kind < 0 || kind >= ML_OPTIM_COUNT) return "?";
    return kind_names[kind];
}

int ml_optim_kind_parse(const char *name, ml_optim_kind *out) {
    if (!name) return -1;
    for (int k = 0; k < ML_OPTIM_COUNT; k++) {
        if (strcmp(name, kind_names[k]) == 0) {
            if (out) *out = (ml_optim_kind)k;
            return 0;
        }
    }
    return -1;
}

/* ---- config ---------------------------------------------------------------- */

ml_optim_config ml_optim_config_default(ml_optim_kind kind) {
    ml_optim_config c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    switch (kind) {
    case ML_OPTIM_SGD:
        c.lr = 0.01; /* torch makes lr a required argument; this is a common pick */
        break;
    case ML_OPTIM_ADAGRAD:
        c.lr = 0.01;
        c.eps = 1e-10;
        break;
    case ML_OPTIM_RMSPROP:
        c.lr = 0.01;
        c.alpha = 0.99;
        c.eps = 1e-8;
        break;
    case ML_OPTIM_ADAM:
    case ML_OPTIM_ADAMW:
        c.lr = 1e-3;
        c.beta1 = 0.9;
        c.beta2 = 0.999;
        c.eps = 1e-8;
        c.weight_decay = kind == ML_OPTIM_ADAMW ? 1e-2 : 0.0;
        break;
    default:
        break;
    }
    return c;
}

/* Written so that NaN (which fails every comparison) is rejected too. */
static int nonneg(double x) { return x >= 0.0 && isfinite(x); }

static ml_status validate(const ml_optim_config *c) {
    if ((int)c->kind < 0 || c->kind >= ML_OPTIM_COUNT) return ML_ERR_ARG;
    if (!nonneg(c->lr) || !nonneg(c->weight_decay)) return ML_ERR_ARG;
    switch (c->kind) {
    case ML_OPTIM_SGD:
        if (!nonneg(c->momentum) || !isfinite(c->dampening)) return ML_ERR_ARG;
        /* torch: "Nesterov momentum requires a momentum and zero dampening" */
        if (c->nesterov && (c->momentum <= 0.0 || c->dampening != 0.0)) return ML_ERR_ARG;
        break;
    case ML_OPTIM_ADAGRAD:
        if (!nonneg(c->eps) || !nonneg(c->lr_decay) || !nonneg(c->initial_accumulator_value))
            return ML_ERR_ARG;
        break;
    case ML_OPTIM_RMSPROP:
        if (!nonneg(c->eps) || !nonneg(c->momentum) || !nonneg(c->alpha)) return ML_ERR_ARG;
        break;
    case ML_OPTIM_ADAM:
    case ML_OPTIM_ADAMW:
        if (!nonneg(c->eps)) return ML_ERR_ARG;
        if (!(c->beta1 >= 0.0 && c->beta1 < 1.0)) return ML_ERR_ARG;
        if (!(c->beta2 >= 0.0 && c->beta2 < 1.0)) return ML_ERR_ARG;
        break;
    default:
        return ML_ERR_ARG;
    }
    return ML_OK;
}

/* ---- state layout ----------------------------------------------------------
 * One table decides which buffers exist and what they are called, so init,
 * reset and the checkpoint accessors cannot disagree. */

typedef struct {
    int count;
    int slot[3];          /* 0, 1, 2 = state0, state1, state2 */
    const char *name[3];
} state_layout;

static state_layout layout_of(const ml_optim_config *c) {
    state_layout L;
    memset(&L, 0, sizeof L);
#define ML__ADD(s, nm) (L.slot[L.count] = (s), L.name[L.count] = (nm), L.count++)
    switch (c->kind) {
    case ML_OPTIM_SGD:
        if (c->momentum != 0.0) ML__ADD(0, "momentum_buffer");
        break;
    case ML_OPTIM_ADAGRAD:
        ML__ADD(0, "sum");
        break;
    case ML_OPTIM_RMSPROP:
        ML__ADD(0, "square_avg");
        if (c->momentum > 0.0) ML__ADD(1, "momentum_buffer");
        if (c->centered) ML__ADD(2, "grad_avg");
        break;
    case ML_OPTIM_ADAM:
    case ML_OPTIM_ADAMW:
        ML__ADD(0, "exp_avg");
        ML__ADD(1, "exp_avg_sq");
        break;
    default:
        break;
    }
#undef ML__ADD
    return L;
}

static float **slot_ptr(ml_optim *o, int slot) {
    return slot == 0 ? &o->state0 : slot == 1 ? &o->state1 : &o->state2;
}

ml_status ml_optim_init(ml_optim *o, const ml_optim_config *cfg, int64_t n) {
    if (!o) return ML_ERR_ARG;
    memset(o, 0, sizeof *o);
    if (!cfg || n < 0) return ML_ERR_ARG;
    ml_status st = validate(cfg);
    if (st != ML_OK) return st;
    o->cfg = *cfg;
    o->n = n;
    state_layout L = layout_of(cfg);
    for (int i = 0; i < L.count; i++) {
        /* calloc(0) may legitimately return NULL; keep one element so a
         * present buffer is never NULL. */
        float *b = ml_calloc(n > 0 ? (size_t)n : 1, sizeof(float));
        if (!b) {
            ml_optim_free(o);
            return ML_ERR_NOMEM;
        }
        *slot_ptr(o, L.slot[i]) = b;
    }
    ml_optim_reset(o);
    return ML_OK;
}

void ml_optim_free(ml_optim *o) {
    if (!o) return;
    ml_free(o->state0);
    ml_free(o->state1);
    ml_free(o->state2);
    o->state0 = o->state1 = o->state2 = NULL;
}

void ml_optim_reset(ml_optim *o) {
    if (!o) return;
    size_t bytes = (size_t)o->n * sizeof(float);
    if (o->state0) memset(o->state0, 0, bytes);
    if (o->state1) memset(o->state1, 0, bytes);
    if (o->state2) memset(o->state2, 0, bytes);
    /* torch.full_like(p, initial_accumulator_value) */
    if (o->cfg.kind == ML_OPTIM_ADAGRAD && o->state0) {
        const float init = (float)o->cfg.initial_accumulator_value;
        for (int64_t i = 0; i < o->n; i++) o->state0[i] = init;
    }
    o->step = 0;
}

int ml_optim_state_count(const ml_optim *o) {
    if (!o) return 0;
    return layout_of(&o->cfg).count;
}

float *ml_optim_state(ml_optim *o, int i, const char **name) {
    if (name) *name = NULL;
    if (!o) return NULL;
    state_layout L = layout_of(&o->cfg);
    if (i < 0 || i >= L.count) return NULL;
    if (name) *name = L.name[i];
    return *slot_ptr(o, L.slot[i]);
}

/* ---- update rules ------------------------------------------------------------
 * Notation: p params, g grads, d the gradient after L2 weight decay.
 *
 * Rounding follows ATen's CPU kernels as built for AVX2/AVX-512 (what torch
 * runs on any recent x86): those are compiled with FMA contraction, so
 * `x.add_(y, alpha=a)` is one rounding, fmaf(a, y, x), and
 * `x.addcmul_(y, z, value=c)` is fmaf(c*y, z, x); addcdiv, mul and div by a
 * scalar are plain. Measured on torch 1.13: the unfused forms differ in the
 * last bit for ~20% of random inputs, the forms below for none. fmaf is
 * exactly specified by C, so results do not depend on the compiler or on
 * -ffp-contract; with -march=native it is one instruction.
 *
 * torch skips `d = g + wd*p` when wd == 0; we always do it, which gives the
 * same d for every finite p (fmaf(0, p, g) == g) and keeps loops branch-free.
 * Each loop body quotes the torch lines it reproduces. */

/* SGD: d = g + wd*p; buf = d (first step) or momentum*buf + (1-dampening)*d;
 * d = d + momentum*buf (nesterov) or buf; p -= lr*d. */
ML_KERNEL static void sgd_step(ml_optim *o, float *restrict p, const float *restrict g, double lr, int64_t lo,
                                int64_t hi) {
    const float wd = (float)o->cfg.weight_decay;
    const float neg_lr = (float)-lr; /* alpha=-lr becomes a float Scalar */
    if (o->cfg.momentum == 0.0) {
        for (int64_t i = lo; i < hi; i++) {
            float d = fmaf(wd, p[i], g[i]); /* d_p = d_p.add(param, alpha=weight_decay) */
            p[i] = fmaf(neg_lr, d, p[i]);   /* param.add_(d_p, alpha=-lr) */
        }
        return;
    }
    float *restrict buf = o->state0;
    const float mom = (float)o->cfg.momentum;
    const float one_minus_damp = (float)(1.0 - o->cfg.dampening);
    /* torch creates the buffer as a clone of d_p on the first step, so
     * dampening does not apply to it. */
    const int first = o->step == 0;
    const int nesterov = o->cfg.nesterov;
    for (int64_t i = lo; i < hi; i++) {
        float d = fmaf(wd, p[i], g[i]);
        /* buf.mul_(momentum).add_(d_p, alpha=1 - dampening) */
        float b = first ? d : fmaf(one_minus_damp, d, buf[i] * mom);
        buf[i] = b;
        d = nesterov ? fmaf(mom, b, d) : b; /* d_p = d_p.add(buf, alpha=momentum) */
        p[i] = fmaf(neg_lr, d, p[i]);
    }
}

/* Adagrad (Duchi et al. 2011): clr = lr / (1 + (t-1)*lr_decay); sum += d*d;
 * p -= clr * d / (sqrt(sum) + eps). */
ML_KERNEL static void adagrad_step(ml_optim *o, float *restrict p, const float *restrict g, double lr, int64_t lo,
                                int64_t hi) {
    const int64_t t = o->step + 1;
    const float wd = (float)o->cfg.weight_decay;
    const float eps = (float)o->cfg.eps;
    const float neg_clr = (float)(-(lr / (1.0 + (double)(t - 1) * o->cfg.lr_decay)));
    float *restrict sum = o->state0;
    for (int64_t i = lo; i < hi; i++) {
        float d = fmaf(wd, p[i], g[i]);
        float s = fmaf(d, d, sum[i]);          /* state_sum.addcmul_(grad, grad, value=1) */
        sum[i] = s;
        float std = sqrtf(s) + eps;            /* state_sum.sqrt().add_(eps) */
        p[i] = p[i] + neg_clr * d / std;       /* param.addcdiv_(grad, std, value=-clr) */
    }
}

/* RMSprop (Hinton, lecture 6e; centered: Graves 2013, eq. 38-40):
 * v = alpha*v + (1-alpha)*d*d; centered: ga = alpha*ga + (1-alpha)*d,
 * avg = sqrt(v - ga*ga) + eps, else sqrt(v) + eps; momentum:
 * buf = momentum*buf + d/avg, p -= lr*buf; else p -= lr*d/avg. */
ML_KERNEL static void rmsprop_step(ml_optim *o, float *restrict p, const float *restrict g, double lr, int64_t lo,
                                int64_t hi) {
    const float wd = (float)o->cfg.weight_decay;
    const float eps = (float)o->cfg.eps;
    const float alpha = (float)o->cfg.alpha;
    const float one_minus_alpha = (float)(1.0 - o->cfg.alpha);
    const float mom = (float)o->cfg.momentum;
    const float neg_lr = (float)-lr;
    float *restrict sq = o->state0;
    float *restrict buf = o->state1; /* NULL unless momentum > 0 */
    float *restrict ga = o->state2;  /* NULL unless centered */
    const int centered = o->cfg.centered;
    const int use_mom = o->cfg.momentum > 0.0;
    for (int64_t i = lo; i < hi; i++) {
        float d = fmaf(wd, p[i], g[i]);
        /* square_avg.mul_(alpha).addcmul_(grad, grad, value=1-alpha) */
        float v = fmaf(one_minus_alpha * d, d, sq[i] * alpha);
        sq[i] = v;
        float avg;
        if (centered) {
            float a = fmaf(one_minus_alpha, d, ga[i] * alpha); /* grad_avg.mul_(alpha).add_(grad, alpha=1-alpha) */
            ga[i] = a;
            avg = sqrtf(fmaf(-a, a, v)); /* square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_() */
        } else {
            avg = sqrtf(v);
        }
        avg = avg + eps; /* avg.add_(eps) */
        if (use_mom) {
            float b = buf[i] * mom + d / avg; /* buf.mul_(momentum).addcdiv_(grad, avg) */
            buf[i] = b;
            p[i] = fmaf(neg_lr, b, p[i]);     /* param.add_(buf, alpha=-lr) */
        } else {
            p[i] = p[i] + neg_lr * d / avg;   /* param.addcdiv_(grad, avg, value=-lr) */
        }
    }
}

/* Adam (Kingma & Ba 2015, Algorithm 1, in torch's arrangement):
 * m = b1*m + (1-b1)*d; v = b2*v + (1-b2)*d*d;
 * p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).
 * AdamW (Loshchilov & Hutter 2019, Algorithm 2): no L2 in d; instead
 * p *= 1 - lr*wd before the moments are updated. */
ML_KERNEL static void adam_step(ml_optim *o, float *restrict p, const float *restrict g, double lr, int decoupled,
                             int64_t lo, int64_t hi) {
    const double t = (double)(o->step + 1);
    const double b1 = o->cfg.beta1, b2 = o->cfg.beta2;
    const float wd = decoupled ? 0.0f : (float)o->cfg.weight_decay;
    /* param.mul_(1 - lr * weight_decay); exactly 1 for plain Adam */
    const float decay = decoupled ? (float)(1.0 - lr * o->cfg.weight_decay) : 1.0f;
    const float beta1 = (float)b1, beta2 = (float)b2;
    const float one_minus_b1 = (float)(1.0 - b1), one_minus_b2 = (float)(1.0 - b2);
    /* Python floats: bias corrections and step size in double. */
    const double bias_correction1 = 1.0 - pow(b1, t);
    const double bias_correction2 = 1.0 - pow(b2, t);
    const float neg_step_size = (float)(-(lr / bias_correction1));
    const float bc2_sqrt = (float)sqrt(bias_correction2);
    const float eps = (float)o->cfg.eps;
    float *restrict m = o->state0;
    float *restrict v = o->state1;
    for (int64_t i = lo; i < hi; i++) {
        float pi = p[i] * decay;
        float d = fmaf(wd, pi, g[i]);                       /* grad.add(param, alpha=weight_decay) */
        float mi = fmaf(one_minus_b1, d, m[i] * beta1);      /* exp_avg.mul_(b1).add_(grad, alpha=1-b1) */
        float vi = fmaf(one_minus_b2 * d, d, v[i] * beta2);  /* exp_avg_sq.mul_(b2).addcmul_(grad, grad, value=1-b2) */
        m[i] = mi;
        v[i] = vi;
        float denom = sqrtf(vi) / bc2_sqrt + eps;  /* (exp_avg_sq.sqrt() / bc2_sqrt).add_(eps) */
        p[i] = pi + neg_step_size * mi / denom;    /* param.addcdiv_(exp_avg, denom, value=-step_size) */
    }
}

void ml_optim_step_range(ml_optim *o, float *params, const float *grads, double lr, int64_t lo, int64_t hi) {
    if (lo < 0) lo = 0;
    if (hi > o->n) hi = o->n;
    switch (o->cfg.kind) {
    case ML_OPTIM_SGD: sgd_step(o, params, grads, lr, lo, hi); break;
    case ML_OPTIM_ADAGRAD: adagrad_step(o, params, grads, lr, lo, hi); break;
    case ML_OPTIM_RMSPROP: rmsprop_step(o, params, grads, lr, lo, hi); break;
    case ML_OPTIM_ADAM: adam_step(o, params, grads, lr, 0, lo, hi); break;
    case ML_OPTIM_ADAMW: adam_step(o, params, grads, lr, 1, lo, hi); break;
    default: return; /* init refuses unknown kinds */
    }
}

void ml_optim_advance(ml_optim *o) { o->step++; }

void ml_optim_step(ml_optim *o, float *params, const float *grads, double lr) {
    ml_optim_step_range(o, params, grads, lr, 0, o->n);
    ml_optim_advance(o);
}

/* ---- gradient clipping -------------------------------------------------------- */

float ml_clip_grad_norm_multi(float *const *bufs, const int64_t *ns, int count, float max_norm) {
    double sumsq = 0.0;
    for (int b = 0; b < count; b++) {
        const float *x = bufs[b];
        for (int64_t i = 0; i < ns[b]; i++) sumsq += (double)x[i] * (double)x[i];
    }
    const double norm = sqrt(sumsq);
    /* torch: clip_coef = max_norm / (total_norm + 1e-6), clamped to 1. The
     * comparison is on the coefficient, so a norm a hair under max_norm is
     * still scaled (by a factor within 1e-6 of 1), as in torch. torch would
     * scale by 0 or NaN on a non-finite norm, destroying the evidence; we
     * leave the gradients as they are and let the caller skip the step. */
    const float coef = (float)((double)max_norm / (norm + 1e-6));
    if (isfinite(norm) && coef < 1.0f) {
        for (int b = 0; b < count; b++) {
            float *x = bufs[b];
            for (int64_t i = 0; i < ns[b]; i++) x[i] *= coef;
        }
    }
    return (float)norm;
}

float ml_clip_grad_norm(float *grads, int64_t n, float max_norm) {
    return ml_clip_grad_norm_multi(&grads, &n, 1, max_norm);
}
