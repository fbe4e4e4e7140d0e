#!/usr/bin/env bash
# The whole test suite: a -Werror build with every test, then the whole
# suite again under AddressSanitizer + UndefinedBehaviorSanitizer.
# Usage: bash tools/run_tests.sh [--quick]   (--quick: skip the sanitizer pass)
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=$(nproc)
quick=0
[ "${1:-}" = "--quick" ] && quick=1

echo "== build (Release, -Werror) and ctest"
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTOWERRT_WERROR=ON > /dev/null
cmake --build build-test -j"$JOBS"
ctest --test-dir build-test --output-on-failure -j"$JOBS"

if [ $quick -eq 0 ]; then
  echo "== ASan + UBSan build and ctest"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTOWERRT_WERROR=ON \
        -DTOWERRT_SANITIZE=address,undefined > /dev/null
  cmake --build build-asan -j"$JOBS"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j"$JOBS"
fi
echo "run_tests: all suites passed"
