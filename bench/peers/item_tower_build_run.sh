#!/bin/sh
# Item-store build speed: towerrt (oneDNN) vs PyTorch running the same item
# tower in batches, same threads, one run (docs/item-stores.md).
#
#   bench/peers/item_tower_build_run.sh BUILD_DIR [ITEMS] [THREADS...]
#
# BUILD_DIR: a configured and built towerrt build directory (with oneDNN).
# Makes the reference-size model and a synthetic catalog of ITEMS (default
# 200000) under $WORK (default /tmp/item_tower_build), builds the towerrt
# side (item_tower_build_bench.c), then for each THREADS (default 1 2),
# interleaved, prints one JSON line per measurement:
#   towerrt tower (f32, bf16, int8)      - catalog parsed first, store written to tmpfs
#   pytorch tower (reference, bn-folded) - catalog parsed first, heads discarded
#   towerrt build-items end to end       - text in, store out ($OUT_DIR)
#   pytorch with its heads written       - to $OUT_DIR (raw float32)
# and finally the parity of the PyTorch heads with the towerrt store.
set -eu
BUILD=$(cd "$1" && pwd)
ITEMS=${2:-200000}
shift 2 2>/dev/null || shift $#
THREADS=${*:-"1 2"}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${WORK:-/tmp/item_tower_build}
OUT_DIR=${OUT_DIR:-/dev/shm}
PY=${PYTHON:-/usr/bin/python3}
REPS=${REPS:-5}
mkdir -p "$WORK"
if [ ! -f "$WORK/items.txt" ] || [ "$(($(wc -l < "$WORK/items.txt") - 1))" != "$ITEMS" ]; then
  python3 "$REPO/bench/peers/item_tower_build_model.py" --out-dir "$WORK" --items "$ITEMS"
fi
cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -I"$REPO" -I"$REPO/include" "$REPO/bench/peers/item_tower_build_bench.c" "$REPO/tools/text_input.c" \
   "$BUILD/libtowerrt.a" -ldnnl -lhwloc -lpthread -lm -ldl -o "$WORK/item_tower_build_bench"
echo "# $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
$PY -c 'import re, torch; torch.zeros(1); m = open("/proc/self/maps").read(); print("# torch", torch.__version__, "BLAS", sorted(set(re.findall(r"[^/\s]*(?:openblas|mkl|blis)[^/\s]*[.]so[.0-9]*", m))))'
for t in $THREADS; do
  "$WORK/item_tower_build_bench" "$WORK/model.twr" "$WORK/items.txt" "$t" --reps "$REPS"
  "$WORK/item_tower_build_bench" "$WORK/model.twr" "$WORK/items.txt" "$t" --reps "$REPS" --bf16
  "$WORK/item_tower_build_bench" "$WORK/model.twr" "$WORK/items.txt" "$t" --reps "$REPS" --int8
  # PyTorch as configured by default (OpenMP and OpenBLAS both with t
  # threads, OpenMP spin-waiting), and with passive waiting (much faster
  # for t > 1 on a small or shared machine), and with OpenMP on 1 thread
  # (Linear's GEMMs still on t OpenBLAS threads): the best is the peer.
  $PY "$REPO/bench/peers/item_tower_build_torch.py" --dir "$WORK" --threads "$t" --reps "$REPS"
  $PY "$REPO/bench/peers/item_tower_build_torch.py" --dir "$WORK" --threads "$t" --reps "$REPS" --fold-bn
  OMP_WAIT_POLICY=passive $PY "$REPO/bench/peers/item_tower_build_torch.py" --dir "$WORK" --threads "$t" --reps "$REPS"
  OMP_WAIT_POLICY=passive $PY "$REPO/bench/peers/item_tower_build_torch.py" --dir "$WORK" --threads "$t" --reps "$REPS" --fold-bn
  if [ "$t" -gt 1 ]; then
    OMP_WAIT_POLICY=passive $PY "$REPO/bench/peers/item_tower_build_torch.py" --dir "$WORK" --threads "$t" --reps "$REPS" --fold-bn --omp-threads 1
  fi
  for r in $(seq "$REPS"); do
    /usr/bin/time -f '# max RSS %M KiB' \
      "$BUILD/towerrt" build-items --model "$WORK/model.twr" --features "$WORK/items.txt" --out "$OUT_DIR/itb.twi" --threads "$t" 2>&1
  done
  OMP_WAIT_POLICY=passive $PY "$REPO/bench/peers/item_tower_build_torch.py" --dir "$WORK" --threads "$t" --reps "$REPS" --fold-bn --write "$OUT_DIR/itb_torch.f32"
  rm -f "$OUT_DIR/itb_torch.f32"
done
$PY "$REPO/bench/peers/item_tower_build_torch.py" --dir "$WORK" --threads 1 --reps 1 --check "$OUT_DIR/itb.twi" | sed 's/^/# parity: /'
rm -f "$OUT_DIR/itb.twi"
