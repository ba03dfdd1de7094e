"""A metalearn model (mlp[:W,...] or cnn4[:F]) as the library builds it: its
named parameters as NumPy arrays and its forward pass, so weights can be
checked against other frameworks (see torch_interop) without a run."""
import ctypes as C
import threading
from collections.abc import Mapping

import numpy as np

from . import _lib as L
from . import safetensors


class Model:
    """Model(spec, input_shape=(C, H, W), outputs=N, init="torch", seed=0).

    Parameters carry the checkpoint names (layers.0.weight, blocks.0.conv.weight,
    head.bias, ...) in PyTorch's shapes. Batch norm uses the batch's own
    statistics (as every meta-learner does: a checkpoint has no running
    statistics)."""

    def __init__(self, spec, input_shape=(1, 1, 1), outputs=1, init="torch", seed=0):
        if isinstance(input_shape, (str, bytes)) or np.ndim(input_shape) != 1 or len(input_shape) != 3:
            raise L.Error(f"model '{spec}': input_shape must be (C, H, W) of positive integers, got {input_shape}")
        input_shape = tuple(L.int_arg("input_shape", d, 1) for d in input_shape)
        outputs = L.int_arg("outputs", outputs, 0)
        seed = L.seed_arg("seed", seed)
        if init not in L.INIT_KINDS:
            raise L.Error(f"model '{spec}': init '{init}' is not one of {', '.join(L.INIT_KINDS)}")
        sp, err = L.ModelSpec(), L.errbuf()
        L.check(L.lib.ml_model_spec_parse(str(spec).encode(), C.byref(sp), err, L.ERRLEN), err)
        sp.in_c, sp.in_h, sp.in_w = (int(d) for d in input_shape)
        sp.n_out = int(outputs)
        self._m = L.Model()
        L.check(L.lib.ml_model_init(C.byref(self._m), C.byref(sp), err, L.ERRLEN), err)
        self.spec, self.input_shape, self.outputs = str(spec), tuple(int(d) for d in input_shape), int(outputs)
        rng = L.Rng()
        L.lib.ml_rng_seed(C.byref(rng), seed)
        L.lib.ml_model_init_params(C.byref(self._m), L.INIT_KINDS[init], C.byref(rng))
        self._ctx = L.lib.ml_ctx_create(0)
        if not self._ctx:
            raise L.Error("out of memory")
        # One forward pass at a time: they share self._ctx, which ctypes
        # calls use with the GIL released (threads would reset it mid-pass).
        self._lock = threading.RLock()

    def __del__(self):
        if getattr(self, "_ctx", None):
            L.lib.ml_ctx_destroy(self._ctx)
            self._ctx = None
        if getattr(self, "_m", None) is not None:
            L.lib.ml_model_free(C.byref(self._m))
            self._m = None

    def _flat(self):
        return np.ctypeslib.as_array(self._m.data, shape=(self._m.n_floats,))

    @property
    def shapes(self):
        """{name: shape} in checkpoint order."""
        p = self._m.params
        return {p[i].name.decode(): tuple(p[i].shape[d] for d in range(p[i].ndim)) for i in range(self._m.n_params)}

    def state_dict(self):
        """{name: float32 array} (copies), in checkpoint order."""
        flat, p = self._flat(), self._m.params
        return {p[i].name.decode(): flat[p[i].offset:p[i].offset + p[i].numel].reshape(shape).copy()
                for i, shape in enumerate(self.shapes.values())}

    def load_state_dict(self, tensors, strict=True):
        """Copies {name: array} into the model. Every parameter must be given
        with its shape; other names (optim.*, alpha.*, ...) are an error when
        strict, else ignored."""
        if not isinstance(tensors, Mapping):
            raise TypeError(f"model '{self.spec}': load_state_dict takes a dict {{name: array}}, got "
                            f"{type(tensors).__name__}")
        shapes = self.shapes
        missing = [n for n in shapes if n not in tensors]
        if missing:
            raise L.Error(f"model '{self.spec}': tensor '{missing[0]}' missing ({len(missing)} of {len(shapes)})")
        extra = [n for n in tensors if n not in shapes]
        if strict and extra:
            raise L.Error(f"model '{self.spec}': unexpected tensor '{extra[0]}' (strict=False ignores it)")
        # Every tensor checked before any is copied: a refused dict leaves
        # the model as it was, not half loaded.
        arrays = []
        for name, shape in shapes.items():
            a = safetensors.as_float32(f"model '{self.spec}': tensor '{name}'", tensors[name])
            if tuple(a.shape) != shape:
                raise L.Error(f"model '{self.spec}': tensor '{name}' has shape {list(a.shape)}, expected {list(shape)}")
            arrays.append(a)
        flat, p = self._flat(), self._m.params
        with self._lock:
            for i, a in enumerate(arrays):
                flat[p[i].offset:p[i].offset + p[i].numel] = a.ravel()

    def load(self, path, strict=False):
        """Loads the model's parameters from a safetensors file (a checkpoint:
        its other tensors are skipped unless strict)."""
        self.load_state_dict(safetensors.load(path), strict=strict)
        return self

    def save(self, path, metadata=None):
        """Writes the parameters as safetensors (usable as `train --init`)."""
        safetensors.save(path, self.state_dict(), metadata)

    def forward(self, x):
        """Outputs for a batch x [N, C, H, W] (an MLP also takes [N, C*H*W]):
        [N, outputs] float32, or the embedding of a headless CNN."""
        x = safetensors.as_float32(f"model '{self.spec}': input", x, max_dims=L.MAX_DIMS + 1)
        c, h, w = self.input_shape
        mlp = self._m.spec.kind == L.MODEL_MLP
        if x.ndim == 4 and x.shape[1:] == (c, h, w):
            x = x.reshape(x.shape[0], -1) if mlp else x
        elif not (mlp and x.ndim == 2 and x.shape[1] == c * h * w):
            want = f"[N, {c * h * w}] or [N, {c}, {h}, {w}]" if mlp else f"[N, {c}, {h}, {w}]"
            raise L.Error(f"model '{self.spec}': input has shape {list(x.shape)}, expected {want}")
        if x.shape[0] < 1:
            raise L.Error(f"model '{self.spec}': empty batch")
        if not np.isfinite(x).all():  # ReLU would turn NaN into 0: a plausible answer to a broken input
            raise L.Error(f"model '{self.spec}': input has NaN or Inf values")
        with self._lock:
            return self._forward(np.ascontiguousarray(x))

    def _forward(self, x):
        ctx = self._ctx
        L.lib.ml_ctx_reset(ctx)
        L.lib.ml_ctx_clear_error(ctx)
        L.lib.ml_ctx_set_recording(ctx, 0)
        params = (L.TensorP * L.MAX_PARAMS)()
        L.lib.ml_model_wrap(ctx, C.byref(self._m), self._m.data, params)
        shape = (C.c_int64 * L.MAX_DIMS)(*x.shape)
        xt = L.lib.ml_tensor_wrap(ctx, x.ctypes.data_as(L.f32p), x.ndim, shape)
        y = L.lib.ml_model_forward(ctx, C.byref(self._m), params, xt, 1, 0) if xt else None
        if not y:
            msg = (L.lib.ml_ctx_error(ctx) or b"").decode() or "forward pass failed"
            raise L.Error(f"model '{self.spec}': {msg}")
        t = y.contents
        out = np.ctypeslib.as_array(t.data, shape=(t.numel,)).copy().reshape([t.shape[d] for d in range(t.ndim)])
        L.lib.ml_ctx_reset(ctx)
        return out

    __call__ = forward
