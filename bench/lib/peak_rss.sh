# bench/lib/peak_rss.sh: what the peak-memory benchmarks share (sourced by
# bench/memory_omniglot.sh and bench/rl_memory.sh): their options, a private
# copy of the binary, and `metalearn train` timed by GNU time for its
# "Maximum resident set size", wall time and checkpoint hash. Each script
# keeps its own RUN syntax and JSON line.

# peak_rss_args HELP_LINES "$@": --iters N (default 3) and --label NAME into
# $iters and $label, the RUNs into runs[]; -h prints the caller's lines
# HELP_LINES (a sed range such as 2,13p); no RUN is an error (exit 2).
peak_rss_args() {
  local help="$1"
  shift
  iters=3 label=""
  runs=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --iters) iters="$2"; shift 2 ;;
      --label) label="$2"; shift 2 ;;
      -h|--help) sed -n "$help" "$0"; exit 0 ;;
      *) runs+=("$1"); shift ;;
    esac
  done
  [ ${#runs[@]} -gt 0 ] || { echo "no RUN given (see --help)" >&2; exit 2; }
}

# peak_rss_binary: $METALEARN (default build/metalearn) copied to
# $tmp/metalearn, as others may rebuild build/ meanwhile; $tmp is removed on
# exit; $sha is the binary's sha256 (12 digits).
peak_rss_binary() {
  [ -x /usr/bin/time ] || { echo "/usr/bin/time (GNU time) is needed" >&2; exit 1; }
  bin="${METALEARN:-build/metalearn}"
  [ -x "$bin" ] || { echo "$bin missing (build it first)" >&2; exit 1; }
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  cp "$bin" "$tmp/metalearn"
  sha=$(sha256sum "$tmp/metalearn" | cut -c1-12)
}

# peak_rss_train ARGS...: `metalearn train ARGS --out $tmp/run` (a fresh
# folder) under /usr/bin/time -v; sets $kb (the peak resident kilobytes),
# $wall (h:mm:ss or m:ss) and $ck (the checkpoint's sha256, 12 digits).
peak_rss_train() {
  rm -rf "$tmp/run"
  /usr/bin/time -v -o "$tmp/time.txt" "$tmp/metalearn" train "$@" --out "$tmp/run" > /dev/null
  kb=$(grep -oP 'Maximum resident set size \(kbytes\): \K[0-9]+' "$tmp/time.txt")
  wall=$(grep -oP 'Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): \K[0-9:.]+' "$tmp/time.txt")
  ck=$(sha256sum "$tmp/run/checkpoint.safetensors" | cut -c1-12)
}
