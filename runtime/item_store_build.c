/* Item-store builds (docs/format.md, docs/item-stores.md): the streaming
 * builder of item_store_build.h, and towerrt_items_build on top of it.
 *
 * The caller's thread validates rows, takes their ids into the id map
 * (item_id_map.h) and stages them into fixed batches; worker threads
 * (item_store_build_workers.c, one per --threads) run each batch through
 * the item tower (item_store_build_engine.c: oneDNN matmul, single-threaded
 * per batch, or the internal kernels), checksum it and write its heads at
 * their place in ITEM_HEADS. The file is the common container writer's
 * (container_write.h), in a unique temporary until finish: META has a fixed
 * size whatever the counts, so it is reserved at open and ITEM_HEADS'
 * offset is known before the first row; a batch's rows are known when it
 * is staged, so workers never wait for each other; the caller folds the
 * batches' CRCs in order (trt_crc32_combine). finish() writes the real
 * META into its place, the ID_MAP (and a shard's ROW_ORDER), the section
 * table and the header, then fsyncs and renames the temporary to PATH
 * (and fsyncs the directory), so a failed build never leaves a
 * half-written store under the final name and two builds to one PATH never
 * write into one temporary.
 *
 * Every batch runs the same way whatever the thread count and whatever
 * rows surround it (oneDNN: always the full batch through one primitive,
 * the last batch padded), so the output is the same bytes for any
 * --threads, any chunking of the input, and any row's position. */
#include "item_store_build.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crc32.h"
#include "item_id_map.h"
#include "item_store.h"
#include "item_store_build_internal.h"
#include "item_store_write.h"

#define MAX_BATCH 65536u
#define MAX_THREADS 256u

/* META has the same size whatever the counts, so ITEM_HEADS' offset is
 * known before the first row. A shard records which shard it is and how
 * many rows its input had (build.shard, build.shards, build.input_rows); a
 * plain build's META is exactly the original builder's. */
static towerrt_status build_meta(const towerrt_model *m, uint64_t n, uint64_t seen, uint64_t stride, const trt_build_options *o,
                                 trt_bytes *b) {
  int shard = o->shard_count > 0;
  trt_bytes_u32(b, shard ? 10 : 7);
  trt_store_meta_common(b, n, m->heads_item, m->head_dim, TOWERRT_PRECISION_F32, stride, m->item_fingerprint, "towerrt_items_build");
  if (shard) {
    trt_meta_put_int(b, "build.shard", o->shard_index);
    trt_meta_put_int(b, "build.shards", o->shard_count);
    trt_meta_put_int(b, "build.input_rows", (int64_t)(o->input_rows ? o->input_rows : seen));
  }
  return b->failed ? trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory") : TOWERRT_OK;
}

void trt_build_options_init(trt_build_options *o) {
  memset(o, 0, sizeof *o);
  o->engine = TRT_ENGINE_AUTO;
  o->precision = TOWERRT_PRECISION_F32;
}

uint32_t trt_item_shard(uint64_t id, uint32_t n) { return n ? (uint32_t)((trt_splitmix64(id) >> 32) % n) : 0; }

uint64_t trt_items_builder_rows(const trt_items_builder *b) { return b ? b->rows : 0; }
uint64_t trt_items_builder_seen(const trt_items_builder *b) { return b ? b->seen : 0; }
const char *trt_items_builder_engine(const trt_items_builder *b) { return b ? b->engine_name : ""; }
void trt_items_builder_get_stats(const trt_items_builder *b, trt_items_build_stats *out) {
  if (b) *out = b->stats;
  else memset(out, 0, sizeof *out);
}

/* ---- id map ------------------------------------------------------------------- */
/* Rebuilds the map with n_slots slots, inserting rows in row order: the
 * table is then exactly the one inserting every row once, in order, into a
 * table of that size gives, whatever the growth history. */
