#include "container.h"

#include <string.h>

#include "crc32.h"
#include "status.h"

static const char *section_name(uint32_t kind) {
  switch (kind) {
    case TRT_SEC_META: return "META";
    case TRT_SEC_FIELDS: return "FIELDS";
    case TRT_SEC_TENSORS: return "TENSORS";
    case TRT_SEC_GRAPH: return "GRAPH";
    case TRT_SEC_DATA: return "DATA";
    case TRT_SEC_ITEM_HEADS: return "ITEM_HEADS";
    case TRT_SEC_ID_MAP: return "ID_MAP";
    case TRT_SEC_ITEM_SCALES: return "ITEM_SCALES";
    case TRT_SEC_ITEM_COLSUMS: return "ITEM_COLSUMS";
    case TRT_SEC_ROW_ORDER: return "ROW_ORDER";
    case TRT_SEC_TOMBSTONES: return "TOMBSTONES";
    case TRT_SEC_ITEM_CENTRE: return "ITEM_CENTRE";
    case TRT_SEC_ROW_CENTRES: return "ROW_CENTRES";
    default: return "?";
  }
}

static towerrt_status check_header(const unsigned char *base, size_t size, const char *magic,
                                   uint32_t *n_sections) {
  if (memcmp(base, magic, 8) != 0)
    return trt_fail(TOWERRT_ERR_BAD_MAGIC, "bad magic: expected '%.8s' at offset 0", magic);
  uint32_t version = trt_rd32(base + 8);
  int centred_store = version == TRT_FORMAT_VERSION_CENTRED && !memcmp(magic, "TWRITEMS", 8);
  if (version != TRT_FORMAT_VERSION && !centred_store)
    return trt_fail(TOWERRT_ERR_VERSION, "format version %u is not supported (this build reads %u%s)",
                    version, TRT_FORMAT_VERSION, memcmp(magic, "TWRITEMS", 8) ? "" : ", and 2 for centred item stores");
  uint32_t crc = trt_crc32(0, base, 60);
  if (crc != trt_rd32(base + 60))
    return trt_fail(TOWERRT_ERR_CHECKSUM, "header checksum mismatch (stored 0x%08x, computed 0x%08x)",
                    trt_rd32(base + 60), crc);
  uint64_t file_size = trt_rd64(base + 16);
  if (file_size > size)
    return trt_fail(TOWERRT_ERR_TRUNCATED, "file is %zu bytes but its header declares %llu: truncated",
                    size, (unsigned long long)file_size);
  if (file_size < size)
    return trt_fail(TOWERRT_ERR_FORMAT, "file is %zu bytes but its header declares %llu: trailing bytes",
                    size, (unsigned long long)file_size);
  if (trt_rd32(base + 12) != TRT_HEADER_SIZE || trt_rd64(base + 24) != TRT_HEADER_SIZE)
    return trt_fail(TOWERRT_ERR_FORMAT, "header size %u / section table offset %llu: both must be 64",
                    trt_rd32(base + 12), (unsigned long long)trt_rd64(base + 24));
  if (trt_rd32(base + 36) != 0) return trt_fail(TOWERRT_ERR_FORMAT, "header flags 0x%x: must be 0 in version 1", trt_rd32(base + 36));
  for (int i = 44; i < 60; i++)
    if (base[i]) return trt_fail(TOWERRT_ERR_FORMAT, "header reserved byte %d is not zero", i);
  *n_sections = trt_rd32(base + 32);
  if (*n_sections == 0 || *n_sections > TRT_MAX_SECTIONS)
    return trt_fail(TOWERRT_ERR_FORMAT, "section count %u out of range 1..%u", *n_sections,
                    TRT_MAX_SECTIONS);
  uint64_t table_end = TRT_HEADER_SIZE + (uint64_t)*n_sections * TRT_SECTION_ENTRY_SIZE;
  if (table_end > size)
    return trt_fail(TOWERRT_ERR_TRUNCATED, "section table (%u entries) ends at %llu, past the end (%zu)",
                    *n_sections, (unsigned long long)table_end, size);
  uint32_t table_crc = trt_crc32(0, base + TRT_HEADER_SIZE, (size_t)(table_end - TRT_HEADER_SIZE));
  if (table_crc != trt_rd32(base + 40))
    return trt_fail(TOWERRT_ERR_CHECKSUM, "section table checksum mismatch (stored 0x%08x, computed 0x%08x)",
                    trt_rd32(base + 40), table_crc);
  return TOWERRT_OK;
}

