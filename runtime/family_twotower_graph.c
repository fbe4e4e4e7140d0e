/* Graph compiler of the two-tower family (docs/family.md; GRAPH pattern in
 * docs/format.md): checks META and that the GRAPH section is the DSSM / DAT
 * pattern, binds and checks every tensor, folds BatchNorm (and DAT's
 * constant augmented vector) into the Linear layers, and lays the towers
 * out the way runtime/arch_family.h describes, so that the shared tower
 * code runs them. Everything read from the file is validated here: a
 * malformed graph is a FORMAT / SHAPE error, never a crash. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "family_twotower.h"
#include "crc32.h"
#include "status.h"

#define MAX_VALUES 1024

enum { V_NONE = 0, V_EMBED, V_AUG, V_X, V_SCORE, V_PRED };

typedef trt_graph_node fnode;

/* One Linear of the file, before folding. */
typedef struct flayer {
  uint32_t in, out;
  int relu, bn;
  int32_t w, b, bn_t[4];
  float eps;
} flayer;

typedef struct fstate {
  towerrt_model *m;
  trt_twotower_model *a;
  struct {
    int kind;
    uint32_t side;
  } values[MAX_VALUES];
  int have_embed[2], have_concat[2], have_sim, have_pred;
  int32_t last[2]; /* value id of the side's current activation (-1: none yet) */
  uint32_t width[2]; /* its width */
  flayer layers[2][TRT_MAX_LAYERS];
  int32_t sim_in[2];
} fstate;


static int meta_str(const trt_meta *meta, const char *key, const char *want, int *found) {
  trt_meta_value v;
  *found = trt_meta_find(meta, key, &v) && v.type == TRT_META_STRING;
  return *found && v.len == strlen(want) && memcmp(v.str, want, v.len) == 0;
}

/* The f32 tensor `ti` with d0 elements (d1 == 0: 1-D or scalar) or shape (d0, d1). */
static towerrt_status want_tensor(const towerrt_model *m, uint32_t ni, int32_t ti, const char *role, uint32_t d0, uint32_t d1) {
  if (ti < 0 || (uint32_t)ti >= m->n_tensors)
    return trt_fail(TOWERRT_ERR_FORMAT, "graph node %u: %s tensor index %d out of range (%u tensors)", ni, role, ti, m->n_tensors);
  const trt_tensor *t = &m->tensors[ti];
  if (t->dtype != TRT_DTYPE_F32)
    return trt_fail(TOWERRT_ERR_UNSUPPORTED, "tensor '%s' (%s): dtype %u, this build runs f32 weights", t->name, role, t->dtype);
  int ok = d1 ? (t->ndim == 2 && t->dims[0] == d0 && t->dims[1] == d1) : (t->count == d0 && t->ndim <= 1);
  if (!ok)
    return trt_fail(TOWERRT_ERR_SHAPE, "tensor '%s' (%s): shape (%u, %u) with %u dims, expected (%u%s%u)", t->name, role, t->dims[0],
                    t->dims[1], t->ndim, d0, d1 ? ", " : "", d1 ? d1 : 0);
  return TOWERRT_OK;
}

static towerrt_status define(fstate *fs, uint32_t ni, int32_t v, int kind, uint32_t side) {
  if (v < 0 || v >= MAX_VALUES) return trt_fail(TOWERRT_ERR_FORMAT, "graph node %u: output value id %d out of range 0..%d", ni, v, MAX_VALUES - 1);
  if (fs->values[v].kind != V_NONE) return trt_fail(TOWERRT_ERR_FORMAT, "graph node %u: value %d is defined twice", ni, v);
  fs->values[v].kind = kind;
  fs->values[v].side = side;
  return TOWERRT_OK;
}

static int is_value(const fstate *fs, int32_t v, int kind, uint32_t side) {
  return v >= 0 && v < MAX_VALUES && fs->values[v].kind == kind && fs->values[v].side == side;
}

