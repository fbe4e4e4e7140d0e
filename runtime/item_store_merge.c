/* trt_items_merge (item_store_build.h): several item stores -> one.
 *
 * Inputs are mapped (not read into memory) and fully validated: checksums,
 * META, id map, finite heads (towerrt_items_load). Rows are copied straight
 * from the mappings into the output through the streaming builder, so the
 * memory is the output's id map plus 8 bytes per input row (row -> id).
 *
 * Row order. The n shards of one sharded build carry, per row, its input
 * ordinal (ROW_ORDER) and their input's row count (build.input_rows): the
 * merge interleaves them back into input order and checks that every input
 * row is in exactly one shard, so the result is the single build of that
 * input, byte for byte. Plain stores are concatenated in the order given.
 *
 * Quantized inputs (bf16, s8: towerrt_items_quantize keeps a shard's
 * META build.* and ROW_ORDER) merge the same way, without an f32 store in
 * between: rows (and an s8 row's scale and column sums) are copied as they
 * are, and item stores quantize per row, so merging the quantized shards
 * gives exactly the quantized single build (item_store_write.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "item_store.h"
#include "item_store_build.h"
#include "item_store_write.h"
#include "model.h"
#include "status.h"

typedef struct merge_in {
  const char *path;
  towerrt_items *s;         /* NULL for an empty shard */
  uint64_t count, stride;
  uint32_t heads, head_dim, fingerprint, dtype;
  int64_t shard, shards, input_rows; /* -1: a plain store */
  const unsigned char *order;        /* ROW_ORDER: count x u64, or NULL */
  const unsigned char *heads_data;
  uint64_t *ids; /* row -> id */
  uint64_t next; /* next row to copy */
} merge_in;

static int meta_get_int(const trt_meta *m, const char *key, int64_t *out) {
  trt_meta_value v;
  if (!trt_meta_find(m, key, &v) || v.type != TRT_META_INT) return 0;
  *out = v.i;
  return 1;
}

/* An empty shard (items.count 0) is only valid as a shard: towerrt_items_load
 * rejects it, so it is checked here (header, checksums, META, empty map). */
static towerrt_status open_empty_shard(merge_in *in, const trt_container *c, const trt_meta *meta) {
  const trt_section *heads, *map;
  towerrt_status st;
  if ((st = trt_container_require(c, TRT_SEC_ITEM_HEADS, "ITEM_HEADS", &heads))) return st;
  if ((st = trt_container_require(c, TRT_SEC_ID_MAP, "ID_MAP", &map))) return st;
  if (in->shards < 0) return trt_fail(TOWERRT_ERR_FORMAT, "items.count is 0 in a store that is not a shard");
  if (heads->size != 0) return trt_fail(TOWERRT_ERR_FORMAT, "ITEM_HEADS holds %" PRIu64 " bytes for 0 items", heads->size);
  if (map->size < 16) return trt_fail(TOWERRT_ERR_FORMAT, "ID_MAP section of %" PRIu64 " bytes has no header", map->size);
  uint64_t n_slots = trt_rd64(map->data);
  if (n_slots == 0 || (n_slots & (n_slots - 1)) || n_slots > (map->size - 16) / 16 || map->size != 16 + n_slots * 16)
    return trt_fail(TOWERRT_ERR_FORMAT, "ID_MAP: %" PRIu64 " slots in %" PRIu64 " bytes", n_slots, map->size);
  for (uint64_t i = 0; i < n_slots; i++)
    if (trt_rd32(map->data + 16 + i * 16 + 8) != TRT_EMPTY_ROW)
      return trt_fail(TOWERRT_ERR_FORMAT, "ID_MAP slot %" PRIu64 " is filled in a store of 0 items", i);
  (void)meta;
  return TOWERRT_OK;
}

/* Reads META (checksums verified), then loads a non-empty store with the
 * full validation of towerrt_items_load. */
