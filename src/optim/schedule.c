/* schedule.c: learning rate as a pure function of the step number.
 *
 * Closed forms of torch's StepLR and CosineAnnealingLR (what torch computes
 * when a scheduler is stepped to an explicit epoch), plus an optional linear
 * warm-up in front. Being pure, a schedule needs no state in a checkpoint:
 * the optimizer's step counter is enough to resume. */
#include <math.h>
#include <string.h>

#include "metalearn/optim.h"

static const char *const sched_names[ML_SCHED_COUNT] = {
    [ML_SCHED_CONSTANT] = "constant",
    [ML_SCHED_STEP] = "step",
    [ML_SCHED_COSINE] = "cosine",
};

const char *ml_schedule_kind_name(ml_schedule_kind kind) {
    if ((int)kind < 0 || kind >= ML_SCHED_COUNT) return "?";
    return sched_names[kind];
}

int ml_schedule_kind_parse(const char *name, ml_schedule_kind *out) {
    if (!name) return -1;
    for (int k = 0; k < ML_SCHED_COUNT; k++) {
        if (strcmp(name, sched_names[k]) == 0) {
            if (out) *out = (ml_schedule_kind)k;
            return 0;
        }
    }
    return -1;
}

double ml_schedule_lr(const ml_schedule *s, int64_t step) {
    if (step < 0) step = 0;
    const double base = s->base_lr;
    /* torch LinearLR(start_factor=1/W, end_factor=1, total_iters=W-1):
     * factor (1 + step) / W, so the first step already moves (factor 1/W,
     * never 0) and step W-1 reaches base_lr. */
    if (s->warmup_steps > 0) {
        if (step < s->warmup_steps) return base * (double)(step + 1) / (double)s->warmup_steps;
        step -= s->warmup_steps;
    }
    switch (s->kind) {
    case ML_SCHED_STEP: {
        /* StepLR: base_lr * gamma ** (last_epoch // step_size) */
        int64_t size = s->step_size > 0 ? s->step_size : 1;
        return base * pow(s->gamma, (double)(step / size));
    }
    case ML_SCHED_COSINE: {
        /* CosineAnnealingLR closed form (SGDR eq. 5 without restarts):
         * eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2.
         * Past T_max the cosine climbs again, exactly as in torch; a caller
         * that wants to stay at min_lr sets total_steps to the run length. */
        int64_t T = s->total_steps > 0 ? s->total_steps : 1;
        const double pi = 3.14159265358979323846;
        double c = cos(pi * (double)step / (double)T);
        return s->min_lr + (base - s->min_lr) * (1.0 + c) / 2.0;
    }
    case ML_SCHED_CONSTANT:
    default:
        return base;
    }
}
