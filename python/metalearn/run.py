"""Runs of a learner: their configuration (RunConfig), set by name through
the library's option table, so names, bounds, defaults and messages are
exactly those of `metalearn train` and config.json; and the run itself
(Run: new, resume, train with a callback, checkpoint, evaluate), the
library's ml_run, so a run made here is the CLI's run bit for bit."""
import ctypes as C
import functools
import json
import math
import os
import threading
from pathlib import Path

import numpy as np

from . import _lib as L


def _text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # round-trips: the library parses it to the same float
    if isinstance(value, (list, tuple)):
        return ",".join(_text(v) for v in value)  # eval_shots=[1, 5] -> "1,5"
    return str(value)


class RunConfig:
    """RunConfig(config=None, **settings): the defaults of `metalearn train`,
    then a JSON config file (the keys of config.json), then the settings.
    Names are the CLI's without "--", with "_" for "-" as Python needs:
    RunConfig(algo="maml", task="sinusoid", inner_lr=0.01, iters=1000).
    Read back with cfg["inner-lr"], cfg.inner_lr or cfg.to_dict()."""

    def __init__(self, config=None, **settings):
        object.__setattr__(self, "_buf", C.create_string_buffer(L.RUN_CONFIG_BYTES))
        L.lib.ml_run_config_default(self._buf)
        if config is not None:
            err = L.errbuf()
            st = L.lib.ml_options_apply_file(C.byref(self._set()), L.path_arg(config), err, L.ERRLEN)
            if st:
                raise L.Error(err.value.decode())
        for name, value in settings.items():
            self.set(name, value)

    @classmethod
    def load_run(cls, path):
        """The settings a run folder saved (DIR/config.json over the
        defaults, then the defaults that depend on them), as eval and
        resume read them."""
        self, err = cls(), L.errbuf()
        if L.lib.ml_run_config_load_run(self._buf, L.path_arg(path), err, L.ERRLEN):
            raise L.Error(err.value.decode())
        return self

    def copy(self):
        c = RunConfig()
        C.memmove(c._buf, self._buf, L.RUN_CONFIG_BYTES)
        object.__setattr__(c, "_keep", list(getattr(self, "_keep", [])))
        return c

    def _fields(self):
        return L.RunConfigFields.from_buffer(self._buf)

    def _set_field(self, name, value):
        """A setting that is not an option (eval's eval_only, eval_val, ...)."""
        if isinstance(value, str):
            value = value.encode()
            object.__setattr__(self, "_keep", getattr(self, "_keep", []) + [value])
        setattr(self._fields(), name, value)

    def _set(self):
        # The library's table is static storage pointing into one config at
        # a time: bind it to this one before every use.
        s = L.lib.ml_run_config_option_set(self._buf)
        object.__setattr__(self, "_last_set", s)
        return s

    @staticmethod
    def options():
        """[(name, type, help, min, max)] of every setting, in the CLI's order."""
        buf = C.create_string_buffer(L.RUN_CONFIG_BYTES)
        s = L.lib.ml_run_config_option_set(buf)
        return [(o.name.decode(), L.OPT_TYPES.get(o.type, "?"), (o.help or b"").decode(), o.min, o.max)
                for o in s.options[:s.n_options]]

    def set(self, name, value):
        """Sets one setting (a CLI flag's value); None leaves the default."""
        if value is None:
            return self
        if not isinstance(name, str):
            raise TypeError(f"setting name {name!r}: expected a string such as 'inner_lr'")
        key, text = name.replace("_", "-"), _text(value)
        if "\0" in key or "\0" in text:  # C would see the text cut at the NUL
            raise ValueError(f"--{key}: embedded null character in {text!r}")
        err = L.errbuf()
        if L.lib.ml_options_set(C.byref(self._set()), key.encode(), text.encode(), err, L.ERRLEN):
            raise L.Error(err.value.decode())
        return self

    def resolve(self):
        """Fills the defaults that depend on other settings (as a run does)."""
        L.lib.ml_run_config_resolve(self._buf)
        return self

    def to_dict(self):
        """{name: value} of every setting (unset text settings are absent)."""
        p = L.lib.ml_options_to_json(C.byref(self._set()))
        if not p:
            raise L.Error("out of memory")
        try:
            return json.loads(C.string_at(p).decode())
        finally:
            L.lib.ml_free(p)

    def save(self, path):
        """Writes the settings as a JSON file (--config / RunConfig(config=...))."""
        err = L.errbuf()
        if L.lib.ml_options_write_json(C.byref(self._set()), L.path_arg(path), err, L.ERRLEN):
            raise L.Error(err.value.decode())

    def __getitem__(self, name):
        return self.to_dict().get(name.replace("_", "-"))

    def __getattr__(self, name):
        d = self.to_dict()
        key = name.replace("_", "-")
        if key in d:
            return d[key]
        if key in {o[0] for o in self.options()}:
            return None
        raise AttributeError(name)

    def __setattr__(self, name, value):
        self.set(name, value)

    def __repr__(self):
        return "RunConfig(" + ", ".join(f"{k.replace('-', '_')}={v!r}" for k, v in self.to_dict().items()) + ")"


