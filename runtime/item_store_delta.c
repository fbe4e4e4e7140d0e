/* Delta stores, overlays and compaction (towerrt.h "catalogs beyond one
 * build"; docs/format.md "Delta stores"; docs/item-stores.md "Catalog
 * updates").
 *
 * A delta is an ordinary .twi of the changed and new items plus a
 * TOMBSTONES section and META naming its base. An overlay resolves every
 * id any of its deltas names once, newest delta first, into its own
 * open-addressing map, so a lookup is one probe sequence there and, on a
 * miss, one in the base's id map, whatever the number of deltas. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "item_store.h"
#include "item_store_write.h"
#include "model.h"
#include "status.h"

#define OV_EMPTY 0u

static int meta_i64(const trt_meta *m, const char *key, int64_t lo, int64_t hi, int64_t *out) {
  trt_meta_value v;
  if (!trt_meta_find(m, key, &v) || v.type != TRT_META_INT || v.i < lo || v.i > hi) return 0;
  *out = v.i;
  return 1;
}

towerrt_status trt_items_read_delta(towerrt_items *s, int rows) {
  trt_meta_value v;
  const trt_section *t = &s->container.sections[TRT_SEC_TOMBSTONES];
  if (!trt_meta_find(&s->meta, "delta.base_count", &v)) {
    if (t->data) return trt_fail(TOWERRT_ERR_FORMAT, "a TOMBSTONES section in a store that is not a delta (no META delta.base_count)");
    return TOWERRT_OK;
  }
  int64_t count = 0, hcrc = 0, mcrc = 0, n = 0;
  if (!meta_i64(&s->meta, "delta.base_count", 1, (int64_t)TRT_EMPTY_ROW - 1, &count) ||
      !meta_i64(&s->meta, "delta.base_heads_crc32", 0, UINT32_MAX, &hcrc) ||
      !meta_i64(&s->meta, "delta.base_id_map_crc32", 0, UINT32_MAX, &mcrc) || !meta_i64(&s->meta, "delta.tombstones", 0, INT64_MAX / 8, &n))
    return trt_fail(TOWERRT_ERR_FORMAT, "delta store: META delta.base_count, delta.base_heads_crc32, delta.base_id_map_crc32 or "
                    "delta.tombstones is missing or out of range");
  if (!t->data || t->size != (uint64_t)n * 8)
    return trt_fail(TOWERRT_ERR_FORMAT, "delta store: TOMBSTONES holds %" PRIu64 " bytes for %" PRId64 " ids", t->data ? t->size : 0, n);
  if (s->count == 0 && n == 0) return trt_fail(TOWERRT_ERR_FORMAT, "delta store with neither rows nor tombstones");
  s->is_delta = 1;
  s->base_count = (uint64_t)count;
  s->base_heads_crc = (uint32_t)hcrc;
  s->base_map_crc = (uint32_t)mcrc;
  s->tombstones = t->data;
  s->n_tombstones = (uint64_t)n;
  for (uint64_t i = 0; rows && i < s->n_tombstones; i++) {
    uint64_t id = trt_rd64(t->data + i * 8);
    if (i && id <= trt_rd64(t->data + (i - 1) * 8))
      return trt_fail(TOWERRT_ERR_FORMAT, "TOMBSTONES: id %" PRIu64 " (entry %" PRIu64 ") is not above the one before", id, i);
    if (trt_items_find(s, id) != TRT_EMPTY_ROW)
      return trt_fail(TOWERRT_ERR_FORMAT, "TOMBSTONES: id %" PRIu64 " is also a row of the delta", id);
  }
  return TOWERRT_OK;
}

/* ---- making a delta ---------------------------------------------------------- */
static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

/* row -> id of a plain store, from its id map. */
static towerrt_status row_ids(const towerrt_items *s, uint64_t **out) {
  *out = malloc((size_t)(s->count ? s->count : 1) * sizeof **out);
  if (!*out) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for %" PRIu64 " ids", s->count);
  for (uint64_t i = 0; i < s->n_slots; i++) {
    uint32_t r = trt_rd32(s->slots + i * 16 + 8);
    if (r != TRT_EMPTY_ROW && r < s->count) (*out)[r] = trt_rd64(s->slots + i * 16);
  }
  return TOWERRT_OK;
}

static towerrt_status check_same_shape(const towerrt_items *a, const towerrt_items *b, const char *what) {
  if (a->dtype != b->dtype || a->heads != b->heads || a->head_dim != b->head_dim || a->row_stride != b->row_stride ||
      a->fingerprint != b->fingerprint)
    return trt_fail(TOWERRT_ERR_MISMATCH, "%s: another model or precision than the base (%u x %u heads, dtype %u, fingerprint 0x%08x; "
                    "the base: %u x %u, dtype %u, 0x%08x)", what, b->heads, b->head_dim, b->dtype, b->fingerprint, a->heads,
                    a->head_dim, a->dtype, a->fingerprint);
  return TOWERRT_OK;
}

