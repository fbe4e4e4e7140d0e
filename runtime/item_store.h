/* The item store (.twi): each item's FE heads, row-aligned, and an
 * open-addressing map from external 64-bit ids to rows. */
#ifndef TOWERRT_ITEM_STORE_H
#define TOWERRT_ITEM_STORE_H

#include <stdatomic.h>

#include "container.h"
#include "mapped_file.h"
#include "towerrt.h"

#define TRT_EMPTY_ROW 0xFFFFFFFFu
/* Longest probe sequence of the id map: an id sits at most this many slots
 * past its home slot (with <= 50% load, random ids stay under ~70 even for
 * 2^32 items). Without a bound, colliding ids made every lookup and the
 * load-time validation walk a whole run of slots (quadratic load). */
#define TRT_ID_MAP_MAX_PROBE 256u

struct towerrt_items {
  /* References: the loader's (dropped by towerrt_items_free), one per
   * session using it, one per request in flight. Freed at zero. */
  atomic_uint refs;
  trt_mapped_file file;
  trt_container container;
  trt_meta meta;
  uint64_t count, n_slots, row_stride; /* row_stride in bytes */
  uint32_t heads, head_dim, fingerprint;
  uint32_t dtype, elem_size; /* towerrt_precision of the heads; bytes per head value */
  const void *heads_data;
  const float *scales;   /* s8: one scale per row */
  const int32_t *colsums; /* s8: heads column sums per row */
  const unsigned char *slots; /* n_slots x 16 bytes */
  /* Placement: per node index, the copy of the heads a session on that
   * node reads (NULL = heads_data). */
  const towerrt_pool *pool;
  const void *node_heads[64];
  int node_bound[64];
};

uint64_t trt_splitmix64(uint64_t x);
/* The heads a session on node `node` reads. */
const void *trt_items_heads_for_node(const towerrt_items *s, uint32_t node);
/* Takes / drops a reference (the last drop frees the store). Callable on
 * a const store: the count is the one mutable part of a loaded store. */
void trt_items_retain(const towerrt_items *s);
void trt_items_release(const towerrt_items *s);
/* Row of an external id, or TRT_EMPTY_ROW. */
uint32_t trt_items_find(const towerrt_items *s, uint64_t id);

#endif
