"""ctypes declarations of libmetalearn's public C API (include/metalearn/*.h).

Why ctypes: the package needs no compile step and no CPython ABI (one
package works with any python3 and any build of the library), and every
call it makes is coarse (a file, an episode, a training step), so the
per-call overhead of ctypes does not matter. Structs here mirror the C
headers field for field; tests check their sizes against the library.

The library is found in this order: $ML_LIBRARY (a path), next to the
package (an installed prefix: PREFIX/lib/libmetalearn.so), the build tree
of the source checkout (build/libmetalearn.so), then the system's search
path."""
import ctypes as C
import ctypes.util
import math
import os
from pathlib import Path

ERRLEN = 1024


class Error(Exception):
    """A libmetalearn call failed; the message is the library's one-line error."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


def _candidates():
    env = os.environ.get("ML_LIBRARY")
    if env:
        yield env
        return
    here = Path(__file__).resolve().parent
    names = ("libmetalearn.so", "libmetalearn.so.0")
    # Installed: the package sits in PREFIX/lib/python3/dist-packages/metalearn
    # (or PREFIX/share/...): look in the package folder and in PREFIX/lib*.
    for d in [here] + [p / sub for p in list(here.parents)[:4] for sub in ("lib", "lib64", "")]:
        for n in names:
            yield str(d / n)
    # Source checkout: python/metalearn -> the repository's build trees.
    repo = here.parents[1]
    for b in ("build", "build-release"):
        yield str(repo / b / "libmetalearn.so")
    found = ctypes.util.find_library("metalearn")
    if found:
        yield found


def _load():
    tried = []
    for path in _candidates():
        if os.path.sep in path and not os.path.exists(path):
            tried.append(path)
            continue
        try:
            return C.CDLL(path)
        except OSError as e:
            tried.append(f"{path} ({e})")
    raise ImportError("metalearn: libmetalearn.so not found; build it (cmake --build build) or set "
                      "ML_LIBRARY=/path/to/libmetalearn.so. Tried: " + ", ".join(tried))


# libgomp reads OMP_WAIT_POLICY when it is loaded: within-op threads must not
# spin when the other cores are busy (the CLI sets the same; 5-20x measured),
# except briefly (GOMP_SPINCOUNT, ~30 us) for the next region of the same task.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    os.environ.setdefault("GOMP_SPINCOUNT", "3000")
lib = _load()

# ---- core.h -----------------------------------------------------------------
status = C.c_int
i64p = C.POINTER(C.c_int64)
f32p = C.POINTER(C.c_float)
i32p = C.POINTER(C.c_int32)


class Rng(C.Structure):
    _fields_ = [("s", C.c_uint64 * 4)]


PROGRESS_FN = C.CFUNCTYPE(None, C.c_void_p, C.c_char_p, C.c_int64, C.c_int64)


class Progress(C.Structure):
    _fields_ = [("fn", PROGRESS_FN), ("user", C.c_void_p)]


def _decl(name, restype, *argtypes):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


_decl("ml_status_text", C.c_char_p, status)
_decl("ml_version", C.c_char_p)
_decl("ml_rng_seed", None, C.POINTER(Rng), C.c_uint64)
_decl("ml_free", None, C.c_void_p)
_decl("ml_dist_rank", C.c_int)
_decl("ml_dist_size", C.c_int)


def check(st, err=None, what=""):
    """Raises Error with the library's message (err) when st is not ML_OK."""
    if st == 0:
        return
    msg = err.value.decode("utf-8", "replace") if err is not None and err.value else ""
    if not msg:
        msg = lib.ml_status_text(st).decode()
        if what:
            msg = f"{what}: {msg}"
    raise Error(msg, st)


def errbuf():
    return C.create_string_buffer(ERRLEN)


def path_arg(path):
    b = os.fsencode(os.fspath(path))
    if b"\0" in b:  # C would see the path cut at the NUL: a different file
        raise ValueError(f"path {os.fspath(path)!r}: embedded null byte")
    return b


INT_MAX = 2**31 - 1


def int_arg(name, value, lo=0, hi=INT_MAX):
    """value as a Python int in lo..hi, for a C int: ctypes would wrap a
    larger one silently (2**32 + 5 ways is 5) or refuse a float with its own
    exception, so check here and name the argument. Whole floats (5.0) pass."""
    import numbers
    integral = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not integral and not (isinstance(value, numbers.Real) and not isinstance(value, bool)
                             and float(value).is_integer()):
        raise TypeError(f"{name}: expected an integer, got {value!r}")
    v = int(value)
    if not lo <= v <= hi:
        raise Error(f"{name} = {v}: expected an integer in {lo}..{hi}")
    return v


