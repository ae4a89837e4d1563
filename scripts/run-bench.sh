#!/usr/bin/env bash
# Runs every Google Benchmark program in <build-dir>/bench (5 repetitions each, one BLAS thread)
# and prints the median rows. Full results (mean, median, stddev, cv) go to
# <build-dir>/bench-results/<program>.json. Extra arguments are passed to every program, e.g.
#   scripts/run-bench.sh build --benchmark_filter=FwdBwd
set -euo pipefail
dir=${1:-build}
shift || true
export OPENBLAS_NUM_THREADS=1
bench_dir="$dir/bench"
if [ ! -d "$bench_dir" ]; then
  echo "run-bench: no $bench_dir; configure with libbenchmark-dev installed (-Dbench=enabled)" >&2
  exit 1
fi
out_dir="$dir/bench-results"
mkdir -p "$out_dir"
found=0
status=0
for exe in "$bench_dir"/*; do
  [ -f "$exe" ] && [ -x "$exe" ] || continue
  found=1
  name=$(basename "$exe")
  echo "== $name (medians of 5 repetitions)"
  log=$(mktemp)
  if "$exe" --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
       --benchmark_out="$out_dir/$name.json" --benchmark_out_format=json "$@" >"$log" 2>&1; then
    # Header lines, then the median rows only.
    grep -E '^(Benchmark|-{10,})' "$log" | head -2 || true
    grep -E '_median' "$log" || true
  else
    cat "$log"
    echo "run-bench: $name failed" >&2
    status=1
  fi
  rm -f "$log"
done
[ "$found" -eq 1 ] || { echo "run-bench: no benchmark programs in $bench_dir" >&2; exit 1; }
echo "(full results: $out_dir/*.json)"
exit "$status"
