/* The ID_MAP writer (item_id_map.h). */
#include "item_id_map.h"

#include <stdlib.h>
#include <string.h>

#include "status.h"

uint64_t trt_id_map_slots(uint64_t rows) {
  uint64_t s = 16;
  while (s < 2 * rows) s *= 2;
  return s;
}

size_t trt_id_map_bytes(uint64_t n_slots) { return 16 + (size_t)n_slots * 16; }

unsigned char *trt_id_map_alloc(uint64_t n_slots) {
  if (n_slots > (SIZE_MAX - 16) / 16) return NULL;
  unsigned char *p = malloc(trt_id_map_bytes(n_slots));
  if (!p) return NULL;
  memset(p, 0, trt_id_map_bytes(n_slots));
  trt_wr64(p, n_slots);
  for (uint64_t i = 0; i < n_slots; i++) trt_wr32(p + 16 + i * 16 + 8, TRT_EMPTY_ROW);
  return p;
}

uint32_t trt_id_map_insert(unsigned char *map, uint64_t id, uint32_t row) {
  uint64_t n_slots = trt_rd64(map);
  unsigned char *slots = map + 16;
  uint64_t dist = 0;
  for (uint64_t i = trt_splitmix64(id) & (n_slots - 1);; i = (i + 1) & (n_slots - 1), dist++) {
    unsigned char *slot = slots + i * 16;
    uint32_t r = trt_rd32(slot + 8);
    if (r == TRT_EMPTY_ROW) {
      trt_wr64(slot, id);
      trt_wr32(slot + 8, row);
      return TRT_EMPTY_ROW;
    }
    if (trt_rd64(slot) == id) return r;
    if (dist == TRT_ID_MAP_MAX_PROBE) return TRT_ID_MAP_TOO_FAR;
  }
}

towerrt_status trt_id_map_too_far(uint64_t id) {
  return trt_fail(TOWERRT_ERR_LIMIT, "item id %llu would sit more than %u slots past its home slot in the id map (the limit): "
                  "the item ids collide pathologically", (unsigned long long)id, TRT_ID_MAP_MAX_PROBE);
}