def seed_arg(name, value):
    """A seed: any integer, taken modulo 2**64 (as the library's u64)."""
    return int_arg(name, value, -math.inf, math.inf) & (2**64 - 1)


def real_arg(name, value, lo=-math.inf):
    """value as a finite float >= lo (a NaN rate would show only as a NaN
    loss after training began)."""
    import numbers
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number, got {value!r}")
    v = float(value)
    if not (math.isfinite(v) and v >= lo):
        raise Error(f"{name} = {v}: expected a finite number" + (f" >= {lo:g}" if lo > -math.inf else ""))
    return v


# ---- io.h: safetensors --------------------------------------------------------
ST_MAX_DIMS = 4


class StTensor(C.Structure):
    _fields_ = [("name", C.c_char_p), ("ndim", C.c_int), ("shape", C.c_int64 * ST_MAX_DIMS), ("data", f32p)]


class StEntry(C.Structure):
    _fields_ = [("name", C.c_char_p), ("ndim", C.c_int), ("shape", C.c_int64 * ST_MAX_DIMS),
                ("numel", C.c_int64), ("data", f32p)]


class Safetensors(C.Structure):
    _fields_ = [("n", C.c_int), ("entries", C.POINTER(StEntry)), ("n_meta", C.c_int),
                ("meta_keys", C.POINTER(C.c_char_p)), ("meta_values", C.POINTER(C.c_char_p)),
                ("blob", C.c_void_p)]


_decl("ml_safetensors_write", status, C.c_char_p, C.POINTER(StTensor), C.c_int, C.POINTER(C.c_char_p),
      C.POINTER(C.c_char_p), C.c_int, C.c_char_p, C.c_size_t)
_decl("ml_safetensors_read", status, C.c_char_p, C.POINTER(Safetensors), C.c_char_p, C.c_size_t)
_decl("ml_safetensors_free", None, C.POINTER(Safetensors))

# ---- images.h: image sets and episodes ---------------------------------------
class ImageOptions(C.Structure):
    _fields_ = [("size", C.c_int), ("invert", C.c_int), ("keep_raw", C.c_int), ("max_bytes", C.c_uint64),
                ("max_pixels", C.c_int64)]


class ImageSet(C.Structure):
    _fields_ = [("n", C.c_int64), ("size", C.c_int), ("x", f32p), ("y", i32p), ("n_classes", C.c_int),
                ("class_start", i64p), ("class_alphabet", i32p), ("class_names", C.POINTER(C.c_char_p)),
                ("n_alphabets", C.c_int), ("alphabet_names", C.POINTER(C.c_char_p)),
                ("image_names", C.POINTER(C.c_char_p)), ("labelled", C.c_int), ("raw_h", C.c_int),
                ("raw_w", C.c_int), ("raw", C.POINTER(C.c_uint8)), ("strings", C.c_char_p),
                ("codes", C.POINTER(C.c_uint8)),
                ("escapes", C.POINTER(C.c_uint16)), ("escape_start", i64p), ("palette", f32p), ("n_palette", C.c_int)]


class ClassRef(C.Structure):
    _fields_ = [("cls", C.c_int32), ("rot", C.c_int32)]


class ClassList(C.Structure):
    _fields_ = [("n", C.c_int), ("items", C.POINTER(ClassRef))]


SPLIT_COUNT = 3


class SplitSpec(C.Structure):
    _fields_ = [("unit", C.c_int), ("counts", C.c_int * SPLIT_COUNT), ("fractions", C.c_double * SPLIT_COUNT)]


class ClassSplit(C.Structure):
    _fields_ = [("unit", C.c_int), ("part", ClassList * SPLIT_COUNT)]


class Augment(C.Structure):
    _fields_ = [("rotate_deg", C.c_double), ("scale_min", C.c_double), ("scale_max", C.c_double),
                ("translate", C.c_double), ("flip_h", C.c_double), ("flip_v", C.c_double)]


class Episode(C.Structure):
    _fields_ = [("ways", C.c_int), ("shots", C.c_int), ("queries", C.c_int), ("size", C.c_int),
                ("xs", f32p), ("ys", i32p), ("xq", f32p), ("yq", i32p), ("classes", C.POINTER(ClassRef)),
                ("class_index", i32p), ("support_index", i64p), ("query_index", i64p)]


_decl("ml_omniglot_load", status, C.POINTER(C.c_char_p), C.c_int, C.POINTER(ImageOptions), C.POINTER(ImageSet),
      C.c_char_p, C.c_size_t)
