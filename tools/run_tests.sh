#!/usr/bin/env bash
# The whole test suite: a -Werror build with every test, then again with
# the kernels and oneDNN capped at AVX2 (on x86-64 hosts); the whole suite
# again under AddressSanitizer + UndefinedBehaviorSanitizer; then the
# hardening pass (tools/run_hardening.sh): every libFuzzer target for a
# bounded time (FUZZ_SECONDS, default 60), the threaded tests under
# ThreadSanitizer, the CLI under valgrind memcheck.
# In between, when the cross tools are installed: the whole project
# cross-built for aarch64 and its whole suite under qemu-aarch64
# (docs/arm.md), and the minimal static build (TOWERRT_MINIMAL) with its suite.
# Usage: bash tools/run_tests.sh [--quick]   (--quick: only the first build)
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=$(nproc)
quick=0
[ "${1:-}" = "--quick" ] && quick=1

cross=0
command -v aarch64-linux-gnu-gcc > /dev/null && command -v qemu-aarch64 > /dev/null && cross=1

echo "== build (Release, -Werror) and ctest"
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTOWERRT_WERROR=ON > /dev/null
cmake --build build-test -j"$JOBS"
# The aarch64-labelled tests cross-compile the kernel test alone; with the
# cross tools the aarch64 build below runs that test, for every table and
# more CPU models, inside the whole suite, so they are left to it.
native_filter=()
[ $cross -eq 1 ] && native_filter=(-LE aarch64)
ctest --test-dir build-test --output-on-failure -j"$JOBS" "${native_filter[@]}"

if [ $cross -eq 1 ]; then
  # TOWERRT_TEST_ROUNDS=1: the kernel tests' shapes on one seed, not four
  # (emulated, they are most of the time).
  echo "== aarch64: cross build (-Werror) and the whole ctest under qemu-aarch64"
  cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=tools/cmake/aarch64-linux-gnu.cmake \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTOWERRT_WERROR=ON > /dev/null
  cmake --build build-aarch64 -j"$JOBS"
  TOWERRT_TEST_ROUNDS=1 ctest --test-dir build-aarch64 --output-on-failure -j"$JOBS"
else
  echo "== aarch64: aarch64-linux-gnu-gcc or qemu-aarch64 missing (tools/install_deps.sh): cross build skipped"
fi

# CI and developer machines differ (AVX2-only or AVX-512): run the suite
# again with towerrt's kernels and oneDNN both capped at AVX2, so that an
# AVX-512 machine catches what an AVX2-only host would hit. (The aarch64
# tests run under qemu and do not depend on this CPU.)
if grep -qw avx2 /proc/cpuinfo 2>/dev/null; then
  echo "== ctest again, capped at AVX2 (TOWERRT_ISA=avx2, ONEDNN_MAX_CPU_ISA=AVX2)"
  # (the python package's venv build is the same C library: once is enough)
  TOWERRT_ISA=avx2 ONEDNN_MAX_CPU_ISA=AVX2 ctest --test-dir build-test --output-on-failure -j"$JOBS" -LE "aarch64|python"
fi

if [ $quick -eq 0 ]; then
  # -O3 finds warnings -O2 does not (format truncation, maybe-uninitialized):
  # the Release build a user makes must build with -Werror too.
  echo "== Release (-O3) build with -Werror"
  cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DTOWERRT_WERROR=ON > /dev/null
  cmake --build build-release -j"$JOBS" > build-release.log 2>&1 || { tail -n 60 build-release.log; exit 1; }

  echo "== minimal static build (TOWERRT_MINIMAL: no oneDNN, hwloc, bench) and ctest"
  cmake -S . -B build-minimal -DCMAKE_BUILD_TYPE=Release -DTOWERRT_WERROR=ON -DTOWERRT_MINIMAL=ON > /dev/null
  cmake --build build-minimal -j"$JOBS" > build-minimal.log 2>&1 || { tail -n 60 build-minimal.log; exit 1; }
  ctest --test-dir build-minimal --output-on-failure -j"$JOBS" -LE "aarch64|python"  # the venv build: the same package as build-test

  echo "== ASan + UBSan build and ctest"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTOWERRT_WERROR=ON \
        -DTOWERRT_SANITIZE=address,undefined > /dev/null
  cmake --build build-asan -j"$JOBS"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j"$JOBS" -LE "aarch64|python"  # cross-built; the venv build is not sanitized
  echo "== hardening: fuzzing, ThreadSanitizer, valgrind"
  FUZZ_SECONDS=${FUZZ_SECONDS:-60} bash tools/run_hardening.sh
fi
echo "run_tests: all suites passed"