static towerrt_status check_overlap(const trt_container *c) {
  for (uint32_t a = 1; a <= TRT_SEC_KIND_MAX; a++) {
    const trt_section *sa = &c->sections[a];
    if (!sa->data) continue;
    for (uint32_t b = a + 1; b <= TRT_SEC_KIND_MAX; b++) {
      const trt_section *sb = &c->sections[b];
      if (!sb->data) continue;
      if (sa->offset < sb->offset + sb->size && sb->offset < sa->offset + sa->size)
        return trt_fail(TOWERRT_ERR_FORMAT, "sections %s [%llu, +%llu) and %s [%llu, +%llu) overlap",
                        section_name(a), (unsigned long long)sa->offset, (unsigned long long)sa->size,
                        section_name(b), (unsigned long long)sb->offset, (unsigned long long)sb->size);
    }
  }
  return TOWERRT_OK;
}

/* Bytes between the section table and the first section, between
 * sections, and after the last one are zero padding (docs/format.md). No
 * CRC covers them, so they are checked here, always (a few bytes each): a
 * file with a non-zero byte there was not written by a towerrt writer. */
static towerrt_status check_padding(const trt_container *c, uint64_t table_end) {
  uint64_t pos = table_end;
  uint32_t done = 0; /* bit k: section k passed (empty sections may share an offset) */
  for (;;) {
    uint64_t next = c->size;
    uint32_t kind = 0;
    for (uint32_t k = 1; k <= TRT_SEC_KIND_MAX; k++)
      if (c->sections[k].data && !(done >> k & 1u) && c->sections[k].offset >= pos && c->sections[k].offset < next)
        next = c->sections[k].offset, kind = k;
    for (uint64_t i = pos; i < next; i++)
      if (c->base[i])
        return trt_fail(TOWERRT_ERR_FORMAT, "padding byte at offset %llu (before %s) is 0x%02x, not zero: the file was altered",
                        (unsigned long long)i, kind ? section_name(kind) : "the end of the file", c->base[i]);
    if (!kind) return TOWERRT_OK;
    done |= 1u << kind;
    pos = c->sections[kind].offset + c->sections[kind].size;
  }
}

towerrt_status trt_container_open(const unsigned char *base, size_t size, const char *magic,
                                  int verify, trt_container *out) {
  memset(out, 0, sizeof *out);
  out->base = base;
  out->size = size;
  uint32_t n = 0;
  towerrt_status st = check_header(base, size, magic, &n);
  if (st) return st;
  out->version = trt_rd32(base + 8);
  uint64_t table_end = TRT_HEADER_SIZE + (uint64_t)n * TRT_SECTION_ENTRY_SIZE;
  for (uint32_t i = 0; i < n; i++) {
    const unsigned char *e = base + TRT_HEADER_SIZE + (size_t)i * TRT_SECTION_ENTRY_SIZE;
    uint32_t kind = trt_rd32(e);
    uint64_t off = trt_rd64(e + 8), sz = trt_rd64(e + 16);
    if (kind == 0 || kind > TRT_SEC_KIND_MAX)
      return trt_fail(TOWERRT_ERR_FORMAT, "section %u has unknown kind %u", i, kind);
    if (trt_rd64(e + 24) != 0) return trt_fail(TOWERRT_ERR_FORMAT, "section %s: reserved field is not zero", section_name(kind));
    if (out->sections[kind].data)
      return trt_fail(TOWERRT_ERR_FORMAT, "section kind %s appears twice", section_name(kind));
    if (off % 64 != 0 || off < table_end)
      return trt_fail(TOWERRT_ERR_FORMAT, "section %s offset %llu is not 64-aligned past the table",
                      section_name(kind), (unsigned long long)off);
    if (off > size || sz > size - off)
      return trt_fail(TOWERRT_ERR_FORMAT, "section %s [%llu, +%llu) runs past the end of the file (%zu bytes)",
                      section_name(kind), (unsigned long long)off, (unsigned long long)sz, size);
    trt_section *s = &out->sections[kind];
    s->data = base + off;
    s->offset = off;
    s->size = sz;
    s->crc32 = trt_rd32(e + 4);
  }
  st = check_overlap(out);
  if (!st) st = check_padding(out, table_end);
  if (st) return st;
  /* version 2 exactly when a centring section is present (container.h) */
  int centred = out->sections[TRT_SEC_ITEM_CENTRE].data || out->sections[TRT_SEC_ROW_CENTRES].data;
  if (centred != (out->version == TRT_FORMAT_VERSION_CENTRED))
    return trt_fail(TOWERRT_ERR_FORMAT, centred ? "a centring section (ITEM_CENTRE / ROW_CENTRES) in a version %u file: centred item stores are "
                                                  "version 2, so that older readers refuse them"
                                                : "format version %u without a centring section (only centred item stores are version 2)",
                    out->version);
  for (uint32_t k = 1; verify && k <= TRT_SEC_KIND_MAX; k++) {
    const trt_section *s = &out->sections[k];
    if (!s->data) continue;
    uint32_t crc = trt_crc32(0, s->data, (size_t)s->size);
    if (crc != s->crc32)
      return trt_fail(TOWERRT_ERR_CHECKSUM, "section %s checksum mismatch (stored 0x%08x, computed 0x%08x): corrupt file",
                      section_name(k), s->crc32, crc);
  }
  return TOWERRT_OK;
}

