/* towerrt_model_*: map the .twr, validate it, compile the plan. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch_family.h"
#include "model.h"
#include "status.h"

int towerrt_version(void) { return TOWERRT_VERSION; }

const char *towerrt_version_string(void) {
#define TRT_STR2(x) #x
#define TRT_STR(x) TRT_STR2(x)
  return TRT_STR(TOWERRT_VERSION_MAJOR) "." TRT_STR(TOWERRT_VERSION_MINOR) "." TRT_STR(TOWERRT_VERSION_PATCH);
}

void towerrt_options_init(towerrt_options *o) {
  if (!o) return;
  memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
  o->verify_checksums = 1;
  o->max_k = 100000;
  o->max_topn = 1024;
  o->pin_threads = 1;
  o->threads = 1;
  o->numa_node = -1;
}

static int meta_string_is(const trt_meta *meta, const char *key, const char *want, int *found) {
  trt_meta_value v;
  *found = trt_meta_find(meta, key, &v) && v.type == TRT_META_STRING;
  return *found && v.len == strlen(want) && memcmp(v.str, want, v.len) == 0;
}

/* `quantization` names the user tower's weight dtype (none = f32), and
 * every user layer must have it: a mixed file is not one we wrote. */
static towerrt_status check_quantization(const towerrt_model *m) {
  static const char *const names[3] = {"none", "bf16", "int8"};
  static const uint32_t dtypes[3] = {TRT_DTYPE_F32, TRT_DTYPE_BF16, TRT_DTYPE_S8};
  int found, which = 0;
  while (which < 3 && !meta_string_is(&m->meta, "quantization", names[which], &found)) which++;
  if (!found) which = 0;
  else if (which == 3) return trt_fail(TOWERRT_ERR_UNSUPPORTED, "META quantization must be 'none', 'bf16' or 'int8'");
  const trt_tower *t = &m->user;
  for (uint32_t L = 0; L < TRT_MAX_LAYERS; L++) {
    const trt_dense_layer *d = L < t->n_layers ? &t->layers[L] : NULL, *fe = (t->fe_present >> L) & 1u ? &t->fe[L] : NULL;
    for (int j = 0; j < 2; j++) {
      const trt_dense_layer *x = j ? fe : d;
      if (x && x->wtype != dtypes[which])
        return trt_fail(TOWERRT_ERR_FORMAT, "user %s %u: weight '%s' has dtype %u but META quantization is '%s'", j ? "FE projection" : "layer",
                        L, m->tensors[x->src_weight].name, x->wtype, names[which]);
    }
  }
  return TOWERRT_OK;
}

/* META must agree with what the graph says. */
static towerrt_status check_meta(towerrt_model *m) {
  int found;
  if (!meta_string_is(&m->meta, "general.architecture", "inttower", &found))
    return trt_fail(found ? TOWERRT_ERR_UNSUPPORTED : TOWERRT_ERR_FORMAT,
                    found ? "general.architecture is not 'inttower' (the only one this build serves)"
                          : "META lacks general.architecture");
  m->output_sigmoid = 1;
  if (!meta_string_is(&m->meta, "inttower.output", "sigmoid", &found) && found) {
    if (!meta_string_is(&m->meta, "inttower.output", "identity", &found))
      return trt_fail(TOWERRT_ERR_UNSUPPORTED, "inttower.output must be 'sigmoid' or 'identity'");
    m->output_sigmoid = 0;
  }
  towerrt_status st = check_quantization(m);
  if (st) return st;
  trt_meta_value v;
  if (trt_meta_find(&m->meta, "inttower.fe_layers", &v)) {
    uint32_t mask = 0;
    if (v.type != TRT_META_INT_ARRAY) return trt_fail(TOWERRT_ERR_FORMAT, "inttower.fe_layers is not an int array");
    for (uint32_t i = 0; i < v.len; i++) {
      int64_t L = trt_meta_array_at(&v, i);
      if (L < 0 || L >= TRT_MAX_LAYERS) return trt_fail(TOWERRT_ERR_FORMAT, "inttower.fe_layers[%u] = %lld out of range", i, (long long)L);
      mask |= 1u << L;
    }
    if (mask != m->trained_fe_mask)
      return trt_fail(TOWERRT_ERR_FORMAT, "inttower.fe_layers (mask 0x%x) disagrees with the graph's MAXSIM nodes (mask 0x%x)", mask, m->trained_fe_mask);
  }
  static const char *const keys[3] = {"inttower.user_heads", "inttower.item_heads", "inttower.head_dim"};
  const uint32_t have[3] = {m->heads_user, m->heads_item, m->head_dim};
  for (int i = 0; i < 3; i++)
    if (trt_meta_find(&m->meta, keys[i], &v) && (v.type != TRT_META_INT || v.i != (int64_t)have[i]))
      return trt_fail(TOWERRT_ERR_SHAPE, "%s = %lld, but the FE projections give %u", keys[i], (long long)v.i, have[i]);
  return TOWERRT_OK;
}