static towerrt_status node_augment(fstate *fs, uint32_t ni, const fnode *n) {
  const trt_tower *t = n->side ? &fs->m->item : &fs->m->user;
  if (fs->a->kind != TRT_TWOTOWER_DAT)
    return trt_fail(TOWERRT_ERR_FORMAT, "graph node %u: AUGMENT (DAT's augmented vector) in a model whose architecture is not 'dat'", ni);
  if (fs->a->aug_width[n->side]) return trt_fail(TOWERRT_ERR_FORMAT, "graph node %u: a second %s AUGMENT", ni, trt_side_name(n->side));
  if (!is_value(fs, n->in[0], V_EMBED, n->side))
    return trt_fail(TOWERRT_ERR_FORMAT, "graph node %u: AUGMENT input value %d is not the %s EMBED output", ni, n->in[0], trt_side_name(n->side));
  if (n->attr[0] <= 0 || (uint64_t)n->attr[0] + t->input_width > TRT_MAX_WIDTH)
    return trt_fail(TOWERRT_ERR_SHAPE, "%s AUGMENT: width %d out of range", trt_side_name(n->side), n->attr[0]);
  towerrt_status st = want_tensor(fs->m, ni, n->t[0], "augmented vector", (uint32_t)n->attr[0], 0);
  if (st) return st;
  fs->a->aug_width[n->side] = (uint32_t)n->attr[0];
  fs->a->aug_tensor[n->side] = n->t[0];
  return define(fs, ni, n->out, V_AUG, n->side);
}

static towerrt_status node_concat(fstate *fs, uint32_t ni, const fnode *n) {
  const trt_tower *t = n->side ? &fs->m->item : &fs->m->user;
  if (fs->have_concat[n->side]) return trt_fail(TOWERRT_ERR_FORMAT, "graph node %u: a second %s CONCAT_DENSE", ni, trt_side_name(n->side));
  int aug = fs->a->aug_width[n->side] != 0;
  if (!is_value(fs, n->in[0], aug ? V_AUG : V_EMBED, n->side))
    return trt_fail(TOWERRT_ERR_FORMAT, "graph node %u: CONCAT_DENSE input value %d is not the %s %s output", ni, n->in[0],
                    trt_side_name(n->side), aug ? "AUGMENT" : "EMBED");
  uint32_t width = t->input_width + fs->a->aug_width[n->side];
  if (n->attr[0] < 0 || (uint32_t)n->attr[0] != width)
    return trt_fail(TOWERRT_ERR_SHAPE, "%s CONCAT_DENSE: width %d, the fields%s give %u", trt_side_name(n->side), n->attr[0],
                    aug ? " and the augmented vector" : "", width);
  fs->have_concat[n->side] = 1;
  fs->last[n->side] = n->out;
  fs->width[n->side] = width;
  fs->a->in_width[n->side] = width;
  return define(fs, ni, n->out, V_X, n->side);
}

static towerrt_status node_linear(fstate *fs, uint32_t ni, const fnode *n) {
  uint32_t s = n->side, L = fs->a->depth[s];
  if (n->layer < 0 || (uint32_t)n->layer != L || L >= TRT_MAX_LAYERS)
    return trt_fail(TOWERRT_ERR_FORMAT, "%s LINEAR node %u: layer %d, expected %u (at most %u layers)", trt_side_name(s), ni, n->layer, L, TRT_MAX_LAYERS);
  if (fs->last[s] < 0 || n->in[0] != fs->last[s])
    return trt_fail(TOWERRT_ERR_FORMAT, "%s LINEAR layer %u: input value %d is not the %s", trt_side_name(s), L, n->in[0],
                    L ? "output of the previous layer" : "CONCAT_DENSE output");
  uint32_t in = fs->width[s], out = (uint32_t)n->attr[1];
  if (n->attr[0] < 0 || (uint32_t)n->attr[0] != in || n->attr[1] <= 0 || out > TRT_MAX_WIDTH)
    return trt_fail(TOWERRT_ERR_SHAPE, "%s LINEAR layer %u: attrs (in %d, out %d), the previous width is %u", trt_side_name(s), L, n->attr[0], n->attr[1], in);
  towerrt_status st = want_tensor(fs->m, ni, n->t[0], "Linear weight", out, in);
  if (!st && n->t[1] >= 0) st = want_tensor(fs->m, ni, n->t[1], "Linear bias", out, 0);
  if (st) return st;
  flayer *fl = &fs->layers[s][L];
  *fl = (flayer){.in = in, .out = out, .relu = (n->flags & 1u) != 0, .bn = (n->flags & 2u) != 0, .w = n->t[0], .b = n->t[1], .eps = n->eps};
  if (n->flags & ~3u) return trt_fail(TOWERRT_ERR_FORMAT, "%s LINEAR layer %u: unknown flags 0x%x", trt_side_name(s), L, n->flags);
  if (fl->bn) {
    static const char *const roles[4] = {"BatchNorm weight", "BatchNorm bias", "BatchNorm running_mean", "BatchNorm running_var"};
    for (int i = 0; i < 4; i++) {
      if ((st = want_tensor(fs->m, ni, n->t[2 + i], roles[i], out, 0))) return st;
      fl->bn_t[i] = n->t[2 + i];
    }
    if (!(n->eps > 0.0f) || !isfinite(n->eps))
      return trt_fail(TOWERRT_ERR_FORMAT, "%s LINEAR layer %u: BatchNorm eps %g must be positive", trt_side_name(s), L, (double)n->eps);
    const float *var = fs->m->tensors[n->t[5]].data;
    for (uint32_t o = 0; o < out; o++)
      if (var[o] < 0.0f) return trt_fail(TOWERRT_ERR_FORMAT, "tensor '%s': negative running_var at %u", fs->m->tensors[n->t[5]].name, o);
  }
  fs->a->depth[s] = L + 1;
  fs->last[s] = n->out;
  fs->width[s] = out;
  return define(fs, ni, n->out, V_X, s);
}

