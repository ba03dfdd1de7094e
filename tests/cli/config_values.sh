#!/usr/bin/env bash
# CLI tests of config-file values of every JSON type for every train option:
# null means "not set here" (the option keeps its default), any other value
# of the wrong type is a one-line error, and nothing crashes or prints (null).
set -u
BIN="$1"
NAME=config_values
source "$(dirname "$0")/lib/common.sh"
cd "$TMP" || exit 1

# A small regression run; each option below is replaced in turn.
BASE='"algo": "maml", "task": "sinusoid", "model": "mlp:8", "iters": 2, "meta-batch": 2, "shots": 3, "query": 3,
"eval-tasks": 3, "eval-query": 3, "eval-steps": "1", "quiet": true'
base_without() { # the base entries minus key $1, as JSON object members
  local k="$1" out="" line
  while IFS= read -r line; do
    case "$line" in *"\"$k\":"*) ;; *) out+="$line"$'\n' ;; esac
  done < <(printf '%s\n' "$BASE" | tr ',' '\n' | sed 's/^ *//')
  printf '%s' "$out" | sed '/^$/d' | paste -sd, -
}

# "algo": null leaves train's default, supervised: it asks for an IDX dataset.
printf '{"algo": null, "iters": 2}\n' >null_algo.json
expect "config \"algo\": null = the default (supervised)" 1 "nonexistent/train-images" -- \
  "$BIN" train --config null_algo.json --dataset idx:"$TMP/nonexistent" --quiet

# "optimizer": null on a meta run: trains with the default, recorded as such.
printf '{%s, "optimizer": null, "schedule": null}\n' "$BASE" >null_optim.json
expect "config \"optimizer\": null trains with the default" 0 "" -- \
  "$BIN" train --config null_optim.json --out "$TMP/null_optim"
grep -q '"optimizer":[[:space:]]*"adam"' "$TMP/null_optim/config.json" 2>/dev/null \
  && ok "config.json records the default optimizer" || bad "config.json lacks \"optimizer\": \"adam\""

# Every option (the keys of a run's config.json) with null.
printf '{%s}\n' "$BASE" >base.json
"$BIN" train --config base.json --out "$TMP/base" >/dev/null 2>&1
keys=$(grep -o '^[[:space:]]*"[a-z-]*":' "$TMP/base/config.json" | tr -d ' \t":')
# Text options (a string or null in config.json) also get a string they must check.
text_keys=" $(grep '^[[:space:]]*"[a-z-]*":[[:space:]]*["n]' "$TMP/base/config.json" | grep -o '"[a-z-]*":' | tr -d '":' | tr '\n' ' ') "
[ "$(printf '%s\n' $keys | wc -l)" -gt 40 ] && ok "config.json lists the options" || bad "too few keys: $keys"
crashes=0; nulls=0; statuses=0; n=0
for k in $keys; do
  [ "$k" = out ] && continue # a fresh folder per case below
  others=$(base_without "$k")
  for v in null '"x"'; do # a string for a number stops at the type check tested below
    [ "$v" = null ] || case "$text_keys" in *" $k "*) ;; *) continue ;; esac
    [ "$k$v" = algonull ] && continue # supervised, tested above
    printf '{%s, "%s": %s}\n' "$others" "$k" "$v" >c.json
    # --stop-at 1: a null iters / eval-tasks falls back to a long default.
    "$BIN" train --config c.json --out "$TMP/r$n" --stop-at 1 --threads 1 >o.txt 2>&1
    st=$?
    n=$((n + 1))
    if [ $st -gt 2 ]; then statuses=$((statuses + 1)); echo "  $k=$v: exit $st: $(tail -c 200 o.txt)"; fi
    if grep -q -i "segmentation\|sanitizer\|core dumped" o.txt; then crashes=$((crashes + 1)); echo "  $k=$v crashed"; fi
    if grep -q "(null)" o.txt; then nulls=$((nulls + 1)); echo "  $k=$v: $(grep '(null)' o.txt | head -1)"; fi
    rm -rf "$TMP/r$((n - 1))"
  done
done
[ $crashes -eq 0 ] && ok "$n option/value cases: no crash" || bad "$crashes of $n cases crashed"
[ $statuses -eq 0 ] && ok "$n option/value cases: exit 0, 1 or 2" || bad "$statuses of $n cases exit with another status"
[ $nulls -eq 0 ] && ok "$n option/value cases: no '(null)' in messages" || bad "$nulls of $n cases print (null)"

# A wrong type is named with the file and the key.
printf '{"algo": ["maml"]}\n' >arr.json
expect "config array for a string option" 2 "arr.json: key 'algo': expected a string, got an array" -- \
  "$BIN" train --config arr.json

# The search space's "base" follows the same rule.
printf '{"base": {"algo": null}, "space": {"inner-lr": {"log_uniform": [0.001, 0.1]}}}\n' >space.json
expect "search base \"algo\": null = no algo" 2 "no \"algo\" in the base config" -- \
  "$BIN" search --space space.json --budget 2 --out "$TMP/search" --quiet
printf '{"base": {"algo": "maml", "optimizer": null, "task": null}, "space": {"algo": {"choice": [null, "maml"]}}}\n' >space2.json
expect "search choice null is refused" 2 "choice values must be strings, numbers or booleans" -- \
  "$BIN" search --space space2.json --budget 2 --out "$TMP/search2" --quiet

summary
