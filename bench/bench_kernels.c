/* kernel/<op>/<isa>: every kernel of every kernel set this machine runs,
 * on the shapes of the reference model (bench_suites.h). A kernel shared
 * by two sets (the same function) is measured once, under the first set.
 * Counters: items/s = candidates (MaxSim) or rows (dense), bytes/s = item
 * rows or weights read, MACs = multiply-adds per second. */
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "bench_suites.h"
#include "gbench_shim.h"

/* ---- shared data, allocated on first use ------------------------------------------ */

#define HOT_ROWS 32u /* rows that stay in L2 between calls */
#define BLOCKS 16u   /* distinct candidate blocks cycled through */

static struct {
  int quick;
  unsigned char *store; /* item rows of every dtype: each 32-bit word is two bf16 in [0.5, 2) */
  size_t store_bytes;
  int32_t *colsum; /* u8s8: per row and item head */
  float *iscale;
  size_t colsum_rows;
} g;

static size_t store_size(void) {
  if (g.quick) return (size_t)8 << 20;
  tb_machine mc;
  tb_machine_describe(&mc);
  size_t b = 8 * (size_t)(mc.l3_bytes > 0 ? mc.l3_bytes : 32 << 20);
  if (b < ((size_t)256 << 20)) b = (size_t)256 << 20;
  if (b > ((size_t)1 << 30)) b = (size_t)1 << 30;
  return b;
}

static uint16_t rand_bf16(tb_rng *r) {
  uint64_t x = tb_rng_next(r);
  /* sign, exponent 126 or 127, 7 random mantissa bits: normal, in (-2, -0.5] U [0.5, 2) */
  return (uint16_t)(((x & 1) << 15) | ((126u + ((x >> 1) & 1)) << 7) | ((x >> 2) & 0x7f));
}

static int ensure_store(void) {
  if (g.store) return 1;
  g.store_bytes = store_size();
  g.store = tb_alloc(g.store_bytes);
  if (!g.store) return 0;
  tb_rng r;
  tb_rng_seed(&r, 99);
  uint32_t *w = (uint32_t *)g.store;
  for (size_t i = 0; i < g.store_bytes / 4; i++) w[i] = ((uint32_t)rand_bf16(&r) << 16) | rand_bf16(&r);
  return 1;
}

static int ensure_colsum(size_t rows, size_t n_item) {
  if (g.colsum && g.colsum_rows >= rows * n_item) return 1;
  free(g.colsum);
  free(g.iscale);
  g.colsum = malloc(rows * n_item * sizeof *g.colsum);
  g.iscale = malloc(rows * sizeof *g.iscale);
  if (!g.colsum || !g.iscale) return 0;
  g.colsum_rows = rows * n_item;
  for (size_t i = 0; i < rows * n_item; i++) g.colsum[i] = 1000;
  for (size_t i = 0; i < rows; i++) g.iscale[i] = 0.001f;
  return 1;
}

static void *kept[256];
static size_t n_kept;

void tb_suites_cleanup(void) {
  tb_e2e_cleanup();
  for (size_t i = 0; i < n_kept; i++) free(kept[i]);
  n_kept = 0;
  free(g.store);
  free(g.colsum);
  free(g.iscale);
  memset(&g, 0, sizeof g);
}

/* ---- MaxSim ------------------------------------------------------------------------ */

enum { T_F32 = 0, T_BF16 = 1, T_U8S8 = 2 };

typedef struct maxsim_bench {
  int type;
  trt_maxsim_f32_fn f32;
#ifdef TB_HAVE_MAXSIM_BF16
  trt_maxsim_bf16_fn bf16;
#endif
#ifdef TB_HAVE_MAXSIM_U8S8
  trt_maxsim_u8s8_fn u8s8;
#endif
} maxsim_bench;

