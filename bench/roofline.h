/* `towerrt bench --roofline`: this machine's compute peaks (fp32 FMA, int8
 * dot product, bf16 dot product: register-only loops of the best
 * instruction each ISA has) and its streaming read bandwidth, then each
 * kernel variant's achieved multiply-adds per second and bytes per second
 * as fractions of those roofs. One core: the runtime runs a request on
 * one thread today. */
#ifndef TOWERRT_BENCH_ROOFLINE_H
#define TOWERRT_BENCH_ROOFLINE_H

#include <stddef.h>
#include <stdio.h>

#include "towerrt.h"

#define TB_ROOF_MAX_PEAKS 16
#define TB_ROOF_MAX_KERNELS 96

typedef struct tb_peak {
  char what[32];        /* "fp32 FMA", "int8 dot", "bf16 dot", "memory read" */
  char instruction[48]; /* "vfmadd231ps zmm", "vpdpbusd zmm", ... */
  char unit[12];        /* "GMAC/s" or "GB/s" */
  double value;
} tb_peak;

typedef struct tb_kernel_roof {
  char kernel[24]; /* maxsim_f32, maxsim_bf16, maxsim_u8s8, dense_f32 */
  char isa[24];
  char shape[96];
  double gmacs, gbps;            /* achieved multiply-adds (1e9/s), bytes read of item rows or weights (1e9/s) */
  double peak_gmacs, bw_gbps;    /* the roofs they are compared with */
  char peak_what[32];
} tb_kernel_roof;

typedef struct tb_roofline {
  size_t n_peaks, n_kernels;
  tb_peak peaks[TB_ROOF_MAX_PEAKS];
  tb_kernel_roof kernels[TB_ROOF_MAX_KERNELS];
  double best_f32, best_i8, best_bf16; /* GMAC/s, 0 if not measured */
  double bandwidth;                    /* GB/s */
  size_t buffer_bytes;                 /* of the bandwidth test */
} tb_roofline;

/* seconds: time per measurement (0.2 s is enough on a quiet machine).
 * progress: a line per measurement when not NULL. */
towerrt_status tb_roofline_run(tb_roofline *r, double seconds, FILE *progress);
void tb_roofline_print(const tb_roofline *r, FILE *f);
void tb_roofline_json(const tb_roofline *r, FILE *f, const char *indent);

/* Individual roofs (also used by the Google Benchmark suite). GMAC/s of
 * one core; 0 where the instruction is not available. */
double tb_peak_f32(double seconds, char *instruction, size_t cap);
double tb_peak_i8(double seconds, char *instruction, size_t cap);
double tb_peak_bf16(double seconds, char *instruction, size_t cap);
/* GB/s of one core reading `bytes` (0: a size much larger than the LLC). */
double tb_read_bandwidth(size_t bytes, double seconds, size_t *bytes_used);

#endif
