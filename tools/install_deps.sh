#!/usr/bin/env bash
# Installs what towerrt needs to build, test and run its demo on Debian 12.
# Uses sudo when not root. Safe to run again.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
PACKAGES=(build-essential cmake pkg-config python3 clang llvm
          libhwloc-dev libdnnl-dev libbenchmark-dev gnuplot-nox
          gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
          valgrind libudev-dev python3-pip  # libudev-dev: hwloc's static link (pkg-config --static)
          python3-venv python3-dev  # the Python package's fresh-venv test (ctest python_venv)
          libmicrohttpd-dev libjson-c-dev  # towerrt serve (tools/serve/): HTTP server, JSON
          wrk python3-prometheus-client curl  # serve tests: load generator, metrics parser
          openjdk-17-jre-headless)  # Spark (ctest spark_build)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install_deps: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "install_deps: everything is installed"
fi
# pyarrow (PyPI; Debian 12 has no package) for the Parquet tables of
# tools/towerrt_requests.py and its test (ctest user_path), installed for the
# python3 that CMake and the tests use. --break-system-packages: Debian 12's
# Python is externally managed (PEP 668); older pips lack the flag.
PY=$(command -v python3)
if ! "$PY" -c "import pyarrow.parquet" 2>/dev/null; then
  echo "install_deps: installing pyarrow for $PY"
  pip_install() { "$@" -m pip install -q --break-system-packages pyarrow || "$@" -m pip install -q pyarrow; }
  pip_install "$PY" || pip_install $SUDO "$PY"
fi
# pyspark with its SQL extras (pandas, pyarrow, numpy) for the Spark job
# python/towerrt/spark.py and its test (ctest spark_build), for the same
# python3. pyspark 4.3.0 installs 491 MB (it bundles Spark's jars), pandas
# 84 MB, numpy 45 MB; the pyspark install took 4 min 36 s on this project's
# 2-core machine (network-bound: 29 s of CPU).
# pandas < 3: pyspark 4.x warns that it does not fully support pandas 3.
if ! "$PY" -c "import pyspark, pandas, numpy, pyarrow" 2>/dev/null; then
  echo "install_deps: installing pyspark for $PY"
  spark_install() { "$@" -m pip install -q --break-system-packages "pyspark[sql]>=4.0,<5" "pandas>=2.2,<3" || \
                    "$@" -m pip install -q "pyspark[sql]>=4.0,<5" "pandas>=2.2,<3"; }
  spark_install "$PY" || spark_install $SUDO "$PY"
fi
