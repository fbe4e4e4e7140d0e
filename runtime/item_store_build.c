/* towerrt_items_build: runs the item tower over a catalog and writes a
 * .twi (docs/format.md). Rows are streamed to a temporary file that is
 * renamed into place only when complete, so a failed build never leaves a
 * half-written store under the final name. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32.h"
#include "item_store.h"
#include "status.h"
#include "tower_exec.h"

typedef struct bytes {
  unsigned char *p;
  size_t len, cap;
} bytes;

static int put_bytes(bytes *b, const void *src, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 256;
    while (cap < b->len + n) cap *= 2;
    unsigned char *q = realloc(b->p, cap);
    if (!q) return 0;
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->len, src, n);
  b->len += n;
  return 1;
}
static int put_u8(bytes *b, uint8_t v) { return put_bytes(b, &v, 1); }
static int put_u16(bytes *b, uint16_t v) { unsigned char t[2] = {(unsigned char)v, (unsigned char)(v >> 8)}; return put_bytes(b, t, 2); }
static int put_u32(bytes *b, uint32_t v) { unsigned char t[4]; for (int i = 0; i < 4; i++) t[i] = (unsigned char)(v >> (8 * i)); return put_bytes(b, t, 4); }
static int put_u64(bytes *b, uint64_t v) { return put_u32(b, (uint32_t)v) && put_u32(b, (uint32_t)(v >> 32)); }
static int meta_key(bytes *b, const char *k, uint8_t type) { return put_u16(b, (uint16_t)strlen(k)) && put_bytes(b, k, strlen(k)) && put_u8(b, type); }
static int meta_int(bytes *b, const char *k, int64_t v) { return meta_key(b, k, 1) && put_u64(b, (uint64_t)v); }
static int meta_str(bytes *b, const char *k, const char *v) { return meta_key(b, k, 3) && put_u32(b, (uint32_t)strlen(v)) && put_bytes(b, v, strlen(v)); }

static uint64_t align64(uint64_t x) { return (x + 63) & ~UINT64_C(63); }

static towerrt_status build_meta(const towerrt_model *m, size_t n, uint64_t stride, bytes *b) {
  int ok = put_u32(b, 7) && meta_int(b, "items.count", (int64_t)n) && meta_int(b, "items.heads", m->heads_item) &&
           meta_int(b, "items.head_dim", m->head_dim) && meta_str(b, "items.dtype", "f32") &&
           meta_int(b, "items.row_stride", (int64_t)stride) && meta_int(b, "model.fingerprint", m->item_fingerprint) &&
           meta_str(b, "general.source", "towerrt_items_build");
  return ok ? TOWERRT_OK : trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
}

/* id -> row map, or INVALID_ARGUMENT naming a duplicate id. */
static towerrt_status build_id_map(const uint64_t *ids, size_t n, bytes *b, uint64_t *n_slots_out) {
  uint64_t n_slots = 16;
  while (n_slots < 2 * (uint64_t)n) n_slots *= 2;
  size_t size = 16 + (size_t)n_slots * 16;
  b->p = malloc(size);
  if (!b->p) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for an id map of %llu slots", (unsigned long long)n_slots);
  b->len = b->cap = size;
  memset(b->p, 0, size);
  unsigned char *slots = b->p + 16;
  for (uint64_t i = 0; i < n_slots; i++) memset(slots + i * 16 + 8, 0xFF, 4);
  for (size_t r = 0; r < n; r++) {
    uint64_t i = trt_splitmix64(ids[r]) & (n_slots - 1);
    for (uint64_t dist = 0;; dist++, i = (i + 1) & (n_slots - 1)) {
      unsigned char *slot = slots + i * 16;
      uint32_t row = trt_rd32(slot + 8);
      if (row == TRT_EMPTY_ROW) break;
      if (trt_rd64(slot) == ids[r])
        return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "item id %llu appears twice (rows %u and %zu)", (unsigned long long)ids[r], row, r);
      if (dist == TRT_ID_MAP_MAX_PROBE)
        return trt_fail(TOWERRT_ERR_LIMIT, "item id %llu (row %zu) would lie more than %u slots past its home slot in the id map "
                        "(limit %u): the item ids collide pathologically", (unsigned long long)ids[r], r, TRT_ID_MAP_MAX_PROBE,
                        TRT_ID_MAP_MAX_PROBE);
    }
    for (int k = 0; k < 8; k++) slots[i * 16 + k] = (unsigned char)(ids[r] >> (8 * k));
    for (int k = 0; k < 4; k++) slots[i * 16 + 8 + k] = (unsigned char)((uint32_t)r >> (8 * k));
  }
  for (int k = 0; k < 8; k++) b->p[k] = (unsigned char)(n_slots >> (8 * k));
  *n_slots_out = n_slots;
  return TOWERRT_OK;
}

typedef struct section_out {
  uint32_t kind, crc;
  uint64_t offset, size;
} section_out;

static int write_at(FILE *f, uint64_t off, const void *p, size_t n) {
  return fseeko(f, (off_t)off, SEEK_SET) == 0 && fwrite(p, 1, n, f) == n;
}

static int write_header(FILE *f, const section_out *sec, uint32_t n_sec, uint64_t file_size) {
  bytes table = {0}, head = {0};
  for (uint32_t i = 0; i < n_sec; i++)
    if (!(put_u32(&table, sec[i].kind) && put_u32(&table, sec[i].crc) && put_u64(&table, sec[i].offset) &&
          put_u64(&table, sec[i].size) && put_u64(&table, 0))) return 0;
  unsigned char zero[16] = {0};
  int ok = put_bytes(&head, "TWRITEMS", 8) && put_u32(&head, 1) && put_u32(&head, 64) && put_u64(&head, file_size) &&
           put_u64(&head, 64) && put_u32(&head, n_sec) && put_u32(&head, 0) &&
           put_u32(&head, trt_crc32(0, table.p, table.len)) && put_bytes(&head, zero, 16);
  ok = ok && put_u32(&head, trt_crc32(0, head.p, 60));
  ok = ok && write_at(f, 0, head.p, head.len) && write_at(f, 64, table.p, table.len);
  free(table.p);
  free(head.p);
  return ok;
}

