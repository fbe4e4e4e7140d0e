/* Streaming item-store builder (internal API; docs/item-stores.md).
 *
 *   open(model, path, options) -> append(rows) ... -> finish()
 *
 * Rows are run through the item tower in fixed batches by worker threads
 * and their heads streamed to PATH.tmp; finish() writes META, the ID_MAP,
 * the header and the CRCs and renames PATH.tmp to PATH. Memory does not
 * depend on the catalog size except for the id map: 16 bytes x n_slots
 * (n_slots = the power of two >= 2 x rows, i.e. 32 to 64 bytes per item),
 * plus 8 bytes per item for a sharded build's ROW_ORDER section. The rest
 * is per worker thread: one batch of heads (batch x row stride: 2 MiB for
 * 256 rows of 32 x 64 f32 heads), its activations and features, and the
 * oneDNN weights (a copy of the item tower's dense layers).
 * towerrt_items_build is open + one append + finish.
 *
 * Output is deterministic: for a given engine, precision (f32 or bf16) and batch, the
 * bytes do not depend on the number of threads, on how the rows are split
 * into append calls, or on a row's position in the catalog (every batch
 * runs alone on one thread, in full, the last one padded), so a sharded
 * build merged by trt_items_merge is byte for byte the single build of the
 * same catalog. */
#ifndef TOWERRT_ITEM_STORE_BUILD_H
#define TOWERRT_ITEM_STORE_BUILD_H

#include <stddef.h>
#include <stdint.h>

#include "towerrt.h"

/* Section kind of a shard's ROW_ORDER: u64 per row, the row's input ordinal
 * (its index among all rows given to append, whatever their shard). */
/* TRT_SEC_ROW_ORDER (12) is in container.h */

enum { TRT_ENGINE_AUTO = 0, TRT_ENGINE_INTERNAL = 1, TRT_ENGINE_ONEDNN = 2 };

typedef struct trt_build_options {
  int engine;         /* TRT_ENGINE_*. AUTO: oneDNN when built in (not under
                         ThreadSanitizer), else the internal kernels; the
                         environment variable TOWERRT_BUILD_ENGINE=internal|onednn
                         overrides AUTO. */
  int precision;      /* TOWERRT_PRECISION_F32 (default), TOWERRT_PRECISION_BF16 or TOWERRT_PRECISION_INT8
                         (oneDNN only; onednn_matmul.h). int8 quantizes each
                         batch with its own scales, so an int8 store is not
                         position-invariant (shards merged != single build) */
  unsigned threads;   /* worker threads running batches (one core each);
                         0: every online core */
  uint32_t batch;     /* rows per tower batch with oneDNN; 0: 256 (the
                         internal kernels run blocks of TRT_ITEM_BLOCK) */
  uint64_t expected;  /* rows expected (0: unknown): sizes the id map once */
  uint32_t shard_index, shard_count; /* shard_count > 0: keep only the rows whose
                                        id is in shard shard_index (trt_item_shard) */
  uint64_t input_rows; /* shard builds fed only their own rows: the whole
                          input's row count (build.input_rows); rows then come
                          with their input ordinals (append_ordered) */
} trt_build_options;

/* Where a build's time went: batches run, and the seconds worker threads
 * spent in the item tower and in checksumming + writing (summed over the
 * threads), valid after finish (append_heads: write only). */
typedef struct trt_items_build_stats {
  uint64_t batches;
  double tower_seconds, write_seconds;
} trt_items_build_stats;

typedef struct trt_items_builder trt_items_builder;

void trt_build_options_init(trt_build_options *o);

/* The shard of an item id among n: (splitmix64(id) >> 32) % n. The high
 * half of the hash, so that a shard's ids still spread over every slot of
 * its id map, whose home slot is the low bits of the same hash. */
uint32_t trt_item_shard(uint64_t id, uint32_t n);

towerrt_status trt_items_builder_open(const towerrt_model *m, const char *path, const trt_build_options *o,
                                      trt_items_builder **out);
/* n rows: features in model order (towerrt_features) and their ids. In a
 * sharded build the rows of other shards are validated and skipped. */
towerrt_status trt_items_builder_append(trt_items_builder *b, const towerrt_features *f, const uint64_t *ids, size_t n);
/* A shard's own rows with their ordinals in the whole input (ascending,
 * below o.input_rows; every id of this shard), so that a shard job never
 * reads the other shards' rows (docs/item-stores.md, "Spark"). */
towerrt_status trt_items_builder_append_ordered(trt_items_builder *b, const towerrt_features *f, const uint64_t *ids,
                                                const uint64_t *ordinals, size_t n);
/* n rows whose heads are already computed (merging stores): row r at
 * rows + r * stride, stride = the store's row stride. */
towerrt_status trt_items_builder_append_heads(trt_items_builder *b, const unsigned char *rows, size_t stride,
                                              const uint64_t *ids, size_t n);
/* Writes the store and renames it into place; frees b in every case. A
 * build with no rows is an error (TOWERRT_ERR_EMPTY_REQUEST) unless it is
 * a shard (then an empty shard store, items.count 0, is written). */
towerrt_status trt_items_builder_finish(trt_items_builder *b);
/* Removes PATH.tmp and frees b. */
void trt_items_builder_abort(trt_items_builder *b);

/* Rows kept so far, rows seen (all shards), and what computes the heads
 * ("onednn f32 batch 256, oneDNN 2.6.3 ...", "internal avx512"). */
uint64_t trt_items_builder_rows(const trt_items_builder *b);
uint64_t trt_items_builder_seen(const trt_items_builder *b);
const char *trt_items_builder_engine(const trt_items_builder *b);
void trt_items_builder_get_stats(const trt_items_builder *b, trt_items_build_stats *out);

/* Merges stores into one (item_store_merge.c). Inputs are the n shards of
 * one sharded build (META build.shard / build.shards, any order: rows are
 * merged back into input order by their ROW_ORDER), or plain stores
 * (concatenated in the order given). Checks the model's fingerprint, heads,
 * head dim and row stride; a duplicate id is an error naming the id and
 * both inputs. Streams rows: memory is the output id map plus 8 bytes per
 * input row. progress may be NULL. */

towerrt_status trt_items_merge(const towerrt_model *m, const char *const *inputs, size_t n_inputs, const char *path,
                               towerrt_progress_fn progress, void *ctx);

#endif
