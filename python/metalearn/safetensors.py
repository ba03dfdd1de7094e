"""safetensors files <-> dicts of NumPy float32 arrays, through the library's
reader and writer (so Python writes the same bytes the CLI does, and bad
files are refused with the same messages)."""
import ctypes as C

import numpy as np

from . import _lib as L


def load(path, metadata=False):
    """{name: float32 array} in file order; with metadata=True also the
    file's __metadata__ as a dict of strings: (tensors, metadata)."""
    st, err = L.Safetensors(), L.errbuf()
    L.check(L.lib.ml_safetensors_read(L.path_arg(path), C.byref(st), err, L.ERRLEN), err)
    try:
        out = {}
        for i in range(st.n):
            e = st.entries[i]
            shape = tuple(e.shape[d] for d in range(e.ndim))
            if e.numel:
                a = np.ctypeslib.as_array(e.data, shape=(e.numel,)).copy().reshape(shape)
            else:
                a = np.zeros(shape, dtype=np.float32)
            out[e.name.decode()] = a
        meta = {st.meta_keys[i].decode(): st.meta_values[i].decode() for i in range(st.n_meta)}
    finally:
        L.lib.ml_safetensors_free(C.byref(st))
    return (out, meta) if metadata else out


def as_float32(what, value, max_dims=L.ST_MAX_DIMS):
    """value (a torch tensor, a list or any array NumPy converts: any byte
    order, layout, float, integer or bool type) as a C-contiguous float32
    array; other kinds (object, strings, complex) are refused, naming `what`."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    try:
        a = np.asarray(value)
    except (ValueError, TypeError) as e:  # ragged lists
        raise L.Error(f"{what}: not an array ({e})") from None
    if a.dtype != np.float32:
        if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_):
            raise L.Error(f"{what}: dtype {a.dtype}, expected float32")
        a = a.astype(np.float32)
    if a.ndim > max_dims:
        raise L.Error(f"{what}: {a.ndim} dimensions, at most {max_dims}")
    return a if a.flags.c_contiguous else a.copy(order="C")  # (ascontiguousarray would make rank 0 rank 1)


def _as_f32(name, value):
    return as_float32(f"tensor '{name}'", value)


def save(path, tensors, metadata=None):
    """Writes {name: array} (in dict order) atomically as F32 safetensors;
    metadata is a dict of strings for __metadata__."""
    arrays = [(str(k), _as_f32(k, v)) for k, v in tensors.items()]
    ts = (L.StTensor * max(len(arrays), 1))()
    keep = []
    for i, (name, a) in enumerate(arrays):
        nb = name.encode()
        keep.append(nb)
        ts[i].name = nb
        ts[i].ndim = a.ndim
        for d, n in enumerate(a.shape):
            ts[i].shape[d] = n
        ts[i].data = a.ctypes.data_as(L.f32p) if a.size else None
    meta = metadata or {}
    keys = (C.c_char_p * max(len(meta), 1))(*[str(k).encode() for k in meta])
    vals = (C.c_char_p * max(len(meta), 1))(*[str(v).encode() for v in meta.values()])
    err = L.errbuf()
    L.check(L.lib.ml_safetensors_write(L.path_arg(path), ts, len(arrays), keys, vals, len(meta), err, L.ERRLEN),
            err)
