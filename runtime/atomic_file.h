/* Publishing an output file atomically, shared by every writer (item
 * stores, merges, quantized stores and models): the bytes go to a
 * temporary that no other process can share, and appear under the final
 * name only whole and on disk.
 *  - The temporary is PATH.tmp.<unique> in the output's directory (rename
 *    is atomic only within one file system), created with O_CREAT|O_EXCL:
 *    two writers to one output never share it (issue 13: two `build-items`
 *    with the same --out wrote one fixed PATH.tmp, and one published a
 *    store that failed CHECKSUM), and a name planted in a shared directory
 *    (a symlink) is never followed.
 *  - Commit: fsync the file, rename it over PATH, fsync the directory, so a
 *    crash or power loss leaves the old file or the new one, not an empty
 *    or partial one. Two writers racing: the last rename wins, whole.
 *  - Abort: the temporary is closed and removed. A process killed before
 *    either leaves its PATH.tmp.<unique> behind (docs/item-stores.md). */
#ifndef TOWERRT_ATOMIC_FILE_H
#define TOWERRT_ATOMIC_FILE_H

#include <stdio.h>

#include "towerrt.h"

typedef struct trt_atomic_file {
  int fd;     /* the temporary, open for writing; -1 when closed */
  FILE *f;    /* set by the caller if it wraps fd in a stdio stream */
  char *path; /* the final name */
  char *tmp;  /* PATH.tmp.<unique> */
} trt_atomic_file;

/* Creates the temporary for `path` (mode 0666 less the umask). */
towerrt_status trt_atomic_open(trt_atomic_file *a, const char *path);
/* Flushes (a->f if set), fsyncs, closes, renames to the final name and
 * fsyncs the directory; on failure the temporary is removed. */
towerrt_status trt_atomic_commit(trt_atomic_file *a);
/* Closes and removes the temporary; frees the names. Safe after commit. */
void trt_atomic_abort(trt_atomic_file *a);

#endif
