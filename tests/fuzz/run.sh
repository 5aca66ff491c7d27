#!/usr/bin/env bash
# Builds the libFuzzer harnesses (clang, ASan + UBSan) into build-fuzz/ and runs each for
# SECONDS (default 60), FUZZ_JOBS at a time (default 2). Prints per harness the executions,
# coverage (libFuzzer's final cov / ft) and findings; exits non-zero on any crash, hang,
# leak or sanitizer report. Findings are kept in build-fuzz/findings/<harness>/.
#   tests/fuzz/run.sh [SECONDS]     FUZZ_HARNESSES="sweep sst2" restricts the set.
set -euo pipefail
SECONDS_EACH=${1:-60}
JOBS=${FUZZ_JOBS:-2}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}
CXX_BIN=${FUZZ_CXX:-$(command -v clang++-14 || command -v clang++)}
CC_BIN=${FUZZ_CC:-$(command -v clang-14 || command -v clang)}
HARNESSES=${FUZZ_HARNESSES:-"sweep safetensors wordpiece hf_config adapter_config bnb_quant_state sst2 imdb wikitext"}

if [[ ! -f $BUILD/CMakeCache.txt ]]; then
  CC=$CC_BIN CXX=$CXX_BIN cmake -S "$HERE" -B "$BUILD" >/dev/null
fi
cmake --build "$BUILD" -j"$JOBS" >"$BUILD/build.log" 2>&1 || { tail -40 "$BUILD/build.log"; echo "fuzz: build failed"; exit 2; }

run_one() {  # harness → $BUILD/logs/<h>.log, findings in $BUILD/findings/<h>/
  local h=$1 secs=$2 build=$3 here=$4
  local work=$build/corpus/$h findings=$build/findings/$h
  rm -rf "$findings"  # this run's findings only
  mkdir -p "$work" "$findings" "$build/logs"
  # -rss_limit_mb: a parser that needs more than 2 GB for a few kB of input is a finding.
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$build/fuzz_$h" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$findings/" "$work" "$here/corpus/$h" >"$build/logs/$h.log" 2>&1
  echo $? >"$build/logs/$h.rc"
}
export -f run_one
echo "fuzz: $HARNESSES: ${SECONDS_EACH}s each, $JOBS at a time"
printf '%s\n' $HARNESSES | xargs -P "$JOBS" -I{} bash -c 'run_one "$@"' _ {} "$SECONDS_EACH" "$BUILD" "$HERE"

status=0
printf '%-16s %12s %8s %8s %9s  %s\n' harness executions cov ft findings result
for h in $HARNESSES; do
  log=$BUILD/logs/$h.log
  rc=$(cat "$BUILD/logs/$h.rc" 2>/dev/null || echo 99)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | grep -E 'cov: ' | tail -1 || true)
  cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$last")
  findings=$(find "$BUILD/findings/$h" -type f 2>/dev/null | wc -l)
  sanitizer=$(grep -c -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:' "$log" || true)
  result=ok
  if [[ $rc != 0 || $findings != 0 || $sanitizer != 0 ]]; then
    result="FAILED (rc $rc; see $log)"
    status=1
  fi
  printf '%-16s %12s %8s %8s %9s  %s\n' "$h" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$findings" "$result"
done
exit $status
