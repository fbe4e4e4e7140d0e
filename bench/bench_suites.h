/* The Google Benchmark suites (C, through gbench_shim.h):
 *   kernel/<op>/<isa>  every kernel of every kernel set this machine runs
 *                      (kernels/kernel_table.h: trt_kernels_for_isa),
 *                      across the shapes of the reference model;
 *   e2e/<isa>/fe:<mode> towerrt_score end to end on a synthetic model, k
 *                      as the benchmark argument.
 * Run by the towerrt_gbench binary (bench/gbench_main.c). */
#ifndef TOWERRT_BENCH_SUITES_H
#define TOWERRT_BENCH_SUITES_H

#include <stdint.h>

typedef struct tb_suite_options {
  int quick;           /* tiny shapes and a tiny model: a smoke test, not a measurement */
  const char *preset;  /* e2e synthetic model preset (reference) */
  uint32_t catalog;    /* e2e store size (0: the preset's) */
  const char *workdir; /* cache folder of the synthetic files (NULL: default) */
} tb_suite_options;

void tb_register_kernel_suite(const tb_suite_options *o);
void tb_register_e2e_suite(const tb_suite_options *o);
/* Frees what the suites allocated lazily (both suites). */
void tb_suites_cleanup(void);
void tb_e2e_cleanup(void); /* the e2e suite's part, called by tb_suites_cleanup */

#endif
