/* Synthetic models (towerrt_synthetic_model_write, include/towerrt.h): an
 * IntTower with random weights in the exact .twr layout of docs/format.md
 * (the reference state_dict names, BatchNorm, one FE projection per user
 * layer), written through the one container writer (container_write.c)
 * with the GRAPH records of graph_records.h. The weights are a function of
 * the configuration and its seed alone, so a benchmark or a test can name
 * a model by a configuration string. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "container_write.h"
#include "graph_records.h"
#include "model.h"
#include "status.h"

/* ---- the generator's random numbers (xoshiro256**, splitmix64 seeding) ---- */

typedef struct rng {
  uint64_t s[4];
} rng;

static uint64_t splitmix(uint64_t *x) {
  uint64_t z = (*x += UINT64_C(0x9E3779B97F4A7C15));
  z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
  return z ^ (z >> 31);
}

static void rng_seed(rng *r, uint64_t seed) {
  for (int i = 0; i < 4; i++) r->s[i] = splitmix(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(rng *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

static float rng_uniform(rng *r, float lo, float hi) {
  double u = (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
  return (float)(lo + (hi - lo) * u);
}

/* ---- configuration ---------------------------------------------------------- */

void towerrt_synthetic_config_init(towerrt_synthetic_config *c) {
  if (!c) return;
  memset(c, 0, sizeof *c);
  c->user_single = 4;
  c->item_single = 1;
  c->item_multi_len = 6;
  c->user_dense = 1;
  c->item_dense = 1;
  c->emb_dim = 32;
  c->n_layers = 3;
  c->widths[0] = 300;
  c->widths[1] = 300;
  c->widths[2] = 128;
  c->user_heads = 32;
  c->item_heads = 32;
  c->head_dim = 64;
  c->fe_mask = 0x7;
  c->batchnorm = 1;
  c->seed = 1;
}

static towerrt_status check_config(const towerrt_synthetic_config *c) {
  const char *why = NULL;
  if (c->user_single == 0) why = "the user side needs at least one single-id field (user_single)";
  else if (c->item_single == 0 && c->item_multi_len == 0) why = "the item side needs an id field (item_single or item_multi_len)";
  else if (c->n_layers == 0 || c->n_layers > TOWERRT_SYNTHETIC_MAX_LAYERS) why = "n_layers must be 1..TOWERRT_SYNTHETIC_MAX_LAYERS";
  else if (c->emb_dim == 0 || c->user_heads == 0 || c->item_heads == 0 || c->head_dim == 0) why = "emb_dim, heads and head_dim must be > 0";
  else if ((uint64_t)c->user_heads * c->head_dim > 65536 || (uint64_t)c->item_heads * c->head_dim > 65536)
    why = "heads x head dim must be at most 65536";
  else if (c->fe_mask == 0 || (c->fe_mask >> c->n_layers)) why = "fe_mask must name layers of the user tower";
  for (uint32_t L = 0; !why && L < c->n_layers; L++)
    if (c->widths[L] == 0) why = "every layer width must be > 0";
  return why ? trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "synthetic model: %s", why) : TOWERRT_OK;
}

/* ---- fields ------------------------------------------------------------------ */

typedef struct sfield {
  char name[64];
  uint32_t side, kind, vocab, dim, slots, combiner;
  int32_t table;
} sfield;

enum { SIDE_USER = 0, SIDE_ITEM = 1, SIDE_SCORE = 2 };

/* MovieLens-1M names and vocabularies (label-encoded, as the reference script leaves them). */
static const char *const user_names[] = {"user_id", "gender", "age", "occupation", "zip"};
static const uint32_t user_vocab[] = {6041, 3, 8, 22, 3440};
#define GENRES_VOCAB 19u
#define MOVIE_VOCAB 3953u
#define EXTRA_VOCAB 1000u

static uint32_t n_fields(const towerrt_synthetic_config *c) {
  return c->user_single + c->user_dense + c->item_single + (c->item_multi_len ? 1 : 0) + c->item_dense;
}

static void make_fields(const towerrt_synthetic_config *c, sfield *f) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < c->user_single; i++, n++) {
    f[n] = (sfield){.side = SIDE_USER, .kind = TRT_FIELD_SINGLE, .dim = c->emb_dim, .slots = 1, .table = -1};
    if (i < 5) {
      snprintf(f[n].name, sizeof f[n].name, "%s", user_names[i]);
      f[n].vocab = user_vocab[i];
    } else {
      snprintf(f[n].name, sizeof f[n].name, "user_f%u", i);
      f[n].vocab = EXTRA_VOCAB;
    }
  }
  for (uint32_t i = 0; i < c->user_dense; i++, n++) {
    f[n] = (sfield){.side = SIDE_USER, .kind = TRT_FIELD_DENSE, .dim = 1, .table = -1};
    if (i == 0) snprintf(f[n].name, sizeof f[n].name, "user_mean_rating");
    else snprintf(f[n].name, sizeof f[n].name, "user_dense%u", i);
  }
  for (uint32_t i = 0; i < c->item_single; i++, n++) {
    f[n] = (sfield){.side = SIDE_ITEM, .kind = TRT_FIELD_SINGLE, .dim = c->emb_dim, .slots = 1, .table = -1};
    if (i == 0) {
      snprintf(f[n].name, sizeof f[n].name, "movie_id");
      f[n].vocab = MOVIE_VOCAB;
    } else {
      snprintf(f[n].name, sizeof f[n].name, "item_f%u", i);
      f[n].vocab = EXTRA_VOCAB;
    }
  }
  if (c->item_multi_len) {
    f[n] = (sfield){.side = SIDE_ITEM, .kind = TRT_FIELD_MULTI, .vocab = GENRES_VOCAB, .dim = c->emb_dim,
                    .slots = c->item_multi_len, .combiner = 0, .table = -1};
    snprintf(f[n].name, sizeof f[n].name, "genres");
    n++;
  }
  for (uint32_t i = 0; i < c->item_dense; i++, n++) {
    f[n] = (sfield){.side = SIDE_ITEM, .kind = TRT_FIELD_DENSE, .dim = 1, .table = -1};
    if (i == 0) snprintf(f[n].name, sizeof f[n].name, "item_mean_rating");
    else snprintf(f[n].name, sizeof f[n].name, "item_dense%u", i);
  }
}

/* ---- tensors ---------------------------------------------------------------- */

typedef struct stensor {
  char name[80];
  uint32_t ndim, dims[2];
  size_t count;
  float *data;
  uint64_t offset; /* in DATA */
} stensor;

typedef struct builder {
  stensor *t;
  uint32_t n, cap;
  rng rng;
  int oom;
} builder;

enum { INIT_UNIFORM, INIT_CONST, INIT_VAR };

static int32_t add_tensor(builder *b, const char *name, uint32_t d0, uint32_t d1, int init, float a) {
  if (b->oom) return -1;
  if (b->n == b->cap) {
    uint32_t cap = b->cap ? 2 * b->cap : 64;
    stensor *t = realloc(b->t, cap * sizeof *t);
    if (!t) return b->oom = 1, -1;
    b->t = t;
    b->cap = cap;
  }
  stensor *t = &b->t[b->n];
  memset(t, 0, sizeof *t);
  snprintf(t->name, sizeof t->name, "%s", name);
  t->ndim = d1 ? 2 : 1;
  t->dims[0] = d0;
  t->dims[1] = d1;
  t->count = (size_t)d0 * (d1 ? d1 : 1);
  t->data = malloc(t->count * sizeof(float));
  if (!t->data) return b->oom = 1, -1;
  for (size_t i = 0; i < t->count; i++) {
    switch (init) {
      case INIT_UNIFORM: t->data[i] = rng_uniform(&b->rng, -a, a); break;
      case INIT_CONST: t->data[i] = a; break;
      default: t->data[i] = rng_uniform(&b->rng, 0.5f, 1.5f); break; /* BatchNorm running_var */
    }
  }
  return (int32_t)b->n++;
}

/* A Linear as PyTorch initialises it: U(-1/sqrt(in), 1/sqrt(in)). */
static void add_linear(builder *b, const char *prefix, uint32_t in, uint32_t out, int32_t *w, int32_t *bias) {
  char name[80]; /* tensor names are < 80 bytes; the prefixes here are short */
  float bound = 1.0f / sqrtf((float)in);
  snprintf(name, sizeof name, "%.72s.weight", prefix);
  *w = add_tensor(b, name, out, in, INIT_UNIFORM, bound);
  snprintf(name, sizeof name, "%.72s.bias", prefix);
  *bias = add_tensor(b, name, out, 0, INIT_UNIFORM, bound);
}

typedef struct side_plan {
  uint32_t F, width, dense;
  int32_t se;
  int32_t w[TOWERRT_SYNTHETIC_MAX_LAYERS], b[TOWERRT_SYNTHETIC_MAX_LAYERS], bn[TOWERRT_SYNTHETIC_MAX_LAYERS][4];
  int32_t fe_w[TOWERRT_SYNTHETIC_MAX_LAYERS], fe_b[TOWERRT_SYNTHETIC_MAX_LAYERS];
} side_plan;


/* Generates every tensor (in a fixed order, so a seed names one model). */
static void make_tensors(const towerrt_synthetic_config *c, sfield *fields, uint32_t nf, builder *b, side_plan sp[2], int32_t *out_bias) {
  static const char *const side_names[2] = {"user", "item"}, *const cap_names[2] = {"User", "Item"};
  char name[80];
  for (uint32_t s = 0; s < 2; s++) {
    memset(&sp[s], 0xff, sizeof sp[s]); /* -1 everywhere */
    sp[s].F = sp[s].dense = 0;
    for (uint32_t i = 0; i < nf; i++) {
      sfield *f = &fields[i];
      if (f->side != s) continue;
      if (f->kind == TRT_FIELD_DENSE) {
        sp[s].dense += f->dim;
        continue;
      }
      sp[s].F++;
      snprintf(name, sizeof name, "%s_embedding_dict.%.48s.weight", side_names[s], f->name);
      f->table = add_tensor(b, name, f->vocab, f->dim, INIT_UNIFORM, 0.05f);
    }
    sp[s].width = sp[s].F * c->emb_dim + sp[s].dense;
  }
  for (uint32_t s = 0; s < 2; s++) {
    snprintf(name, sizeof name, "%s_sim_non_local.excitation.0.weight", cap_names[s]);
    sp[s].se = add_tensor(b, name, sp[s].F, sp[s].F, INIT_UNIFORM, 1.0f / sqrtf((float)sp[s].F));
  }
  for (uint32_t s = 0; s < 2; s++) {
    uint32_t in = sp[s].width;
    for (uint32_t L = 0; L < c->n_layers; L++) {
      snprintf(name, sizeof name, "%s_fe_dnn.linears.%u", side_names[s], L);
      add_linear(b, name, in, c->widths[L], &sp[s].w[L], &sp[s].b[L]);
      in = c->widths[L];
    }
    /* User_Fe_DNN: Fe_linears[i] projects the input of layer i, one per layer;
     * Item_Fe_DNN: one projection of the last layer's output. */
    in = sp[s].width;
    for (uint32_t L = 0; L < (s == SIDE_USER ? c->n_layers : 1); L++) {
      uint32_t heads = s == SIDE_USER ? c->user_heads : c->item_heads;
      uint32_t src = s == SIDE_USER ? in : c->widths[c->n_layers - 1];
      snprintf(name, sizeof name, "%s_fe_dnn.Fe_linears.%u", side_names[s], L);
      add_linear(b, name, src, heads * c->head_dim, &sp[s].fe_w[L], &sp[s].fe_b[L]);
      in = c->widths[L];
    }
    if (c->batchnorm) {
      for (uint32_t L = 0; L < c->n_layers; L++) {
        static const char *const parts[4] = {"weight", "bias", "running_mean", "running_var"};
        for (int p = 0; p < 4; p++) {
          snprintf(name, sizeof name, "%s_fe_dnn.bn.%u.%s", side_names[s], L, parts[p]);
          int init = p == 3 ? INIT_VAR : INIT_UNIFORM;
          float a = p == 0 ? 0.1f : 0.1f;
          sp[s].bn[L][p] = add_tensor(b, name, c->widths[L], 0, init, a);
          if (p == 0 && sp[s].bn[L][0] >= 0) /* gamma around 1 */
            for (size_t i = 0; i < b->t[sp[s].bn[L][0]].count; i++) b->t[sp[s].bn[L][0]].data[i] += 1.0f;
        }
      }
    }
  }
  *out_bias = add_tensor(b, "out.bias", 1, 0, INIT_CONST, 0.1f);
}


/* ---- GRAPH ------------------------------------------------------------------- */

#define BN_EPS 1e-5f

typedef struct graph_buf {
  trt_graph_node n[TRT_GRAPH_MAX_NODES];
  uint32_t count;
  int32_t next_value;
} graph_buf;

/* Appends a node; returns its output value. */
static int32_t add_node(graph_buf *g, uint32_t op, uint32_t side, int32_t layer, uint32_t flags, int32_t in0, int32_t in1,
                        const int32_t t[6], float eps, int32_t a0, int32_t a1) {
  trt_graph_node *n = &g->n[g->count++];
  *n = (trt_graph_node){.op = op, .side = side, .flags = flags, .layer = layer, .in = {in0, in1}, .out = g->next_value++,
                        .eps = eps, .attr = {a0, a1}};
  for (int i = 0; i < 6; i++) n->t[i] = t ? t[i] : -1;
  return n->out;
}

/* One side's tower: embed, Light-SE, concat, the layers (and the user
 * side's FE projection of each layer's input); returns the last output. */
static int32_t add_tower(graph_buf *g, const towerrt_synthetic_config *c, uint32_t s, const side_plan *p, int32_t *user_fe) {
  int32_t e = add_node(g, TRT_OP_EMBED, s, -1, 0, -1, -1, NULL, 0.0f, 0, 0);
  int32_t t_se[6] = {p->se, -1, -1, -1, -1, -1};
  int32_t se = add_node(g, TRT_OP_LIGHTSE, s, -1, 0, e, -1, t_se, 0.0f, (int32_t)p->F, (int32_t)c->emb_dim);
  int32_t x = add_node(g, TRT_OP_CONCAT_DENSE, s, -1, 0, se, -1, NULL, 0.0f, (int32_t)p->width, 0);
  uint32_t in = p->width;
  for (uint32_t L = 0; L < c->n_layers; L++) {
    int32_t t[6] = {p->w[L], p->b[L], -1, -1, -1, -1};
    uint32_t flags = 1u; /* relu */
    if (c->batchnorm) {
      for (int i = 0; i < 4; i++) t[2 + i] = p->bn[L][i];
      flags |= 2u;
    }
    int32_t y = add_node(g, TRT_OP_LINEAR, s, (int32_t)L, flags, x, -1, t, c->batchnorm ? BN_EPS : 0.0f, (int32_t)in, (int32_t)c->widths[L]);
    if (s == SIDE_USER) {
      int32_t tf[6] = {p->fe_w[L], p->fe_b[L], -1, -1, -1, -1};
      user_fe[L] = add_node(g, TRT_OP_FE_PROJ, s, (int32_t)L, 0, x, -1, tf, 0.0f, (int32_t)c->user_heads, (int32_t)c->head_dim);
    }
    x = y;
    in = c->widths[L];
  }
  return x;
}

/* Value numbers follow the order of the nodes (each node's output is the
 * next value), as the reference exporter numbers them. */
static void make_graph(const towerrt_synthetic_config *c, const side_plan sp[2], int32_t out_bias, graph_buf *g) {
  int32_t user_fe[TOWERRT_SYNTHETIC_MAX_LAYERS];
  add_tower(g, c, SIDE_USER, &sp[SIDE_USER], user_fe);
  int32_t x = add_tower(g, c, SIDE_ITEM, &sp[SIDE_ITEM], user_fe);
  int32_t tf[6] = {sp[SIDE_ITEM].fe_w[0], sp[SIDE_ITEM].fe_b[0], -1, -1, -1, -1};
  int32_t item_fe = add_node(g, TRT_OP_FE_PROJ, SIDE_ITEM, 0, 0, x, -1, tf, 0.0f, (int32_t)c->item_heads, (int32_t)c->head_dim);
  int32_t acc = -1;
  for (uint32_t L = 0; L < c->n_layers; L++) {
    if (!(c->fe_mask & (1u << L))) continue;
    int32_t m = add_node(g, TRT_OP_MAXSIM, SIDE_SCORE, -1, 0, user_fe[L], item_fe, NULL, 0.0f, 0, 0);
    acc = acc < 0 ? m : add_node(g, TRT_OP_SUM, SIDE_SCORE, -1, 0, acc, m, NULL, 0.0f, 0, 0);
  }
  int32_t tp[6] = {out_bias, -1, -1, -1, -1, -1};
  add_node(g, TRT_OP_PREDICT, SIDE_SCORE, -1, 0, acc, -1, tp, 0.0f, 0, 0);
}

/* ---- sections ---------------------------------------------------------------- */

static void name_bytes(trt_bytes *b, const char *s, size_t width) {
  size_t n = strlen(s);
  if (n >= width) n = width - 1;
  static const char zeros[80]; /* width <= 80 */
  trt_bytes_put(b, s, n);
  trt_bytes_put(b, zeros, width - n);
}

static void make_meta(const towerrt_synthetic_config *c, trt_bytes *m) {
  const char *source = c->source && *c->source ? c->source : "synthetic random weights (towerrt_synthetic_model_write)";
  uint64_t fe[TOWERRT_SYNTHETIC_MAX_LAYERS];
  uint32_t n_fe = 0;
  for (uint32_t L = 0; L < c->n_layers; L++)
    if (c->fe_mask & (1u << L)) fe[n_fe++] = L;
  trt_bytes_u32(m, 11);
  trt_meta_put_str(m, "general.architecture", "inttower", 8);
  trt_meta_put_str(m, "general.name", "synthetic", 9);
  trt_meta_put_str(m, "general.source", source, strlen(source));
  trt_meta_put_str(m, "general.exporter", "towerrt_synthetic_model_write", 29);
  trt_meta_put_int(m, "inttower.head_dim", c->head_dim);
  trt_meta_put_int(m, "inttower.user_heads", c->user_heads);
  trt_meta_put_int(m, "inttower.item_heads", c->item_heads);
  trt_meta_put_int_array(m, "inttower.fe_layers", fe, n_fe);
  trt_meta_put_str(m, "inttower.output", "sigmoid", 7);
  trt_meta_put_str(m, "quantization", "none", 4);
  trt_meta_put_int(m, "synthetic.seed", (int64_t)c->seed);
}

static void make_fields_section(const sfield *fields, uint32_t nf, trt_bytes *fl) {
  trt_bytes_u32(fl, nf);
  trt_bytes_u32(fl, 0);
  for (uint32_t i = 0; i < nf; i++) {
    const sfield *f = &fields[i];
    name_bytes(fl, f->name, 64);
    trt_bytes_u32(fl, f->side);
    trt_bytes_u32(fl, f->kind);
    trt_bytes_u32(fl, f->kind == TRT_FIELD_DENSE ? 0 : f->vocab);
    trt_bytes_u32(fl, f->dim);
    trt_bytes_u32(fl, f->slots);
    trt_bytes_u32(fl, f->combiner);
    trt_bytes_u32(fl, (uint32_t)f->table);
    trt_bytes_u32(fl, 0);
  }
}

static uint64_t align64(uint64_t x) { return (x + 63) & ~UINT64_C(63); }

/* TENSORS, and each tensor's offset in DATA (64-byte aligned). */
static void make_tensor_table(builder *b, trt_bytes *tens) {
  uint64_t data_size = 0;
  trt_bytes_u32(tens, b->n);
  trt_bytes_u32(tens, 0);
  for (uint32_t i = 0; i < b->n; i++) {
    stensor *t = &b->t[i];
    t->offset = data_size;
    data_size = align64(data_size + t->count * 4);
    name_bytes(tens, t->name, 80);
    trt_bytes_u32(tens, TRT_DTYPE_F32);
    trt_bytes_u32(tens, t->ndim);
    trt_bytes_u32(tens, t->dims[0]);
    trt_bytes_u32(tens, t->ndim > 1 ? t->dims[1] : 0);
    trt_bytes_u32(tens, 0);
    trt_bytes_u32(tens, 0);
    trt_bytes_u64(tens, t->offset);
    trt_bytes_u64(tens, (uint64_t)t->count * 4);
    trt_bytes_u32(tens, (uint32_t)-1);
    trt_bytes_u32(tens, 0);
  }
}

/* DATA: every tensor little-endian f32 at its offset (byte by byte, so a
 * big-endian host writes the same file). */
static towerrt_status write_data(trt_writer *w, const builder *b) {
  towerrt_status st = trt_writer_begin(w, TRT_SEC_DATA);
  uint64_t pos = 0;
  unsigned char chunk[4096];
  for (uint32_t i = 0; i < b->n && !st; i++) {
    static const unsigned char zeros[64];
    if (b->t[i].offset > pos) st = trt_writer_put(w, zeros, (size_t)(b->t[i].offset - pos));
    for (size_t j = 0; j < b->t[i].count && !st; j += sizeof chunk / 4) {
      size_t n = b->t[i].count - j < sizeof chunk / 4 ? b->t[i].count - j : sizeof chunk / 4;
      for (size_t q = 0; q < n; q++) {
        uint32_t u;
        memcpy(&u, &b->t[i].data[j + q], 4);
        for (int k = 0; k < 4; k++) chunk[4 * q + (size_t)k] = (unsigned char)(u >> (8 * k));
      }
      st = trt_writer_put(w, chunk, 4 * n);
    }
    pos = b->t[i].offset + b->t[i].count * 4;
  }
  static const unsigned char pad[64];
  if (!st && align64(pos) > pos) st = trt_writer_put(w, pad, (size_t)(align64(pos) - pos)); /* the section ends aligned */
  return st ? st : trt_writer_end(w);
}

static towerrt_status write_section(trt_writer *w, uint32_t kind, const void *p, size_t n) {
  towerrt_status st = trt_writer_begin(w, kind);
  if (!st) st = trt_writer_put(w, p, n);
  return st ? st : trt_writer_end(w);
}

/* The five sections through the container writer (atomic: a unique
 * temporary renamed into place). */
static towerrt_status write_file(const char *path, const trt_bytes *meta, const trt_bytes *fl, const trt_bytes *tens, const trt_bytes *graph,
                                 const builder *b) {
  trt_writer w;
  towerrt_status st = trt_writer_open(&w, path, "TWRMODEL", 5);
  if (st) return st;
  if (!st) st = write_section(&w, TRT_SEC_META, meta->p, meta->len);
  if (!st) st = write_section(&w, TRT_SEC_FIELDS, fl->p, fl->len);
  if (!st) st = write_section(&w, TRT_SEC_TENSORS, tens->p, tens->len);
  if (!st) st = write_section(&w, TRT_SEC_GRAPH, graph->p, graph->len);
  if (!st) st = write_data(&w, b);
  if (!st) return trt_writer_finish(&w);
  trt_writer_abort(&w);
  return st;
}

static void encode_graph(const graph_buf *g, trt_bytes *out) {
  unsigned char rec[TRT_GRAPH_RECORD];
  trt_bytes_u32(out, g->count);
  trt_bytes_u32(out, 0);
  for (uint32_t i = 0; i < g->count; i++) {
    trt_graph_node_encode(&g->n[i], rec);
    trt_bytes_put(out, rec, sizeof rec);
  }
}

towerrt_status towerrt_synthetic_model_write(const towerrt_synthetic_config *c, const char *path) {
  if (!c || !path) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_synthetic_model_write: config and path must not be NULL");
  towerrt_status st = check_config(c);
  if (st) return st;
  uint32_t nf = n_fields(c);
  sfield *fields = calloc(nf, sizeof *fields);
  graph_buf *g = calloc(1, sizeof *g);
  builder b = {0};
  side_plan sp[2];
  int32_t out_bias = -1;
  trt_bytes meta = {0}, fl = {0}, tens = {0}, graph = {0};
  if (fields && g) {
    make_fields(c, fields);
    rng_seed(&b.rng, c->seed);
    make_tensors(c, fields, nf, &b, sp, &out_bias);
  }
  if (!fields || !g || b.oom) {
    st = trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for the synthetic weights");
    goto done;
  }
  make_meta(c, &meta);
  make_fields_section(fields, nf, &fl);
  make_tensor_table(&b, &tens);
  make_graph(c, sp, out_bias, g);
  encode_graph(g, &graph);
  if (meta.failed || fl.failed || tens.failed || graph.failed) st = trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  else st = write_file(path, &meta, &fl, &tens, &graph, &b);
done:
  for (uint32_t i = 0; i < b.n; i++) free(b.t[i].data);
  free(b.t);
  free(fields);
  free(g);
  free(meta.p);
  free(fl.p);
  free(tens.p);
  free(graph.p);
  return st;
}
