"""The library's meta-learners (metalearn/meta.h) over a Model, driven from
Python one outer step at a time: MAML (second order), FOMAML, Meta-SGD,
ANIL, Reptile, the multi-task baseline, ProtoNet, Matching Networks, R2-D2.

    model = Model("mlp:40,40", (1, 1, 1), outputs=1)
    maml = MetaLearner(model, "maml", inner_lr=0.01, outer_lr=0.001)
    for batch in ...:                      # lists of Task (or Episode)
        loss = maml.step(batch)            # one outer update
    y = maml.adapt_predict(xs, ys, xq, steps=10)

This is the learner without a run folder (no config, log, checkpoint
schedule or resume): see metalearn.run for those. MetaLearner.from_run
loads a trained run to adapt and predict (what `metalearn predict` does)."""
import ctypes as C
import functools
import os
import threading

import numpy as np

from . import _lib as L
from . import safetensors
from .model import Model

MAX_STEPS = 1000       # adaptation steps: train's --inner-steps bound, predict's limit
MAX_BATCH = 100000     # tasks per call: train's --meta-batch bound
MAX_THREADS = 1024     # train's --threads bound


def _serialised(method):
    """One call at a time per learner: ml_meta is not safe for concurrent
    calls, and ctypes releases the GIL while the library runs."""
    @functools.wraps(method)
    def call(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)
    return call


def _labels(i, name, y):
    """Class labels as int32: whole, finite, >= 0 (a float label 4.7 or NaN
    would otherwise be cut to an integer silently)."""
    y = np.asarray(y)
    if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating) or y.dtype == np.bool_):
        raise L.Error(f"task {i}: {name} labels have dtype {y.dtype}, expected integers")
    if np.issubdtype(y.dtype, np.floating) and not (np.isfinite(y).all() and (y == np.round(y)).all()):
        raise L.Error(f"task {i}: {name} labels must be whole numbers (got NaN, Inf or a fraction)")
    if y.size and (y.min() < 0 or y.max() > L.INT_MAX):
        raise L.Error(f"task {i}: {name} labels must be in 0..{L.INT_MAX}")
    return np.ascontiguousarray(y.astype(np.int32).ravel())


def _finite(i, name, a, what):
    if not np.isfinite(a).all():
        raise L.Error(f"task {i}: {name} {what} have NaN or Inf values")
    return a


