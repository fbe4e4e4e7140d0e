/* Writing the ID_MAP section of an item store, in its file layout
 * (docs/format.md): a 16-byte header (u64 n_slots, 8 zero bytes), then
 * n_slots slots of 16 bytes (u64 id, u32 row, 4 zero bytes; row
 * TRT_EMPTY_ROW = empty). Open addressing with linear probing from the home
 * slot splitmix64(id) & (n_slots - 1), never more than TRT_ID_MAP_MAX_PROBE
 * slots past it; n_slots is the power of two >= 2 x rows (16 at least).
 * One home for the writers (the streaming builder, trt_store_out); the
 * reader is trt_items_find (item_store.c). Inserting the rows once, in row
 * order, into a table of n_slots gives one table whatever wrote it, which
 * is what makes merged, compacted and single builds byte-identical. */
#ifndef TOWERRT_ITEM_ID_MAP_H
#define TOWERRT_ITEM_ID_MAP_H

#include <stddef.h>
#include <stdint.h>

#include "item_store.h"

/* trt_id_map_insert: the id would sit more than TRT_ID_MAP_MAX_PROBE slots
 * past its home slot (never a row: stores hold fewer than TRT_EMPTY_ROW - 1). */
#define TRT_ID_MAP_TOO_FAR (TRT_EMPTY_ROW - 1)

/* The slot count for `rows` rows. */
uint64_t trt_id_map_slots(uint64_t rows);
/* The section's size in bytes for n_slots. */
size_t trt_id_map_bytes(uint64_t n_slots);
/* An empty map of n_slots (a power of two); NULL when out of memory. */
unsigned char *trt_id_map_alloc(uint64_t n_slots);
/* Inserts (id, row); returns TRT_EMPTY_ROW (inserted), the row already
 * holding id, or TRT_ID_MAP_TOO_FAR. */
uint32_t trt_id_map_insert(unsigned char *map, uint64_t id, uint32_t row);
/* The TOWERRT_ERR_LIMIT of an id that came back TRT_ID_MAP_TOO_FAR. */
towerrt_status trt_id_map_too_far(uint64_t id);

#endif
