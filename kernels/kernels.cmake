# Kernel sources. One ISA per file; each SIMD file gets its ISA's flags
# through set_source_files_properties so the rest of the library stays
# portable, and dispatch happens once at load (runtime/cpu_features.c).
set(TOWERRT_KERNEL_SOURCES
  kernels/scalar/embed-pool-f32-scalar.c
  kernels/scalar/lightse-f32-scalar.c
  kernels/scalar/dense-f32-scalar.c
  kernels/scalar/maxsim-f32-scalar.c
  kernels/scalar/maxsim-bf16-scalar.c
  kernels/scalar/maxsim-u8s8-scalar.c
  kernels/scalar/maxsim-packed-scalar.c
  kernels/scalar/dense-bf16-scalar.c
  kernels/scalar/dense-u8s8-scalar.c
  kernels/scalar/quantize-u8-scalar.c)

# Which SIMD family the target can run. The compiler's target decides, not
# the build machine: a 32-bit or cross build gets only the scalar kernels
# unless the target itself is x86-64 or aarch64.
set(TOWERRT_KERNELS_ARCH "scalar")
if(CMAKE_SIZEOF_VOID_P EQUAL 8 AND CMAKE_C_COMPILER_ID MATCHES "GNU|Clang")
  if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64|x64)$")
    set(TOWERRT_KERNELS_ARCH "x86")
  elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
    set(TOWERRT_KERNELS_ARCH "arm")
  endif()
endif()

# Per-ISA flags. The AVX-512 levels follow the tables in cpu_features.c:
# avx512 = F/BW/VL/DQ (+ FMA), avx512-vnni adds VNNI, avx512-bf16 adds BF16.
set(TOWERRT_FLAGS_AVX2 -mavx2 -mfma)
set(TOWERRT_FLAGS_AVXVNNI -mavx2 -mfma -mavxvnni)
set(TOWERRT_FLAGS_AVX512 -mavx2 -mfma -mavx512f -mavx512bw -mavx512vl -mavx512dq)
set(TOWERRT_FLAGS_AVX512VNNI ${TOWERRT_FLAGS_AVX512} -mavx512vnni)
set(TOWERRT_FLAGS_AVX512BF16 ${TOWERRT_FLAGS_AVX512VNNI} -mavx512bf16)
set(TOWERRT_FLAGS_NEONDOT -march=armv8.2-a+dotprod)
set(TOWERRT_FLAGS_NEONI8MM -march=armv8.2-a+dotprod+i8mm)
set(TOWERRT_FLAGS_NEONBF16 -march=armv8.2-a+dotprod+i8mm+bf16)

function(towerrt_kernel_files flags)
  foreach(f ${ARGN})
    set_source_files_properties(${f} PROPERTIES COMPILE_OPTIONS "${flags}")
  endforeach()
  set(TOWERRT_KERNEL_SOURCES ${TOWERRT_KERNEL_SOURCES} ${ARGN} PARENT_SCOPE)
endfunction()

