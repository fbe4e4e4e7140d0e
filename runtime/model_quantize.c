/* towerrt_model_quantize: a model rewritten with its user tower's weights in
 * bf16, or in s8 with one scale per output channel (docs/quantization.md).
 *
 * The user tower is the only tower on the request path (the item tower ran
 * offline into the item store), so it is the one quantized: the item tower,
 * the embedding tables and Light-SE stay f32, their tensors are copied byte
 * for byte in the same order, and the model's item fingerprint, hence every
 * item store built from the f32 model, stays valid.
 *
 * Each quantized LINEAR / FE_PROJ gets new tensors appended to the table:
 * the weights (BatchNorm already folded, as the runtime compiled them), an
 * f32 bias (folded), for s8 the per-channel scales, and for s8 with
 * calibration rows the (scale, zero point) of its input. The f32 tensors
 * only those nodes read are dropped. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "container_write.h"
#include "model.h"
#include "family.h"
#include "quantize_heads.h"
#include "status.h"
#include "tower_exec.h"

#define FIELD_RECORD 96u
#define TENSOR_RECORD 128u
#define TRT_FLAG_ACT_QUANT 4u /* graph_compile.c */

typedef struct out_tensor {
  char name[TRT_NAME_CAP];
  uint32_t dtype, ndim, dims[4];
  int32_t scale_index;
  const void *data; /* into the mapped file, or into `owned` */
  uint64_t nbytes, offset;
  void *owned;
} out_tensor;

typedef struct qstate {
  const towerrt_model *m;
  towerrt_precision prec;
  out_tensor *t;
  uint32_t n, cap;
  int32_t *remap; /* old tensor index -> new, -1 dropped */
  /* calibration: the range of each user layer's input */
  float lo[TRT_MAX_LAYERS], hi[TRT_MAX_LAYERS];
  uint32_t calibrated; /* bit L: layer L's input was seen */
} qstate;

static out_tensor *add_tensor(qstate *q, const char *base, const char *suffix, uint32_t dtype, uint32_t d0, uint32_t d1) {
  if (q->n == q->cap) {
    uint32_t cap = q->cap ? 2 * q->cap : 64;
    out_tensor *t = realloc(q->t, cap * sizeof *t);
    if (!t) return NULL;
    q->t = t, q->cap = cap;
  }
  out_tensor *t = &q->t[q->n++];
  memset(t, 0, sizeof *t);
  /* Long names are cut so that the suffix survives. */
  size_t keep = strlen(base), room = TRT_NAME_CAP - 1 - strlen(suffix);
  if (keep > room) keep = room;
  memcpy(t->name, base, keep);
  memcpy(t->name + keep, suffix, strlen(suffix) + 1);
  t->dtype = dtype, t->ndim = d1 ? 2 : 1, t->dims[0] = d0, t->dims[1] = d1;
  t->scale_index = -1;
  return t;
}

static size_t dtype_bytes(uint32_t dtype) { return dtype == TRT_DTYPE_F32 ? 4 : dtype == TRT_DTYPE_BF16 ? 2 : 1; }

static void *own(out_tensor *t) {
  t->nbytes = (uint64_t)t->dims[0] * (t->ndim == 2 ? t->dims[1] : 1) * dtype_bytes(t->dtype);
  t->owned = malloc(t->nbytes ? t->nbytes : 1);
  t->data = t->owned;
  return t->owned;
}

/* ---- calibration ------------------------------------------------------- */

static void observe(void *ctx, uint32_t layer, const float *x, size_t width) {
  qstate *q = ctx;
  for (size_t i = 0; i < width; i++) {
    q->lo[layer] = fminf(q->lo[layer], x[i]);
    q->hi[layer] = fmaxf(q->hi[layer], x[i]);
  }
  q->calibrated |= 1u << layer;
}

static towerrt_status calibrate(qstate *q, const towerrt_features *users, size_t n) {
  const towerrt_model *m = q->m;
  towerrt_status st = trt_check_features(m, TOWERRT_USER, users, n);
  if (st) return st;
  for (int L = 0; L < TRT_MAX_LAYERS; L++) q->lo[L] = q->hi[L] = 0.0f; /* the range always holds 0 */
  void *arena = aligned_alloc(64, (trt_workspace_bytes(m) + 63) & ~(size_t)63);
  if (!arena) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  trt_workspace ws;
  trt_workspace_init(m, arena, &ws);
  const trt_tower *u = &m->user;
  for (size_t r = 0; r < n; r++)
    trt_user_forward_observed(m, u, &ws, users->ids + r * u->id_slots, users->dense ? users->dense + r * u->dense_width : NULL,
                              u->fe_present, ws.user_heads, observe, q);
  free(arena);
  for (int L = 0; L < TRT_MAX_LAYERS; L++)
    if (!isfinite(q->lo[L]) || !isfinite(q->hi[L]))
      return trt_fail(TOWERRT_ERR_NONFINITE, "calibration: user layer %d's input is not finite for some row", L);
  return TOWERRT_OK;
}

