/* Top-n selection heaps (runtime/topn.h). */
#include "topn.h"

#include <math.h>

#include "towerrt.h"

static void sift_down(trt_rank *e, size_t size, size_t i) {
  trt_rank x = e[i];
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= size) break;
    /* the child that ranks later (the worse one) must rise to the root */
    if (c + 1 < size && trt_rank_before(&e[c], &e[c + 1])) c++;
    if (!trt_rank_before(&x, &e[c])) break;
    e[i] = e[c];
    i = c;
  }
  e[i] = x;
}

static void sift_up(trt_rank *e, size_t i) {
  trt_rank x = e[i];
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!trt_rank_before(&e[p], &x)) break;
    e[i] = e[p];
    i = p;
  }
  e[i] = x;
}

void trt_topn_push(trt_topn *h, trt_rank r) {
  if (h->size < h->cap) {
    h->e[h->size] = r;
    sift_up(h->e, h->size++);
  } else if (h->cap && trt_rank_before(&r, &h->e[0])) {
    h->e[0] = r;
    sift_down(h->e, h->size, 0);
  }
}

void trt_topn_merge(trt_topn *into, const trt_topn *from) {
  for (size_t i = 0; i < from->size; i++) trt_topn_push(into, from->e[i]);
}

void trt_topn_emit(trt_topn *h, size_t n, uint64_t *ids, float *scores) {
  /* heap sort: the worst goes to the end, so the array ends best first */
  for (size_t end = h->size; end > 1; end--) {
    trt_rank worst = h->e[0];
    h->e[0] = h->e[end - 1];
    h->e[end - 1] = worst;
    sift_down(h->e, end - 1, 0);
  }
  for (size_t i = 0; i < n; i++) {
    ids[i] = i < h->size ? h->e[i].id : TOWERRT_NO_ID;
    scores[i] = i < h->size ? h->e[i].score : NAN;
  }
}