_decl("ml_image_folder_load", status, C.c_char_p, C.POINTER(ImageOptions), C.POINTER(ImageSet), C.c_char_p,
      C.c_size_t)
_decl("ml_image_set_free", None, C.POINTER(ImageSet))
_decl("ml_class_list_free", None, C.POINTER(ClassList))
_decl("ml_class_list_all", status, C.POINTER(ImageSet), C.POINTER(ClassList))
_decl("ml_class_list_expand_rotations", status, C.POINTER(ClassList), C.POINTER(ClassList))
_decl("ml_class_split_free", None, C.POINTER(ClassSplit))
_decl("ml_class_split_make", status, C.POINTER(ImageSet), C.POINTER(SplitSpec), C.POINTER(Rng),
      C.POINTER(ClassSplit), C.c_char_p, C.c_size_t)
_decl("ml_class_split_read_json", status, C.c_char_p, C.POINTER(ImageSet), C.POINTER(ClassSplit), C.c_char_p,
      C.c_size_t)
_decl("ml_episode_init", status, C.POINTER(Episode), C.c_int, C.c_int, C.c_int, C.c_int)
_decl("ml_episode_free", None, C.POINTER(Episode))
_decl("ml_episode_sample", status, C.POINTER(Episode), C.POINTER(ImageSet), C.POINTER(ClassList),
      C.POINTER(Augment), C.POINTER(Rng), C.c_char_p, C.c_size_t)
_decl("ml_episode_init_drawn", status, C.POINTER(Episode), C.c_int, C.c_int, C.c_int, C.c_int)
_decl("ml_episode_draw_weighted", status, C.POINTER(Episode), C.POINTER(ImageSet), C.POINTER(ClassList), f32p,
      C.POINTER(Rng), C.c_char_p, C.c_size_t)
_decl("ml_episode_fill", status, C.POINTER(Episode), C.POINTER(ImageSet), f32p, f32p)
_decl("ml_image_set_compact", status, C.POINTER(ImageSet))

# ---- tasks.h: regression task families ------------------------------------------
TASK_INFO_MAX = 24  # metalearn/tasks.h ML_TASK_INFO_MAX


class CsvTask(C.Structure):
    _fields_ = [("name", C.c_char_p), ("n_support", C.c_int), ("n_query", C.c_int), ("xs", f32p), ("ys", f32p),
                ("xq", f32p), ("yq", f32p)]


class TaskFamily(C.Structure):
    _fields_ = [("kind", C.c_int), ("in_dim", C.c_int), ("path", C.c_char_p), ("n_tasks", C.c_int),
                ("tasks", C.POINTER(CsvTask)), ("x", f32p), ("y", f32p), ("names", C.c_void_p),
                ("draw_from", i32p), ("n_draw_from", C.c_int), ("amp_min", C.c_double), ("amp_max", C.c_double)]


class RegressionTask(C.Structure):
    _fields_ = [("k", C.c_int), ("q", C.c_int), ("in_dim", C.c_int), ("k_cap", C.c_int), ("q_cap", C.c_int),
                ("xs", f32p), ("ys", f32p), ("xq", f32p), ("yq", f32p), ("info", C.c_double * TASK_INFO_MAX),
                ("task_index", C.c_int)]


_decl("ml_task_family_init", status, C.POINTER(TaskFamily), C.c_char_p, C.c_char_p, C.c_size_t)
_decl("ml_task_family_free", None, C.POINTER(TaskFamily))
_decl("ml_task_family_n_info", C.c_int, C.POINTER(TaskFamily))
_decl("ml_task_family_max_points", None, C.POINTER(TaskFamily), C.POINTER(C.c_int), C.POINTER(C.c_int))
_decl("ml_task_family_task_name", C.c_char_p, C.POINTER(TaskFamily), C.c_int)
_decl("ml_regression_task_alloc", status, C.POINTER(RegressionTask), C.c_int, C.c_int, C.c_int)
_decl("ml_regression_task_free", None, C.POINTER(RegressionTask))
_decl("ml_task_sample", status, C.POINTER(TaskFamily), C.POINTER(Rng), C.c_int, C.c_int,
      C.POINTER(RegressionTask), C.c_char_p, C.c_size_t)
_decl("ml_task_get_csv", status, C.POINTER(TaskFamily), C.c_int, C.c_int, C.c_int, C.POINTER(RegressionTask),
      C.c_char_p, C.c_size_t)
