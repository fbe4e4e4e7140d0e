#include "topology.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

static towerrt_status configure(hwloc_topology_t topo, const char *spec, int *simulated) {
  *simulated = 0;
  if (!spec || !*spec) return TOWERRT_OK;
  if (strncmp(spec, "synthetic:", 10) == 0) {
    *simulated = 1;
    if (hwloc_topology_set_synthetic(topo, spec + 10) != 0)
      return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "hwloc rejects the synthetic topology '%s'", spec + 10);
    return TOWERRT_OK;
  }
  if (strncmp(spec, "xml:", 4) == 0) {
    *simulated = 1;
    if (hwloc_topology_set_xml(topo, spec + 4) != 0)
      return trt_fail(TOWERRT_ERR_IO, "cannot read the topology XML '%s'", spec + 4);
    return TOWERRT_OK;
  }
  return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "topology '%s': expected 'synthetic:...' or 'xml:PATH'", spec);
}

/* Each core goes to the first NUMA node whose cpuset holds it, so a core
 * is never in two pools; memory-only nodes get no cores. */
static towerrt_status assign_cores(trt_topology *t) {
  int n_cores = hwloc_get_nbobjs_by_type(t->topo, HWLOC_OBJ_CORE);
  hwloc_obj_type_t unit = n_cores > 0 ? HWLOC_OBJ_CORE : HWLOC_OBJ_PU;
  if (n_cores <= 0) n_cores = hwloc_get_nbobjs_by_type(t->topo, HWLOC_OBJ_PU);
  for (uint32_t i = 0; i < t->n_nodes; i++) {
    t->nodes[i].core_pu = calloc((size_t)n_cores + 1, sizeof(uint32_t));
    if (!t->nodes[i].core_pu) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for the topology");
  }
  for (int c = 0; c < n_cores; c++) {
    hwloc_obj_t core = hwloc_get_obj_by_type(t->topo, unit, (unsigned)c);
    if (!core || !core->cpuset || hwloc_bitmap_iszero(core->cpuset)) continue;
    for (uint32_t i = 0; i < t->n_nodes; i++) {
      if (!t->nodes[i].obj->cpuset || !hwloc_bitmap_isincluded(core->cpuset, t->nodes[i].obj->cpuset)) continue;
      t->nodes[i].core_pu[t->nodes[i].n_cores++] = (uint32_t)hwloc_bitmap_first(core->cpuset);
      break;
    }
  }
  return TOWERRT_OK;
}

towerrt_status trt_topology_load(const char *spec, trt_topology *t) {
  memset(t, 0, sizeof *t);
  if (!spec || !*spec) spec = getenv("TOWERRT_TOPOLOGY");
  if (hwloc_topology_init(&t->topo) != 0) return trt_fail(TOWERRT_ERR_NO_MEMORY, "hwloc_topology_init failed");
  towerrt_status st = configure(t->topo, spec, &t->simulated);
  if (!st && hwloc_topology_load(t->topo) != 0) st = trt_fail(TOWERRT_ERR_IO, "hwloc cannot load the topology");
  if (st) {
    hwloc_topology_destroy(t->topo);
    t->topo = NULL;
    return st;
  }
  snprintf(t->source, sizeof t->source, "%s", spec && *spec ? spec : "this machine (hwloc)");
  int n = hwloc_get_nbobjs_by_type(t->topo, HWLOC_OBJ_NUMANODE);
  if (n <= 0) n = 1;
  if (n > TRT_MAX_NODES) {
    trt_topology_free(t);
    return trt_fail(TOWERRT_ERR_LIMIT, "%d NUMA nodes (this build handles %d)", n, TRT_MAX_NODES);
  }
  t->n_nodes = (uint32_t)n;
  for (uint32_t i = 0; i < t->n_nodes; i++) {
    hwloc_obj_t obj = hwloc_get_obj_by_type(t->topo, HWLOC_OBJ_NUMANODE, i);
    t->nodes[i].obj = obj ? obj : hwloc_get_root_obj(t->topo);
    t->nodes[i].os_index = obj ? obj->os_index : 0;
  }
  st = assign_cores(t);
  if (st) trt_topology_free(t);
  return st;
}

void trt_topology_free(trt_topology *t) {
  for (uint32_t i = 0; i < t->n_nodes; i++) free(t->nodes[i].core_pu);
  if (t->topo) hwloc_topology_destroy(t->topo);
  memset(t, 0, sizeof *t);
}

uint32_t trt_topology_current_node(const trt_topology *t) {
  if (t->simulated) return 0;
  hwloc_bitmap_t where = hwloc_bitmap_alloc();
  uint32_t found = 0;
  if (where && hwloc_get_last_cpu_location(t->topo, where, HWLOC_CPUBIND_THREAD) == 0)
    for (uint32_t i = 0; i < t->n_nodes; i++)
      if (t->nodes[i].obj->cpuset && hwloc_bitmap_intersects(where, t->nodes[i].obj->cpuset)) {
        found = i;
        break;
      }
  hwloc_bitmap_free(where);
  return found;
}

int trt_topology_pin_thread(const trt_topology *t, pthread_t th, uint32_t pu) {
  hwloc_bitmap_t set = hwloc_bitmap_alloc();
  int ok = set && hwloc_bitmap_only(set, pu) == 0 && hwloc_set_thread_cpubind(t->topo, th, set, 0) == 0;
  hwloc_bitmap_free(set);
  return ok ? 0 : -1;
}

void *trt_topology_alloc_bound(const trt_topology *t, uint64_t node_mask, int interleave, size_t bytes) {
  hwloc_bitmap_t set = hwloc_bitmap_alloc();
  if (!set) return NULL;
  for (uint32_t i = 0; i < t->n_nodes; i++)
    if (node_mask & (UINT64_C(1) << i)) hwloc_bitmap_set(set, t->nodes[i].os_index);
  hwloc_membind_policy_t policy = interleave ? HWLOC_MEMBIND_INTERLEAVE : HWLOC_MEMBIND_BIND;
  void *mem = hwloc_alloc_membind(t->topo, bytes, set, policy, HWLOC_MEMBIND_BYNODESET);
  hwloc_bitmap_free(set);
  return mem;
}

void trt_topology_free_bound(const trt_topology *t, void *mem, size_t bytes) { hwloc_free(t->topo, mem, bytes); }
