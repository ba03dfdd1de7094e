#!/usr/bin/env bash
# `cmake --install` into a temporary prefix, then use the library the way a C
# programmer would: the umbrella header covers every public header,
# metalearn.pc compiles examples/c/adapt_predict.c against the shared library
# and (--static) against libmetalearn.a, and both predict what the installed
# `metalearn predict` prints for a small sinusoid MAML run made here. The
# installed CLI and Python package run from the prefix.
# Usage: install.sh BUILD_DIR SOURCE_DIR VERSION
set -euo pipefail
build="$1" src="$2" version="$3"
for tool in cc pkg-config readelf; do
  command -v "$tool" >/dev/null || { echo "skipped: $tool is missing (scripts/install-deps.sh)"; exit 77; }
done
tmp=$(mktemp -d "${ML_TEST_TMP:-${TMPDIR:-/tmp}}/install.XXXXXX" 2>/dev/null || mktemp -d)
trap 'rm -rf "$tmp"' EXIT
P="$tmp/prefix"
fail() { echo "FAIL: $*"; exit 1; }

cmake --install "$build" --prefix "$P" >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; fail "cmake --install"; }

# What the prefix holds.
for f in include/metalearn.h lib/libmetalearn.a lib/libmetalearn.so lib/libmetalearn.so.0 \
         "lib/libmetalearn.so.$version" lib/pkgconfig/metalearn.pc bin/metalearn; do
  [ -e "$P/$f" ] || fail "$f not installed"
done
for h in "$src"/include/metalearn/*.h; do
  n=${h##*/}
  [ -f "$P/include/metalearn/$n" ] || fail "include/metalearn/$n not installed"
  grep -q "#include \"metalearn/$n\"" "$P/include/metalearn.h" || fail "include/metalearn.h does not include metalearn/$n: add the line there (the umbrella header lists every public header)"
done
readelf -d "$P/lib/libmetalearn.so" | grep -q 'SONAME.*\[libmetalearn\.so\.0\]' || fail "SONAME is not libmetalearn.so.0"
if nm -D --defined-only "$P/lib/libmetalearn.so" | awk '{print $3}' | grep -v '^ml_' | grep -q .; then
  fail "libmetalearn.so exports names outside ml_: $(nm -D --defined-only "$P/lib/libmetalearn.so" | awk '{print $3}' | grep -v '^ml_' | head -5 | tr '\n' ' ')"
