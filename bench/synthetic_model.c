/* Synthetic IntTower models and catalogs (synthetic_model.h). The .twr is
 * written byte for byte as docs/format.md specifies, with the tensor names
 * of the reference state_dict, so that the loader, the graph compiler and
 * the peers (bench/peers) read it like an exported checkpoint. */
#include "synthetic_model.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_util.h"
#include "runtime/atomic_file.h"
#include "runtime/crc32.h"
#include "runtime/status.h"

/* ---- configuration --------------------------------------------------------- */

void tb_synth_reference(tb_synth_config *c) {
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
  c->catalog = 100000;
  c->seed = 1;
}

void tb_synth_tiny(tb_synth_config *c) {
  tb_synth_reference(c);
  c->user_single = 2;
  c->item_multi_len = 3;
  c->emb_dim = 8;
  c->widths[0] = 16;
  c->widths[1] = 16;
  c->widths[2] = 8;
  c->user_heads = 4;
  c->item_heads = 4;
  c->head_dim = 8;
  c->catalog = 256;
}

int tb_synth_preset(tb_synth_config *c, const char *name) {
  if (!strcmp(name, "reference")) tb_synth_reference(c);
  else if (!strcmp(name, "tiny")) tb_synth_tiny(c);
  else return 0;
  return 1;
}

const char *tb_synth_usage(void) {
  return "  synthetic model (--synthetic; defaults: the reference configuration, docs/performance.md):\n"
         "    --preset reference|tiny   start from a preset (give it before the options below)\n"
         "    --user-fields N           single-id user fields (4: user_id gender age occupation)\n"
         "    --item-fields N           single-id item fields (1: movie_id)\n"
         "    --multi-len L             id slots of the multi-id item field genres (6; 0 = none)\n"
         "    --user-dense N            dense user fields (1)\n"
         "    --item-dense N            dense item fields (1)\n"
         "    --emb-dim D               embedding dim (32)\n"
         "    --towers W1,W2,...        tower widths, both towers (300,300,128)\n"
         "    --user-heads H            user heads per FE layer (32)\n"
         "    --item-heads H            item heads (32)\n"
         "    --head-dim P              dims per head (64)\n"
         "    --fe-layers 0,1,2         user FE layers the model is trained with (0,1,2)\n"
         "    --batchnorm 0|1           BatchNorm after each Linear (1)\n"
         "    --catalog N               items in the synthetic item store (100000)\n"
         "    --model-seed S            random seed of the weights and the catalog (1)\n";
}

static int parse_u32(const char *v, uint32_t lo, uint32_t hi, uint32_t *out) {
  uint64_t x;
  if (!tb_parse_u64(v, lo, hi, &x)) return 0;
  *out = (uint32_t)x;
  return 1;
}

const char *const tb_synth_option_names[] = {"--user-fields", "--item-fields", "--multi-len", "--user-dense", "--item-dense",
                                             "--emb-dim",     "--towers",      "--user-heads", "--item-heads", "--head-dim",
                                             "--fe-layers",   "--batchnorm",   "--catalog",    "--model-seed", NULL};

static int bad(char *err, size_t cap, const char *opt, const char *value, const char *want) {
  snprintf(err, cap, "%s '%s': expected %s", opt, value, want);
  return -1;
}

