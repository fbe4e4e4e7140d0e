#!/usr/bin/env bash
# Installs what towerrt needs to build, test and run its demo on Debian 12.
# Uses sudo when not root. Safe to run again.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
PACKAGES=(build-essential cmake pkg-config python3 clang llvm
          libhwloc-dev libdnnl-dev libbenchmark-dev gnuplot-nox
          gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
          valgrind libudev-dev)  # libudev-dev: hwloc's static link (pkg-config --static)
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
