/* A read-only memory map of a whole file: big tensors are used in place. */
#ifndef TOWERRT_MAPPED_FILE_H
#define TOWERRT_MAPPED_FILE_H
#include <stddef.h>
#include "towerrt.h"

typedef struct trt_mapped_file {
  const unsigned char *data;
  size_t size;
} trt_mapped_file;

towerrt_status trt_map_file(const char *path, trt_mapped_file *out);
void trt_unmap_file(trt_mapped_file *f);
#endif