int tb_synth_option(tb_synth_config *c, const char *opt, const char *v, char *err, size_t cap) {
  struct {
    const char *name;
    uint32_t *field;
    uint32_t lo, hi;
  } ints[] = {
      {"--user-fields", &c->user_single, 0, 64},   {"--item-fields", &c->item_single, 0, 64},
      {"--multi-len", &c->item_multi_len, 0, 256}, {"--user-dense", &c->user_dense, 0, 64},
      {"--item-dense", &c->item_dense, 0, 64},     {"--emb-dim", &c->emb_dim, 1, 1024},
      {"--user-heads", &c->user_heads, 1, 4096},   {"--item-heads", &c->item_heads, 1, 4096},
      {"--head-dim", &c->head_dim, 1, 4096},       {"--batchnorm", &c->batchnorm, 0, 1},
      {"--catalog", &c->catalog, 1, 50000000},
  };
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
    if (strcmp(opt, ints[i].name)) continue;
    if (!parse_u32(v, ints[i].lo, ints[i].hi, ints[i].field)) {
      char want[64];
      snprintf(want, sizeof want, "an integer in %u..%u", ints[i].lo, ints[i].hi);
      return bad(err, cap, opt, v, want);
    }
    return 1;
  }
  if (!strcmp(opt, "--model-seed")) {
    if (!tb_parse_u64(v, 0, UINT64_MAX, &c->seed)) return bad(err, cap, opt, v, "an unsigned integer");
    return 1;
  }
  if (!strcmp(opt, "--towers") || !strcmp(opt, "--fe-layers")) {
    int towers = !strcmp(opt, "--towers");
    tb_strlist l = {0};
    if (!tb_strlist_split(&l, v, ',') || l.n == 0 || l.n > TB_SYNTH_MAX_LAYERS) {
      tb_strlist_free(&l);
      return bad(err, cap, opt, v, towers ? "1 to 8 comma-separated widths" : "comma-separated layer indices");
    }
    uint32_t mask = 0, w[TB_SYNTH_MAX_LAYERS];
    for (size_t i = 0; i < l.n; i++) {
      uint32_t x;
      if (!parse_u32(l.v[i], towers ? 1 : 0, towers ? 65536 : TB_SYNTH_MAX_LAYERS - 1, &x)) {
        tb_strlist_free(&l);
        return bad(err, cap, opt, v, towers ? "widths in 1..65536" : "layer indices in 0..7");
      }
      w[i] = x;
      mask |= 1u << (x & 31);
    }
    if (towers) {
      c->n_layers = (uint32_t)l.n;
      memcpy(c->widths, w, l.n * sizeof w[0]);
    } else {
      c->fe_mask = mask;
    }
    tb_strlist_free(&l);
    return 1;
  }
  return 0;
}

int tb_synth_validate(const tb_synth_config *c, char *err, size_t cap) {
  if (c->user_single == 0) return snprintf(err, cap, "the user side needs at least one single-id field (--user-fields)"), 0;
  if (c->item_single == 0 && c->item_multi_len == 0)
    return snprintf(err, cap, "the item side needs an id field (--item-fields or --multi-len)"), 0;
  if (c->n_layers == 0) return snprintf(err, cap, "--towers: at least one layer"), 0;
  if ((uint64_t)c->user_heads * c->head_dim > 65536 || (uint64_t)c->item_heads * c->head_dim > 65536)
    return snprintf(err, cap, "heads x head dim must be at most 65536"), 0;
  if (c->fe_mask == 0 || (c->fe_mask >> c->n_layers))
    return snprintf(err, cap, "--fe-layers must name layers of the %u-layer user tower", c->n_layers), 0;
  return 1;
}

void tb_synth_describe(const tb_synth_config *c, char *buf, size_t cap) {
  char towers[96] = "", fe[32] = "";
  size_t n = 0;
  for (uint32_t i = 0; i < c->n_layers; i++) n += (size_t)snprintf(towers + n, sizeof towers - n, i ? "-%u" : "%u", c->widths[i]);
  n = 0;
  for (uint32_t i = 0; i < TB_SYNTH_MAX_LAYERS; i++)
    if (c->fe_mask & (1u << i)) n += (size_t)snprintf(fe + n, sizeof fe - n, n ? ",%u" : "%u", i);
  snprintf(buf, cap,
           "user_fields=%u item_fields=%u multi_len=%u user_dense=%u item_dense=%u emb=%u towers=%s "
           "user_heads=%u item_heads=%u head_dim=%u fe_layers=%s bn=%u catalog=%u seed=%llu",
           c->user_single, c->item_single, c->item_multi_len, c->user_dense, c->item_dense, c->emb_dim, towers,
           c->user_heads, c->item_heads, c->head_dim, fe, c->batchnorm, c->catalog, (unsigned long long)c->seed);
}

