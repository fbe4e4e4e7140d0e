/* FIELDS and TENSORS sections of a .twr: parsed into arrays, every count,
 * offset and size checked against the section and file before use. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "status.h"

#define FIELD_RECORD 96u
#define TENSOR_RECORD 128u

const char *trt_side_name(uint32_t side) { return side == 0 ? "user" : side == 1 ? "item" : "score"; }

static size_t dtype_size(uint32_t dtype) {
  switch (dtype) {
    case TRT_DTYPE_F32: case TRT_DTYPE_S32: return 4;
    case TRT_DTYPE_BF16: case TRT_DTYPE_F16: return 2;
    case TRT_DTYPE_S8: case TRT_DTYPE_U8: return 1;
    default: return 0;
  }
}

/* Copies a fixed-width, NUL-terminated name field; fails if unterminated. */
static int read_name(const unsigned char *p, size_t cap, char *out) {
  const void *nul = memchr(p, 0, cap);
  if (!nul) return 0;
  memcpy(out, p, (size_t)((const unsigned char *)nul - p) + 1);
  return 1;
}

static towerrt_status table_header(const trt_section *s, const char *what, uint32_t record,
                                   uint32_t limit, uint32_t *count) {
  if (s->size < 8) return trt_fail(TOWERRT_ERR_FORMAT, "%s section of %llu bytes has no count", what, (unsigned long long)s->size);
  *count = trt_rd32(s->data);
  if (*count > limit) return trt_fail(TOWERRT_ERR_FORMAT, "%s count %u exceeds the limit %u", what, *count, limit);
  if ((uint64_t)*count * record > s->size - 8)
    return trt_fail(TOWERRT_ERR_FORMAT, "%s section holds %llu bytes, too few for %u records of %u",
                    what, (unsigned long long)s->size, *count, record);
  return TOWERRT_OK;
}

static towerrt_status parse_field(const unsigned char *r, uint32_t i, trt_field *f) {
  if (!read_name(r, 64, f->name) || f->name[0] == '\0')
    return trt_fail(TOWERRT_ERR_FORMAT, "field %u: name is empty or not NUL-terminated", i);
  f->side = trt_rd32(r + 64);
  f->kind = trt_rd32(r + 68);
  f->vocab = trt_rd32(r + 72);
  f->dim = trt_rd32(r + 76);
  f->slots = trt_rd32(r + 80);
  f->combiner = trt_rd32(r + 84);
  f->table_index = (int32_t)trt_rd32(r + 88);
  if (f->side > 1) return trt_fail(TOWERRT_ERR_FORMAT, "field '%s': side %u is not 0 (user) or 1 (item)", f->name, f->side);
  if (f->kind > TRT_FIELD_DENSE) return trt_fail(TOWERRT_ERR_FORMAT, "field '%s': unknown kind %u", f->name, f->kind);
  if (f->dim == 0 || f->dim > TRT_MAX_WIDTH) return trt_fail(TOWERRT_ERR_SHAPE, "field '%s': dim %u out of range 1..%u", f->name, f->dim, TRT_MAX_WIDTH);
  if (f->kind == TRT_FIELD_DENSE) {
    if (f->slots != 0 || f->table_index != -1)
      return trt_fail(TOWERRT_ERR_FORMAT, "dense field '%s' must have 0 slots and table -1", f->name);
    return TOWERRT_OK;
  }
  if (f->vocab == 0) return trt_fail(TOWERRT_ERR_SHAPE, "field '%s': vocabulary of 0 rows", f->name);
  uint32_t want_slots_max = f->kind == TRT_FIELD_SINGLE ? 1 : TRT_MAX_SLOTS;
  if (f->slots == 0 || f->slots > want_slots_max)
    return trt_fail(TOWERRT_ERR_FORMAT, "field '%s': %u id slots (must be 1..%u)", f->name, f->slots, want_slots_max);
  if (f->kind == TRT_FIELD_MULTI && f->combiner > TRT_POOL_MAX)
    return trt_fail(TOWERRT_ERR_UNSUPPORTED, "field '%s': combiner %u (0 mean, 1 sum, 2 max)", f->name, f->combiner);
  return TOWERRT_OK;
}

