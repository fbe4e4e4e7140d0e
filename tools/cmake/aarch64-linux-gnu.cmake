# Cross build for aarch64 (ARM64) Linux from an x86-64 Debian/Ubuntu host
# (docs/arm.md):
#   apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=tools/cmake/aarch64-linux-gnu.cmake
#   cmake --build build-aarch64 -j && ctest --test-dir build-aarch64
# ctest runs every test binary (and the CLI, through build-aarch64/towerrt-run)
# under qemu-aarch64 -L <sysroot>. Only the target's own libraries are
# searched (the sysroot), so the host's x86-64 hwloc and oneDNN are never
# picked up: without arm64 builds of them the runtime uses its affinity-mask
# topology and its internal item-store engine. The Google Benchmark suite
# needs aarch64-linux-gnu-g++ and an arm64 libbenchmark; it is skipped
# without them (`towerrt bench`, in C, is always built).
#
# Variables: TOWERRT_AARCH64_PREFIX (default aarch64-linux-gnu),
# TOWERRT_AARCH64_SYSROOT (default /usr/aarch64-linux-gnu), TOWERRT_QEMU_CPU
# (default: qemu's own, "max"; e.g. cortex-a72 or neoverse-n1).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

if(NOT TOWERRT_AARCH64_PREFIX)
  set(TOWERRT_AARCH64_PREFIX aarch64-linux-gnu)
endif()
if(NOT TOWERRT_AARCH64_SYSROOT)
  set(TOWERRT_AARCH64_SYSROOT /usr/${TOWERRT_AARCH64_PREFIX})
endif()
# try_compile projects re-read this file: hand them the two variables.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES TOWERRT_AARCH64_PREFIX TOWERRT_AARCH64_SYSROOT)

set(CMAKE_C_COMPILER ${TOWERRT_AARCH64_PREFIX}-gcc)
find_program(TOWERRT_AARCH64_CXX ${TOWERRT_AARCH64_PREFIX}-g++)
if(TOWERRT_AARCH64_CXX)
  set(CMAKE_CXX_COMPILER ${TOWERRT_AARCH64_CXX})
else()
  # No cross C++ compiler: never let CMake fall back to the host's c++.
  set(CMAKE_CXX_COMPILER ${TOWERRT_AARCH64_PREFIX}-g++-NOTFOUND)
endif()

set(CMAKE_FIND_ROOT_PATH ${TOWERRT_AARCH64_SYSROOT} /usr/lib/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# pkg-config: only arm64 .pc files (Debian multiarch, e.g. libhwloc-dev:arm64).
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_SYSROOT_DIR} "")

find_program(TOWERRT_QEMU_AARCH64 qemu-aarch64)
if(TOWERRT_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${TOWERRT_QEMU_AARCH64} -L ${TOWERRT_AARCH64_SYSROOT})
  if(TOWERRT_QEMU_CPU)
    list(APPEND CMAKE_CROSSCOMPILING_EMULATOR -cpu ${TOWERRT_QEMU_CPU})
  endif()
endif()