if(TOWERRT_KERNELS_ARCH STREQUAL "x86")
  include(CheckCCompilerFlag)
  check_c_compiler_flag("-mavx512vnni -mavx512bf16" TOWERRT_CC_HAS_AVX512BF16)
  check_c_compiler_flag("-mavxvnni" TOWERRT_CC_HAS_AVXVNNI)
  towerrt_kernel_files("${TOWERRT_FLAGS_AVX2}"
    kernels/x86/maxsim-f32-avx2.c kernels/x86/dense-f32-avx2.c
    kernels/x86/maxsim-bf16-avx2.c kernels/x86/maxsim-u8s8-avx2.c kernels/x86/quantize-u8-avx2.c
    kernels/x86/dense-bf16-avx2.c kernels/x86/dense-u8s8-avx2.c
    kernels/x86/embed-pool-f32-avx2.c kernels/x86/lightse-f32-avx2.c)
  towerrt_kernel_files("${TOWERRT_FLAGS_AVX512}"
    kernels/x86/maxsim-f32-avx512.c kernels/x86/dense-f32-avx512.c kernels/x86/maxsim-bf16-avx512.c
    kernels/x86/quantize-u8-avx512.c kernels/x86/dense-bf16-avx512.c
    kernels/x86/embed-pool-f32-avx512.c kernels/x86/lightse-f32-avx512.c)
  towerrt_kernel_files("${TOWERRT_FLAGS_AVX512VNNI}" kernels/x86/maxsim-u8s8-avx512vnni.c
    kernels/x86/dense-u8s8-avx512vnni.c)
  set(TOWERRT_KERNEL_DEFS TOWERRT_KERNELS_X86=1)
  if(TOWERRT_CC_HAS_AVXVNNI)
    towerrt_kernel_files("${TOWERRT_FLAGS_AVXVNNI}" kernels/x86/maxsim-u8s8-avxvnni.c kernels/x86/dense-u8s8-avxvnni.c)
    list(APPEND TOWERRT_KERNEL_DEFS TOWERRT_KERNELS_AVXVNNI=1)
  else()
    message(STATUS "towerrt: compiler lacks -mavxvnni, the avx-vnni kernels are not built")
  endif()
  if(TOWERRT_CC_HAS_AVX512BF16)
    towerrt_kernel_files("${TOWERRT_FLAGS_AVX512BF16}" kernels/x86/maxsim-bf16-avx512bf16.c
      kernels/x86/dense-bf16-avx512bf16.c)
    list(APPEND TOWERRT_KERNEL_DEFS TOWERRT_KERNELS_AVX512BF16=1)
  else()
    message(STATUS "towerrt: compiler lacks -mavx512bf16, the avx512-bf16 kernels are not built")
  endif()
elseif(TOWERRT_KERNELS_ARCH STREQUAL "arm")
  # NEON is part of the aarch64 base ISA: no flag needed.
  towerrt_kernel_files("" kernels/arm/maxsim-f32-neon.c kernels/arm/dense-f32-neon.c
    kernels/arm/maxsim-bf16-neon.c kernels/arm/maxsim-u8s8-neon.c kernels/arm/quantize-u8-neon.c
    kernels/arm/dense-bf16-neon.c kernels/arm/dense-u8s8-neon.c
    kernels/arm/embed-pool-f32-neon.c kernels/arm/lightse-f32-neon.c)
  towerrt_kernel_files("${TOWERRT_FLAGS_NEONDOT}" kernels/arm/maxsim-u8s8-neon-dotprod.c
    kernels/arm/dense-u8s8-neon-dotprod.c)
  set(TOWERRT_KERNEL_DEFS TOWERRT_KERNELS_ARM=1)
  # The matrix extensions (I8MM, BF16: docs/arm.md), GCC >= 10 / Clang >= 11.
  include(CheckCCompilerFlag)
  check_c_compiler_flag("${TOWERRT_FLAGS_NEONBF16}" TOWERRT_CC_HAS_ARM_MATRIX)
  if(TOWERRT_CC_HAS_ARM_MATRIX)
    towerrt_kernel_files("${TOWERRT_FLAGS_NEONI8MM}" kernels/arm/maxsim-u8s8-neon-i8mm.c kernels/arm/dense-u8s8-neon-i8mm.c)
    towerrt_kernel_files("${TOWERRT_FLAGS_NEONBF16}" kernels/arm/maxsim-bf16-neon-bf16.c kernels/arm/dense-bf16-neon-bf16.c)
    list(APPEND TOWERRT_KERNEL_DEFS TOWERRT_KERNELS_ARM_MATRIX=1)
  else()
    message(STATUS "towerrt: compiler lacks -march=...+i8mm+bf16, the neon-i8mm and neon-bf16 kernels are not built")
  endif()
endif()

# cpu_features.c only references the tables of the kernels built above.
if(TOWERRT_KERNEL_DEFS)
  set_property(SOURCE runtime/cpu_features.c APPEND PROPERTY COMPILE_DEFINITIONS ${TOWERRT_KERNEL_DEFS})
endif()
message(STATUS "towerrt: SIMD kernels: ${TOWERRT_KERNELS_ARCH}")
