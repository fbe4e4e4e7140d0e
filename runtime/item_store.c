/* towerrt_items_*: load (validate, mmap in place) and look up a .twi. */
#include "item_store.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "huge_pages.h"
#include "options.h"
#include "pool.h"
#include "status.h"

uint64_t trt_splitmix64(uint64_t x) {
  uint64_t z = x + UINT64_C(0x9E3779B97F4A7C15);
  z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
  return z ^ (z >> 31);
}

uint32_t trt_items_find(const towerrt_items *s, uint64_t id) {
  uint64_t mask = s->n_slots - 1;
  uint64_t i = trt_splitmix64(id) & mask;
  /* Bounded by the table size and by the probe limit the loader enforces:
   * a lookup costs at most TRT_ID_MAP_MAX_PROBE + 1 slots whatever the bytes. */
  for (uint64_t probe = 0; probe < s->n_slots && probe <= TRT_ID_MAP_MAX_PROBE; probe++, i = (i + 1) & mask) {
    const unsigned char *slot = s->slots + i * 16;
    uint32_t row = trt_rd32(slot + 8);
    if (row == TRT_EMPTY_ROW) return TRT_EMPTY_ROW;
    /* row < count at every lookup, not only at load: a trusted
     * (structure-only) load has not walked the map, and with
     * TOWERRT_LOAD_MAP the map is read from the file at scoring time, where
     * a file rewritten in place may hold any row (docs/serving.md). A row
     * out of range is an unknown item, never a read past the heads. */
    if (trt_rd64(slot) == id) return row < s->count ? row : TRT_EMPTY_ROW;
  }
  return TRT_EMPTY_ROW;
}

static towerrt_status meta_int(const trt_meta *m, const char *key, int64_t lo, int64_t hi, int64_t *out) {
  trt_meta_value v;
  if (!trt_meta_find(m, key, &v) || v.type != TRT_META_INT)
    return trt_fail(TOWERRT_ERR_FORMAT, "META lacks the int '%s'", key);
  if (v.i < lo || v.i > hi)
    return trt_fail(TOWERRT_ERR_FORMAT, "META '%s' = %lld is outside [%lld, %lld]", key, (long long)v.i, (long long)lo, (long long)hi);
  *out = v.i;
  return TOWERRT_OK;
}

static towerrt_status read_meta(towerrt_items *s) {
  int64_t count = 0, heads = 0, dim = 0, stride = 0, fp = 0; /* GCC -O3 cannot see meta_int sets them */
  towerrt_status st;
  if ((st = meta_int(&s->meta, "items.count", 0, (int64_t)TRT_EMPTY_ROW - 1, &count))) return st;
  trt_meta_value any;
  /* 0 rows: only a shard (an empty one) or a delta (tombstones only) */
  if (count == 0 && !trt_meta_find(&s->meta, "build.shards", &any) && !trt_meta_find(&s->meta, "delta.base_count", &any))
    return trt_fail(TOWERRT_ERR_FORMAT, "META 'items.count' = 0 is outside [1, %lld] (only a shard or a delta store may be empty)",
                    (long long)TRT_EMPTY_ROW - 1);
  if ((st = meta_int(&s->meta, "items.heads", 1, 65536, &heads))) return st;
  if ((st = meta_int(&s->meta, "items.head_dim", 1, 65536, &dim))) return st;
  if ((st = meta_int(&s->meta, "items.row_stride", 64, INT64_C(1) << 32, &stride))) return st;
  if ((st = meta_int(&s->meta, "model.fingerprint", 0, UINT32_MAX, &fp))) return st;
  trt_meta_value v;
  if (!trt_meta_find(&s->meta, "items.dtype", &v) || v.type != TRT_META_STRING)
    return trt_fail(TOWERRT_ERR_FORMAT, "META lacks the string 'items.dtype'");
  static const char *const names[3] = {"f32", "bf16", "s8"};
  static const uint32_t sizes[3] = {4, 2, 1};
  s->dtype = 3;
  for (uint32_t i = 0; i < 3; i++)
    if (v.len == strlen(names[i]) && memcmp(v.str, names[i], v.len) == 0) s->dtype = i;
  if (s->dtype == 3) return trt_fail(TOWERRT_ERR_UNSUPPORTED, "items.dtype '%.*s' is not supported (f32, bf16, s8)", (int)v.len, v.str);
  s->elem_size = sizes[s->dtype];
  if (heads * dim > 65536 || stride % 64 != 0 || stride < heads * dim * (int64_t)s->elem_size)
    return trt_fail(TOWERRT_ERR_FORMAT, "items.row_stride %lld must be a multiple of 64 holding %lld x %lld floats",
                    (long long)stride, (long long)heads, (long long)dim);
  s->count = (uint64_t)count;
  s->heads = (uint32_t)heads;
  s->head_dim = (uint32_t)dim;
  s->row_stride = (uint64_t)stride;
  s->fingerprint = (uint32_t)fp;
  return TOWERRT_OK;
}

