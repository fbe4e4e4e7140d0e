/* Graph compiler of FIT (docs/family.md "FIT", docs/format.md "GRAPH:
 * FIT"): checks that GRAPH is the FIT pattern, in this order
 *
 *   EMBED user, EMBED item, MQM (item), [DIN (user)],
 *   CONCAT_DENSE user, LINEAR user..., LSS_PROJ user,
 *   CONCAT_DENSE item, LINEAR item..., LSS_PROJ item,
 *   [LSS_NORM], LSS, PREDICT
 *
 * binds and checks every tensor, folds BatchNorm into the Linears (and the
 * LSS scale and BatchNorm into one affine map over S), computes the hard
 * queries Q* = (Q Q^T) Q once, and fills the item tower so that the shared
 * item code yields the LSS item heads. A malformed graph is a FORMAT or
 * SHAPE error, never a crash. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "family_fit.h"
#include "status.h"

enum { FIT_FLAG_PROJ = 1, FIT_FLAG_L2NORM = 4, FIT_NORM_SCALE = 1, FIT_NORM_BN = 2 };

/* The node cursor: nodes are read in the pattern's order. */
typedef struct cursor {
  towerrt_model *m;
  const trt_section *g;
  uint32_t i, n;
  trt_graph_node node;
  int32_t prev; /* output value of the node before */
} cursor;

static const char *op_name(uint32_t op) {
  static const char *const names[] = {"?", "EMBED", "LIGHTSE", "CONCAT_DENSE", "LINEAR", "FE_PROJ", "MAXSIM", "SUM", "PREDICT",
                                      "SIMILARITY", "AUGMENT", "MQM", "DIN", "LSS_PROJ", "LSS_NORM", "LSS"};
  return op < sizeof names / sizeof names[0] ? names[op] : "?";
}

static int peek(const cursor *c, uint32_t op) {
  if (c->i >= c->n) return 0;
  trt_graph_node n;
  trt_graph_node_read(c->g, c->i, &n);
  return n.op == op;
}

/* The next node, which must be `op` on `side`. */
static towerrt_status take(cursor *c, uint32_t op, uint32_t side) {
  if (c->i >= c->n) return trt_fail(TOWERRT_ERR_FORMAT, "FIT graph: it ends where a %s %s node is expected", trt_side_name(side), op_name(op));
  if (c->i) c->prev = c->node.out;
  trt_graph_node_read(c->g, c->i, &c->node);
  if (c->node.op != op || c->node.side != side)
    return trt_fail(TOWERRT_ERR_FORMAT, "FIT graph node %u: %s on side %u where the pattern has %s on side %u (docs/format.md)", c->i,
                    op_name(c->node.op), c->node.side, op_name(op), side);
  c->i++;
  return TOWERRT_OK;
}

/* The f32 tensor `ti` with shape (d0) (d1 == 0) or (d0, d1). */
static towerrt_status want(const cursor *c, int32_t ti, const char *role, uint32_t d0, uint32_t d1) {
  const towerrt_model *m = c->m;
  if (ti < 0 || (uint32_t)ti >= m->n_tensors)
    return trt_fail(TOWERRT_ERR_FORMAT, "FIT graph node %u: %s tensor index %d out of range (%u tensors)", c->i - 1, role, ti, m->n_tensors);
  const trt_tensor *t = &m->tensors[ti];
  if (t->dtype != TRT_DTYPE_F32) return trt_fail(TOWERRT_ERR_UNSUPPORTED, "tensor '%s' (%s): dtype %u, FIT runs f32 weights", t->name, role, t->dtype);
  int ok = d1 ? (t->ndim == 2 && t->dims[0] == d0 && t->dims[1] == d1) : (t->count == d0 && t->ndim <= 1);
  if (!ok)
    return trt_fail(TOWERRT_ERR_SHAPE, "tensor '%s' (%s): shape (%u, %u) with %u dims, expected (%u, %u)", t->name, role, t->dims[0], t->dims[1],
                    t->ndim, d0, d1);
  return TOWERRT_OK;
}

static const float *data(const cursor *c, int32_t ti) { return c->m->tensors[ti].data; }

