/* towerrt_pool: the topology and one worker pool per NUMA node, plus the
 * node-bound memory used to place weights and item heads. */
#ifndef TOWERRT_POOL_H
#define TOWERRT_POOL_H

#include "thread_pool.h"
#include "topology.h"

struct towerrt_pool {
  trt_topology topo;
  trt_node_pool nodes[TRT_MAX_NODES];
  uint64_t active; /* bit i: nodes[i] has a started pool */
};

/* Memory for `bytes` bound to node (REPLICATE) or interleaved over the
 * pool's nodes (node = -1); falls back to plain memory on simulated
 * topologies. *bound says which happened (for the placement report). */
void *trt_pool_alloc(const towerrt_pool *p, int node, size_t bytes, int *bound);
void trt_pool_release(const towerrt_pool *p, void *mem, size_t bytes, int bound);

#endif