static towerrt_status open_input(merge_in *in) {
  trt_mapped_file file;
  trt_container c;
  trt_meta meta;
  const trt_section *msec;
  trt_meta_value v;
  int64_t count = 0, heads = 0, dim = 0, stride = 0, fp = 0;
  towerrt_status st = trt_map_file(in->path, &file);
  if (st) return st;
  st = trt_container_open(file.data, file.size, "TWRITEMS", 1, &c);
  if (!st) st = trt_container_require(&c, TRT_SEC_META, "META", &msec);
  if (!st) st = trt_meta_parse(msec, &meta);
  if (!st && !(meta_get_int(&meta, "items.count", &count) && meta_get_int(&meta, "items.heads", &heads) &&
               meta_get_int(&meta, "items.head_dim", &dim) && meta_get_int(&meta, "items.row_stride", &stride) &&
               meta_get_int(&meta, "model.fingerprint", &fp)))
    st = trt_fail(TOWERRT_ERR_FORMAT, "META lacks one of items.count, items.heads, items.head_dim, items.row_stride, model.fingerprint");
  static const char *const dtypes[3] = {"f32", "bf16", "s8"};
  in->dtype = 3;
  if (!st && trt_meta_find(&meta, "items.dtype", &v) && v.type == TRT_META_STRING)
    for (uint32_t k = 0; k < 3; k++)
      if (v.len == strlen(dtypes[k]) && !memcmp(v.str, dtypes[k], v.len)) in->dtype = k;
  if (!st && in->dtype == 3) st = trt_fail(TOWERRT_ERR_UNSUPPORTED, "items.dtype is not f32, bf16 or s8");
  if (!st && trt_meta_find(&meta, "delta.base_count", &v))
    st = trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "a delta store is not merged: apply it (towerrt_items_overlay) and compact");
  if (!st && (c.sections[TRT_SEC_ITEM_CENTRE].data || c.sections[TRT_SEC_ROW_CENTRES].data))
    st = trt_fail(TOWERRT_ERR_UNSUPPORTED, "a centred store is not merged (its rows are relative to its centres): merge the f32 shards, "
                  "then quantize the merged store");
  in->shard = in->shards = in->input_rows = -1;
  int64_t sh = 0, shs = 0, rows = 0;
  int has_shard = !st && meta_get_int(&meta, "build.shard", &sh);
  int has_shards = !st && meta_get_int(&meta, "build.shards", &shs);
  int has_rows = !st && meta_get_int(&meta, "build.input_rows", &rows);
  if (!st && (has_shard || has_shards || has_rows)) {
    if (!(has_shard && has_shards && has_rows) || shs < 1 || shs > UINT32_MAX || sh < 0 || sh >= shs || rows < 0)
      st = trt_fail(TOWERRT_ERR_FORMAT, "META build.shard / build.shards / build.input_rows are incomplete or out of range");
    else {
      in->shard = sh;
      in->shards = shs;
      in->input_rows = rows;
    }
  }
  if (!st && (count < 0 || heads < 1 || dim < 1 || stride < 64))
    st = trt_fail(TOWERRT_ERR_FORMAT, "META items.count %" PRId64 ", heads %" PRId64 ", head_dim %" PRId64 ", row_stride %" PRId64
                  " out of range", count, heads, dim, stride);
  if (!st && count == 0) st = open_empty_shard(in, &c, &meta);
  trt_unmap_file(&file);
  if (st) return st;
  in->count = (uint64_t)count;
  in->heads = (uint32_t)heads;
  in->head_dim = (uint32_t)dim;
  in->stride = (uint64_t)stride;
  in->fingerprint = (uint32_t)fp;
  if (count == 0) return TOWERRT_OK;
  towerrt_options o;
  towerrt_options_init(&o);
  o.verify_checksums = 1;
  if ((st = towerrt_items_load(in->path, &o, &in->s))) return st;
  in->heads_data = (const unsigned char *)in->s->heads_data;
  if (in->shards >= 0) {
    const trt_section *ord = &in->s->container.sections[TRT_SEC_ROW_ORDER];
    if (!ord->data || ord->size != in->count * 8)
      return trt_fail(TOWERRT_ERR_FORMAT, "a shard needs a ROW_ORDER section of %" PRIu64 " x 8 bytes (found %" PRIu64 ")", in->count,
                      ord->data ? ord->size : 0);
    in->order = ord->data;
    for (uint64_t r = 0; r < in->count; r++) {
      uint64_t o_r = trt_rd64(in->order + r * 8);
      if (o_r >= (uint64_t)in->input_rows || (r && o_r <= trt_rd64(in->order + (r - 1) * 8)))
        return trt_fail(TOWERRT_ERR_FORMAT, "ROW_ORDER row %" PRIu64 ": input row %" PRIu64 " is out of order or beyond the %" PRId64
                        " input rows", r, o_r, in->input_rows);
    }
  }
  in->ids = malloc((size_t)in->count * sizeof *in->ids);
  if (!in->ids) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for %" PRIu64 " ids", in->count);
  for (uint64_t i = 0; i < in->s->n_slots; i++) {
    const unsigned char *slot = in->s->slots + i * 16;
    uint32_t r = trt_rd32(slot + 8);
    if (r != TRT_EMPTY_ROW) in->ids[r] = trt_rd64(slot);
  }
  return TOWERRT_OK;
}

