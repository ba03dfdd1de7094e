#!/usr/bin/env bash
# repeat.sh N LOADERS CMD...: runs CMD N times with LOADERS busy loops beside it
# (nice 0, like other jobs on a shared CI machine); prints one JSON line:
# {"cmd":..,"runs":N,"passed":K,"loaders":L,"loadavg":".."}. The loops are ended at exit.
set -u
N=$1; LOADERS=$2; shift 2
loaders=()
trap 'for p in "${loaders[@]}"; do kill "$p" 2>/dev/null; done' EXIT
for _ in $(seq "$LOADERS"); do (while :; do :; done) & loaders+=($!); done
passed=0
for _ in $(seq "$N"); do "$@" >/dev/null 2>&1 && passed=$((passed + 1)); done
printf '{"cmd":"%s","runs":%d,"passed":%d,"loaders":%d,"loadavg":"%s"}\n' "$*" "$N" "$passed" "$LOADERS" "$(cut -d' ' -f1-3 /proc/loadavg)"
