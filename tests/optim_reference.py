#!/usr/bin/python3
"""Regenerate the PyTorch reference numbers pasted into tests/test_optim.c.

Run with Debian's python3-torch (PyTorch 1.13):  /usr/bin/python3 tests/optim_reference.py
It prints C initialisers; paste them over the block between the
"BEGIN/END optim_reference.py" markers in tests/test_optim.c (the clipping
lines, printed as comments, are quoted by hand in test_clip_grad_norm).

Trajectories: a 3-element float32 parameter vector, 5 steps, gradient
g = p*p*p - 0.5*p + k (k fixed) so it changes with the parameters, and a
learning rate that changes every step, lr_t = base * (1 - 0.1 t), to check
that the rate passed to ml_optim_step is the one used. The C test computes g
with the same float32 operations in the same order.
"""
import math

import torch

P0 = [0.5, -1.25, 2.0]
K = [0.3, -0.2, 0.1]
STEPS = 5

# (label, kind, base lr, torch class, torch kwargs, state names in ml_optim_state order)
CASES = [
    ("sgd", "ML_OPTIM_SGD", 0.1, torch.optim.SGD, {}, []),
    ("sgd_mom_damp_wd", "ML_OPTIM_SGD", 0.05, torch.optim.SGD,
     dict(momentum=0.9, dampening=0.1, weight_decay=0.01), ["momentum_buffer"]),
    ("sgd_nesterov_wd", "ML_OPTIM_SGD", 0.05, torch.optim.SGD,
     dict(momentum=0.9, nesterov=True, weight_decay=0.01), ["momentum_buffer"]),
    ("adagrad", "ML_OPTIM_ADAGRAD", 0.1, torch.optim.Adagrad, {}, ["sum"]),
    ("adagrad_decay_wd_init", "ML_OPTIM_ADAGRAD", 0.1, torch.optim.Adagrad,
     dict(lr_decay=0.05, weight_decay=0.01, initial_accumulator_value=0.1, eps=1e-6), ["sum"]),
    ("rmsprop", "ML_OPTIM_RMSPROP", 0.01, torch.optim.RMSprop, {}, ["square_avg"]),
    ("rmsprop_mom", "ML_OPTIM_RMSPROP", 0.01, torch.optim.RMSprop,
     dict(momentum=0.8, alpha=0.9), ["square_avg", "momentum_buffer"]),
    ("rmsprop_centered_mom_wd", "ML_OPTIM_RMSPROP", 0.01, torch.optim.RMSprop,
     dict(momentum=0.9, alpha=0.9, eps=1e-6, weight_decay=0.01, centered=True),
     ["square_avg", "momentum_buffer", "grad_avg"]),
    ("rmsprop_centered", "ML_OPTIM_RMSPROP", 0.01, torch.optim.RMSprop,
     dict(centered=True), ["square_avg", "grad_avg"]),
    ("adam", "ML_OPTIM_ADAM", 0.01, torch.optim.Adam, {}, ["exp_avg", "exp_avg_sq"]),
    ("adam_betas_wd", "ML_OPTIM_ADAM", 0.01, torch.optim.Adam,
     dict(betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01), ["exp_avg", "exp_avg_sq"]),
    ("adamw", "ML_OPTIM_ADAMW", 0.01, torch.optim.AdamW, {}, ["exp_avg", "exp_avg_sq"]),
    ("adamw_wd", "ML_OPTIM_ADAMW", 0.05, torch.optim.AdamW,
     dict(betas=(0.85, 0.995), weight_decay=0.1), ["exp_avg", "exp_avg_sq"]),
]


def f(x):
    return repr(float(x))


def fl(xs):
    return "{" + ", ".join("%.9gf" % x for x in xs) + "}"


def grad_of(p, k):
    return p * p * p - 0.5 * p + k


def config_fields(group):
    """Every hyperparameter torch used (its defaults included), as C designated
    initialisers, so the C side needs no defaults of its own."""
    out = []
    for key in ["momentum", "dampening", "weight_decay", "eps", "alpha", "lr_decay",
                "initial_accumulator_value"]:
        if key in group:
            out.append(".%s = %s" % (key, f(group[key])))
    if "betas" in group:
        out.append(".beta1 = %s, .beta2 = %s" % (f(group["betas"][0]), f(group["betas"][1])))
    for key in ["nesterov", "centered"]:
        if key in group:
            out.append(".%s = %d" % (key, int(bool(group[key]))))
    for key in ["amsgrad", "maximize"]:  # not implemented in C: the references must not use them
        assert not group.get(key, False)
    return ", ".join(out)


