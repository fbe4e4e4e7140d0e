/* Graph compiler: checks that the GRAPH section is the IntTower pattern
 * (docs/format.md), binds tensors, folds BatchNorm into the Linear before
 * it, and fuses bias + ReLU, giving each tower a list of dense layers. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "status.h"

#define MAX_VALUES 1024

enum { V_NONE = 0, V_EMBED, V_LIGHTSE, V_X, V_USER_FE, V_ITEM_FE, V_SCORE, V_PRED };

typedef trt_graph_node node;

typedef struct value_info {
  int kind;
  uint32_t side, layer; /* V_X: it is the input of layer `layer`; V_USER_FE: its layer */
} value_info;

typedef struct compile_state {
  towerrt_model *m;
  value_info values[MAX_VALUES];
  int have_embed[2], have_lightse[2], have_concat[2], have_predict;
  int32_t x_value[2][TRT_MAX_LAYERS + 1];
  int32_t item_fe_input;
  uint32_t maxsim_mask;
  /* BN tensors of each layer, folded once the graph is known good. */
  int32_t bn[2][TRT_MAX_LAYERS][4];
  float bn_eps[2][TRT_MAX_LAYERS];
  int32_t linear_w[2][TRT_MAX_LAYERS], linear_b[2][TRT_MAX_LAYERS];
  int32_t fe_w[2][TRT_MAX_LAYERS], fe_b[2][TRT_MAX_LAYERS];
} compile_state;

/* The f32 tensor at index `ti` with shape (d0) or (d0, d1); d1 = 0 for 1-D. */
static towerrt_status want_tensor(const towerrt_model *m, uint32_t ni, int32_t ti, const char *role,
                                  uint32_t d0, uint32_t d1) {
  if (ti < 0 || (uint32_t)ti >= m->n_tensors)
    return trt_fail(TOWERRT_ERR_FORMAT, "graph node %u: %s tensor index %d out of range (%u tensors)", ni, role, ti, m->n_tensors);
  const trt_tensor *t = &m->tensors[ti];
  if (t->dtype != TRT_DTYPE_F32)
    return trt_fail(TOWERRT_ERR_UNSUPPORTED, "tensor '%s' (%s): dtype %u, this build runs f32 weights", t->name, role, t->dtype);
  int ok = d1 ? (t->ndim == 2 && t->dims[0] == d0 && t->dims[1] == d1)
              : (t->count == d0 && t->ndim <= 1);
  if (!ok)
    return trt_fail(TOWERRT_ERR_SHAPE, "tensor '%s' (%s): shape (%u, %u) with %u dims, expected (%u%s%u)", t->name, role,
                    t->dims[0], t->dims[1], t->ndim, d0, d1 ? ", " : "", d1 ? d1 : 0);
  return TOWERRT_OK;
}

/* A LINEAR / FE_PROJ weight: f32 on both sides; bf16, or s8 with a scale
 * tensor of `d0` positive f32 per-output-channel scales, in the user tower
 * of a quantized model (docs/quantization.md). The item tower runs offline
 * (and defines the item store's fingerprint), so it stays f32. */