class MetaLearner:
    """MetaLearner(model, algo="maml", inner_lr=0.01, inner_steps=1,
    outer_lr=0.001, optimizer="adam", loss="mse" | "cross_entropy",
    max_batch=25, threads=1). The model's current parameters are theta's
    starting point."""

    def __init__(self, model, algo="maml", inner_lr=0.01, inner_steps=1, outer_lr=0.001, optimizer="adam",
                 loss=None, max_batch=25, threads=1, matching_scale=0.0, finetune="head"):
        if not isinstance(model, Model):
            raise L.Error("MetaLearner: model must be a metalearn.model.Model")
        self._lock = threading.RLock()
        inner_steps = L.int_arg("inner_steps", inner_steps, 0, MAX_STEPS)
        max_batch = L.int_arg("max_batch", max_batch, 1, MAX_BATCH)
        threads = L.int_arg("threads", threads, 0, MAX_THREADS)
        inner_lr, outer_lr = L.real_arg("inner_lr", inner_lr, 0), L.real_arg("outer_lr", outer_lr, 0)
        matching_scale = L.real_arg("matching_scale", matching_scale, 0)
        a, k = C.c_int(), C.c_int()
        if L.lib.ml_algo_parse(str(algo).encode(), C.byref(a)):
            raise L.Error(f"unknown learner '{algo}'")
        if L.lib.ml_optim_kind_parse(str(optimizer).encode(), C.byref(k)):
            raise L.Error(f"unknown optimizer '{optimizer}' (sgd, adagrad, rmsprop, adam, adamw)")
        if loss is None:
            loss = "mse" if model.outputs == 1 else "cross_entropy"
        if loss not in ("mse", "cross_entropy"):
            raise L.Error(f"loss '{loss}': expected mse or cross_entropy")
        cfg = L.MetaConfig(algo=a.value, inner_steps=int(inner_steps), inner_lr=float(inner_lr),
                           threads=int(threads))
        cfg.loss = L.LOSS_MSE if loss == "mse" else L.LOSS_CROSS_ENTROPY
        cfg.outer = L.lib.ml_optim_config_default(k.value)
        cfg.outer.lr = float(outer_lr)
        cfg.matching_scale = float(matching_scale)
        cfg.finetune_all = int(finetune == "all")  # pretrain: fine-tune the whole network at adaptation
        self.model, self.algo, self.loss, self.max_batch = model, str(algo), loss, int(max_batch)
        self._m, err = L.Meta(), L.errbuf()
        L.check(L.lib.ml_meta_init(C.byref(self._m), C.byref(model._m), C.byref(cfg), self.max_batch, err,
                                   L.ERRLEN), err)
        self._ready = True

    @classmethod
    def from_run(cls, path, threads=1):
        """The learner of a trained run (folder, or its checkpoint file):
        its learner, model and inner loop from config.json and the
        checkpoint's parameters and learned extras (Meta-SGD's rates, the
        metric heads' scalars), ready for adapt_predict / evaluate as
        `metalearn predict` adapts it."""
        from .run import RunConfig
        path = os.fspath(path)
        folder, ckpt = (os.path.dirname(path) or ".", path) if path.endswith(".safetensors") else \
            (path, os.path.join(path, "checkpoint.safetensors"))
        cfg = RunConfig.load_run(folder)
        tensors, meta = safetensors.load(ckpt, metadata=True)
        spec = meta.get("model") or cfg.model or ("cnn4" if cfg.dataset else "mlp:40,40")
        algo = meta.get("algo") or cfg.algo
        def matrix(name):  # a weight the shapes are read from: 2-D (linear) or 4-D (conv), else refused
            w = tensors.get(name)
            if w is not None and w.ndim not in (2, 4):
                raise L.Error(f"{ckpt}: tensor '{name}' has shape {list(w.shape)}, expected a weight matrix")
            return w
        if spec.startswith("cnn4"):
            w = matrix("blocks.0.conv.weight")
            shape, outputs = (w.shape[1] if w is not None else 1, 28, 28), 0
            if matrix("head.weight") is not None:
                outputs = tensors["head.weight"].shape[0]
        else:
            w = matrix("layers.0.weight")
            if w is None:
                raise L.Error(f"{ckpt}: tensor 'layers.0.weight' missing")
            last = 0
            while f"layers.{last + 1}.weight" in tensors:  # layers.0, layers.1, ... as the model names them
                last += 1
            shape, outputs = (1, 1, w.shape[1]), matrix(f"layers.{last}.weight").shape[0]
        model = Model(spec, shape, outputs)
        model.load_state_dict(tensors, strict=False)
        self = cls(model, algo, inner_lr=cfg.inner_lr, inner_steps=cfg.inner_steps,
                   loss="cross_entropy" if cfg.dataset else "mse", max_batch=1, threads=threads,
                   matching_scale=cfg.matching_scale or 0.0, finetune=cfg.finetune or "head")
        extras = (L.MetaTensor * L.META_MAX_EXTRAS)()
        n = L.lib.ml_meta_extras(C.byref(self._m.cfg), C.byref(model._m), extras)
        meta_buf = np.ctypeslib.as_array(self._m.meta, shape=(self._m.n_meta,))
        for e in extras[:n]:
            name = e.name.decode()
            if name.startswith("pretrain.head."):
                continue  # the training classes' head: evaluation makes a new one per task
            if name not in tensors or tensors[name].size != e.numel:
                raise L.Error(f"{ckpt}: tensor '{name}' missing or of another size ({algo} keeps it)")
            at = self._m.n + e.offset
            meta_buf[at:at + e.numel] = tensors[name].ravel()
        return self

    def __del__(self):
        if getattr(self, "_ready", False):
            L.lib.ml_meta_free(C.byref(self._m))
            self._ready = False

    def _tasks(self, tasks):
        """ml_task_data views of the tasks' arrays (kept alive in `keep`)."""
        tasks = list(tasks)
        if not 1 <= len(tasks) <= self.max_batch:
            raise L.Error(f"{len(tasks)} tasks given, 1..{self.max_batch} (max_batch) per call")
        c, h, w = self.model.input_shape
        per = c * h * w
        arr, keep = (L.TaskData * len(tasks))(), []
        ce = self.loss == "cross_entropy"
        for i, t in enumerate(tasks):
            for field in ("xs", "ys", "xq", "yq"):
                if not hasattr(t, field):
                    raise TypeError(f"task {i}: {type(t).__name__} has no '{field}' "
                                    "(a Task or Episode: xs, ys, xq, yq)")
            xs, xq = (_finite(i, name, safetensors.as_float32(f"task {i}: {name} inputs", v, max_dims=5), "inputs")
                      for name, v in (("support", t.xs), ("query", t.xq)))
            if ce:
                ys, yq = _labels(i, "support", t.ys), _labels(i, "query", t.yq)
            else:
                ys, yq = (_finite(i, name, safetensors.as_float32(f"task {i}: {name} targets", v).ravel(), "targets")
                          for name, v in (("support", t.ys), ("query", t.yq)))
            for name, x, y in (("support", xs, ys), ("query", xq, yq)):
                if x.size != len(y) * per or len(y) < 1:
                    raise L.Error(f"task {i}: {name} inputs {list(x.shape)} do not hold {len(y)} examples of "
                                  f"{c}x{h}x{w}")
            ways = 0
            if ce:
                ways = int(max(ys.max(), yq.max())) + 1
                # Labels are 0..N-1 of an N-way task: N is at most the support
                # set (metric learners need a support example per class) or
                # the model's outputs (a head's classes); a larger label would
                # size the scores [n, N] before the library could refuse it.
                limit = max(len(ys), getattr(self.model, "outputs", 0))
                if ways > limit:
                    raise L.Error(f"task {i}: label {ways - 1} with {len(ys)} support examples and "
                                  f"{getattr(self.model, 'outputs', 0)} model outputs: labels are 0..N-1 of an "
                                  f"N-way task")
            keep += [xs, xq, ys, yq]
            d = arr[i]
            d.n_support, d.n_query, d.ways = len(ys), len(yq), ways
            d.xs, d.xq = xs.ctypes.data_as(L.f32p), xq.ctypes.data_as(L.f32p)
            if ce:
                d.ls, d.lq = ys.ctypes.data_as(L.i32p), yq.ctypes.data_as(L.i32p)
            else:
                d.ys, d.yq = ys.ctypes.data_as(L.f32p), yq.ctypes.data_as(L.f32p)
        return arr, keep

    @_serialised
    def step(self, tasks):
        """One outer update from a list of tasks; returns the mean query loss
        after adaptation (before the update)."""
        arr, keep = self._tasks(tasks)
        loss, err = C.c_double(), L.errbuf()
        L.check(L.lib.ml_meta_step(C.byref(self._m), arr, len(arr), C.byref(loss), err, L.ERRLEN), err)
        return loss.value

    @_serialised
    def evaluate(self, tasks, steps):
        """Query loss (and accuracy for cross-entropy) of each task after 0..steps
        adaptation steps: arrays [n_tasks, steps + 1] (accuracy None for MSE)."""
        steps = L.int_arg("steps", steps, 0, MAX_STEPS)
        arr, keep = self._tasks(tasks)
        n = len(arr)
        loss = (C.c_double * (n * (steps + 1)))()
        acc = (C.c_double * (n * (steps + 1)))() if self.loss == "cross_entropy" else None
        err = L.errbuf()
        L.check(L.lib.ml_meta_evaluate(C.byref(self._m), arr, n, int(steps), loss, acc, err, L.ERRLEN), err)
        shape = (n, steps + 1)
        return (np.array(loss[:]).reshape(shape), np.array(acc[:]).reshape(shape) if acc is not None else None)

    @_serialised
    def adapt_predict(self, xs, ys, xq, steps=None):
        """Adapts a copy of theta to the support set (xs, ys) with `steps`
        gradient steps (default: inner_steps) and returns the outputs on xq:
        predicted targets [n] (regression) or class scores [n, ways]."""
        steps = self._m.cfg.inner_steps if steps is None else L.int_arg("steps", steps, 0, MAX_STEPS)
        xq = safetensors.as_float32("query inputs xq", xq, max_dims=5)
        if xq.ndim < 1:
            raise L.Error("query inputs xq: a scalar, expected [n, ...] inputs")
        nq = xq.shape[0]
        ce = self.loss == "cross_entropy"
        dummy = np.zeros(nq, np.int32 if ce else np.float32)
        task = type("T", (), {"xs": xs, "ys": ys, "xq": xq, "yq": dummy})
        arr, keep = self._tasks([task])
        ways = arr[0].ways  # the support labels' classes (the query's are placeholders)
        out = np.zeros((nq, ways) if ce else (nq,), np.float32)
        err = L.errbuf()
        L.check(L.lib.ml_meta_predict_outputs(C.byref(self._m), arr, steps, None, out.ctypes.data_as(L.f32p), err,
                                              L.ERRLEN), err)
        return out

    @_serialised
    def export(self):
        """Copies theta into the model (model.state_dict() / save() then give it)."""
        L.lib.ml_meta_export(C.byref(self._m))
        return self.model
