/* towerrt_model_*: map the .twr, validate it, compile the plan. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "family.h"
#include "model.h"
#include "options.h"
#include "status.h"

int towerrt_version(void) { return TOWERRT_VERSION; }

const char *towerrt_version_string(void) {
#define TRT_STR2(x) #x
#define TRT_STR(x) TRT_STR2(x)
  return TRT_STR(TOWERRT_VERSION_MAJOR) "." TRT_STR(TOWERRT_VERSION_MINOR) "." TRT_STR(TOWERRT_VERSION_PATCH);
}

towerrt_status trt_model_reserve(towerrt_model *m, uint64_t bytes, const char *what) {
  if (m->max_load_bytes && (bytes > m->max_load_bytes || m->load_bytes > m->max_load_bytes - bytes))
    return trt_fail(TOWERRT_ERR_LIMIT, "%s: %llu bytes (after %llu already held) exceed options.max_load_bytes (%llu); "
                    "the sizes come from the file's own declarations", what, (unsigned long long)bytes,
                    (unsigned long long)m->load_bytes, (unsigned long long)m->max_load_bytes);
  m->load_bytes += bytes;
  return TOWERRT_OK;
}

static towerrt_status load(towerrt_model *m, const char *path, const towerrt_options *o) {
  m->max_load_bytes = o ? o->max_load_bytes : TOWERRT_DEFAULT_MAX_LOAD_BYTES;
  towerrt_status st = trt_open_file(path, o ? o->load_mode : TOWERRT_LOAD_MAP, m->max_load_bytes, &m->file);
  if (st) return st;
  if (m->file.copied) m->load_bytes = m->file.size;
  int verify = o ? o->verify_checksums != 0 : 1;
  if ((st = trt_container_open(m->file.data, m->file.size, "TWRMODEL", verify, &m->container))) return st;
  const trt_section *meta;
  if ((st = trt_container_require(&m->container, TRT_SEC_META, "META", &meta))) return st;
  if ((st = trt_meta_parse(meta, &m->meta))) return st;
  if ((st = trt_model_parse_tables(m))) return st;
  if ((st = trt_family_find(&m->meta, &m->family))) return st;
  if ((st = m->family->compile(m))) return st;
  m->item_fingerprint = m->family->item_fingerprint(m);
  if ((st = trt_select_kernels(o ? o->isa : NULL, &m->kernels))) return st;
  if (m->family->bind_kernels) m->family->bind_kernels(m);
  return o ? trt_model_place(m, o->pool, o->placement) : TOWERRT_OK;
}

towerrt_status towerrt_model_load(const char *path, const towerrt_options *opts, towerrt_model **out) {
  if (!out) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_model_load: out is NULL");
  *out = NULL;
  if (!path) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_model_load: path is NULL");
  towerrt_status st = trt_options_check(opts);
  if (st) return st;
  towerrt_model *m = calloc(1, sizeof *m);
  if (!m) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  st = load(m, path, opts);
  if (st) {
    trt_fail_context(st, path);
    towerrt_model_free(m);
    return st;
  }
  *out = m;
  return TOWERRT_OK;
}

void towerrt_model_free(towerrt_model *m) {
  if (!m) return;
  trt_model_unplace(m);
  trt_unmap_file(&m->file);
  free(m->fields);
  free(m->tensors);
  free(m->owned);
  if (m->family && m->family->free) m->family->free(m);
  free(m);
}

size_t towerrt_model_id_slots(const towerrt_model *m, towerrt_side side) {
  return !m ? 0 : side == TOWERRT_ITEM ? m->item.id_slots : m->user.id_slots;
}
size_t towerrt_model_dense_width(const towerrt_model *m, towerrt_side side) {
  return !m ? 0 : side == TOWERRT_ITEM ? m->item.dense_width : m->user.dense_width;
}
uint32_t towerrt_model_fe_layer_mask(const towerrt_model *m) { return m ? m->trained_fe_mask : 0; }
uint32_t towerrt_model_fe_layers_available(const towerrt_model *m) { return m ? m->user.fe_present : 0; }
const char *towerrt_model_isa(const towerrt_model *m) { return m ? m->kernels.name : ""; }
void towerrt_model_heads(const towerrt_model *m, uint32_t *user_heads, uint32_t *item_heads, uint32_t *head_dim) {
  if (user_heads) *user_heads = m ? m->heads_user : 0;
  if (item_heads) *item_heads = m ? m->heads_item : 0;
  if (head_dim) *head_dim = m ? m->head_dim : 0;
}
size_t towerrt_model_describe(const towerrt_model *m, char *buf, size_t cap) {
  if (!m) return 0;
  return trt_model_describe_plan(m, buf, cap);
}
