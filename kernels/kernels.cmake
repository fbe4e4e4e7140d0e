# Kernel sources. One ISA per file; each SIMD file gets its ISA's flags
# through set_source_files_properties so the rest of the library stays
# portable, and dispatch happens once at load (runtime/cpu_features.c).
set(TOWERRT_KERNEL_SOURCES
  kernels/scalar/embed-pool-f32-scalar.c
  kernels/scalar/lightse-f32-scalar.c
  kernels/scalar/dense-f32-scalar.c
  kernels/scalar/maxsim-f32-scalar.c)