_decl("ml_csv_read_numbers", status, C.c_char_p, C.POINTER(f32p), i64p, C.POINTER(C.c_int), C.c_char_p,
      C.c_size_t)

# ---- tensor.h / nn.h: models and their forward pass ------------------------------
MAX_DIMS = 4
MAX_HIDDEN = 8
MAX_PARAMS = 32
PARAM_NAME_LEN = 48
MODEL_MLP, MODEL_CNN4 = 0, 1
INIT_KINDS = {"torch": 0, "kaiming": 1, "xavier": 2}


class Tensor(C.Structure):
    _fields_ = [("data", f32p), ("shape", C.c_int64 * MAX_DIMS), ("ndim", C.c_int), ("numel", C.c_int64),
                ("node", C.c_void_p), ("id", C.c_uint32)]


class ModelSpec(C.Structure):
    _fields_ = [("kind", C.c_int), ("in_c", C.c_int), ("in_h", C.c_int), ("in_w", C.c_int), ("n_out", C.c_int),
                ("n_hidden", C.c_int), ("hidden", C.c_int * MAX_HIDDEN), ("filters", C.c_int), ("blocks", C.c_int),
                ("bn_momentum", C.c_float), ("bn_eps", C.c_float)]


class ParamInfo(C.Structure):
    _fields_ = [("name", C.c_char * PARAM_NAME_LEN), ("ndim", C.c_int), ("shape", C.c_int64 * MAX_DIMS),
                ("offset", C.c_int64), ("numel", C.c_int64)]


class Model(C.Structure):
    _fields_ = [("spec", ModelSpec), ("n_params", C.c_int), ("params", ParamInfo * MAX_PARAMS),
                ("n_floats", C.c_int64), ("data", f32p), ("n_buffers", C.c_int),
                ("buffers", ParamInfo * MAX_PARAMS), ("n_buffer_floats", C.c_int64), ("buffer_data", f32p)]


TensorP = C.POINTER(Tensor)
_decl("ml_ctx_create", C.c_void_p, C.c_size_t)
_decl("ml_ctx_destroy", None, C.c_void_p)
_decl("ml_ctx_reset", None, C.c_void_p)
_decl("ml_ctx_set_recording", C.c_int, C.c_void_p, C.c_int)
_decl("ml_ctx_error", C.c_char_p, C.c_void_p)
_decl("ml_ctx_clear_error", None, C.c_void_p)
_decl("ml_tensor_wrap", TensorP, C.c_void_p, f32p, C.c_int, i64p)
_decl("ml_model_spec_parse", status, C.c_char_p, C.POINTER(ModelSpec), C.c_char_p, C.c_size_t)
_decl("ml_model_init", status, C.POINTER(Model), C.POINTER(ModelSpec), C.c_char_p, C.c_size_t)
_decl("ml_model_free", None, C.POINTER(Model))
_decl("ml_model_init_params", None, C.POINTER(Model), C.c_int, C.POINTER(Rng))
_decl("ml_model_wrap", None, C.c_void_p, C.POINTER(Model), f32p, C.POINTER(TensorP))
_decl("ml_model_forward", TensorP, C.c_void_p, C.POINTER(Model), C.POINTER(TensorP), TensorP, C.c_int, C.c_int)

# ---- options.h / run.h: settings by name ----------------------------------------
# ml_run_config is opaque here: the package reads and writes it only through
# the library's option table, so it needs just a buffer at least its size
# (test_layout checks sizeof(ml_run_config) fits).
RUN_CONFIG_BYTES = 4096
OPT_TYPES = {0: "int", 1: "float", 2: "string", 3: "flag", 4: "u64"}


class Option(C.Structure):
    _fields_ = [("name", C.c_char_p), ("type", C.c_int), ("target", C.c_void_p), ("help", C.c_char_p),
                ("min", C.c_double), ("max", C.c_double)]


class OptionSet(C.Structure):
    _fields_ = [("name", C.c_char_p), ("synopsis", C.c_char_p), ("about", C.c_char_p),
                ("options", C.POINTER(Option)), ("n_options", C.c_int)]


_decl("ml_run_config_default", None, C.c_void_p)
_decl("ml_run_config_option_set", OptionSet, C.c_void_p)
_decl("ml_run_config_resolve", None, C.c_void_p)
_decl("ml_options_set", C.c_int, C.POINTER(OptionSet), C.c_char_p, C.c_char_p, C.c_char_p, C.c_size_t)
_decl("ml_options_apply_file", C.c_int, C.POINTER(OptionSet), C.c_char_p, C.c_char_p, C.c_size_t)
_decl("ml_options_write_json", C.c_int, C.POINTER(OptionSet), C.c_char_p, C.c_char_p, C.c_size_t)
_decl("ml_options_to_json", C.c_void_p, C.POINTER(OptionSet))

