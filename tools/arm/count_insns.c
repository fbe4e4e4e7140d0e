/* Instructions executed per candidate by each MaxSim kernel (docs/arm.md):
 * scores k candidates of the reference shape (96 user heads x 32 item heads
 * x 64 dims) with one forced kernel table; run under qemu-aarch64 with
 * tools/arm/count_insns.sh, which counts the instructions executed for two
 * values of k and divides the difference by the difference of k (so the
 * set-up, the user-head packing and the process start cancel out).
 * usage: count_insns ISA f32|bf16|int8 K */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/kernel_table.h"

#define NU 96
#define NI 32
#define DIM 64
#define ROWS 64

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: count_insns ISA f32|bf16|int8 K\n");
    return 2;
  }
  towerrt_kernels k;
  if (trt_kernels_for_isa(argv[1], &k) != TOWERRT_OK) {
    fprintf(stderr, "%s\n", towerrt_last_error());
    return 1;
  }
  size_t kc = strtoul(argv[3], NULL, 10), row = NI * DIM;
  uint32_t rows[ROWS];
  for (size_t c = 0; c < ROWS; c++) rows[c] = (uint32_t)((c * 37) % ROWS);
  float *scores = calloc(kc + 1, sizeof *scores);
  if (strcmp(argv[2], "f32") == 0) {
    float *u = calloc(NU * DIM, 4), *it = calloc(ROWS * row, 4);
    for (size_t i = 0; i < NU * DIM; i++) u[i] = (float)(i % 7) - 3.0f;
    for (size_t i = 0; i < ROWS * row; i++) it[i] = (float)(i % 5) - 2.0f;
    k.maxsim_f32(u, NU, it, row, rows, kc, NI, DIM, scores);
  } else if (strcmp(argv[2], "bf16") == 0) {
    uint16_t *u = calloc(NU * DIM, 2), *it = calloc(ROWS * row, 2);
    for (size_t i = 0; i < NU * DIM; i++) u[i] = (uint16_t)(0x3f80 + i % 7);
    for (size_t i = 0; i < ROWS * row; i++) it[i] = (uint16_t)(0xbf80 + i % 5);
    k.maxsim_bf16(u, NU, it, row, rows, kc, NI, DIM, scores);
  } else {
    uint8_t *u = calloc(NU * DIM, 1);
    int8_t *it = calloc(ROWS * row, 1);
    int32_t *zp = calloc(NU, 4), *cs = calloc(ROWS * NI, 4);
    float *us = calloc(NU, 4), *is = calloc(ROWS, 4);
    for (size_t i = 0; i < NU * DIM; i++) u[i] = (uint8_t)(i * 13);
    for (size_t i = 0; i < ROWS * row; i++) it[i] = (int8_t)(i * 7);
    for (size_t i = 0; i < NU; i++) zp[i] = 128, us[i] = 0.01f;
    for (size_t r = 0; r < ROWS; r++) {
      is[r] = 0.02f;
      for (size_t h = 0; h < NI; h++)
        for (size_t d = 0; d < DIM; d++) cs[r * NI + h] += it[r * row + h * DIM + d];
    }
    trt_maxsim_u8s8_params p = {u, zp, us, NU, it, row, cs, NI, is, NI, DIM};
    k.maxsim_u8s8(&p, rows, kc, scores);
  }
  printf("%s %s k=%zu score[0]=%g\n", argv[1], argv[2], kc, (double)scores[0]);
  return 0;
}
