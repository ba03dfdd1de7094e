#!/usr/bin/env python3
"""Which training classes a run's task sampler favoured at its last checkpoint.
similar: the alphabets of the top-K classes (by weight); curriculum: the mean
running loss per alphabet and the alphabets of the 50 hardest classes.
Usage: task_selection_topk.py RUN [K]"""
import array, collections, json, statistics, struct, sys

run = sys.argv[1]
k = int(sys.argv[2]) if len(sys.argv) > 2 else 50
b = open(f"{run}/checkpoint.safetensors", "rb").read()
n = struct.unpack("<Q", b[:8])[0]
head = json.loads(b[8:8 + n])
def tensor(name):
    lo, hi = head[name]["data_offsets"]
    a = array.array("f")
    a.frombytes(b[8 + n + lo:8 + n + hi])
    return list(a)
train = json.load(open(f"{run}/split.json"))["train"]
cfg = json.load(open(f"{run}/config.json"))
rot = 4 if cfg.get("rotations", 1) else 1
alpha = [train[i // rot].split("/")[0] for i in range(len(train) * rot)]
print("training classes per alphabet:", dict(collections.Counter(alpha)))
if "task_sampler.weights" in head:
    w = tensor("task_sampler.weights")
    top = sorted(range(len(w)), key=lambda i: -w[i])[:k]
    print(f"top {k} by weight:", dict(collections.Counter(alpha[i] for i in top)))
    print("rotations among them:", dict(collections.Counter(int(i) % rot for i in top)))
if "task_sampler.ema" in head:
    ema, seen = tensor("task_sampler.ema"), tensor("task_sampler.seen")
    by = collections.defaultdict(list)
    for i, a in enumerate(alpha):
        if seen[i] > 0: by[a].append(ema[i])
    print("classes seen:", int(sum(seen)), "of", len(seen))
    print("mean running loss per alphabet:", {a: round(statistics.mean(v), 3) for a, v in sorted(by.items())})
    hard = sorted(range(len(ema)), key=lambda i: -(ema[i] if seen[i] > 0 else -1))[:50]
    print("50 hardest:", dict(collections.Counter(alpha[i] for i in hard)))