/* Streams the heads of all rows, block by block, at `offset`. */
static towerrt_status write_heads(const towerrt_model *m, const towerrt_features *items, size_t n, uint64_t stride, FILE *f,
                                  uint64_t offset, uint32_t *crc) {
  void *arena = aligned_alloc(64, trt_workspace_bytes(m));
  unsigned char *row_buf = calloc(1, (size_t)stride);
  if (!arena || !row_buf) {
    free(arena);
    free(row_buf);
    return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for the item tower workspace");
  }
  trt_workspace ws;
  trt_workspace_init(m, arena, &ws);
  size_t per_row = (size_t)m->heads_item * m->head_dim;
  towerrt_status st = fseeko(f, (off_t)offset, SEEK_SET) == 0 ? TOWERRT_OK : trt_fail(TOWERRT_ERR_IO, "seek failed");
  *crc = 0;
  for (size_t r0 = 0; r0 < n && !st; r0 += TRT_ITEM_BLOCK) {
    size_t b = n - r0 < TRT_ITEM_BLOCK ? n - r0 : TRT_ITEM_BLOCK;
    trt_item_forward(m, &m->item, &ws, items->ids + r0 * m->item.id_slots, items->dense ? items->dense + r0 * m->item.dense_width : NULL, b);
    for (size_t r = 0; r < b && !st; r++) {
      memcpy(row_buf, ws.item_heads + r * per_row, per_row * sizeof(float));
      *crc = trt_crc32(*crc, row_buf, (size_t)stride);
      if (fwrite(row_buf, 1, (size_t)stride, f) != stride) st = trt_fail(TOWERRT_ERR_IO, "write failed: %s", strerror(errno));
    }
  }
  free(arena);
  free(row_buf);
  return st;
}

static towerrt_status write_store(const towerrt_model *m, const towerrt_features *items, const uint64_t *ids, size_t n, FILE *f) {
  uint64_t stride = align64((uint64_t)m->heads_item * m->head_dim * sizeof(float)), n_slots = 0;
  bytes meta = {0}, map = {0};
  towerrt_status st = build_meta(m, n, stride, &meta);
  if (!st) st = build_id_map(ids, n, &map, &n_slots);
  section_out sec[3] = {{TRT_SEC_META, 0, 0, meta.len}, {TRT_SEC_ITEM_HEADS, 0, 0, stride * n}, {TRT_SEC_ID_MAP, 0, 0, map.len}};
  sec[0].offset = align64(64 + 3 * 32);
  sec[1].offset = align64(sec[0].offset + sec[0].size);
  sec[2].offset = align64(sec[1].offset + sec[1].size);
  uint64_t file_size = sec[2].offset + sec[2].size;
  if (!st) {
    sec[0].crc = trt_crc32(0, meta.p, meta.len);
    sec[2].crc = trt_crc32(0, map.p, map.len);
    st = write_heads(m, items, n, stride, f, sec[1].offset, &sec[1].crc);
  }
  if (!st) {
    unsigned char zero[64] = {0};
    int ok = write_at(f, 64 + 3 * 32, zero, (size_t)(sec[0].offset - (64 + 3 * 32))) && write_at(f, sec[0].offset, meta.p, meta.len) &&
             write_at(f, sec[0].offset + meta.len, zero, (size_t)(sec[1].offset - sec[0].offset - meta.len)) &&
             write_at(f, sec[1].offset + sec[1].size, zero, (size_t)(sec[2].offset - sec[1].offset - sec[1].size)) &&
             write_at(f, sec[2].offset, map.p, map.len) && write_header(f, sec, 3, file_size);
    if (!ok) st = trt_fail(TOWERRT_ERR_IO, "write failed: %s", strerror(errno));
  }
  free(meta.p);
  free(map.p);
  return st;
}

towerrt_status towerrt_items_build(const towerrt_model *m, const towerrt_features *items, const uint64_t *item_ids, size_t n,
                                   const char *path) {
  if (!m || !items || !item_ids || !path)
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_items_build: model, items, item_ids and path must not be NULL");
  if (n == 0) return trt_fail(TOWERRT_ERR_EMPTY_REQUEST, "towerrt_items_build: no items");
  if (n >= TRT_EMPTY_ROW) return trt_fail(TOWERRT_ERR_LIMIT, "towerrt_items_build: %zu items exceed the limit %u", n, TRT_EMPTY_ROW - 1);
  towerrt_status st = trt_check_features(m, TOWERRT_ITEM, items, n);
  if (st) return st;
  size_t len = strlen(path);
  char *tmp = malloc(len + 16);
  if (!tmp) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  snprintf(tmp, len + 16, "%s.tmp", path);
  FILE *f = fopen(tmp, "wb");
  if (!f) {
    st = trt_fail(TOWERRT_ERR_IO, "cannot create '%s': %s", tmp, strerror(errno));
    free(tmp);
    return st;
  }
  st = write_store(m, items, item_ids, n, f);
  if (fclose(f) != 0 && !st) st = trt_fail(TOWERRT_ERR_IO, "cannot close '%s': %s", tmp, strerror(errno));
  if (!st && rename(tmp, path) != 0) st = trt_fail(TOWERRT_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
  if (st) remove(tmp);
  free(tmp);
  return st;
}
