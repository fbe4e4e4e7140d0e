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
#include "item_store_write.h"
#include "quantize_heads.h"
#include "status.h"

static const char *const k_shard_keys[3] = {"build.shard", "build.shards", "build.input_rows"};

static int is_shard(const towerrt_items *s) {
  trt_meta_value v;
  return trt_meta_find(&s->meta, "build.shards", &v) && s->container.sections[TRT_SEC_ROW_ORDER].data;
}

static towerrt_status write_meta(trt_writer *w, const towerrt_items *s, towerrt_precision prec, uint64_t stride) {
  trt_bytes b = {0};
  int shard = is_shard(s);
  trt_bytes_u32(&b, shard ? 10 : 7);
  trt_store_meta_common(&b, s->count, s->heads, s->head_dim, (uint32_t)prec, stride, s->fingerprint, "towerrt_items_quantize");
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

/* The catalog-mean head: the mean over every row and head of each of the
 * head_dim values, summed in double (the order of the rows then matters
 * only below float resolution) and rounded once to f32. */
static void catalog_mean(const towerrt_items *s, float *m) {
  for (uint32_t d = 0; d < s->head_dim; d++) {
    double sum = 0.0;
    for (uint64_t r = 0; r < s->count; r++) {
      const float *x = (const float *)((const unsigned char *)s->heads_data + r * s->row_stride);
      for (uint32_t h = 0; h < s->heads; h++) sum += x[(size_t)h * s->head_dim + d];
    }
    m[d] = s->count ? (float)(sum / ((double)s->count * s->heads)) : 0.0f;
  }
}

/* Row r's mean head (the mean of its H heads), summed in double. */
static void row_mean(const float *x, uint32_t heads, uint32_t dim, float *m) {
  for (uint32_t d = 0; d < dim; d++) {
    double sum = 0.0;
    for (uint32_t h = 0; h < heads; h++) sum += x[(size_t)h * dim + d];
    m[d] = (float)(sum / heads);
  }
}

/* ITEM_HEADS, and for s8 the scales and column sums (kept in memory: 4 + 4H
 * bytes per item, small next to the heads). centre: subtracted from every
 * head (in f32) before it is rounded, or NULL; row_centres (count x dim):
 * each row's mean head, computed here and subtracted from its heads. */
static towerrt_status write_rows(trt_writer *w, const towerrt_items *s, towerrt_precision prec, uint64_t stride, const float *centre,
                                 float *row_centres, float *scales, int32_t *colsums) {
  size_t per_row = (size_t)s->heads * s->head_dim;
  unsigned char *row = calloc(1, (size_t)stride);
  int centring = centre || row_centres;
  float *centred = centring ? malloc(per_row * sizeof(float)) : NULL;
  if (!row || (centring && !centred)) {
    free(row);
    free(centred);
    return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  }
  towerrt_status st = trt_writer_begin(w, TRT_SEC_ITEM_HEADS);
  for (uint64_t r = 0; r < s->count && !st; r++) {
    const float *x = (const float *)((const unsigned char *)s->heads_data + r * s->row_stride);
    if (row_centres) {
      centre = row_centres + r * s->head_dim;
      row_mean(x, s->heads, s->head_dim, row_centres + r * s->head_dim);
    }
    if (centring) {
      for (size_t i = 0; i < per_row; i++) centred[i] = x[i] - centre[i % s->head_dim];
      x = centred;
    }
    if (prec == TOWERRT_PRECISION_F32) {
      memcpy(row, x, per_row * sizeof(float));
    } else if (prec == TOWERRT_PRECISION_BF16) {
      trt_f32_to_bf16_array(x, per_row, (uint16_t *)row);
    } else {
      scales[r] = trt_quantize_item_s8(x, s->heads, s->head_dim, (int8_t *)row, colsums + r * s->heads);
    }
    st = trt_writer_put(w, row, (size_t)stride);
  }
  free(row);
  free(centred);
  return st ? st : trt_writer_end(w);
}

static towerrt_status write_section(trt_writer *w, uint32_t kind, const void *p, size_t n) {
  towerrt_status st = trt_writer_begin(w, kind);
  if (!st) st = trt_writer_put(w, p, n);
  return st ? st : trt_writer_end(w);
}

static towerrt_status check_source(const towerrt_items *s, towerrt_precision prec, towerrt_centring centring, const char *path) {
  if (!s || !path) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_items_quantize: items and path must not be NULL");
  if (s->dtype != TOWERRT_PRECISION_F32 || s->centre || s->row_centres)
    return trt_fail(TOWERRT_ERR_UNSUPPORTED, "towerrt_items_quantize: the source store must be f32%s", s->centre || s->row_centres ? " and not centred" : "");
  if (s->overlay || s->is_delta)
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_items_quantize: quantize the base and the deltas' changes, not %s",
                    s->overlay ? "an overlay" : "a delta store");
  if (centring != TOWERRT_CENTRING_NONE && centring != TOWERRT_CENTRING_MEAN && centring != TOWERRT_CENTRING_ROW_MEAN)
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_items_quantize: centring %d is not a towerrt_centring", (int)centring);
  if (prec != TOWERRT_PRECISION_BF16 && prec != TOWERRT_PRECISION_INT8 && !(prec == TOWERRT_PRECISION_F32 && centring))
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_items_quantize: precision %d is not bf16 or int8 (or f32 with centring)", (int)prec);
  /* a shard's mean is its own: shards centred apart would not merge into one store */
  if (centring && is_shard(s))
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_items_quantize: a shard cannot be centred (each shard's mean differs, so the "
                    "shards would not merge): merge the f32 shards, then quantize the merged store");
  return TOWERRT_OK;
}

