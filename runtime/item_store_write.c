/* trt_store_out (item_store_write.h): stores written from other stores' rows. */
#include "item_store_write.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "item_id_map.h"
#include "status.h"

struct trt_store_out {
  trt_writer w;
  uint64_t rows, done, stride;
  uint32_t heads, dtype, extra_kind;
  float *scales;     /* s8: per row */
  int32_t *colsums;  /* s8: heads per row */
  unsigned char *map; /* ID_MAP in its file layout */
  uint64_t n_slots;
};

uint64_t trt_store_stride(uint32_t heads, uint32_t head_dim, uint32_t dtype) {
  static const uint32_t size[3] = {4, 2, 1};
  return ((uint64_t)heads * head_dim * size[dtype < 3 ? dtype : 0] + 63) & ~UINT64_C(63);
}


/* A centred row means nothing without its store's centre, and the stores
 * written here (merges, deltas, compaction) mix rows of several stores. */
static const char k_centred[] = "a centred store's rows are relative to its centres: merge, delta and compact the f32 stores, "
                                "then quantize the result (towerrt quantize centres it)";

static void store_out_free(trt_store_out *o) {
  free(o->scales);
  free(o->colsums);
  free(o->map);
  free(o);
}

void trt_store_out_abort(trt_store_out *o) {
  if (!o) return;
  if (o->w.f) trt_writer_abort(&o->w);
  store_out_free(o);
}

static towerrt_status put_section(trt_writer *w, uint32_t kind, const void *p, size_t n) {
  towerrt_status st = trt_writer_begin(w, kind);
  if (!st) st = trt_writer_put(w, p, n);
  return st ? st : trt_writer_end(w);
}

void trt_store_meta_common(trt_bytes *b, uint64_t count, uint32_t heads, uint32_t head_dim, uint32_t dtype, uint64_t stride,
                           uint32_t fingerprint, const char *source) {
  static const char *const name[3] = {"f32", "bf16", "s8"};
  const char *d = name[dtype < 3 ? dtype : 0];
  trt_meta_put_int(b, "items.count", (int64_t)count);
  trt_meta_put_int(b, "items.heads", heads);
  trt_meta_put_int(b, "items.head_dim", head_dim);
  trt_meta_put_str(b, "items.dtype", d, strlen(d));
  trt_meta_put_int(b, "items.row_stride", (int64_t)stride);
  trt_meta_put_int(b, "model.fingerprint", fingerprint);
  trt_meta_put_str(b, "general.source", source, strlen(source));
}

static towerrt_status write_meta(trt_store_out *o, const towerrt_items *like, const char *source, const trt_store_extra *x) {
  trt_bytes b = {0};
  trt_bytes_u32(&b, 7 + (x ? x->meta_keys : 0));
  trt_store_meta_common(&b, o->rows, like->heads, like->head_dim, o->dtype, o->stride, like->fingerprint, source);
  if (x && x->meta) trt_bytes_put(&b, x->meta->p, x->meta->len);
  towerrt_status st = b.failed || (x && x->meta && x->meta->failed) ? trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory") : TOWERRT_OK;
  if (!st) st = put_section(&o->w, TRT_SEC_META, b.p, b.len);
  free(b.p);
  return st;
}