/* ---- the quantized layers ---------------------------------------------- */

/* Per output channel: scale = max|w| / 127 (1 for an all-zero row), q in -127..127. */
static void quantize_rows_s8(const float *w, size_t out, size_t in, int8_t *q, float *scale) {
  for (size_t o = 0; o < out; o++) {
    float amax = 0.0f;
    for (size_t i = 0; i < in; i++) amax = fmaxf(amax, fabsf(w[o * in + i]));
    scale[o] = amax > 0.0f ? amax / 127.0f : 1.0f;
    for (size_t i = 0; i < in; i++) {
      float v = nearbyintf(w[o * in + i] / scale[o]);
      q[o * in + i] = (int8_t)(v > 127.0f ? 127 : v < -127.0f ? -127 : (int)v);
    }
  }
}

/* Appends a layer's quantized tensors; writes the node's new tensor slots
 * and flags into `t` and `flags`. `layer`: whose input the node reads. */
static towerrt_status quantize_layer(qstate *q, const trt_dense_layer *d, uint32_t layer, int32_t t[6], uint32_t *flags) {
  const char *base = q->m->tensors[d->src_weight].name;
  int s8 = q->prec == TOWERRT_PRECISION_INT8;
  int32_t wi = (int32_t)q->n;
  out_tensor *w = add_tensor(q, base, s8 ? ".s8" : ".bf16", s8 ? TRT_DTYPE_S8 : TRT_DTYPE_BF16, d->out, d->in);
  if (!w || !own(w)) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  if (s8) {
    out_tensor *sc = add_tensor(q, base, ".scale", TRT_DTYPE_F32, d->out, 0);
    w = &q->t[wi]; /* add_tensor may move the array */
    if (!sc || !own(sc)) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
    quantize_rows_s8(d->w, d->out, d->in, w->owned, sc->owned);
    w->scale_index = wi + 1;
  } else {
    trt_f32_to_bf16_array(d->w, (size_t)d->out * d->in, w->owned);
  }
  int32_t bi = (int32_t)q->n;
  out_tensor *b = add_tensor(q, base, ".bias", TRT_DTYPE_F32, d->out, 0);
  if (!b || !own(b)) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  memcpy(b->owned, d->b, d->out * sizeof(float));
  for (int j = 0; j < 6; j++) t[j] = -1;
  t[0] = wi, t[1] = bi;
  *flags &= 1u; /* ReLU stays; BatchNorm is folded in */
  if (s8 && (q->calibrated & (1u << layer))) {
    float lo = q->lo[layer], hi = q->hi[layer], scale = (hi - lo) / 255.0f;
    if (!(scale > 0.0f)) scale = 1.0f;
    float zp = nearbyintf(-lo / scale);
    zp = zp < 0.0f ? 0.0f : zp > 255.0f ? 255.0f : zp;
    out_tensor *a = add_tensor(q, base, ".input_quant", TRT_DTYPE_F32, 2, 0);
    if (!a || !own(a)) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
    ((float *)a->owned)[0] = scale, ((float *)a->owned)[1] = zp;
    t[2] = (int32_t)(q->n - 1);
    *flags |= TRT_FLAG_ACT_QUANT;
  }
  return TOWERRT_OK;
}

static int is_user_weight_node(uint32_t op, uint32_t side) { return side == TOWERRT_USER && (op == TRT_OP_LINEAR || op == TRT_OP_FE_PROJ); }

/* Keeps, in order, every tensor that something other than a user LINEAR /
 * FE_PROJ reads (or that nothing reads); fills q->remap. */