static towerrt_status map_resize(trt_items_builder *b, uint64_t n_slots) {
  uint64_t *by_row = malloc((size_t)(b->rows ? b->rows : 1) * sizeof *by_row);
  if (!by_row) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory resizing the id map (%llu items)", (unsigned long long)b->rows);
  for (uint64_t i = 0; i < b->n_slots; i++) {
    const unsigned char *slot = b->map + 16 + i * 16;
    uint32_t r = trt_rd32(slot + 8);
    if (r != TRT_EMPTY_ROW) by_row[r] = trt_rd64(slot);
  }
  free(b->map);
  b->map = trt_id_map_alloc(n_slots);
  if (!b->map) {
    free(by_row);
    return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for an id map of %llu slots", (unsigned long long)n_slots);
  }
  b->n_slots = n_slots;
  for (uint64_t r = 0; r < b->rows; r++)
    if (trt_id_map_insert(b->map, by_row[r], (uint32_t)r) == TRT_ID_MAP_TOO_FAR) {
      towerrt_status st = trt_id_map_too_far(by_row[r]);
      free(by_row);
      return st;
    }
  free(by_row);
  return TOWERRT_OK;
}

/* Takes id as row b->rows (not yet counted). */
static towerrt_status take_id(trt_items_builder *b, uint64_t id, uint64_t ordinal) {
  if (b->rows >= (uint64_t)TRT_EMPTY_ROW - 1)
    return trt_fail(TOWERRT_ERR_LIMIT, "an item store holds at most %u items", TRT_EMPTY_ROW - 1);
  if (2 * (b->rows + 1) > b->n_slots) {
    towerrt_status st = map_resize(b, b->n_slots * 2);
    if (st) return st;
  }
  uint32_t dup = trt_id_map_insert(b->map, id, (uint32_t)b->rows);
  if (dup == TRT_ID_MAP_TOO_FAR) return trt_id_map_too_far(id);
  if (dup != TRT_EMPTY_ROW) {
    uint64_t first = b->o.shard_count ? b->ord[dup] : dup;
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "item id %llu appears twice (input rows %llu and %llu)", (unsigned long long)id,
                    (unsigned long long)first, (unsigned long long)ordinal);
  }
  if (b->o.shard_count) {
    if (b->rows >= b->ord_cap) {
      size_t cap = b->ord_cap ? b->ord_cap * 2 : 4096;
      uint64_t *q = realloc(b->ord, cap * sizeof *q);
      if (!q) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for the row order");
      b->ord = q;
      b->ord_cap = cap;
    }
    b->ord[b->rows] = ordinal;
  }
  b->rows++;
  return TOWERRT_OK;
}

/* ---- open / append / finish -------------------------------------------------- */
/* Workers first: they may be writing into the temporary. */
static void builder_free(trt_items_builder *b) {
  if (!b) return;
  trt_build_stop_workers(b);
  if (b->sync_ready) {
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
  }
  trt_writer_abort(&b->file); /* no-op after a commit */
  free(b->map);
  free(b->ord);
  free(b);
}

void trt_items_builder_abort(trt_items_builder *b) { builder_free(b); }

/* The container up to ITEM_HEADS: META reserved at its fixed size (its
 * counts are written by finish), ITEM_HEADS begun, written in place. */
static towerrt_status open_file(trt_items_builder *b, const char *path) {
  trt_bytes meta = {0};
  towerrt_status st = build_meta(b->m, 0, 0, b->stride, &b->o, &meta);
  b->meta_len = meta.len;
  free(meta.p);
  uint64_t heads_offset;
  if (!st) st = trt_writer_open(&b->file, path, "TWRITEMS", b->o.shard_count ? 4 : 3);
  if (!st) st = trt_writer_reserve(&b->file, TRT_SEC_META, b->meta_len);
  if (!st) st = trt_writer_begin_placed(&b->file, TRT_SEC_ITEM_HEADS, &heads_offset);
  return st;
}