static towerrt_status check_plain(const towerrt_items *s, const char *what) {
  if (s->overlay) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "%s is an overlay: compact it first (towerrt_items_compact)", what);
  if (s->is_delta) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "%s is a delta store", what);
  /* its rows are relative to its own mean: a delta could not keep it */
  if (s->centre || s->row_centres)
    return trt_fail(TOWERRT_ERR_UNSUPPORTED, "%s is a centred store: make deltas of the f32 stores, compact, then quantize", what);
  return TOWERRT_OK;
}

static towerrt_status delta_meta(const towerrt_items *base, uint64_t n_removed, trt_bytes *b) {
  trt_meta_put_int(b, "delta.base_count", (int64_t)base->count);
  trt_meta_put_int(b, "delta.base_heads_crc32", base->container.sections[TRT_SEC_ITEM_HEADS].crc32);
  trt_meta_put_int(b, "delta.base_id_map_crc32", base->container.sections[TRT_SEC_ID_MAP].crc32);
  trt_meta_put_int(b, "delta.tombstones", (int64_t)n_removed);
  return b->failed ? trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory") : TOWERRT_OK;
}

static towerrt_status write_delta(const towerrt_items *base, const towerrt_items *changes, const uint64_t *removed, size_t n_removed,
                                  const char *path) {
  uint64_t *ids = NULL;
  trt_bytes meta = {0};
  trt_store_out *o = NULL;
  towerrt_status st = changes ? row_ids(changes, &ids) : TOWERRT_OK;
  if (!st) st = delta_meta(base, n_removed, &meta);
  trt_store_extra x = {&meta, 4, TRT_SEC_TOMBSTONES};
  if (!st) st = trt_store_out_open(path, base, changes ? changes->count : 0, "towerrt_items_make_delta", &x, &o);
  for (uint64_t r = 0; !st && changes && r < changes->count; r++) st = trt_store_out_row(o, changes, r, ids[r], NULL);
  unsigned char *t = malloc(n_removed * 8 + 1);
  if (!st && !t) st = trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  for (size_t i = 0; !st && i < n_removed; i++)
    for (int k = 0; k < 8; k++) t[i * 8 + k] = (unsigned char)(removed[i] >> (8 * k));
  if (o) {
    if (!st) st = trt_store_out_finish(o, t, n_removed * 8);
    else trt_store_out_abort(o);
  }
  free(t);
  free(meta.p);
  free(ids);
  return st;
}

TOWERRT_API towerrt_status towerrt_items_make_delta(const towerrt_items *base, const towerrt_items *changes, const uint64_t *removed,
                                                    size_t n_removed, const char *path) {
  if (!base || !path || (n_removed && !removed))
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_items_make_delta: base, path (and removed) must not be NULL");
  towerrt_status st = check_plain(base, "the base");
  if (!st && changes) st = check_plain(changes, "the changes store");
  if (!st && changes) st = check_same_shape(base, changes, "the changes store");
  if (st) return st;
  if (!n_removed && (!changes || !changes->count))
    return trt_fail(TOWERRT_ERR_EMPTY_REQUEST, "towerrt_items_make_delta: neither changed items nor removed ids");
  uint64_t *sorted = malloc((n_removed ? n_removed : 1) * sizeof *sorted);
  if (!sorted) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for %zu removed ids", n_removed);
  memcpy(sorted, removed ? removed : sorted, n_removed * sizeof *sorted);
  qsort(sorted, n_removed, sizeof *sorted, cmp_u64);
  size_t n = 0;
  for (size_t i = 0; i < n_removed; i++)
    if (!n || sorted[i] != sorted[n - 1]) sorted[n++] = sorted[i];
  for (size_t i = 0; i < n && !st; i++)
    if (changes && trt_items_find(changes, sorted[i]) != TRT_EMPTY_ROW)
      st = trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "item id %" PRIu64 " is both changed and removed", sorted[i]);
  if (!st) st = write_delta(base, changes, sorted, n, path);
  free(sorted);
  return st;
}

/* ---- overlays ------------------------------------------------------------------- */
static uint64_t ov_slot(const trt_overlay *ov, uint64_t id, int *found) {
  uint64_t mask = ov->n_slots - 1, i = trt_splitmix64(id) & mask;
  while (ov->map[i].layer != OV_EMPTY && ov->map[i].id != id) i = (i + 1) & mask;
  *found = ov->map[i].layer != OV_EMPTY;
  return i;
}

