#!/usr/bin/python3
"""torch_maml_rl_nav2d.py: the PyTorch twin of bench_maml_rl's 2D-navigation
MAML-TRPO (pytorch-maml-rl's 2d-navigation config), for seconds per outer
iteration side by side.

Configuration: policy 2-64-64-2 tanh MLP, Gaussian with learned log-std
(init std 1), Xavier-uniform weights and zero biases; goal ~ U[-0.5, 0.5]^2,
position state starting at 0, action clipped to [-0.1, 0.1], reward -distance,
done within 0.01 on both axes, horizon 100; 20 trajectories per task and
phase, meta-batch 20, one inner REINFORCE step (lr 0.1, create_graph=True)
on advantages from a linear feature baseline (ridge 1e-5) with GAE
(gamma 0.99, lambda 1) normalised; fresh trajectories from the adapted policy;
TRPO outer step: conjugate gradient (10 iterations, damping 1e-5) on
Hessian-vector products of the mean KL through the adaptation (double
backward), max KL 0.01, backtracking line search (15 steps, ratio 0.8) that
re-adapts every task at each candidate.

Written the fast way for PyTorch on a CPU: the environment is NumPy,
vectorised over a task's 20 trajectories; sampling runs under no_grad; the
KL gradient graph is built once per iteration and reused by every product.

Run with Debian's interpreter: /usr/bin/python3 bench/torch_maml_rl_nav2d.py
--iters N [--threads T]. The last stdout line is one JSON object, with wall
and process CPU seconds per iteration (CPU time is the fair figure on a
machine shared with other jobs)."""
import argparse
import json
import math
import sys
import time

import numpy as np
import torch

H, N_TRAJ, META_BATCH, INNER_LR, GAMMA = 100, 20, 20, 0.1, 0.99
MAX_KL, CG_ITERS, CG_DAMPING, LS_STEPS, LS_RATIO = 1e-2, 10, 1e-5, 15, 0.8


def init_params(gen):
    sizes = [2, 64, 64, 2]
    params = []
    for i in range(3):
        bound = math.sqrt(6.0 / (sizes[i] + sizes[i + 1]))
        w = (torch.rand(sizes[i + 1], sizes[i], generator=gen) * 2 - 1) * bound
        params += [w.requires_grad_(), torch.zeros(sizes[i + 1], requires_grad=True)]
    params.append(torch.zeros(2, requires_grad=True))  # log std
    return params


def head(params, x):
    h = torch.tanh(torch.nn.functional.linear(x, params[0], params[1]))
    h = torch.tanh(torch.nn.functional.linear(h, params[2], params[3]))
    return torch.nn.functional.linear(h, params[4], params[5])


def log_prob(params, mu, act):
    log_std = params[6]
    z = (act - mu) * torch.exp(-log_std)
    return -0.5 * (z * z).sum(-1) - log_std.sum() - math.log(2 * math.pi)


def kl(params, mu, old_mu, old_log_std):
    log_std = params[6]
    quad = ((mu - old_mu) ** 2 + torch.exp(2 * log_std)) * 0.5 * torch.exp(-2 * old_log_std)
    return quad.sum(-1) + (old_log_std - log_std).sum() - 1.0


def sample(params, goal, rng):
    x = np.zeros((H, N_TRAJ, 2), np.float32)
    act = np.zeros((H, N_TRAJ, 2), np.float32)
    rew = np.zeros((H, N_TRAJ), np.float32)
    mask = np.zeros((H, N_TRAJ), np.float32)
    pos = np.zeros((N_TRAJ, 2), np.float32)
    alive = np.ones(N_TRAJ, np.float32)
    with torch.no_grad():
        std = torch.exp(params[6]).numpy()
        for t in range(H):
            x[t] = pos
            mu = head(params, torch.from_numpy(pos)).numpy()
            a = mu + std * rng.standard_normal((N_TRAJ, 2)).astype(np.float32)
            act[t] = a
            pos = pos + np.clip(a, -0.1, 0.1)
            d = pos - goal
            mask[t] = alive
            rew[t] = -np.sqrt((d * d).sum(1)) * alive
            alive = alive * (1.0 - (np.abs(d) < 0.01).all(1))
    lengths = mask.sum(0)
    weight = mask / (lengths * N_TRAJ)
    return dict(x=x, act=act, rew=rew, mask=mask, weight=weight, lengths=lengths)


