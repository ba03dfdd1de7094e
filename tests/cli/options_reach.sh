#!/usr/bin/env bash
# Every option of `metalearn train` reaches the code that uses it: for each
# option, a tiny run with a non-default value must give a different result
# (parameters of the checkpoint, logged losses, evaluation results, the
# class split; never the settings merely echoed back) than the same run
# without it. Options that cannot change the result by design are listed
# with the reason, and every option of `train --help` must be in one list or
# the other, so a new option cannot be forgotten.
set -u
BIN="$1"
NAME=options_reach
source "$(dirname "$0")/lib/common.sh"

# A tiny folder set (20 classes of 8 PNGs) and a tiny IDX set (3 classes).
PYTHONPATH="$(dirname "$0")/lib" python3 - "$TMP" <<'PY'
import gzip, os, struct, sys, zlib, random
out = sys.argv[1]; random.seed(5)
from testpng import png
for c in range(20):
    d = f"{out}/folder/c{c:02d}"; os.makedirs(d, exist_ok=True)
    for k in range(8):
        png(f"{d}/i{k}.png", 28, [[255 if (x * (c % 5 + 1) + y * (c // 5 + 1) + k) % 7 < 2 else 0 for x in range(28)] for y in range(28)])
n, h = 60, 8
labels = [i % 3 for i in range(n)]
pix = bytes(min(255, random.randrange(60) + 60 * labels[i] * ((p + labels[i]) % 3 == 0)) for i in range(n) for p in range(h * h))
os.makedirs(f"{out}/idx", exist_ok=True)
for split in ("train", "t10k"):
    with gzip.open(f"{out}/idx/{split}-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, h, h) + pix)
    with gzip.open(f"{out}/idx/{split}-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + bytes(labels))
PY

# fingerprints DIR...: "DIR HASH" lines of what each run computed, without the
# settings it echoes (the checkpoint's tensors but not its metadata, the logged
# losses, the results of eval.json and of the --json line, the class split).
fingerprints() {
  python3 - "$@" <<'PY'
import hashlib, json, os, struct, sys
for d in sys.argv[1:]:
    h = hashlib.sha256()
    p = f"{d}/checkpoint.safetensors"
    if os.path.exists(p):
        b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]
        hdr = json.loads(b[8:8 + n]); hdr.pop("__metadata__", None)
        h.update(json.dumps(hdr, sort_keys=True).encode() + b[8 + n:])
    if os.path.exists(f"{d}/log.jsonl"):
        for line in open(f"{d}/log.jsonl"):
            j = json.loads(line)
            h.update(repr((j.get("loss"), j.get("val_mse"), j.get("val_acc"))).encode())
    for f in ("eval.json", "stdout"):
        if os.path.exists(f"{d}/{f}"):
            text = open(f"{d}/{f}").read()
            try:  # a whole JSON file (eval.json, maybe indented), else the last JSON line (stdout)
                objs = [json.loads(text)]
            except ValueError:
                objs = [json.loads(l) for l in text.splitlines() if l.startswith("{")][-1:]
            for j in objs:
                for k in ("results", "lake_runs", "final_train_loss", "final_train_accuracy", "test_accuracy", "per_class", "return"):
                    h.update(json.dumps(j.get(k), sort_keys=True).encode())
    if os.path.exists(f"{d}/split.json"):
        h.update(open(f"{d}/split.json", "rb").read())
    print(d, h.hexdigest())
PY
}

OMNI="${ML_DATA_DIR:-../shared/data}/omniglot"
DS="omniglot:$OMNI/images_background_small1.zip,$OMNI/images_background_small2.zip"
REG=(--algo maml --task sinusoid --model mlp:8 --meta-batch 3 --shots 3 --query 3 --iters 6 --log-every 2
     --eval-tasks 4 --eval-query 5 --optimizer sgd --outer-lr 0.01 --quiet)
FEW=(--algo protonet --dataset "folder:$TMP/folder" --model cnn4:4 --ways 2 --shots 1 --query 1 --meta-batch 1
     --iters 3 --eval-tasks 20 --rotations 0 --quiet)
SUP=(--algo supervised --dataset "idx:$TMP/idx" --model mlp:8 --epochs 1 --batch-size 8 --optimizer sgd --lr 0.05 --json --quiet)
OMN=(--algo maml --dataset "$DS" --model cnn4:4 --ways 20 --shots 1 --query 1 --meta-batch 1 --iters 1 --eval-tasks 2
     --eval-ways 20 --inner-steps 1 --eval-steps 1 --quiet)
RL=(--env nav2d --algo maml --rollouts 3 --horizon 8 --meta-batch 2 --iters 2 --threads 1 --eval-tasks 2 --json --quiet)

# Options that cannot change what a run computes, and why.
declare -A EXEMPT=(
  [threads]="the result is identical whatever the thread count (meta_regression.sh, fewshot_omniglot.sh)"
  [config]="a source of the other settings (meta_regression.sh: the config reproduces the run)"
  [out]="where the run folder goes"
  [resume]="continues a run bit-for-bit (meta_regression.sh)"
  [json]="presentation: one JSON line on stdout"
  [quiet]="presentation: no progress on stderr"
  [checkpoint-every]="how often the same state is saved; the last checkpoint is the same"
  [checkpoint-minutes]="how often (by the clock) the same state is saved"
  [overwrite]="lets --out replace a finished run (run_folder.sh)"
  [low-memory]="recomputes a block instead of keeping it, the same bits (test_meta)"
)

# option|context|arguments: the arguments added to the context's base run.
ROWS=(
  "algo|REG|--algo fomaml"
  "model|REG|--model mlp:9"
  "init|REG|--init xavier"
  "seed|REG|--seed 2"
  "optimizer|REG|--optimizer rmsprop"
  "momentum|REG|--momentum 0.5"
  "weight-decay|REG|--weight-decay 0.5"
  "schedule|REG|--schedule cosine"
  "task|REG|--task linear"
  "shots|REG|--shots 4"
  "query|REG|--query 4"
  "iters|REG|--iters 5"
  "stop-at|REG|--stop-at 4"
  "meta-batch|REG|--meta-batch 2"
  "inner-steps|REG|--inner-steps 2"
  "inner-lr|REG|--inner-lr 0.05"
  "outer-lr|REG|--outer-lr 0.02"
  "log-every|REG|--log-every 3"
  "val-every|REG|--val-every 2"
  "eval-tasks|REG|--eval-tasks 5"
  "eval-query|REG|--eval-query 6"
  "eval-shots|REG|--eval-shots 2"
  "eval-steps|REG|--eval-steps 2"
  "eval-seed|REG|--eval-seed 3"
  "dataset|FEW|--dataset folder:$TMP/folder2"
  "ways|FEW|--ways 3"
  "eval-ways|FEW|--eval-ways 3"
  "rotations|FEW|--rotations 1"
  "split|FEW|--split 0.5,0.2,0.3"
  "augment-rotate|FEW|--augment-rotate 20"
  "augment-scale|FEW|--augment-scale 0.8,1.2"
  "augment-translate|FEW|--augment-translate 3"
  "augment-flip|FEW|--augment-flip 0.5"
  "finetune|FEW|--algo pretrain --batch-size 4 --eval-steps 2 --inner-lr 0.5 --finetune all"
  "batch-size|FEW|--algo pretrain --batch-size 5 --eval-steps 2"
  "task-sampler|FEW|--task-sampler curriculum"
  "curriculum-strength|FEW|--task-sampler curriculum --iters 12 --curriculum-strength 5"
  "target|FEW|--task-sampler similar --select-k 2 --select-every 1 --target test-support:2"
  "select-k|FEW|--task-sampler similar --target test-support:1 --select-every 1 --select-k 3"
  "select-prob|FEW|--task-sampler similar --target test-support:1 --select-every 1 --select-k 2 --select-prob 0.9"
  "select-every|FEW|--task-sampler similar --target test-support:1 --select-k 2 --select-prob 1 --iters 8 --select-every 4"
  "matching-scale|FEW|--algo matching --matching-scale 5"
  "exact-first-block|FEW|--algo maml --exact-first-block"
  "remember|FEW|--algo oml --remember 2"
  "epochs|SUP|--epochs 2"
  "lr|SUP|--lr 0.1"
  "clip|SUP|--clip 0.01"
  "limit|SUP|--limit 30"
  "shards|SUP|--shards 2"
  "split-by|OMN|--split-by alphabet"
  "test-alphabets|OMN|--test-alphabets Japanese_(katakana)"
  "lake-runs|OMN|--lake-runs $OMNI/all_runs.zip"
  "lake-steps|OMN|--lake-runs $OMNI/all_runs.zip --lake-steps 2"
  "federated|REG|--federated --clients 2 --local-iters 1"
  "clients|REG|--federated --clients 3 --local-iters 1"
  "client-fraction|REG|--federated --clients 4 --local-iters 1 --client-fraction 0.5"
  "local-iters|REG|--federated --clients 2 --local-iters 2"
  "rounds|REG|--federated --clients 2 --local-iters 1 --rounds 4"
  "env|RL|--env nav2d-rot"
  "rollouts|RL|--rollouts 4"
  "horizon|RL|--horizon 9"
  "outer|RL|--outer adam"
  "eval-lr|RL|--eval-lr 0.5"
  "eval-later-scale|RL|--eval-later-scale 0.5"
)
# Some variants need a base that already has a sibling setting: the base run of
# a row is the context plus these arguments (so only the named option differs).
declare -A BASE_EXTRA=(
  [finetune]="--algo pretrain --batch-size 4 --eval-steps 2 --inner-lr 0.5"
  [batch-size]="--algo pretrain --batch-size 4 --eval-steps 2"
  [curriculum-strength]="--task-sampler curriculum --iters 12"
  [target]="--task-sampler similar --select-k 2 --select-every 1 --target test-support:1"
  [select-k]="--task-sampler similar --target test-support:1 --select-every 1 --select-k 2"
  [select-prob]="--task-sampler similar --target test-support:1 --select-every 1 --select-k 2"
  [select-every]="--task-sampler similar --target test-support:1 --select-k 2 --select-prob 1 --iters 8 --select-every 1"
  [matching-scale]="--algo matching"
  [exact-first-block]="--algo maml"
  [remember]="--algo oml"
  [lake-steps]="--lake-runs $OMNI/all_runs.zip"
  [clients]="--federated --clients 2 --local-iters 1"
  [client-fraction]="--federated --clients 4 --local-iters 1"
  [local-iters]="--federated --clients 2 --local-iters 1"
  [rounds]="--federated --clients 2 --local-iters 1"
)
cp -r "$TMP/folder" "$TMP/folder2" && rm -r "$TMP/folder2/c00"

have_omniglot=0
[ -f "$OMNI/images_background_small1.zip" ] && [ -f "$OMNI/all_runs.zip" ] && have_omniglot=1

# run NAME CONTEXT ARGS...: a run in $TMP/NAME (stdout kept beside it), once;
# a failure is recorded in $TMP/NAME/failed.
run() {
  local name="$1" ctx="$2"; shift 2
  [ -d "$TMP/$name" ] && return
  local -n base="$ctx"
  mkdir -p "$TMP/$name"
  local out=(--out "$TMP/$name")
  "$BIN" train "${base[@]}" "$@" "${out[@]}" >"$TMP/$name/stdout" 2>"$TMP/$name/stderr" \
    || echo "exit $?: $(head -c 300 "$TMP/$name/stderr")" >"$TMP/$name/failed"
}

declare -A TESTED PAIR
for row in "${ROWS[@]}"; do
  IFS='|' read -r opt ctx args <<<"$row"
  TESTED[$opt]=1
  if [ "$ctx" = OMN ] && [ $have_omniglot = 0 ]; then skip "--$opt: needs Omniglot in $OMNI"; continue; fi
  extra="${BASE_EXTRA[$opt]:-}"
  basename="base_$ctx"; [ -n "$extra" ] && basename="base_$opt"
  # shellcheck disable=SC2086
  run "$basename" "$ctx" $extra
  # shellcheck disable=SC2086
  run "var_$opt" "$ctx" $args
  PAIR[$opt]="$basename"
done
declare -A FP
while read -r d h; do FP[$(basename "$d")]=$h; done < <(fingerprints "$TMP"/base_* "$TMP"/var_*)
for row in "${ROWS[@]}"; do
  IFS='|' read -r opt ctx args <<<"$row"
  [ -n "${PAIR[$opt]:-}" ] || continue
  a="${PAIR[$opt]}" b="var_$opt"
  if [ -e "$TMP/$a/failed" ] || [ -e "$TMP/$b/failed" ]; then
    bad "--$opt: a run failed: $(cat "$TMP/$a/failed" "$TMP/$b/failed" 2>/dev/null)"
  elif [ "${FP[$a]}" = "${FP[$b]}" ]; then
    bad "--$opt: '$args' gives the same result as without it (the option does not reach its code)"
  else ok "--$opt changes the result"; fi
done

# Every option is tested or exempt with a reason.
for opt in $("$BIN" train --help | sed -n 's/^  --\([a-z0-9-]*\) .*/\1/p'); do
  [ "$opt" = help ] && continue
  if [ -z "${TESTED[$opt]:-}" ] && [ -z "${EXEMPT[$opt]:-}" ]; then bad "--$opt: neither tested here nor exempt with a reason"; fi
done
ok "every train option is tested or listed as exempt (${#TESTED[@]} tested, ${#EXEMPT[@]} exempt)"

# config.json records the momentum the optimizer used: 0 for meta-learning's outer step by default.
"$BIN" train "${REG[@]}" --out "$TMP/mom_default" >/dev/null 2>&1
"$BIN" train "${REG[@]}" --momentum 0 --out "$TMP/mom_zero" >/dev/null 2>&1
grep -q '"momentum":[[:space:]]*0[,}]' "$TMP/mom_default/config.json" && cmp -s "$TMP/mom_default/checkpoint.safetensors" "$TMP/mom_zero/checkpoint.safetensors" \
  && ok "meta-learning: config.json's default momentum (0) is the one used" || bad "default momentum: $(grep -o '"momentum":[^,]*' "$TMP/mom_default/config.json")"
summary
