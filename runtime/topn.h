/* Bounded selection of the n best candidates: a binary heap with the worst
 * kept entry at the root, so a candidate that does not make the cut costs
 * one comparison. The memory is the caller's (a session arena slice); no
 * function here allocates. The order is total: score descending, then id
 * ascending, then position ascending, so the n kept entries (and the merge
 * of several heaps) do not depend on the order candidates arrive in. */
#ifndef TOWERRT_TOPN_H
#define TOWERRT_TOPN_H

#include <stddef.h>
#include <stdint.h>

typedef struct trt_rank {
  float score; /* finite: callers never push NaN */
  uint32_t pos;
  uint64_t id;
} trt_rank;

typedef struct trt_topn {
  trt_rank *e;
  size_t size, cap;
} trt_topn;

/* 1 if a ranks strictly before b. */
static inline int trt_rank_before(const trt_rank *a, const trt_rank *b) {
  if (a->score != b->score) return a->score > b->score;
  if (a->id != b->id) return a->id < b->id;
  return a->pos < b->pos;
}

/* An empty heap keeping at most cap entries in mem[cap]. */
static inline void trt_topn_reset(trt_topn *h, trt_rank *mem, size_t cap) {
  h->e = mem;
  h->size = 0;
  h->cap = cap;
}

/* Offers one candidate. */
void trt_topn_push(trt_topn *h, trt_rank r);
/* Offers every entry of `from` to `into`. */
void trt_topn_merge(trt_topn *into, const trt_topn *from);
/* Sorts the heap best first (it is no longer a heap) and writes n entries:
 * the kept ones, then TOWERRT_NO_ID / NaN. */
void trt_topn_emit(trt_topn *h, size_t n, uint64_t *ids, float *scores);

#endif
