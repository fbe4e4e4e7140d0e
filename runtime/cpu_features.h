/* CPU feature detection and kernel-table selection (cpu_features.c).
 * Internal: for the runtime and the tests. */
#ifndef TOWERRT_CPU_FEATURES_H
#define TOWERRT_CPU_FEATURES_H

#include <stddef.h>

#include "kernels/kernel_table.h"
#include "kernels/kernels.h"
#include "towerrt.h"

/* ISA names, best first: "avx512-bf16", "avx512-vnni", "avx512", "avx2"
 * (x86-64), "neon-bf16", "neon-i8mm",
 * "neon-dotprod", "neon" (aarch64), "scalar" (everywhere). */

/* Writes up to cap names of the ISAs that this build and this CPU can run,
 * best first, "scalar" last; returns how many there are (may exceed cap). */
size_t trt_cpu_isas(const char **names, size_t cap);

/* trt_kernels_for_isa, the table of one ISA: kernels/kernel_table.h. */

/* What a model load uses: TOWERRT_ISA if set, else `requested`; NULL, ""
 * or "auto" pick the best table for this CPU. */
towerrt_status trt_select_kernels(const char *requested, towerrt_kernels *out);

#endif
