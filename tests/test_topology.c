/* Worker pools and placement on hwloc synthetic and XML topologies with 2
 * and 4 NUMA nodes (without hwloc: the one-node pool of this machine), and determinism: a request's scores are bitwise equal
 * whatever the thread count, node and placement.
 * usage: test_topology FIXTURE_DIR */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/item_store.h"
#include "runtime/model.h"
#include "runtime/pool.h"
#include "tools/text_input.h"
#include "test_util.h"
#include "towerrt.h"

static towerrt_pool *make_pool(const char *topology, uint32_t per_node, uint64_t mask) {
  towerrt_options o;
  towerrt_options_init(&o);
  o.topology = topology;
  o.threads_per_node = per_node;
  o.node_mask = mask;
  towerrt_pool *p = NULL;
  CHECK(towerrt_pool_create(&o, &p) == TOWERRT_OK, "pool on '%s': %s", topology ? topology : "this machine", towerrt_last_error());
  return p;
}

#ifdef TOWERRT_HAVE_HWLOC
/* Every worker sits on a core of its own node, no core twice. */
static void check_pool_plan(const towerrt_pool *p, uint32_t want_nodes, uint32_t want_workers, uint64_t mask) {
  CHECK(p->topo.n_nodes == want_nodes, "%u nodes, want %u", p->topo.n_nodes, want_nodes);
  hwloc_bitmap_t seen = hwloc_bitmap_alloc();
  for (uint32_t i = 0; i < p->topo.n_nodes; i++) {
    int want_active = !mask || (mask & (UINT64_C(1) << i));
    CHECK(((p->active >> i) & 1) == (uint64_t)want_active, "node %u active %d, want %d", i, (int)((p->active >> i) & 1), want_active);
    if (!want_active) continue;
    const trt_node_pool *np = &p->nodes[i];
    CHECK(np->n_workers == want_workers, "node %u: %u workers, want %u", i, np->n_workers, want_workers);
    for (uint32_t w = 0; w < np->n_workers; w++) {
      CHECK(hwloc_bitmap_isset(p->topo.nodes[i].obj->cpuset, np->pu[w]), "node %u worker %u on PU %u outside the node", i, w, np->pu[w]);
      CHECK(w >= p->topo.nodes[i].n_cores || !hwloc_bitmap_isset(seen, np->pu[w]), "PU %u pinned twice", np->pu[w]);
      CHECK(np->pinned[w] == 0, "simulated topology: worker %u must not be bound", w);
      hwloc_bitmap_set(seen, np->pu[w]);
    }
  }
  hwloc_bitmap_free(seen);
}

static void test_synthetic_and_xml(void) {
  towerrt_pool *p = make_pool("synthetic:pack:2 numa:1 core:4 pu:2", 0, 0);
  if (p) check_pool_plan(p, 2, 4, 0);
  towerrt_pool_free(p);
  p = make_pool("synthetic:pack:2 numa:2 core:3 pu:1", 2, 0);
  if (p) check_pool_plan(p, 4, 2, 0);
  /* The same machine as XML gives the same plan. */
  char xml[] = "/tmp/towerrt_topo_XXXXXX";
  int fd = mkstemp(xml);
  if (fd >= 0) close(fd);
  CHECK(p && hwloc_topology_export_xml(p->topo.topo, xml, 0) == 0, "export XML");
  towerrt_pool_free(p);
  char spec[64];
  snprintf(spec, sizeof spec, "xml:%s", xml);
  p = make_pool(spec, 2, 0x5);
  if (p) check_pool_plan(p, 4, 2, 0x5);
  char text[4096];
  towerrt_pool_describe(p, text, sizeof text);
  CHECK(strstr(text, "4 NUMA node(s)") && strstr(text, "no pool"), "describe: %s", text);
  towerrt_pool_free(p);
  remove(xml);
  towerrt_options o;
  towerrt_options_init(&o);
  o.topology = "synthetic:this is not a topology";
  CHECK(towerrt_pool_create(&o, &p) == TOWERRT_ERR_INVALID_ARGUMENT, "bad synthetic string: %s", towerrt_last_error());
  o.topology = "synthetic:pack:2 numa:1 core:2 pu:1";
  o.node_mask = 0x10;
  CHECK(towerrt_pool_create(&o, &p) == TOWERRT_ERR_INVALID_ARGUMENT, "node_mask beyond the nodes: %s", towerrt_last_error());
}
#else
/* Without hwloc (runtime/topology_affinity.c): this machine as one node of
 * the cores in the affinity mask, workers pinned; synthetic topologies in
 * hwloc's level:count syntax, numbered as hwloc numbers them; XML refused
 * with a message that says why. */
