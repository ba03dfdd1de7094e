#!/usr/bin/python3
"""torch_omniglot.py: the PyTorch twin of metalearn's few-shot Omniglot training
loop, used by bench/omniglot_vs_torch.sh to compare speed.

Configurations (--config):
  maml2     second-order MAML, N-way K-shot, Q queries per class, meta-batch M,
            S inner SGD steps (autograd.grad(create_graph=True))
  fomaml    the same with first-order inner gradients (create_graph=False)
  protonet  Prototypical Networks, support + query embedded in one batch,
            squared Euclidean distance to the class means
Model: 4 x [Conv2d(c,64,3,padding=1)+bias -> BatchNorm2d(64, eps 1e-5,
momentum 0.1, batch statistics always) -> ReLU -> MaxPool2d(2)] on 1x28x28
(28->14->7->3->1), flatten 64; MAML adds Linear(64, ways). Outer Adam.

MAML is functional with fast weights, every parameter (conv, BN affine, head)
adapted in the inner loop; the tasks of a meta-batch are processed in a loop,
each task's query loss / M back-propagated at once (as learn2learn and the
reference MAML code do), then one Adam step.

DATA: random tensors (uniform [0,1) images, balanced labels) of the right
shapes, drawn with torch inside the timed loop. For speed this is equivalent
to real Omniglot (no data-dependent control flow); metalearn reads the real zips.

Timing: --warmup iterations, then --blocks blocks of --iters iterations each;
the result is the median seconds per iteration over the blocks.

Run with Debian's interpreter: /usr/bin/python3 bench/torch_omniglot.py
The last stdout line is one JSON object. glibc reads MALLOC_* at start-up, so
unless --no-reexec is given the script re-executes itself once with the
allocator / threading environment set (values already present are kept)."""
import argparse
import json
import os
import resource
import statistics
import sys
import time

from torch_env import BENCH_ENV, reexec_with_bench_env

# Forward multiply-adds x 2 of the 4-block CNN per 1x28x28 image (convs; the
# head adds 2*64*ways). Conv FLOPs = 2 * Cout * H * W * Cin * 9 per image.
CONV_SHAPES = [(1, 64, 28), (64, 64, 14), (64, 64, 7), (64, 64, 3)]  # (cin, cout, hw before pool)


def conv_fwd_flops_per_image():
    return sum(2 * cout * hw * hw * cin * 9 for cin, cout, hw in CONV_SHAPES)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", choices=["maml2", "fomaml", "protonet"], default="maml2")
    p.add_argument("--ways", type=int, default=None, help="default 5 (MAML) / 20 (protonet)")
    p.add_argument("--shots", type=int, default=None, help="default 1 (MAML) / 5 (protonet)")
    p.add_argument("--query", type=int, default=None, help="default 15 (MAML) / 5 (protonet)")
    p.add_argument("--meta-batch", type=int, default=None, help="default 32 (MAML) / 2 (protonet)")
    p.add_argument("--inner-steps", type=int, default=1)
    p.add_argument("--inner-lr", type=float, default=0.4)
    p.add_argument("--outer-lr", type=float, default=1e-3)
    p.add_argument("--filters", type=int, default=64)
    p.add_argument("--warmup", type=int, default=2, help="untimed iterations first")
    p.add_argument("--iters", type=int, default=2, help="iterations per timed block")
    p.add_argument("--blocks", type=int, default=3, help="timed blocks (median taken)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--memory-format", choices=["channels_last", "nchw"], default="nchw",
                   help="activation/weight layout (nchw measured faster here for MAML's small batches)")
    p.add_argument("--no-reexec", action="store_true", help="do not re-exec with the tuned environment")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args()
    proto = a.config == "protonet"
    a.ways = a.ways if a.ways is not None else (20 if proto else 5)
    a.shots = a.shots if a.shots is not None else (5 if proto else 1)
    a.query = a.query if a.query is not None else (5 if proto else 15)
    a.meta_batch = a.meta_batch if a.meta_batch is not None else (2 if proto else 32)
    return a


def maybe_reexec(args):
    reexec_with_bench_env(threads=args.threads, disabled=args.no_reexec)


