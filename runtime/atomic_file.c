#define _GNU_SOURCE
#include "atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "item_store.h" /* trt_splitmix64 */
#include "status.h"

/* Distinct per call in this process, and unlikely across processes (pid,
 * clock); O_EXCL makes a collision a retry, never a shared file. */
static uint64_t unique_suffix(void) {
  static atomic_uint_fast64_t counter;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t x = (uint64_t)getpid() << 32 ^ (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 20;
  return trt_splitmix64(x + atomic_fetch_add(&counter, 1));
}

towerrt_status trt_atomic_open(trt_atomic_file *a, const char *path) {
  memset(a, 0, sizeof *a);
  a->fd = -1;
  size_t n = strlen(path), cap = n + 32;
  a->path = malloc(n + 1);
  a->tmp = malloc(cap);
  if (!a->path || !a->tmp) {
    trt_atomic_abort(a);
    return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  }
  memcpy(a->path, path, n + 1);
  for (int attempt = 0; attempt < 64; attempt++) {
    snprintf(a->tmp, cap, "%s.tmp.%012llx", path, (unsigned long long)(unique_suffix() & UINT64_C(0xFFFFFFFFFFFF)));
    a->fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (a->fd >= 0 || errno != EEXIST) break;
  }
  if (a->fd < 0) {
    towerrt_status st = trt_fail(TOWERRT_ERR_IO, "cannot create '%s': %s", a->tmp, strerror(errno));
    free(a->tmp); /* nothing was created: nothing to remove */
    a->tmp = NULL;
    trt_atomic_abort(a);
    return st;
  }
  return TOWERRT_OK;
}

/* fsync of the directory that holds path, so the rename itself is durable. */
static towerrt_status sync_dir(const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
  if (!dir) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  /* EINVAL: a file system whose directories cannot be synced (some FUSE) */
  towerrt_status st = fd < 0 || (fsync(fd) != 0 && errno != EINVAL)
                        ? trt_fail(TOWERRT_ERR_IO, "cannot sync directory '%s': %s", dir, strerror(errno))
                        : TOWERRT_OK;
  if (fd >= 0) close(fd);
  free(dir);
  return st;
}

towerrt_status trt_atomic_commit(trt_atomic_file *a) {
  towerrt_status st = TOWERRT_OK;
  if (a->f && fflush(a->f) != 0) st = trt_fail(TOWERRT_ERR_IO, "cannot write '%s': %s", a->tmp, strerror(errno));
  if (!st && fsync(a->fd) != 0) st = trt_fail(TOWERRT_ERR_IO, "cannot sync '%s': %s", a->tmp, strerror(errno));
  int rc = a->f ? fclose(a->f) : close(a->fd);
  a->f = NULL;
  a->fd = -1;
  if (!st && rc != 0) st = trt_fail(TOWERRT_ERR_IO, "cannot close '%s': %s", a->tmp, strerror(errno));
  if (!st && rename(a->tmp, a->path) != 0)
    st = trt_fail(TOWERRT_ERR_IO, "cannot rename '%s' to '%s': %s", a->tmp, a->path, strerror(errno));
  if (st) {
    trt_atomic_abort(a);
    return st;
  }
  free(a->tmp); /* renamed: nothing left to remove */
  a->tmp = NULL;
  st = sync_dir(a->path);
  trt_atomic_abort(a);
  return st;
}

void trt_atomic_abort(trt_atomic_file *a) {
  if (a->f) fclose(a->f);
  else if (a->fd >= 0) close(a->fd);
  if (a->tmp) unlink(a->tmp);
  free(a->path);
  free(a->tmp);
  memset(a, 0, sizeof *a);
  a->fd = -1;
}