/* A Linear (tensors w, b) of in -> out bound without folding. */
static towerrt_status plain(const cursor *c, int32_t w, int32_t b, const char *role, uint32_t in, uint32_t out, int relu, trt_dense_layer *d) {
  towerrt_status st = want(c, w, role, out, in);
  if (!st) st = want(c, b, role, out, 0);
  if (st) return st;
  *d = (trt_dense_layer){.in = in, .out = out, .relu = relu, .wtype = TRT_DTYPE_F32, .w = data(c, w), .b = data(c, b), .src_weight = w};
  return TOWERRT_OK;
}

/* A LINEAR node (in -> attr[1], ReLU, optional BatchNorm) folded into w / b
 * (out x in, then out), in double. */
static towerrt_status linear(cursor *c, uint32_t side, uint32_t L, uint32_t in, float **pool, trt_dense_layer *d) {
  const trt_graph_node *n = &c->node;
  uint32_t out = n->attr[1] > 0 ? (uint32_t)n->attr[1] : 0;
  if (n->layer != (int32_t)L || n->attr[0] != (int32_t)in || !out || out > TRT_MAX_WIDTH || n->in[0] != c->prev)
    return trt_fail(TOWERRT_ERR_SHAPE, "FIT %s LINEAR node %u: layer %d in %d out %d input value %d, expected layer %u in %u reading value %d",
                    trt_side_name(side), c->i - 1, n->layer, n->attr[0], n->attr[1], n->in[0], L, in, c->prev);
  if (n->flags & ~3u || !(n->flags & 1u))
    return trt_fail(TOWERRT_ERR_UNSUPPORTED, "FIT %s LINEAR layer %u: flags 0x%x (FIT towers are Linear (+BN) + ReLU)", trt_side_name(side), L, n->flags);
  towerrt_status st = want(c, n->t[0], "Linear weight", out, in);
  if (!st) st = want(c, n->t[1], "Linear bias", out, 0);
  int bn = (n->flags & 2u) != 0;
  for (int i = 0; bn && !st && i < 4; i++) st = want(c, n->t[2 + i], "BatchNorm", out, 0);
  if (st) return st;
  if (bn && !(n->eps > 0.0f && isfinite(n->eps))) return trt_fail(TOWERRT_ERR_FORMAT, "FIT %s LINEAR layer %u: BatchNorm eps must be positive", trt_side_name(side), L);
  const float *W = data(c, n->t[0]), *B = data(c, n->t[1]);
  float *w = *pool, *b = w + (size_t)out * in;
  *pool = b + out;
  for (uint32_t o = 0; o < out; o++) {
    double s = 1.0, shift = 0.0;
    if (bn) {
      double var = data(c, n->t[5])[o];
      if (var < 0) return trt_fail(TOWERRT_ERR_FORMAT, "tensor '%s': negative running_var at %u", c->m->tensors[n->t[5]].name, o);
      s = data(c, n->t[2])[o] / sqrt(var + n->eps);
      shift = data(c, n->t[3])[o] - data(c, n->t[4])[o] * s;
    }
    for (uint32_t i = 0; i < in; i++) w[(size_t)o * in + i] = (float)(W[(size_t)o * in + i] * s);
    b[o] = (float)(B[o] * s + shift);
  }
  for (size_t i = 0; i < (size_t)out * (in + 1); i++)
    if (!isfinite(w[i])) return trt_fail(TOWERRT_ERR_NONFINITE, "FIT %s layer %u: folding BatchNorm overflows", trt_side_name(side), L);
  *d = (trt_dense_layer){.in = in, .out = out, .relu = 1, .wtype = TRT_DTYPE_F32, .w = w, .b = b, .src_weight = n->t[0], .folded_bn = bn};
  return TOWERRT_OK;
}

