#!/usr/bin/env bash
# Hardening pass, on top of tools/run_tests.sh:
#   fuzz      a clang build with -DTOWERRT_FUZZ=ON (runtime compiled with
#             -fsanitize=fuzzer-no-link,address,undefined); every target of
#             tests/fuzz runs for FUZZ_SECONDS (-max_total_time,
#             -rss_limit_mb=2048, -timeout=10), FUZZ_JOBS at a time, from its
#             seeds (generated from the golden fixtures), the committed seeds,
#             the regressions and the corpus kept from earlier runs. Any
#             crash / leak / timeout / oom input is copied to
#             tests/fuzz/regressions/<target>/ and the script fails: the input
#             then replays in every ctest run (fuzz_replay_<target>).
#   tsan      a ThreadSanitizer build (-DTOWERRT_SANITIZE=thread) running the
#             threaded tests (ctest -L threads).
#   valgrind  a plain build (no ASan) with the CLI under valgrind
#             --leak-check=full: info, build-items, score by id and by
#             features on the first golden fixture, quantize --model and
#             scoring with the int8 model, and failing calls (a
#             truncated model, a missing file, an unknown item id).
# usage: tools/run_hardening.sh [fuzz] [tsan] [valgrind]   (default: all three)
# env:   FUZZ_SECONDS (default 60 per target), FUZZ_JOBS (default 2),
#        JOBS (build parallelism, default 2), HARDENING_BUILD (build root,
#        default ./build-hardening), CC_FUZZ (clang), CC_TSAN (clang; gcc works)
# About 5-6 minutes on 2 cores with FUZZ_SECONDS=60.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_JOBS=${FUZZ_JOBS:-2}
JOBS=${JOBS:-2}
B=${HARDENING_BUILD:-$ROOT/build-hardening}
TARGETS="fuzz_model_load fuzz_items_load fuzz_requests fuzz_score_api"
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(fuzz tsan valgrind)
failures=()
mkdir -p "$B"

note() { printf '== %s\n' "$*"; }
fail() {
  printf 'run_hardening: FAILED: %s\n' "$*" >&2
  failures+=("$*")
}

configure_build() { # dir target [cmake args...]
  local dir=$1 target=$2
  shift 2
  if ! cmake -S "$ROOT" -B "$dir" "$@" > "$dir.configure.log" 2>&1; then
    cat "$dir.configure.log" >&2
    return 1
  fi
  cmake --build "$dir" -j"$JOBS" ${target:+--target $target} > "$dir.build.log" 2>&1 || {
    tail -n 40 "$dir.build.log" >&2
    return 1
  }
}

# ---- (a) libFuzzer --------------------------------------------------------------
fuzz_one() { # target -> runs it, leaves $B/fuzz/logs/<t>.log and .rc
  local t=$1 art=$B/fuzz/artifacts/$t corpus=$B/fuzz/corpus/$t
  rm -rf "$art"
  mkdir -p "$art" "$corpus" "$B/fuzz/logs"
  local dirs=("$corpus" "$B/fuzz/seeds/$t")
  for d in "$ROOT/tests/fuzz/seeds/$t" "$ROOT/tests/fuzz/regressions/$t"; do [ -d "$d" ] && dirs+=("$d"); done
  "$B/fuzz/tests/$t" -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$art/" "${dirs[@]}" > "$B/fuzz/logs/$t.log" 2>&1
  echo $? > "$B/fuzz/logs/$t.rc"
}