static towerrt_status want_weight(const towerrt_model *m, uint32_t ni, int32_t ti, const char *role, uint32_t side,
                                  uint32_t d0, uint32_t d1) {
  if (ti < 0 || (uint32_t)ti >= m->n_tensors)
    return trt_fail(TOWERRT_ERR_FORMAT, "graph node %u: %s tensor index %d out of range (%u tensors)", ni, role, ti, m->n_tensors);
  const trt_tensor *t = &m->tensors[ti];
  if (t->dtype == TRT_DTYPE_F32) return want_tensor(m, ni, ti, role, d0, d1);
  if (t->dtype != TRT_DTYPE_BF16 && t->dtype != TRT_DTYPE_S8)
    return trt_fail(TOWERRT_ERR_UNSUPPORTED, "tensor '%s' (%s): dtype %u, weights are f32, bf16 or s8", t->name, role, t->dtype);
  if (side != TOWERRT_USER)
    return trt_fail(TOWERRT_ERR_UNSUPPORTED, "tensor '%s' (%s): item tower weights must be f32 (only the user tower is quantized)", t->name, role);
  if (t->ndim != 2 || t->dims[0] != d0 || t->dims[1] != d1)
    return trt_fail(TOWERRT_ERR_SHAPE, "tensor '%s' (%s): shape (%u, %u) with %u dims, expected (%u, %u)", t->name, role, t->dims[0],
                    t->dims[1], t->ndim, d0, d1);
  if (t->dtype == TRT_DTYPE_BF16) {
    if (t->scale_index >= 0) return trt_fail(TOWERRT_ERR_FORMAT, "tensor '%s' (%s): a bf16 weight has no scale tensor", t->name, role);
    return TOWERRT_OK;
  }
  if (d1 > 65535) return trt_fail(TOWERRT_ERR_LIMIT, "tensor '%s' (%s): s8 weights with %u inputs (at most 65535: int32 sums)", t->name, role, d1);
  if (t->scale_index < 0) return trt_fail(TOWERRT_ERR_FORMAT, "tensor '%s' (%s): an s8 weight needs a scale tensor", t->name, role);
  towerrt_status st = want_tensor(m, ni, t->scale_index, "per-channel weight scales", d0, 0);
  if (st) return st;
  const float *sc = m->tensors[t->scale_index].data;
  for (uint32_t o = 0; o < d0; o++)
    if (!(sc[o] > 0.0f)) return trt_fail(TOWERRT_ERR_FORMAT, "tensor '%s': weight scale %u is %g (scales must be > 0)", m->tensors[t->scale_index].name, o, (double)sc[o]);
  return TOWERRT_OK;
}

/* Flag bit 2 of a LINEAR / FE_PROJ with s8 weights: t[2] is the f32 pair
 * (scale, zero point) that quantizes the layer's input, calibrated on real
 * requests; without it the input is quantized per request from its range. */
#define TRT_FLAG_ACT_QUANT 4u
static towerrt_status quant_input(const towerrt_model *m, uint32_t ni, const node *n, uint32_t wtype, trt_dense_layer *d) {
  d->wtype = wtype;
  d->x_scale = 0.0f;
  d->x_zp = 0;
  if (!(n->flags & TRT_FLAG_ACT_QUANT)) return TOWERRT_OK;
  if (wtype != TRT_DTYPE_S8)
    return trt_fail(TOWERRT_ERR_FORMAT, "graph node %u: input quantization (flag 4) needs s8 weights", ni);
  towerrt_status st = want_tensor(m, ni, n->t[2], "input quantization (scale, zero point)", 2, 0);
  if (st) return st;
  const float *q = m->tensors[n->t[2]].data;
  if (!(q[0] > 0.0f) || q[1] < 0.0f || q[1] > 255.0f || q[1] != (float)(int)q[1])
    return trt_fail(TOWERRT_ERR_FORMAT, "tensor '%s': input scale %g and zero point %g (need scale > 0, integer zero point 0..255)",
                    m->tensors[n->t[2]].name, (double)q[0], (double)q[1]);
  d->x_scale = q[0];
  d->x_zp = (int32_t)q[1];
  return TOWERRT_OK;
}

static towerrt_status want_input(compile_state *cs, uint32_t ni, int32_t v, int kind, uint32_t side, const char *what) {
  if (v < 0 || v >= MAX_VALUES || cs->values[v].kind != kind || cs->values[v].side != side)
    return trt_fail(TOWERRT_ERR_FORMAT, "graph node %u: input value %d is not the %s %s", ni, v, trt_side_name(side), what);
  return TOWERRT_OK;
}

static towerrt_status define(compile_state *cs, uint32_t ni, int32_t v, int kind, uint32_t side, uint32_t layer) {
  if (v < 0 || v >= MAX_VALUES) return trt_fail(TOWERRT_ERR_FORMAT, "graph node %u: output value id %d out of range 0..%d", ni, v, MAX_VALUES - 1);
  if (cs->values[v].kind != V_NONE) return trt_fail(TOWERRT_ERR_FORMAT, "graph node %u: value %d is defined twice", ni, v);
  cs->values[v] = (value_info){kind, side, layer};
  return TOWERRT_OK;
}

static uint32_t current_width(const trt_tower *t) {
  return t->n_layers ? t->layers[t->n_layers - 1].out : t->input_width;
}

