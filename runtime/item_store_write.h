/* Writing item stores row by row from loaded stores (any dtype): the
 * quantized merge, delta stores and compaction (docs/item-stores.md).
 *
 * Rows are copied as they are (heads, and for s8 the row's scale and column
 * sums), so a row's bytes never depend on where it sits. The id map is
 * built the way the streaming builder builds it (every row inserted once,
 * in row order, into power-of-two >= 2 x rows slots), so an f32 output is
 * byte for byte the store towerrt_items_build writes for the same catalog
 * in the same order, and a bf16 / s8 output is what towerrt_items_quantize
 * writes from that f32 store. */
#ifndef TOWERRT_ITEM_STORE_WRITE_H
#define TOWERRT_ITEM_STORE_WRITE_H

#include <stdint.h>

#include "container_write.h"
#include "item_store.h"

typedef struct trt_store_out trt_store_out;

/* Extra META entries (appended after the standard seven) and one optional
 * section written after the ID_MAP (ROW_ORDER, TOMBSTONES). */
typedef struct trt_store_extra {
  const trt_bytes *meta; /* packed entries, or NULL */
  uint32_t meta_keys;
  uint32_t kind; /* 0: no extra section */
} trt_store_extra;

/* A store shaped like `like` (heads, dim, stride, dtype, fingerprint) of
 * exactly `rows` rows; general.source is the builder's for f32, the
 * quantizer's for bf16 / s8 (unless `source` is given). */
towerrt_status trt_store_out_open(const char *path, const towerrt_items *like, uint64_t rows, const char *source,
                                  const trt_store_extra *extra, trt_store_out **out);
/* Appends row `row` of `src` (same dtype and shape) under `id`. A
 * duplicate id: TOWERRT_ERR_INVALID_ARGUMENT (*dup_row = the earlier row). */
towerrt_status trt_store_out_row(trt_store_out *o, const towerrt_items *src, uint64_t row, uint64_t id, uint32_t *dup_row);
/* Writes the rest (the extra section's bytes if extra.kind) and renames
 * the file into place; frees o in every case. */
towerrt_status trt_store_out_finish(trt_store_out *o, const void *extra_section, size_t extra_size);
void trt_store_out_abort(trt_store_out *o);

/* The seven META entries every item store starts with (docs/format.md):
 * count, heads, head_dim, dtype, row_stride, fingerprint, source; the
 * caller puts the u32 key count before them and its own keys after. */
void trt_store_meta_common(trt_bytes *b, uint64_t count, uint32_t heads, uint32_t head_dim, uint32_t dtype, uint64_t stride,
                           uint32_t fingerprint, const char *source);

/* The standard stride of a dtype's rows. */
uint64_t trt_store_stride(uint32_t heads, uint32_t head_dim, uint32_t dtype);

#endif
