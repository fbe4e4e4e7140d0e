#include "container_write.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crc32.h"
#include "status.h"

void trt_bytes_put(trt_bytes *b, const void *src, size_t n) {
  if (b->failed) return;
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 256;
    while (cap < b->len + n) cap *= 2;
    unsigned char *q = realloc(b->p, cap);
    if (!q) {
      b->failed = 1;
      return;
    }
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->len, src, n);
  b->len += n;
}

void trt_bytes_u32(trt_bytes *b, uint32_t v) {
  unsigned char t[4];
  for (int i = 0; i < 4; i++) t[i] = (unsigned char)(v >> (8 * i));
  trt_bytes_put(b, t, 4);
}

void trt_bytes_u64(trt_bytes *b, uint64_t v) {
  trt_bytes_u32(b, (uint32_t)v);
  trt_bytes_u32(b, (uint32_t)(v >> 32));
}

static void meta_key(trt_bytes *b, const char *key, uint8_t type) {
  size_t n = strlen(key);
  unsigned char len[2] = {(unsigned char)n, (unsigned char)(n >> 8)};
  trt_bytes_put(b, len, 2);
  trt_bytes_put(b, key, n);
  trt_bytes_put(b, &type, 1);
}

void trt_meta_put_int(trt_bytes *b, const char *key, int64_t v) {
  meta_key(b, key, TRT_META_INT);
  trt_bytes_u64(b, (uint64_t)v);
}

void trt_meta_put_str(trt_bytes *b, const char *key, const char *v, size_t len) {
  meta_key(b, key, TRT_META_STRING);
  trt_bytes_u32(b, (uint32_t)len);
  trt_bytes_put(b, v, len);
}

void trt_meta_put_int_array(trt_bytes *b, const char *key, const uint64_t *v, uint32_t n) {
  meta_key(b, key, TRT_META_INT_ARRAY);
  trt_bytes_u32(b, n);
  for (uint32_t i = 0; i < n; i++) trt_bytes_u64(b, v[i]);
}

static towerrt_status io_error(trt_writer *w) {
  w->failed = 1;
  return trt_fail(TOWERRT_ERR_IO, "cannot write '%s': %s", w->out.tmp, strerror(errno));
}

static towerrt_status pad_to(trt_writer *w, uint64_t target) {
  static const unsigned char zero[64];
  while (w->pos < target) {
    size_t n = target - w->pos < 64 ? (size_t)(target - w->pos) : 64;
    if (fwrite(zero, 1, n, w->f) != n) return io_error(w);
    w->pos += n;
  }
  return TOWERRT_OK;
}

towerrt_status trt_writer_open(trt_writer *w, const char *path, const char *magic, uint32_t n_sections) {
  memset(w, 0, sizeof *w);
  w->out.fd = -1;
  if (n_sections == 0 || n_sections > TRT_MAX_SECTIONS) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "bad section count %u", n_sections);
  memcpy(w->magic, magic, 8);
  w->n_sections = n_sections;
  towerrt_status st = trt_atomic_open(&w->out, path);
  if (st) return st;
  w->f = w->out.f = fdopen(w->out.fd, "wb");
  if (!w->f) {
    st = trt_fail(TOWERRT_ERR_IO, "cannot open a stream on '%s': %s", w->out.tmp, strerror(errno));
    trt_atomic_abort(&w->out);
    return st;
  }
  return pad_to(w, TRT_HEADER_SIZE + (uint64_t)n_sections * TRT_SECTION_ENTRY_SIZE);
}

towerrt_status trt_writer_begin(trt_writer *w, uint32_t kind) {
  if (w->current >= w->n_sections) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "more sections than declared (%u)", w->n_sections);
  towerrt_status st = pad_to(w, (w->pos + 63) & ~UINT64_C(63));
  if (st) return st;
  w->sections[w->current].kind = kind;
  w->sections[w->current].offset = w->pos;
  w->sections[w->current].crc = 0;
  return TOWERRT_OK;
}

towerrt_status trt_writer_put(trt_writer *w, const void *data, size_t n) {
  if (n && fwrite(data, 1, n, w->f) != n) return io_error(w);
  w->sections[w->current].crc = trt_crc32(w->sections[w->current].crc, data, n);
  w->pos += n;
  return TOWERRT_OK;
}

towerrt_status trt_writer_end(trt_writer *w) {
  w->sections[w->current].size = w->pos - w->sections[w->current].offset;
  w->current++;
  return TOWERRT_OK;
}