static towerrt_status node_lightse(compile_state *cs, uint32_t ni, const node *n) {
  trt_tower *t = n->side ? &cs->m->item : &cs->m->user;
  if (cs->have_lightse[n->side]) return trt_fail(TOWERRT_ERR_FORMAT, "graph node %u: a second %s LIGHTSE", ni, trt_side_name(n->side));
  towerrt_status st = want_input(cs, ni, n->in[0], V_EMBED, n->side, "EMBED output");
  if (st) return st;
  if ((uint32_t)n->attr[0] != t->n_id_fields || (uint32_t)n->attr[1] != t->emb_dim)
    return trt_fail(TOWERRT_ERR_SHAPE, "%s LIGHTSE: attrs (%d fields, %d dims) but the %s side has %u id fields of %u dims",
                    trt_side_name(n->side), n->attr[0], n->attr[1], trt_side_name(n->side), t->n_id_fields, t->emb_dim);
  if ((st = want_tensor(cs->m, ni, n->t[0], "Light-SE weight", t->n_id_fields, t->n_id_fields))) return st;
  if (n->t[1] >= 0 && (st = want_tensor(cs->m, ni, n->t[1], "Light-SE bias", t->n_id_fields, 0))) return st;
  t->lightse_w = cs->m->tensors[n->t[0]].data;
  t->lightse_b = n->t[1] >= 0 ? cs->m->tensors[n->t[1]].data : NULL;
  cs->have_lightse[n->side] = 1;
  return define(cs, ni, n->out, V_LIGHTSE, n->side, 0);
}

static towerrt_status node_concat(compile_state *cs, uint32_t ni, const node *n) {
  trt_tower *t = n->side ? &cs->m->item : &cs->m->user;
  if (cs->have_concat[n->side]) return trt_fail(TOWERRT_ERR_FORMAT, "graph node %u: a second %s CONCAT_DENSE", ni, trt_side_name(n->side));
  towerrt_status st = want_input(cs, ni, n->in[0], V_LIGHTSE, n->side, "LIGHTSE output");
  if (st) return st;
  if ((uint32_t)n->attr[0] != t->input_width)
    return trt_fail(TOWERRT_ERR_SHAPE, "%s CONCAT_DENSE: width %d, fields give %u", trt_side_name(n->side), n->attr[0], t->input_width);
  cs->have_concat[n->side] = 1;
  cs->x_value[n->side][0] = n->out;
  return define(cs, ni, n->out, V_X, n->side, 0);
}

static towerrt_status node_linear(compile_state *cs, uint32_t ni, const node *n) {
  trt_tower *t = n->side ? &cs->m->item : &cs->m->user;
  uint32_t L = t->n_layers;
  if (n->layer != (int32_t)L || L >= TRT_MAX_LAYERS)
    return trt_fail(TOWERRT_ERR_FORMAT, "%s LINEAR node %u: layer %d, expected %u (at most %u layers)", trt_side_name(n->side), ni, n->layer, L, TRT_MAX_LAYERS);
  towerrt_status st = want_input(cs, ni, n->in[0], V_X, n->side, "tower activation");
  if (st) return st;
  if (n->in[0] != cs->x_value[n->side][L])
    return trt_fail(TOWERRT_ERR_FORMAT, "%s LINEAR layer %u: input value %d is not the output of layer %u", trt_side_name(n->side), L, n->in[0], L);
  uint32_t in = current_width(t), out = (uint32_t)n->attr[1];
  if ((uint32_t)n->attr[0] != in || n->attr[1] <= 0 || out > TRT_MAX_WIDTH)
    return trt_fail(TOWERRT_ERR_SHAPE, "%s LINEAR layer %u: attrs (in %d, out %d), the previous width is %u", trt_side_name(n->side), L, n->attr[0], n->attr[1], in);
  if ((st = want_weight(cs->m, ni, n->t[0], "Linear weight", n->side, out, in))) return st;
  if (n->t[1] >= 0 && (st = want_tensor(cs->m, ni, n->t[1], "Linear bias", out, 0))) return st;
  uint32_t wtype = cs->m->tensors[n->t[0]].dtype;
  if (wtype != TRT_DTYPE_F32 && (n->flags & 2u))
    return trt_fail(TOWERRT_ERR_FORMAT, "user LINEAR layer %u: quantized weights must have BatchNorm folded in (flag 2 set)", L);
  for (int i = 0; i < 4; i++) cs->bn[n->side][L][i] = -1;
  if (n->flags & 2u) {
    static const char *const roles[4] = {"BatchNorm weight", "BatchNorm bias", "BatchNorm running_mean", "BatchNorm running_var"};
    for (int i = 0; i < 4; i++) {
      if ((st = want_tensor(cs->m, ni, n->t[2 + i], roles[i], out, 0))) return st;
      cs->bn[n->side][L][i] = n->t[2 + i];
    }
    if (!(n->eps > 0.0f) || !isfinite(n->eps))
      return trt_fail(TOWERRT_ERR_FORMAT, "%s LINEAR layer %u: BatchNorm eps %g must be positive", trt_side_name(n->side), L, (double)n->eps);
    const float *var = cs->m->tensors[n->t[5]].data;
    for (uint32_t o = 0; o < out; o++)
      if (var[o] < 0.0f) return trt_fail(TOWERRT_ERR_FORMAT, "tensor '%s': negative running_var at %u", cs->m->tensors[n->t[5]].name, o);
  }
  cs->bn_eps[n->side][L] = n->eps;
  cs->linear_w[n->side][L] = n->t[0];
  cs->linear_b[n->side][L] = n->t[1];
  t->layers[L] = (trt_dense_layer){.in = in, .out = out, .relu = (n->flags & 1u) != 0, .src_weight = n->t[0],
                                   .folded_bn = (n->flags & 2u) != 0};
  if ((st = quant_input(cs->m, ni, n, wtype, &t->layers[L]))) return st;
  t->n_layers = L + 1;
  cs->x_value[n->side][L + 1] = n->out;
  return define(cs, ni, n->out, V_X, n->side, L + 1);
}