static towerrt_status check_inputs(const towerrt_model *m, merge_in *in, size_t n, uint64_t *total) {
  size_t n_shards = 0;
  *total = 0;
  uint64_t stride = trt_store_stride(m->heads_item, m->head_dim, in[0].dtype);
  for (size_t i = 0; i < n; i++) {
    if (in[i].dtype != in[0].dtype)
      return trt_fail(TOWERRT_ERR_MISMATCH, "'%s' and '%s' hold different dtypes (quantize every input the same way)", in[0].path,
                      in[i].path);
    if (in[i].fingerprint != m->item_fingerprint)
      return trt_fail(TOWERRT_ERR_MISMATCH, "'%s' was built for another model (fingerprint 0x%08x, this model's is 0x%08x)", in[i].path,
                      in[i].fingerprint, m->item_fingerprint);
    if (in[i].heads != m->heads_item || in[i].head_dim != m->head_dim || in[i].stride != stride)
      return trt_fail(TOWERRT_ERR_MISMATCH, "'%s' holds %u heads x %u dims in rows of %" PRIu64 " bytes; the model gives %u x %u in %" PRIu64,
                      in[i].path, in[i].heads, in[i].head_dim, in[i].stride, m->heads_item, m->head_dim, stride);
    *total += in[i].count;
    n_shards += in[i].shards >= 0;
  }
  if (*total >= TRT_EMPTY_ROW)
    return trt_fail(TOWERRT_ERR_LIMIT, "the inputs hold %" PRIu64 " items, above the store limit %u", *total, TRT_EMPTY_ROW - 1);
  if (n_shards == 0) {
    if (*total == 0) return trt_fail(TOWERRT_ERR_EMPTY_REQUEST, "no items in the inputs");
    return TOWERRT_OK;
  }
  if (n_shards != n)
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "the inputs mix shards of a sharded build and plain stores ('%s' is %s)", in[0].path,
                    in[0].shards >= 0 ? "a shard" : "a plain store");
  int64_t shards = in[0].shards, rows = in[0].input_rows;
  for (size_t i = 1; i < n; i++)
    if (in[i].shards != shards || in[i].input_rows != rows)
      return trt_fail(TOWERRT_ERR_MISMATCH, "'%s' is shard %" PRId64 "/%" PRId64 " of %" PRId64 " input rows, '%s' is shard %" PRId64 "/%" PRId64
                      " of %" PRId64 ": not one sharded build", in[0].path, in[0].shard, in[0].shards, in[0].input_rows, in[i].path,
                      in[i].shard, in[i].shards, in[i].input_rows);
  for (size_t i = 0; i < n; i++)
    for (size_t j = i + 1; j < n; j++)
      if (in[i].shard == in[j].shard)
        return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "shard %" PRId64 "/%" PRId64 " is given twice ('%s' and '%s')", in[i].shard, shards,
                        in[i].path, in[j].path);
  if ((int64_t)n != shards) {
    for (int64_t k = 0; k < shards; k++) {
      size_t i = 0;
      while (i < n && in[i].shard != k) i++;
      if (i == n)
        return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "shard %" PRId64 "/%" PRId64 " is missing (%zu of %" PRId64 " shards given)", k, shards,
                        n, shards);
    }
  }
  if (*total != (uint64_t)rows)
    return trt_fail(TOWERRT_ERR_MISMATCH, "the %" PRId64 " shards hold %" PRIu64 " items but their input had %" PRId64 " rows", shards, *total,
                    rows);
  if (*total == 0) return trt_fail(TOWERRT_ERR_EMPTY_REQUEST, "no items in the inputs");
  return TOWERRT_OK;
}

/* A duplicate id reported by the builder, restated with the inputs. */
static towerrt_status explain_duplicate(merge_in *in, size_t n, uint64_t id) {
  const char *a = NULL, *b = NULL;
  for (size_t i = 0; i < n && !b; i++)
    if (in[i].s && trt_items_find(in[i].s, id) != TRT_EMPTY_ROW) {
      if (!a) a = in[i].path;
      else b = in[i].path;
    }
  if (a && b) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "item id %" PRIu64 " is in both '%s' and '%s'", id, a, b);
  return TOWERRT_ERR_INVALID_ARGUMENT; /* keep the builder's message */
}

/* Quantized rows, one by one (their scales and column sums with them). */
static towerrt_status copy_quantized(trt_store_out *q, const merge_in *src, uint64_t len) {
  towerrt_status st = TOWERRT_OK;
  for (uint64_t r = src->next; r < src->next + len && !st; r++) st = trt_store_out_row(q, src->s, r, src->ids[r], NULL);
  return st;
}