static towerrt_status check_heads(towerrt_items *s, const trt_section *h, int rows) {
  if (h->size / s->row_stride < s->count || h->size != s->count * s->row_stride)
    return trt_fail(TOWERRT_ERR_FORMAT, "ITEM_HEADS holds %llu bytes, %llu rows x %llu bytes expected", (unsigned long long)h->size,
                    (unsigned long long)s->count, (unsigned long long)s->row_stride);
  s->heads_data = h->data;
  if (!rows) return TOWERRT_OK;
  size_t per_row = (size_t)s->heads * s->head_dim;
  for (uint64_t r = 0; r < s->count && s->dtype != TOWERRT_PRECISION_INT8; r++) {
    const unsigned char *row = h->data + r * s->row_stride;
    for (size_t i = 0; i < per_row; i++) {
      /* f32, or bf16 = the upper half of an f32: non-finite iff the exponent is all ones */
      uint32_t bits = s->dtype == TOWERRT_PRECISION_F32 ? trt_rd32(row + 4 * i) : (uint32_t)trt_rd16(row + 2 * i) << 16;
      if ((bits & 0x7F800000u) == 0x7F800000u)
        return trt_fail(TOWERRT_ERR_NONFINITE, "item row %llu, element %zu is %s", (unsigned long long)r, i, (bits & 0x7FFFFFu) ? "NaN" : "Inf");
    }
  }
  return TOWERRT_OK;
}

/* s8 stores: a finite scale >= 0 per row, and column sums that match the
 * rows (they feed the zero-point correction: a wrong one is a wrong score). */
static towerrt_status check_s8(towerrt_items *s, int rows) {
  const trt_section *sc, *cs;
  towerrt_status st;
  if ((st = trt_container_require(&s->container, TRT_SEC_ITEM_SCALES, "ITEM_SCALES", &sc))) return st;
  if ((st = trt_container_require(&s->container, TRT_SEC_ITEM_COLSUMS, "ITEM_COLSUMS", &cs))) return st;
  if (sc->size != s->count * 4 || cs->size != s->count * s->heads * 4)
    return trt_fail(TOWERRT_ERR_FORMAT, "ITEM_SCALES (%llu bytes) / ITEM_COLSUMS (%llu bytes) do not match %llu rows x %u heads",
                    (unsigned long long)sc->size, (unsigned long long)cs->size, (unsigned long long)s->count, s->heads);
  s->scales = (const float *)sc->data;
  s->colsums = (const int32_t *)cs->data;
  for (uint64_t r = 0; rows && r < s->count; r++) {
    if (!(s->scales[r] >= 0.0f) || !isfinite(s->scales[r]))
      return trt_fail(TOWERRT_ERR_NONFINITE, "item row %llu: scale %g is not a finite non-negative number", (unsigned long long)r, (double)s->scales[r]);
    const int8_t *row = (const int8_t *)s->heads_data + r * s->row_stride;
    for (uint32_t h = 0; h < s->heads; h++) {
      int32_t sum = 0;
      for (uint32_t d = 0; d < s->head_dim; d++) sum += row[(size_t)h * s->head_dim + d];
      if (sum != s->colsums[r * s->heads + h])
        return trt_fail(TOWERRT_ERR_FORMAT, "item row %llu head %u: stored column sum %d, the row sums to %d", (unsigned long long)r, h,
                        s->colsums[r * s->heads + h], sum);
    }
  }
  return TOWERRT_OK;
}