static void test_affinity_topology(void) {
  towerrt_pool *p = make_pool(NULL, 0, 0);
  if (p) {
    CHECK(p->topo.n_nodes == 1 && p->active == 1, "%u nodes (active 0x%llx), want one", p->topo.n_nodes, (unsigned long long)p->active);
    CHECK(p->topo.nodes[0].n_cores >= 1 && p->nodes[0].n_workers == p->topo.nodes[0].n_cores, "%u cores, %u workers",
          p->topo.nodes[0].n_cores, p->nodes[0].n_workers);
    for (uint32_t w = 0; w < p->nodes[0].n_workers; w++) CHECK(p->nodes[0].pinned[w] != 0, "worker %u was not pinned", w);
    char text[4096];
    towerrt_pool_describe(p, text, sizeof text);
    CHECK(strstr(text, "1 NUMA node(s)") && strstr(text, "without hwloc"), "describe: %s", text);
    towerrt_pool_free(p);
  }
  /* 2 packages x 1 node x 4 cores x 2 PUs: cores' first PUs 0, 2, .., 14 */
  p = make_pool("synthetic:pack:2 numa:1 core:4 pu:2", 0, 0);
  if (p) {
    CHECK(p->topo.n_nodes == 2 && p->topo.simulated, "%u nodes, want 2 (simulated)", p->topo.n_nodes);
    for (uint32_t i = 0; i < p->topo.n_nodes; i++)
      for (uint32_t w = 0; w < p->nodes[i].n_workers; w++)
        CHECK(p->nodes[i].n_workers == 4 && p->nodes[i].pu[w] == (i * 4 + w) * 2 && p->nodes[i].pinned[w] == 0,
              "node %u worker %u: PU %u (pinned %d) of %u workers", i, w, p->nodes[i].pu[w], p->nodes[i].pinned[w], p->nodes[i].n_workers);
    towerrt_pool_free(p);
  }
  p = make_pool("synthetic:pack:1 core:3 pu:1", 0, 0);
  if (p) CHECK(p->topo.n_nodes == 1 && p->topo.nodes[0].n_cores == 3, "no numa level: one node of 3 cores");
  towerrt_pool_free(p);
  towerrt_options o;
  towerrt_options_init(&o);
  o.topology = "synthetic:pack:2 numa:1 cores:4";
  CHECK(towerrt_pool_create(&o, &p) == TOWERRT_ERR_INVALID_ARGUMENT, "bad synthetic string: %s", towerrt_last_error());
  o.topology = "synthetic:pack:2 core:0";
  CHECK(towerrt_pool_create(&o, &p) == TOWERRT_ERR_INVALID_ARGUMENT, "zero count: %s", towerrt_last_error());
  o.topology = "xml:/tmp/topology.xml";
  CHECK(towerrt_pool_create(&o, &p) == TOWERRT_ERR_UNSUPPORTED && strstr(towerrt_last_error(), "hwloc"), "XML without hwloc: %s",
        towerrt_last_error());
}
#endif
/* Determinism runs on a simulated machine of 2 nodes of 3 cores. */
#define DETERMINISM_TOPOLOGY "synthetic:pack:2 numa:1 core:3 pu:1"

typedef struct fixture {
  towerrt_model *m;
  trt_request q; /* first request by id */
  trt_request qf; /* first request by features */
  char store[64];
} fixture;