/* MQM: Q (N x D) and the optional e_c projection; Q* into `qstar`. */
static towerrt_status mqm(cursor *c, trt_fit_model *f, float *qstar) {
  const trt_graph_node *n = &c->node;
  const trt_tower *it = &c->m->item;
  if (n->attr[0] <= 0 || (uint32_t)n->attr[0] > TRT_FIT_MAX_QUERIES || n->attr[1] <= 0 || n->attr[1] > (int32_t)TRT_MAX_WIDTH)
    return trt_fail(TOWERRT_ERR_SHAPE, "FIT MQM: N %d, D %d out of range (N at most %u)", n->attr[0], n->attr[1], TRT_FIT_MAX_QUERIES);
  f->N = (uint32_t)n->attr[0];
  f->D = (uint32_t)n->attr[1];
  f->ec_mask = (uint32_t)n->layer;
  if (!f->ec_mask || it->n_id_fields > 31 || f->ec_mask >> it->n_id_fields)
    return trt_fail(TOWERRT_ERR_FORMAT, "FIT MQM: e_c field mask 0x%x does not name item id fields (%u of them)", f->ec_mask, it->n_id_fields);
  f->ec_width = (uint32_t)__builtin_popcount(f->ec_mask) * it->emb_dim;
  if (n->flags & ~(uint32_t)FIT_FLAG_PROJ) return trt_fail(TOWERRT_ERR_UNSUPPORTED, "FIT MQM: unknown flags 0x%x", n->flags);
  f->proj = (n->flags & FIT_FLAG_PROJ) != 0;
  towerrt_status st = want(c, n->t[0], "MQM meta matrix Q", f->N, f->D);
  if (!st && f->proj) st = plain(c, n->t[1], n->t[2], "MQM e_c projection", f->ec_width, f->D, 0, &f->ec_proj);
  if (!st && !f->proj && f->ec_width != f->D)
    st = trt_fail(TOWERRT_ERR_SHAPE, "FIT MQM: e_c has %u values, D is %u, and there is no projection", f->ec_width, f->D);
  if (st) return st;
  const float *Q = data(c, n->t[0]);
  f->match = (trt_dense_layer){.in = f->D, .out = f->N, .wtype = TRT_DTYPE_F32, .w = Q, .src_weight = n->t[0]};
  /* Q* = (Q Q^T) Q in double: (Q Q^T)[i][j] once, then row i of Q*. */
  for (uint32_t i = 0; i < f->N; i++)
    for (uint32_t d = 0; d < f->D; d++) {
      double acc = 0.0;
      for (uint32_t j = 0; j < f->N; j++) {
        double g = 0.0;
        for (uint32_t e = 0; e < f->D; e++) g += (double)Q[(size_t)i * f->D + e] * Q[(size_t)j * f->D + e];
        acc += g * Q[(size_t)j * f->D + d];
      }
      qstar[(size_t)i * f->D + d] = (float)acc;
      if (!isfinite(qstar[(size_t)i * f->D + d])) return trt_fail(TOWERRT_ERR_NONFINITE, "FIT MQM: the hard query Q*[%u] overflows", i);
    }
  f->qstar = qstar;
  return TOWERRT_OK;
}

static towerrt_status din(cursor *c, trt_fit_model *f, int32_t mqm_out) {
  const trt_graph_node *n = &c->node;
  const trt_tower *u = &c->m->user;
  if (n->in[1] != mqm_out || n->attr[0] <= 0 || n->attr[0] > (int32_t)TRT_MAX_WIDTH || n->attr[1] < 0 || (uint32_t)n->attr[1] >= u->n_id_fields)
    return trt_fail(TOWERRT_ERR_FORMAT, "FIT DIN: query input %d, hidden %d, sequence field %d (the user side has %u id fields)", n->in[1],
                    n->attr[0], n->attr[1], u->n_id_fields);
  const trt_field *sf = &c->m->fields[u->first_field + (uint32_t)n->attr[1]];
  if (sf->kind != TRT_FIELD_MULTI) return trt_fail(TOWERRT_ERR_FORMAT, "FIT DIN: the behaviour sequence '%s' is not a multi-id field", sf->name);
  if (u->emb_dim != f->D)
    return trt_fail(TOWERRT_ERR_SHAPE, "FIT DIN: the sequence's embeddings have %u values, the meta queries %u", u->emb_dim, f->D);
  f->seq_field = n->attr[1];
  f->seq_len = sf->slots;
  f->A = (uint32_t)n->attr[0];
  towerrt_status st = plain(c, n->t[0], n->t[1], "DIN layer 0", 4 * f->D, f->A, 1, &f->din[0]);
  return st ? st : plain(c, n->t[2], n->t[3], "DIN layer 1", f->A, 1, 0, &f->din[1]);
}

