"""PyTorch interop (needs python3-torch): a metalearn checkpoint or Model as a
torch.nn.Sequential with the weights loaded, and a PyTorch module's weights
under metalearn's names (a file `metalearn train --init` accepts).

The mapping (the README's "Checkpoints in PyTorch" table):
  cnn4:F   blocks.i.conv.* -> [4i] Conv2d(C, F, 3, padding=1)
           blocks.i.bn.*   -> [4i+1] BatchNorm2d(F, track_running_stats=False)
                              ([4i+2] ReLU, [4i+3] MaxPool2d(2)), i = 0..3
           [16] Flatten, head.* -> [17] Linear(F*h*w, N) (absent for embeddings)
  mlp:W..  layers.i.* -> [2i] Linear, ReLU between (give it [N, features]:
           flatten images first, as metalearn does)
Batch norm always uses the batch's statistics, as metalearn's meta-learners
do, so the BN layers keep no running statistics. optim.*, alpha.*, the metric
heads' scalars and pretrain.head.* are not module parameters: skipped."""
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import _lib as L
from . import safetensors
from .model import Model


def _blocks(names):
    i = 0
    while f"blocks.{i}.conv.weight" in names:
        i += 1
    return i


def _layers(names):
    i = 0
    while f"layers.{i}.weight" in names:
        i += 1
    return i


def module_names(tensors):
    """{metalearn name: nn.Sequential state_dict name} for the module
    parameters among `tensors` (a dict or list of names)."""
    names, out = set(tensors), {}
    nb, nl = _blocks(names), _layers(names)
    for i in range(nb):
        for part, idx in (("conv", 4 * i), ("bn", 4 * i + 1)):
            for leaf in ("weight", "bias"):
                out[f"blocks.{i}.{part}.{leaf}"] = f"{idx}.{leaf}"
    if nb and "head.weight" in names:
        out["head.weight"], out["head.bias"] = f"{4 * nb + 1}.weight", f"{4 * nb + 1}.bias"
    for i in range(nl):
        out[f"layers.{i}.weight"], out[f"layers.{i}.bias"] = f"{2 * i}.weight", f"{2 * i}.bias"
    return {k: v for k, v in out.items() if k in names}


def to_torch(source):
    """nn.Sequential for a metalearn Model, a {name: array} dict, a
    checkpoint path or a run folder (its checkpoint.safetensors), built from
    the tensors' shapes, weights loaded (strict), in training mode (batch
    statistics, as metalearn's learners use them)."""
    if isinstance(source, Model):
        tensors = source.state_dict()
    elif isinstance(source, dict):
        # torch tensors (requires_grad too), any float dtype: float32 arrays,
        # odd dtypes refused by name (an object array would load as NaN)
        tensors = {k: safetensors.as_float32(f"tensor '{k}'", v) for k, v in source.items()}
    elif isinstance(source, (str, bytes)) or hasattr(source, "__fspath__"):
        path = Path(source)
        tensors = safetensors.load(path / "checkpoint.safetensors" if path.is_dir() else path)
    else:
        raise TypeError(f"to_torch takes a Model, a dict of tensors, a checkpoint or a run folder, got "
                        f"{type(source).__name__}")
    names = set(tensors)
    nb, nl = _blocks(names), _layers(names)
    for name in module_names(tensors):  # shapes the layers are built from, before indexing them
        want = 4 if name.endswith("conv.weight") else 2 if name.endswith("weight") and ".bn." not in name else 1
        if np.ndim(tensors[name]) != want:
            raise L.Error(f"tensor '{name}' has shape {list(np.shape(tensors[name]))}, expected {want} dimensions")
    layers = []
    if nb:
        for i in range(nb):
            w = tensors[f"blocks.{i}.conv.weight"]
            layers += [nn.Conv2d(w.shape[1], w.shape[0], 3, padding=1),
                       nn.BatchNorm2d(w.shape[0], track_running_stats=False), nn.ReLU(), nn.MaxPool2d(2)]
        layers.append(nn.Flatten())
        if "head.weight" in names:
            hw = tensors["head.weight"]
            layers.append(nn.Linear(hw.shape[1], hw.shape[0]))
    elif nl:
        for i in range(nl):
            w = tensors[f"layers.{i}.weight"]
            if i:
                layers.append(nn.ReLU())
            layers.append(nn.Linear(w.shape[1], w.shape[0]))
    else:
        raise L.Error("no model parameters (blocks.0.conv.weight or layers.0.weight) among the tensors")
    module = nn.Sequential(*layers)
    state = {t: torch.from_numpy(np.array(tensors[m], dtype=np.float32)) for m, t in module_names(tensors).items()}
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise L.Error(f"tensors do not fit the module: {str(e).splitlines()[0]}") from None
    return module.train()


def from_torch(module):
    """{metalearn name: float32 array} from a PyTorch module laid out as
    to_torch builds it (Conv2d + BatchNorm2d blocks then an optional Linear
    head, or Linear layers): its parameters in order, renamed."""
    if not isinstance(module, nn.Module):
        raise TypeError(f"from_torch takes a torch.nn.Module, got {type(module).__name__}")
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    bns = [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    others = [type(m).__name__ for m in module.modules()
              if not list(m.children()) and not isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.Linear, nn.ReLU,
                                                                  nn.MaxPool2d, nn.Flatten))]
    if others:
        raise L.Error(f"module has layers metalearn models do not: {', '.join(sorted(set(others)))}")
    a = lambda p: p.detach().cpu().numpy().astype(np.float32)  # noqa: E731
    # A layer without a bias (or a batch norm without affine) is one with
    # zero bias (and unit scale): metalearn's layers always have them.
    bias = lambda p, n: a(p) if p is not None else np.zeros(n, np.float32)  # noqa: E731
    scale = lambda p, n: a(p) if p is not None else np.ones(n, np.float32)  # noqa: E731
    for c in convs:
        if c.kernel_size != (3, 3) or c.stride != (1, 1) or c.padding != (1, 1) or c.dilation != (1, 1) \
                or c.groups != 1:
            raise L.Error(f"module has a Conv2d that metalearn's cnn4 has not ({c}): expected "
                          f"Conv2d(C, F, 3, padding=1)")
    out = {}
    if convs:
        if len(bns) != len(convs) or len(linears) > 1:
            raise L.Error(f"a cnn4 module has one BatchNorm2d per Conv2d and at most one Linear head; got "
                          f"{len(convs)} Conv2d, {len(bns)} BatchNorm2d, {len(linears)} Linear")
        for i, (c, b) in enumerate(zip(convs, bns)):
            out[f"blocks.{i}.conv.weight"] = a(c.weight)
            out[f"blocks.{i}.conv.bias"] = bias(c.bias, c.out_channels)
            out[f"blocks.{i}.bn.weight"] = scale(b.weight, b.num_features)
            out[f"blocks.{i}.bn.bias"] = bias(b.bias, b.num_features)
        if linears:
            out["head.weight"] = a(linears[0].weight)
            out["head.bias"] = bias(linears[0].bias, linears[0].out_features)
    else:
        for i, l in enumerate(linears):
            out[f"layers.{i}.weight"], out[f"layers.{i}.bias"] = a(l.weight), bias(l.bias, l.out_features)
    if not out:
        raise L.Error("module has no Conv2d or Linear layers")
    return out


def save_init(module, path):
    """Writes module's weights under metalearn's names to path (safetensors),
    for `metalearn train --init PATH`."""
    safetensors.save(path, from_torch(module))