fi
nm -D --defined-only "$P/lib/libmetalearn.so" | grep -q ' ml__' && fail "libmetalearn.so exports internal ml__ names"
# The exports are the public API: every function the headers declare (and
# the library defines) is exported, and nothing the headers do not declare.
cat "$P"/include/metalearn/*.h | grep -oE '\bml_[a-z0-9_]+ *\(' | sed 's/ *($//' | sort -u >"$tmp/declared"
nm -D --defined-only "$P/lib/libmetalearn.so" | awk '{print $3}' | sort -u >"$tmp/exported"
nm --defined-only "$P/lib/libmetalearn.a" 2>/dev/null | awk '$2 == "T" {print $3}' | sort -u >"$tmp/defined"
missing=$(comm -12 "$tmp/declared" "$tmp/defined" | comm -23 - "$tmp/exported")
[ -z "$missing" ] || fail "declared in include/ but not exported by libmetalearn.so: $missing"
extra=$(comm -13 "$tmp/declared" "$tmp/exported")
[ -z "$extra" ] || fail "exported by libmetalearn.so but declared in no public header: $extra"

# The installed command.
v=$("$P/bin/metalearn" --version) || fail "bin/metalearn --version failed"
case "$v" in *"$version"*) ;; *) fail "bin/metalearn --version says '$v', want $version" ;; esac

# A tiny run to adapt: 20 iterations of sinusoid MAML (a fraction of a second).
"$P/bin/metalearn" train --algo maml --task sinusoid --iters 20 --meta-batch 4 --log-every 10 \
    --eval-tasks 10 --threads 1 --out "$tmp/run" --quiet >"$tmp/train.log" 2>&1 || { cat "$tmp/train.log"; fail "train"; }
python3 - "$tmp" <<'PY'
import math, sys
d = sys.argv[1]
with open(f"{d}/support.csv", "w") as f:
    for i in range(10): x = -4.5 + i; print(f"{x},{2.0 * math.sin(x + 0.5)}", file=f)
with open(f"{d}/query.csv", "w") as f:
    for i in range(7): print(f"{-3.0 + i * 0.9}", file=f)
PY
"$P/bin/metalearn" predict "$tmp/run" --support "$tmp/support.csv" --query "$tmp/query.csv" --steps 5 --quiet \
    >"$tmp/cli.csv" 2>"$tmp/cli.err" || { cat "$tmp/cli.err"; fail "metalearn predict"; }
tail -n +2 "$tmp/cli.csv" | cut -d, -f2 >"$tmp/want.txt"
[ "$(wc -l <"$tmp/want.txt")" -eq 7 ] || fail "predict printed $(wc -l <"$tmp/want.txt") rows, want 7"

export PKG_CONFIG_PATH="$P/lib/pkgconfig"
pkg-config --modversion metalearn | grep -qx "$version" || fail "pkg-config --modversion metalearn: $(pkg-config --modversion metalearn)"
example="$src/examples/c/adapt_predict.c"
# Shared: only the prefix's headers and library (rpath so it runs from there).
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror -o "$tmp/adapt_shared" "$example" $(pkg-config --cflags --libs metalearn) \
    -Wl,-rpath,"$P/lib" 2>"$tmp/cc.log" || { cat "$tmp/cc.log"; fail "compiling the example against the prefix"; }
readelf -d "$tmp/adapt_shared" | grep -q 'NEEDED.*libmetalearn\.so\.0' || fail "the example does not link libmetalearn.so.0"
"$tmp/adapt_shared" "$tmp/run" "$tmp/support.csv" "$tmp/query.csv" 5 >"$tmp/shared.txt" || fail "the example (shared) failed"
cmp -s "$tmp/shared.txt" "$tmp/want.txt" || { paste "$tmp/shared.txt" "$tmp/want.txt"; fail "the example (shared) predicts otherwise than metalearn predict"; }
# Static: libmetalearn.a, its dependencies from Libs.private / Requires.private.
# shellcheck disable=SC2046
cc -std=c11 -o "$tmp/adapt_static" "$example" $(pkg-config --cflags metalearn) \
    -Wl,-Bstatic -lmetalearn -Wl,-Bdynamic -Wl,--as-needed $(pkg-config --static --libs metalearn) \
    2>"$tmp/cc.log" || { cat "$tmp/cc.log"; fail "linking the example statically"; }
readelf -d "$tmp/adapt_static" | grep -q 'libmetalearn' && fail "the static example still needs libmetalearn.so"
"$tmp/adapt_static" "$tmp/run" "$tmp/support.csv" "$tmp/query.csv" 5 >"$tmp/static.txt" || fail "the example (static) failed"
cmp -s "$tmp/static.txt" "$tmp/want.txt" || fail "the example (static) predicts otherwise than metalearn predict"
# Bad input: a clear message and exit 1, not a crash.
set +e
"$tmp/adapt_shared" "$tmp/run" "$tmp/query.csv" "$tmp/query.csv" 5 >/dev/null 2>"$tmp/bad.err"; rc=$?
set -e
[ "$rc" -eq 1 ] && grep -q "support rows need 2 columns" "$tmp/bad.err" || fail "bad support file: exit $rc, $(cat "$tmp/bad.err")"

# The Python package, when it is built (python/metalearn) and NumPy is there.
if [ -d "$src/python/metalearn" ] && python3 -c "import numpy" 2>/dev/null; then
  site="$P/lib/python3/dist-packages"
  [ -f "$site/metalearn/__init__.py" ] || fail "the Python package is not in $site"
  got=$(cd "$tmp" && env -u ML_LIBRARY PYTHONPATH="$site" python3 -c \
        "import metalearn, metalearn._lib as L; print(metalearn.__version__, L.lib._name)") || fail "import metalearn from $site"
  [ "$got" = "$version $P/lib/libmetalearn.so" ] || [ "$got" = "$version $P/lib/libmetalearn.so.0" ] || fail "installed package: $got"
fi
echo "ok: installed into a prefix; the example (shared and static) predicts as metalearn predict"