/* CONCAT_DENSE, LINEAR..., LSS_PROJ of one side. */
static towerrt_status tower(cursor *c, trt_fit_model *f, uint32_t side, uint32_t width, float **pool) {
  towerrt_status st = take(c, TRT_OP_CONCAT_DENSE, side);
  if (st) return st;
  if (c->node.attr[0] != (int32_t)width)
    return trt_fail(TOWERRT_ERR_SHAPE, "FIT %s CONCAT_DENSE: width %d, the fields%s give %u", trt_side_name(side), c->node.attr[0],
                    side ? "" : ", the meta query and the DIN output", width);
  trt_tower *t = side ? &c->m->item : &c->m->user;
  uint32_t L = 0, in = width, max_w = width;
  for (; peek(c, TRT_OP_LINEAR); L++) {
    if (L >= TRT_MAX_LAYERS) return trt_fail(TOWERRT_ERR_LIMIT, "FIT %s tower: more than %u layers", trt_side_name(side), TRT_MAX_LAYERS);
    trt_dense_layer *d = side ? &t->layers[L] : &f->user[L];
    if ((st = take(c, TRT_OP_LINEAR, side)) || (st = linear(c, side, L, in, pool, d))) return st;
    in = d->out;
    if (in > max_w) max_w = in;
  }
  if (!L) return trt_fail(TOWERRT_ERR_FORMAT, "FIT graph: the %s tower has no LINEAR layer", trt_side_name(side));
  if ((st = take(c, TRT_OP_LSS_PROJ, side))) return st;
  const trt_graph_node *n = &c->node;
  if (n->flags & FIT_FLAG_L2NORM) return trt_fail(TOWERRT_ERR_UNSUPPORTED, "FIT LSS_PROJ: L2-normalised tower outputs are not served by this build");
  if (n->attr[0] <= 0 || n->attr[1] <= 0 || (uint64_t)n->attr[0] * (uint64_t)n->attr[1] > TRT_MAX_WIDTH || n->in[0] != c->prev)
    return trt_fail(TOWERRT_ERR_SHAPE, "FIT %s LSS_PROJ: %d heads x %d, input value %d", trt_side_name(side), n->attr[0], n->attr[1], n->in[0]);
  uint32_t H = (uint32_t)n->attr[0], p = (uint32_t)n->attr[1];
  if (side && p != f->p) return trt_fail(TOWERRT_ERR_SHAPE, "FIT LSS_PROJ: item heads of %u values, user heads of %u", p, f->p);
  trt_dense_layer *proj = side ? &t->fe[0] : &f->user_proj;
  if ((st = plain(c, n->t[0], n->t[1], "LSS projection", in, H * p, 0, proj))) return st;
  if (side) {
    t->n_layers = L;
    t->fe_present = 1;
    t->max_width = max_w;
    f->Hv = H;
  } else {
    f->n_user = L;
    f->Hu = H;
    f->p = p;
    f->max_user_width = max_w > H * p ? max_w : H * p;
  }
  return TOWERRT_OK;
}

/* LSS_NORM: S * exp(s), then BatchNorm over vec(S) (eval), as one affine map. */
static towerrt_status lss_norm(cursor *c, trt_fit_model *f, float *mul) {
  const trt_graph_node *n = &c->node;
  uint32_t hh = f->Hu * f->Hv;
  if (n->attr[0] != (int32_t)f->Hu || n->attr[1] != (int32_t)f->Hv || !n->flags || n->flags & ~3u)
    return trt_fail(TOWERRT_ERR_FORMAT, "FIT LSS_NORM: attrs %d x %d (S is %u x %u), flags 0x%x", n->attr[0], n->attr[1], f->Hu, f->Hv, n->flags);
  f->scale = (n->flags & FIT_NORM_SCALE) != 0;
  f->bn = (n->flags & FIT_NORM_BN) != 0;
  towerrt_status st = f->scale ? want(c, n->t[0], "LSS log scale", 1, 0) : TOWERRT_OK;
  for (int i = 1; f->bn && !st && i < 5; i++) st = want(c, n->t[i], "LSS BatchNorm", hh, 0);
  if (st) return st;
  if (f->bn && !(n->eps > 0.0f && isfinite(n->eps))) return trt_fail(TOWERRT_ERR_FORMAT, "FIT LSS_NORM: BatchNorm eps must be positive");
  double scale = f->scale ? exp((double)data(c, n->t[0])[0]) : 1.0;
  float *add = mul + hh;
  for (uint32_t i = 0; i < hh; i++) {
    double s = 1.0, shift = 0.0;
    if (f->bn) {
      double var = data(c, n->t[4])[i];
      if (var < 0) return trt_fail(TOWERRT_ERR_FORMAT, "FIT LSS_NORM: negative running_var at %u", i);
      s = data(c, n->t[1])[i] / sqrt(var + n->eps);
      shift = data(c, n->t[2])[i] - data(c, n->t[3])[i] * s;
    }
    mul[i] = (float)(scale * s);
    add[i] = (float)shift;
    if (!isfinite(mul[i]) || !isfinite(add[i])) return trt_fail(TOWERRT_ERR_NONFINITE, "FIT LSS_NORM: folding the scale / BatchNorm overflows");
  }
  f->s_mul = mul;
  f->s_add = add;
  return TOWERRT_OK;
}

