#define _GNU_SOURCE
#include "mapped_file.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "status.h"

towerrt_status trt_map_file(const char *path, trt_mapped_file *out) {
  out->data = NULL;
  out->size = 0;
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
  void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  int err = errno;
  close(fd);
  if (p == MAP_FAILED) return trt_fail(TOWERRT_ERR_IO, "cannot mmap '%s': %s", path, strerror(err));
  out->data = p;
  out->size = (size_t)st.st_size;
  return TOWERRT_OK;
}

void trt_unmap_file(trt_mapped_file *f) {
  if (f->data) munmap((void *)f->data, f->size);
  f->data = NULL;
  f->size = 0;
}