def _live(method):
    """A method on the open run: one call at a time (ml_run is not safe for
    concurrent calls, and ctypes releases the GIL), and an error, not a
    crash, once the run is closed."""
    @functools.wraps(method)
    def call(self, *args, **kwargs):
        with self._lock:
            if not self._h:
                raise L.Error(f"run {getattr(self, '_dir', '')!s}: closed (Run.open or Run.resume it again)")
            return method(self, *args, **kwargs)
    return call


class Run:
    """A meta-learning run in a folder, as `metalearn train` and `eval` make
    and read it. Make one with Run.new(config), Run.resume(folder) or
    Run.open(folder) (evaluation only), then train(), evaluate(), close()
    (or use it as a context manager)."""

    def __init__(self, config, mode, checkpoint=None):
        if not L.HAVE_RUN:
            raise L.Error("this libmetalearn has no run API (ml_run_open): rebuild it")
        self.config, self._h, self._lock = config, C.c_void_p(), threading.RLock()
        opt = L.RunOpenOptions(checkpoint=L.path_arg(checkpoint) if checkpoint else None)
        err = L.errbuf()
        L.check(L.lib.ml_run_open(C.byref(self._h), config._buf, mode, C.byref(opt), err, L.ERRLEN), err)
        self.mode = mode
        self._dir = self.info["dir"]

    @classmethod
    def new(cls, config=None, **settings):
        """A new run from a RunConfig and/or settings (out=FOLDER, ...);
        a folder holding a run is refused unless overwrite=True."""
        cfg = (config.copy() if config is not None else RunConfig())
        for k, v in settings.items():
            cfg.set(k, v)
        cfg._set_field("resume", None)
        return cls(cfg.resolve(), L.RUN_NEW)

    @classmethod
    def resume(cls, path, **settings):
        """Continues the run in path from its checkpoint (iters=N may extend
        it), as `metalearn train --resume PATH` does: the run's config.json,
        then the settings given here."""
        path = os.fspath(path)
        cfg = RunConfig(config=os.path.join(path, "config.json"))
        for name in ("json", "quiet", "stop-at", "overwrite"):  # this call's only, as on the command line
            cfg.set(name, 0)
        note = L.errbuf()
        if L.lib.ml_run_config_legacy(cfg._buf, L.path_arg(path), note, L.ERRLEN):
            import warnings
            warnings.warn(f"{path}: {note.value.decode()}")
        for k, v in settings.items():
            cfg.set(k, v)
        cfg._set_field("resume", path)
        cfg._set_field("out", path)
        return cls(cfg.resolve(), L.RUN_RESUME)

    @classmethod
    def open(cls, path, split="test", shots=None, steps=None, tasks=None, query=None, ways=None, threads=None,
             lake_runs=None, task=None, model_only=False, eval_lr=None, eval_later_scale=None):
        """A finished run (folder, or its checkpoint file) for evaluate(),
        with `metalearn eval`'s options: shots="1,5", steps="1,10",
        tasks=N (episodes), query, ways, split="val", lake_runs=PATH|"none",
        task="csv:HELD_OUT.csv"; meta-RL runs: eval_lr=0.1 or a list of
        rates to choose from on validation tasks, eval_later_scale=0.5 for
        the steps after the first at half the rate."""
        path = Path(path)
        ckpt, folder = (path, path.parent) if path.suffix == ".safetensors" else (path / "checkpoint.safetensors", path)
        if split not in ("test", "val"):
            raise L.Error(f"split '{split}': expected test or val")
        cfg = RunConfig.load_run(folder)
        f = cfg._fields()
        for name, value in (("eval-shots", shots), ("eval-steps", steps), ("eval-tasks", tasks),
                            ("eval-query", query), ("eval-ways", ways), ("threads", threads),
                            ("eval-lr", eval_lr), ("eval-later-scale", eval_later_scale)):
            cfg.set(name, value)
        if tasks is None and f.eval_tasks < 1:  # a run trained with --eval-tasks 0: evaluation asks now
            cfg.set("eval-tasks", 40 if cfg.env else 600)
        if lake_runs == "none":
            f.lake_runs, f.lake_steps = None, 0
        elif lake_runs is not None:
            cfg.set("lake-runs", os.fspath(lake_runs))
        if task is not None:
            cfg._set_field("eval_task", str(task))
        cfg._set_field("eval_only", 1)
        cfg._set_field("model_only", int(bool(model_only)))  # predict only: no data loaded
        cfg._set_field("eval_val", int(split == "val"))
        cfg._set_field("json", 1)
        cfg._set_field("resume", None)
        cfg._set_field("out", os.fspath(folder))
        return cls(cfg, L.RUN_EVAL, checkpoint=ckpt)

    @_live
    def continual(self, counts=(10, 25, 50), test=5, train=0, orders=10, rates=None, oracle_epochs=0, first=10,
                  seed=1, whole_network=False):
        """OML's continual-learning protocol on this run's representation,
        what `metalearn eval RUN --continual 10,25,50 --json` prints: a dict
        {"continual": {..., "rows": [{"classes", "accuracy", "ci95", "first",
        "oracle", ...}], "forgetting": ...}} (sine-seq runs: "functions",
        "mse"). A non-OML run is put through it with its representation;
        self.note then says so. whole_network: the whole-network baselines
        instead (`--continual-whole-network`: the run's network from a random
        start, every layer learned online; the oracle i.i.d.). The library
        saves the result in the run folder (continual.json, or
        continual_whole_network.json), as the CLI does."""
        o = L.ContinualOptions()
        L.lib.ml_continual_options_default(C.byref(o))
        counts = list(counts)
        if len(counts) > 32 or (rates is not None and len(rates) > 16):
            raise L.Error("continual: at most 32 class counts and 16 rates")
        for i, c in enumerate(counts):
            o.counts[i] = int(c)
        o.n_counts = len(counts)
        for i, r in enumerate(rates or ()):
            o.rates[i] = float(r)
        o.n_rates = len(rates or ())
        o.test_per_class, o.train_per_class, o.orders = int(test), int(train), int(orders)
        o.oracle_epochs, o.forget_classes, o.seed = int(oracle_epochs), int(first), int(seed)
        o.whole_network = int(bool(whole_network))
        res, err, note = L.ContinualResult(), L.errbuf(), L.errbuf()
        st = L.lib.ml_run_continual(self._h, C.byref(o), C.byref(res), note, L.ERRLEN, err, L.ERRLEN)
        self.note = note.value.decode("utf-8", "replace")
        L.check(st, err)
        algo = str(self.info["algo"]).encode()
        need = L.lib.ml_continual_to_json(C.byref(res), algo, None, 0)
        buf = C.create_string_buffer(need + 1)
        L.lib.ml_continual_to_json(C.byref(res), algo, buf, need + 1)
        return json.loads(buf.value.decode())

    @_live
    def predict(self, xs, ys, xq, steps=None):
        """Adapts the run's learned initialisation to a support set (xs, ys)
        with `steps` steps (default: the run's largest eval step) and returns
        its outputs on xq: predicted targets [n] (regression) or class scores
        [n, ways] (few-shot), what `metalearn predict` computes."""
        if not L.HAVE_RUN_PREDICT:
            raise L.Error("this libmetalearn has no ml_run_predict: rebuild it")
        from .learner import MetaLearner
        if not hasattr(self, "_shape"):  # per-example input shape and loss, from the checkpoint
            ml = MetaLearner.from_run(self.info["dir"])
            self._shape, self._loss = ml.model.input_shape, ml.loss
        steps = L.lib.ml_run_default_steps(self._h) if steps is None else int(steps)
        view = MetaLearner.__new__(MetaLearner)
        view.model = type("M", (), {"input_shape": self._shape})
        view.loss, view.max_batch = self._loss, 1
        xq = np.asarray(xq, np.float32)
        ce = self._loss == "cross_entropy"
        task = type("T", (), {"xs": xs, "ys": ys, "xq": xq, "yq": np.zeros(len(xq), np.int32 if ce else np.float32)})
        arr, keep = view._tasks([task])
        ways = arr[0].ways
        out = np.zeros((len(xq), ways) if ce else (len(xq),), np.float32)
        pred = np.zeros(len(xq), np.int32)
        err = L.errbuf()
        L.check(L.lib.ml_run_predict(self._h, arr, steps, None, pred.ctypes.data_as(L.i32p) if ce else None,
                                     out.ctypes.data_as(L.f32p), err, L.ERRLEN), err)
        return out

    def close(self):
        lock = getattr(self, "_lock", None)
        if lock is None:
            return
        with lock:
            if self._h:
                L.lib.ml_run_close(self._h)
                self._h = C.c_void_p()

    __del__ = close

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    @_live
    def info(self):
        """{dir, algo, model_spec, n_params, iteration, iters, ...}."""
        i = L.RunInfo()
        L.lib.ml_run_get_info(self._h, C.byref(i))
        return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in ((f[0], getattr(i, f[0]))
                                                                            for f in L.RunInfo._fields_)}

    @property
    @_live
    def iteration(self):
        return L.lib.ml_run_iteration(self._h)

    @property
    def dir(self):
        return Path(self._dir)  # known after close too

    @_live
    def step(self):
        """One outer iteration (logging and checkpoints as train does); its loss."""
        loss, err = C.c_double(), L.errbuf()
        L.check(L.lib.ml_run_step(self._h, C.byref(loss), err, L.ERRLEN), err)
        return loss.value

    @_live
    def train(self, callback=None):
        """Trains to the run's iters (or stop_at), checkpointing as the CLI
        does. callback(progress) runs after every iteration with a dict
        (iteration, total, loss, log_loss, logged, rate); returning True
        stops the run (checkpoint saved). Ctrl-C (KeyboardInterrupt) also
        saves the checkpoint, then raises; Run.resume(folder) continues."""
        state = {"exc": None}

        def on_iteration(user, p):
            try:
                if callback is not None:
                    q = p.contents
                    d = {f[0]: getattr(q, f[0]) for f in L.RunProgress._fields_}
                    if math.isnan(d["log_loss"]):
                        d["log_loss"] = None
                    return 1 if callback(d) else 0
                return 0
            except BaseException as e:  # KeyboardInterrupt included: stop, checkpoint, re-raise below
                state["exc"] = e
                return 1

        L.use_alt_signal_stack()
        fn = L.RUN_ON_ITERATION(on_iteration)
        cb = L.RunCallbacks(on_iteration=fn)
        err = L.errbuf()
        try:
            st = L.lib.ml_run_train(self._h, C.byref(cb), err, L.ERRLEN)
        except KeyboardInterrupt:
            st = L.ERR_INTERRUPTED  # arrived after the last callback: save, then raise
            self.save()
            raise
        if state["exc"] is not None:
            raise state["exc"]
        if st != L.ERR_INTERRUPTED:
            L.check(st, err)
        return self.iteration

    @_live
    def save(self):
        """Writes DIR/checkpoint.safetensors at the current iteration."""
        err = L.errbuf()
        L.check(L.lib.ml_run_save_checkpoint(self._h, err, L.ERRLEN), err)

    @_live
    def evaluate(self):
        """The final evaluation `metalearn eval` prints: a dict as its --json
        line (a new or resumed run: DIR/eval.json, which it also writes).
        The printed table is kept in self.table."""
        size, buf = C.c_size_t(), C.c_void_p()
        stream = L.libc.open_memstream(C.byref(buf), C.byref(size))
        if not stream:
            raise L.Error("out of memory")
        err = L.errbuf()
        try:
            st = L.lib.ml_run_evaluate(self._h, C.byref(L.RunEvalOptions(out=stream)), err, L.ERRLEN)
        finally:
            L.libc.fclose(stream)
            text = C.string_at(buf, size.value).decode("utf-8", "replace") if buf else ""
            L.libc.free(buf)
        self.table = text
        L.check(st, err)
        if self.mode == L.RUN_EVAL:
            lines = [s for s in text.splitlines() if s.startswith("{")]
            if not lines:
                raise L.Error("evaluation printed no JSON line")
            return json.loads(lines[-1])
        return json.loads((self.dir / "eval.json").read_text())