static towerrt_status parse_fields(towerrt_model *m, const trt_section *s) {
  towerrt_status st = table_header(s, "FIELDS", FIELD_RECORD, TRT_MAX_FIELDS, &m->n_fields);
  if (st) return st;
  m->fields = calloc(m->n_fields ? m->n_fields : 1, sizeof *m->fields);
  if (!m->fields) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for %u fields", m->n_fields);
  for (uint32_t i = 0; i < m->n_fields; i++) {
    st = parse_field(s->data + 8 + (size_t)i * FIELD_RECORD, i, &m->fields[i]);
    if (st) return st;
  }
  return TOWERRT_OK;
}

static towerrt_status parse_tensor(const unsigned char *r, uint32_t i, const trt_section *data, trt_tensor *t) {
  if (!read_name(r, TRT_NAME_CAP, t->name) || t->name[0] == '\0')
    return trt_fail(TOWERRT_ERR_FORMAT, "tensor %u: name is empty or not NUL-terminated", i);
  t->dtype = trt_rd32(r + 80);
  t->ndim = trt_rd32(r + 84);
  for (int d = 0; d < 4; d++) t->dims[d] = trt_rd32(r + 88 + 4 * d);
  t->offset = trt_rd64(r + 104);
  t->nbytes = trt_rd64(r + 112);
  t->scale_index = (int32_t)trt_rd32(r + 120);
  size_t esize = dtype_size(t->dtype);
  if (!esize) return trt_fail(TOWERRT_ERR_UNSUPPORTED, "tensor '%s': unknown dtype %u", t->name, t->dtype);
  if (t->ndim > 4) return trt_fail(TOWERRT_ERR_FORMAT, "tensor '%s': %u dimensions (at most 4)", t->name, t->ndim);
  uint64_t count = 1;
  for (uint32_t d = 0; d < t->ndim; d++) {
    if (t->dims[d] == 0) return trt_fail(TOWERRT_ERR_SHAPE, "tensor '%s': dimension %u is 0", t->name, d);
    if (count > (UINT64_C(1) << 40) / t->dims[d])
      return trt_fail(TOWERRT_ERR_SHAPE, "tensor '%s': absurd shape (more than 2^40 elements)", t->name);
    count *= t->dims[d];
  }
  t->count = count;
  if (t->nbytes != count * esize)
    return trt_fail(TOWERRT_ERR_SHAPE, "tensor '%s': nbytes %llu but its shape and dtype need %llu", t->name,
                    (unsigned long long)t->nbytes, (unsigned long long)(count * esize));
  if (t->offset % 64 != 0)
    return trt_fail(TOWERRT_ERR_FORMAT, "tensor '%s': data offset %llu is not 64-aligned", t->name, (unsigned long long)t->offset);
  if (t->offset > data->size || t->nbytes > data->size - t->offset)
    return trt_fail(TOWERRT_ERR_FORMAT, "tensor '%s': data [%llu, +%llu) runs past the DATA section (%llu bytes)", t->name,
                    (unsigned long long)t->offset, (unsigned long long)t->nbytes, (unsigned long long)data->size);
  t->data = data->data + t->offset;
  return TOWERRT_OK;
}

