/* IntTower as a model family (family.h): the graph compiler of
 * graph_compile.c, the META checks, the item fingerprint, and the plan as
 * towerrt info prints it. Scoring is the shared path as it stands (MaxSim
 * sums, then the prediction layer): no finish_scores. */
#include <string.h>

#include "family.h"
#include "status.h"

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


static towerrt_status compile(towerrt_model *m) {
  towerrt_status st = trt_model_compile(m);
  return st ? st : check_meta(m);
}

static void describe_heads(const towerrt_model *m, trt_text_buf *o) {
  trt_text_put(o, "  heads: user %u, item %u, head dim %u\n", m->heads_user, m->heads_item, m->head_dim);
  trt_text_put(o, "  FE layers trained:");
  for (uint32_t L = 0; L < TRT_MAX_LAYERS; L++)
    if (m->trained_fe_mask & (1u << L)) trt_text_put(o, " %u", L);
  trt_text_put(o, "  (present:");
  for (uint32_t L = 0; L < TRT_MAX_LAYERS; L++)
    if (m->user.fe_present & (1u << L)) trt_text_put(o, " %u", L);
  trt_text_put(o, ")\n");
}

static const char *weight_precision(const trt_dense_layer *d) {
  if (d->wtype == TRT_DTYPE_BF16) return "  [bf16 weights]";
  if (d->wtype == TRT_DTYPE_S8) return d->x_scale > 0.0f ? "  [s8 weights, u8 input calibrated]" : "  [s8 weights, u8 input per request]";
  return "";
}

static void put_tower(trt_text_buf *o, const towerrt_model *m, uint32_t side) {
  const trt_tower *t = side ? &m->item : &m->user;
  trt_text_put(o, "  %s tower (%s):\n", trt_side_name(side), side ? "per candidate, or offline into the item store" : "once per request");
  trt_text_put(o, "    embed+pool   %u id fields x %u dims (%u id slots)\n", t->n_id_fields, t->emb_dim, t->id_slots);
  trt_text_put(o, "    light-se     %u x %u softmax attention, residual\n", t->n_id_fields, t->n_id_fields);
  trt_text_put(o, "    concat       + %u dense -> %u\n", t->dense_width, t->input_width);
  /* The user tower stops at the last FE layer scored by default. */
  uint32_t last_fe = 31u - (uint32_t)__builtin_clz(m->trained_fe_mask);
  for (uint32_t L = 0; L < t->n_layers; L++) {
    const trt_dense_layer *d = &t->layers[L];
    if (side == 0 && (t->fe_present & (1u << L)))
      trt_text_put(o, "    fe_proj[%u]   %u -> %u heads x %u%s  (%u MACs)%s\n", L, t->fe[L].in, m->heads_user, m->head_dim,
          weight_precision(&t->fe[L]), t->fe[L].in * t->fe[L].out,
          (m->trained_fe_mask & (1u << L)) ? "" : "  [present, not scored by default]");
    if (side == 0 && L >= last_fe) {
      trt_text_put(o, "    dense[%u]     %u -> %u  [not run: no scored FE layer reads it]\n", L, d->in, d->out);
      continue;
    }
    trt_text_put(o, "    dense[%u]     %u -> %u%s%s%s  (%u MACs)\n", L, d->in, d->out, d->folded_bn ? " +BN folded" : "",
        d->relu ? " +ReLU fused" : "", weight_precision(d), d->in * d->out);
  }
  if (side == 1)
    trt_text_put(o, "    fe_proj      %u -> %u heads x %u  (%u MACs)\n", t->fe[0].in, m->heads_item, m->head_dim, t->fe[0].in * t->fe[0].out);
}

static void describe_plan(const towerrt_model *m, trt_text_buf *o) {
  trt_text_put(o, "plan:\n");
  put_tower(o, m, 0);
  put_tower(o, m, 1);
  uint32_t n_fe = (uint32_t)__builtin_popcount(m->trained_fe_mask);
  trt_text_put(o, "  score (per candidate): maxsim %u user heads x %u item heads x %u dims = %u MACs, then %s\n",
               n_fe * m->heads_user, m->heads_item, m->head_dim, n_fe * m->heads_user * m->heads_item * m->head_dim,
               m->output_sigmoid ? "sigmoid(score + bias)" : "score + bias");
}

const trt_family trt_family_inttower = {
  .name = "inttower",
  .compile = compile,
  .item_fingerprint = trt_model_item_fingerprint,
  .describe_heads = describe_heads,
  .describe_plan = describe_plan,
  .quantize_user_tower = 1,
  .batched_user_tower = 1,
  .centred_items = 1,
};