def trajectories():
    print("static const ref_case ref_cases[] = {")
    for label, kind, base, cls, kw, names in CASES:
        p = torch.tensor(P0, dtype=torch.float32, requires_grad=True)
        k = torch.tensor(K, dtype=torch.float32)
        opt = cls([p], lr=base, **kw)
        traj = []
        for t in range(STEPS):
            opt.param_groups[0]["lr"] = base * (1.0 - 0.1 * t)
            with torch.no_grad():
                p.grad = grad_of(p.detach(), k)
            opt.step()
            traj.append(p.detach().tolist())
        st = opt.state[p]
        states = [st[n].tolist() for n in names]
        print("    {\"%s\", {.kind = %s, .lr = %s, %s}," % (label, kind, f(base),
                                                       config_fields(opt.param_groups[0])))
        print("     {%s}," % ", ".join(fl(x) for x in traj))
        print("     %d, {%s}, {%s}}," % (len(names), ", ".join('"%s"' % n for n in names) or "0",
                                       ", ".join(fl(s) for s in states) or "{0}"))
    print("};")


def lrs(sched_fn, n):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.1)
    sched = sched_fn(opt)
    out = []
    for _ in range(n):
        out.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    return out


def schedules():
    import warnings
    warnings.filterwarnings("ignore")
    S = torch.optim.lr_scheduler
    rows = [
        ("step", "ML_SCHED_STEP", ".step_size = 3, .gamma = 0.5", 0,
         lambda o: S.StepLR(o, step_size=3, gamma=0.5)),
        ("cosine", "ML_SCHED_COSINE", ".total_steps = 10, .min_lr = 0.001", 0,
         lambda o: S.CosineAnnealingLR(o, T_max=10, eta_min=0.001)),
        ("warmup_cosine", "ML_SCHED_COSINE", ".total_steps = 8, .min_lr = 0.0", 3,
         lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=1 / 3, end_factor=1.0, total_iters=2),
                                      S.CosineAnnealingLR(o, T_max=8)], milestones=[3])),
        ("warmup_step", "ML_SCHED_STEP", ".step_size = 2, .gamma = 0.1", 4,
         lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=1 / 4, end_factor=1.0, total_iters=3),
                                      S.StepLR(o, step_size=2, gamma=0.1)], milestones=[4])),
    ]
    print("#define REF_SCHED_STEPS 24")
    print("static const ref_sched ref_scheds[] = {")
    for label, kind, fields, warm, fn in rows:
        v = lrs(fn, 24)
        print("    {\"%s\", {%s, .base_lr = 0.1, %s, .warmup_steps = %d}," % (label, kind, fields, warm))
        print("     {%s}}," % ", ".join("%.17g" % x for x in v))
    print("};")


def clipping():
    """Printed as comments: test_clip_grad_norm quotes these numbers by hand."""
    def clip(bufs, max_norm):
        ps = []
        for b in bufs:
            q = torch.nn.Parameter(torch.zeros(len(b)))
            q.grad = torch.tensor(b)
            ps.append(q)
        n = torch.nn.utils.clip_grad_norm_(ps, max_norm)
        return float(n), " ".join(fl(q.grad.tolist()) for q in ps)
    for bufs, max_norm in [([[3.0, -4.0, 1.0]], 2.0), ([[3.0, -4.0, 1.0]], 10.0),
                           ([[1.0, 2.0], [-2.0, 0.5, 4.0]], 1.5)]:
        n, after = clip(bufs, max_norm)
        print("/* clip_grad_norm_(%s, %s): norm %.9g -> %s */" % (bufs, max_norm, n, after))


if __name__ == "__main__":
    print("/* BEGIN optim_reference.py (PyTorch %s) */" % torch.__version__)
    trajectories()
    schedules()
    clipping()
    print("/* END optim_reference.py */")