def main():
    args = parse_args()
    maybe_reexec(args)

    import torch
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.manual_seed(args.seed)
    log = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    fmt = torch.channels_last if args.memory_format == "channels_last" else torch.contiguous_format
    proto = args.config == "protonet"
    f, W, K, Q, M = args.filters, args.ways, args.shots, args.query, args.meta_batch

    # Parameters, initialised as torch's nn.Conv2d / nn.Linear / nn.BatchNorm2d do.
    mods, c = [], 1
    for _ in range(4):
        conv = torch.nn.Conv2d(c, f, 3, padding=1, bias=True)
        mods += [conv.weight, conv.bias, torch.ones(f), torch.zeros(f)]
        c = f
    if not proto:
        fc = torch.nn.Linear(f, W)
        mods += [fc.weight, fc.bias]
    params = [torch.nn.Parameter(t.detach().clone()) for t in mods]
    for i in range(0, 16, 4):
        params[i].data = params[i].data.contiguous(memory_format=fmt)
    nparams = sum(p.numel() for p in params)
    opt = torch.optim.Adam(params, lr=args.outer_lr)

    def forward(x, w):
        for b in range(4):
            x = F.conv2d(x, w[4 * b], w[4 * b + 1], padding=1)
            x = F.batch_norm(x, None, None, w[4 * b + 2], w[4 * b + 3], training=True, momentum=0.1, eps=1e-5)
            x = F.max_pool2d(F.relu(x), 2)
        x = torch.flatten(x, 1)
        if len(w) > 16:
            x = F.linear(x, w[16], w[17])
        return x

    def images(n):
        return torch.rand(n, 1, 28, 28).contiguous(memory_format=fmt)

    ys = torch.arange(W).repeat_interleave(K)  # support labels, class-major
    yq = torch.arange(W).repeat_interleave(Q)
    second = args.config == "maml2"

    def maml_iteration():
        opt.zero_grad(set_to_none=True)
        total = 0.0
        for _ in range(M):
            xs, xq = images(W * K), images(W * Q)
            fast = params
            for _ in range(args.inner_steps):
                loss = F.cross_entropy(forward(xs, fast), ys)
                grads = torch.autograd.grad(loss, fast, create_graph=second)
                fast = [p - args.inner_lr * g for p, g in zip(fast, grads)]
            ql = F.cross_entropy(forward(xq, fast), yq) / M
            ql.backward()
            total += ql.item()
        opt.step()
        return total

    def protonet_iteration():
        opt.zero_grad(set_to_none=True)
        total = 0.0
        for _ in range(M):
            x = images(W * (K + Q))  # support then query, one batch
            z = forward(x, params)
            zs, zq = z[: W * K], z[W * K:]
            protos = zs.view(W, K, -1).mean(1)
            d = (zq.unsqueeze(1) - protos.unsqueeze(0)).pow(2).sum(-1)
            loss = F.cross_entropy(-d, yq) / M
            loss.backward()
            total += loss.item()
        opt.step()
        return total

    step = protonet_iteration if proto else maml_iteration
    log(f"torch {torch.__version__}: {args.config} {W}-way {K}-shot q{Q} meta-batch {M}, {nparams} parameters, "
        f"{torch.get_num_threads()} threads, {args.memory_format}; random data")

    t0 = time.perf_counter()
    loss = float("nan")
    for _ in range(args.warmup):
        loss = step()
    warm_s = time.perf_counter() - t0
    block_s = []
    for b in range(args.blocks):
        t0 = time.perf_counter()
        for _ in range(args.iters):
            loss = step()
        block_s.append((time.perf_counter() - t0) / args.iters)
        log(f"block {b + 1}/{args.blocks}: {block_s[-1]:.3f} s/iter  loss {loss:.4f}")
    if not (loss == loss):
        raise SystemExit("torch_omniglot: loss became NaN")
    s_it = statistics.median(block_s)

    # FLOP counting rule (convs + head only; BN / ReLU / pooling / distances ignored):
    # forward F per image, backward = 2F (input + weight gradients).
    # maml2 per task:  steps * 3F * support  +  3F * query  +  steps * 4F * support
    #                  (the second-order pass = backward through the inner forward+backward
    #                  on the support set, ~2x the inner backward's 2F).
    # fomaml per task: steps * 3F * support  +  3F * query.
    # protonet per episode: 3F * (support + query).
    Fimg = conv_fwd_flops_per_image() + (0 if proto else 2 * f * W)
    S, Qn = W * K, W * Q
    if proto:
        flops_task = 3 * Fimg * (S + Qn)
    else:
        flops_task = args.inner_steps * 3 * Fimg * S + 3 * Fimg * Qn + (args.inner_steps * 4 * Fimg * S if second else 0)
    tasks_per_s = M / s_it
    print(json.dumps({
        "impl": "torch", "torch": torch.__version__, "config": args.config, "ways": W, "shots": K, "query": Q,
        "meta_batch": M, "inner_steps": 0 if proto else args.inner_steps, "inner_lr": None if proto else args.inner_lr,
        "outer_lr": args.outer_lr, "parameters": nparams, "threads": torch.get_num_threads(),
        "memory_format": args.memory_format, "data": "random tensors",
        "env": {k: os.environ.get(k) for k in list(BENCH_ENV) + ["OMP_NUM_THREADS"]},
        "warmup_iters": args.warmup, "warmup_seconds": round(warm_s, 3), "iters_per_block": args.iters,
        "block_seconds_per_iter": [round(t, 4) for t in block_s],
        "seconds_per_iter": round(s_it, 4), "iters_per_second": round(1.0 / s_it, 4),
        "tasks_per_second": round(tasks_per_s, 3),
        "fwd_mflop_per_image": round(Fimg / 1e6, 4), "gflop_per_task": round(flops_task / 1e9, 4),
        "gflops": round(tasks_per_s * flops_task / 1e9, 3),
        "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "final_loss": round(loss, 5),
    }))


if __name__ == "__main__":
    main()
