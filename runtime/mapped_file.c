#define _GNU_SOURCE
#include "mapped_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "huge_pages.h"
#include "status.h"

/* The block of a copy: with huge pages, anonymous memory on a 2 MiB
 * boundary, madvised before read_copy faults it in (so the faults take
 * huge pages at once instead of waiting for khugepaged); else the heap. */
static unsigned char *copy_block(size_t size, int huge, trt_mapped_file *out) {
  size_t cap = (size + 4095) & ~(size_t)4095;
  unsigned char *p = huge && size >= TRT_HUGE_PAGE ? trt_reserve_aligned(cap, 1) : NULL;
  if (p) {
    out->map_len = cap;
    out->huge = trt_advise_huge(p, cap) == 0;
    return p;
  }
  return aligned_alloc(4096, cap);
}

static void free_block(trt_mapped_file *f) {
  if (f->map_len) munmap((void *)f->data, f->map_len);
  else free((void *)f->data);
}

/* Reads exactly size bytes from the start of fd into a page-aligned block
 * (sections are 64-byte aligned in the file: the kernels see the same
 * alignment as in a mapping). A file that shrinks while it is read gives
 * TRUNCATED; one that grows is read up to the size fstat gave, and the
 * container's file_size check refuses it if the header disagrees. */
static towerrt_status read_copy(int fd, const char *path, size_t size, int huge, trt_mapped_file *out) {
  unsigned char *p = copy_block(size, huge, out);
  if (!p) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory copying '%s' (%zu bytes)", path, size);
  out->data = p;
  size_t got = 0;
  while (got < size) {
    ssize_t n = pread(fd, p + got, size - got, (off_t)got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      free_block(out);
      out->data = NULL;
      out->map_len = 0;
      return n < 0 ? trt_fail(TOWERRT_ERR_IO, "cannot read '%s': %s", path, strerror(err))
                   : trt_fail(TOWERRT_ERR_TRUNCATED, "'%s' shrank to %zu bytes while it was read (%zu expected)", path, got, size);
    }
    got += (size_t)n;
  }
  out->size = size;
  out->copied = 1;
  return TOWERRT_OK;
}

/* The file mapped read-only; with huge pages, at a 2 MiB boundary and
 * madvised (granted for files only where the kernel can, huge_pages.h). */
static void *map_file(int fd, size_t size, int huge, trt_mapped_file *out) {
  void *at = huge && size >= TRT_HUGE_PAGE ? trt_reserve_aligned(size, 0) : NULL;
  void *p = mmap(at, size, PROT_READ, MAP_PRIVATE | (at ? MAP_FIXED : 0), fd, 0);
  if (p == MAP_FAILED) {
    int err = errno;
    if (at) munmap(at, size);
    errno = err;
    return p;
  }
  out->map_len = size;
  out->huge = at && trt_advise_huge(p, size) == 0;
  return p;
}

towerrt_status trt_open_file_huge(const char *path, uint32_t load_mode, uint64_t max_bytes, int huge, trt_mapped_file *out) {
  *out = (trt_mapped_file){0};
  if (load_mode > TOWERRT_LOAD_COPY)
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "options.load_mode %u is not a towerrt_load_mode", load_mode);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return trt_fail(TOWERRT_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return trt_fail(TOWERRT_ERR_IO, "'%s' is not a regular file", path);
  }
  if (st.st_size < 64) {
    close(fd);
    return trt_fail(TOWERRT_ERR_TRUNCATED, "'%s' is %lld bytes, shorter than the 64-byte header",
                    path, (long long)st.st_size);
  }
  if (load_mode == TOWERRT_LOAD_COPY) {
    towerrt_status s = max_bytes && (uint64_t)st.st_size > max_bytes
                         ? trt_fail(TOWERRT_ERR_LIMIT, "copying '%s' (%lld bytes) exceeds options.max_load_bytes (%llu)", path,
                                    (long long)st.st_size, (unsigned long long)max_bytes)
                         : read_copy(fd, path, (size_t)st.st_size, huge, out);
    close(fd);
    return s;
  }
  void *p = map_file(fd, (size_t)st.st_size, huge, out);
  int err = errno;
  close(fd);
  if (p == MAP_FAILED) return trt_fail(TOWERRT_ERR_IO, "cannot mmap '%s': %s", path, strerror(err));
  out->data = p;
  out->size = (size_t)st.st_size;
  return TOWERRT_OK;
}

towerrt_status trt_open_file(const char *path, uint32_t load_mode, uint64_t max_bytes, trt_mapped_file *out) {
  return trt_open_file_huge(path, load_mode, max_bytes, 0, out);
}

towerrt_status trt_map_file(const char *path, trt_mapped_file *out) { return trt_open_file(path, TOWERRT_LOAD_MAP, 0, out); }

void trt_unmap_file(trt_mapped_file *f) {
  if (f->data) free_block(f);
  *f = (trt_mapped_file){0};
}