def train_rl(config=None, resume=None, callback=None, **settings):
    """A meta-RL run (env="nav2d" | "bandit:K" | "nav2d-rot") trained to its
    iters: Run.new(config, **settings) or Run.resume(resume, **settings),
    then train(callback) (a shorthand: the Run does the same). Returns the
    folder."""
    if resume is not None:
        run = Run.resume(resume, **settings)
    else:
        cfg = config.copy() if config is not None else RunConfig()
        if cfg.algo == "supervised" and "algo" not in settings:
            cfg.set("algo", "maml")
        run = Run.new(cfg, **settings)
    with run:
        run.train(callback)
        return run.dir


def evaluate_rl(path, steps="0,1,2,3", tasks=40, threads=None, eval_lr=None, split="test", eval_later_scale=None):
    """Mean return of the meta-RL run in path before and after each count of
    adaptation steps on `tasks` test tasks, with 95% intervals, as `metalearn
    eval PATH --json` gives it: {"steps": [...], "return": [...], "ci95":
    [...], "eval_lr": ...} (also written to PATH/eval.json). A shorthand for
    Run.open(path, ...).evaluate()."""
    with Run.open(path, steps=steps, tasks=tasks, threads=threads, eval_lr=eval_lr, split=split,
                  eval_later_scale=eval_later_scale) as run:
        return run.evaluate()