void tb_synth_default_dir(const tb_synth_config *c, char *buf, size_t cap) {
  char desc[512];
  tb_synth_describe(c, desc, sizeof desc);
  const char *tmp = getenv("TMPDIR");
  /* v1: bump when the generator's output changes for the same description */
  char key[600];
  snprintf(key, sizeof key, "synthetic-v1 %s", desc);
  snprintf(buf, cap, "%s/towerrt-bench-%016llx", tmp && *tmp ? tmp : "/tmp", (unsigned long long)tb_fnv1a(key));
}

/* ---- fields ---------------------------------------------------------------- */

typedef struct sfield {
  char name[64];
  uint32_t side, kind, vocab, dim, slots, combiner;
  int32_t table;
} sfield;

enum { SIDE_USER = 0, SIDE_ITEM = 1, SIDE_SCORE = 2 };
enum { KIND_SINGLE = 0, KIND_MULTI = 1, KIND_DENSE = 2 };

/* MovieLens-1M names and vocabularies (label-encoded, as the reference script leaves them). */
static const char *const user_names[] = {"user_id", "gender", "age", "occupation", "zip"};
static const uint32_t user_vocab[] = {6041, 3, 8, 22, 3440};
#define GENRES_VOCAB 19u
#define MOVIE_VOCAB 3953u
#define EXTRA_VOCAB 1000u

static uint32_t n_fields(const tb_synth_config *c) {
  return c->user_single + c->user_dense + c->item_single + (c->item_multi_len ? 1 : 0) + c->item_dense;
}

static void make_fields(const tb_synth_config *c, sfield *f) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < c->user_single; i++, n++) {
    f[n] = (sfield){.side = SIDE_USER, .kind = KIND_SINGLE, .dim = c->emb_dim, .slots = 1, .table = -1};
    if (i < 5) {
      snprintf(f[n].name, sizeof f[n].name, "%s", user_names[i]);
      f[n].vocab = user_vocab[i];
    } else {
      snprintf(f[n].name, sizeof f[n].name, "user_f%u", i);
      f[n].vocab = EXTRA_VOCAB;
    }
  }
  for (uint32_t i = 0; i < c->user_dense; i++, n++) {
    f[n] = (sfield){.side = SIDE_USER, .kind = KIND_DENSE, .dim = 1, .table = -1};
    if (i == 0) snprintf(f[n].name, sizeof f[n].name, "user_mean_rating");
    else snprintf(f[n].name, sizeof f[n].name, "user_dense%u", i);
  }
  for (uint32_t i = 0; i < c->item_single; i++, n++) {
    f[n] = (sfield){.side = SIDE_ITEM, .kind = KIND_SINGLE, .dim = c->emb_dim, .slots = 1, .table = -1};
    if (i == 0) {
      snprintf(f[n].name, sizeof f[n].name, "movie_id");
      f[n].vocab = MOVIE_VOCAB;
    } else {
      snprintf(f[n].name, sizeof f[n].name, "item_f%u", i);
      f[n].vocab = EXTRA_VOCAB;
    }
  }
  if (c->item_multi_len) {
    f[n] = (sfield){.side = SIDE_ITEM, .kind = KIND_MULTI, .vocab = GENRES_VOCAB, .dim = c->emb_dim,
                    .slots = c->item_multi_len, .combiner = 0, .table = -1};
    snprintf(f[n].name, sizeof f[n].name, "genres");
    n++;
  }
  for (uint32_t i = 0; i < c->item_dense; i++, n++) {
    f[n] = (sfield){.side = SIDE_ITEM, .kind = KIND_DENSE, .dim = 1, .table = -1};
    if (i == 0) snprintf(f[n].name, sizeof f[n].name, "item_mean_rating");
    else snprintf(f[n].name, sizeof f[n].name, "item_dense%u", i);
  }
}

