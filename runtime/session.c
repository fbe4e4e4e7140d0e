/* Sessions, their life: creation (the checks of a model, a store and the
 * options against each other, the arena planned for max_k so that scoring
 * allocates nothing), live store swaps, the observer, freeing. The request
 * path is session_score.c; what both read is session_internal.h. */
#include "session_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "family.h"
#include "item_store.h"
#include "onednn_matmul.h"
#include "options.h"
#include "pool.h"
#include "quantize_heads.h"
#include "status.h"
#include "topn.h"
#include "tower_exec.h"

void towerrt_session_set_trace(towerrt_session *s, towerrt_trace_fn fn, void *ctx) {
  if (!s) return;
  s->trace = fn;
  s->trace_ctx = ctx;
}

static towerrt_status check_items(const towerrt_model *m, const towerrt_items *it, const towerrt_options *o) {
  if (!it) return TOWERRT_OK;
  if (m->family->check_items) {
    towerrt_status st = m->family->check_items(m, it);
    if (st) return st;
  }
  if (it->heads != m->heads_item || it->head_dim != m->head_dim)
    return trt_fail(TOWERRT_ERR_MISMATCH, "item store rows are %u heads x %u dims, the model's item heads are %u x %u", it->heads,
                    it->head_dim, m->heads_item, m->head_dim);
  if (it->is_delta && !it->overlay)
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "a delta store is scored through its base: towerrt_items_overlay(base, deltas, ...)");
  /* a delta of an overlay is scored with its own centre, as the base */
  for (uint32_t i = 0; i < (it->overlay ? it->overlay->n_layers : 1); i++) {
    const towerrt_items *layer = it->overlay ? it->overlay->layer[i] : it;
    if ((layer->centre || layer->row_centres) && !m->family->centred_items)
      return trt_fail(TOWERRT_ERR_UNSUPPORTED, "a centred item store (ITEM_CENTRE / ROW_CENTRES) cannot serve a %s model: its score is not a sum of "
                      "dot products with the item heads; quantize its store without centring (towerrt quantize --no-centre)", m->family->name);
  }
  if (it->fingerprint != m->item_fingerprint && !o->allow_foreign_items)
    return trt_fail(TOWERRT_ERR_MISMATCH, "item store was built by another model (fingerprint 0x%08x, this model 0x%08x); "
                    "rebuild it or set allow_foreign_items", it->fingerprint, m->item_fingerprint);
  return TOWERRT_OK;
}

/* "0,2" for the bits of a layer mask. */
static const char *layer_list(uint32_t mask, char *buf, size_t cap) {
  size_t n = 0;
  buf[0] = 0;
  for (unsigned i = 0; i < 32 && n < cap; i++)
    if (mask & (1u << i)) n += (size_t)snprintf(buf + n, cap - n, n ? ",%u" : "%u", i);
  return buf;
}

static towerrt_status check_mask(const towerrt_model *m, uint32_t mask) {
  if (mask & ~m->user.fe_present) {
    char want[96], have[96];
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "user FE layer(s) %s asked for (fe_layer_mask 0x%x), but the model has FE layers %s",
                    layer_list(mask & ~m->user.fe_present, want, sizeof want), mask, layer_list(m->user.fe_present, have, sizeof have));
  }
  return TOWERRT_OK;
}

/* Picks the node and its pool; checks threads against its workers. */
static towerrt_status choose_node(const towerrt_options *o, trt_node_pool **pool, uint32_t *node) {
  *pool = NULL;
  *node = 0;
  if (o->threads == 0 || o->threads > 1024) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "options.threads %u out of range 1..1024", o->threads);
  towerrt_pool *p = o->pool;
  if (!p) {
    if (o->threads > 1) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "options.threads = %u needs options.pool (towerrt_pool_create)", o->threads);
    return TOWERRT_OK;
  }
  uint32_t n = o->numa_node >= 0 ? (uint32_t)o->numa_node : trt_topology_current_node(&p->topo);
  if (o->numa_node < 0 && !(p->active & (UINT64_C(1) << n)))
    for (n = 0; n < p->topo.n_nodes && !(p->active & (UINT64_C(1) << n)); n++) {
    }
  if (n >= p->topo.n_nodes || !(p->active & (UINT64_C(1) << n)))
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "numa_node %d has no worker pool (%u nodes)", o->numa_node, p->topo.n_nodes);
  if (o->threads > p->nodes[n].n_workers + 1)
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "threads = %u, but node %u has %u workers (+ the caller)", o->threads, n, p->nodes[n].n_workers);
  *pool = &p->nodes[n];
  *node = n;
  return TOWERRT_OK;
}

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