/* The newest word on id: deltas are applied oldest first, later ones overwrite. */
static void ov_put(trt_overlay *ov, uint64_t id, uint32_t layer, uint32_t row) {
  int found;
  uint64_t i = ov_slot(ov, id, &found);
  uint64_t dist = (i - (trt_splitmix64(id) & (ov->n_slots - 1))) & (ov->n_slots - 1);
  if (dist > ov->max_probe) ov->max_probe = dist;
  ov->map[i] = (trt_overlay_entry){id, row, layer};
}

void trt_overlay_free(trt_overlay *ov) {
  if (!ov) return;
  for (uint32_t l = 0; l < ov->n_layers; l++) trt_items_release(ov->layer[l]);
  free(ov->layer);
  free(ov->map);
  free(ov);
}

uint32_t trt_items_locate(const towerrt_items *s, uint64_t id, const towerrt_items **layer) {
  const trt_overlay *ov = s->overlay;
  if (!ov) {
    *layer = s;
    return trt_items_find(s, id);
  }
  uint64_t mask = ov->n_slots - 1, i = trt_splitmix64(id) & mask;
  for (uint64_t p = 0; p <= ov->max_probe; p++, i = (i + 1) & mask) {
    const trt_overlay_entry *e = &ov->map[i];
    if (e->layer == OV_EMPTY) break;
    if (e->id == id) {
      *layer = ov->layer[e->layer];
      return e->row;
    }
  }
  *layer = ov->layer[0];
  return trt_items_find(ov->layer[0], id);
}

static towerrt_status check_delta(const towerrt_items *base, const towerrt_items *d, size_t i) {
  char what[48];
  snprintf(what, sizeof what, "delta %zu", i);
  if (!d) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_items_overlay: delta %zu is NULL", i);
  if (!d->is_delta || d->overlay) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_items_overlay: input %zu is not a delta store", i);
  towerrt_status st = check_same_shape(base, d, what);
  if (st) return st;
  if (d->base_count != base->count || d->base_heads_crc != base->container.sections[TRT_SEC_ITEM_HEADS].crc32 ||
      d->base_map_crc != base->container.sections[TRT_SEC_ID_MAP].crc32)
    return trt_fail(TOWERRT_ERR_MISMATCH, "delta %zu was made for another base (%" PRIu64 " rows, heads CRC 0x%08x, id map CRC 0x%08x; "
                    "this base: %" PRIu64 " rows, 0x%08x, 0x%08x)", i, d->base_count, d->base_heads_crc, d->base_map_crc, base->count,
                    base->container.sections[TRT_SEC_ITEM_HEADS].crc32, base->container.sections[TRT_SEC_ID_MAP].crc32);
  return TOWERRT_OK;
}

static towerrt_status build_overlay(trt_overlay *ov) {
  uint64_t entries = 0;
  for (uint32_t l = 1; l < ov->n_layers; l++) entries += ov->layer[l]->count + ov->layer[l]->n_tombstones;
  ov->n_slots = 16;
  while (ov->n_slots < 2 * entries) ov->n_slots *= 2;
  ov->map = calloc((size_t)ov->n_slots, sizeof *ov->map);
  if (!ov->map) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for an overlay map of %" PRIu64 " ids", entries);
  for (uint32_t l = 1; l < ov->n_layers; l++) {
    const towerrt_items *d = ov->layer[l];
    for (uint64_t i = 0; i < d->n_tombstones; i++) ov_put(ov, trt_rd64(d->tombstones + i * 8), l, TRT_EMPTY_ROW);
    for (uint64_t i = 0; i < d->n_slots; i++) {
      uint32_t r = trt_rd32(d->slots + i * 16 + 8);
      if (r != TRT_EMPTY_ROW && r < d->count) ov_put(ov, trt_rd64(d->slots + i * 16), l, r);
    }
  }
  return TOWERRT_OK;
}

/* Items of the overlay's catalog: the base's, less those the map removes,
 * plus those it adds. */
static uint64_t live_count(const trt_overlay *ov) {
  uint64_t n = ov->layer[0]->count;
  for (uint64_t i = 0; i < ov->n_slots; i++) {
    const trt_overlay_entry *e = &ov->map[i];
    if (e->layer == OV_EMPTY) continue;
    int in_base = trt_items_find(ov->layer[0], e->id) != TRT_EMPTY_ROW, live = e->row != TRT_EMPTY_ROW;
    n += (uint64_t)(live && !in_base) - (uint64_t)(!live && in_base);
  }
  return n;
}