static towerrt_status node_fe(compile_state *cs, uint32_t ni, const node *n) {
  towerrt_model *m = cs->m;
  trt_tower *t = n->side ? &m->item : &m->user;
  towerrt_status st = want_input(cs, ni, n->in[0], V_X, n->side, "tower activation");
  if (st) return st;
  uint32_t heads = (uint32_t)n->attr[0], p = (uint32_t)n->attr[1];
  if (n->attr[0] <= 0 || n->attr[1] <= 0 || (uint64_t)heads * p > TRT_MAX_WIDTH)
    return trt_fail(TOWERRT_ERR_SHAPE, "%s FE_PROJ: %d heads x %d dims out of range", trt_side_name(n->side), n->attr[0], n->attr[1]);
  uint32_t *mh = n->side ? &m->heads_item : &m->heads_user;
  if ((*mh && *mh != heads) || (m->head_dim && m->head_dim != p))
    return trt_fail(TOWERRT_ERR_SHAPE, "%s FE_PROJ: %u heads x %u dims, another FE_PROJ has %u x %u", trt_side_name(n->side), heads, p, *mh, m->head_dim);
  *mh = heads;
  m->head_dim = p;
  uint32_t src_layer = cs->values[n->in[0]].layer; /* value = input of this layer */
  uint32_t slot;
  if (n->side == TOWERRT_USER) {
    if (n->layer < 0 || n->layer >= TRT_MAX_LAYERS || (uint32_t)n->layer != src_layer)
      return trt_fail(TOWERRT_ERR_FORMAT, "user FE_PROJ layer %d must project the input of user layer %d (got the input of layer %u)", n->layer, n->layer, src_layer);
    slot = (uint32_t)n->layer;
  } else {
    if (t->fe_present) return trt_fail(TOWERRT_ERR_FORMAT, "item side has more than one FE_PROJ");
    cs->item_fe_input = n->in[0];
    slot = 0;
  }
  if (t->fe_present & (1u << slot)) return trt_fail(TOWERRT_ERR_FORMAT, "user FE_PROJ for layer %u appears twice", slot);
  uint32_t in = src_layer == 0 ? t->input_width : t->layers[src_layer - 1].out;
  if ((st = want_weight(m, ni, n->t[0], "FE weight", n->side, heads * p, in))) return st;
  if (n->t[1] >= 0 && (st = want_tensor(m, ni, n->t[1], "FE bias", heads * p, 0))) return st;
  t->fe[slot] = (trt_dense_layer){.in = in, .out = heads * p, .relu = 0, .src_weight = n->t[0],
                                  .b = n->t[1] >= 0 ? m->tensors[n->t[1]].data : NULL};
  if ((st = quant_input(m, ni, n, m->tensors[n->t[0]].dtype, &t->fe[slot]))) return st;
  t->fe_present |= 1u << slot;
  return define(cs, ni, n->out, n->side ? V_ITEM_FE : V_USER_FE, n->side, slot);
}