/* The optional centre: head_dim finite f32. Scores add sum_u <u, m>, so a
 * wrong length or a non-finite value would be a wrong score for every item. */
static towerrt_status check_finite_f32(const unsigned char *p, uint64_t n, const char *what) {
  for (uint64_t i = 0; i < n; i++) {
    uint32_t bits = trt_rd32(p + 4 * i);
    if ((bits & 0x7F800000u) == 0x7F800000u)
      return trt_fail(TOWERRT_ERR_NONFINITE, "%s value %llu is %s", what, (unsigned long long)i, (bits & 0x7FFFFFu) ? "NaN" : "Inf");
  }
  return TOWERRT_OK;
}

/* The optional row centres: count x head_dim f32 (checked finite with the
 * rows: a non-finite one would be a NaN score). */
static towerrt_status check_row_centres(towerrt_items *s, int rows) {
  const trt_section *c = &s->container.sections[TRT_SEC_ROW_CENTRES];
  if (!c->data) return TOWERRT_OK;
  if (s->container.sections[TRT_SEC_ITEM_CENTRE].data)
    return trt_fail(TOWERRT_ERR_FORMAT, "both ITEM_CENTRE and ROW_CENTRES: a store is centred one way");
  if (c->size / s->head_dim / 4 != s->count || c->size != s->count * s->head_dim * 4)
    return trt_fail(TOWERRT_ERR_FORMAT, "ROW_CENTRES holds %llu bytes, %llu rows x %u f32 (items.head_dim) expected",
                    (unsigned long long)c->size, (unsigned long long)s->count, s->head_dim);
  towerrt_status st = rows ? check_finite_f32(c->data, s->count * s->head_dim, "ROW_CENTRES") : TOWERRT_OK;
  if (!st) s->row_centres = (const float *)c->data;
  return st;
}

static towerrt_status check_centre(towerrt_items *s, int rows) {
  towerrt_status st = check_row_centres(s, rows);
  const trt_section *c = &s->container.sections[TRT_SEC_ITEM_CENTRE];
  if (st || !c->data) return st;
  if (c->size != (uint64_t)s->head_dim * 4)
    return trt_fail(TOWERRT_ERR_FORMAT, "ITEM_CENTRE holds %llu bytes, %u f32 (items.head_dim) expected", (unsigned long long)c->size,
                    s->head_dim);
  if ((st = check_finite_f32(c->data, s->head_dim, "ITEM_CENTRE"))) return st;
  s->centre = (const float *)c->data;
  return TOWERRT_OK;
}