static towerrt_status keep_tensors(qstate *q, const trt_section *g, uint32_t n_nodes) {
  const towerrt_model *m = q->m;
  unsigned char *user_only = calloc(m->n_tensors ? m->n_tensors : 1, 1), *other = calloc(m->n_tensors ? m->n_tensors : 1, 1);
  q->remap = malloc((m->n_tensors ? m->n_tensors : 1) * sizeof *q->remap);
  if (!user_only || !other || !q->remap) {
    free(user_only), free(other);
    return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  }
  for (uint32_t i = 0; i < n_nodes; i++) {
    trt_graph_node n;
    trt_graph_node_read(g, i, &n);
    int uw = is_user_weight_node(n.op, n.side);
    for (int j = 0; j < 6; j++)
      if (n.t[j] >= 0 && (uint32_t)n.t[j] < m->n_tensors) (uw ? user_only : other)[n.t[j]] = 1;
  }
  for (uint32_t f = 0; f < m->n_fields; f++)
    if (m->fields[f].table_index >= 0) other[m->fields[f].table_index] = 1;
  towerrt_status st = TOWERRT_OK;
  for (uint32_t i = 0; i < m->n_tensors && !st; i++) {
    q->remap[i] = -1;
    if (user_only[i] && !other[i]) continue;
    const trt_tensor *src = &m->tensors[i];
    out_tensor *t = add_tensor(q, src->name, "", src->dtype, 1, 0);
    if (!t) st = trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
    else {
      t->ndim = src->ndim;
      memcpy(t->dims, src->dims, sizeof t->dims);
      t->data = src->data, t->nbytes = src->nbytes;
      q->remap[i] = (int32_t)(q->n - 1);
    }
  }
  free(user_only), free(other);
  return st;
}

/* The GRAPH with tensor indices remapped and the user layers quantized,
 * into graph (the section's bytes). */
static towerrt_status rewrite_graph(qstate *q, const trt_section *g, unsigned char *graph, uint32_t n_nodes) {
  const towerrt_model *m = q->m;
  for (uint32_t i = 0; i < n_nodes; i++) {
    trt_graph_node n;
    trt_graph_node_read(g, i, &n);
    for (int j = 0; j < 6; j++)
      if (n.t[j] >= 0 && (uint32_t)n.t[j] < m->n_tensors) n.t[j] = q->remap[n.t[j]];
    if (is_user_weight_node(n.op, n.side)) {
      const trt_dense_layer *d = n.op == TRT_OP_LINEAR ? &m->user.layers[n.layer] : &m->user.fe[n.layer];
      towerrt_status st = quantize_layer(q, d, (uint32_t)n.layer, n.t, &n.flags);
      if (st) return st;
      n.eps = 0.0f; /* no BatchNorm left */
    }
    trt_graph_node_encode(&n, graph + 8 + (size_t)i * TRT_GRAPH_RECORD);
  }
  return TOWERRT_OK;
}

/* ---- writing ------------------------------------------------------------ */

/* META: every entry but `quantization`, which is set to the new precision. */
static towerrt_status write_meta(trt_writer *w, const towerrt_model *m, const char *precision) {
  const unsigned char *p = m->meta.data + 4;
  trt_bytes b = {0};
  trt_bytes_u32(&b, 0);
  uint32_t count = 0;
  for (uint32_t e = 0; e < m->meta.count; e++) {
    const unsigned char *start = p;
    uint16_t klen = trt_rd16(p);
    const char *key = (const char *)p + 2;
    uint8_t type = p[2 + klen];
    p += 3 + klen;
    switch (type) {
      case TRT_META_INT: case TRT_META_FLOAT: p += 8; break;
      case TRT_META_STRING: p += 4 + trt_rd32(p); break;
      default: p += 4 + 8 * (size_t)trt_rd32(p); break; /* INT_ARRAY: trt_meta_parse allows nothing else */
    }
    if (klen == 12 && !memcmp(key, "quantization", 12)) continue;
    trt_bytes_put(&b, start, (size_t)(p - start));
    count++;
  }
  trt_meta_put_str(&b, "quantization", precision, strlen(precision));
  count++;
  towerrt_status st = b.failed ? trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory") : TOWERRT_OK;
  if (!st) trt_wr32(b.p, count);
  if (!st) st = trt_writer_begin(w, TRT_SEC_META);
  if (!st) st = trt_writer_put(w, b.p, b.len);
  if (!st) st = trt_writer_end(w);
  free(b.p);
  return st;
}

static towerrt_status write_fields(trt_writer *w, const qstate *q) {
  const trt_section *s = &q->m->container.sections[TRT_SEC_FIELDS];
  size_t n = 8 + (size_t)q->m->n_fields * FIELD_RECORD;
  unsigned char *f = malloc(n);
  if (!f) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  memcpy(f, s->data, n);
  for (uint32_t i = 0; i < q->m->n_fields; i++) {
    int32_t ti = q->m->fields[i].table_index;
    if (ti >= 0) trt_wr32(f + 8 + (size_t)i * FIELD_RECORD + 88, (uint32_t)q->remap[ti]);
  }
  towerrt_status st = trt_writer_begin(w, TRT_SEC_FIELDS);
  if (!st) st = trt_writer_put(w, f, n);
  if (!st) st = trt_writer_end(w);
  free(f);
  return st;
}