static void load_fixture(const char *dir, fixture *fx) {
  char path[512];
  snprintf(path, sizeof path, "%s/model.twr", dir);
  CHECK(towerrt_model_load(path, NULL, &fx->m) == TOWERRT_OK, "%s", towerrt_last_error());
  strcpy(fx->store, "/tmp/towerrt_topo_store_XXXXXX");
  int fd = mkstemp(fx->store);
  if (fd >= 0) close(fd);
  CHECK(test_build_store(fx->m, dir, fx->store) == TOWERRT_OK, "build store: %s", towerrt_last_error());
  CHECK(test_first_request(fx->m, dir, "requests_ids.txt", &fx->q), "read %s/requests_ids.txt", dir);
  CHECK(test_first_request(fx->m, dir, "requests_features.txt", &fx->qf), "read %s/requests_features.txt", dir);
}

/* k candidates: the request's own, repeated and shuffled to reach k. */
static void make_candidates(uint64_t *seed, const fixture *fx, size_t k, uint64_t *ids, trt_rows *feats) {
  size_t n = fx->q.items.n_keys, nf = fx->qf.items.n_rows;
  size_t slots = towerrt_model_id_slots(fx->m, TOWERRT_ITEM), width = towerrt_model_dense_width(fx->m, TOWERRT_ITEM);
  for (size_t c = 0; c < k; c++) {
    ids[c] = fx->q.items.keys[test_rand_u64(seed) % n];
    size_t r = test_rand_u64(seed) % nf;
    memcpy(feats->ids + c * slots, fx->qf.items.ids + r * slots, slots * sizeof(int64_t));
    if (width) memcpy(feats->dense + c * width, fx->qf.items.dense + r * width, width * sizeof(float));
  }
}

static void score_both(towerrt_session *s, const fixture *fx, const uint64_t *ids, const trt_rows *feats, size_t k, float *by_id,
                       float *by_feat) {
  towerrt_features user = {fx->q.user.ids, fx->q.user.n_ids, fx->q.user.dense, fx->q.user.n_dense};
  towerrt_features items = {feats->ids, k * towerrt_model_id_slots(fx->m, TOWERRT_ITEM), feats->dense,
                            k * towerrt_model_dense_width(fx->m, TOWERRT_ITEM)};
  CHECK(towerrt_score(s, &user, ids, k, by_id) == TOWERRT_OK, "score: %s", towerrt_session_error(s));
  CHECK(towerrt_score_features(s, &user, &items, k, by_feat) == TOWERRT_OK, "score_features: %s", towerrt_session_error(s));
}

