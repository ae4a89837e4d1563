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
    if command -v python3 >/dev/null; then
      # Median rows with counters as plain numbers (the console shows 1250 ns/op as "1.25ks").
      python3 - "$out_dir/$name.json" <<'PY' || true
import json, sys
try:
    runs = json.load(open(sys.argv[1]))["benchmarks"]
except (OSError, ValueError, KeyError):
    runs = []  # nothing matched the filter: Google Benchmark writes an empty file
rows = [b for b in runs if b.get("aggregate_name") == "median"]
skip = {"name", "run_name", "run_type", "repetitions", "threads", "aggregate_name",
        "aggregate_unit", "iterations", "real_time", "cpu_time", "time_unit", "family_index",
        "per_family_instance_index", "repetition_index", "label"}
if not rows:
    print("(no benchmark matched)")
width = max((len(b["run_name"]) for b in rows), default=0)
for b in rows:
    counters = "  ".join(f"{k}={v:.6g}" for k, v in b.items() if k not in skip)
    print(f"{b['run_name']:<{width}}  cpu {b['cpu_time']:10.4g} {b['time_unit']}  {counters}")
PY
    else
      grep -E '^Benchmark |_median' "$log" || echo "(no benchmark matched)"
    fi
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