static towerrt_status write_tensors(trt_writer *w, qstate *q) {
  unsigned char *t = calloc(1, 8 + (size_t)q->n * TENSOR_RECORD);
  if (!t) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  trt_wr32(t, q->n);
  uint64_t off = 0;
  for (uint32_t i = 0; i < q->n; i++) {
    out_tensor *o = &q->t[i];
    unsigned char *r = t + 8 + (size_t)i * TENSOR_RECORD;
    memcpy(r, o->name, strlen(o->name) + 1);
    trt_wr32(r + 80, o->dtype);
    trt_wr32(r + 84, o->ndim);
    for (int d = 0; d < 4; d++) trt_wr32(r + 88 + 4 * d, d < (int)o->ndim ? o->dims[d] : 0);
    o->offset = off;
    trt_wr64(r + 104, off);
    trt_wr64(r + 112, o->nbytes);
    trt_wr32(r + 120, (uint32_t)o->scale_index);
    off += (o->nbytes + 63) & ~(uint64_t)63;
  }
  towerrt_status st = trt_writer_begin(w, TRT_SEC_TENSORS);
  if (!st) st = trt_writer_put(w, t, 8 + (size_t)q->n * TENSOR_RECORD);
  if (!st) st = trt_writer_end(w);
  free(t);
  return st;
}

static towerrt_status write_data(trt_writer *w, const qstate *q) {
  static const unsigned char zeros[64];
  towerrt_status st = trt_writer_begin(w, TRT_SEC_DATA);
  for (uint32_t i = 0; i < q->n && !st; i++) {
    st = trt_writer_put(w, q->t[i].data, (size_t)q->t[i].nbytes);
    size_t pad = (size_t)(((q->t[i].nbytes + 63) & ~(uint64_t)63) - q->t[i].nbytes);
    if (!st && pad) st = trt_writer_put(w, zeros, pad);
  }
  return st ? st : trt_writer_end(w);
}

static towerrt_status write_model(qstate *q, unsigned char *graph, size_t graph_bytes, const char *path) {
  trt_writer w;
  towerrt_status st = trt_writer_open(&w, path, "TWRMODEL", 5);
  if (st) return st;
  if (!st) st = write_meta(&w, q->m, q->prec == TOWERRT_PRECISION_INT8 ? "int8" : "bf16");
  if (!st) st = write_fields(&w, q);
  if (!st) st = write_tensors(&w, q);
  if (!st && !(st = trt_writer_begin(&w, TRT_SEC_GRAPH)) && !(st = trt_writer_put(&w, graph, graph_bytes))) st = trt_writer_end(&w);
  if (!st) st = write_data(&w, q);
  if (!st) return trt_writer_finish(&w);
  trt_writer_abort(&w);
  return st;
}

static towerrt_status check_request(const towerrt_model *m, towerrt_precision prec, const char *path) {
  if (!m || !path) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_model_quantize: model and path must not be NULL");
  if (prec != TOWERRT_PRECISION_BF16 && prec != TOWERRT_PRECISION_INT8)
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_model_quantize: precision %d is not bf16 or int8", (int)prec);
  if (!m->family->quantize_user_tower)
    return trt_fail(TOWERRT_ERR_UNSUPPORTED, "towerrt_model_quantize: %s models are not quantized, only IntTower (docs/family.md)",
                    m->family->name);
  if (trt_dense_quantized(&m->user.layers[0]))
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_model_quantize: the model is already quantized");
  return TOWERRT_OK;
}

towerrt_status towerrt_model_quantize(const towerrt_model *m, towerrt_precision prec, const towerrt_features *calibration_users,
                                      size_t n_users, const char *path) {
  towerrt_status st = check_request(m, prec, path);
  if (st) return st;
  qstate q = {.m = m, .prec = prec};
  if (prec == TOWERRT_PRECISION_INT8 && n_users) st = calibrate(&q, calibration_users, n_users);
  const trt_section *g = &m->container.sections[TRT_SEC_GRAPH];
  uint32_t n_nodes = trt_rd32(g->data); /* checked when the model was compiled */
  size_t graph_bytes = 8 + (size_t)n_nodes * TRT_GRAPH_RECORD;
  unsigned char *graph = st ? NULL : malloc(graph_bytes);
  if (!st && !graph) st = trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  if (!st) {
    memcpy(graph, g->data, graph_bytes);
    st = keep_tensors(&q, g, n_nodes);
  }
  if (!st) st = rewrite_graph(&q, g, graph, n_nodes);
  if (!st) st = write_model(&q, graph, graph_bytes, path);
  for (uint32_t i = 0; i < q.n; i++) free(q.t[i].owned);
  free(q.t), free(q.remap), free(graph);
  return st;
}