towerrt_status trt_items_builder_open(const towerrt_model *m, const char *path, const trt_build_options *opts,
                                      trt_items_builder **out) {
  if (!out) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "trt_items_builder_open: out is NULL");
  *out = NULL;
  if (!m || !path) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "trt_items_builder_open: model and path must not be NULL");
  trt_build_options o;
  if (opts) o = *opts;
  else trt_build_options_init(&o);
  if (o.input_rows && !o.shard_count)
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "a declared input row count (%llu) needs a shard build", (unsigned long long)o.input_rows);
  if (o.shard_count && o.shard_index >= o.shard_count)
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "shard %u/%u: the index must be below the count", o.shard_index, o.shard_count);
  if (o.batch > MAX_BATCH) return trt_fail(TOWERRT_ERR_LIMIT, "batch %u above the limit %u", o.batch, MAX_BATCH);
  if (o.threads > MAX_THREADS) return trt_fail(TOWERRT_ERR_LIMIT, "%u build threads above the limit %u", o.threads, MAX_THREADS);
  trt_items_builder *b = calloc(1, sizeof *b);
  if (!b) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  b->file.out.fd = -1;
  b->m = m;
  b->o = o;
  b->per_row = (size_t)m->heads_item * m->head_dim;
  b->stride = trt_store_stride(m->heads_item, m->head_dim, TOWERRT_PRECISION_F32);
  b->id_slots = m->item.id_slots;
  b->dense_w = m->item.dense_width;
  b->batch = o.batch ? o.batch : TRT_BUILD_DEFAULT_BATCH;
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  b->n_workers = o.threads ? o.threads : (unsigned)(cores < 1 ? 1 : cores > MAX_THREADS ? MAX_THREADS : cores);
  towerrt_status st = trt_build_resolve_engine(b);
  if (!st) {
    b->n_slots = trt_id_map_slots(o.expected);
    if (!(b->map = trt_id_map_alloc(b->n_slots)))
      st = trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for an id map of %llu slots", (unsigned long long)b->n_slots);
  }
  if (!st) st = open_file(b, path);
  if (st) {
    trt_items_builder_abort(b);
    return st;
  }
  *out = b;
  return TOWERRT_OK;
}

static towerrt_status sticky(trt_items_builder *b, towerrt_status st) {
  if (st && !b->failed) b->failed = st;
  return st;
}

static towerrt_status check_usable(trt_items_builder *b, int raw) {
  if (b->failed) return trt_fail(b->failed, "this build already failed (%s); abort it", towerrt_status_name(b->failed));
  if (b->rows && b->raw != raw)
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "a build takes either feature rows or computed heads, not both");
  b->raw = raw;
  return TOWERRT_OK;
}

/* Checks a block of feature rows (row numbers in messages count from the
 * rows seen so far) and starts the workers on the first one. */
static towerrt_status check_block(trt_items_builder *b, const towerrt_features *f, const uint64_t *ids, size_t n) {
  towerrt_status st = check_usable(b, 0);
  if (st) return st;
  if (!f || (n && !ids)) return sticky(b, trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "trt_items_builder_append: features and ids must not be NULL"));
  if (!b->w && (st = trt_build_start_workers(b))) return sticky(b, st);
  if ((st = trt_check_features(b->m, TOWERRT_ITEM, f, n))) {
    if (b->seen) {
      char ctx[96];
      snprintf(ctx, sizeof ctx, "input rows %llu..%llu (row numbers below count from %llu)", (unsigned long long)b->seen,
               (unsigned long long)(b->seen + n - 1), (unsigned long long)b->seen);
      trt_fail_context(st, ctx);
    }
    return sticky(b, st);
  }
  return TOWERRT_OK;
}

