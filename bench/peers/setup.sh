#!/usr/bin/env bash
# Installs what bench/peers/run_peers.py needs, on Debian 12:
#   Debian's python3-torch and python3-numpy, with libopenblas0 (an optimised
#   BLAS: without it torch falls back on the reference BLAS and the comparison
#   would flatter towerrt), and a venv that sees them plus onnxruntime from PyPI
#   (numpy pinned to Debian's, which python3-torch is built against).
# Usage: bash bench/peers/setup.sh [VENV]   (default: build-peers/venv)
# Never needed by the build or the test suite.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
VENV="${1:-$ROOT/build-peers/venv}"
PY=/usr/bin/python3
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for p in python3 python3-venv python3-numpy python3-torch libopenblas0; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "peers/setup: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "peers/setup: creating $VENV (with the system site packages: Debian's torch)"
  "$PY" -m venv --system-site-packages "$VENV"
fi
NUMPY="$("$VENV/bin/python" -c 'import numpy; print(numpy.__version__)')"
if ! "$VENV/bin/python" -c 'import onnxruntime' 2>/dev/null; then
  echo "peers/setup: pip install onnxruntime (numpy pinned to $NUMPY)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check onnxruntime "numpy==$NUMPY"
fi
"$VENV/bin/python" - <<'PY'
import glob, os
import numpy, onnxruntime, torch
print("peers/setup: torch %s, onnxruntime %s, numpy %s" % (torch.__version__, onnxruntime.__version__, numpy.__version__))
for blas in glob.glob("/usr/lib/*-linux-gnu/libblas.so.3"):
    print("peers/setup: %s -> %s (torch's BLAS)" % (blas, os.path.realpath(blas)))
PY
echo "peers/setup: ready: $VENV/bin/python bench/peers/run_peers.py --towerrt build/towerrt"