static towerrt_status lss(cursor *c, trt_fit_model *f) {
  const trt_graph_node *n = &c->node;
  if (n->attr[0] <= 0 || n->attr[0] > 4096) return trt_fail(TOWERRT_ERR_SHAPE, "FIT LSS: o = %d out of range", n->attr[0]);
  f->o = (uint32_t)n->attr[0];
  towerrt_status st = plain(c, n->t[0], n->t[1], "LSS row layer", f->Hv, f->o, 1, &f->row);
  if (!st) st = plain(c, n->t[2], n->t[3], "LSS column layer", f->Hu, f->o, 1, &f->col);
  if (!st) st = plain(c, n->t[4], n->t[5], "LSS output", f->o * f->o, 1, 0, &f->out);
  return st;
}

/* Floats of the owned block: every folded Linear, Q*, the affine map of S. */
/* Floats of the owned block: every folded Linear, Q*, the affine map of S,
 * and the widened item tower (family_fit.h), so that every tower weight
 * lives in m->owned (placement copies that block and rebases into it).
 * From the file's attrs, which the walk then checks. */
static size_t owned_floats(const trt_section *g, uint32_t n_nodes) {
  size_t total = 0, N = 0, last_item_out = 0;
  for (uint32_t i = 0; i < n_nodes; i++) {
    trt_graph_node n;
    trt_graph_node_read(g, i, &n);
    if (n.op == TRT_OP_MQM && n.attr[0] > 0) N = (size_t)n.attr[0];
  }
  for (uint32_t i = 0; i < n_nodes; i++) {
    trt_graph_node n;
    trt_graph_node_read(g, i, &n);
    if (n.attr[0] <= 0 || n.attr[1] <= 0) continue;
    size_t a0 = (size_t)n.attr[0], a1 = (size_t)n.attr[1];
    if (n.op == TRT_OP_LINEAR) {
      total += a1 * (a0 + 1);
      if (n.side == TOWERRT_ITEM) total += (a1 + 2 * N) * (a0 + (n.layer > 0 ? 2 * N : 0) + 1), last_item_out = a1;
    }
    if (n.op == TRT_OP_LSS_PROJ && n.side == TOWERRT_ITEM) total += (a0 * a1 + (N + a1 - 1) / a1 * a1) * (last_item_out + 2 * N + 1);
    if (n.op == TRT_OP_MQM) total += a0 * a1;
    if (n.op == TRT_OP_LSS_NORM) total += 2 * a0 * a1;
  }
  return total;
}