static towerrt_status copy_rows(trt_items_builder *b, trt_store_out *q, merge_in *in, size_t n_in, merge_in *src, uint64_t len) {
  towerrt_status st = q ? copy_quantized(q, src, len)
                        : trt_items_builder_append_heads(b, src->heads_data + src->next * src->stride, (size_t)src->stride,
                                                         src->ids + src->next, (size_t)len);
  if (st == TOWERRT_ERR_INVALID_ARGUMENT) {
    /* find the id: the first of the run already present elsewhere */
    for (uint64_t r = 0; r < len; r++) {
      uint64_t id = src->ids[src->next + r];
      int hits = 0;
      for (size_t i = 0; i < n_in; i++) hits += in[i].s && trt_items_find(in[i].s, id) != TRT_EMPTY_ROW;
      if (hits > 1) return explain_duplicate(in, n_in, id);
    }
  }
  src->next += len;
  return st;
}

static uint64_t next_ordinal(const merge_in *in) { return in->next < in->count ? trt_rd64(in->order + in->next * 8) : UINT64_MAX; }

towerrt_status trt_items_merge(const towerrt_model *m, const char *const *inputs, size_t n_inputs, const char *path,
                               towerrt_progress_fn progress, void *ctx) {
  if (!m || !inputs || !path) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "trt_items_merge: model, inputs and path must not be NULL");
  if (n_inputs == 0) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "trt_items_merge: no input stores");
  merge_in *in = calloc(n_inputs, sizeof *in);
  if (!in) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  towerrt_status st = TOWERRT_OK;
  for (size_t i = 0; i < n_inputs && !st; i++) {
    in[i].path = inputs[i];
    if (!inputs[i]) st = trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "trt_items_merge: input %zu is NULL", i);
    else if ((st = open_input(&in[i]))) trt_fail_context(st, inputs[i]);
  }
  uint64_t total = 0;
  if (!st) st = check_inputs(m, in, n_inputs, &total);
  trt_items_builder *b = NULL;
  trt_store_out *q = NULL;
  if (!st && in[0].dtype != TOWERRT_PRECISION_F32) {
    const towerrt_items *like = NULL;
    for (size_t i = 0; i < n_inputs && !like; i++) like = in[i].s;
    st = trt_store_out_open(path, like, total, NULL, NULL, &q);
  } else if (!st) {
    trt_build_options o;
    trt_build_options_init(&o);
    o.engine = TRT_ENGINE_INTERNAL; /* rows are copied, nothing runs */
    o.expected = total;
    st = trt_items_builder_open(m, path, &o, &b);
  }
  uint64_t done = 0;
  if (!st && in[0].shards < 0) {
    /* plain stores: concatenated, in the order given */
    for (size_t i = 0; i < n_inputs && !st; i++)
      while (in[i].next < in[i].count && !st) {
        uint64_t len = in[i].count - in[i].next < 65536 ? in[i].count - in[i].next : 65536;
        st = copy_rows(b, q, in, n_inputs, &in[i], len);
        done += len;
        if (progress) progress(ctx, done, total);
      }
  } else if (!st) {
    /* shards: back into input order; ordinals must run 0, 1, ..., total-1 */
    while (done < total && !st) {
      size_t best = n_inputs;
      for (size_t i = 0; i < n_inputs; i++)
        if (next_ordinal(&in[i]) == done) best = i;
      if (best == n_inputs) {
        st = trt_fail(TOWERRT_ERR_MISMATCH, "input row %" PRIu64 " is in none of the shards: they were not built from the same input", done);
        break;
      }
      merge_in *src = &in[best];
      uint64_t len = 0;
      while (src->next + len < src->count && trt_rd64(src->order + (src->next + len) * 8) == done + len) len++;
      st = copy_rows(b, q, in, n_inputs, src, len);
      done += len;
      if (progress) progress(ctx, done, total);
    }
  }
  if (b) {
    if (!st) st = trt_items_builder_finish(b);
    else trt_items_builder_abort(b);
  }
  if (q) {
    if (!st) st = trt_store_out_finish(q, NULL, 0);
    else trt_store_out_abort(q);
  }
  for (size_t i = 0; i < n_inputs; i++) {
    towerrt_items_free(in[i].s);
    free(in[i].ids);
  }
  free(in);
  return st;
}

TOWERRT_API towerrt_status towerrt_items_merge(const towerrt_model *m, const char *const *inputs, size_t n_inputs, const char *path) {
  return trt_items_merge(m, inputs, n_inputs, path, NULL, NULL);
}

TOWERRT_API towerrt_status towerrt_items_merge_progress(const towerrt_model *m, const char *const *inputs, size_t n_inputs,
                                                        const char *path, towerrt_progress_fn progress, void *ctx) {
  return trt_items_merge(m, inputs, n_inputs, path, progress, ctx);
}