/* ---- tensors ----------------------------------------------------------------- */

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
  tb_rng rng;
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
      case INIT_UNIFORM: t->data[i] = tb_rng_uniform(&b->rng, -a, a); break;
      case INIT_CONST: t->data[i] = a; break;
      default: t->data[i] = tb_rng_uniform(&b->rng, 0.5f, 1.5f); break; /* BatchNorm running_var */
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

/* ---- bytes ----------------------------------------------------------------- */

typedef struct buf {
  unsigned char *p;
  size_t len, cap;
  int oom;
} buf;

static void put(buf *b, const void *src, size_t n) {
  if (b->oom) return;
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n) cap *= 2;
    unsigned char *q = realloc(b->p, cap);
    if (!q) {
      b->oom = 1;
      return;
    }
    b->p = q;
    b->cap = cap;
  }
  if (src) memcpy(b->p + b->len, src, n);
  else memset(b->p + b->len, 0, n);
  b->len += n;
}
static void put_u8(buf *b, uint8_t v) { put(b, &v, 1); }
static void put_u16(buf *b, uint16_t v) {
  unsigned char t[2] = {(unsigned char)v, (unsigned char)(v >> 8)};
  put(b, t, 2);
}
static void put_u32(buf *b, uint32_t v) {
  unsigned char t[4];
  for (int i = 0; i < 4; i++) t[i] = (unsigned char)(v >> (8 * i));
  put(b, t, 4);
}
static void put_u64(buf *b, uint64_t v) {
  put_u32(b, (uint32_t)v);
  put_u32(b, (uint32_t)(v >> 32));
}
static void put_f32(buf *b, float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  put_u32(b, u);
}
static void put_name(buf *b, const char *s, size_t width) {
  size_t n = strlen(s);
  if (n >= width) n = width - 1;
  put(b, s, n);
  put(b, NULL, width - n);
}
static void meta_key(buf *b, const char *k, uint8_t type) {
  put_u16(b, (uint16_t)strlen(k));
  put(b, k, strlen(k));
  put_u8(b, type);
}
static void meta_str(buf *b, const char *k, const char *v) {
  meta_key(b, k, 3);
  put_u32(b, (uint32_t)strlen(v));
  put(b, v, strlen(v));
}
static void meta_int(buf *b, const char *k, int64_t v) {
  meta_key(b, k, 1);
  put_u64(b, (uint64_t)v);
}

/* One 64-byte GRAPH record (docs/format.md). */
static void node(buf *b, uint32_t op, uint32_t side, int32_t layer, uint32_t flags, int32_t in0, int32_t in1, int32_t out,
                 const int32_t t[6], float eps, int32_t a0, int32_t a1) {
  put_u32(b, op);
  put_u32(b, side);
  put_u32(b, (uint32_t)layer);
  put_u32(b, flags);
  put_u32(b, (uint32_t)in0);
  put_u32(b, (uint32_t)in1);
  put_u32(b, (uint32_t)out);
  for (int i = 0; i < 6; i++) put_u32(b, (uint32_t)(t ? t[i] : -1));
  put_f32(b, eps);
  put_u32(b, (uint32_t)a0);
  put_u32(b, (uint32_t)a1);
}

enum { OP_EMBED = 1, OP_LIGHTSE, OP_CONCAT, OP_LINEAR, OP_FE, OP_MAXSIM, OP_SUM, OP_PREDICT };
#define BN_EPS 1e-5f

typedef struct side_plan {
  uint32_t F, width, dense;
  int32_t se;
  int32_t w[TB_SYNTH_MAX_LAYERS], b[TB_SYNTH_MAX_LAYERS], bn[TB_SYNTH_MAX_LAYERS][4];
  int32_t fe_w[TB_SYNTH_MAX_LAYERS], fe_b[TB_SYNTH_MAX_LAYERS];
} side_plan;

static uint64_t align64(uint64_t x) { return (x + 63) & ~UINT64_C(63); }