static towerrt_status walk(cursor *c, trt_fit_model *f, float **pool_io) {
  float *pool = *pool_io;
  towerrt_model *m = c->m;
  towerrt_status st;
  if ((st = take(c, TRT_OP_EMBED, TOWERRT_USER)) || (st = take(c, TRT_OP_EMBED, TOWERRT_ITEM))) return st;
  int32_t item_embed = c->node.out;
  if ((st = take(c, TRT_OP_MQM, TOWERRT_ITEM))) return st;
  if (c->node.in[0] != item_embed) return trt_fail(TOWERRT_ERR_FORMAT, "FIT MQM must read the item EMBED output");
  if ((st = mqm(c, f, pool))) return st;
  pool += (size_t)f->N * f->D;
  int32_t mqm_out = c->node.out;
  f->seq_field = -1;
  if (peek(c, TRT_OP_DIN) && ((st = take(c, TRT_OP_DIN, TOWERRT_USER)) || (st = din(c, f, mqm_out)))) return st;
  const trt_tower *u = &m->user;
  uint32_t seq = f->seq_field >= 0;
  f->user_in = (u->n_id_fields - seq) * u->emb_dim + f->D * (1 + seq) + u->dense_width;
  if ((st = tower(c, f, TOWERRT_USER, f->user_in, &pool))) return st;
  if ((st = tower(c, f, TOWERRT_ITEM, m->item.input_width, &pool))) return st;
  if (peek(c, TRT_OP_LSS_NORM) && ((st = take(c, TRT_OP_LSS_NORM, 2)) || (st = lss_norm(c, f, pool)))) return st;
  if ((st = take(c, TRT_OP_LSS, 2)) || (st = lss(c, f)) || (st = take(c, TRT_OP_PREDICT, 2))) return st;
  if (c->i != c->n) return trt_fail(TOWERRT_ERR_FORMAT, "FIT graph: %u nodes after PREDICT", c->n - c->i);
  if (f->s_mul) pool += 2 * (size_t)f->Hu * f->Hv;
  *pool_io = pool;
  return TOWERRT_OK;
}

static towerrt_status check_meta(towerrt_model *m) {
  trt_meta_value v;
  m->output_sigmoid = 1;
  if (trt_meta_find(&m->meta, "fit.output", &v) && v.type == TRT_META_STRING) {
    if (v.len == 8 && !memcmp(v.str, "identity", 8)) m->output_sigmoid = 0;
    else if (!(v.len == 7 && !memcmp(v.str, "sigmoid", 7))) return trt_fail(TOWERRT_ERR_UNSUPPORTED, "fit.output must be 'sigmoid' or 'identity'");
  }
  if (trt_meta_find(&m->meta, "quantization", &v) && !(v.type == TRT_META_STRING && v.len == 4 && !memcmp(v.str, "none", 4)))
    return trt_fail(TOWERRT_ERR_UNSUPPORTED, "quantized FIT models are not supported by this build (quantization != 'none')");
  return TOWERRT_OK;
}

static towerrt_status widen_item_tower(towerrt_model *m, trt_fit_model *f, float *pool, size_t room);

towerrt_status trt_fit_compile(towerrt_model *m) {
  const trt_section *g;
  towerrt_status st = trt_container_require(&m->container, TRT_SEC_GRAPH, "GRAPH", &g);
  if (st) return st;
  trt_fit_model *f = calloc(1, sizeof *f);
  if (!f) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  m->family_data = f;
  uint32_t n_nodes;
  if ((st = check_meta(m)) || (st = trt_plan_fields(m, TOWERRT_USER)) || (st = trt_plan_fields(m, TOWERRT_ITEM)) ||
      (st = trt_graph_count(g, &n_nodes)))
    return st;
  size_t floats = owned_floats(g, n_nodes);
  if ((st = trt_model_reserve(m, (uint64_t)floats * sizeof(float), "folded FIT weights"))) return st;
  m->owned_bytes = (floats ? floats : 16) * sizeof(float);
  m->owned = aligned_alloc(64, (m->owned_bytes + 63) & ~(size_t)63);
  if (!m->owned) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for %zu folded FIT weights", floats);
  cursor c = {.m = m, .g = g, .n = n_nodes, .prev = -1};
  float *pool = (float *)(void *)m->owned;
  if ((st = walk(&c, f, &pool))) return st;
  m->user.max_width = m->user.input_width; /* the shared workspace's user slices (unused by FIT's request) */
  m->heads_user = 0; /* no user heads of the shared kind: FIT's run per query index */
  m->heads_item = f->Hv;
  m->head_dim = f->p;
  m->trained_fe_mask = 0;
  m->out_bias = 0.0f; /* in the LSS output layer */
  return widen_item_tower(m, f, pool, floats - (size_t)(pool - (float *)(void *)m->owned));
}

/* The widened item tower (family_fit.h): layer L gets 2N more outputs,
 * relu(+m) and relu(-m) of the match logits m = C x0 + c (layer 0, C =
 * Q W_proj on the e_c positions of the tower input) or one-hot copies of
 * the previous layer's carried values; fe[0] gets N outputs (+1, -1 on
 * the carried pair) and zeros to whole heads. In double, stored f32. */
