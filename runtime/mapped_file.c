#define _GNU_SOURCE
#include "mapped_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "status.h"

/* Reads exactly size bytes from the start of fd into a page-aligned block
 * (sections are 64-byte aligned in the file: the kernels see the same
 * alignment as in a mapping). A file that shrinks while it is read gives
 * TRUNCATED; one that grows is read up to the size fstat gave, and the
 * container's file_size check refuses it if the header disagrees. */
static towerrt_status read_copy(int fd, const char *path, size_t size, trt_mapped_file *out) {
  size_t cap = (size + 4095) & ~(size_t)4095;
  unsigned char *p = aligned_alloc(4096, cap);
  if (!p) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory copying '%s' (%zu bytes)", path, size);
  size_t got = 0;
  while (got < size) {
    ssize_t n = pread(fd, p + got, size - got, (off_t)got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      free(p);
      return n < 0 ? trt_fail(TOWERRT_ERR_IO, "cannot read '%s': %s", path, strerror(err))
                   : trt_fail(TOWERRT_ERR_TRUNCATED, "'%s' shrank to %zu bytes while it was read (%zu expected)", path, got, size);
    }
    got += (size_t)n;
  }
  out->data = p;
  out->size = size;
  out->copied = 1;
  return TOWERRT_OK;
}

towerrt_status trt_open_file(const char *path, uint32_t load_mode, uint64_t max_bytes, trt_mapped_file *out) {
  out->data = NULL;
  out->size = 0;
  out->copied = 0;
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
                         : read_copy(fd, path, (size_t)st.st_size, out);
    close(fd);
    return s;
  }
  void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  int err = errno;
  close(fd);
  if (p == MAP_FAILED) return trt_fail(TOWERRT_ERR_IO, "cannot mmap '%s': %s", path, strerror(err));
  out->data = p;
  out->size = (size_t)st.st_size;
  return TOWERRT_OK;
}

towerrt_status trt_map_file(const char *path, trt_mapped_file *out) { return trt_open_file(path, TOWERRT_LOAD_MAP, 0, out); }

void trt_unmap_file(trt_mapped_file *f) {
  if (f->data && f->copied) free((void *)f->data);
  else if (f->data) munmap((void *)f->data, f->size);
  f->data = NULL;
  f->size = 0;
  f->copied = 0;
}
