#include "bench_common.h"

#include <stdlib.h>
#include <string.h>

#include "runtime/cpu_features.h"
#include "runtime/item_store.h"

/* TOWERRT_ISA when it names a kernel set this machine runs: it overrides
 * every model's choice (runtime/cpu_features.c), so `towerrt bench` offers
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
  /* runtime/cpu_features.c lists them best first, scalar last: reverse, so
   * that a kernel shared by several sets is attributed to the first set
   * that has it. */
  const char *best_first[TB_MAX_ISAS];
  size_t n = trt_cpu_isas(best_first, TB_MAX_ISAS);
  if (n > TB_MAX_ISAS) n = TB_MAX_ISAS;
  for (size_t i = 0; i < n; i++) names[i] = best_first[n - 1 - i];
  return n;
}

const char *tb_default_isa(void) {
  const char *forced = forced_isa();
  if (forced) return forced;
  const char *best = "scalar";
  trt_cpu_isas(&best, 1);
  return best;
}

int tb_kernels(const char *isa, towerrt_kernels *out) { return trt_kernels_for_isa(isa, out) == TOWERRT_OK; }

void tb_mask_string(uint32_t mask, char *buf, size_t cap) {
  size_t n = 0;
  buf[0] = '\0';
  for (uint32_t i = 0; i < 32 && n < cap; i++)
    if (mask & (1u << i)) n += (size_t)snprintf(buf + n, cap - n, n ? "+%u" : "%u", i);
}

int tb_reqgen_init(tb_reqgen *g, const towerrt_model *m, const towerrt_items *items, uint64_t seed) {
  memset(g, 0, sizeof *g);
  tb_rng_seed(&g->rng, seed);
  const trt_tower *t = &m->user;
  g->user_slots = t->id_slots;
  g->user_dense = t->dense_width;
  g->slot_vocab = malloc((g->user_slots + 1) * sizeof *g->slot_vocab);
  g->slot_multi = malloc(g->user_slots + 1);
  if (!g->slot_vocab || !g->slot_multi) return tb_reqgen_free(g), 0;
  size_t s = 0;
  for (uint32_t fi = 0; fi < t->n_id_fields; fi++) {
    const trt_field *f = &m->fields[t->first_field + fi];
    for (uint32_t j = 0; j < f->slots; j++, s++) {
      g->slot_vocab[s] = f->vocab;
      g->slot_multi[s] = f->kind == TRT_FIELD_MULTI;
    }
  }
  if (items) {
    g->n_ids = (size_t)items->count;
    g->ids = malloc(g->n_ids * sizeof *g->ids);
    g->perm = malloc(g->n_ids * sizeof *g->perm);
    if (!g->ids || !g->perm) return tb_reqgen_free(g), 0;
    size_t n = 0;
    for (uint64_t i = 0; i < items->n_slots && n < g->n_ids; i++) {
      const unsigned char *slot = items->slots + i * 16;
      if (trt_rd32(slot + 8) != TRT_EMPTY_ROW) g->ids[n++] = trt_rd64(slot);
    }
    g->n_ids = n;
    for (size_t i = 0; i < n; i++) g->perm[i] = (uint32_t)i;
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
