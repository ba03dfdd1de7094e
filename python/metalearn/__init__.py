"""metalearn: the Python face of libmetalearn (ctypes over the shared library,
NumPy arrays in and out). See the README's Python section."""
from ._lib import Error, lib as _clib
from . import rl, safetensors, search
from .episodes import ImageSet, TaskFamily
from .run import Run, RunConfig

__version__ = _clib.ml_version().decode()
__all__ = ["Error", "rl", "safetensors", "search", "ImageSet", "TaskFamily", "RunConfig", "Run"]
