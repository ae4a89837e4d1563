#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) in their own build directory and runs
# each for a fixed number of inputs, starting from the seed corpus in tests/fuzz/corpus/<target>/.
# New inputs the fuzzer finds go to a temporary directory, never into the repository.
#
#   tests/fuzz/run.sh [build-dir]        default build-fuzz; FUZZ_RUNS (20000), FUZZ_SEED (1)
#
# Prints one line per target, "fuzz <target>: ok (N inputs)" or "fuzz <target>: FAILED ...", and
# exits 0 when all pass, 1 when one fails, 77 when clang++ is absent (nothing was run).
set -uo pipefail
dir=${1:-build-fuzz}
runs=${FUZZ_RUNS:-20000}
seed=${FUZZ_SEED:-1}
here=$(cd "$(dirname "$0")" && pwd)
targets=(csv checkpoint)
binaries=()
for t in "${targets[@]}"; do binaries+=("tests/fuzz/${t}_fuzz"); done

cxx=$(command -v clang++ || command -v clang++-14 || true)
if [ -z "$cxx" ]; then
  echo "fuzz: SKIPPED, clang++ is not installed (make deps installs clang and libfuzzer-14-dev)"
  exit 77
fi
if [ ! -f "$dir/build.ninja" ]; then
  # werror off: this build only serves the fuzzer; the warnings gate is the g++ build.
  CXX="$cxx" meson setup "$dir" --buildtype=debugoptimized -Dfuzz=enabled -Dbench=disabled \
    -Dwerror=false -Db_sanitize=address,undefined -Db_lundef=false > "$dir.setup.log" 2>&1 ||
    { cat "$dir.setup.log"; echo "fuzz: FAILED to configure $dir"; exit 1; }
  rm -f "$dir.setup.log"
fi
if ! ninja -C "$dir" "${binaries[@]}" > /dev/null 2>&1; then
  ninja -C "$dir" "${binaries[@]}" 2>&1 | tail -30
  echo "fuzz: FAILED to build the targets in $dir"
  exit 1
fi

status=0
for t in "${targets[@]}"; do
  work=$(mktemp -d)
  log="$work.log"
  # halt_on_error: a UBSan report is a finding, not a warning.
  if ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     "$dir/tests/fuzz/${t}_fuzz" -runs="$runs" -seed="$seed" -max_len=4096 -timeout=10 \
       -rss_limit_mb=2048 -artifact_prefix="$work/" "$work" "$here/corpus/$t" > "$log" 2>&1; then
    echo "fuzz $t: ok ($runs inputs)"
  else
    tail -40 "$log"
    echo "fuzz $t: FAILED (reproducer in $work/, log $log)"
    status=1
    continue
  fi
  rm -rf "$work" "$log"
done
exit $status