static void bm_maxsim(gbs_state *s, void *user) {
  const maxsim_bench *mb = user;
  size_t k = (size_t)gbs_range_arg(s, 0), n_user = (size_t)gbs_range_arg(s, 1), n_item = (size_t)gbs_range_arg(s, 2);
  size_t dim = (size_t)gbs_range_arg(s, 3);
  int dram = gbs_range_arg(s, 4) != 0;
  size_t esize = mb->type == T_F32 ? 4 : mb->type == T_BF16 ? 2 : 1;
  size_t row_elems = n_item * dim, row_bytes = row_elems * esize;
  if (!ensure_store()) {
    gbs_skip_with_error(s, "out of memory for the item store");
    return;
  }
  size_t n_rows = dram ? g.store_bytes / row_bytes : HOT_ROWS;
  uint32_t *rows = malloc(BLOCKS * k * sizeof *rows);
  float *scores = malloc(k * sizeof *scores);
  float *uf = tb_alloc(n_user * dim * sizeof(float));
  uint16_t *ub = tb_alloc(n_user * dim * sizeof(uint16_t));
  uint8_t *uq = tb_alloc(n_user * dim);
  int32_t *zp = malloc(n_user * sizeof *zp);
  float *us = malloc(n_user * sizeof *us);
  if (!rows || !scores || !uf || !ub || !uq || !zp || !us || (mb->type == T_U8S8 && !ensure_colsum(n_rows, n_item))) {
    gbs_skip_with_error(s, "out of memory");
    goto done;
  }
  tb_rng r;
  tb_rng_seed(&r, 5);
  for (size_t i = 0; i < BLOCKS * k; i++) rows[i] = (uint32_t)tb_rng_below(&r, n_rows);
  for (size_t i = 0; i < n_user * dim; i++) {
    uint16_t b = rand_bf16(&r);
    uint32_t bits = (uint32_t)b << 16;
    memcpy(&uf[i], &bits, 4);
    ub[i] = b;
    uq[i] = (uint8_t)tb_rng_below(&r, 256);
  }
  for (size_t u = 0; u < n_user; u++) {
    zp[u] = 128;
    us[u] = 0.01f;
  }
  size_t blk = 0;
  while (gbs_keep_running(s)) {
    const uint32_t *rw = rows + (blk++ % BLOCKS) * k;
    switch (mb->type) {
      case T_F32: mb->f32(uf, n_user, (const float *)g.store, row_elems, rw, k, n_item, dim, scores); break;
#ifdef TB_HAVE_MAXSIM_BF16
      case T_BF16: mb->bf16(ub, n_user, (const uint16_t *)g.store, row_elems, rw, k, n_item, dim, scores); break;
#endif
#ifdef TB_HAVE_MAXSIM_U8S8
      case T_U8S8: {
        trt_maxsim_u8s8_params p = {uq, zp, us, n_user, (const int8_t *)g.store, row_bytes, g.colsum, n_item, g.iscale, n_item, dim};
        mb->u8s8(&p, rw, k, scores);
        break;
      }
#endif
      default: break;
    }
    gbs_clobber_memory();
  }
  int64_t it = gbs_iterations_done(s);
  gbs_set_items_processed(s, it * (int64_t)k);
  gbs_set_bytes_processed(s, it * (int64_t)(k * row_bytes));
  gbs_counter(s, "MACs", (double)k * (double)(n_user * n_item * dim), GBS_RATE_PER_ITERATION);
  gbs_set_label(s, dram ? "rows from a store >> LLC" : "L2-resident rows");
done:
  free(rows);
  free(scores);
  free(uf);
  free(ub);
  free(uq);
  free(zp);
  free(us);
}

/* ---- dense, Light-SE, embedding pooling ------------------------------------------------------ */

static void bm_dense(gbs_state *s, void *user) {
  trt_dense_f32_fn fn;
  memcpy(&fn, user, sizeof fn);
  size_t n = (size_t)gbs_range_arg(s, 0), in = (size_t)gbs_range_arg(s, 1), out = (size_t)gbs_range_arg(s, 2);
  float *w = tb_alloc(in * out * sizeof(float)), *b = tb_alloc(out * sizeof(float));
  float *x = tb_alloc(n * in * sizeof(float)), *y = tb_alloc(n * out * sizeof(float));
  if (!w || !b || !x || !y) {
    gbs_skip_with_error(s, "out of memory");
  } else {
    tb_rng r;
    tb_rng_seed(&r, 17);
    for (size_t i = 0; i < in * out; i++) w[i] = tb_rng_uniform(&r, -0.05f, 0.05f);
    for (size_t i = 0; i < out; i++) b[i] = 0.01f;
    for (size_t i = 0; i < n * in; i++) x[i] = tb_rng_uniform(&r, 0.0f, 1.0f);
    while (gbs_keep_running(s)) {
      fn(x, n, in, w, b, out, 1, y);
      gbs_clobber_memory();
    }
    int64_t it = gbs_iterations_done(s);
    gbs_set_items_processed(s, it * (int64_t)n);
    gbs_set_bytes_processed(s, it * (int64_t)(in * out * sizeof(float)));
    gbs_counter(s, "MACs", (double)(n * in * out), GBS_RATE_PER_ITERATION);
  }
  free(w);
  free(b);
  free(x);
  free(y);
}

