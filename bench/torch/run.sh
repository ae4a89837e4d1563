#!/usr/bin/env bash
# Builds and runs the libtorch comparison benchmarks (needs Debian's libtorch-dev; not part of
# `make test`). Usage: bench/torch/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for src in "$here"/*.cpp; do
  exe="$out/$(basename "$src" .cpp)"
  g++ -std=c++17 -O2 -DNDEBUG "$src" -I/usr/include/torch/csrc/api/include \
    -ltorch -ltorch_cpu -lc10 -o "$exe"
  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$exe"
done
