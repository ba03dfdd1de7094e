"""torch_env.py: the environment the PyTorch reference benches run in, PyTorch's
"best settings" on this machine (measured 3-7x faster than the defaults here):

- MALLOC_TRIM_THRESHOLD_ / MALLOC_MMAP_THRESHOLD_: keep freed memory in the
  process instead of trimming / unmapping it every step (glibc 2.36 honours
  them: a 20 MB block then lives on the brk heap and survives free());
- OPENBLAS_NUM_THREADS=1: OpenBLAS must not spawn threads next to OpenMP's;
- OMP_WAIT_POLICY=passive: idle OpenMP threads sleep instead of spinning on
  the shared 2-core machine.

glibc reads the malloc variables at start-up, so a script re-executes itself
once with them set; values already in the environment are kept."""
import os
import sys

BENCH_ENV = {
    "MALLOC_TRIM_THRESHOLD_": "10000000000",
    "MALLOC_MMAP_THRESHOLD_": "1000000000",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_WAIT_POLICY": "passive",
}

_MARK = "ML_TORCH_BENCH_REEXEC"


def reexec_with_bench_env(threads=None, overrides=None, disabled=False):
    """Re-executes the running script once with BENCH_ENV (plus OMP_NUM_THREADS =
    threads when given, and overrides, which win); returns without doing
    anything when disabled or already re-executed."""
    if disabled or os.environ.get(_MARK) == "1":
        return
    env = dict(os.environ)
    for k, v in BENCH_ENV.items():
        env.setdefault(k, v)
    if overrides:
        env.update(overrides)
    if threads:
        env.setdefault("OMP_NUM_THREADS", str(threads))
    env[_MARK] = "1"
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable] + sys.argv, env)