static towerrt_status node_score(compile_state *cs, uint32_t ni, const node *n) {
  towerrt_status st;
  int ok0, ok1;
  switch (n->op) {
    case TRT_OP_MAXSIM:
      if ((st = want_input(cs, ni, n->in[0], V_USER_FE, TOWERRT_USER, "FE_PROJ output"))) return st;
      if ((st = want_input(cs, ni, n->in[1], V_ITEM_FE, TOWERRT_ITEM, "FE_PROJ output"))) return st;
      if (cs->maxsim_mask & (1u << cs->values[n->in[0]].layer))
        return trt_fail(TOWERRT_ERR_FORMAT, "two MAXSIM nodes score user FE layer %u", cs->values[n->in[0]].layer);
      cs->maxsim_mask |= 1u << cs->values[n->in[0]].layer;
      return define(cs, ni, n->out, V_SCORE, 2, 0);
    case TRT_OP_SUM:
      ok0 = n->in[0] >= 0 && n->in[0] < MAX_VALUES && cs->values[n->in[0]].kind == V_SCORE;
      ok1 = n->in[1] >= 0 && n->in[1] < MAX_VALUES && cs->values[n->in[1]].kind == V_SCORE;
      if (!ok0 || !ok1) return trt_fail(TOWERRT_ERR_FORMAT, "graph node %u: SUM inputs %d, %d must be MAXSIM or SUM values", ni, n->in[0], n->in[1]);
      return define(cs, ni, n->out, V_SCORE, 2, 0);
    default: /* PREDICT */
      if ((st = want_input(cs, ni, n->in[0], V_SCORE, 2, "score (MAXSIM or SUM output)"))) return st;
      if (cs->have_predict) return trt_fail(TOWERRT_ERR_FORMAT, "graph has two PREDICT nodes");
      if (n->t[0] >= 0) {
        if ((st = want_tensor(cs->m, ni, n->t[0], "output bias", 1, 0))) return st;
        cs->m->out_bias = *(const float *)cs->m->tensors[n->t[0]].data;
      }
      cs->have_predict = 1;
      return define(cs, ni, n->out, V_PRED, 2, 0);
  }
}

static towerrt_status compile_node(compile_state *cs, uint32_t ni, const node *n) {
  if (n->op >= TRT_OP_EMBED && n->op <= TRT_OP_FE_PROJ && n->side > 1)
    return trt_fail(TOWERRT_ERR_FORMAT, "graph node %u (op %u): side %u is not user or item", ni, n->op, n->side);
  switch (n->op) {
    case TRT_OP_EMBED:
      if (cs->have_embed[n->side]) return trt_fail(TOWERRT_ERR_FORMAT, "two %s EMBED nodes", trt_side_name(n->side));
      cs->have_embed[n->side] = 1;
      return define(cs, ni, n->out, V_EMBED, n->side, 0);
    case TRT_OP_LIGHTSE: return node_lightse(cs, ni, n);
    case TRT_OP_CONCAT_DENSE: return node_concat(cs, ni, n);
    case TRT_OP_LINEAR: return node_linear(cs, ni, n);
    case TRT_OP_FE_PROJ: return node_fe(cs, ni, n);
    case TRT_OP_MAXSIM: case TRT_OP_SUM: case TRT_OP_PREDICT: return node_score(cs, ni, n);
    default: return trt_fail(TOWERRT_ERR_UNSUPPORTED, "graph node %u: unknown op %u", ni, n->op);
  }
}

/* Per-side field layout: single-id, then multi-id, then dense (shared with
 * the two-tower family's compiler, runtime/family_twotower_graph.c). */