# ---- optim.h / meta.h: the meta-learners ------------------------------------------
class OptimConfig(C.Structure):
    _fields_ = [("kind", C.c_int), ("lr", C.c_double), ("momentum", C.c_double), ("dampening", C.c_double),
                ("nesterov", C.c_int), ("weight_decay", C.c_double), ("beta1", C.c_double), ("beta2", C.c_double),
                ("eps", C.c_double), ("alpha", C.c_double), ("centered", C.c_int), ("lr_decay", C.c_double),
                ("initial_accumulator_value", C.c_double)]


class Optim(C.Structure):
    _fields_ = [("cfg", OptimConfig), ("n", C.c_int64), ("step", C.c_int64), ("state0", f32p), ("state1", f32p),
                ("state2", f32p)]


class MetaConfig(C.Structure):
    _fields_ = [("algo", C.c_int), ("loss", C.c_int), ("inner_steps", C.c_int), ("inner_lr", C.c_float),
                ("outer", OptimConfig), ("threads", C.c_int), ("pretrain_classes", C.c_int),
                ("finetune_all", C.c_int), ("matching_scale", C.c_float), ("low_memory", C.c_int),
                ("exact_first_block", C.c_int)]


class Meta(C.Structure):
    _fields_ = [("cfg", MetaConfig), ("model", C.POINTER(Model)), ("n", C.c_int64), ("n_meta", C.c_int64),
                ("meta", f32p), ("grad", f32p), ("task_grads", f32p), ("task_loss", C.POINTER(C.c_double)),
                ("task_status", C.POINTER(C.c_int)), ("max_batch", C.c_int), ("opt", Optim), ("pool", C.c_void_p),
                ("workers", C.c_void_p), ("steps_done", C.c_int64), ("local_steps", C.c_int), ("progress", Progress),
                ("progress_done", C.c_int64), ("progress_total", C.c_int64), ("fused_route", C.c_int),
                ("task_sum", C.c_void_p),
                ("prepare_task", C.c_void_p), ("prepare_user", C.c_void_p)]


class TaskData(C.Structure):
    _fields_ = [("n_support", C.c_int), ("n_query", C.c_int), ("ways", C.c_int), ("xs", f32p), ("xq", f32p),
                ("ys", f32p), ("yq", f32p), ("ls", i32p), ("lq", i32p),
                ("classes", i32p), ("n_remember", C.c_int), ("xr", f32p), ("lr", i32p)]


LOSS_MSE, LOSS_CROSS_ENTROPY = 0, 1
_decl("ml_optim_kind_parse", C.c_int, C.c_char_p, C.POINTER(C.c_int))
_decl("ml_optim_config_default", OptimConfig, C.c_int)
_decl("ml_algo_parse", C.c_int, C.c_char_p, C.POINTER(C.c_int))
_decl("ml_algo_has_inner_steps", C.c_int, C.c_int)
_decl("ml_algo_check_loss", status, C.c_int, C.c_int, C.c_char_p, C.c_size_t)
_decl("ml_meta_init", status, C.POINTER(Meta), C.POINTER(Model), C.POINTER(MetaConfig), C.c_int, C.c_char_p,
      C.c_size_t)
_decl("ml_meta_free", None, C.POINTER(Meta))
_decl("ml_meta_step", status, C.POINTER(Meta), C.POINTER(TaskData), C.c_int, C.POINTER(C.c_double), C.c_char_p,
      C.c_size_t)
_decl("ml_meta_evaluate", status, C.POINTER(Meta), C.POINTER(TaskData), C.c_int, C.c_int, C.POINTER(C.c_double),
      C.POINTER(C.c_double), C.c_char_p, C.c_size_t)
_decl("ml_meta_predict_outputs", status, C.POINTER(Meta), C.POINTER(TaskData), C.c_int, i32p, f32p, C.c_char_p,
      C.c_size_t)
_decl("ml_meta_export", None, C.POINTER(Meta))


_S = C.c_char_p