static void bm_lightse(gbs_state *s, void *user) {
  trt_lightse_f32_fn fn;
  memcpy(&fn, user, sizeof fn);
  size_t F = (size_t)gbs_range_arg(s, 0), d = (size_t)gbs_range_arg(s, 1);
  float *e = malloc(F * d * sizeof(float)), *w = malloc(F * F * sizeof(float)), *scratch = malloc(2 * F * sizeof(float));
  float *out = malloc(F * d * sizeof(float));
  if (!e || !w || !scratch || !out) {
    gbs_skip_with_error(s, "out of memory");
  } else {
    tb_rng r;
    tb_rng_seed(&r, 19);
    for (size_t i = 0; i < F * d; i++) e[i] = tb_rng_uniform(&r, -0.05f, 0.05f);
    for (size_t i = 0; i < F * F; i++) w[i] = tb_rng_uniform(&r, -0.5f, 0.5f);
    while (gbs_keep_running(s)) {
      fn(e, F, d, w, NULL, scratch, out);
      gbs_clobber_memory();
    }
    gbs_set_items_processed(s, gbs_iterations_done(s));
  }
  free(e);
  free(w);
  free(scratch);
  free(out);
}

static void bm_embed_pool(gbs_state *s, void *user) {
  trt_embed_pool_f32_fn fn;
  memcpy(&fn, user, sizeof fn);
  size_t slots = (size_t)gbs_range_arg(s, 0), dim = (size_t)gbs_range_arg(s, 1);
  int mode = (int)gbs_range_arg(s, 2);
  const size_t vocab = 1000;
  float *table = malloc(vocab * dim * sizeof(float)), *out = malloc(dim * sizeof(float));
  int64_t *ids = malloc(slots * sizeof *ids);
  if (!table || !out || !ids) {
    gbs_skip_with_error(s, "out of memory");
  } else {
    tb_rng r;
    tb_rng_seed(&r, 23);
    for (size_t i = 0; i < vocab * dim; i++) table[i] = tb_rng_uniform(&r, -0.05f, 0.05f);
    for (size_t i = 0; i < slots; i++) ids[i] = i < slots - slots / 4 ? 1 + (int64_t)tb_rng_below(&r, vocab - 1) : 0;
    while (gbs_keep_running(s)) {
      fn(table, dim, ids, slots, mode, out);
      gbs_clobber_memory();
    }
    gbs_set_items_processed(s, gbs_iterations_done(s));
  }
  free(table);
  free(out);
  free(ids);
}

/* ---- registration ------------------------------------------------------------------------------ */

typedef void (*any_fn)(void);

static int first_time(any_fn *seen, size_t *n, any_fn f) {
  for (size_t i = 0; i < *n; i++)
    if (seen[i] == f) return 0;
  seen[(*n)++] = f;
  return 1;
}

/* The registered benchmarks keep their user pointer until tb_suites_cleanup. */
static void *keep(const void *p, size_t n) {
  if (n_kept == sizeof kept / sizeof kept[0]) return NULL;
  void *c = malloc(n);
  if (c) {
    memcpy(c, p, n);
    kept[n_kept++] = c;
  }
  return c;
}

static void add_args(gbs_benchmark *b, const int64_t (*rows)[5], size_t n_rows, size_t n_args, const char *const *names) {
  gbs_arg_names(b, names, n_args);
  for (size_t i = 0; i < n_rows; i++) gbs_args(b, rows[i], n_args);
}

static void register_maxsim(const char *op, const char *isa, const maxsim_bench *mb, int quick) {
  static const int64_t full[][5] = {
      {256, 96, 32, 64, 0}, {256, 96, 32, 64, 1}, /* reference model, 3 FE layers */
      {256, 32, 32, 64, 0}, {256, 32, 32, 64, 1}, /* one FE layer */
      {16, 96, 32, 64, 0},                        /* a short block */
      {256, 48, 16, 32, 0},                       /* smaller heads */
  };
  static const int64_t small[][5] = {{16, 8, 4, 8, 0}, {16, 8, 4, 8, 1}};
  static const char *const names[] = {"k", "uheads", "iheads", "dim", "dram"};
  char name[96];
  snprintf(name, sizeof name, "kernel/%s/%s", op, isa);
  void *u = keep(mb, sizeof *mb);
  if (!u) return;
  gbs_benchmark *b = gbs_register(name, bm_maxsim, u);
  if (quick) add_args(b, small, 2, 5, names);
  else add_args(b, full, sizeof full / sizeof full[0], 5, names);
  gbs_unit(b, GBS_US);
}

