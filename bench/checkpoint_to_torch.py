#!/usr/bin/env python3
"""Loads a metalearn checkpoint into a PyTorch nn.Sequential, and checks it.

    /usr/bin/python3 bench/checkpoint_to_torch.py RUN/checkpoint.safetensors --model cnn4:64 --outputs 5 \
        [--images FOLDER --probs PREDICT.json]

The checkpoint names map to nn.Sequential indices as follows (printed too):
  cnn4:F   blocks.i.conv.* -> [4i] Conv2d(C, F, 3, padding=1)
           blocks.i.bn.*   -> [4i+1] BatchNorm2d(F, track_running_stats=False)
                              ([4i+2] ReLU, [4i+3] MaxPool2d(2)), i = 0..3
           [16] Flatten, head.* -> [17] Linear(F * h * w, outputs)
  mlp:W..  layers.i.* -> [2i] Linear (ReLU between)
A meta-learning checkpoint holds no BN running statistics (batch norm always
uses the batch's statistics, as in training), so the BN layers are built
without them; optim.* (the outer optimizer's state, flat over every learned
float), alpha.* (Meta-SGD rates) and the metric heads' scalars are not
module parameters and are skipped. With --images and --probs (the JSON line
of `metalearn predict RUN --support S --query FOLDER --steps 0 --json`), the
torch model's softmax on the same 28x28 query images must match."""
import argparse, json, struct, sys, zlib

import torch
from torch import nn


def read_safetensors(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        lo, hi = e["data_offsets"]
        t = torch.frombuffer(bytearray(b[8 + n + lo:8 + n + hi]), dtype=torch.float32)
        out[name] = t.reshape(e["shape"])
    return out, header.get("__metadata__", {})


def build(spec, channels, size, outputs):
    kind, _, args = spec.partition(":")
    if kind == "cnn4":
        f = int(args or 64)
        layers, c = [], channels
        for _ in range(4):
            layers += [nn.Conv2d(c, f, 3, padding=1), nn.BatchNorm2d(f, track_running_stats=False), nn.ReLU(),
                       nn.MaxPool2d(2)]
            c, size = f, size // 2
        layers += [nn.Flatten(), nn.Linear(f * size * size, outputs)]
        names = {}
        for i in range(4):
            names[f"blocks.{i}.conv"], names[f"blocks.{i}.bn"] = str(4 * i), str(4 * i + 1)
        names["head"] = "17"
        return nn.Sequential(*layers), names
    widths = [int(w) for w in (args or "256,128").split(",")]
    dims, layers, names = [channels * size * size] + widths + [outputs], [], {}
    for i in range(len(dims) - 1):
        layers.append(nn.Linear(dims[i], dims[i + 1]))
        names[f"layers.{i}"] = str(len(layers) - 1)
        if i < len(dims) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers), names  # inputs flattened to [N, C*H*W] first, as metalearn does


def gray_png(path):
    """8-bit grayscale, non-interlaced PNGs as written by the tests (filter 0 rows)."""
    b = open(path, "rb").read()
    pos, idat, w = 8, b"", 0
    while pos < len(b):
        n = struct.unpack(">I", b[pos:pos + 4])[0]
        t, d = b[pos + 4:pos + 8], b[pos + 8:pos + 8 + n]
        if t == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", d[:10])
            assert depth == 8 and ctype == 0, "8-bit grayscale only"
        elif t == b"IDAT":
            idat += d
        pos += 12 + n
    raw = zlib.decompress(idat)
    rows = [raw[r * (w + 1) + 1:(r + 1) * (w + 1)] for r in range(h)]
    assert all(raw[r * (w + 1)] == 0 for r in range(h)), "filter 0 rows only"
    return torch.tensor([list(r) for r in rows], dtype=torch.float32) / 255


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("--model", default="cnn4:64")
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--size", type=int, default=28)
    ap.add_argument("--outputs", type=int, required=True)
    ap.add_argument("--images", help="folder the --probs predictions were made on")
    ap.add_argument("--probs", help="file holding predict's --json line")
    a = ap.parse_args()
    tensors, meta = read_safetensors(a.checkpoint)
    model, names = build(a.model, a.channels, a.size, a.outputs)
    state, skipped = {}, []
    for name, t in tensors.items():
        prefix, _, leaf = name.rpartition(".")
        if prefix in names:
            state[f"{names[prefix]}.{leaf}"] = t
        else:
            skipped.append(name)
    for k in sorted(names, key=lambda k: int(names[k])):
        print(f"{k}.* -> [{names[k]}] {model[int(names[k])]}")
    print("not module parameters:", ", ".join(sorted(skipped)) or "none")
    model.load_state_dict(state, strict=True)  # every torch tensor is given: nothing missing
    print(f"loaded {len(state)} tensors into nn.Sequential ({meta.get('algo', '?')} checkpoint)")
    if a.images and a.probs:
        pred = json.loads(open(a.probs).read().strip().splitlines()[-1])
        imgs = [gray_png(f"{a.images}/{p['image']}") for p in pred["predictions"]]
        x = torch.stack(imgs).unsqueeze(1)
        model.train()  # batch statistics, as metalearn (no running stats are kept)
        with torch.no_grad():
            probs = torch.softmax(model(x), dim=1)
        classes = sorted(pred["predictions"][0]["probabilities"])
        ours = torch.tensor([[p["probabilities"][c] for c in classes] for p in pred["predictions"]])
        diff = (probs - ours).abs().max().item()
        print(f"max |p_torch - p_metalearn| over {len(imgs)} images x {len(classes)} classes: {diff:.2e}")
        sys.exit(0 if diff < 1e-4 else 1)


if __name__ == "__main__":
    main()
