#include "bench_common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernel_table.h"

static _Thread_local char g_error[512];

towerrt_status tb_fail(towerrt_status st, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_error, sizeof g_error, fmt, ap);
  va_end(ap);
  return st;
}

const char *tb_last_error(void) { return g_error[0] ? g_error : towerrt_last_error(); }
void tb_clear_error(void) { g_error[0] = '\0'; }

/* TOWERRT_ISA when it names a kernel set this machine runs: it overrides
 * every model's choice (towerrt_model_isa), so `towerrt bench` offers
 * that set alone and labels its points with it (tb_bench_isas). */
static const char *forced_isa(void) {
  const char *env = getenv("TOWERRT_ISA");
  towerrt_kernels k;
  if (!env || !*env || !strcmp(env, "auto") || trt_kernels_for_isa(env, &k) != TOWERRT_OK) return NULL;
  return k.name;
}

size_t tb_bench_isas(const char *names[TB_MAX_ISAS]) {
  const char *forced = forced_isa();
  if (!forced) return tb_available_isas(names);
  names[0] = forced;
  return 1;
}

size_t tb_available_isas(const char *names[TB_MAX_ISAS]) {
  /* towerrt_isas lists them best first, scalar last: reverse, so that a
   * kernel shared by several sets is attributed to the first set that has
   * it. */
  const char *best_first[TB_MAX_ISAS];
  size_t n = towerrt_isas(best_first, TB_MAX_ISAS);
  if (n > TB_MAX_ISAS) n = TB_MAX_ISAS;
  for (size_t i = 0; i < n; i++) names[i] = best_first[n - 1 - i];
  return n;
}

const char *tb_default_isa(void) {
  const char *forced = forced_isa();
  if (forced) return forced;
  const char *best = "scalar";
  towerrt_isas(&best, 1);
  return best;
}

int tb_kernels(const char *isa, towerrt_kernels *out) { return trt_kernels_for_isa(isa, out) == TOWERRT_OK; }

void tb_mask_string(uint32_t mask, char *buf, size_t cap) {
  size_t n = 0;
  buf[0] = '\0';
  for (uint32_t i = 0; i < 32 && n < cap; i++)
    if (mask & (1u << i)) n += (size_t)snprintf(buf + n, cap - n, n ? "+%u" : "%u", i);
}

/* The vocabulary of every user id slot, and whether the slot belongs to a
 * multi-id field: the user id fields in model order, as a request holds
 * them (towerrt_model_field). */
static int user_slots(tb_reqgen *g, const towerrt_model *m) {
  size_t s = 0;
  for (size_t i = 0, n = towerrt_model_field_count(m); i < n; i++) {
    towerrt_field_info f;
    if (towerrt_model_field(m, i, &f) || f.side != TOWERRT_USER || f.kind == 2) continue;
    for (uint32_t j = 0; j < f.width && s < g->user_slots; j++, s++) {
      g->slot_vocab[s] = f.vocab;
      g->slot_multi[s] = f.kind == 1;
    }
  }
  return s == g->user_slots;
}

int tb_reqgen_init(tb_reqgen *g, const towerrt_model *m, const towerrt_items *items, uint64_t seed) {
  memset(g, 0, sizeof *g);
  tb_rng_seed(&g->rng, seed);
  g->user_slots = towerrt_model_id_slots(m, TOWERRT_USER);
  g->user_dense = towerrt_model_dense_width(m, TOWERRT_USER);
  g->slot_vocab = malloc((g->user_slots + 1) * sizeof *g->slot_vocab);
  g->slot_multi = malloc(g->user_slots + 1);
  if (!g->slot_vocab || !g->slot_multi || !user_slots(g, m)) return tb_reqgen_free(g), 0;
  if (items) {
    g->n_ids = towerrt_items_count(items);
    g->ids = malloc((g->n_ids + 1) * sizeof *g->ids);
    g->perm = malloc((g->n_ids + 1) * sizeof *g->perm);
    if (!g->ids || !g->perm) return tb_reqgen_free(g), 0;
    size_t n = towerrt_items_ids(items, g->ids, g->n_ids);
    if (n < g->n_ids) g->n_ids = n;
    for (size_t i = 0; i < g->n_ids; i++) g->perm[i] = (uint32_t)i;
  }
  return 1;
}

void tb_reqgen_user(tb_reqgen *g, int64_t *ids, float *dense) {
  for (size_t s = 0; s < g->user_slots; s++) {
    /* a multi-id slot may draw 0, the padding id: pooling sees 0..slots real ids */
    ids[s] = (int64_t)tb_rng_below(&g->rng, g->slot_vocab[s]);
  }
  for (size_t j = 0; j < g->user_dense; j++) dense[j] = tb_rng_uniform(&g->rng, 0.0f, 1.0f);
}

void tb_reqgen_candidates(tb_reqgen *g, uint64_t *out, size_t k) {
  size_t n = g->n_ids;
  if (!n) return;
  if (k > n) {
    for (size_t i = 0; i < k; i++) out[i] = g->ids[tb_rng_below(&g->rng, n)];
    return;
  }
  /* partial Fisher-Yates: k distinct rows, O(k); perm stays a permutation */
  for (size_t i = 0; i < k; i++) {
    size_t j = i + (size_t)tb_rng_below(&g->rng, n - i);
    uint32_t t = g->perm[i];
    g->perm[i] = g->perm[j];
    g->perm[j] = t;
    out[i] = g->ids[g->perm[i]];
  }
}

void tb_reqgen_free(tb_reqgen *g) {
  free(g->slot_vocab);
  free(g->slot_multi);
  free(g->ids);
  free(g->perm);
  memset(g, 0, sizeof *g);
}