void tb_register_kernel_suite(const tb_suite_options *o) {
  g.quick = o->quick;
  const char *isas[TB_MAX_ISAS];
  size_t n = tb_available_isas(isas);
  any_fn seen[4 * TB_MAX_ISAS * 2];
  size_t n_seen = 0;
  static const int64_t dense_full[][5] = {
      {1, 129, 300}, {1, 300, 300}, {1, 300, 128},  /* user tower */
      {1, 129, 2048}, {1, 300, 2048},               /* user FE projections */
      {32, 65, 300}, {32, 300, 300}, {32, 128, 2048} /* an item-tower block */
  };
  static const int64_t dense_small[][5] = {{1, 16, 16}, {4, 16, 32}};
  static const int64_t lse_full[][5] = {{4, 32}, {2, 32}, {26, 16}}, lse_small[][5] = {{2, 8}};
  static const int64_t pool_full[][5] = {{6, 32, 0}, {50, 32, 0}, {6, 32, 2}}, pool_small[][5] = {{3, 8, 0}};
  static const char *const dense_names[] = {"n", "in", "out"}, *const lse_names[] = {"fields", "dim"};
  static const char *const pool_names[] = {"slots", "dim", "mode"};
  for (size_t i = 0; i < n; i++) {
    towerrt_kernels k;
    if (!tb_kernels(isas[i], &k)) continue;
    char name[96];
    if (k.maxsim_f32 && first_time(seen, &n_seen, (any_fn)k.maxsim_f32)) {
      maxsim_bench mb;
      memset(&mb, 0, sizeof mb);
      mb.type = T_F32;
      mb.f32 = k.maxsim_f32;
      register_maxsim("maxsim_f32", k.name, &mb, o->quick);
    }
#ifdef TB_HAVE_MAXSIM_BF16
    if (k.maxsim_bf16 && first_time(seen, &n_seen, (any_fn)k.maxsim_bf16)) {
      maxsim_bench mb;
      memset(&mb, 0, sizeof mb);
      mb.type = T_BF16;
      mb.bf16 = k.maxsim_bf16;
      register_maxsim("maxsim_bf16", k.name, &mb, o->quick);
    }
#endif
#ifdef TB_HAVE_MAXSIM_U8S8
    if (k.maxsim_u8s8 && first_time(seen, &n_seen, (any_fn)k.maxsim_u8s8)) {
      maxsim_bench mb;
      memset(&mb, 0, sizeof mb);
      mb.type = T_U8S8;
      mb.u8s8 = k.maxsim_u8s8;
      register_maxsim("maxsim_u8s8", k.name, &mb, o->quick);
    }
#endif
    if (k.dense_f32 && first_time(seen, &n_seen, (any_fn)k.dense_f32)) {
      snprintf(name, sizeof name, "kernel/dense_f32/%s", k.name);
      void *u = keep(&k.dense_f32, sizeof k.dense_f32);
      if (!u) continue;
      gbs_benchmark *b = gbs_register(name, bm_dense, u);
      if (o->quick) add_args(b, dense_small, 2, 3, dense_names);
      else add_args(b, dense_full, sizeof dense_full / sizeof dense_full[0], 3, dense_names);
      gbs_unit(b, GBS_US);
    }
    if (k.lightse_f32 && first_time(seen, &n_seen, (any_fn)k.lightse_f32)) {
      snprintf(name, sizeof name, "kernel/lightse_f32/%s", k.name);
      void *u = keep(&k.lightse_f32, sizeof k.lightse_f32);
      if (!u) continue;
      gbs_benchmark *b = gbs_register(name, bm_lightse, u);
      if (o->quick) add_args(b, lse_small, 1, 2, lse_names);
      else add_args(b, lse_full, sizeof lse_full / sizeof lse_full[0], 2, lse_names);
    }
    if (k.embed_pool_f32 && first_time(seen, &n_seen, (any_fn)k.embed_pool_f32)) {
      snprintf(name, sizeof name, "kernel/embed_pool_f32/%s", k.name);
      void *u = keep(&k.embed_pool_f32, sizeof k.embed_pool_f32);
      if (!u) continue;
      gbs_benchmark *b = gbs_register(name, bm_embed_pool, u);
      if (o->quick) add_args(b, pool_small, 1, 3, pool_names);
      else add_args(b, pool_full, sizeof pool_full / sizeof pool_full[0], 3, pool_names);
    }
  }
}
