"""Runs of a learner: their configuration (RunConfig), set by name through
the library's option table, so names, bounds, defaults and messages are
exactly those of `metalearn train` and config.json."""
import ctypes as C
import json

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
        key = name.replace("_", "-")
        err = L.errbuf()
        if L.lib.ml_options_set(C.byref(self._set()), key.encode(), _text(value).encode(), err, L.ERRLEN):
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