TOWERRT_API towerrt_status towerrt_items_overlay(const towerrt_items *base, const towerrt_items *const *deltas, size_t n_deltas,
                                                 towerrt_items **out) {
  if (!out) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_items_overlay: out is NULL");
  *out = NULL;
  if (!base || (n_deltas && !deltas)) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_items_overlay: base (and deltas) must not be NULL");
  if (n_deltas > TOWERRT_MAX_DELTAS)
    return trt_fail(TOWERRT_ERR_LIMIT, "%zu deltas above the limit %d: compact (towerrt_items_compact)", n_deltas, TOWERRT_MAX_DELTAS);
  towerrt_status st = check_plain(base, "the base");
  for (size_t i = 0; i < n_deltas && !st; i++) st = check_delta(base, deltas[i], i);
  if (st) return st;
  towerrt_items *s = calloc(1, sizeof *s);
  trt_overlay *ov = calloc(1, sizeof *ov);
  const towerrt_items **layer = calloc(n_deltas + 1, sizeof *layer);
  if (!s || !ov || !layer) {
    free(s);
    free(ov);
    free(layer);
    return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  }
  atomic_init(&s->refs, 1);
  s->overlay = ov;
  ov->layer = layer;
  ov->n_layers = (uint32_t)n_deltas + 1;
  layer[0] = base;
  for (size_t i = 0; i < n_deltas; i++) layer[i + 1] = deltas[i];
  for (uint32_t l = 0; l < ov->n_layers; l++) trt_items_retain(layer[l]);
  if ((st = build_overlay(ov))) {
    towerrt_items_free(s);
    return st;
  }
  /* what a reader of a plain store's fields sees: the base's shape */
  s->count = live_count(ov);
  s->heads = base->heads;
  s->head_dim = base->head_dim;
  s->fingerprint = base->fingerprint;
  s->dtype = base->dtype;
  s->elem_size = base->elem_size;
  s->row_stride = base->row_stride;
  s->heads_data = base->heads_data;
  s->scales = base->scales;
  s->colsums = base->colsums;
  s->slots = base->slots;
  s->n_slots = base->n_slots;
  *out = s;
  return TOWERRT_OK;
}

/* ---- compaction ----------------------------------------------------------------- */
typedef struct compact_ctx {
  const towerrt_items *items;
  const trt_overlay *ov;
  unsigned char *done; /* per overlay slot: placed already */
  uint64_t *base_ids;
  trt_store_out *o;     /* NULL: count only */
  uint64_t rows;
} compact_ctx;

static towerrt_status emit(compact_ctx *c, const towerrt_items *src, uint32_t row, uint64_t id) {
  c->rows++;
  return c->o ? trt_store_out_row(c->o, src, row, id, NULL) : TOWERRT_OK;
}

/* One pass over the catalog in compacted order (counting, then writing). */
static towerrt_status compact_pass(compact_ctx *c) {
  const trt_overlay *ov = c->ov;
  const towerrt_items *base = ov ? ov->layer[0] : c->items, *src;
  towerrt_status st = TOWERRT_OK;
  if (ov) memset(c->done, 0, (size_t)ov->n_slots);
  c->rows = 0;
  for (uint64_t r = 0; r < base->count && !st; r++) {
    uint64_t id = c->base_ids[r];
    uint32_t row = trt_items_locate(c->items, id, &src);
    if (row != TRT_EMPTY_ROW) st = emit(c, src, row, id);
  }
  for (uint32_t l = 1; ov && l < ov->n_layers && !st; l++) {
    const towerrt_items *d = ov->layer[l];
    uint64_t *ids;
    if ((st = row_ids(d, &ids))) break;
    for (uint64_t r = 0; r < d->count && !st; r++) {
      int found;
      uint64_t slot = ov_slot(ov, ids[r], &found);
      if (c->done[slot] || trt_items_find(base, ids[r]) != TRT_EMPTY_ROW) continue;
      c->done[slot] = 1;
      const trt_overlay_entry *e = &ov->map[slot];
      if (e->row != TRT_EMPTY_ROW) st = emit(c, ov->layer[e->layer], e->row, ids[r]);
    }
    free(ids);
  }
  return st;
}

TOWERRT_API towerrt_status towerrt_items_compact(const towerrt_items *items, const char *path) {
  if (!items || !path) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_items_compact: items and path must not be NULL");
  if (items->is_delta) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_items_compact: a delta store alone; overlay it on its base");
  compact_ctx c = {.items = items, .ov = items->overlay};
  const towerrt_items *base = c.ov ? c.ov->layer[0] : items;
  towerrt_status st = row_ids(base, &c.base_ids);
  if (!st && c.ov && !(c.done = malloc((size_t)c.ov->n_slots))) st = trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  if (!st) st = compact_pass(&c);
  if (!st && c.rows == 0) st = trt_fail(TOWERRT_ERR_EMPTY_REQUEST, "towerrt_items_compact: the catalog is empty (every item removed)");
  if (!st) st = trt_store_out_open(path, base, c.rows, NULL, NULL, &c.o);
  if (!st) st = compact_pass(&c);
  if (c.o) {
    if (!st) st = trt_store_out_finish(c.o, NULL, 0);
    else trt_store_out_abort(c.o);
  }
  free(c.done);
  free(c.base_ids);
  return st;
}
