"""Meta-reinforcement learning (metalearn/rl.h): MAML-RL on the library's C
environments (nav2d, bandit:K, nav2d-rot), with a TRPO or Adam outer step.

    ml = MetaRL(env="nav2d", algo="maml", outer="trpo", threads=2)
    for _ in range(10):
        stats = ml.step()              # dict: iter, train_return, valid_return, ...
    r = ml.evaluate(tasks=40, steps=3)  # [tasks, steps + 1] returns, same tasks for any run
    ml.save("nav.safetensors")

Every setting is a field of ml_rl_config (defaults: pytorch-maml-rl's 2d-navigation)."""
import ctypes as C
import threading

import numpy as np

from . import _lib as L

ALGOS = {"maml": 0, "fomaml": 1, "pretrain": 2, "oracle": 3, "random": 4}
OUTERS = {"trpo": 0, "adam": 1}
MAX_HIDDEN = 4
MAX_EVAL_TASKS = 10000000  # eval's --eval-tasks bound
MAX_EVAL_STEPS = 1000


class RlConfig(C.Structure):
    _fields_ = [("env", C.c_char_p), ("algo", C.c_int), ("outer", C.c_int), ("n_hidden", C.c_int),
                ("hidden", C.c_int * MAX_HIDDEN), ("init_std", C.c_double), ("rollouts", C.c_int),
                ("horizon", C.c_int), ("meta_batch", C.c_int), ("inner_steps", C.c_int), ("inner_lr", C.c_double),
                ("gamma", C.c_double), ("gae_lambda", C.c_double), ("max_kl", C.c_double),
                ("cg_damping", C.c_double), ("cg_iters", C.c_int), ("ls_steps", C.c_int), ("ls_ratio", C.c_double),
                ("outer_lr", C.c_double), ("threads", C.c_int), ("seed", C.c_uint64)]


class RlStats(C.Structure):
    _fields_ = [("iter", C.c_int64), ("train_return", C.c_double), ("valid_return", C.c_double),
                ("loss_before", C.c_double), ("loss_after", C.c_double), ("kl_after", C.c_double),
                ("step_size", C.c_double)]


_d = L._decl
_d("ml_rl_config_default", RlConfig)
_d("ml_rl_create", L.status, C.POINTER(RlConfig), C.POINTER(C.c_void_p), C.c_char_p, C.c_size_t)
_d("ml_rl_destroy", None, C.c_void_p)
_d("ml_rl_step", L.status, C.c_void_p, C.POINTER(RlStats))
_d("ml_rl_evaluate", L.status, C.c_void_p, C.c_int, C.c_int, C.c_uint64, C.POINTER(C.c_double))
_d("ml_rl_evaluate_lr", L.status, C.c_void_p, C.c_int, C.c_int, C.c_uint64, C.c_double, C.POINTER(C.c_double))
_d("ml_rl_params", L.f32p, C.c_void_p)
_d("ml_rl_iter", C.c_int64, C.c_void_p)
_d("ml_rl_save", L.status, C.c_void_p, C.c_char_p)
_d("ml_rl_load", L.status, C.c_void_p, C.c_char_p)
_d("ml_rl_n_params", C.c_int64, C.c_void_p)


class MetaRL:
    """MetaRL(env="nav2d", algo="maml", outer="trpo", hidden=(64, 64), **fields of ml_rl_config)."""

    def __init__(self, env="nav2d", algo="maml", outer="trpo", hidden=(64, 64), **settings):
        if algo not in ALGOS:
            raise L.Error(f"algo '{algo}' is not one of {', '.join(ALGOS)}")
        if outer not in OUTERS:
            raise L.Error(f"outer '{outer}' is not one of {', '.join(OUTERS)}")
        if isinstance(hidden, (str, bytes)) or np.ndim(hidden) != 1 or not 1 <= len(hidden) <= MAX_HIDDEN:
            raise L.Error(f"hidden: 1 to {MAX_HIDDEN} layer widths, e.g. (64, 64); got {hidden!r}")
        hidden = [L.int_arg("hidden", w, 1, 1 << 16) for w in hidden]
        cfg = L.lib.ml_rl_config_default()
        self._env = str(env).encode()
        cfg.env, cfg.algo, cfg.outer = self._env, ALGOS[algo], OUTERS[outer]
        cfg.n_hidden = len(hidden)
        for i, w in enumerate(hidden):
            cfg.hidden[i] = int(w)
        names = {f[0] for f in RlConfig._fields_} - {"env", "algo", "outer", "n_hidden", "hidden"}
        for k, v in settings.items():
            if k not in names:
                raise L.Error(f"unknown setting '{k}' (known: {', '.join(sorted(names))})")
            kind = dict(RlConfig._fields_)[k]
            if kind is C.c_double:
                v = L.real_arg(k, v)
            elif kind is C.c_uint64:
                v = L.seed_arg(k, v)
            else:  # c_int: ctypes would wrap a larger value silently
                v = L.int_arg(k, v, -L.INT_MAX, L.INT_MAX)
            setattr(cfg, k, v)
        self._h = C.c_void_p()
        err = L.errbuf()
        L.check(L.lib.ml_rl_create(C.byref(cfg), C.byref(self._h), err, L.ERRLEN), err)
        self._cfg = cfg
        self._lock = threading.RLock()  # ml_rl is one caller's at a time; ctypes releases the GIL

    def __del__(self):
        if getattr(self, "_h", None):
            L.lib.ml_rl_destroy(self._h)
            self._h = None

    @property
    def iteration(self):
        with self._lock:
            return L.lib.ml_rl_iter(self._h)

    def step(self):
        s = RlStats()
        with self._lock:
            st = L.lib.ml_rl_step(self._h, C.byref(s))
        L.check(st, what="rl step")
        return {f[0]: getattr(s, f[0]) for f in RlStats._fields_}

    def evaluate(self, tasks=40, steps=3, seed=12345, lr=None):
        """Returns [tasks, steps + 1] before and after each adaptation step,
        taken at lr (default: the inner rate)."""
        tasks = L.int_arg("tasks", tasks, 1, MAX_EVAL_TASKS)
        steps, seed = L.int_arg("steps", steps, 0, MAX_EVAL_STEPS), L.seed_arg("seed", seed)
        lr = None if lr is None else L.real_arg("lr", lr, 0)
        out = np.zeros((tasks, steps + 1), np.float64)
        ptr = out.ctypes.data_as(C.POINTER(C.c_double))
        with self._lock:
            if lr is None:
                st = L.lib.ml_rl_evaluate(self._h, tasks, steps, seed, ptr)
            else:
                st = L.lib.ml_rl_evaluate_lr(self._h, tasks, steps, seed, lr, ptr)
        L.check(st, what="rl evaluate")
        return out

    def params(self):
        """The meta-parameters, one flat float32 array (a copy)."""
        with self._lock:
            n = L.lib.ml_rl_n_params(self._h)
            return np.ctypeslib.as_array(L.lib.ml_rl_params(self._h), shape=(n,)).copy()

    def save(self, path):
        with self._lock:
            st = L.lib.ml_rl_save(self._h, L.path_arg(path))
        L.check(st, what=f"{path}")

    def load(self, path):
        with self._lock:
            st = L.lib.ml_rl_load(self._h, L.path_arg(path))
        L.check(st, what=f"{path}")
        return self
