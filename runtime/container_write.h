/* Streaming writer of the common container (docs/format.md): sections are
 * written one after the other, each 64-byte aligned, with their CRC
 * computed on the way; the header and table go in last. The file is built
 * in a unique temporary (atomic_file.h) and renamed into place, synced,
 * only by trt_writer_finish, so a failed write never leaves a half-written
 * file under the final name and two writers never share a temporary. */
#ifndef TOWERRT_CONTAINER_WRITE_H
#define TOWERRT_CONTAINER_WRITE_H

#include <stdint.h>
#include <stdio.h>

#include "atomic_file.h"
#include "container.h"
#include "towerrt.h"

typedef struct trt_writer {
  FILE *f;
  trt_atomic_file out;
  char magic[8];
  uint32_t n_sections, current;
  struct {
    uint32_t kind, crc;
    uint64_t offset, size;
  } sections[TRT_MAX_SECTIONS];
  uint64_t pos;
  int failed;
} trt_writer;

towerrt_status trt_writer_open(trt_writer *w, const char *path, const char *magic, uint32_t n_sections);
towerrt_status trt_writer_begin(trt_writer *w, uint32_t kind);
towerrt_status trt_writer_put(trt_writer *w, const void *data, size_t n);
towerrt_status trt_writer_end(trt_writer *w);
/* Sections written out of order (the item-store builder):
 *  - reserve: a section of `size` zero bytes whose contents are known only
 *    later but whose size is fixed now (a META of fixed size before rows);
 *    patch then writes its contents (exactly `size` bytes) and its CRC.
 *  - placed: a section written at offsets from its start, by several
 *    threads at once (pwrite: no writer state is touched), in any order;
 *    begin_placed gives its file offset, end_placed its final size and the
 *    CRC the caller folded in order (trt_crc32_combine). Every byte of the
 *    section must have been written by then. */
towerrt_status trt_writer_reserve(trt_writer *w, uint32_t kind, uint64_t size);
towerrt_status trt_writer_patch(trt_writer *w, uint32_t index, const void *data, size_t n);
towerrt_status trt_writer_begin_placed(trt_writer *w, uint32_t kind, uint64_t *offset);
towerrt_status trt_writer_pwrite(const trt_writer *w, uint64_t offset, const void *data, size_t n);
towerrt_status trt_writer_end_placed(trt_writer *w, uint64_t size, uint32_t crc);
/* Writes header + table, syncs, closes, renames the temporary to PATH. */
towerrt_status trt_writer_finish(trt_writer *w);
/* Closes and removes the temporary (after an error). */
void trt_writer_abort(trt_writer *w);

/* Little helpers to build small byte buffers (META). */
typedef struct trt_bytes {
  unsigned char *p;
  size_t len, cap;
  int failed;
} trt_bytes;
void trt_bytes_put(trt_bytes *b, const void *src, size_t n);
void trt_bytes_u32(trt_bytes *b, uint32_t v);
void trt_bytes_u64(trt_bytes *b, uint64_t v);
void trt_meta_put_int(trt_bytes *b, const char *key, int64_t v);
void trt_meta_put_str(trt_bytes *b, const char *key, const char *v, size_t len);
void trt_meta_put_int_array(trt_bytes *b, const char *key, const uint64_t *v, uint32_t n);

#endif