static towerrt_status load(towerrt_model *m, const char *path, const towerrt_options *o) {
  towerrt_status st = trt_map_file(path, &m->file);
  if (st) return st;
  int verify = o ? o->verify_checksums != 0 : 1;
  if ((st = trt_container_open(m->file.data, m->file.size, "TWRMODEL", verify, &m->container))) return st;
  const trt_section *meta;
  if ((st = trt_container_require(&m->container, TRT_SEC_META, "META", &meta))) return st;
  if ((st = trt_meta_parse(meta, &m->meta))) return st;
  if ((st = trt_model_parse_tables(m))) return st;
  /* Two-tower family hook (dssm, dat: runtime/arch_family.h): its own graph
   * compiler and META checks, and a field concatenation in the Light-SE
   * slot of its kernel table. */
  int family = trt_arch_is_family(&m->meta);
  if ((st = family ? trt_arch_compile(m) : trt_model_compile(m))) return st;
  if (!family && (st = check_meta(m))) return st;
  m->item_fingerprint = family ? trt_arch_item_fingerprint(m) : trt_model_item_fingerprint(m);
  if ((st = trt_select_kernels(o ? o->isa : NULL, &m->kernels))) return st;
  if (family) trt_arch_bind_kernels(m);
  return o ? trt_model_place(m, o->pool, o->placement) : TOWERRT_OK;
}

towerrt_status towerrt_model_load(const char *path, const towerrt_options *opts, towerrt_model **out) {
  if (!out) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_model_load: out is NULL");
  *out = NULL;
  if (!path) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_model_load: path is NULL");
  if (opts && opts->struct_size != sizeof *opts)
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "options.struct_size is %u, expected %zu: call towerrt_options_init", opts->struct_size, sizeof *opts);
  towerrt_model *m = calloc(1, sizeof *m);
  if (!m) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  towerrt_status st = load(m, path, opts);
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
  trt_arch_free(m); /* two-tower family hook */
  free(m);
}

size_t towerrt_model_id_slots(const towerrt_model *m, towerrt_side side) {
  return !m ? 0 : side == TOWERRT_ITEM ? m->item.id_slots : m->user.id_slots;
}
size_t towerrt_model_dense_width(const towerrt_model *m, towerrt_side side) {
  return !m ? 0 : side == TOWERRT_ITEM ? m->item.dense_width : m->user.dense_width;
}
uint32_t towerrt_model_fe_layer_mask(const towerrt_model *m) { return m ? m->trained_fe_mask : 0; }
const char *towerrt_model_isa(const towerrt_model *m) { return m ? m->kernels.name : ""; }
size_t towerrt_model_describe(const towerrt_model *m, char *buf, size_t cap) {
  if (!m) return 0;
  return trt_model_describe_plan(m, buf, cap);
}
