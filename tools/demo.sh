#!/usr/bin/env bash
# The end-to-end demo: install, build, export the IntTower checkpoint that
# the unmodified reference PyTorch code trained (tests/fixtures/reference-
# inttower), build its item store, score the requests of its test split by
# item id, and check every score against the reference's own predictions.
# That checkpoint's item tower is dead after ReLU (every candidate of a
# request gets one score), so the demo ends with a second checkpoint of the
# reference code whose item tower is alive: the same parity, and what its
# scores rank (test AUC, per-user AUC).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release > /dev/null
# the CLI and both libraries, so `cmake --install build --prefix P` works next
cmake --build build -j"$(nproc)" --target towerrt towerrt_shared towerrt_static
OUT=build/demo
FIX=tests/fixtures/reference-inttower
mkdir -p "$OUT"
echo "== 1. export the reference checkpoint (state_dict + feature config) to a .twr"
python3 tools/export_inttower.py --weights "$FIX/state_dict.npz" --config "$FIX/config.json" --out "$OUT/model.twr"
echo "== 2. the compiled plan"
build/towerrt info "$OUT/model.twr" --plan | sed -n '/^plan:/,$p'
echo "== 3. requests (one per user of the test split) and the item catalog"
python3 tools/towerrt_requests.py --model "$OUT/model.twr" --inputs "$FIX/test_inputs.npz" \
  --requests "$OUT/requests.txt" --by-id --items-out "$OUT/items.txt"
echo "== 4. build the item store"
build/towerrt build-items --model "$OUT/model.twr" --features "$OUT/items.txt" --out "$OUT/items.twi"
echo "== 5. score"
build/towerrt score --model "$OUT/model.twr" --items "$OUT/items.twi" --requests "$OUT/requests.txt" --out "$OUT/scores.txt"
echo "first request: $(head -n 4 "$OUT/requests.txt" | sed -n 3p | cut -c1-80)..."
echo "its scores:    $(head -n 1 "$OUT/scores.txt" | cut -c1-80)..."
echo "== 6. every score against the reference PyTorch predictions (official_pred.npy)"
python3 tests/python/test_reference_checkpoint.py build/towerrt "$FIX" "$OUT/check"
echo "== 7. a checkpoint whose item tower is alive (tests/fixtures/reference-inttower-live): parity and ranking"
python3 tests/python/test_reference_checkpoint.py build/towerrt tests/fixtures/reference-inttower-live "$OUT/live"