towerrt_status trt_store_out_open(const char *path, const towerrt_items *like, uint64_t rows, const char *source,
                                  const trt_store_extra *extra, trt_store_out **out) {
  *out = NULL;
  if (rows >= TRT_EMPTY_ROW) return trt_fail(TOWERRT_ERR_LIMIT, "%" PRIu64 " items exceed the store limit %u", rows, TRT_EMPTY_ROW - 1);
  if (like->centre || like->row_centres) return trt_fail(TOWERRT_ERR_UNSUPPORTED, "%s", k_centred);
  trt_store_out *o = calloc(1, sizeof *o);
  if (!o) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  o->rows = rows;
  o->dtype = like->dtype;
  o->heads = like->heads;
  o->stride = like->row_stride;
  o->extra_kind = extra ? extra->kind : 0;
  o->n_slots = trt_id_map_slots(rows);
  int s8 = o->dtype == TOWERRT_PRECISION_INT8;
  o->map = trt_id_map_alloc(o->n_slots);
  if (s8) {
    o->scales = malloc((size_t)(rows ? rows : 1) * sizeof(float));
    o->colsums = malloc((size_t)(rows ? rows : 1) * o->heads * sizeof(int32_t));
  }
  if (!o->map || (s8 && (!o->scales || !o->colsums))) {
    store_out_free(o);
    return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for the id map of %" PRIu64 " items", rows);
  }
  if (!source) source = o->dtype == TOWERRT_PRECISION_F32 ? "towerrt_items_build" : "towerrt_items_quantize";
  uint32_t n_sec = 3 + (s8 ? 2 : 0) + (o->extra_kind ? 1 : 0);
  towerrt_status st = trt_writer_open(&o->w, path, "TWRITEMS", n_sec);
  if (!st) st = write_meta(o, like, source, extra);
  if (!st) st = trt_writer_begin(&o->w, TRT_SEC_ITEM_HEADS);
  if (st) {
    trt_store_out_abort(o);
    return st;
  }
  *out = o;
  return TOWERRT_OK;
}

static towerrt_status map_insert(trt_store_out *o, uint64_t id, uint32_t row, uint32_t *dup_row) {
  uint32_t r = trt_id_map_insert(o->map, id, row);
  if (r == TRT_ID_MAP_TOO_FAR) return trt_id_map_too_far(id);
  if (r == TRT_EMPTY_ROW) return TOWERRT_OK;
  if (dup_row) *dup_row = r;
  return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "item id %" PRIu64 " appears twice (rows %u and %u)", id, r, row);
}

towerrt_status trt_store_out_row(trt_store_out *o, const towerrt_items *src, uint64_t row, uint64_t id, uint32_t *dup_row) {
  if (o->done >= o->rows) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "more rows than the %" PRIu64 " declared", o->rows);
  if (src->centre || src->row_centres) return trt_fail(TOWERRT_ERR_UNSUPPORTED, "%s", k_centred);
  if (src->dtype != o->dtype || src->row_stride != o->stride || src->heads != o->heads || row >= src->count)
    return trt_fail(TOWERRT_ERR_MISMATCH, "row %" PRIu64 " of a store of another dtype or shape", row);
  towerrt_status st = map_insert(o, id, (uint32_t)o->done, dup_row);
  if (st) return st;
  if ((st = trt_writer_put(&o->w, (const unsigned char *)src->heads_data + row * src->row_stride, (size_t)o->stride))) return st;
  if (o->dtype == TOWERRT_PRECISION_INT8) {
    o->scales[o->done] = src->scales[row];
    memcpy(o->colsums + o->done * o->heads, src->colsums + row * src->heads, o->heads * sizeof(int32_t));
  }
  o->done++;
  return TOWERRT_OK;
}

towerrt_status trt_store_out_finish(trt_store_out *o, const void *extra_section, size_t extra_size) {
  towerrt_status st = o->done == o->rows ? TOWERRT_OK
                                         : trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "%" PRIu64 " of the %" PRIu64 " declared rows written",
                                                    o->done, o->rows);
  if (!st) st = trt_writer_end(&o->w);
  if (!st && o->dtype == TOWERRT_PRECISION_INT8) {
    st = put_section(&o->w, TRT_SEC_ITEM_SCALES, o->scales, (size_t)o->rows * sizeof(float));
    if (!st) st = put_section(&o->w, TRT_SEC_ITEM_COLSUMS, o->colsums, (size_t)o->rows * o->heads * sizeof(int32_t));
  }
  if (!st) st = put_section(&o->w, TRT_SEC_ID_MAP, o->map, trt_id_map_bytes(o->n_slots));
  if (!st && o->extra_kind) st = put_section(&o->w, o->extra_kind, extra_section, extra_size);
  if (!st) st = trt_writer_finish(&o->w);
  if (st) {
    trt_store_out_abort(o);
    return st;
  }
  store_out_free(o);
  return TOWERRT_OK;
}
