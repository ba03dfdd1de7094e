#!/usr/bin/env bash
# CLI test of `metalearn train --federated`: a short sinusoid run logs its
# rounds (clients, bytes), `--stop-at` then `--resume` gives the checkpoint
# of the uninterrupted run byte for byte, and bad settings (zero clients, a
# fraction outside (0, 1], more clients than training alphabets) end with one
# line on stderr and exit 2 before the first round (no log written).
set -u
BIN="$1"
NAME=federated
source "$(dirname "$0")/lib/common.sh"
FED="--algo fomaml --federated --clients 4 --client-fraction 0.5 --local-iters 2 --rounds 6 --meta-batch 3
     --model mlp:16,16 --log-every 1 --checkpoint-every 1 --eval-tasks 20 --threads 1 --seed 5 --quiet"

expect "federated sinusoid run" 0 "" -- "$BIN" train $FED --out "$TMP/full"
if [ "$(wc -l < "$TMP/full/log.jsonl")" -eq 6 ] && grep -q '"clients":2,"round_bytes":' "$TMP/full/log.jsonl"; then
  ok "a log line per round with clients and bytes"
else bad "log: $(head -c 300 "$TMP/full/log.jsonl")"; fi
expect "stop after round 3" 0 "" -- "$BIN" train $FED --out "$TMP/part" --stop-at 3
expect "resume to round 6" 0 "" -- "$BIN" train --resume "$TMP/part" --quiet
if cmp -s "$TMP/full/checkpoint.safetensors" "$TMP/part/checkpoint.safetensors"; then ok "resume per round: same bytes"
else bad "resumed checkpoint differs"; fi

n_bad=0
one_line() { # NAME PATTERN -- train arguments: exit 2, one line on stderr, no log
  local name="$1" pattern="$2"; shift 3
  n_bad=$((n_bad + 1)) # a folder each: a refused Omniglot run may leave its split.json
  expect "$name" 2 "$pattern" -- "$BIN" train "$@" --out "$TMP/bad$n_bad" --quiet
  if [ "$(wc -l < "$TMP/err")" -ne 1 ] || [ -e "$TMP/bad$n_bad/log.jsonl" ]; then bad "$name: not one line before any round"; fi
}
one_line "zero clients" "clients 0: federated training needs at least one client" -- $FED --clients 0
one_line "fraction 0" "client-fraction 0: expected a fraction" -- $FED --client-fraction 0
one_line "fraction 1.5" "client-fraction 1.5: expected a fraction" -- $FED --client-fraction 1.5
one_line "linear tasks" "has no amplitude" -- $FED --task linear
D="${ML_DATA_DIR:-../shared/data}/omniglot"
if [ -f "$D/images_background_small1.zip" ] && [ -f "$D/images_background_small2.zip" ]; then
  DS="omniglot:$D/images_background_small1.zip,$D/images_background_small2.zip"
  one_line "more clients than alphabets" "clients 9: the training split of .* has only 8 alphabets" -- \
    --algo protonet --dataset "$DS" --federated --clients 9 --rounds 1
  one_line "held-out alphabets leave fewer" "clients 7: .* has only 6 alphabets" -- \
    --algo protonet --dataset "$DS" --split-by alphabet --split 0.75,0,0.25 --federated --clients 7 --rounds 1
else
  skip "Omniglot absent: more clients than alphabets"
fi
summary
