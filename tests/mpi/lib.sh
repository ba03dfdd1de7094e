# lib.sh: shared part of the MPI test scripts (sourced): the CLI helpers,
# then a skip (exit 77) when this build has no MPI, mpirun is missing, or the
# build is sanitized (Open MPI's start-up leaks by LeakSanitizer's measure).
# Running as root needs Open MPI's consent: given here, for these tests only.
# Usage: bash SCRIPT BIN WITH_MPI SANITIZED [TEST_DIST [LIBMETALEARN_SO]]
BIN="$1"; WITH_MPI="${2:-OFF}"; SANITIZED="${3:-OFF}"; TEST_DIST="${4:-}"; SHARED_LIB="${5:-}"
source "$(dirname "$0")/../cli/lib/common.sh"
if [ "$WITH_MPI" != "ON" ] || ! command -v mpirun >/dev/null || [ "$SANITIZED" = "ON" ]; then
  echo "SKIP: built without MPI, no mpirun, or a sanitizer build (MPI=$WITH_MPI, sanitized=$SANITIZED)"
  echo "0 passed, 0 failed"
  exit 77
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# No network interfaces but loopback for the job's traffic; quiet hwloc warnings.
export OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo OMPI_MCA_hwloc_base_binding_policy=none
# mpi N ARGS...: the command on N processes (oversubscribed: 2 cores here), bounded in
# time (a hang guard: a loaded 2-core machine runs the longest of these for minutes).
mpi() { local n="$1"; shift; timeout 300 mpirun --oversubscribe -np "$n" "$@"; }

# Ctrl-C on mpirun: Open MPI waits odls_base_sigkill_timeout (default 1 s), sends
# the ranks SIGTERM, waits as long again, then SIGKILLs them (measured: a rank
# that takes 3 s to stop after its SIGTERM dies 1 s in). The ranks must finish
# the step, agree and save within that second, loaded or not, so a test that stops a
# job with Ctrl-C runs `env "$GRACE" timeout ... mpirun ...` (env execs timeout,
# whose child is the launcher). 3 s, not more: the SIGTERM itself comes that
# late, and mpi_search's job must still be running then (on a quiet Zen 5 ~7 s
# of it are left after its first trial: search.sh sizes the search for that).
GRACE="OMPI_MCA_odls_base_sigkill_timeout=3"

# rank_pid LAUNCHER R: the pid of the launcher's child that is rank R (by its
# OMPI_COMM_WORLD_RANK, not by pid order: pids wrap, pid_max may be 32768).
rank_pid() {
  local p
  for p in $(ps -o pid= --ppid "$1"); do
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2" && { echo "$p"; return 0; }
  done
  return 1
}

# same_eval A B: two eval.json files equal but for the run's name, timings and threads.
same_eval() {
  python3 - "$1" "$2" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for d in (a, b):
    for k in ("run", "train_seconds", "iters_per_second", "eval_seconds", "threads"):
        d.pop(k, None)
sys.exit(0 if a == b else 1)
PY
}