def advantages(ep):
    rew, mask, x = ep["rew"], ep["mask"], ep["x"]
    ret = np.zeros_like(rew)
    acc = np.zeros(N_TRAJ, np.float64)
    for t in range(H - 1, -1, -1):
        acc = rew[t] * mask[t] + GAMMA * acc
        ret[t] = acc
    ts = (np.arange(H, dtype=np.float64) / 100.0)[:, None] * np.ones((1, N_TRAJ))
    m = mask.astype(np.float64)
    feat = np.stack([x[..., 0] * m, x[..., 1] * m, x[..., 0] ** 2 * m, x[..., 1] ** 2 * m,
                     ts * m, ts ** 2 * m, ts ** 3 * m, m], -1)
    rows = m.reshape(-1) > 0
    f = feat.reshape(-1, 8)[rows]
    y = ret.reshape(-1)[rows]
    reg = 1e-5
    for _ in range(5):
        try:
            c = np.linalg.solve(f.T @ f + reg * np.eye(8), f.T @ y)
            if np.all(np.isfinite(c)):
                break
        except np.linalg.LinAlgError:
            pass
        reg *= 10
    v = feat @ c
    v_next = np.concatenate([v[1:], np.zeros((1, N_TRAJ))], 0)
    delta = rew + GAMMA * v_next - v
    adv = np.zeros_like(delta)
    gae = np.zeros(N_TRAJ)
    for t in range(H - 1, -1, -1):
        gae = gae * GAMMA + delta[t]
        adv[t] = gae
    lengths = ep["lengths"]
    mean = ((adv * mask).sum(0) / lengths).mean()
    out = (adv - mean) * mask
    std = math.sqrt(((out ** 2).sum(0) / lengths).mean()) + 1e-8
    ep["adv"] = torch.from_numpy((out / std).astype(np.float32))
    for k in ("x", "act", "weight"):
        ep[k] = torch.from_numpy(ep[k])
    return ep


def adapt(params, ep, create_graph):
    mu = head(params, ep["x"])
    loss = -(log_prob(params, mu, ep["act"]) * ep["adv"] * ep["weight"]).sum()
    grads = torch.autograd.grad(loss, params, create_graph=create_graph)
    return [p - INNER_LR * g for p, g in zip(params, grads)]


def flat(ts):
    return torch.cat([t.reshape(-1) for t in ts])


def outer_step(params, rng):
    tasks = []
    losses, kls = [], []
    for _ in range(META_BATCH):
        goal = rng.uniform(-0.5, 0.5, size=2).astype(np.float32)
        train = advantages(sample(params, goal, rng))
        fast = adapt(params, train, True)
        valid = advantages(sample([f.detach() for f in fast], goal, rng))
        mu = head(fast, valid["x"])
        logp = log_prob(fast, mu, valid["act"])
        old = dict(mu=mu.detach(), log_std=fast[6].detach(), logp=logp.detach())
        losses.append(-(torch.exp(logp - old["logp"]) * valid["adv"] * valid["weight"]).sum())
        kls.append((kl(fast, mu, old["mu"], old["log_std"]) * valid["weight"]).sum())
        tasks.append((train, valid, old))
    loss = sum(losses) / META_BATCH
    g = flat(torch.autograd.grad(loss, params, retain_graph=True))
    gkl = flat(torch.autograd.grad(sum(kls) / META_BATCH, params, create_graph=True))

    def hvp(v):
        return flat(torch.autograd.grad(gkl @ v, params, retain_graph=True)) + CG_DAMPING * v

    x = torch.zeros_like(g)
    r, p = g.clone(), g.clone()
    rr = r @ r
    for _ in range(CG_ITERS):
        z = hvp(p)
        a = rr / (p @ z)
        x += a * p
        r -= a * z
        rr_new = r @ r
        p = r + (rr_new / rr) * p
        rr = rr_new
        if rr < 1e-10:
            break
    shs = 0.5 * (x @ hvp(x))
    step = x / torch.sqrt(shs / MAX_KL)
    old_loss = loss.item()
    theta = flat([q.detach() for q in params])
    size = 1.0
    for _ in range(LS_STEPS):
        cand = theta - size * step
        cp, off = [], 0
        for q in params:
            cp.append(cand[off:off + q.numel()].view_as(q).clone().requires_grad_())
            off += q.numel()
        tot_loss, tot_kl = 0.0, 0.0
        for train, valid, old in tasks:
            fast = [f.detach() for f in adapt(cp, train, False)]
            with torch.no_grad():
                mu = head(fast, valid["x"])
                logp = log_prob(fast, mu, valid["act"])
                tot_loss += -(torch.exp(logp - old["logp"]) * valid["adv"] * valid["weight"]).sum().item()
                tot_kl += (kl(fast, mu, old["mu"], old["log_std"]) * valid["weight"]).sum().item()
        if tot_loss / META_BATCH < old_loss and tot_kl / META_BATCH < MAX_KL:
            with torch.no_grad():
                for q, c in zip(params, cp):
                    q.copy_(c)
            break
        size *= LS_RATIO


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    gen = torch.Generator().manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    params = init_params(gen)
    times, cpu = [], []
    for it in range(a.warmup + a.iters):
        t0, c0 = time.perf_counter(), time.process_time()
        outer_step(params, rng)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        print(f"iter {it}: {dt:.2f} s wall, {dc:.2f} s cpu", file=sys.stderr, flush=True)
        if it >= a.warmup:
            times.append(dt)
            cpu.append(dc)
    print(json.dumps({"impl": "torch", "torch": torch.__version__, "threads": a.threads,
                      "iters": a.iters, "s_per_iter_mean": sum(times) / len(times),
                      "s_per_iter_min": min(times),
                      "cpu_s_per_iter_mean": sum(cpu) / len(cpu)}))


if __name__ == "__main__":
    main()