static towerrt_status node_score(fstate *fs, uint32_t ni, const fnode *n) {
  towerrt_status st;
  if (n->side != 2) return trt_fail(TOWERRT_ERR_FORMAT, "graph node %u (op %u): side %u, score nodes have side 2", ni, n->op, n->side);
  if (n->op == TRT_OP_SIMILARITY) {
    if (fs->have_sim) return trt_fail(TOWERRT_ERR_FORMAT, "graph has two SIMILARITY nodes");
    for (uint32_t s = 0; s < 2; s++)
      if (!is_value(fs, n->in[s], V_X, s))
        return trt_fail(TOWERRT_ERR_FORMAT, "graph node %u: SIMILARITY input %u (value %d) is not a %s tower activation", ni, s, n->in[s], trt_side_name(s));
    if (n->attr[1] != TRT_SIM_COSINE && n->attr[1] != TRT_SIM_DOT)
      return trt_fail(TOWERRT_ERR_UNSUPPORTED, "SIMILARITY kind %d (0 cosine, 1 dot)", n->attr[1]);
    if (!isfinite(n->eps)) return trt_fail(TOWERRT_ERR_NONFINITE, "SIMILARITY gamma is not finite");
    if (n->attr[0] <= 0 || n->attr[0] > (int32_t)TRT_MAX_WIDTH) return trt_fail(TOWERRT_ERR_SHAPE, "SIMILARITY dim %d out of range", n->attr[0]);
    fs->a->similarity = (uint32_t)n->attr[1];
    fs->a->gamma = n->eps;
    fs->a->dim = (uint32_t)n->attr[0];
    fs->sim_in[0] = n->in[0];
    fs->sim_in[1] = n->in[1];
    fs->have_sim = 1;
    return define(fs, ni, n->out, V_SCORE, 2);
  }
  /* PREDICT */
  if (!is_value(fs, n->in[0], V_SCORE, 2))
    return trt_fail(TOWERRT_ERR_FORMAT, "graph node %u: PREDICT input value %d is not the SIMILARITY output", ni, n->in[0]);
  if (fs->have_pred) return trt_fail(TOWERRT_ERR_FORMAT, "graph has two PREDICT nodes");
  if (n->t[0] >= 0) {
    if ((st = want_tensor(fs->m, ni, n->t[0], "output bias", 1, 0))) return st;
    fs->m->out_bias = *(const float *)fs->m->tensors[n->t[0]].data;
  }
  fs->have_pred = 1;
  return define(fs, ni, n->out, V_PRED, 2);
}

