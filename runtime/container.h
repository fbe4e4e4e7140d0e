/* The common container of .twr and .twi files (docs/format.md): header,
 * section table, and the typed key/value META section. Everything is
 * validated against the mapped length before use. */
#ifndef TOWERRT_CONTAINER_H
#define TOWERRT_CONTAINER_H
#include <stddef.h>
#include <stdint.h>

#include "towerrt.h"

enum {
  TRT_SEC_META = 1,
  TRT_SEC_FIELDS = 2,
  TRT_SEC_TENSORS = 3,
  TRT_SEC_GRAPH = 4,
  TRT_SEC_DATA = 5,
  TRT_SEC_ITEM_HEADS = 8,
  TRT_SEC_ID_MAP = 9,
  TRT_SEC_ITEM_SCALES = 10,
  TRT_SEC_ITEM_COLSUMS = 11,
  TRT_SEC_ROW_ORDER = 12, /* shard stores: each row's position in the build input */
  TRT_SEC_TOMBSTONES = 13, /* delta stores: the ids they remove */
  TRT_SEC_ITEM_CENTRE = 14, /* centred stores: the catalog-mean head added back at scoring */
  TRT_SEC_ROW_CENTRES = 15, /* row-centred stores: each item's mean head, added back at scoring */
  TRT_SEC_KIND_MAX = 16
};
enum { TRT_META_INT = 1, TRT_META_FLOAT = 2, TRT_META_STRING = 3, TRT_META_INT_ARRAY = 4 };

/* Files are little-endian and mapped in place: a big-endian host would need
 * byte swapping on load, which this version does not do. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "towerrt reads its files in place: little-endian hosts only");

#define TRT_FORMAT_VERSION 1u
/* An item store with a centring section (ITEM_CENTRE or ROW_CENTRES) is
 * version 2, and only such a store: readers that predate centring refuse it
 * (TOWERRT_ERR_VERSION) instead of scoring its heads without their centre.
 * Every other file stays version 1 (docs/format.md). */
#define TRT_FORMAT_VERSION_CENTRED 2u
#define TRT_HEADER_SIZE 64u
#define TRT_SECTION_ENTRY_SIZE 32u
#define TRT_MAX_SECTIONS 16u

typedef struct trt_section {
  const unsigned char *data; /* NULL if absent */
  uint64_t offset, size;
  uint32_t crc32;
} trt_section;

typedef struct trt_container {
  const unsigned char *base;
  size_t size;
  uint32_t version;
  trt_section sections[TRT_SEC_KIND_MAX + 1]; /* indexed by kind */
} trt_container;

/* Parses header + table of a mapped file whose magic must be `magic`
 * (8 bytes); checks section CRCs if verify. */
towerrt_status trt_container_open(const unsigned char *base, size_t size, const char *magic,
                                  int verify, trt_container *out);
/* The section of that kind, or a FORMAT error naming it. */
towerrt_status trt_container_require(const trt_container *c, uint32_t kind, const char *name,
                                     const trt_section **out);

/* One META value, pointing into the file. */
typedef struct trt_meta_value {
  uint8_t type;
  int64_t i;
  double f;
  const char *str; /* not NUL-terminated */
  uint32_t len;    /* string bytes or array count */
  const unsigned char *array; /* len x i64, unaligned */
} trt_meta_value;

typedef struct trt_meta {
  const unsigned char *data;
  uint64_t size;
  uint32_t count;
} trt_meta;

/* Validates every entry (bounds, types, unique keys). */
towerrt_status trt_meta_parse(const trt_section *s, trt_meta *out);
/* 1 if found. */
int trt_meta_find(const trt_meta *m, const char *key, trt_meta_value *out);
int64_t trt_meta_array_at(const trt_meta_value *v, uint32_t i);

/* Little-endian readers for unaligned bytes. */
static inline uint32_t trt_rd32(const unsigned char *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t trt_rd64(const unsigned char *p) {
  return (uint64_t)trt_rd32(p) | ((uint64_t)trt_rd32(p + 4) << 32);
}
static inline uint16_t trt_rd16(const unsigned char *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
/* ... and the writer. */
static inline void trt_wr32(unsigned char *p, uint32_t v) {
  for (int k = 0; k < 4; k++) p[k] = (unsigned char)(v >> (8 * k));
}
static inline void trt_wr64(unsigned char *p, uint64_t v) {
  trt_wr32(p, (uint32_t)v);
  trt_wr32(p + 4, (uint32_t)(v >> 32));
}

#endif