/* Takes row r of f as input ordinal `ordinal` and stages it into a batch. */
static towerrt_status stage_row(trt_items_builder *b, const towerrt_features *f, size_t r, uint64_t id, uint64_t ordinal,
                                trt_build_worker **w) {
  towerrt_status st = take_id(b, id, ordinal);
  if (!st && !*w) st = trt_build_stage_target(b, w);
  if (st) return sticky(b, st);
  if (b->id_slots) memcpy((*w)->ids + (*w)->n * b->id_slots, f->ids + r * b->id_slots, b->id_slots * sizeof(int64_t));
  if (b->dense_w) memcpy((*w)->dense + (*w)->n * b->dense_w, f->dense + r * b->dense_w, b->dense_w * sizeof(float));
  if (++(*w)->n == b->batch) {
    trt_build_submit(b);
    *w = NULL;
  }
  return TOWERRT_OK;
}

towerrt_status trt_items_builder_append(trt_items_builder *b, const towerrt_features *f, const uint64_t *ids, size_t n) {
  if (!b) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "trt_items_builder_append: builder is NULL");
  if (b->o.input_rows)
    return sticky(b, trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "a build with a declared input row count takes rows with their ordinals"));
  towerrt_status st = check_block(b, f, ids, n);
  if (st) return st;
  trt_build_worker *w = NULL;
  for (size_t r = 0; r < n; r++) {
    uint64_t ordinal = b->seen++;
    if (b->o.shard_count && trt_item_shard(ids[r], b->o.shard_count) != b->o.shard_index) continue;
    if ((st = stage_row(b, f, r, ids[r], ordinal, &w))) return st;
  }
  return TOWERRT_OK;
}

towerrt_status trt_items_builder_append_ordered(trt_items_builder *b, const towerrt_features *f, const uint64_t *ids,
                                                const uint64_t *ordinals, size_t n) {
  if (!b) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "trt_items_builder_append_ordered: builder is NULL");
  if (!b->o.shard_count || !b->o.input_rows)
    return sticky(b, trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "rows with ordinals need a shard build with a declared input row count"));
  if (n && !ordinals) return sticky(b, trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "trt_items_builder_append_ordered: ordinals are NULL"));
  towerrt_status st = check_block(b, f, ids, n);
  if (st) return st;
  trt_build_worker *w = NULL;
  for (size_t r = 0; r < n; r++) {
    uint64_t prev = b->rows ? b->ord[b->rows - 1] : 0;
    if (ordinals[r] >= b->o.input_rows || (b->rows && ordinals[r] <= prev))
      return sticky(b, trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "row ordinal %llu: not above the previous (%llu) or not below the %llu input rows",
                                (unsigned long long)ordinals[r], (unsigned long long)prev, (unsigned long long)b->o.input_rows));
    uint32_t shard = trt_item_shard(ids[r], b->o.shard_count);
    if (shard != b->o.shard_index)
      return sticky(b, trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "item id %llu belongs to shard %u, not to this shard %u of %u",
                                (unsigned long long)ids[r], shard, b->o.shard_index, b->o.shard_count));
    b->seen++;
    if ((st = stage_row(b, f, r, ids[r], ordinals[r], &w))) return st;
  }
  return TOWERRT_OK;
}

towerrt_status trt_items_builder_append_heads(trt_items_builder *b, const unsigned char *rows, size_t stride, const uint64_t *ids,
                                              size_t n) {
  if (!b) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "trt_items_builder_append_heads: builder is NULL");
  towerrt_status st = check_usable(b, 1);
  if (st) return st;
  if (n && (!rows || !ids)) return sticky(b, trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "trt_items_builder_append_heads: rows and ids must not be NULL"));
  if (stride != b->stride)
    return sticky(b, trt_fail(TOWERRT_ERR_SHAPE, "rows of %zu bytes given, the model's store rows are %llu bytes", stride,
                              (unsigned long long)b->stride));
  uint64_t first = b->rows;
  for (size_t r = 0; r < n; r++) {
    uint64_t ordinal = b->seen++;
    if ((st = take_id(b, ids[r], ordinal))) return sticky(b, st);
  }
  size_t len = n * (size_t)b->stride;
  double t0 = trt_build_now();
  b->crc = trt_crc32(b->crc, rows, len);
  if ((st = trt_writer_pwrite(&b->file, first * b->stride, rows, len))) return sticky(b, st);
  b->staged_rows = b->rows;
  b->stats.write_seconds += trt_build_now() - t0;
  return TOWERRT_OK;
}

