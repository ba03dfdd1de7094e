# pinned stress: L busy loops on CPU 1, then N runs of CMD on CPU 1
L=$1; N=$2; shift 2; ls=()
trap 'for p in "${ls[@]}"; do kill "$p" 2>/dev/null; done' EXIT
for _ in $(seq $L); do taskset -c 1 bash -c 'while :; do :; done' & ls+=($!); done
ok=0; for _ in $(seq $N); do taskset -c 1 "$@" >/dev/null 2>&1 && ok=$((ok+1)); done
echo "{\"cmd\":\"$*\",\"pinned_cpu\":1,\"loaders_on_cpu\":$L,\"runs\":$N,\"passed\":$ok}"
