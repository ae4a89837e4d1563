#!/usr/bin/env bash
# Runs the whole suite in each build directory given (release, then sanitizers) and ends with
# one summary line "tests: N passed, M failed" over all of them. Exit status: 0 only if all pass.
set -uo pipefail
export OPENBLAS_NUM_THREADS=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
passed=0
failed=0
for dir in "$@"; do
  echo "== meson test in $dir"
  log=$(mktemp)
  meson test -C "$dir" --print-errorlogs 2>&1 | tee "$log"
  ok=$(grep -E '^Ok:' "$log" | awk '{print $2}')
  bad=$(grep -E '^(Fail|Unexpected Pass|Timeout):' "$log" | awk '{s += $NF} END {print s + 0}')
  [ -n "$ok" ] || { ok=0; bad=$((bad + 1)); }
  passed=$((passed + ok))
  failed=$((failed + bad))
  rm -f "$log"
done
# libFuzzer targets (tests/fuzz/): built with clang in their own directory, a fixed number of
# inputs each; one test per target. Skipped, and said so, only when clang++ is not installed.
echo "== fuzz targets (${FUZZ_BUILD:-build-fuzz})"
fuzz_log=$(mktemp)
tests/fuzz/run.sh "${FUZZ_BUILD:-build-fuzz}" | tee "$fuzz_log"
fuzz_status=${PIPESTATUS[0]}
passed=$((passed + $(grep -c '^fuzz .*: ok' "$fuzz_log")))
# Any FAILED line counts, "fuzz: FAILED to build ..." included (it once passed unnoticed), and
# so does a failing run.sh that printed none; 77 means clang++ is absent (said, not a failure).
fuzz_failed=$(grep -c '^fuzz.*FAILED' "$fuzz_log")
if [ "$fuzz_status" -ne 0 ] && [ "$fuzz_status" -ne 77 ] && [ "$fuzz_failed" -eq 0 ]; then fuzz_failed=1; fi
failed=$((failed + fuzz_failed))
rm -f "$fuzz_log"
# An outside program: install the release build and compile the README example with pkg-config.
echo "== install; the README example built with pkg-config and with CMake ($1)"
if scripts/check-install.sh "$1"; then passed=$((passed + 1)); else echo "install check FAILED"; failed=$((failed + 1)); fi
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
