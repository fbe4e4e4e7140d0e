/* The item store (.twi): each item's FE heads, row-aligned, and an
 * open-addressing map from external 64-bit ids to rows. */
#ifndef TOWERRT_ITEM_STORE_H
#define TOWERRT_ITEM_STORE_H

#include "container.h"
#include "mapped_file.h"
#include "towerrt.h"

#define TRT_EMPTY_ROW 0xFFFFFFFFu

struct towerrt_items {
  trt_mapped_file file;
  trt_container container;
  trt_meta meta;
  uint64_t count, n_slots, row_stride; /* row_stride in bytes */
  uint32_t heads, head_dim, fingerprint;
  const float *heads_data;
  const unsigned char *slots; /* n_slots x 16 bytes */
};

uint64_t trt_splitmix64(uint64_t x);
/* Row of an external id, or TRT_EMPTY_ROW. */
uint32_t trt_items_find(const towerrt_items *s, uint64_t id);

#endif