static void test_determinism(const char *dir, uint64_t *seed) {
  fixture fx = {0};
  load_fixture(dir, &fx);
  if (!fx.m || !fx.q.items.n_keys || !fx.qf.items.n_rows) return;
  towerrt_pool *pool = make_pool(DETERMINISM_TOPOLOGY, 0, 0);
  uint32_t n_nodes = pool ? pool->topo.n_nodes : 0, max_threads = pool ? pool->nodes[0].n_workers + 1 : 1;
  if (max_threads > 4) max_threads = 4;
  static const uint32_t placements[3] = {TOWERRT_PLACE_SHARED, TOWERRT_PLACE_REPLICATE, TOWERRT_PLACE_INTERLEAVE};
  size_t slots = towerrt_model_id_slots(fx.m, TOWERRT_ITEM), width = towerrt_model_dense_width(fx.m, TOWERRT_ITEM);
  const size_t ks[] = {1, 31, 32, 33, 255, 256, 257, 700};
  for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
    size_t k = ks[ki];
    uint64_t *ids = malloc(k * sizeof *ids);
    trt_rows feats = {.ids = malloc(k * (slots + 1) * sizeof(int64_t)), .dense = malloc(k * (width + 1) * sizeof(float))};
    float *ref_id = malloc(k * sizeof(float)), *ref_f = malloc(k * sizeof(float));
    float *got_id = malloc(k * sizeof(float)), *got_f = malloc(k * sizeof(float));
    make_candidates(seed, &fx, k, ids, &feats);
    towerrt_session *s = NULL;
    towerrt_items *plain = NULL;
    CHECK(towerrt_items_load(fx.store, NULL, &plain) == TOWERRT_OK, "%s", towerrt_last_error());
    CHECK(towerrt_session_create(fx.m, plain, NULL, &s) == TOWERRT_OK, "%s", towerrt_last_error());
    score_both(s, &fx, ids, &feats, k, ref_id, ref_f);
    towerrt_session_free(s);
    for (int pl = 0; pl < 3 && pool; pl++) {
      towerrt_options o;
      towerrt_options_init(&o);
      o.pool = pool;
      o.placement = placements[pl];
      towerrt_model *m = NULL;
      towerrt_items *items = NULL;
      char path[512];
      snprintf(path, sizeof path, "%s/model.twr", dir);
      CHECK(towerrt_model_load(path, &o, &m) == TOWERRT_OK, "%s", towerrt_last_error());
      CHECK(towerrt_items_load(fx.store, &o, &items) == TOWERRT_OK, "%s", towerrt_last_error());
      for (int node = 0; node < (int)n_nodes && m && items; node++)
        for (uint32_t threads = 1; threads <= max_threads; threads++) {
          o.threads = threads;
          o.numa_node = node;
          CHECK(towerrt_session_create(m, items, &o, &s) == TOWERRT_OK, "%s", towerrt_last_error());
          if (!s) continue;
          score_both(s, &fx, ids, &feats, k, got_id, got_f);
          CHECK(memcmp(got_id, ref_id, k * sizeof(float)) == 0, "by id: k=%zu placement %d node %d threads %u differs", k, pl, node, threads);
          CHECK(memcmp(got_f, ref_f, k * sizeof(float)) == 0, "by features: k=%zu placement %d node %d threads %u differs", k, pl, node,
                threads);
          towerrt_session_free(s);
        }
      if (n_nodes >= 2) {
        if (m && pl == 1) CHECK(m->placed[0] && m->placed[1] && m->placed[0] != m->placed[1], "replicate: one copy per node");
        if (m && pl == 2) CHECK(m->placed[0] && m->placed[0] == m->placed[1], "interleave: one copy for all nodes");
        if (items && pl == 1) CHECK(items->node_heads[0] != items->node_heads[1], "replicate: item heads per node");
      }
      towerrt_items_free(items);
      towerrt_model_free(m);
    }
    towerrt_items_free(plain);
    free(ids), free(feats.ids), free(feats.dense), free(ref_id), free(ref_f), free(got_id), free(got_f);
  }
  /* Options the pool cannot honour. */
  towerrt_options o;
  towerrt_options_init(&o);
  towerrt_session *s = NULL;
  o.threads = 2;
  CHECK(towerrt_session_create(fx.m, NULL, &o, &s) == TOWERRT_ERR_INVALID_ARGUMENT, "threads > 1 without a pool");
  o.pool = pool;
  o.threads = pool ? pool->nodes[0].n_workers + 2 : 5;
  CHECK(towerrt_session_create(fx.m, NULL, &o, &s) == TOWERRT_ERR_INVALID_ARGUMENT, "threads above workers + 1");
  o.threads = 2;
  o.numa_node = 7;
  CHECK(towerrt_session_create(fx.m, NULL, &o, &s) == TOWERRT_ERR_INVALID_ARGUMENT, "numa_node beyond the topology");
  towerrt_pool_free(pool);
  trt_request_free(&fx.q);
  trt_request_free(&fx.qf);
  towerrt_model_free(fx.m);
  remove(fx.store);
}

int main(int argc, char **argv) {
  uint64_t seed = test_seed("test_topology");
#ifdef TOWERRT_HAVE_HWLOC
  test_synthetic_and_xml();
#else
  test_affinity_topology();
#endif
  for (int i = 1; i < argc; i++) test_determinism(argv[i], &seed);
  return test_finish("test_topology");
}
