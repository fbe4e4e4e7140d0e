/* towerrt_items_quantize: an f32 item store rewritten as bf16 or int8
 * (docs/quantization.md). int8: per item row, one symmetric scale
 * max|x| / 127 shared by its heads, s8 values, and per-head column sums
 * for the zero-point correction of the u8 user heads.
 *
 * A shard of a sharded build stays a shard: its META build.shard,
 * build.shards, build.input_rows and its ROW_ORDER are kept, so quantized
 * shards merge (trt_items_merge) into the quantized single build. */
#include <stdlib.h>
#include <string.h>

#include "container_write.h"
#include "item_store.h"
#include "quantize_heads.h"
#include "status.h"

static const char *const k_shard_keys[3] = {"build.shard", "build.shards", "build.input_rows"};

static int is_shard(const towerrt_items *s) {
  trt_meta_value v;
  return trt_meta_find(&s->meta, "build.shards", &v) && s->container.sections[TRT_SEC_ROW_ORDER].data;
}

static towerrt_status write_meta(trt_writer *w, const towerrt_items *s, const char *dtype, uint64_t stride) {
  trt_bytes b = {0};
  int shard = is_shard(s);
  trt_bytes_u32(&b, shard ? 10 : 7);
  trt_meta_put_int(&b, "items.count", (int64_t)s->count);
  trt_meta_put_int(&b, "items.heads", s->heads);
  trt_meta_put_int(&b, "items.head_dim", s->head_dim);
  trt_meta_put_str(&b, "items.dtype", dtype, strlen(dtype));
  trt_meta_put_int(&b, "items.row_stride", (int64_t)stride);
  trt_meta_put_int(&b, "model.fingerprint", s->fingerprint);
  trt_meta_put_str(&b, "general.source", "towerrt_items_quantize", 22);
  for (int k = 0; k < 3 && shard; k++) {
    trt_meta_value v;
    if (!trt_meta_find(&s->meta, k_shard_keys[k], &v) || v.type != TRT_META_INT) {
      free(b.p);
      return trt_fail(TOWERRT_ERR_FORMAT, "shard store without META %s", k_shard_keys[k]);
    }
    trt_meta_put_int(&b, k_shard_keys[k], v.i);
  }
  towerrt_status st = b.failed ? trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory") : TOWERRT_OK;
  if (!st) st = trt_writer_begin(w, TRT_SEC_META);
  if (!st) st = trt_writer_put(w, b.p, b.len);
  if (!st) st = trt_writer_end(w);
  free(b.p);
  return st;
}

/* ITEM_HEADS, and for s8 the scales and column sums (kept in memory: 4 + 4H
 * bytes per item, small next to the heads). */
static towerrt_status write_rows(trt_writer *w, const towerrt_items *s, towerrt_precision prec, uint64_t stride, float *scales,
                                 int32_t *colsums) {
  size_t per_row = (size_t)s->heads * s->head_dim;
  unsigned char *row = calloc(1, (size_t)stride);
  if (!row) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  towerrt_status st = trt_writer_begin(w, TRT_SEC_ITEM_HEADS);
  for (uint64_t r = 0; r < s->count && !st; r++) {
    const float *x = (const float *)((const unsigned char *)s->heads_data + r * s->row_stride);
    if (prec == TOWERRT_PRECISION_BF16) {
      trt_f32_to_bf16_array(x, per_row, (uint16_t *)row);
    } else {
      scales[r] = trt_quantize_item_s8(x, s->heads, s->head_dim, (int8_t *)row, colsums + r * s->heads);
    }
    st = trt_writer_put(w, row, (size_t)stride);
  }
  free(row);
  return st ? st : trt_writer_end(w);
}

static towerrt_status write_section(trt_writer *w, uint32_t kind, const void *p, size_t n) {
  towerrt_status st = trt_writer_begin(w, kind);
  if (!st) st = trt_writer_put(w, p, n);
  return st ? st : trt_writer_end(w);
}

towerrt_status towerrt_items_quantize(const towerrt_items *s, towerrt_precision prec, const char *path) {
  if (!s || !path) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_items_quantize: items and path must not be NULL");
  if (s->dtype != TOWERRT_PRECISION_F32) return trt_fail(TOWERRT_ERR_UNSUPPORTED, "towerrt_items_quantize: the source store must be f32");
  if (s->overlay || s->is_delta)
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_items_quantize: quantize the base and the deltas' changes, not %s",
                    s->overlay ? "an overlay" : "a delta store");
  if (prec != TOWERRT_PRECISION_BF16 && prec != TOWERRT_PRECISION_INT8)
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_items_quantize: precision %d is not bf16 or int8", (int)prec);
  int s8 = prec == TOWERRT_PRECISION_INT8;
  uint64_t stride = ((uint64_t)s->heads * s->head_dim * (s8 ? 1 : 2) + 63) & ~UINT64_C(63);
  size_t rows = s->count ? (size_t)s->count : 1; /* an empty shard */
  float *scales = s8 ? malloc(rows * sizeof(float)) : NULL;
  int32_t *colsums = s8 ? malloc(rows * s->heads * sizeof(int32_t)) : NULL;
  if (s8 && (!scales || !colsums)) {
    free(scales);
    free(colsums);
    return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for %llu item scales", (unsigned long long)s->count);
  }
  trt_writer w;
  int shard = is_shard(s);
  towerrt_status st = trt_writer_open(&w, path, "TWRITEMS", (s8 ? 5 : 3) + (shard ? 1 : 0));
  if (!st) st = write_meta(&w, s, s8 ? "s8" : "bf16", stride);
  if (!st) st = write_rows(&w, s, prec, stride, scales, colsums);
  if (!st && s8) st = write_section(&w, TRT_SEC_ITEM_SCALES, scales, (size_t)s->count * sizeof(float));
  if (!st && s8) st = write_section(&w, TRT_SEC_ITEM_COLSUMS, colsums, (size_t)s->count * s->heads * sizeof(int32_t));
  const trt_section *map = &s->container.sections[TRT_SEC_ID_MAP];
  if (!st) st = write_section(&w, TRT_SEC_ID_MAP, map->data, (size_t)map->size);
  const trt_section *order = &s->container.sections[TRT_SEC_ROW_ORDER];
  if (!st && shard) st = write_section(&w, TRT_SEC_ROW_ORDER, order->data, (size_t)order->size);
  if (!st) st = trt_writer_finish(&w);
  else if (w.f) trt_writer_abort(&w);
  free(scales);
  free(colsums);
  return st;
}

towerrt_precision towerrt_items_precision(const towerrt_items *s) {
  return !s ? TOWERRT_PRECISION_F32 : s->dtype == TOWERRT_PRECISION_INT8 ? TOWERRT_PRECISION_INT8
         : s->dtype == TOWERRT_PRECISION_BF16 ? TOWERRT_PRECISION_BF16
                                                               : TOWERRT_PRECISION_F32;
}

static const char *const precision_names[] = {"f32", "bf16", "int8"};

const char *towerrt_precision_name(towerrt_precision p) { return (unsigned)p < 3 ? precision_names[p] : NULL; }

towerrt_status towerrt_precision_parse(const char *name, towerrt_precision *out) {
  if (!name || !out) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_precision_parse: NULL argument");
  for (unsigned p = 0; p < 3; p++)
    if (!strcmp(name, precision_names[p])) {
      *out = (towerrt_precision)p;
      return TOWERRT_OK;
    }
  return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "precision '%.40s': expected f32, bf16 or int8", name);
}
