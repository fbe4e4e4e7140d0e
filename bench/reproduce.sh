#!/usr/bin/env bash
# Runs every measurement of docs/performance.md, in the order the doc shows them.
#   bash bench/reproduce.sh BUILD_DIR OUT_DIR [step ...]
# steps (default all): sweep dims profile roofline gbench peers
#   sweep     towerrt bench: every ISA x FE mode x k, f32, one thread
#   dims      towerrt bench: the best ISA x store precision x threads x k
#   profile   per-step profile of one request, k = 100 and 1000, f32 and int8
#   roofline  peaks, bandwidth, each kernel's fraction
#   gbench    the Google Benchmark kernel suite (JSON)
#   peers     PyTorch eager / TorchScript / ONNX Runtime side by side (needs bench/peers/setup.sh)
# The synthetic reference model and its 100,000-item store are generated once
# and cached in $TMPDIR. The machine should be otherwise idle; every result
# file records the load average.
set -euo pipefail
BUILD="$(cd "${1:?usage: reproduce.sh BUILD_DIR OUT_DIR [steps]}" && pwd)"
OUT="${2:?usage: reproduce.sh BUILD_DIR OUT_DIR [steps]}"
shift 2
STEPS="${*:-sweep dims profile roofline gbench peers}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$OUT"
T="$BUILD/towerrt"
has() { [[ " $STEPS " == *" $1 "* ]]; }
log() { echo "reproduce: $*" >&2; }

if has sweep; then
  log "sweep"
  "$T" bench --synthetic --isa all --include-scalar --fe trained,0 --k 10,100,1000,10000,100000 --seconds 3 \
    --csv "$OUT/sweep.csv" --json "$OUT/sweep.json" --plot "$OUT/sweep" --quiet | tee "$OUT/sweep.txt"
fi
if has dims; then
  log "precision x threads"
  "$T" bench --synthetic --isa best --precision f32,bf16,int8 --threads 1,2 --fe trained \
    --k 10,100,1000,10000,100000 --seconds 3 \
    --csv "$OUT/dims.csv" --json "$OUT/dims.json" --plot "$OUT/dims" --quiet | tee "$OUT/dims.txt"
fi
if has profile; then
  for k in 100 1000; do
    for p in f32 int8; do
      log "profile k=$k $p"
      "$T" bench --synthetic --no-sweep --profile --profile-k "$k" --profile-precision "$p" \
        --profile-requests 300 --json "$OUT/profile-k$k-$p.json" --quiet | tee "$OUT/profile-k$k-$p.txt"
    done
  done
  # the same with quantized models: user tower + store in bf16 / int8 (towerrt quantize)
  W="${TMPDIR:-/tmp}/towerrt-repro-synthetic"
  "$T" bench --synthetic --workdir "$W" --no-sweep --quiet
  for p in bf16 int8; do
    "$T" quantize --model "$W/model.twr" --precision "$p" --out "$W/model-$p.twr"
    "$T" quantize --items "$W/items.twi" --precision "$p" --out "$W/items-$p.twi"
  done
  for k in 100 1000; do
    for p in f32 bf16 int8; do
      m="$W/model-$p.twr" i="$W/items-$p.twi"
      [ "$p" = f32 ] && m="$W/model.twr" i="$W/items.twi"
      log "profile k=$k, $p model and store"
      "$T" bench --model "$m" --items "$i" --no-sweep --profile --profile-k "$k" --profile-requests 300 \
        --json "$OUT/profile-quantized-k$k-$p.json" --quiet | tee "$OUT/profile-quantized-k$k-$p.txt"
    done
  done
fi
if has roofline; then
  log "roofline"
  "$T" bench --synthetic --no-sweep --roofline --roofline-seconds 0.5 --json "$OUT/roofline.json" --quiet \
    | tee "$OUT/roofline.txt"
fi
if has gbench; then
  if [ -x "$BUILD/bench/towerrt_gbench" ]; then
    log "Google Benchmark kernel suite"
    "$BUILD/bench/towerrt_gbench" --towerrt_suites=kernels --benchmark_min_time=0.3 \
      --benchmark_out="$OUT/gbench-kernels.json" --benchmark_out_format=json | tee "$OUT/gbench-kernels.txt"
  else
    log "no towerrt_gbench (libbenchmark-dev missing): skipped"
  fi
fi
if has peers; then
  PY="${PEERS_PYTHON:-$ROOT/build-peers/venv/bin/python}"
  if [ ! -x "$PY" ]; then
    log "peers: $PY missing; run bash bench/peers/setup.sh first"
    exit 1
  fi
  log "peers"
  "$PY" "$ROOT/bench/peers/run_peers.py" --towerrt "$T" --k 10,100,1000,10000,100000 --threads 1,2 \
    --seconds 3 --workdir "${TMPDIR:-/tmp}/towerrt-peers" --md "$OUT/peers.md" --json "$OUT/peers.json"
  log "peers with quantized towerrt models"
  "$PY" "$ROOT/bench/peers/run_peers.py" --towerrt "$T" --k 10,100,1000,10000 --threads 1 \
    --towerrt-precisions f32,bf16,int8 --seconds 3 --workdir "${TMPDIR:-/tmp}/towerrt-peers" \
    --md "$OUT/peers-precisions.md" --json "$OUT/peers-precisions.json"
fi
log "done: $OUT"