towerrt_status trt_plan_fields(towerrt_model *m, uint32_t side) {
  trt_tower *t = side ? &m->item : &m->user;
  uint32_t last_kind = 0, seen = 0;
  for (uint32_t i = 0; i < m->n_fields; i++) {
    const trt_field *f = &m->fields[i];
    if (f->side != side) continue;
    if (!seen) t->first_field = i;
    seen = 1;
    if (i != t->first_field + t->n_fields)
      return trt_fail(TOWERRT_ERR_FORMAT, "%s fields are not contiguous in FIELDS (field '%s')", trt_side_name(side), f->name);
    t->n_fields++;
    if (f->kind < last_kind)
      return trt_fail(TOWERRT_ERR_FORMAT, "field '%s': %s fields must be ordered single-id, multi-id, dense", f->name, trt_side_name(side));
    last_kind = f->kind;
    if (f->kind == TRT_FIELD_DENSE) {
      t->dense_width += f->dim;
      continue;
    }
    if (t->n_id_fields && f->dim != t->emb_dim)
      return trt_fail(TOWERRT_ERR_SHAPE, "field '%s': embedding dim %u, other %s id fields have %u (Light-SE needs one dim)", f->name, f->dim, trt_side_name(side), t->emb_dim);
    t->emb_dim = f->dim;
    t->n_id_fields++;
    t->id_slots += f->slots;
  }
  if (!t->n_id_fields) return trt_fail(TOWERRT_ERR_FORMAT, "the %s side has no id fields", trt_side_name(side));
  if (t->id_slots > TRT_MAX_SLOTS) return trt_fail(TOWERRT_ERR_LIMIT, "%s side has %u id slots (limit %u)", trt_side_name(side), t->id_slots, TRT_MAX_SLOTS);
  uint64_t width = (uint64_t)t->n_id_fields * t->emb_dim + t->dense_width;
  if (width > TRT_MAX_WIDTH) return trt_fail(TOWERRT_ERR_LIMIT, "%s input width %llu exceeds %u", trt_side_name(side), (unsigned long long)width, TRT_MAX_WIDTH);
  t->input_width = (uint32_t)width;
  return TOWERRT_OK;
}

static towerrt_status check_complete(compile_state *cs) {
  towerrt_model *m = cs->m;
  for (uint32_t s = 0; s < 2; s++) {
    if (!cs->have_embed[s] || !cs->have_lightse[s] || !cs->have_concat[s])
      return trt_fail(TOWERRT_ERR_FORMAT, "graph: the %s side lacks EMBED, LIGHTSE or CONCAT_DENSE", trt_side_name(s));
    if (!(s ? m->item.n_layers : m->user.n_layers)) return trt_fail(TOWERRT_ERR_FORMAT, "graph: the %s tower has no LINEAR layer", trt_side_name(s));
  }
  if (!m->item.fe_present || cs->item_fe_input != cs->x_value[1][m->item.n_layers])
    return trt_fail(TOWERRT_ERR_FORMAT, "graph: the item FE_PROJ must project the output of the last item layer (%u)", m->item.n_layers);
  if (m->user.fe_present >> m->user.n_layers)
    return trt_fail(TOWERRT_ERR_FORMAT, "graph: a user FE_PROJ names a layer beyond the %u user layers", m->user.n_layers);
  if (!cs->maxsim_mask || !cs->have_predict) return trt_fail(TOWERRT_ERR_FORMAT, "graph: no MAXSIM or no PREDICT node");
  m->trained_fe_mask = cs->maxsim_mask;
  return TOWERRT_OK;
}

/* Folds BN (eval) into the Linear: W' = W * s, b' = (b - mean) * s + beta,
 * s = gamma / sqrt(var + eps); computed in double, stored as f32. */
static void fold_layer(const towerrt_model *m, const compile_state *cs, uint32_t side, uint32_t L, float *w, float *b) {
  const trt_dense_layer *d = side ? &m->item.layers[L] : &m->user.layers[L];
  const float *W = m->tensors[cs->linear_w[side][L]].data;
  const float *B = cs->linear_b[side][L] >= 0 ? m->tensors[cs->linear_b[side][L]].data : NULL;
  const int32_t *bn = cs->bn[side][L];
  for (uint32_t o = 0; o < d->out; o++) {
    double s = 1.0, shift = 0.0;
    if (d->folded_bn) {
      const float *g = m->tensors[bn[0]].data, *be = m->tensors[bn[1]].data, *mu = m->tensors[bn[2]].data, *var = m->tensors[bn[3]].data;
      s = (double)g[o] / sqrt((double)var[o] + (double)cs->bn_eps[side][L]);
      shift = (double)be[o] - (double)mu[o] * s;
    }
    for (uint32_t i = 0; i < d->in; i++) w[(size_t)o * d->in + i] = (float)((double)W[(size_t)o * d->in + i] * s);
    b[o] = (float)((B ? (double)B[o] : 0.0) * s + shift);
  }
}

