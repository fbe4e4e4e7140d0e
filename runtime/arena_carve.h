/* Hands out 64-byte-aligned slices of an arena planned once; with no
 * arena (base NULL) it only counts, so sizing and carving run the same
 * code and can never disagree. Used by the per-request scratch of the
 * towers (tower_exec.c) and of FIT (family_fit_score.c). */
#ifndef TRT_ARENA_CARVE_H
#define TRT_ARENA_CARVE_H

#include <stddef.h>

typedef struct trt_carver {
  char *base;
  size_t used;
} trt_carver;

static inline void *trt_carve(trt_carver *c, size_t bytes) {
  void *r = c->base ? c->base + c->used : NULL;
  c->used += (bytes + 63) & ~(size_t)63;
  return r;
}

#endif