/* Every row once, every id reachable from its home slot, unique ids. */
static towerrt_status check_id_map(towerrt_items *s, const trt_section *m, int rows) {
  if (m->size < 16) return trt_fail(TOWERRT_ERR_FORMAT, "ID_MAP section of %llu bytes has no header", (unsigned long long)m->size);
  s->n_slots = trt_rd64(m->data);
  if (s->n_slots < 2 * s->count || (s->n_slots & (s->n_slots - 1)) || s->n_slots > (m->size - 16) / 16 ||
      m->size != 16 + s->n_slots * 16)
    return trt_fail(TOWERRT_ERR_FORMAT, "ID_MAP: %llu slots for %llu items in %llu bytes (power of two >= 2 x items expected)",
                    (unsigned long long)s->n_slots, (unsigned long long)s->count, (unsigned long long)m->size);
  s->slots = m->data + 16;
  if (!rows) return TOWERRT_OK;
  unsigned char *seen = calloc((size_t)(s->count + 7) / 8, 1);
  if (!seen) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory checking the id map");
  towerrt_status st = TOWERRT_OK;
  uint64_t filled = 0;
  for (uint64_t i = 0; i < s->n_slots && !st; i++) {
    const unsigned char *slot = s->slots + i * 16;
    uint32_t row = trt_rd32(slot + 8);
    if (row == TRT_EMPTY_ROW) continue;
    uint64_t id = trt_rd64(slot);
    filled++;
    uint64_t dist = (i - trt_splitmix64(id)) & (s->n_slots - 1);
    if (row >= s->count || (seen[row / 8] & (1u << (row % 8))))
      st = trt_fail(TOWERRT_ERR_FORMAT, "ID_MAP slot %llu: row %u is out of range or mapped twice", (unsigned long long)i, row);
    else if (dist > TRT_ID_MAP_MAX_PROBE)
      st = trt_fail(TOWERRT_ERR_FORMAT, "ID_MAP slot %llu: item id %llu lies %llu slots past its home slot (limit %u)",
                    (unsigned long long)i, (unsigned long long)id, (unsigned long long)dist, TRT_ID_MAP_MAX_PROBE);
    else if (trt_items_find(s, id) != row)
      st = trt_fail(TOWERRT_ERR_FORMAT, "ID_MAP slot %llu: item id %llu is unreachable or duplicated", (unsigned long long)i,
                    (unsigned long long)id);
    else
      seen[row / 8] |= (unsigned char)(1u << (row % 8));
  }
  if (!st && filled != s->count)
    st = trt_fail(TOWERRT_ERR_FORMAT, "ID_MAP maps %llu ids, items.count is %llu", (unsigned long long)filled, (unsigned long long)s->count);
  free(seen);
  return st;
}

const void *trt_items_heads_for_node(const towerrt_items *s, uint32_t node) {
  return node < 64 && s->node_heads[node] ? s->node_heads[node] : s->heads_data;
}

/* Copies the heads to each node of the pool (replicate) or once,
 * interleaved over them; the mapped file stays the source of truth. */
static towerrt_status place(towerrt_items *s, const towerrt_pool *pool, uint32_t placement) {
  if (placement > TOWERRT_PLACE_INTERLEAVE) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "placement %u is not a towerrt_placement", placement);
  if (placement == TOWERRT_PLACE_SHARED) return TOWERRT_OK;
  if (!pool) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "placement needs options.pool");
  s->pool = pool;
  size_t bytes = (size_t)(s->count * s->row_stride);
  const void *shared = NULL;
  uint32_t copies = 0;
  for (uint32_t i = 0; i < pool->topo.n_nodes && i < 64; i++) copies += (pool->active >> i) & 1u;
  if (placement == TOWERRT_PLACE_INTERLEAVE) copies = copies ? 1 : 0;
  if (s->max_load_bytes && (uint64_t)bytes * copies > s->max_load_bytes - s->load_bytes)
    return trt_fail(TOWERRT_ERR_LIMIT, "placing %u copies of %zu bytes of item heads exceeds options.max_load_bytes (%llu)", copies, bytes,
                    (unsigned long long)s->max_load_bytes);
  for (uint32_t i = 0; i < pool->topo.n_nodes && i < 64; i++) {
    if (!(pool->active & (UINT64_C(1) << i))) continue;
    if (placement == TOWERRT_PLACE_INTERLEAVE && shared) {
      s->node_heads[i] = shared;
      s->node_bound[i] = -2; /* alias: freed with the first copy */
      continue;
    }
    void *copy = trt_pool_alloc(pool, placement == TOWERRT_PLACE_INTERLEAVE ? -1 : (int)i, bytes, &s->node_bound[i]);
    if (!copy) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory placing %zu bytes of item heads on node %u", bytes, i);
    /* before the copy faults the pages in: see huge_pages.h */
    if (s->huge_wanted) s->node_huge[i] = trt_advise_huge(copy, bytes) == 0;
    memcpy(copy, s->heads_data, bytes);
    s->node_heads[i] = shared = copy;
  }
  return TOWERRT_OK;
}

