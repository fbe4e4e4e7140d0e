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
  /* A centred store (ITEM_CENTRE, docs/format.md): head_dim f32, the
   * catalog-mean head m that every stored head value is relative to (a
   * head is m + the stored head); NULL for a plain store. */
  const float *centre;
  /* A row-centred store (ROW_CENTRES): count x head_dim f32, row r's mean
   * head m_r; its stored heads are relative to it. NULL otherwise. At most
   * one of centre and row_centres is set. */
  const float *row_centres;
  const unsigned char *slots; /* n_slots x 16 bytes */
  /* Placement: per node index, the copy of the heads a session on that
   * node reads (NULL = heads_data). */
  const towerrt_pool *pool;
  uint64_t max_load_bytes, load_bytes; /* options.max_load_bytes; heap held (copy, placement) */
  const void *node_heads[64];
  int node_bound[64];
  /* Huge pages (huge_pages.h): asked for at load (options.huge_pages and
   * TOWERRT_HUGE_PAGES), and granted the madvise per placement copy. */
  uint32_t huge_wanted;
  int node_huge[64];
  /* A delta store (docs/format.md, "Delta stores"): the base it applies to
   * (its row count and the CRCs of its ITEM_HEADS and ID_MAP) and its
   * tombstones (sorted, unique u64 ids, none of them a row of the delta). */
  int is_delta;
  uint64_t base_count;
  uint32_t base_heads_crc, base_map_crc;
  const unsigned char *tombstones;
  uint64_t n_tombstones;
  /* An overlay (towerrt_items_overlay): base + deltas; NULL for a store
   * loaded from a file. The fields above then describe the base. */
  struct trt_overlay *overlay;
};

/* Overlay lookups: one probe sequence in the overlay's own map (every id
 * that any delta names, resolved newest-first when the overlay is made),
 * and on a miss one in the base's id map. */
typedef struct trt_overlay_entry {
  uint64_t id;
  uint32_t row;   /* TRT_EMPTY_ROW: a tombstone */
  uint32_t layer; /* 1..n_deltas; 0: an empty slot */
} trt_overlay_entry;

typedef struct trt_overlay {
  uint32_t n_layers;            /* 1 + deltas */
  const towerrt_items **layer;  /* [0] the base, then the deltas oldest first (references held) */
  trt_overlay_entry *map;
  uint64_t n_slots, max_probe;
} trt_overlay;

/* The row of id and the store holding it (*layer: the base or a delta),
 * or TRT_EMPTY_ROW (unknown, or removed by a tombstone). Plain stores:
 * trt_items_find. */
uint32_t trt_items_locate(const towerrt_items *s, uint64_t id, const towerrt_items **layer);

uint64_t trt_splitmix64(uint64_t x);
/* The heads a session on node `node` reads. */
const void *trt_items_heads_for_node(const towerrt_items *s, uint32_t node);
/* Takes / drops a reference (the last drop frees the store). Callable on
 * a const store: the count is the one mutable part of a loaded store. */
void trt_items_retain(const towerrt_items *s);
void trt_items_release(const towerrt_items *s);
/* Row of an external id, or TRT_EMPTY_ROW. */
uint32_t trt_items_find(const towerrt_items *s, uint64_t id);

/* item_store_delta.c: reads a delta store's META and TOMBSTONES at load
 * (rows: check that the tombstones are sorted, unique and not rows), and
 * drops an overlay's references. */
towerrt_status trt_items_read_delta(towerrt_items *s, int rows);
void trt_overlay_free(trt_overlay *ov);

#endif
