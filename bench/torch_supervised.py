#!/usr/bin/python3
"""torch_supervised.py: the PyTorch twin of
`metalearn train --algo supervised --model cnn4 --dataset fashion-mnist`,
used by bench/supervised_vs_torch.sh to compare seconds per epoch.

Same model (4 x [conv3x3 pad 1 + bias, 64 filters -> BatchNorm2d -> ReLU ->
MaxPool2d(2)], flatten 64 -> Linear(64, 10)), cross-entropy, Adam, data
normalised by the (limited) training set's mean/std, reshuffled every epoch,
ragged last batch dropped, test evaluated in eval mode with batches of 100.

Timing matches metalearn's seconds_per_epoch: the clock runs from after the
epoch's shuffle to the end of its last optimizer step, and includes gathering
each batch, forward, backward, the step and the per-step loss / accuracy
bookkeeping. Data loading and evaluation are not timed.

Run with Debian's interpreter: /usr/bin/python3 bench/torch_supervised.py
The last stdout line is one JSON object. Progress goes to stderr.

glibc reads MALLOC_* at process start, so unless --no-reexec is given the
script re-executes itself once with the allocator / threading environment
set (values already present in the environment are kept)."""
import argparse
import gzip
import json
import os
import sys
import time

DATA_DIR = "/usr/share/datasets/fashion-mnist"

from torch_env import BENCH_ENV, reexec_with_bench_env


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--limit", type=int, default=0, help="use only the first N training examples (0 = all)")
    p.add_argument("--filters", type=int, default=64)
    p.add_argument("--data-dir", default=DATA_DIR)
    p.add_argument("--memory-format", choices=["channels_last", "nchw"], default="channels_last",
                   help="activation layout (default channels_last: oneDNN's NHWC convs were the faster here)")
    p.add_argument("--omp-wait-policy", default=None, help="override OMP_WAIT_POLICY (passive|active)")
    p.add_argument("--no-reexec", action="store_true", help="do not re-exec with the tuned environment")
    p.add_argument("--quiet", action="store_true")
    return p.parse_args()


def maybe_reexec(args):
    overrides = {"OMP_WAIT_POLICY": args.omp_wait_policy} if args.omp_wait_policy else None
    reexec_with_bench_env(threads=args.threads, overrides=overrides, disabled=args.no_reexec)


def load_idx(path):
    import numpy as np

    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic = int.from_bytes(raw[0:4], "big")
    ndim = magic & 0xFF
    if (magic >> 8) != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic {magic:#x})")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def main():
    args = parse_args()
    maybe_reexec(args)

    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    log = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))

    def path(split, kind):
        prefix = "train" if split == "train" else "t10k"
        return os.path.join(args.data_dir, f"{prefix}-{kind}-idx{3 if kind == 'images' else 1}-ubyte.gz")

    t_load = time.perf_counter()
    xtr = load_idx(path("train", "images")).astype(np.float32) / 255.0
    ytr = load_idx(path("train", "labels")).astype(np.int64)
    xte = load_idx(path("test", "images")).astype(np.float32) / 255.0
    yte = load_idx(path("test", "labels")).astype(np.int64)
    if args.limit > 0:
        xtr, ytr = xtr[: args.limit], ytr[: args.limit]
    mean = float(xtr.astype(np.float64).mean())
    std = float(xtr.astype(np.float64).std())
    xtr = torch.from_numpy(((xtr - mean) / std).astype(np.float32)).unsqueeze(1).contiguous()
    xte = torch.from_numpy(((xte - mean) / std).astype(np.float32)).unsqueeze(1).contiguous()
    ytr, yte = torch.from_numpy(ytr), torch.from_numpy(yte)
    load_s = time.perf_counter() - t_load

    fmt = torch.channels_last if (args.memory_format == "channels_last") else torch.contiguous_format

    class CNN4(nn.Module):
        def __init__(self, f):
            super().__init__()
            blocks, c = [], 1
            for _ in range(4):
                blocks += [nn.Conv2d(c, f, 3, padding=1, bias=True), nn.BatchNorm2d(f, eps=1e-5, momentum=0.1),
                           nn.ReLU(inplace=True), nn.MaxPool2d(2)]
                c = f
            self.blocks = nn.Sequential(*blocks)
            self.fc = nn.Linear(f, 10)

        def forward(self, x):
            return self.fc(torch.flatten(self.blocks(x), 1))

    model = CNN4(args.filters).to(memory_format=fmt)
    nparams = sum(p.numel() for p in model.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    n = xtr.shape[0]
    bs = min(args.batch_size, n)
    steps = n // bs  # drop the ragged last batch, as metalearn does
    gen = torch.Generator().manual_seed(args.seed + 1)
    log(f"torch {torch.__version__}: cnn4 on fashion-mnist ({n} train / {xte.shape[0]} test), {nparams} parameters, "
        f"adam lr {args.lr:g}, batch {bs}, {args.epochs} epochs, {torch.get_num_threads()} threads, "
        f"{args.memory_format}")

    epoch_s, loss, acc = [], float("nan"), float("nan")
    model.train()
    for epoch in range(1, args.epochs + 1):
        order = torch.randperm(n, generator=gen)
        t0 = time.perf_counter()
        loss_sum, correct = 0.0, 0
        for s in range(steps):
            idx = order[s * bs:(s + 1) * bs]
            x = xtr.index_select(0, idx).contiguous(memory_format=fmt)
            y = ytr.index_select(0, idx)
            logits = model(x)
            l = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            l.backward()
            opt.step()
            loss_sum += l.item()
            correct += int((logits.detach().argmax(1) == y).sum())
        dt = time.perf_counter() - t0
        epoch_s.append(dt)
        loss, acc = loss_sum / steps, correct / (steps * bs)
        if not (loss == loss):
            raise SystemExit("torch_supervised: loss became NaN")
        log(f"epoch {epoch}/{args.epochs}  loss {loss:.4f}  train acc {acc:.4f}  {dt:.2f} s")

    model.eval()
    t0 = time.perf_counter()
    correct = 0
    with torch.no_grad():
        for i in range(0, xte.shape[0], 100):
            xb = xte[i:i + 100].contiguous(memory_format=fmt)
            correct += int((model(xb).argmax(1) == yte[i:i + 100]).sum())
    eval_s = time.perf_counter() - t0
    test_acc = correct / xte.shape[0]
    log(f"test accuracy {test_acc:.4f}")

    print(json.dumps({
        "impl": "torch", "torch_version": torch.__version__, "model": f"cnn4:{args.filters}",
        "dataset": "fashion-mnist", "optimizer": "adam", "lr": args.lr, "batch_size": bs, "epochs": args.epochs,
        "seed": args.seed, "threads": torch.get_num_threads(), "train_examples": n, "test_examples": int(xte.shape[0]),
        "parameters": nparams, "memory_format": args.memory_format,
        "env": {k: os.environ.get(k) for k in list(BENCH_ENV) + ["OMP_NUM_THREADS", "OPENBLAS_CORETYPE"]},
        "final_train_loss": round(loss, 6), "final_train_accuracy": round(acc, 6), "test_accuracy": round(test_acc, 6),
        "epoch_seconds": [round(t, 4) for t in epoch_s],
        "seconds_per_epoch": round(sum(epoch_s) / len(epoch_s), 4), "train_seconds": round(sum(epoch_s), 3),
        "eval_seconds": round(eval_s, 3), "load_seconds": round(load_s, 3),
    }))


if __name__ == "__main__":
    main()