/* The real META into its reserved place, the end of ITEM_HEADS, the ID_MAP
 * (and a shard's ROW_ORDER), then header and table, and the rename. */
static towerrt_status write_tail(trt_items_builder *b) {
  towerrt_status st;
  if (!b->o.shard_count && b->rows == 0) return trt_fail(TOWERRT_ERR_EMPTY_REQUEST, "no items to build a store from");
  uint64_t want = trt_id_map_slots(b->rows);
  if (want != b->n_slots && (st = map_resize(b, want))) return st;
  trt_bytes meta = {0}, order = {0};
  st = build_meta(b->m, b->rows, b->seen, b->stride, &b->o, &meta);
  for (uint64_t r = 0; r < b->rows && b->o.shard_count; r++) trt_bytes_u64(&order, b->ord[r]);
  if (!st && order.failed) st = trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  if (!st && meta.len != b->meta_len) st = trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "META changed size (%zu, reserved %llu)", meta.len,
                                                    (unsigned long long)b->meta_len);
  if (!st) st = trt_writer_patch(&b->file, 0, meta.p, meta.len);
  if (!st) st = trt_writer_end_placed(&b->file, b->rows * b->stride, b->crc);
  if (!st && !(st = trt_writer_begin(&b->file, TRT_SEC_ID_MAP)) && !(st = trt_writer_put(&b->file, b->map, trt_id_map_bytes(b->n_slots))))
    st = trt_writer_end(&b->file);
  if (!st && b->o.shard_count && !(st = trt_writer_begin(&b->file, TRT_SEC_ROW_ORDER)) && !(st = trt_writer_put(&b->file, order.p, order.len)))
    st = trt_writer_end(&b->file);
  free(meta.p);
  free(order.p);
  return st ? st : trt_writer_finish(&b->file);
}


towerrt_status trt_items_builder_finish(trt_items_builder *b) {
  if (!b) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "trt_items_builder_finish: builder is NULL");
  towerrt_status st = b->failed ? trt_fail(b->failed, "this build already failed (%s)", towerrt_status_name(b->failed)) : TOWERRT_OK;
  if (!st && b->w) {
    trt_build_submit(b);
    st = trt_build_drain(b);
  }
  trt_build_stop_workers(b);
  /* fsync, close, rename, fsync of the directory */
  if (!st) st = write_tail(b);
  if (st) trt_items_builder_abort(b);
  else builder_free(b);
  return st;
}

/* ---- the public whole-array build -------------------------------------------- */
towerrt_status towerrt_items_build(const towerrt_model *m, const towerrt_features *items, const uint64_t *item_ids, size_t n,
                                   const char *path) {
  if (!m || !items || !item_ids || !path)
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_items_build: model, items, item_ids and path must not be NULL");
  if (n == 0) return trt_fail(TOWERRT_ERR_EMPTY_REQUEST, "towerrt_items_build: no items");
  if (n >= TRT_EMPTY_ROW) return trt_fail(TOWERRT_ERR_LIMIT, "towerrt_items_build: %zu items exceed the limit %u", n, TRT_EMPTY_ROW - 1);
  towerrt_status st = trt_check_features(m, TOWERRT_ITEM, items, n);
  if (st) return st;
  trt_build_options o;
  trt_build_options_init(&o);
  o.expected = n;
  trt_items_builder *b;
  if ((st = trt_items_builder_open(m, path, &o, &b))) return st;
  st = trt_items_builder_append(b, items, item_ids, n);
  if (st) {
    trt_items_builder_abort(b);
    return st;
  }
  return trt_items_builder_finish(b);
}
