/* A whole file, read-only, as one block of bytes: mapped in place (the
 * default: big tensors are used where they lie), or copied into memory the
 * process owns (TOWERRT_LOAD_COPY: the file may then change or vanish under
 * the running process without effect, docs/serving.md). */
#ifndef TOWERRT_MAPPED_FILE_H
#define TOWERRT_MAPPED_FILE_H
#include <stddef.h>
#include <stdint.h>
#include "towerrt.h"

typedef struct trt_mapped_file {
  const unsigned char *data;
  size_t size;
  int copied; /* 1: data is a copy the process owns, 0: a mapping of the file */
  size_t map_len; /* bytes to munmap at data (0: data is a heap block, freed) */
  int huge;       /* 1: huge pages were asked for (trt_advise_huge succeeded) */
} trt_mapped_file;

/* Maps the file (load_mode TOWERRT_LOAD_MAP) or reads it into a heap block
 * (TOWERRT_LOAD_COPY), the copy refused with LIMIT when the file is larger
 * than max_bytes (0: no bound). */
towerrt_status trt_open_file(const char *path, uint32_t load_mode, uint64_t max_bytes, trt_mapped_file *out);
/* The same, and with huge != 0 the mapping or copy starts on a 2 MiB
 * boundary (file offsets and addresses agree modulo 2 MiB, so a section's
 * pages can be huge pages) and is madvise(MADV_HUGEPAGE)d before the first
 * read (huge_pages.h: what the OS grants). Never fails for want of them. */
towerrt_status trt_open_file_huge(const char *path, uint32_t load_mode, uint64_t max_bytes, int huge, trt_mapped_file *out);
/* trt_open_file(path, TOWERRT_LOAD_MAP, 0, out). */
towerrt_status trt_map_file(const char *path, trt_mapped_file *out);
void trt_unmap_file(trt_mapped_file *f);
#endif
