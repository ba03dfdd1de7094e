#!/usr/bin/env bash
# The installed library must run on any x86-64: outside the per-ISA clones of
# ML_KERNEL functions (name.arch_x86_64_v3 / _v4, picked at load time) and the
# AVX-512 paths taken after a CPU check (*avx512*), libmetalearn.so may hold no
# AVX instruction (VEX/EVEX-encoded: v..., mask registers k...). A -march=native
# build fails this (its loops are AVX-512 everywhere).
# Usage: portable_isa.sh LIBMETALEARN_SO
set -euo pipefail
lib="$1"
command -v objdump >/dev/null || { echo "objdump missing (binutils): skipped"; exit 77; }
bad=$(objdump -d --no-show-raw-insn "$lib" | awk '
  /^[0-9a-f]+ <.*>:$/ { fn = $2; next }
  $2 ~ /^(v[a-z0-9]+|k(mov|and|or|not|shift)[a-z]*)$/ && fn !~ /arch_x86_64_v[34]|avx512/ { n[fn]++ }
  END { for (f in n) print n[f], f }' | sort -rn)
if [ -n "$bad" ]; then
  echo "AVX instructions outside dispatched code in $lib (count, function):"
  echo "$bad" | head -20
  exit 1
fi
clones=$(objdump -d "$lib" | grep -c '\.arch_x86_64_v4>:$' || true)
[ "$clones" -gt 0 ] || { echo "no AVX-512 clones in $lib: is ML_KERNEL defined away?"; exit 1; }
echo "ok: $clones AVX-512 kernel clones, no AVX outside them"
