#!/usr/bin/python3
"""torch_maml_sinusoid.py: the PyTorch twin of
`metalearn train --algo maml --task sinusoid --model mlp:40,40`, used by
bench/maml_sinusoid_vs_torch.sh to compare milliseconds per meta-iteration.

Configuration (MAML paper): 1-40-40-1 ReLU MLP (torch.nn.Linear init),
meta-batch 25 tasks, K=10 support + 10 query points per task, sinusoids
y = A sin(x - phase), A ~ U[0.1, 5], phase ~ U[0, pi], x ~ U[-5, 5]; one inner
SGD step (lr 0.01) taken with create_graph=True (exact second order), MSE loss,
outer Adam (lr 1e-3) on the mean query loss over the tasks.

Written the fast way: all tasks go through one batched functional forward
(torch.baddbmm on per-task weight copies made by expand), so the inner
gradient w.r.t. the expanded weights is the per-task gradient; the fast
weights w - lr * g keep the graph, and the query loss backpropagates through
them into the shared parameters. Task sampling uses torch on the same device
(CPU) and is part of each timed iteration, like metalearn's train_seconds.

Timing: --warmup iterations untimed, then --iters iterations split into
--blocks equal blocks; reports the median (and min / mean) ms per iteration
over the blocks. --check trains --check-iters iterations printing the query
loss (stderr), and first compares the batched meta-gradient with a plain
per-task loop (torch.nn.functional.linear, autograd.grad create_graph=True).

Run with Debian's interpreter: /usr/bin/python3 bench/torch_maml_sinusoid.py
The last stdout line is one JSON object. Progress goes to stderr.

glibc reads MALLOC_* at process start, so unless --no-reexec is given the
script re-executes itself once with the allocator / threading environment
set (values already present in the environment are kept)."""
import argparse
import json
import math
import os
import statistics
import sys
import time

from torch_env import BENCH_ENV, reexec_with_bench_env


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--iters", type=int, default=1000, help="timed meta-iterations")
    p.add_argument("--warmup", type=int, default=50, help="untimed meta-iterations first")
    p.add_argument("--blocks", type=int, default=5, help="timed blocks (median over them)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (0 = try 1 and 2, keep the faster)")
    p.add_argument("--meta-batch", type=int, default=25)
    p.add_argument("--shots", type=int, default=10)
    p.add_argument("--query", type=int, default=10)
    p.add_argument("--hidden", type=int, default=40)
    p.add_argument("--inner-lr", type=float, default=0.01)
    p.add_argument("--outer-lr", type=float, default=1e-3)
    p.add_argument("--impl", choices=["bmm", "mixed"], default="bmm", help="batched forward: baddbmm for all layers, or broadcasts for the 1-wide layers")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--check", action="store_true", help="verify gradients and that training lowers the query loss")
    p.add_argument("--check-iters", type=int, default=2000)
    p.add_argument("--no-reexec", action="store_true", help="do not re-exec with the tuned environment")
    p.add_argument("--quiet", action="store_true")
    return p.parse_args()


def maybe_reexec(args):
    reexec_with_bench_env(threads=args.threads if args.threads > 0 else None, disabled=args.no_reexec)