static size_t padded(size_t bytes) { return (bytes + 63) & ~(size_t)63; }

/* Bytes a layer's weights take in the owned block: the weights in their
 * precision (s8 rows padded to 64 bytes, plus row sums and scales) and an
 * f32 bias, each 64-byte aligned. */
static size_t layer_bytes(const trt_dense_layer *d) {
  size_t out = d->out, bias = padded(out * sizeof(float));
  switch (d->wtype) {
    case TRT_DTYPE_BF16: return padded(out * d->in * sizeof(uint16_t)) + bias;
    case TRT_DTYPE_S8: return padded(out * padded(d->in)) + padded(out * sizeof(int32_t)) + padded(out * sizeof(float)) + bias;
    default: return padded(out * d->in * sizeof(float)) + bias;
  }
}

/* Copies a quantized layer (no BatchNorm: the quantizer folded it) into the
 * owned block; s8 rows are zero padded and their sums computed here, so a
 * file cannot carry a sum that disagrees with its weights. */
static char *copy_quantized(const towerrt_model *m, trt_dense_layer *d, const float *bias, char *p) {
  const trt_tensor *t = &m->tensors[d->src_weight];
  size_t out = d->out, in = d->in;
  if (d->wtype == TRT_DTYPE_BF16) {
    memcpy(p, t->data, out * in * sizeof(uint16_t));
    d->w_bf16 = (const uint16_t *)(void *)p;
    p += padded(out * in * sizeof(uint16_t));
  } else {
    d->in_pad = (uint32_t)padded(in);
    int8_t *w = (int8_t *)p;
    int32_t *sum = (int32_t *)(void *)(p + padded(out * d->in_pad));
    float *scale = (float *)(void *)((char *)sum + padded(out * sizeof(int32_t)));
    const int8_t *src = t->data;
    memset(w, 0, out * d->in_pad);
    for (size_t o = 0; o < out; o++) {
      memcpy(w + o * d->in_pad, src + o * in, in);
      int32_t acc = 0;
      for (size_t i = 0; i < in; i++) acc += src[o * in + i];
      sum[o] = acc;
    }
    memcpy(scale, m->tensors[t->scale_index].data, out * sizeof(float));
    d->w_s8 = w, d->w_sum = sum, d->w_scale = scale;
    p = (char *)scale + padded(out * sizeof(float));
  }
  float *b = (float *)(void *)p;
  if (bias) memcpy(b, bias, out * sizeof(float));
  else memset(b, 0, out * sizeof(float));
  d->b = b;
  return p + padded(out * sizeof(float));
}

/* Copies an f32 FE projection into the owned block so every compute weight
 * is 64-byte aligned and can be placed on a NUMA node with the rest. */
static char *copy_fe(const towerrt_model *m, trt_dense_layer *d, char *p) {
  if (trt_dense_quantized(d)) return copy_quantized(m, d, d->b, p);
  float *w = (float *)(void *)p, *b = (float *)(void *)(p + padded((size_t)d->out * d->in * sizeof(float)));
  memcpy(w, m->tensors[d->src_weight].data, (size_t)d->out * d->in * sizeof(float));
  if (d->b) memcpy(b, d->b, d->out * sizeof(float));
  else memset(b, 0, d->out * sizeof(float));
  d->w = w;
  d->b = b;
  return p + layer_bytes(d);
}

static towerrt_status fold_linear(towerrt_model *m, const compile_state *cs, uint32_t s, uint32_t L, char **p) {
  trt_dense_layer *d = s ? &m->item.layers[L] : &m->user.layers[L];
  if (trt_dense_quantized(d)) {
    const float *B = cs->linear_b[s][L] >= 0 ? m->tensors[cs->linear_b[s][L]].data : NULL;
    *p = copy_quantized(m, d, B, *p);
    return TOWERRT_OK;
  }
  float *w = (float *)(void *)*p, *b = (float *)(void *)(*p + padded((size_t)d->out * d->in * sizeof(float)));
  fold_layer(m, cs, s, L, w, b);
  for (size_t i = 0; i < (size_t)d->out * d->in; i++)
    if (!isfinite(w[i])) goto overflow;
  for (size_t o = 0; o < d->out; o++)
    if (!isfinite(b[o])) goto overflow;
  d->w = w;
  d->b = b;
  *p += layer_bytes(d);
  return TOWERRT_OK;
overflow:
  return trt_fail(TOWERRT_ERR_NONFINITE, "%s layer %u: folding BatchNorm into the Linear overflows (running_var + eps too small "
                  "for the weights)", trt_side_name(s), L);
}