class RunConfigFields(C.Structure):
    """ml_run_config field by field, for the settings that are not options
    (what `metalearn eval` sets: eval_only, eval_val, eval_dataset, ...)."""
    _fields_ = [(n, _S) for n in ("algo", "model", "init", "config", "out", "resume")] + [
        ("seed", C.c_uint64), ("threads", C.c_int), ("json", C.c_int), ("quiet", C.c_int),
        ("dataset", _S), ("optimizer", _S), ("schedule", _S),
        ("epochs", C.c_int), ("batch_size", C.c_int), ("limit", C.c_int),
        ("lr", C.c_float), ("momentum", C.c_float), ("weight_decay", C.c_float), ("clip", C.c_float),
        ("task", _S), ("eval_shots", _S), ("eval_steps", _S)] + [
        (n, C.c_int) for n in ("shots", "query", "iters", "meta_batch", "inner_steps", "log_every",
                               "checkpoint_every", "eval_tasks", "eval_query", "val_every")] + [
        ("inner_lr", C.c_float), ("outer_lr", C.c_float), ("eval_seed", C.c_uint64),
        ("ways", C.c_int), ("eval_ways", C.c_int), ("rotations", C.c_int),
        ("split_by", _S), ("split", _S), ("lake_runs", _S),
        ("stop_at", C.c_int), ("overwrite", C.c_int), ("checkpoint_minutes", C.c_float), ("lake_steps", C.c_int),
        ("aug_rotate", C.c_float), ("aug_translate", C.c_float), ("aug_flip", C.c_float), ("aug_scale", _S),
        ("task_sampler", _S), ("target", _S), ("test_alphabets", _S),
        ("select_k", C.c_int), ("select_every", C.c_int), ("select_prob", C.c_float),
        ("curriculum_strength", C.c_float), ("matching_scale", C.c_float),
        ("model_only", C.c_int), ("eval_val", C.c_int), ("finetune", _S),
        ("eval_dataset", _S), ("eval_classes", _S), ("eval_images", _S), ("eval_split_file", _S),
        ("eval_only", C.c_int), ("eval_task", _S),
        ("federated", C.c_int), ("clients", C.c_int), ("local_iters", C.c_int), ("rounds", C.c_int),
        ("client_fraction", C.c_float), ("env", _S), ("outer", _S), ("rollouts", C.c_int), ("horizon", C.c_int),
        ("shards", C.c_int), ("remember", C.c_int), ("eval_lr", _S), ("eval_later_scale", C.c_float),
        ("low_memory", C.c_int), ("exact_first_block", C.c_int)]


_decl("ml_run_config_load_run", C.c_int, C.c_void_p, C.c_char_p, C.c_char_p, C.c_size_t)
_decl("ml_run_config_legacy", C.c_int, C.c_void_p, C.c_char_p, C.c_char_p, C.c_size_t)

# ---- run.h: the run (set up, step, checkpoint, resume, evaluate) -------------------
RUN_NEW, RUN_RESUME, RUN_EVAL = 0, 1, 2
ERR_INTERRUPTED = -8


class RunOpenOptions(C.Structure):
    _fields_ = [("checkpoint", C.c_char_p), ("notes", C.c_void_p), ("transport", C.c_void_p)]


class RunInfo(C.Structure):
    _fields_ = [("dir", C.c_char_p), ("algo", C.c_char_p), ("model_spec", C.c_char_p), ("n_params", C.c_int64),
                ("threads", C.c_int), ("fewshot", C.c_int), ("train_classes", C.c_int), ("batch_size", C.c_int),
                ("init_rates", C.c_int), ("has_inner_steps", C.c_int), ("iteration", C.c_int),
                ("start_iteration", C.c_int), ("iters", C.c_int), ("session_s", C.c_double)]


class RunProgress(C.Structure):
    _fields_ = [("iteration", C.c_int), ("total", C.c_int), ("start_iteration", C.c_int), ("loss", C.c_double),
                ("log_loss", C.c_double), ("logged", C.c_int), ("rate", C.c_double)]


RUN_ON_ITERATION = C.CFUNCTYPE(C.c_int, C.c_void_p, C.POINTER(RunProgress))


class RunCallbacks(C.Structure):
    _fields_ = [("on_iteration", RUN_ON_ITERATION), ("user", C.c_void_p), ("stop", C.POINTER(C.c_int))]


class RunEvalOptions(C.Structure):
    _fields_ = [("out", C.c_void_p), ("progress", Progress)]


