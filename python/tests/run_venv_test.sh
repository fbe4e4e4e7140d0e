#!/usr/bin/env bash
# The Python package as a user gets it: a fresh venv, `pip wheel` of
# python/ (scikit-build-core builds the C library and the extension; pip
# fetches the build requirements from PyPI), the wheel installed into the
# venv (numpy from PyPI), then the pytest suite against the C CLI.
# usage: run_venv_test.sh WORK_DIR TOWERRT_CLI      (ctest python_venv)
# WORK_DIR/skbuild keeps the CMake build between runs (incremental).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$1
CLI=$2
mkdir -p "$WORK"
rm -rf "$WORK/venv" "$WORK/wheels"
python3 -m venv "$WORK/venv"
PIP=("$WORK/venv/bin/python" -m pip --disable-pip-version-check)
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
"${PIP[@]}" wheel -q --no-deps -w "$WORK/wheels" --config-settings=build-dir="$WORK/skbuild" "$SRC/python"
"${PIP[@]}" install -q "$WORK"/wheels/towerrt-*.whl pytest
cd "$WORK"  # not the source tree: the installed package is the one imported
"$WORK/venv/bin/python" -c "import towerrt, sys; print('towerrt', towerrt.version(), 'from', towerrt.__file__)"
TOWERRT_CLI=$CLI "$WORK/venv/bin/python" -m pytest -q -p no:cacheprovider "$SRC/python/tests"