static towerrt_status fold_all(towerrt_model *m, const compile_state *cs) {
  size_t total = 0;
  for (uint32_t s = 0; s < 2; s++) {
    const trt_tower *t = s ? &m->item : &m->user;
    for (uint32_t L = 0; L < t->n_layers; L++) total += layer_bytes(&t->layers[L]);
    for (uint32_t L = 0; L < TRT_MAX_LAYERS; L++)
      if (t->fe_present & (1u << L)) total += layer_bytes(&t->fe[L]);
  }
  /* A tensor shared by several layers is folded once per layer: bounded by
   * the option, not by the file (a sparse file's size costs nothing). */
  towerrt_status st = trt_model_reserve(m, total, "folded weights");
  if (st) return st;
  m->owned_bytes = total;
  m->owned = aligned_alloc(64, m->owned_bytes ? m->owned_bytes : 64);
  if (!m->owned) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for %zu bytes of folded weights", total);
  char *p = m->owned;
  for (uint32_t s = 0; s < 2; s++) {
    trt_tower *t = s ? &m->item : &m->user;
    t->max_width = t->input_width;
    for (uint32_t L = 0; L < t->n_layers; L++) {
      st = fold_linear(m, cs, s, L, &p);
      if (st) return st;
      if (t->layers[L].out > t->max_width) t->max_width = t->layers[L].out;
    }
    for (uint32_t L = 0; L < TRT_MAX_LAYERS; L++)
      if (t->fe_present & (1u << L)) p = copy_fe(m, &t->fe[L], p);
  }
  return TOWERRT_OK;
}

towerrt_status trt_model_compile(towerrt_model *m) {
  const trt_section *g;
  towerrt_status st = trt_container_require(&m->container, TRT_SEC_GRAPH, "GRAPH", &g);
  if (st) return st;
  if ((st = trt_plan_fields(m, TOWERRT_USER)) || (st = trt_plan_fields(m, TOWERRT_ITEM))) return st;
  uint32_t n_nodes;
  if ((st = trt_graph_count(g, &n_nodes))) return st;
  compile_state *cs = calloc(1, sizeof *cs);
  if (!cs) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  cs->m = m;
  cs->item_fe_input = -1;
  for (uint32_t i = 0; i < n_nodes && !st; i++) {
    node n;
    trt_graph_node_read(g, i, &n);
    st = compile_node(cs, i, &n);
  }
  if (!st) st = check_complete(cs);
  if (!st) st = fold_all(m, cs);
  free(cs);
  return st;
}

/* CRC-32 chained, in tensor-table order, over every tensor the item side
 * reads: a .twi built by this model carries it, so a store is never used
 * with the heads of another model. */
#include "crc32.h"
uint32_t trt_model_item_fingerprint(const towerrt_model *m) {
  const trt_section *g = &m->container.sections[TRT_SEC_GRAPH];
  uint32_t n_nodes = trt_rd32(g->data); /* checked when the model was compiled */
  uint32_t crc = 0;
  for (uint32_t ti = 0; ti < m->n_tensors; ti++) {
    int used = 0;
    for (uint32_t f = 0; f < m->n_fields && !used; f++)
      used = m->fields[f].side == TOWERRT_ITEM && m->fields[f].table_index == (int32_t)ti;
    for (uint32_t i = 0; i < n_nodes && !used; i++) {
      node n;
      trt_graph_node_read(g, i, &n);
      for (int j = 0; j < 6 && n.side == TOWERRT_ITEM && n.op <= TRT_OP_FE_PROJ; j++) used |= n.t[j] == (int32_t)ti;
    }
    if (used) crc = trt_crc32(crc, m->tensors[ti].data, (size_t)m->tensors[ti].nbytes);
  }
  return crc;
}
