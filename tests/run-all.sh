#!/bin/bash
# Build gatewayd and run every test, then do it again with AddressSanitizer
# and UndefinedBehaviorSanitizer. Exits non-zero if anything fails.
#
#   sudo tests/run-all.sh              everything (installs missing packages)
#   tests/run-all.sh -L pop            arguments go to ctest: only the POP3 tests
#   GW_SKIP_ASAN=1 tests/run-all.sh    skip the sanitizer pass
#   GW_SKIP_FUZZ=1 tests/run-all.sh    skip the libFuzzer pass (clang; GW_FUZZ_SECONDS each)
#   GW_JOBS=1 tests/run-all.sh         ctest parallelism (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash tests/support/install-deps.sh

jobs=${GW_JOBS:-2}
ncpu=$(nproc 2>/dev/null || echo 2)
status=0

# run_pass NAME BUILD_DIR [cmake options...] -- [ctest args...]
run_pass() {
  local name=$1 dir=$2
  shift 2
  local cmake_args=()
  while (($# > 0)) && [ "$1" != "--" ]; do
    cmake_args+=("$1")
    shift
  done
  (($# > 0)) && shift
  local t0=$SECONDS
  echo "=== $name: configure and build in $dir"
  if ! cmake -S "$root" -B "$root/$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${cmake_args[@]}" >"$root/$dir.cmake.log" 2>&1; then
    cat "$root/$dir.cmake.log"
    echo "=== $name: cmake FAILED"
    return 1
  fi
  if ! cmake --build "$root/$dir" -j"$ncpu"; then
    echo "=== $name: build FAILED"
    return 1
  fi
  echo "=== $name: ctest $*"
  local rc=0
  (cd "$root/$dir" && ctest --output-on-failure --no-tests=error -j"$jobs" "$@") || rc=$?
  echo "=== $name: $([ $rc -eq 0 ] && echo passed || echo FAILED) in $((SECONDS - t0)) s"
  return $rc
}

run_pass "release" build -- "$@" || status=1

if [ "${GW_SKIP_ASAN:-0}" != 1 ]; then
  # Leaks are reported at exit of every process (gatewayd's workers too)
  # into its log, which the integration tests scan; a report fails the test.
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:exitcode=23:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  export LSAN_OPTIONS="exitcode=23"
  run_pass "asan" build-asan -DGW_SANITIZE=ON -- "$@" || status=1
fi

# The libFuzzer harnesses (one per parser, and the config loader), each for
# GW_FUZZ_SECONDS on its seed corpus. Only when no ctest selection was given.
if [ "${GW_SKIP_FUZZ:-0}" != 1 ] && [ $# -eq 0 ] && command -v clang >/dev/null; then
  CC=clang run_pass "fuzz" build-fuzz -DGW_FUZZ=ON -DGW_FUZZ_SECONDS="${GW_FUZZ_SECONDS:-20}" \
    -- -L fuzz || status=1
fi

if [ $status -eq 0 ]; then
  echo "=== all passes succeeded"
else
  echo "=== FAILED (see above)"
fi
exit $status