towerrt_status trt_writer_reserve(trt_writer *w, uint32_t kind, uint64_t size) {
  towerrt_status st = trt_writer_begin(w, kind);
  if (!st) st = pad_to(w, w->pos + size);
  return st ? st : trt_writer_end(w);
}

static int pwrite_all(int fd, const void *p, size_t n, uint64_t off) {
  const unsigned char *c = p;
  while (n) {
    ssize_t k = pwrite(fd, c, n, (off_t)off);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return 0;
    c += k;
    n -= (size_t)k;
    off += (uint64_t)k;
  }
  return 1;
}

towerrt_status trt_writer_patch(trt_writer *w, uint32_t index, const void *data, size_t n) {
  if (index >= w->current || n != w->sections[index].size)
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "patch of section %u: %zu bytes for a section of %llu", index, n,
                    index < w->current ? (unsigned long long)w->sections[index].size : 0ULL);
  /* the reserved zeros may still sit in the stream's buffer */
  if (fflush(w->f) != 0 || !pwrite_all(w->out.fd, data, n, w->sections[index].offset)) return io_error(w);
  w->sections[index].crc = trt_crc32(0, data, n);
  return TOWERRT_OK;
}

towerrt_status trt_writer_begin_placed(trt_writer *w, uint32_t kind, uint64_t *offset) {
  towerrt_status st = trt_writer_begin(w, kind);
  if (st) return st;
  if (fflush(w->f) != 0) return io_error(w);
  *offset = w->pos;
  return TOWERRT_OK;
}

towerrt_status trt_writer_pwrite(const trt_writer *w, uint64_t offset, const void *data, size_t n) {
  if (pwrite_all(w->out.fd, data, n, w->sections[w->current].offset + offset)) return TOWERRT_OK;
  return trt_fail(TOWERRT_ERR_IO, "cannot write '%s': %s", w->out.tmp, strerror(errno));
}

towerrt_status trt_writer_end_placed(trt_writer *w, uint64_t size, uint32_t crc) {
  w->pos = w->sections[w->current].offset + size;
  if (fseeko(w->f, (off_t)w->pos, SEEK_SET) != 0) return io_error(w);
  w->sections[w->current].crc = crc;
  return trt_writer_end(w);
}

towerrt_status trt_writer_finish(trt_writer *w) {
  if (w->current != w->n_sections) {
    trt_writer_abort(w);
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "%u of %u sections written", w->current, w->n_sections);
  }
  trt_bytes table = {0}, head = {0};
  for (uint32_t i = 0; i < w->n_sections; i++) {
    trt_bytes_u32(&table, w->sections[i].kind);
    trt_bytes_u32(&table, w->sections[i].crc);
    trt_bytes_u64(&table, w->sections[i].offset);
    trt_bytes_u64(&table, w->sections[i].size);
    trt_bytes_u64(&table, 0);
  }
  unsigned char zero[16] = {0};
  uint32_t version = TRT_FORMAT_VERSION;
  for (uint32_t i = 0; i < w->n_sections; i++)
    if (w->sections[i].kind == TRT_SEC_ITEM_CENTRE || w->sections[i].kind == TRT_SEC_ROW_CENTRES) version = TRT_FORMAT_VERSION_CENTRED;
  trt_bytes_put(&head, w->magic, 8);
  trt_bytes_u32(&head, version); /* 2 for centred item stores only (container.h) */
  trt_bytes_u32(&head, TRT_HEADER_SIZE);
  trt_bytes_u64(&head, w->pos);
  trt_bytes_u64(&head, TRT_HEADER_SIZE);
  trt_bytes_u32(&head, w->n_sections);
  trt_bytes_u32(&head, 0);
  trt_bytes_u32(&head, table.failed ? 0 : trt_crc32(0, table.p, table.len));
  trt_bytes_put(&head, zero, 16);
  trt_bytes_u32(&head, head.failed ? 0 : trt_crc32(0, head.p, 60));
  towerrt_status st = TOWERRT_OK;
  if (table.failed || head.failed) st = trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  else if (fseek(w->f, 0, SEEK_SET) != 0 || fwrite(head.p, 1, head.len, w->f) != head.len ||
           fwrite(table.p, 1, table.len, w->f) != table.len)
    st = io_error(w);
  free(table.p);
  free(head.p);
  w->f = NULL; /* the atomic file owns the stream now */
  if (!st) st = trt_atomic_commit(&w->out);
  else trt_atomic_abort(&w->out);
  return st;
}

void trt_writer_abort(trt_writer *w) {
  trt_atomic_abort(&w->out);
  memset(w, 0, sizeof *w);
  w->out.fd = -1;
}