static size_t carry_floats(const trt_tower *t, uint32_t N, uint32_t extra_out) {
  size_t n = 0;
  for (uint32_t L = 0; L < t->n_layers; L++) n += (size_t)(t->layers[L].out + 2 * N) * (t->layers[L].in + (L ? 2 * N : 0) + 1);
  return n + (size_t)(t->fe[0].out + extra_out) * (t->fe[0].in + 2 * N + 1);
}

static void match_coefficients(const towerrt_model *m, const trt_fit_model *f, uint32_t j, double *coef, double *bias) {
  const trt_tower *t = &f->item_plain;
  const float *q = f->match.w + (size_t)j * f->D;
  memset(coef, 0, t->input_width * sizeof *coef);
  *bias = 0.0;
  for (uint32_t d = 0; d < f->D; d++)
    if (f->proj) *bias += (double)q[d] * f->ec_proj.b[d];
  uint32_t e = 0;
  for (uint32_t fi = 0; fi < t->n_id_fields; fi++) {
    if (!(f->ec_mask >> fi & 1u)) continue;
    for (uint32_t x = 0; x < t->emb_dim; x++, e++) {
      double c = 0.0;
      if (f->proj)
        for (uint32_t d = 0; d < f->D; d++) c += (double)q[d] * f->ec_proj.w[(size_t)d * f->ec_width + e];
      else
        c = q[e];
      coef[(size_t)fi * t->emb_dim + x] = c;
    }
  }
  (void)m;
}

static towerrt_status widen_item_tower(towerrt_model *m, trt_fit_model *f, float *pool, size_t room) {
  trt_tower *t = &m->item;
  const uint32_t N = f->N, hv = f->Hv * f->p, pad = (N + f->p - 1) / f->p * f->p;
  f->item_plain = *t;
  f->row_len = hv + pad;
  size_t floats = carry_floats(t, N, pad);
  if (floats > room) return trt_fail(TOWERRT_ERR_FORMAT, "FIT graph: the item tower's sizes disagree with its nodes' attrs");
  memset(pool, 0, floats * sizeof(float));
  double *coef = malloc((t->input_width + 1) * sizeof *coef);
  if (!coef) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  float *p = pool;
  uint32_t max_w = t->input_width;
  for (uint32_t L = 0; L <= t->n_layers; L++) {
    const trt_dense_layer *d = L < t->n_layers ? &f->item_plain.layers[L] : &f->item_plain.fe[0];
    int fe = L == t->n_layers;
    uint32_t in = d->in + (L ? 2 * N : 0), out = d->out + (fe ? pad : 2 * N);
    float *w = p, *b = p + (size_t)out * in;
    p = b + out;
    for (uint32_t o = 0; o < d->out; o++) { /* the trained outputs, zeros on the carried inputs */
      memcpy(w + (size_t)o * in, d->w + (size_t)o * d->in, d->in * sizeof(float));
      b[o] = d->b[o];
    }
    for (uint32_t j = 0; j < N; j++) {
      float *pos = w + (size_t)(d->out + j) * in, *neg = fe ? NULL : w + (size_t)(d->out + N + j) * in;
      if (L == 0 && !fe) {
        double c0;
        match_coefficients(m, f, j, coef, &c0);
        for (uint32_t i = 0; i < in; i++) pos[i] = (float)coef[i], neg[i] = (float)-coef[i];
        b[d->out + j] = (float)c0, b[d->out + N + j] = (float)-c0;
      } else if (!fe) {
        pos[d->in + j] = 1.0f, neg[d->in + N + j] = 1.0f;
      } else {
        pos[d->in + j] = 1.0f, pos[d->in + N + j] = -1.0f;
      }
    }
    for (size_t i = 0; i < (size_t)out * (in + 1); i++)
      if (!isfinite(w[i])) {
        free(coef);
        return trt_fail(TOWERRT_ERR_NONFINITE, "FIT: the match logits' coefficients overflow");
      }
    trt_dense_layer wide = *d;
    wide.in = in, wide.out = out, wide.w = w, wide.b = b;
    if (fe) t->fe[0] = wide;
    else t->layers[L] = wide;
    if (out > max_w) max_w = out;
  }
  free(coef);
  t->max_width = max_w;
  m->heads_item = f->row_len / f->p;
  return TOWERRT_OK;
}

void trt_fit_free(towerrt_model *m) {
  free(m->family_data);
  m->family_data = NULL;
}
