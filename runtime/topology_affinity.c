/* The topology without hwloc (-DTOWERRT_WITH_HWLOC=OFF, e.g. the minimal
 * and the aarch64 cross builds): one NUMA node holding the cores of the
 * CPUs in this process's affinity mask, the first CPU of each core taken
 * (SMT siblings from sysfs, where it is readable). Threads are pinned with
 * pthread_setaffinity_np; memory is never bound (plain allocations).
 * Synthetic topologies (planning, tests) are read for the subset of hwloc's
 * syntax that describes levels and counts ("pack:2 numa:1 core:4 pu:2",
 * numbered as hwloc does: PUs in order, a core's first PU is its index);
 * XML files need hwloc and are refused with a message. */
#define _GNU_SOURCE /* sched_getaffinity, pthread_setaffinity_np, CPU_* */
#include <pthread.h>
#include <sched.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* 0 = package or cache or group (multiplies cores), 1 = NUMA node,
 * 2 = core, 3 = PU, -1 = unknown. */
static int level_kind(const char *name, size_t n) {
  static const char *const outer[] = {"pack", "package", "socket", "group", "die", "machine", "l1", "l2", "l3", "l4", "l5",
                                      "l1d", "l2d", "l3d", "l1i", "l2i", "l3i", "l1cache", "l2cache", "l3cache"};
  char low[16];
  if (n == 0 || n >= sizeof low) return -1;
  for (size_t i = 0; i < n; i++) low[i] = (char)tolower((unsigned char)name[i]);
  low[n] = '\0';
  for (size_t i = 0; i < sizeof outer / sizeof outer[0]; i++)
    if (!strcmp(low, outer[i])) return 0;
  if (!strcmp(low, "numa") || !strcmp(low, "node") || !strcmp(low, "numanode")) return 1;
  if (!strcmp(low, "core")) return 2;
  if (!strcmp(low, "pu")) return 3;
  return -1;
}

/* "type:count ..." -> nodes, cores per node, PUs per core. */
static towerrt_status parse_synthetic(const char *desc, unsigned long *nodes, unsigned long *cores, unsigned long *pus) {
  unsigned long above_numa = 1, below_numa = 1, pu = 1;
  int seen_numa = 0, seen_pu = 0, levels = 0;
  for (const char *p = desc; *p;) {
    while (*p == ' ') p++;
    if (!*p) break;
    const char *colon = strchr(p, ':');
    char *end = NULL;
    unsigned long count = colon ? strtoul(colon + 1, &end, 10) : 0;
    int kind = colon ? level_kind(p, (size_t)(colon - p)) : -1;
    if (kind < 0 || !end || end == colon + 1 || (*end && *end != ' ') || count == 0 || count > 4096 || seen_pu)
      return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT,
                      "the synthetic topology '%s' is not 'type:count ...' with known types (pack, numa, l3, core, pu, ...) "
                      "and counts 1..4096 (this build has no hwloc: only that part of its syntax)", desc);
    if (kind == 1) seen_numa = 1;
    if (kind == 3) seen_pu = 1, pu = count;
    else if (kind == 1 || !seen_numa) above_numa *= count;
    else below_numa *= count;
    if (above_numa * below_numa * pu > 65536) return trt_fail(TOWERRT_ERR_LIMIT, "synthetic topology '%s': more than 65536 PUs", desc);
    levels++;
    p = end;
  }
  if (!levels) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "the synthetic topology is empty");
  /* without a numa level the whole machine is one node */
  *nodes = seen_numa ? above_numa : 1;
  *cores = seen_numa ? below_numa : above_numa * below_numa;
  *pus = pu;
  return TOWERRT_OK;
}

static towerrt_status load_synthetic(const char *spec, trt_topology *t) {
  unsigned long nodes = 0, cores = 0, pus = 0; /* set when parse_synthetic succeeds */
  towerrt_status st = parse_synthetic(spec + 10, &nodes, &cores, &pus);
  if (st) return st;
  if (nodes > TRT_MAX_NODES) return trt_fail(TOWERRT_ERR_LIMIT, "%lu NUMA nodes (this build handles %d)", nodes, TRT_MAX_NODES);
  t->simulated = 1;
  t->n_nodes = (uint32_t)nodes;
  for (uint32_t i = 0; i < t->n_nodes; i++) {
    t->nodes[i].os_index = i;
    t->nodes[i].core_pu = calloc(cores + 1, sizeof(uint32_t));
    if (!t->nodes[i].core_pu) {
      trt_topology_free(t);
      return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for the topology");
    }
    for (unsigned long c = 0; c < cores; c++) t->nodes[i].core_pu[t->nodes[i].n_cores++] = (uint32_t)((i * cores + c) * pus);
  }
  snprintf(t->source, sizeof t->source, "%s", spec);
  return TOWERRT_OK;
}

towerrt_status trt_topology_load(const char *spec, trt_topology *t) {
  memset(t, 0, sizeof *t);
  if (!spec || !*spec) spec = getenv("TOWERRT_TOPOLOGY");
  if (spec && !strncmp(spec, "synthetic:", 10)) return load_synthetic(spec, t);
  if (spec && !strncmp(spec, "xml:", 4))
    return trt_fail(TOWERRT_ERR_UNSUPPORTED, "topology '%s': XML topologies need hwloc, and this build has none "
                    "(configured with TOWERRT_WITH_HWLOC=OFF)", spec);
  if (spec && *spec)
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "topology '%s': expected 'synthetic:...' or 'xml:PATH'", spec);
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