static int by_offset(const void *a, const void *b) {
  const trt_tensor *x = *(const trt_tensor *const *)a, *y = *(const trt_tensor *const *)b;
  return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static towerrt_status check_no_overlap(towerrt_model *m) {
  if (m->n_tensors < 2) return TOWERRT_OK;
  const trt_tensor **order = malloc(m->n_tensors * sizeof *order);
  if (!order) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  for (uint32_t i = 0; i < m->n_tensors; i++) order[i] = &m->tensors[i];
  qsort(order, m->n_tensors, sizeof *order, by_offset);
  towerrt_status st = TOWERRT_OK;
  for (uint32_t i = 1; i < m->n_tensors && !st; i++)
    if (order[i - 1]->offset + order[i - 1]->nbytes > order[i]->offset)
      st = trt_fail(TOWERRT_ERR_FORMAT, "tensors '%s' and '%s' overlap in DATA", order[i - 1]->name, order[i]->name);
  free(order);
  return st;
}

static towerrt_status check_finite(const trt_tensor *t) {
  if (t->dtype != TRT_DTYPE_F32) return TOWERRT_OK;
  const float *v = t->data;
  for (uint64_t i = 0; i < t->count; i++)
    if (!isfinite(v[i]))
      return trt_fail(TOWERRT_ERR_NONFINITE, "tensor '%s': element %llu is %s", t->name, (unsigned long long)i,
                      isnan(v[i]) ? "NaN" : "Inf");
  return TOWERRT_OK;
}

static towerrt_status parse_tensors(towerrt_model *m, const trt_section *s, const trt_section *data) {
  towerrt_status st = table_header(s, "TENSORS", TENSOR_RECORD, 65536, &m->n_tensors);
  if (st) return st;
  m->tensors = calloc(m->n_tensors ? m->n_tensors : 1, sizeof *m->tensors);
  if (!m->tensors) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for %u tensors", m->n_tensors);
  for (uint32_t i = 0; i < m->n_tensors; i++) {
    st = parse_tensor(s->data + 8 + (size_t)i * TENSOR_RECORD, i, data, &m->tensors[i]);
    if (st) return st;
    if (m->tensors[i].scale_index < -1 || m->tensors[i].scale_index >= (int32_t)m->n_tensors)
      return trt_fail(TOWERRT_ERR_FORMAT, "tensor '%s': scale tensor index %d out of range", m->tensors[i].name,
                      m->tensors[i].scale_index);
  }
  st = check_no_overlap(m);
  for (uint32_t i = 0; i < m->n_tensors && !st; i++) st = check_finite(&m->tensors[i]);
  return st;
}

/* Binds each id field to its embedding table (f32, vocab x dim). */
static towerrt_status bind_tables(towerrt_model *m) {
  for (uint32_t i = 0; i < m->n_fields; i++) {
    trt_field *f = &m->fields[i];
    if (f->kind == TRT_FIELD_DENSE) continue;
    if (f->table_index < 0 || (uint32_t)f->table_index >= m->n_tensors)
      return trt_fail(TOWERRT_ERR_FORMAT, "field '%s': table index %d out of range (%u tensors)", f->name, f->table_index, m->n_tensors);
    const trt_tensor *t = &m->tensors[f->table_index];
    if (t->dtype != TRT_DTYPE_F32)
      return trt_fail(TOWERRT_ERR_UNSUPPORTED, "field '%s': embedding table '%s' has dtype %u (f32 expected)", f->name, t->name, t->dtype);
    if (t->ndim != 2 || t->dims[0] != f->vocab || t->dims[1] != f->dim)
      return trt_fail(TOWERRT_ERR_SHAPE, "field '%s': table '%s' has shape (%u, %u), field declares (%u, %u)", f->name, t->name,
                      t->dims[0], t->ndim == 2 ? t->dims[1] : 0, f->vocab, f->dim);
    f->table = t->data;
  }
  return TOWERRT_OK;
}

towerrt_status trt_model_parse_tables(towerrt_model *m) {
  const trt_section *fields, *tensors, *data;
  towerrt_status st;
  if ((st = trt_container_require(&m->container, TRT_SEC_FIELDS, "FIELDS", &fields))) return st;
  if ((st = trt_container_require(&m->container, TRT_SEC_TENSORS, "TENSORS", &tensors))) return st;
  if ((st = trt_container_require(&m->container, TRT_SEC_DATA, "DATA", &data))) return st;
  if ((st = parse_fields(m, fields))) return st;
  if ((st = parse_tensors(m, tensors, data))) return st;
  return bind_tables(m);
}
