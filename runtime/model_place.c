/* NUMA placement of a model's compute weights: one copy per node of the
 * pool (replicate) or one copy interleaved over them. Sessions run the
 * towers of their node (session.c). */
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "pool.h"
#include "status.h"

#define REBASE(ptr, type) \
  if (ptr) ptr = (type)(const void *)(to + ((const char *)(const void *)(ptr) - from))

/* Every weight pointer of a layer points into m->owned (graph_compile.c). */
static void rebase_layer(trt_dense_layer *d, const char *from, char *to) {
  REBASE(d->w, const float *);
  REBASE(d->b, const float *);
  REBASE(d->w_bf16, const uint16_t *);
  REBASE(d->w_s8, const int8_t *);
  REBASE(d->w_sum, const int32_t *);
  REBASE(d->w_scale, const float *);
}

static void rebase_tower(trt_tower *t, const char *from, char *to) {
  for (uint32_t L = 0; L < t->n_layers; L++) rebase_layer(&t->layers[L], from, to);
  for (uint32_t L = 0; L < TRT_MAX_LAYERS; L++)
    if (t->fe_present & (1u << L)) rebase_layer(&t->fe[L], from, to);
}

static towerrt_status place_copy(towerrt_model *m, const towerrt_pool *pool, int node, trt_placed_towers **out) {
  towerrt_status st = trt_model_reserve(m, m->owned_bytes, "placing the weights");
  if (st) return st;
  trt_placed_towers *pt = calloc(1, sizeof *pt);
  if (!pt) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  pt->mem = trt_pool_alloc(pool, node, m->owned_bytes, &pt->bound);
  if (!pt->mem) {
    free(pt);
    return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory placing %zu bytes of weights on node %d", m->owned_bytes, node);
  }
  memcpy(pt->mem, m->owned, m->owned_bytes);
  pt->user = m->user;
  pt->item = m->item;
  rebase_tower(&pt->user, m->owned, pt->mem);
  rebase_tower(&pt->item, m->owned, pt->mem);
  *out = pt;
  return TOWERRT_OK;
}

towerrt_status trt_model_place(towerrt_model *m, const towerrt_pool *pool, uint32_t placement) {
  if (placement > TOWERRT_PLACE_INTERLEAVE) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "placement %u is not a towerrt_placement", placement);
  if (placement == TOWERRT_PLACE_SHARED) return TOWERRT_OK;
  if (!pool) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "placement needs options.pool");
  m->pool = pool;
  m->placement = placement;
  trt_placed_towers *shared = NULL;
  for (uint32_t i = 0; i < pool->topo.n_nodes; i++) {
    if (!(pool->active & (UINT64_C(1) << i))) continue;
    if (placement == TOWERRT_PLACE_INTERLEAVE && shared) {
      m->placed[i] = shared;
      continue;
    }
    towerrt_status st = place_copy(m, pool, placement == TOWERRT_PLACE_INTERLEAVE ? -1 : (int)i, &m->placed[i]);
    if (st) return st;
    shared = m->placed[i];
  }
  return TOWERRT_OK;
}

void trt_model_unplace(towerrt_model *m) {
  for (uint32_t i = 0; i < TRT_MAX_NODES; i++) {
    trt_placed_towers *pt = m->placed[i];
    if (!pt) continue;
    for (uint32_t j = i; j < TRT_MAX_NODES; j++)
      if (m->placed[j] == pt) m->placed[j] = NULL; /* interleaved: one copy, many nodes */
    trt_pool_release(m->pool, pt->mem, m->owned_bytes, pt->bound);
    free(pt);
  }
}
