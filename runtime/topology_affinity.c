/* The topology without hwloc (-DTOWERRT_WITH_HWLOC=OFF, e.g. the minimal
 * and the aarch64 cross builds): one NUMA node holding the cores of the
 * CPUs in this process's affinity mask, the first CPU of each core taken
 * (SMT siblings from sysfs, where it is readable). Threads are pinned with
 * pthread_setaffinity_np; memory is never bound (plain allocations). A
 * synthetic or XML topology needs hwloc and is refused with a message. */
#define _GNU_SOURCE /* sched_getaffinity, pthread_setaffinity_np, CPU_* */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"
#include "topology.h"

/* The first CPU listed as cpu's SMT sibling ("2,66" or "2-3"): cpu itself
 * when sysfs does not say. */
static int first_sibling(int cpu) {
  char path[96];
  snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/thread_siblings_list", cpu);
  FILE *f = fopen(path, "r");
  if (!f) return cpu;
  int first = cpu;
  if (fscanf(f, "%d", &first) != 1 || first < 0) first = cpu;
  fclose(f);
  return first;
}

towerrt_status trt_topology_load(const char *spec, trt_topology *t) {
  memset(t, 0, sizeof *t);
  if (!spec || !*spec) spec = getenv("TOWERRT_TOPOLOGY");
  if (spec && *spec)
    return trt_fail(TOWERRT_ERR_UNSUPPORTED,
                    "topology '%s': synthetic and XML topologies need hwloc, and this build has none "
                    "(configured with TOWERRT_WITH_HWLOC=OFF)", spec);
  cpu_set_t mask;
  CPU_ZERO(&mask);
  if (sched_getaffinity(0, sizeof mask, &mask) != 0) CPU_SET(0, &mask);
  t->n_nodes = 1;
  t->nodes[0].core_pu = calloc((size_t)CPU_COUNT(&mask) + 1, sizeof(uint32_t));
  if (!t->nodes[0].core_pu) {
    t->n_nodes = 0;
    return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for the topology");
  }
  for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
    if (!CPU_ISSET(cpu, &mask)) continue;
    int sib = first_sibling(cpu);
    if (sib != cpu && sib < CPU_SETSIZE && CPU_ISSET(sib, &mask)) continue; /* its core is already in */
    t->nodes[0].core_pu[t->nodes[0].n_cores++] = (uint32_t)cpu;
  }
  snprintf(t->source, sizeof t->source, "this machine (affinity mask; built without hwloc)");
  return TOWERRT_OK;
}

void trt_topology_free(trt_topology *t) {
  for (uint32_t i = 0; i < t->n_nodes; i++) free(t->nodes[i].core_pu);
  memset(t, 0, sizeof *t);
}

uint32_t trt_topology_current_node(const trt_topology *t) {
  (void)t;
  return 0;
}

int trt_topology_pin_thread(const trt_topology *t, pthread_t th, uint32_t pu) {
  (void)t;
  if (pu >= CPU_SETSIZE) return -1;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET((int)pu, &set);
  return pthread_setaffinity_np(th, sizeof set, &set) == 0 ? 0 : -1;
}

void *trt_topology_alloc_bound(const trt_topology *t, uint64_t node_mask, int interleave, size_t bytes) {
  (void)t, (void)node_mask, (void)interleave, (void)bytes;
  return NULL;
}

void trt_topology_free_bound(const trt_topology *t, void *mem, size_t bytes) {
  (void)t, (void)bytes;
  free(mem); /* never reached: nothing is bound */
}
