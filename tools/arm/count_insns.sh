#!/usr/bin/env bash
# Instructions executed per candidate by each aarch64 MaxSim kernel, counted
# under qemu-aarch64 (docs/arm.md, "Evidence without ARM hardware").
# Debian's qemu-user ships no TCG plugins (no libinsn.so), so the count uses
# qemu's own log: with -singlestep every translation block is one guest
# instruction and -d exec,nochain logs each block executed, i.e. one line
# per instruction executed. Per candidate = (count(k=K2) - count(k=K1)) /
# (K2 - K1): the process start, the set-up and the user-head packing cancel.
# Usage: bash tools/arm/count_insns.sh [BUILD_DIR]   (an aarch64 build,
# default build-aarch64; needs aarch64-linux-gnu-gcc and qemu-aarch64)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build-aarch64}
SYSROOT=${TOWERRT_AARCH64_SYSROOT:-/usr/aarch64-linux-gnu}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
aarch64-linux-gnu-gcc -std=c11 -O2 -D_POSIX_C_SOURCE=200809L -I. -Iinclude tools/arm/count_insns.c \
  "$BUILD/libtowerrt.a" -lm -pthread -static -o "$OUT/count_insns"
K1=2 K2=10
count() { # isa type k
  qemu-aarch64 -L "$SYSROOT" -cpu max -singlestep -d exec,nochain -D "$OUT/log" "$OUT/count_insns" "$@" > /dev/null
  grep -c '^Trace' "$OUT/log"
}
MACS=$((96 * 32 * 64))
printf '%-14s %-5s %14s %14s\n' isa type insns/cand madds/insn
for run in "neon f32" "neon bf16" "neon-bf16 bf16" "neon int8" "neon-dotprod int8" "neon-i8mm int8"; do
  set -- $run
  a=$(count "$1" "$2" $K1)
  b=$(count "$1" "$2" $K2)
  per=$(( (b - a) / (K2 - K1) ))
  awk -v i="$1" -v t="$2" -v p="$per" -v m="$MACS" 'BEGIN { printf "%-14s %-5s %14d %14.2f\n", i, t, p, m / p }'
done
