/* The kernel table of one ISA by name: the one entry point for code that
 * calls kernels directly rather than through a session. Used by the
 * runtime (model loads, runtime/cpu_features.c, which assembles the tables
 * next to the CPU detection that says which it may run), the tests and the
 * kernel micro-benchmarks (bench/bench_kernels.c, bench/roofline.c), which
 * include kernels/ headers and never runtime/ ones (docs/architecture.md). */
#ifndef TOWERRT_KERNEL_TABLE_H
#define TOWERRT_KERNEL_TABLE_H

#include "kernels/kernels.h"
#include "towerrt.h"

/* The kernel table of ISA `name` (a name towerrt_isas lists), ignoring
 * TOWERRT_ISA. TOWERRT_ERR_UNSUPPORTED, with a message listing what is
 * available, if the build lacks it or the CPU cannot run it. */
towerrt_status trt_kernels_for_isa(const char *name, towerrt_kernels *out);

#endif