static towerrt_status compile_node(fstate *fs, uint32_t ni, const fnode *n) {
  int tower_op = n->op == TRT_OP_EMBED || n->op == TRT_OP_CONCAT_DENSE || n->op == TRT_OP_LINEAR || n->op == TRT_OP_AUGMENT;
  if (tower_op && n->side > 1) return trt_fail(TOWERRT_ERR_FORMAT, "graph node %u (op %u): side %u is not user or item", ni, n->op, n->side);
  switch (n->op) {
    case TRT_OP_EMBED:
      if (fs->have_embed[n->side]) return trt_fail(TOWERRT_ERR_FORMAT, "two %s EMBED nodes", trt_side_name(n->side));
      fs->have_embed[n->side] = 1;
      return define(fs, ni, n->out, V_EMBED, n->side);
    case TRT_OP_AUGMENT: return node_augment(fs, ni, n);
    case TRT_OP_CONCAT_DENSE: return node_concat(fs, ni, n);
    case TRT_OP_LINEAR: return node_linear(fs, ni, n);
    case TRT_OP_SIMILARITY: case TRT_OP_PREDICT: return node_score(fs, ni, n);
    default:
      return trt_fail(TOWERRT_ERR_UNSUPPORTED, "graph node %u: op %u is not part of the two-tower family graph (EMBED, AUGMENT, "
                      "CONCAT_DENSE, LINEAR, SIMILARITY, PREDICT)", ni, n->op);
  }
}

static towerrt_status check_complete(fstate *fs) {
  for (uint32_t s = 0; s < 2; s++) {
    if (!fs->have_embed[s] || !fs->have_concat[s])
      return trt_fail(TOWERRT_ERR_FORMAT, "graph: the %s side lacks EMBED or CONCAT_DENSE", trt_side_name(s));
    if (!fs->a->depth[s]) return trt_fail(TOWERRT_ERR_FORMAT, "graph: the %s tower has no LINEAR layer", trt_side_name(s));
  }
  if (!fs->have_sim || !fs->have_pred) return trt_fail(TOWERRT_ERR_FORMAT, "graph: no SIMILARITY or no PREDICT node");
  for (uint32_t s = 0; s < 2; s++) {
    if (fs->sim_in[s] != fs->last[s])
      return trt_fail(TOWERRT_ERR_FORMAT, "graph: SIMILARITY must read the output of the last %s layer (%u)", trt_side_name(s), fs->a->depth[s] - 1);
    if (fs->width[s] != fs->a->dim)
      return trt_fail(TOWERRT_ERR_SHAPE, "graph: SIMILARITY dim %u, but the %s tower ends with %u values", fs->a->dim, trt_side_name(s), fs->width[s]);
  }
  return TOWERRT_OK;
}

/* META must agree with the graph. */
static towerrt_status check_meta(fstate *fs) {
  towerrt_model *m = fs->m;
  trt_twotower_model *a = fs->a;
  int found;
  m->output_sigmoid = 1;
  if (!meta_str(&m->meta, "two_tower.output", "sigmoid", &found) && found) {
    if (!meta_str(&m->meta, "two_tower.output", "identity", &found))
      return trt_fail(TOWERRT_ERR_UNSUPPORTED, "two_tower.output must be 'sigmoid' or 'identity'");
    m->output_sigmoid = 0;
  }
  if (!meta_str(&m->meta, "quantization", "none", &found) && found)
    return trt_fail(TOWERRT_ERR_UNSUPPORTED, "quantized models are not supported by this build (quantization != 'none')");
  static const char *const sims[2] = {"cosine", "dot"};
  if (!meta_str(&m->meta, "two_tower.similarity", sims[a->similarity], &found) && found)
    return trt_fail(TOWERRT_ERR_FORMAT, "two_tower.similarity disagrees with the graph's SIMILARITY node (%s)", sims[a->similarity]);
  trt_meta_value v;
  if (trt_meta_find(&m->meta, "two_tower.gamma", &v) && (v.type != TRT_META_FLOAT || (float)v.f != a->gamma))
    return trt_fail(TOWERRT_ERR_FORMAT, "two_tower.gamma disagrees with the graph's SIMILARITY node (gamma %g)", (double)a->gamma);
  if (trt_meta_find(&m->meta, "two_tower.dim", &v) && (v.type != TRT_META_INT || v.i != (int64_t)a->dim))
    return trt_fail(TOWERRT_ERR_SHAPE, "two_tower.dim = %lld, but the graph's vectors have %u values", (long long)v.i, a->dim);
  if (a->kind == TRT_TWOTOWER_DAT) {
    /* dat.augment: 'constant' (AUGMENT nodes on both sides, folded into
     * layer 0) or 'input' (dense fields user_aug_vector / item_aug_vector). */
    int constant = meta_str(&m->meta, "dat.augment", "constant", &found);
    if (!found) return trt_fail(TOWERRT_ERR_FORMAT, "a 'dat' model needs META dat.augment ('constant' or 'input')");
    if (!constant && !meta_str(&m->meta, "dat.augment", "input", &found))
      return trt_fail(TOWERRT_ERR_UNSUPPORTED, "dat.augment must be 'constant' or 'input'");
    for (uint32_t s = 0; s < 2; s++) {
      if (constant != (a->aug_width[s] != 0))
        return trt_fail(TOWERRT_ERR_FORMAT, "dat.augment is '%s' but the %s side %s an AUGMENT node", constant ? "constant" : "input",
                        trt_side_name(s), constant ? "lacks" : "has");
      if (constant) continue;
      const trt_tower *t = s ? &m->item : &m->user;
      const char *want = s ? "item_aug_vector" : "user_aug_vector";
      for (uint32_t i = 0; i < t->n_fields; i++) {
        const trt_field *f = &m->fields[t->first_field + i];
        if (f->kind == TRT_FIELD_DENSE && strcmp(f->name, want) == 0) a->aug_input[s] = f->dim;
      }
      if (!a->aug_input[s])
        return trt_fail(TOWERRT_ERR_FORMAT, "dat.augment is 'input' but the %s side has no dense field '%s'", trt_side_name(s), want);
    }
  }
  return TOWERRT_OK;
}

