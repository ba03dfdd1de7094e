# common.sh: shared helpers of the CLI test scripts (sourced, not a test).
# The script sets BIN and NAME before sourcing; this makes TMP (removed at
# exit) and the counters, and provides ok / bad / expect / summary.
TMP="${ML_TEST_TMP:-/tmp}/cli_${NAME}.$$"
mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT
pass=0; fail=0; skipped=0
ok()  { pass=$((pass+1)); echo "[ ok ] $1"; }
bad() { fail=$((fail+1)); echo "[FAIL] $1"; }
# skip WHY: a part of the script that cannot run here (absent data or tool).
# The script still runs the rest, and summary exits 77 (CTest's
# SKIP_RETURN_CODE: shown as skipped, never as passed) unless something failed.
skip() { skipped=$((skipped+1)); echo "[skip] $1"; }

# expect NAME STATUS PATTERN -- command...: the exit status, a pattern in
# stderr or stdout (empty: none), and no crash report.
expect() {
  local name="$1" want="$2" pattern="$3"; shift 4
  "$@" >"$TMP/out" 2>"$TMP/err"; local got=$?
  if [ "$got" -ne "$want" ]; then bad "$name: exit $got, want $want: $(head -c 300 "$TMP/err")"; return; fi
  if [ -n "$pattern" ] && ! grep -q -- "$pattern" "$TMP/err" "$TMP/out"; then
    bad "$name: output lacks '$pattern': $(head -c 300 "$TMP/err")"; return
  fi
  if grep -q -i "segmentation\|sanitizer\|core dumped" "$TMP/err"; then bad "$name: crashed"; return; fi
  ok "$name"
}

summary() {
  if [ "$skipped" -gt 0 ]; then echo "$pass passed, $fail failed, $skipped skipped"; else echo "$pass passed, $fail failed"; fi
  [ "$fail" -eq 0 ] || return 1
  [ "$skipped" -eq 0 ] || return 77
}

# need_omniglot: DATA = the shared data's omniglot folder ($ML_DATA_DIR,
# default ../shared/data); without it the script reports a skip and ends.
need_omniglot() {
  DATA="${ML_DATA_DIR:-../shared/data}/omniglot"
  if [ ! -f "$DATA/images_background_small1.zip" ]; then
    echo "SKIP: Omniglot not found in $DATA (set ML_DATA_DIR)"
    echo "0 passed, 0 failed"
    exit 77
  fi
}