HAVE_RUN = hasattr(lib, "ml_run_open")
if HAVE_RUN:
    _decl("ml_run_open", status, C.POINTER(C.c_void_p), C.c_void_p, C.c_int, C.POINTER(RunOpenOptions), C.c_char_p,
          C.c_size_t)
    _decl("ml_run_close", None, C.c_void_p)
    _decl("ml_run_get_info", None, C.c_void_p, C.POINTER(RunInfo))
    _decl("ml_run_iteration", C.c_int, C.c_void_p)
    _decl("ml_run_step", status, C.c_void_p, C.POINTER(C.c_double), C.c_char_p, C.c_size_t)
    _decl("ml_run_train", status, C.c_void_p, C.POINTER(RunCallbacks), C.c_char_p, C.c_size_t)
    _decl("ml_run_save_checkpoint", status, C.c_void_p, C.c_char_p, C.c_size_t)
    _decl("ml_run_evaluate", status, C.c_void_p, C.POINTER(RunEvalOptions), C.c_char_p, C.c_size_t)
HAVE_RUN_PREDICT = hasattr(lib, "ml_run_predict")
if HAVE_RUN_PREDICT:
    _decl("ml_run_default_steps", C.c_int, C.c_void_p)
    _decl("ml_run_predict", status, C.c_void_p, C.POINTER(TaskData), C.c_int, C.POINTER(Progress), i32p, f32p,
          C.c_char_p, C.c_size_t)



class ContinualOptions(C.Structure):  # metalearn/continual.h
    _fields_ = [("counts", C.c_int * 32), ("n_counts", C.c_int), ("orders", C.c_int), ("test_per_class", C.c_int),
                ("train_per_class", C.c_int), ("rates", C.c_float * 16), ("n_rates", C.c_int),
                ("oracle_epochs", C.c_int), ("forget_classes", C.c_int), ("seed", C.c_uint64),
                ("whole_network", C.c_int)]


class ContinualRow(C.Structure):
    _fields_ = [("classes", C.c_int), ("accuracy", C.c_double), ("ci95", C.c_double), ("first", C.c_double),
                ("first_ci95", C.c_double), ("oracle", C.c_double), ("oracle_ci95", C.c_double)]


class ContinualResult(C.Structure):
    _fields_ = [("regression", C.c_int), ("n_rows", C.c_int), ("rows", ContinualRow * 33),
                ("forgetting", C.c_double), ("forgetting_ci95", C.c_double), ("forget_classes", C.c_int),
                ("lr", C.c_float), ("oracle_lr", C.c_float), ("val_accuracy", C.c_double), ("val_classes", C.c_int), ("test_classes", C.c_int),
                ("train_per_class", C.c_int), ("test_per_class", C.c_int), ("orders", C.c_int),
                ("feature_zero_fraction", C.c_double), ("feature_norm", C.c_double), ("whole_network", C.c_int)]


HAVE_CONTINUAL = hasattr(lib, "ml_run_continual")
if HAVE_CONTINUAL:
    _decl("ml_continual_options_default", None, C.POINTER(ContinualOptions))
    _decl("ml_run_continual", status, C.c_void_p, C.POINTER(ContinualOptions), C.POINTER(ContinualResult), C.c_char_p,
          C.c_size_t, C.c_char_p, C.c_size_t)
    _decl("ml_continual_to_json", C.c_size_t, C.POINTER(ContinualResult), C.c_char_p, C.c_char_p, C.c_size_t)

# The C library's stdio, for the FILE * the run prints its evaluation table to:
# an in-memory stream (open_memstream) the package reads back.
libc = C.CDLL(None)
libc.open_memstream.restype = C.c_void_p
libc.open_memstream.argtypes = [C.POINTER(C.c_void_p), C.POINTER(C.c_size_t)]
libc.fclose.argtypes = [C.c_void_p]
libc.fflush.argtypes = [C.c_void_p]
libc.free.argtypes = [C.c_void_p]

# ---- search.h: the strategy search driver -------------------------------------------
class SearchConfig(C.Structure):
    _fields_ = [("space", C.c_char_p), ("space_text", C.c_char_p), ("config", C.c_char_p), ("out", C.c_char_p),
                ("strategy", C.c_char_p), ("budget", C.c_int), ("min_iters", C.c_int), ("max_iters", C.c_int),
                ("eta", C.c_int), ("population", C.c_int), ("jobs", C.c_int), ("threads", C.c_int),
                ("val_tasks", C.c_int), ("seed", C.c_uint64)]


class SearchResult(C.Structure):
    _fields_ = [("trial", C.c_int), ("top_rung", C.c_int), ("iters", C.c_int), ("score", C.c_double),
                ("failed_rung", C.c_int), ("failed_iters", C.c_int), ("message", C.c_char_p),
                ("settings", C.c_char_p), ("summary", C.c_char_p)]