/* Per participant: the block buffers and a heap of max_topn entries. */
static towerrt_status make_serve_arena(towerrt_session *s) {
  size_t scores = align64(TRT_ID_BLOCK * sizeof(float)), pos = align64(TRT_ID_BLOCK * sizeof(uint16_t));
  size_t drow = align64(TRT_ID_BLOCK * sizeof(uint32_t)), dlayer = align64(TRT_ID_BLOCK * sizeof(void *));
  size_t heap = align64((size_t)s->max_topn * sizeof(trt_rank)), per = scores + 2 * pos + drow + dlayer + heap;
  s->slots = calloc(s->threads, sizeof *s->slots);
  s->serve_arena = aligned_alloc(64, per * s->threads);
  if (!s->slots || !s->serve_arena)
    return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for top-n heaps of %zu bytes (options.max_topn %u)", per * s->threads, s->max_topn);
  for (uint32_t i = 0; i < s->threads; i++) {
    char *base = (char *)s->serve_arena + per * i;
    char *d = base + scores + pos;
    s->slots[i] = (trt_serve_slot){.scores = (float *)base, .pos = (uint16_t *)(base + scores), .drow = (uint32_t *)d,
                                   .dpos = (uint16_t *)(d + drow), .dlayer = (const towerrt_items **)(d + drow + pos),
                                   .heap = (trt_rank *)(d + drow + pos + dlayer)};
  }
  return TOWERRT_OK;
}

static towerrt_status make_arena(towerrt_session *s) {
  size_t per = (trt_workspace_bytes(s->model) + 63) & ~(size_t)63;
  s->ws = calloc(s->threads, sizeof *s->ws);
  s->arena = aligned_alloc(64, per * s->threads);
  if (!s->ws || !s->arena) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for a session arena of %zu bytes", per * s->threads);
  for (uint32_t i = 0; i < s->threads; i++) trt_workspace_init(s->model, (char *)s->arena + per * i, &s->ws[i]);
  if (s->model->family->request_bytes) {
    size_t bytes = (s->model->family->request_bytes(s->model, s->max_k) + 63) & ~(size_t)63;
    s->family_scratch = aligned_alloc(64, bytes ? bytes : 64);
    s->family_scores = malloc((size_t)s->max_k * sizeof(float));
    s->family_rows = malloc((size_t)s->max_k * sizeof(float *));
    if (!s->family_scratch || !s->family_scores || !s->family_rows)
      return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for the %s request scratch of %zu bytes (max_k %u)", s->model->family->name, bytes, s->max_k);
  }
  return make_serve_arena(s);
}

towerrt_status towerrt_session_create(const towerrt_model *m, const towerrt_items *items, const towerrt_options *o,
                                      towerrt_session **out) {
  if (!out) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_session_create: out is NULL");
  *out = NULL;
  if (!m) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_session_create: model is NULL");
  towerrt_options defaults;
  towerrt_status st = trt_options_resolve(o, &defaults, &o);
  if (st) return st;
  if (o->max_k == 0) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "options.max_k must be at least 1");
  uint32_t mask = o->fe_layer_mask ? o->fe_layer_mask : m->trained_fe_mask;
  trt_node_pool *pool;
  uint32_t node;
  /* two-tower family hook: options only IntTower has (fe_layer_mask) */
  st = m->family->check_session ? m->family->check_session(m, o) : TOWERRT_OK;
  if (!st) st = check_mask(m, mask);
  if (!st) st = check_items(m, items, o);
  if (!st) st = choose_node(o, &pool, &node);
  if (st) return st;
  towerrt_session *s = calloc(1, sizeof *s);
  if (!s) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  const trt_placed_towers *placed = node < TRT_MAX_NODES ? m->placed[node] : NULL;
  *s = (towerrt_session){.model = m, .current = items, .allow_foreign = o->allow_foreign_items != 0,
                         .max_k = o->max_k, .fe_mask = mask, .output_logits = o->output_logits != 0,
                         .max_topn = o->max_topn < o->max_k ? o->max_topn : o->max_k, .skip_unknown = o->skip_unknown_items != 0,
                         .pool = pool, .threads = o->threads, .node = node,
                         .user = placed ? &placed->user : &m->user, .item = placed ? &placed->item : &m->item};
  pthread_mutex_init(&s->items_mu, NULL);
  trt_items_retain(items);
  s->user_sum = malloc(m->head_dim * sizeof(double));
  if (!s->user_sum) st = trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  if (st || (st = make_arena(s))) {
    towerrt_session_free(s);
    return st;
  }
  *out = s;
  return TOWERRT_OK;
}

towerrt_status towerrt_session_set_items(towerrt_session *s, const towerrt_items *items) {
  if (!s) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_session_set_items: session is NULL");
  towerrt_options o;
  towerrt_options_init(&o);
  o.allow_foreign_items = s->allow_foreign;
  towerrt_status st = check_items(s->model, items, &o);
  /* not recorded on the session: its message belongs to the thread that scores */
  if (st) return st;
  trt_items_retain(items);
  pthread_mutex_lock(&s->items_mu);
  const towerrt_items *old = s->current;
  s->current = items;
  pthread_mutex_unlock(&s->items_mu);
  trt_items_release(old);
  return TOWERRT_OK;
}

void towerrt_session_free(towerrt_session *s) {
  if (!s) return;
  trt_items_release(s->current);
  pthread_mutex_destroy(&s->items_mu);
  trt_mm_free(s->mm);
  free(s->user_sum);
  free(s->serve_arena);
  free(s->slots);
  free(s->arena);
  free(s->ws);
  free(s->family_scratch);
  free(s->family_scores);
  free(s->family_rows);
  free(s);
}

const char *towerrt_session_error(const towerrt_session *s) { return s ? s->error : ""; }
