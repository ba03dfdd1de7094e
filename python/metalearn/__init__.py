"""metalearn: the Python face of libmetalearn (ctypes over the shared library,
NumPy arrays in and out). See the README's Python section."""
from ._lib import Error, lib as _clib
from . import rl, safetensors, search
from .episodes import ImageSet, TaskFamily
from .run import Run, RunConfig

__version__ = _clib.ml_version().decode()


def rank():
    """This process's rank under mpirun once a Run is open (0 otherwise): print on rank 0 only."""
    return _clib.ml_dist_rank()


def size():
    """The number of processes of an mpirun job once a Run is open (1 otherwise)."""
    return _clib.ml_dist_size()


__all__ = ["Error", "safetensors", "search", "ImageSet", "TaskFamily", "RunConfig", "Run", "rank", "size", "rl"]