class SearchSummary(C.Structure):
    _fields_ = [("metric", C.c_char_p), ("higher_better", C.c_int), ("n_rungs", C.c_int), ("rungs", C.c_int * 16),
                ("budget", C.c_int), ("trials_run_now", C.c_int), ("trials_failed", C.c_int),
                ("interrupted", C.c_int), ("results", C.POINTER(SearchResult)), ("order", C.POINTER(C.c_int)),
                ("seconds", C.c_double)]


class SearchEvent(C.Structure):
    _fields_ = [("kind", C.c_int), ("config", C.POINTER(SearchConfig)), ("n_rungs", C.c_int),
                ("rungs", C.POINTER(C.c_int)), ("rung", C.c_int), ("trial", C.c_int), ("done", C.c_int),
                ("total", C.c_int), ("ok", C.c_int), ("score", C.c_double), ("seconds", C.c_double),
                ("metric", C.c_char_p), ("message", C.c_char_p), ("rank", C.c_int)]


SEARCH_REPORT = C.CFUNCTYPE(None, C.POINTER(SearchEvent), C.c_void_p)
SEARCH_EVENTS = ("started", "rung_start", "trial_done", "rung_end")
HAVE_SEARCH = hasattr(lib, "ml_search_run")
if HAVE_SEARCH:
    _decl("ml_search_config_default", None, C.POINTER(SearchConfig))
    _decl("ml_search_config_option_set", OptionSet, C.POINTER(SearchConfig))
    _decl("ml_search_summary_free", None, C.POINTER(SearchSummary))
    _decl("ml_search_run", status, C.POINTER(SearchConfig), C.c_void_p, SEARCH_REPORT, C.c_void_p,
          C.POINTER(C.c_int), C.POINTER(SearchSummary), C.c_char_p, C.c_size_t)


# ---- Ctrl-C while the library computes ------------------------------------------------
# As in the CLI (src/cli/main.c, cmd_meta.c): only the thread that trains
# takes SIGINT, on an alternate signal stack. oneDNN's JIT GEMM points rsp
# into the heap while it runs, so a signal frame pushed there corrupts the
# heap; CPython installs its handlers with SA_ONSTACK, so an alternate stack
# is enough on the calling thread, and OpenMP's threads start with the stop
# signals blocked (unless something else, e.g. torch, started them first).
class _StackT(C.Structure):
    _fields_ = [("ss_sp", C.c_void_p), ("ss_flags", C.c_int), ("ss_size", C.c_size_t)]


_SS_DISABLE = 2
_alt_stacks = {}


def use_alt_signal_stack():
    """Gives the calling thread an alternate signal stack if it has none."""
    import threading
    old = _StackT()
    if libc.sigaltstack(None, C.byref(old)) != 0 or not (old.ss_flags & _SS_DISABLE):
        return
    buf = C.create_string_buffer(1 << 16)
    new = _StackT(ss_sp=C.cast(buf, C.c_void_p), ss_flags=0, ss_size=len(buf))
    if libc.sigaltstack(C.byref(new), None) == 0:
        _alt_stacks[threading.get_ident()] = buf  # lives as long as the thread may take signals


def _start_openmp_threads_with_stop_signals_blocked():
    import signal
    import threading
    if threading.current_thread() is not threading.main_thread():
        return
    try:  # only the OpenMP runtime the library already brought in (GCC's)
        with open("/proc/self/maps") as maps:
            if "libgomp.so.1" not in maps.read():
                return
        gomp = C.CDLL("libgomp.so.1")
    except OSError:
        return
    stop = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    try:
        # An empty parallel region: the team starts (inheriting this mask)
        # and runs a harmless C function, strlen(""), on every thread.
        gomp.GOMP_parallel.argtypes = [C.c_void_p, C.c_void_p, C.c_uint, C.c_uint]
        gomp.GOMP_parallel.restype = None
        empty = C.c_char_p(b"")
        gomp.GOMP_parallel(C.cast(libc.strlen, C.c_void_p), C.cast(empty, C.c_void_p), 0, 0)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


libc.sigaltstack.argtypes = [C.POINTER(_StackT), C.POINTER(_StackT)]
_start_openmp_threads_with_stop_signals_blocked()
use_alt_signal_stack()


class MetaTensor(C.Structure):
    _fields_ = [("name", C.c_char * (PARAM_NAME_LEN + 16)), ("ndim", C.c_int), ("shape", C.c_int64 * MAX_DIMS),
                ("offset", C.c_int64), ("numel", C.c_int64), ("init", C.c_float)]


META_MAX_EXTRAS = MAX_PARAMS + 4
_decl("ml_meta_extras", C.c_int, C.POINTER(MetaConfig), C.POINTER(Model), C.POINTER(MetaTensor))