static towerrt_status load(towerrt_items *s, const char *path, const towerrt_options *o) {
  s->max_load_bytes = o ? o->max_load_bytes : TOWERRT_DEFAULT_MAX_LOAD_BYTES;
  s->huge_wanted = trt_huge_pages_wanted(o ? o->huge_pages : 1);
  towerrt_status st = trt_open_file_huge(path, o ? o->load_mode : TOWERRT_LOAD_MAP, s->max_load_bytes, (int)s->huge_wanted, &s->file);
  if (st) return st;
  if (s->file.copied) s->load_bytes = s->file.size;
  uint32_t level = o ? o->items_verify : TOWERRT_ITEMS_VERIFY_ALL;
  if (level > TOWERRT_ITEMS_VERIFY_STRUCTURE)
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "options.items_verify %u is not a towerrt_items_verify", level);
  int rows = level == TOWERRT_ITEMS_VERIFY_ALL, crcs = rows && (o ? o->verify_checksums != 0 : 1);
  if ((st = trt_container_open(s->file.data, s->file.size, "TWRITEMS", crcs, &s->container))) return st;
  const trt_section *meta, *heads, *map;
  if ((st = trt_container_require(&s->container, TRT_SEC_META, "META", &meta))) return st;
  if ((st = trt_container_require(&s->container, TRT_SEC_ITEM_HEADS, "ITEM_HEADS", &heads))) return st;
  if ((st = trt_container_require(&s->container, TRT_SEC_ID_MAP, "ID_MAP", &map))) return st;
  if ((st = trt_meta_parse(meta, &s->meta))) return st;
  if ((st = read_meta(s))) return st;
  if ((st = check_heads(s, heads, rows))) return st;
  if (s->dtype == TOWERRT_PRECISION_INT8 && (st = check_s8(s, rows))) return st;
  if ((st = check_centre(s, rows))) return st;
  if ((st = check_id_map(s, map, rows))) return st;
  if ((st = trt_items_read_delta(s, rows))) return st;
  return o ? place(s, o->pool, o->placement) : TOWERRT_OK;
}

towerrt_status towerrt_items_load(const char *path, const towerrt_options *opts, towerrt_items **out) {
  if (!out) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_items_load: out is NULL");
  *out = NULL;
  if (!path) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_items_load: path is NULL");
  towerrt_status st = trt_options_check(opts);
  if (st) return st;
  towerrt_items *s = calloc(1, sizeof *s);
  if (!s) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  atomic_init(&s->refs, 1);
  st = load(s, path, opts);
  if (st) {
    trt_fail_context(st, path);
    towerrt_items_free(s);
    return st;
  }
  *out = s;
  return TOWERRT_OK;
}

void trt_items_retain(const towerrt_items *s) {
  if (s) atomic_fetch_add_explicit(&((towerrt_items *)s)->refs, 1, memory_order_relaxed);
}

static void destroy(towerrt_items *s) {
  trt_overlay_free(s->overlay);
  for (uint32_t i = 0; i < 64; i++)
    if (s->node_heads[i] && s->node_bound[i] != -2)
      trt_pool_release(s->pool, (void *)s->node_heads[i], (size_t)(s->count * s->row_stride), s->node_bound[i]);
  trt_unmap_file(&s->file);
  free(s);
}

void trt_items_release(const towerrt_items *s) {
  /* acq_rel: every use of the store by the other holders happens before the free */
  if (s && atomic_fetch_sub_explicit(&((towerrt_items *)s)->refs, 1, memory_order_acq_rel) == 1) destroy((towerrt_items *)s);
}

void towerrt_items_free(towerrt_items *s) { trt_items_release(s); }

size_t towerrt_items_count(const towerrt_items *s) { return s ? (size_t)s->count : 0; }

size_t towerrt_items_ids(const towerrt_items *s, uint64_t *out, size_t cap) {
  if (!s || s->overlay) return 0;
  size_t n = 0;
  for (uint64_t i = 0; i < s->n_slots; i++) {
    const unsigned char *slot = s->slots + i * 16;
    if (trt_rd32(slot + 8) == TRT_EMPTY_ROW) continue;
    if (n < cap && out) out[n] = trt_rd64(slot);
    n++;
  }
  return n;
}
