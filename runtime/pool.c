/* towerrt_pool_*: topology discovery and per-node worker pools. */
#include "pool.h"

#include <stdlib.h>
#include <string.h>

#include "options.h"
#include "status.h"
#include "text_buf.h"

towerrt_status towerrt_pool_create(const towerrt_options *o, towerrt_pool **out) {
  if (!out) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_pool_create: out is NULL");
  *out = NULL;
  towerrt_options defaults;
  towerrt_status st = trt_options_resolve(o, &defaults, &o);
  if (st) return st;
  if (o->threads_per_node > 1024) return trt_fail(TOWERRT_ERR_LIMIT, "threads_per_node %u exceeds 1024", o->threads_per_node);
  towerrt_pool *p = calloc(1, sizeof *p);
  if (!p) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  st = trt_topology_load(o->topology, &p->topo);
  if (st) {
    free(p);
    return st;
  }
  if (o->node_mask && (p->topo.n_nodes >= 64 ? 0 : (o->node_mask >> p->topo.n_nodes))) {
    st = trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "node_mask 0x%llx names nodes beyond the %u of this topology",
                  (unsigned long long)o->node_mask, p->topo.n_nodes);
  }
  for (uint32_t i = 0; i < p->topo.n_nodes && !st; i++) {
    const trt_numa_node *nd = &p->topo.nodes[i];
    if ((o->node_mask && !(o->node_mask & (UINT64_C(1) << i))) || nd->n_cores == 0) continue;
    uint32_t workers = o->threads_per_node ? o->threads_per_node : nd->n_cores;
    st = trt_node_pool_start(&p->nodes[i], &p->topo, i, workers, o->pin_threads != 0);
    p->active |= UINT64_C(1) << i;
  }
  if (!st && !p->active) st = trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "no NUMA node with cores selected (node_mask 0x%llx)",
                                       (unsigned long long)o->node_mask);
  if (st) {
    towerrt_pool_free(p);
    return st;
  }
  *out = p;
  return TOWERRT_OK;
}

void towerrt_pool_free(towerrt_pool *p) {
  if (!p) return;
  for (uint32_t i = 0; i < p->topo.n_nodes; i++) trt_node_pool_stop(&p->nodes[i]);
  trt_topology_free(&p->topo);
  free(p);
}

uint32_t towerrt_pool_node_count(const towerrt_pool *p) { return p ? p->topo.n_nodes : 0; }

void *trt_pool_alloc(const towerrt_pool *p, int node, size_t bytes, int *bound) {
  *bound = 0;
  if (!p || p->topo.simulated || bytes == 0) return aligned_alloc(64, (bytes + 63) & ~(size_t)63);
  uint64_t mask = 0;
  for (uint32_t i = 0; i < p->topo.n_nodes; i++)
    if ((node < 0 && (p->active & (UINT64_C(1) << i))) || (uint32_t)node == i) mask |= UINT64_C(1) << i;
  void *mem = trt_topology_alloc_bound(&p->topo, mask, node < 0, bytes);
  if (mem) {
    *bound = 1;
    return mem;
  }
  return aligned_alloc(64, (bytes + 63) & ~(size_t)63);
}

void trt_pool_release(const towerrt_pool *p, void *mem, size_t bytes, int bound) {
  if (!mem) return;
  if (bound) trt_topology_free_bound(&p->topo, mem, bytes);
  else free(mem);
}

size_t towerrt_pool_describe(const towerrt_pool *p, char *buf, size_t cap) {
  trt_text_buf t = {buf, cap, 0};
  if (cap) buf[0] = '\0';
  if (!p) return 0;
  trt_text_put(&t, "topology: %s, %u NUMA node(s)%s\n", p->topo.source, p->topo.n_nodes,
      p->topo.simulated ? " (simulated: threads and memory are planned, not bound)" : "");
  for (uint32_t i = 0; i < p->topo.n_nodes; i++) {
    const trt_numa_node *nd = &p->topo.nodes[i];
    const trt_node_pool *np = &p->nodes[i];
    trt_text_put(&t, "  node %u (os %u): %u core(s); ", i, nd->os_index, nd->n_cores);
    if (!(p->active & (UINT64_C(1) << i))) {
      trt_text_put(&t, "no pool\n");
      continue;
    }
    trt_text_put(&t, "pool of %u worker(s) on PUs", np->n_workers);
    for (uint32_t w = 0; w < np->n_workers; w++)
      trt_text_put(&t, " %u%s", np->pu[w], np->pinned[w] == 1 ? "" : np->pinned[w] == 0 ? "(unpinned)" : "(pin failed)");
    trt_text_put(&t, "\n");
  }
  return trt_text_end(&t);
}