/* Generates every tensor (in a fixed order, so a seed names one model). */
static void make_tensors(const tb_synth_config *c, sfield *fields, uint32_t nf, builder *b, side_plan sp[2], int32_t *out_bias) {
  static const char *const side_names[2] = {"user", "item"}, *const cap_names[2] = {"User", "Item"};
  char name[80];
  for (uint32_t s = 0; s < 2; s++) {
    memset(&sp[s], 0xff, sizeof sp[s]); /* -1 everywhere */
    sp[s].F = sp[s].dense = 0;
    for (uint32_t i = 0; i < nf; i++) {
      sfield *f = &fields[i];
      if (f->side != s) continue;
      if (f->kind == KIND_DENSE) {
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

static void make_graph(const tb_synth_config *c, const side_plan sp[2], int32_t out_bias, buf *g) {
  int32_t v = 0, user_fe[TB_SYNTH_MAX_LAYERS], item_fe = -1;
  uint32_t count = 0;
  buf nodes = {0};
  for (uint32_t s = 0; s < 2; s++) {
    const side_plan *p = &sp[s];
    int32_t e = v++, se = v++, x = v++;
    node(&nodes, OP_EMBED, s, -1, 0, -1, -1, e, NULL, 0.0f, 0, 0);
    int32_t t_se[6] = {p->se, -1, -1, -1, -1, -1};
    node(&nodes, OP_LIGHTSE, s, -1, 0, e, -1, se, t_se, 0.0f, (int32_t)p->F, (int32_t)c->emb_dim);
    node(&nodes, OP_CONCAT, s, -1, 0, se, -1, x, NULL, 0.0f, (int32_t)p->width, 0);
    count += 3;
    uint32_t in = p->width;
    for (uint32_t L = 0; L < c->n_layers; L++) {
      int32_t y = v++;
      int32_t t[6] = {p->w[L], p->b[L], -1, -1, -1, -1};
      uint32_t flags = 1u;
      if (c->batchnorm) {
        for (int i = 0; i < 4; i++) t[2 + i] = p->bn[L][i];
        flags |= 2u;
      }
      node(&nodes, OP_LINEAR, s, (int32_t)L, flags, x, -1, y, t, c->batchnorm ? BN_EPS : 0.0f, (int32_t)in, (int32_t)c->widths[L]);
      count++;
      if (s == SIDE_USER) {
        int32_t f = v++;
        int32_t tf[6] = {p->fe_w[L], p->fe_b[L], -1, -1, -1, -1};
        node(&nodes, OP_FE, s, (int32_t)L, 0, x, -1, f, tf, 0.0f, (int32_t)c->user_heads, (int32_t)c->head_dim);
        user_fe[L] = f;
        count++;
      }
      x = y;
      in = c->widths[L];
    }
    if (s == SIDE_ITEM) {
      item_fe = v++;
      int32_t tf[6] = {p->fe_w[0], p->fe_b[0], -1, -1, -1, -1};
      node(&nodes, OP_FE, s, 0, 0, x, -1, item_fe, tf, 0.0f, (int32_t)c->item_heads, (int32_t)c->head_dim);
      count++;
    }
  }
  int32_t acc = -1;
  for (uint32_t L = 0; L < c->n_layers; L++) {
    if (!(c->fe_mask & (1u << L))) continue;
    int32_t m = v++;
    node(&nodes, OP_MAXSIM, SIDE_SCORE, -1, 0, user_fe[L], item_fe, m, NULL, 0.0f, 0, 0);
    count++;
    if (acc >= 0) {
      int32_t s2 = v++;
      node(&nodes, OP_SUM, SIDE_SCORE, -1, 0, acc, m, s2, NULL, 0.0f, 0, 0);
      count++;
      acc = s2;
    } else {
      acc = m;
    }
  }
  int32_t tp[6] = {out_bias, -1, -1, -1, -1, -1};
  node(&nodes, OP_PREDICT, SIDE_SCORE, -1, 0, acc, -1, v++, tp, 0.0f, 0, 0);
  count++;
  put_u32(g, count);
  put_u32(g, 0);
  put(g, nodes.p, nodes.len);
  g->oom |= nodes.oom;
  free(nodes.p);
}

towerrt_status tb_synth_write_model(const tb_synth_config *c, const char *path) {
  char err[256];
  if (!tb_synth_validate(c, err, sizeof err)) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "synthetic model: %s", err);
  uint32_t nf = n_fields(c);
  sfield *fields = calloc(nf, sizeof *fields);
  builder b = {0};
  side_plan sp[2];
  int32_t out_bias = -1;
  buf meta = {0}, fl = {0}, tens = {0}, graph = {0};
  unsigned char *file = NULL;
  towerrt_status st = TOWERRT_OK;
  if (!fields) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  make_fields(c, fields);
  tb_rng_seed(&b.rng, c->seed);
  make_tensors(c, fields, nf, &b, sp, &out_bias);
  if (b.oom) {
    st = trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for the synthetic weights");
    goto done;
  }

  /* META */
  char desc[512], source[600];
  tb_synth_describe(c, desc, sizeof desc);
  snprintf(source, sizeof source, "synthetic random weights (towerrt bench): %s", desc);
  uint32_t n_fe = 0;
  for (uint32_t L = 0; L < c->n_layers; L++) n_fe += (c->fe_mask >> L) & 1u;
  put_u32(&meta, 11);
  meta_str(&meta, "general.architecture", "inttower");
  meta_str(&meta, "general.name", "synthetic");
  meta_str(&meta, "general.source", source);
  meta_str(&meta, "general.exporter", "towerrt bench/synthetic_model.c");
  meta_int(&meta, "inttower.head_dim", c->head_dim);
  meta_int(&meta, "inttower.user_heads", c->user_heads);
  meta_int(&meta, "inttower.item_heads", c->item_heads);
  meta_key(&meta, "inttower.fe_layers", 4);
  put_u32(&meta, n_fe);
  for (uint32_t L = 0; L < c->n_layers; L++)
    if (c->fe_mask & (1u << L)) put_u64(&meta, L);
  meta_str(&meta, "inttower.output", "sigmoid");
  meta_str(&meta, "quantization", "none");
  meta_int(&meta, "synthetic.seed", (int64_t)c->seed);

  /* FIELDS */
  put_u32(&fl, nf);
  put_u32(&fl, 0);
  for (uint32_t i = 0; i < nf; i++) {
    const sfield *f = &fields[i];
    put_name(&fl, f->name, 64);
    put_u32(&fl, f->side);
    put_u32(&fl, f->kind);
    put_u32(&fl, f->kind == KIND_DENSE ? 0 : f->vocab);
    put_u32(&fl, f->dim);
    put_u32(&fl, f->slots);
    put_u32(&fl, f->combiner);
    put_u32(&fl, (uint32_t)f->table);
    put_u32(&fl, 0);
  }

  /* TENSORS (+ their offsets in DATA) */
  uint64_t data_size = 0;
  put_u32(&tens, b.n);
  put_u32(&tens, 0);
  for (uint32_t i = 0; i < b.n; i++) {
    stensor *t = &b.t[i];
    t->offset = data_size;
    data_size = align64(data_size + t->count * 4);
    put_name(&tens, t->name, 80);
    put_u32(&tens, 1); /* f32 */
    put_u32(&tens, t->ndim);
    put_u32(&tens, t->dims[0]);
    put_u32(&tens, t->ndim > 1 ? t->dims[1] : 0);
    put_u32(&tens, 0);
    put_u32(&tens, 0);
    put_u64(&tens, t->offset);
    put_u64(&tens, (uint64_t)t->count * 4);
    put_u32(&tens, (uint32_t)-1);
    put_u32(&tens, 0);
  }
  make_graph(c, sp, out_bias, &graph);
  if (meta.oom || fl.oom || tens.oom || graph.oom) {
    st = trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
    goto done;
  }

  /* layout: header, table of 5 sections, then META FIELDS TENSORS GRAPH DATA */
  const buf *secs[4] = {&meta, &fl, &tens, &graph};
  uint64_t off[5], size[5];
  uint64_t pos = align64(64 + 5 * 32);
  for (int i = 0; i < 4; i++) {
    off[i] = pos;
    size[i] = secs[i]->len;
    pos = align64(pos + size[i]);
  }
  off[4] = pos;
  size[4] = data_size;
  uint64_t file_size = off[4] + size[4];
  file = calloc(1, (size_t)file_size);
  if (!file) {
    st = trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for a %llu-byte model", (unsigned long long)file_size);
    goto done;
  }
  for (int i = 0; i < 4; i++) memcpy(file + off[i], secs[i]->p, (size_t)size[i]);
  for (uint32_t i = 0; i < b.n; i++) {
    /* f32 little-endian: write byte by byte so big-endian hosts are right too */
    unsigned char *dst = file + off[4] + b.t[i].offset;
    for (size_t j = 0; j < b.t[i].count; j++) {
      uint32_t u;
      memcpy(&u, &b.t[i].data[j], 4);
      for (int k = 0; k < 4; k++) dst[4 * j + (size_t)k] = (unsigned char)(u >> (8 * k));
    }
  }
  buf table = {0}, head = {0};
  static const uint32_t kinds[5] = {1, 2, 3, 4, 5};
  for (int i = 0; i < 5; i++) {
    put_u32(&table, kinds[i]);
    put_u32(&table, trt_crc32(0, file + off[i], (size_t)size[i]));
    put_u64(&table, off[i]);
    put_u64(&table, size[i]);
    put_u64(&table, 0);
  }
  put(&head, "TWRMODEL", 8);
  put_u32(&head, 1);
  put_u32(&head, 64);
  put_u64(&head, file_size);
  put_u64(&head, 64);
  put_u32(&head, 5);
  put_u32(&head, 0);
  put_u32(&head, table.oom ? 0 : trt_crc32(0, table.p, table.len));
  put(&head, NULL, 16);
  if (!head.oom) put_u32(&head, trt_crc32(0, head.p, 60));
  if (table.oom || head.oom) {
    st = trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  } else {
    memcpy(file, head.p, 64);
    memcpy(file + 64, table.p, table.len);
  }
  free(table.p);
  free(head.p);
  if (st) goto done;

  /* the writers' shared helper: unique temporary, fsync, rename */
  trt_atomic_file out;
  if ((st = trt_atomic_open(&out, path))) goto done;
  for (uint64_t done_bytes = 0; done_bytes < file_size && !st;) {
    ssize_t n = write(out.fd, file + done_bytes, (size_t)(file_size - done_bytes));
    if (n <= 0) st = trt_fail(TOWERRT_ERR_IO, "cannot write '%s': %s", out.tmp, strerror(errno));
    else done_bytes += (uint64_t)n;
  }
  if (!st) st = trt_atomic_commit(&out);
  else trt_atomic_abort(&out);

done:
  for (uint32_t i = 0; i < b.n; i++) free(b.t[i].data);
  free(b.t);
  free(fields);
  free(meta.p);
  free(fl.p);
  free(tens.p);
  free(graph.p);
  free(file);
  return st;
}

/* ---- catalog ----------------------------------------------------------------- */

uint64_t tb_synth_item_id(uint64_t row) { return row * UINT64_C(7919) + UINT64_C(1000003); }

towerrt_status tb_synth_build_items(const towerrt_model *m, const tb_synth_config *c, const char *path) {
  size_t n = c->catalog;
  size_t slots = towerrt_model_id_slots(m, TOWERRT_ITEM), dw = towerrt_model_dense_width(m, TOWERRT_ITEM);
  uint32_t nf = n_fields(c);
  sfield *fields = calloc(nf, sizeof *fields);
  int64_t *ids = malloc((n * slots + 1) * sizeof *ids);
  float *dense = malloc((n * dw + 1) * sizeof *dense);
  uint64_t *keys = malloc(n * sizeof *keys);
  towerrt_status st;
  if (!fields || !ids || !dense || !keys) {
    st = trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for a catalog of %zu items", n);
    goto done;
  }
  make_fields(c, fields);
  tb_rng rng;
  tb_rng_seed(&rng, c->seed ^ UINT64_C(0xC47A106));
  for (size_t r = 0; r < n; r++) {
    int64_t *row = ids + r * slots;
    size_t s = 0;
    for (uint32_t i = 0; i < nf; i++) {
      const sfield *f = &fields[i];
      if (f->side != SIDE_ITEM || f->kind == KIND_DENSE) continue;
      if (f->kind == KIND_SINGLE) {
        row[s++] = (int64_t)tb_rng_below(&rng, f->vocab);
      } else { /* 1..slots real ids, then padding 0 */
        size_t used = 1 + (size_t)tb_rng_below(&rng, f->slots);
        for (size_t j = 0; j < f->slots; j++) row[s++] = j < used ? 1 + (int64_t)tb_rng_below(&rng, f->vocab - 1) : 0;
      }
    }
    for (size_t j = 0; j < dw; j++) dense[r * dw + j] = tb_rng_uniform(&rng, 0.0f, 1.0f);
    keys[r] = tb_synth_item_id(r);
  }
  towerrt_features feats = {ids, n * slots, dw ? dense : NULL, n * dw};
  st = towerrt_items_build(m, &feats, keys, n, path);
done:
  free(fields);
  free(ids);
  free(dense);
  free(keys);
  return st;
}

static int file_exists(const char *p) {
  struct stat s;
  return stat(p, &s) == 0 && S_ISREG(s.st_mode);
}

towerrt_status tb_synth_prepare(const tb_synth_config *c, const char *dir, int reuse, char *model_path, char *items_path,
                                size_t cap, FILE *log) {
  if (mkdir(dir, 0777) != 0 && errno != EEXIST) return trt_fail(TOWERRT_ERR_IO, "cannot create '%s': %s", dir, strerror(errno));
  snprintf(model_path, cap, "%s/model.twr", dir);
  snprintf(items_path, cap, "%s/items.twi", dir);
  towerrt_model *m = NULL;
  towerrt_items *it = NULL;
  towerrt_status st;
  if (reuse && file_exists(model_path) && file_exists(items_path)) {
    st = towerrt_model_load(model_path, NULL, &m);
    if (!st) st = towerrt_items_load(items_path, NULL, &it);
    int ok = !st && towerrt_items_count(it) == c->catalog;
    towerrt_items_free(it);
    towerrt_model_free(m);
    if (ok) {
      if (log) fprintf(log, "towerrt bench: reusing the synthetic model and item store in %s\n", dir);
      return TOWERRT_OK;
    }
    m = NULL;
    it = NULL;
  }
  char desc[512];
  tb_synth_describe(c, desc, sizeof desc);
  if (log) fprintf(log, "towerrt bench: writing a synthetic model (%s) to %s\n", desc, model_path);
  uint64_t t0 = tb_now_ns();
  if ((st = tb_synth_write_model(c, model_path))) return st;
  if ((st = towerrt_model_load(model_path, NULL, &m))) return st;
  if (log) fprintf(log, "towerrt bench: building the item store of %u items (item tower, ISA %s)...\n", c->catalog, towerrt_model_isa(m));
  st = tb_synth_build_items(m, c, items_path);
  towerrt_model_free(m);
  if (st) return st;
  if ((st = towerrt_items_load(items_path, NULL, &it))) return st;
  towerrt_items_free(it);
  if (log) fprintf(log, "towerrt bench: model and item store ready in %.1f s\n", (double)(tb_now_ns() - t0) * 1e-9);
  return TOWERRT_OK;
}