step_fuzz() {
  note "fuzz: clang build with -DTOWERRT_FUZZ=ON ($B/fuzz)"
  if ! configure_build "$B/fuzz" fuzzers -DCMAKE_C_COMPILER="${CC_FUZZ:-clang}" -DTOWERRT_FUZZ=ON \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTOWERRT_BUILD_TOOLS=OFF; then
    fail "fuzz build"
    return
  fi
  rm -rf "$B/fuzz/seeds"
  "$B/fuzz/tests/fuzz_make_seeds" "$B/fuzz/seeds" > /dev/null || { fail "fuzz seeds"; return; }
  note "fuzz: ${FUZZ_SECONDS}s per target, $FUZZ_JOBS at a time"
  local running=0
  for t in $TARGETS; do
    fuzz_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$FUZZ_JOBS" ]; then
      wait -n
      running=$((running - 1))
    fi
  done
  wait
  for t in $TARGETS; do
    local log=$B/fuzz/logs/$t.log rc
    rc=$(cat "$B/fuzz/logs/$t.rc" 2>/dev/null || echo 1)
    local execs cov
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -E '^#[0-9]+[[:space:]]+(DONE|INITED|pulse|NEW|REDUCE)' "$log" | tail -n 1 | sed -n 's/.*\(cov: [0-9]*\).*\(ft: [0-9]*\).*\(corp: [^ ]*\).*/\1 \2 \3/p')
    printf '   %-16s rc %s, %s executions, %s\n' "$t" "$rc" "${execs:-?}" "${cov:-?}"
    local found=0
    for f in "$B/fuzz/artifacts/$t"/*; do
      [ -f "$f" ] || continue
      mkdir -p "$ROOT/tests/fuzz/regressions/$t"
      cp "$f" "$ROOT/tests/fuzz/regressions/$t/"
      printf '   finding: %s -> tests/fuzz/regressions/%s/%s\n' "$f" "$t" "$(basename "$f")"
      found=1
    done
    if [ "$found" -eq 1 ] || [ "$rc" != 0 ]; then
      grep -E 'ERROR|CONTRACT|SUMMARY|runtime error' "$log" | head -n 5 >&2
      fail "fuzz $t (log: $log)"
    fi
  done
}

# ---- (b) ThreadSanitizer ----------------------------------------------------------
step_tsan() {
  note "tsan: -DTOWERRT_SANITIZE=thread ($B/tsan), ctest -L threads"
  if ! configure_build "$B/tsan" "" -DCMAKE_C_COMPILER="${CC_TSAN:-clang}" -DTOWERRT_SANITIZE=thread \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTOWERRT_BUILD_TOOLS=OFF; then
    fail "tsan build"
    return
  fi
  TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}" \
    ctest --test-dir "$B/tsan" -L threads --output-on-failure -j"$JOBS" || fail "tsan: ctest -L threads"
}

# ---- (c) valgrind ------------------------------------------------------------------
vg() { # expected-exit-code command...: valgrind errors or leaks exit 97
  local want=$1
  shift
  valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect,possible \
    --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=97 "$@" \
    > "$B/valgrind.out" 2> "$B/valgrind.err"
  local rc=$?
  if [ "$rc" -ne "$want" ]; then
    cat "$B/valgrind.err" >&2
    fail "valgrind (exit $rc, want $want): ${*##*/}"
  else
    printf '   ok (exit %s): %s\n' "$rc" "$(printf '%s ' "$@" | sed "s#$ROOT/##g; s#$B/##g")"
  fi
}

step_valgrind() {
  note "valgrind: plain build ($B/plain), the CLI under valgrind --leak-check=full"
  command -v valgrind > /dev/null || { fail "valgrind is not installed"; return; }
  if ! configure_build "$B/plain" towerrt -DCMAKE_BUILD_TYPE=RelWithDebInfo; then
    fail "plain build"
    return
  fi
  local cli=$B/plain/towerrt w=$B/valgrind-work fx
  fx=$(ls -d "$ROOT"/tests/fixtures/golden/*/ | sort | head -n 1)
  fx=${fx%/}
  rm -rf "$w"
  mkdir -p "$w"
  vg 0 "$cli" info "$fx/model.twr" --plan
  vg 0 "$cli" build-items --model "$fx/model.twr" --features "$fx/items.txt" --out "$w/items.twi"
  vg 0 "$cli" score --model "$fx/model.twr" --items "$w/items.twi" --requests "$fx/requests_ids.txt" --out "$w/ids.txt"
  vg 0 "$cli" score --model "$fx/model.twr" --requests "$fx/requests_features.txt" --out "$w/features.txt"
  vg 0 "$cli" quantize --model "$fx/model.twr" --precision int8 --static-input-scales \
    --calibration "$fx/requests_ids.txt" --items "$w/items.twi" --out "$w/model-int8.twr"
  vg 0 "$cli" score --model "$w/model-int8.twr" --items "$w/items.twi" --requests "$fx/requests_ids.txt" --out "$w/ids8.txt"
  vg 1 "$cli" quantize --model "$w/model-int8.twr" --precision bf16 --out "$w/never.twr"
  head -c 5000 "$fx/model.twr" > "$w/truncated.twr"
  vg 1 "$cli" info "$w/truncated.twr"
  vg 1 "$cli" info "$w/missing.twr"
  vg 1 "$cli" score --model "$w/truncated.twr" --items "$w/items.twi" --requests "$fx/requests_ids.txt"
  printf 'towerrt-requests 1\nuser %s\nitems 12345678901234567\nend\n' \
    "$(sed -n 's/^user //p' "$fx/requests_ids.txt" | head -n 1)" > "$w/unknown.txt"
  vg 1 "$cli" score --model "$fx/model.twr" --items "$w/items.twi" --requests "$w/unknown.txt"
}

start=$(date +%s)
for s in "${steps[@]}"; do
  case $s in
    fuzz) step_fuzz ;;
    tsan) step_tsan ;;
    valgrind) step_valgrind ;;
    *)
      echo "usage: tools/run_hardening.sh [fuzz] [tsan] [valgrind]" >&2
      exit 2
      ;;
  esac
done
echo "run_hardening: $(($(date +%s) - start)) s"
if [ ${#failures[@]} -ne 0 ]; then
  printf 'run_hardening: %d step(s) failed:\n' "${#failures[@]}" >&2
  printf '  - %s\n' "${failures[@]}" >&2
  exit 1
fi
echo "run_hardening: all passed"
