/* Machine topology from hwloc: NUMA nodes and the cores of each, from this
 * machine or from a synthetic description / XML file (tests, planning). */
#ifndef TOWERRT_TOPOLOGY_H
#define TOWERRT_TOPOLOGY_H

#include <hwloc.h>
#include <stdint.h>

#include "towerrt.h"

#define TRT_MAX_NODES 64

typedef struct trt_numa_node {
  uint32_t os_index;
  uint32_t n_cores;
  uint32_t *core_pu; /* OS index of the first PU of each core of this node */
  hwloc_obj_t obj;
} trt_numa_node;

typedef struct trt_topology {
  hwloc_topology_t topo;
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

#endif
