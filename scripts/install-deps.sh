#!/usr/bin/env bash
# The one list of Debian packages metalearn needs to build, test and benchmark.
# Idempotent: skips apt entirely when everything is already installed.
set -euo pipefail
PACKAGES=(
  build-essential cmake pkg-config
  libdnnl-dev            # oneDNN: SGEMM (AVX-512 JIT) under the matmul and im2col convolutions
  zlib1g-dev             # gzip'd IDX files, PNG output
  libcjson-dev           # safetensors headers, config files
  libzip-dev             # Omniglot zips, read directly
  libspng-dev            # PNG decoding
  libopenmpi-dev openmpi-bin  # MPI: mpirun -np N metalearn train (data-parallel; optional: cmake -DML_MPI=OFF)
  dataset-fashion-mnist  # Fashion-MNIST in /usr/share/datasets/fashion-mnist
  python3                # the CLI tests generate small data sets with it (standard library only)
  python3-numpy          # the Python package (python/metalearn): arrays in and out
  clang libclang-rt-14-dev libomp-dev  # the fuzz stage of scripts/test.sh: libFuzzer, OpenMP for clang
)
# The test command's extras: pytest runs tests/python; PyTorch for the package's
# interop tests (they skip without it).
TEST_PACKAGES=(python3-pytest python3-torch)
# Reference implementations for benchmarks only (bench/, not needed by the library);
# --bench also installs the test extras (PyTorch is the reference).
BENCH_PACKAGES=(libopenblas0-pthread  # OpenBLAS: torch's best BLAS here
                python3-sklearn  # only for the diabetes table it ships (bench/diabetes_csv.sh)
                time bc)  # GNU time's peak RSS, in MB: the memory benchmarks (bench/lib/peak_rss.sh)

want=("${PACKAGES[@]}")
case "${1:-}" in
  --test) want+=("${TEST_PACKAGES[@]}") ;;
  --bench) want+=("${TEST_PACKAGES[@]}" "${BENCH_PACKAGES[@]}") ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
