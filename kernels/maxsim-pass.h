/* The types the MaxSim driver (maxsim-driver.h) hands its tiles: one pass
 * of packed user heads and one candidate, plus the prefetch every tile
 * uses. Included by the tile headers and by the driver. */
#ifndef TRT_MAXSIM_PASS_H
#define TRT_MAXSIM_PASS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "inline.h"
#include "kernels.h"

/* One pass: n_panels packed panels (n_user real heads) from `panels`. */
typedef struct trt_ms_pass {
  const unsigned char *panels;
  size_t n_panels, n_user, dim, panel_bytes;
} trt_ms_pass;

/* One candidate: its row's heads; int8 also its column sums and scale. */
typedef struct trt_ms_cand {
  const void *heads;
  const int32_t *colsum;
  float item_scale;
} trt_ms_cand;

/* Touch the next candidate's block early: rows are random in a large
 * store, so the hardware prefetcher cannot guess the first lines. */
TRT_INLINE void trt_ms_prefetch(const void *p, size_t bytes) {
  const char *c = (const char *)p;
  for (size_t off = 0; off < bytes; off += 64) __builtin_prefetch(c + off, 0, 3);
}

static inline size_t trt_ms_min(size_t a, size_t b) { return a < b ? a : b; }

#endif