towerrt_status towerrt_items_quantize(const towerrt_items *s, towerrt_precision prec, const char *path) {
  return towerrt_items_quantize_centred(s, prec, TOWERRT_CENTRING_NONE, path);
}

towerrt_status towerrt_items_quantize_centred(const towerrt_items *s, towerrt_precision prec, towerrt_centring centring, const char *path) {
  towerrt_status st0 = check_source(s, prec, centring, path);
  if (st0) return st0;
  int s8 = prec == TOWERRT_PRECISION_INT8;
  /* MEAN: head_dim floats; ROW_MEAN: count x head_dim (filled row by row) */
  size_t n_centre = centring == TOWERRT_CENTRING_MEAN ? 1 : centring ? (s->count ? (size_t)s->count : 1) : 0;
  float *centre = n_centre ? malloc(n_centre * s->head_dim * sizeof(float)) : NULL;
  if (n_centre && !centre) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for the item centres");
  if (centring == TOWERRT_CENTRING_MEAN) catalog_mean(s, centre);
  int by_row = centring == TOWERRT_CENTRING_ROW_MEAN;
  uint64_t stride = trt_store_stride(s->heads, s->head_dim, (uint32_t)prec);
  size_t rows = s->count ? (size_t)s->count : 1; /* an empty shard */
  float *scales = s8 ? malloc(rows * sizeof(float)) : NULL;
  int32_t *colsums = s8 ? malloc(rows * s->heads * sizeof(int32_t)) : NULL;
  if (s8 && (!scales || !colsums)) {
    free(scales);
    free(colsums);
    free(centre);
    return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for %llu item scales", (unsigned long long)s->count);
  }
  trt_writer w;
  int shard = is_shard(s);
  towerrt_status st = trt_writer_open(&w, path, "TWRITEMS", (s8 ? 5 : 3) + (shard ? 1 : 0) + (centring ? 1 : 0));
  if (!st) st = write_meta(&w, s, prec, stride);
  if (!st) st = write_rows(&w, s, prec, stride, by_row ? NULL : centre, by_row ? centre : NULL, scales, colsums);
  if (!st && s8) st = write_section(&w, TRT_SEC_ITEM_SCALES, scales, (size_t)s->count * sizeof(float));
  if (!st && s8) st = write_section(&w, TRT_SEC_ITEM_COLSUMS, colsums, (size_t)s->count * s->heads * sizeof(int32_t));
  const trt_section *map = &s->container.sections[TRT_SEC_ID_MAP];
  if (!st) st = write_section(&w, TRT_SEC_ID_MAP, map->data, (size_t)map->size);
  const trt_section *order = &s->container.sections[TRT_SEC_ROW_ORDER];
  if (!st && shard) st = write_section(&w, TRT_SEC_ROW_ORDER, order->data, (size_t)order->size);
  if (!st && centring)
    st = write_section(&w, by_row ? TRT_SEC_ROW_CENTRES : TRT_SEC_ITEM_CENTRE, centre,
                       (by_row ? (size_t)s->count : 1) * s->head_dim * sizeof(float));
  if (!st) st = trt_writer_finish(&w);
  else if (w.f) trt_writer_abort(&w);
  free(scales);
  free(colsums);
  free(centre);
  return st;
}

towerrt_centring towerrt_items_centring(const towerrt_items *s) {
  return !s ? TOWERRT_CENTRING_NONE : s->centre ? TOWERRT_CENTRING_MEAN : s->row_centres ? TOWERRT_CENTRING_ROW_MEAN : TOWERRT_CENTRING_NONE;
}

const float *towerrt_items_centre(const towerrt_items *s, size_t *dim) {
  if (dim) *dim = s ? s->head_dim : 0;
  return s ? s->centre : NULL;
}

towerrt_centring towerrt_items_default_centring(const towerrt_items *s, towerrt_precision prec, const char **why_not) {
  const char *why = !s ? " (no store)"
                    : prec != TOWERRT_PRECISION_INT8 ? " (bf16 rounds each value relative to itself: centring gains nothing)"
                    : is_shard(s) ? " (a shard: quantize the merged store to centre it)"
                    : s->heads == 1 ? " (one head per item: a two-tower family store)" : NULL;
  if (why_not) *why_not = why;
  return why ? TOWERRT_CENTRING_NONE : TOWERRT_CENTRING_ROW_MEAN;
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