towerrt_status trt_container_require(const trt_container *c, uint32_t kind, const char *name,
                                     const trt_section **out) {
  if (kind > TRT_SEC_KIND_MAX || !c->sections[kind].data)
    return trt_fail(TOWERRT_ERR_FORMAT, "required section %s is missing", name);
  *out = &c->sections[kind];
  return TOWERRT_OK;
}

/* Reads one META entry at *pos; advances pos. */
static towerrt_status meta_entry(const unsigned char *d, uint64_t size, uint64_t *pos, uint32_t index,
                                 const unsigned char **key, uint16_t *key_len, trt_meta_value *v) {
  uint64_t p = *pos;
  if (size - p < 2) return trt_fail(TOWERRT_ERR_FORMAT, "META entry %u: key length past the section end", index);
  *key_len = trt_rd16(d + p);
  p += 2;
  if (*key_len == 0 || size - p < (uint64_t)*key_len + 1)
    return trt_fail(TOWERRT_ERR_FORMAT, "META entry %u: key of %u bytes is empty or runs past the section", index, *key_len);
  *key = d + p;
  p += *key_len;
  memset(v, 0, sizeof *v);
  v->type = d[p++];
  switch (v->type) {
    case TRT_META_INT:
    case TRT_META_FLOAT:
      if (size - p < 8) return trt_fail(TOWERRT_ERR_FORMAT, "META '%.*s': value past the section end", *key_len, (const char *)*key);
      v->i = (int64_t)trt_rd64(d + p);
      {
        uint64_t bits = trt_rd64(d + p);
        memcpy(&v->f, &bits, 8);
      }
      p += 8;
      break;
    case TRT_META_STRING:
    case TRT_META_INT_ARRAY: {
      if (size - p < 4) return trt_fail(TOWERRT_ERR_FORMAT, "META '%.*s': length past the section end", *key_len, (const char *)*key);
      v->len = trt_rd32(d + p);
      p += 4;
      uint64_t bytes = v->type == TRT_META_STRING ? v->len : (uint64_t)v->len * 8;
      if (size - p < bytes)
        return trt_fail(TOWERRT_ERR_FORMAT, "META '%.*s': %u-element value runs past the section end", *key_len, (const char *)*key, v->len);
      v->str = (const char *)(d + p);
      v->array = d + p;
      p += bytes;
      break;
    }
    default:
      return trt_fail(TOWERRT_ERR_FORMAT, "META '%.*s': unknown value type %u", *key_len, (const char *)*key, v->type);
  }
  *pos = p;
  return TOWERRT_OK;
}

towerrt_status trt_meta_parse(const trt_section *s, trt_meta *out) {
  if (s->size < 4) return trt_fail(TOWERRT_ERR_FORMAT, "META section of %llu bytes has no count", (unsigned long long)s->size);
  out->data = s->data;
  out->size = s->size;
  out->count = trt_rd32(s->data);
  if (out->count > 4096) return trt_fail(TOWERRT_ERR_FORMAT, "META count %u exceeds 4096", out->count);
  uint64_t pos = 4;
  for (uint32_t i = 0; i < out->count; i++) {
    /* initialised: GCC -O3 cannot see meta_entry sets them on success */
    const unsigned char *key = NULL;
    uint16_t key_len = 0;
    trt_meta_value v;
    towerrt_status st = meta_entry(s->data, s->size, &pos, i, &key, &key_len, &v);
    if (st) return st;
    /* Unique keys: a duplicate would make lookups ambiguous. */
    uint64_t q = 4;
    for (uint32_t j = 0; j < i; j++) {
      const unsigned char *k2 = NULL;
      uint16_t l2 = 0;
      trt_meta_value v2;
      meta_entry(s->data, s->size, &q, j, &k2, &l2, &v2);
      if (l2 == key_len && memcmp(k2, key, key_len) == 0)
        return trt_fail(TOWERRT_ERR_FORMAT, "META key '%.*s' appears twice", key_len, (const char *)key);
    }
  }
  return TOWERRT_OK;
}

int trt_meta_find(const trt_meta *m, const char *key, trt_meta_value *out) {
  size_t want = strlen(key);
  uint64_t pos = 4;
  for (uint32_t i = 0; i < m->count; i++) {
    const unsigned char *k = NULL;
    uint16_t l = 0;
    if (meta_entry(m->data, m->size, &pos, i, &k, &l, out) != TOWERRT_OK) return 0;
    if (l == want && memcmp(k, key, want) == 0) return 1;
  }
  return 0;
}

int64_t trt_meta_array_at(const trt_meta_value *v, uint32_t i) {
  return (int64_t)trt_rd64(v->array + (size_t)i * 8);
}