def loaded_blas():
    """Which BLAS library the process actually mapped (torch links libblas.so.3)."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "blas" in line.lower() and "/" in line}
    except OSError:
        return "unknown"
    # e.g. "libopenblasp-r0.3.21.so" (OpenBLAS) or "blas/libblas.so.3" (netlib reference)
    names = sorted({"/".join(l.split("/")[-2:]) for l in libs if "lapack" not in l})
    return ",".join(names) or "none"


def log(args, *a):
    if not args.quiet:
        print(*a, file=sys.stderr, flush=True)


def main():
    args = parse_args()
    maybe_reexec(args)
    import torch
    import torch.nn.functional as F

    torch.manual_seed(args.seed)
    torch.set_num_interop_threads(1)
    B, K, Q, H = args.meta_batch, args.shots, args.query, args.hidden
    alpha = args.inner_lr

    # torch.nn.Linear default initialisation, torch layout (out, in).
    layers = [torch.nn.Linear(1, H), torch.nn.Linear(H, H), torch.nn.Linear(H, 1)]
    params = [t for l in layers for t in (l.weight, l.bias)]
    params = [p.detach().clone().requires_grad_(True) for p in params]
    opt = torch.optim.Adam(params, lr=args.outer_lr)

    def sample_tasks():
        amp = torch.empty(B, 1, 1).uniform_(0.1, 5.0)
        phase = torch.empty(B, 1, 1).uniform_(0.0, math.pi)
        x = torch.empty(B, K + Q, 1).uniform_(-5.0, 5.0)
        y = amp * torch.sin(x - phase)
        return x[:, :K], y[:, :K], x[:, K:], y[:, K:]

    def forward(w, x):
        # w: per-task weights, (B, out, in) and biases (B, out); x: (B, N, in).
        w1, b1, w2, b2, w3, b3 = w
        if args.impl == "bmm":
            h = torch.relu(torch.baddbmm(b1.unsqueeze(1), x, w1.transpose(1, 2)))
            h = torch.relu(torch.baddbmm(b2.unsqueeze(1), h, w2.transpose(1, 2)))
            return torch.baddbmm(b3.unsqueeze(1), h, w3.transpose(1, 2))
        # "mixed": the 1-wide input / output layers as broadcast products (a
        # rank-1 outer product and a dot product), the 40x40 layer as baddbmm.
        h = torch.relu(x * w1.transpose(1, 2) + b1.unsqueeze(1))
        h = torch.relu(torch.baddbmm(b2.unsqueeze(1), h, w2.transpose(1, 2)))
        return (h * w3).sum(-1, keepdim=True) + b3.unsqueeze(1)

    def meta_loss(xs, ys, xq, yq):
        wb = [p.unsqueeze(0).expand(B, *p.shape) for p in params]
        # Sum of per-task mean losses: its gradient w.r.t. task b's copy is task b's gradient.
        inner = ((forward(wb, xs) - ys) ** 2).mean(dim=(1, 2)).sum()
        grads = torch.autograd.grad(inner, wb, create_graph=True)
        fast = [w - alpha * g for w, g in zip(wb, grads)]
        return ((forward(fast, xq) - yq) ** 2).mean()

    def step():
        xs, ys, xq, yq = sample_tasks()
        loss = meta_loss(xs, ys, xq, yq)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    if args.check:
        # Batched meta-gradient vs. a plain per-task loop.
        xs, ys, xq, yq = sample_tasks()
        g_batched = torch.autograd.grad(meta_loss(xs, ys, xq, yq), params)
        total = 0.0
        for b in range(B):
            def fwd(w, x):
                h = torch.relu(F.linear(x, w[0], w[1]))
                h = torch.relu(F.linear(h, w[2], w[3]))
                return F.linear(h, w[4], w[5])
            li = F.mse_loss(fwd(params, xs[b]), ys[b])
            g = torch.autograd.grad(li, params, create_graph=True)
            fast = [p - alpha * gi for p, gi in zip(params, g)]
            total = total + F.mse_loss(fwd(fast, xq[b]), yq[b])
        g_loop = torch.autograd.grad(total / B, params)
        err = max(float((a - b).abs().max() / (b.abs().max() + 1e-12)) for a, b in zip(g_batched, g_loop))
        log(args, f"check: batched vs per-task-loop meta-gradient, max rel. error {err:.2e}")
        if err > 1e-4:
            print(json.dumps({"bench": "torch_maml_sinusoid", "check": "failed", "grad_rel_err": err}))
            sys.exit(1)
        torch.set_num_threads(max(args.threads, 1))
        losses, window, curve = [], [], []
        for it in range(1, args.check_iters + 1):
            window.append(float(step().detach()))
            if it % 100 == 0:
                m = sum(window) / len(window)
                curve.append(round(m, 4))
                log(args, f"check: iter {it} mean query loss (last 100) {m:.4f}")
                window = []
        ok = len(curve) >= 2 and curve[-1] < 0.5 * curve[0]
        print(json.dumps({"bench": "torch_maml_sinusoid", "check": "ok" if ok else "failed",
                          "grad_rel_err": err, "iters": args.check_iters,
                          "query_loss_first100": curve[0] if curve else None,
                          "query_loss_last100": curve[-1] if curve else None,
                          "query_loss_per100": curve}))
        sys.exit(0 if ok else 1)

    def timed(threads):
        torch.set_num_threads(threads)
        for _ in range(args.warmup):
            step()
        per = max(args.iters // args.blocks, 1)
        ms = []
        for _ in range(args.blocks):
            t0 = time.perf_counter()
            for _ in range(per):
                step()
            ms.append((time.perf_counter() - t0) * 1e3 / per)
        return ms, per

    candidates = [args.threads] if args.threads > 0 else [1, 2]
    results = {}
    for t in candidates:
        ms, per = timed(t)
        results[t] = ms
        log(args, f"threads {t}: ms/iter per block " + " ".join(f"{m:.3f}" for m in ms))
    best = min(results, key=lambda t: statistics.median(results[t]))
    ms = results[best]
    print(json.dumps({
        "bench": "torch_maml_sinusoid", "impl": "torch", "torch": torch.__version__,
        "impl_variant": args.impl, "blas": loaded_blas(), "threads": best, "tried_threads": {str(t): round(statistics.median(v), 4) for t, v in results.items()},
        "warmup": args.warmup, "iters": per * args.blocks, "blocks": args.blocks,
        "ms_per_iter_median": round(statistics.median(ms), 4), "ms_per_iter_min": round(min(ms), 4),
        "ms_per_iter_mean": round(sum(ms) / len(ms), 4), "ms_per_iter_blocks": [round(m, 4) for m in ms],
        "meta_batch": B, "shots": K, "query": Q, "hidden": [H, H],
        "inner_lr": alpha, "outer_lr": args.outer_lr,
    }))


if __name__ == "__main__":
    main()
