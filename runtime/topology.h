/* Machine topology from hwloc: NUMA nodes and the cores of each, from this
 * machine or from a synthetic description / XML file (tests, planning).
 * Built without hwloc (-DTOWERRT_WITH_HWLOC=OFF: runtime/topology_affinity.c),
 * the topology is one node holding the CPUs of the process's affinity mask,
 * and synthetic / XML descriptions are refused. */
#ifndef TOWERRT_TOPOLOGY_H
#define TOWERRT_TOPOLOGY_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#ifdef TOWERRT_HAVE_HWLOC
#include <hwloc.h>
typedef hwloc_topology_t trt_topo_handle;
typedef hwloc_obj_t trt_topo_obj;
#else
typedef void *trt_topo_handle; /* always NULL */
typedef void *trt_topo_obj;    /* always NULL */
#endif

#include "towerrt.h"

#define TRT_MAX_NODES 64

typedef struct trt_numa_node {
  uint32_t os_index;
  uint32_t n_cores;
  uint32_t *core_pu; /* OS index of the first PU of each core of this node */
  trt_topo_obj obj;
} trt_numa_node;

typedef struct trt_topology {
  trt_topo_handle topo;
  int simulated; /* synthetic or XML: plan only, never bind threads or memory */
  uint32_t n_nodes;
  trt_numa_node nodes[TRT_MAX_NODES];
  char source[160];
} trt_topology;

/* spec: NULL or "" = this machine; "synthetic:<hwloc synthetic string>",
 * e.g. "synthetic:pack:2 numa:1 core:4 pu:2"; "xml:<path>". The
 * TOWERRT_TOPOLOGY environment variable overrides a NULL spec. */
towerrt_status trt_topology_load(const char *spec, trt_topology *out);
void trt_topology_free(trt_topology *t);
/* The node (index into nodes[]) the calling thread last ran on; 0 if unknown. */
uint32_t trt_topology_current_node(const trt_topology *t);
/* Binds thread th to PU pu (OS index); 0 on success, -1 if it failed. */
int trt_topology_pin_thread(const trt_topology *t, pthread_t th, uint32_t pu);
/* bytes bound to the nodes of node_mask (bit i = nodes[i]), interleaved
 * over them if interleave; NULL where binding is not possible (the caller
 * then uses plain memory). Released by trt_topology_free_bound. */
void *trt_topology_alloc_bound(const trt_topology *t, uint64_t node_mask, int interleave, size_t bytes);
void trt_topology_free_bound(const trt_topology *t, void *mem, size_t bytes);

#endif