static size_t padded(size_t floats) { return (floats + 15) & ~(size_t)15; }

/* W' = W * s, b' = (b + W_aug a - mean) * s + beta with s = gamma / sqrt(var
 * + eps) (s = 1, no mean/beta without BN), in double, into w (out x in'),
 * b. Layer 0 of a side with a constant augmented vector drops the aug
 * columns (they sit right after the id embeddings) and folds W_aug a. */
static towerrt_status fold(const towerrt_model *m, const trt_twotower_model *a, uint32_t side, uint32_t L, const flayer *fl, float *w,
                           float *b, uint32_t *in_out) {
  const trt_tower *t = side ? &m->item : &m->user;
  const float *W = m->tensors[fl->w].data;
  const float *B = fl->b >= 0 ? m->tensors[fl->b].data : NULL;
  uint32_t aug = L == 0 ? a->aug_width[side] : 0;
  uint32_t at = t->n_id_fields * t->emb_dim; /* first aug column */
  const float *av = aug ? m->tensors[a->aug_tensor[side]].data : NULL;
  uint32_t in = fl->in - aug;
  for (uint32_t o = 0; o < fl->out; o++) {
    double s = 1.0, shift = 0.0, extra = 0.0;
    if (fl->bn) {
      const float *g = m->tensors[fl->bn_t[0]].data, *be = m->tensors[fl->bn_t[1]].data, *mu = m->tensors[fl->bn_t[2]].data,
                  *var = m->tensors[fl->bn_t[3]].data;
      s = (double)g[o] / sqrt((double)var[o] + (double)fl->eps);
      shift = (double)be[o] - (double)mu[o] * s;
    }
    const float *row = W + (size_t)o * fl->in;
    for (uint32_t j = 0; j < aug; j++) extra += (double)row[at + j] * (double)av[j];
    for (uint32_t i = 0; i < in; i++) w[(size_t)o * in + i] = (float)((double)row[i < at || !aug ? i : i + aug] * s);
    b[o] = (float)(((B ? (double)B[o] : 0.0) + extra) * s + shift);
  }
  for (size_t i = 0; i < (size_t)fl->out * (in + 1); i++) /* b follows w */
    if (!isfinite(w[i]))
      return trt_fail(TOWERRT_ERR_NONFINITE, "%s layer %u: folding BatchNorm%s into the Linear overflows", trt_side_name(side), L,
                      aug ? " and the augmented vector" : "");
  *in_out = in;
  return TOWERRT_OK;
}

/* Folds every layer into one owned block (placement copies it whole) and
 * lays the towers out: layers 0..N-2 as tower layers, layer N-1 as the
 * side's FE projection (user slot N-1, item slot 0). */
