#!/usr/bin/env bash
# tritonclient.http from PyPI against towerrt serve (ctest serve_tritonclient):
# a venv under WORK_DIR (kept between runs; made again when the import fails),
# then tritonclient_check.py with it.
# usage: run_tritonclient_test.sh WORK_DIR TOWERRT_CLI
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$1
CLI=$2
mkdir -p "$WORK"
PY="$WORK/venv/bin/python"
if ! "$PY" -c "import tritonclient.http, numpy" 2>/dev/null; then
  rm -rf "$WORK/venv"
  python3 -m venv "$WORK/venv"
  "$PY" -m pip --disable-pip-version-check install -q "tritonclient[http]" numpy
fi
"$PY" "$HERE/tritonclient_check.py" "$CLI" "$WORK"