static towerrt_status fold_all(fstate *fs) {
  towerrt_model *m = fs->m;
  trt_twotower_model *a = fs->a;
  size_t total = 0;
  for (uint32_t s = 0; s < 2; s++)
    for (uint32_t L = 0; L < a->depth[s]; L++) total += padded((size_t)fs->layers[s][L].out * (fs->layers[s][L].in + 1));
  towerrt_status st = trt_model_reserve(m, (uint64_t)total * sizeof(float), "folded weights");
  if (st) return st;
  m->owned_bytes = total * sizeof(float);
  m->owned = aligned_alloc(64, m->owned_bytes ? m->owned_bytes : 64);
  if (!m->owned) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for %zu folded weights", total);
  float *p = (float *)m->owned;
  for (uint32_t s = 0; s < 2; s++) {
    trt_tower *t = s ? &m->item : &m->user;
    uint32_t N = a->depth[s];
    t->max_width = t->input_width;
    t->n_layers = N - 1;
    for (uint32_t L = 0; L < N; L++) {
      const flayer *fl = &fs->layers[s][L];
      uint32_t in = 0;
      float *w = p, *b = p + (size_t)fl->out * (fl->in - (L == 0 ? a->aug_width[s] : 0));
      st = fold(m, a, s, L, fl, w, b, &in);
      if (st) return st;
      p += padded((size_t)fl->out * (fl->in + 1));
      trt_dense_layer d = {.in = in, .out = fl->out, .relu = fl->relu, .w = w, .b = b, .src_weight = fl->w, .folded_bn = fl->bn};
      if (L + 1 < N) {
        t->layers[L] = d;
        if (d.out > t->max_width) t->max_width = d.out;
      } else {
        uint32_t slot = s ? 0 : N - 1;
        t->fe[slot] = d;
        t->fe_present = 1u << slot;
      }
    }
  }
  m->heads_user = m->heads_item = 1;
  m->head_dim = a->dim;
  m->trained_fe_mask = m->user.fe_present;
  return TOWERRT_OK;
}

towerrt_status trt_twotower_compile(towerrt_model *m) {
  const trt_section *g;
  towerrt_status st = trt_container_require(&m->container, TRT_SEC_GRAPH, "GRAPH", &g);
  if (st) return st;
  trt_twotower_model *a = calloc(1, sizeof *a);
  if (!a) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  m->family_data = a;
  int found;
  a->kind = meta_str(&m->meta, "general.architecture", "dat", &found) ? TRT_TWOTOWER_DAT : TRT_TWOTOWER_DSSM;
  a->aug_tensor[0] = a->aug_tensor[1] = -1;
  if ((st = trt_plan_fields(m, TOWERRT_USER)) || (st = trt_plan_fields(m, TOWERRT_ITEM))) return st;
  uint32_t n_nodes;
  if ((st = trt_graph_count(g, &n_nodes))) return st;
  fstate *fs = calloc(1, sizeof *fs);
  if (!fs) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  fs->m = m;
  fs->a = a;
  fs->last[0] = fs->last[1] = fs->sim_in[0] = fs->sim_in[1] = -1;
  for (uint32_t i = 0; i < n_nodes && !st; i++) {
    fnode n;
    trt_graph_node_read(g, i, &n);
    st = compile_node(fs, i, &n);
  }
  if (!st) st = check_complete(fs);
  if (!st) st = check_meta(fs);
  if (!st) st = fold_all(fs);
  free(fs);
  return st;
}

uint32_t trt_twotower_item_fingerprint(const towerrt_model *m) {
  const trt_section *g = &m->container.sections[TRT_SEC_GRAPH];
  uint32_t n_nodes = trt_rd32(g->data), crc = 0;
  for (uint32_t ti = 0; ti < m->n_tensors; ti++) {
    int used = 0;
    for (uint32_t f = 0; f < m->n_fields && !used; f++) used = m->fields[f].side == TOWERRT_ITEM && m->fields[f].table_index == (int32_t)ti;
    for (uint32_t i = 0; i < n_nodes && !used; i++) {
      fnode n;
      trt_graph_node_read(g, i, &n);
      for (int j = 0; j < 6 && n.side == TOWERRT_ITEM; j++) used |= n.t[j] == (int32_t)ti;
    }
    if (used) crc = trt_crc32(crc, m->tensors[ti].data, (size_t)m->tensors[ti].nbytes);
  }
  return crc;
}

void trt_twotower_free(towerrt_model *m) {
  free(m->family_data);
  m->family_data = NULL;
}
