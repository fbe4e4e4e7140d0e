/* The two-tower family (DSSM, DAT; docs/family.md) end to end against the
 * PyTorch reference (tools/reference/dssm_ref.py, dat_ref.py; fixtures made
 * by tools/make_golden_family.py):
 *   - scores by features, by item-store id and the logits (score + bias)
 *     equal the reference within 1e-5 * max(1, |expected|), with the kernel
 *     set chosen here or forced by TOWERRT_ISA (tests/family.cmake);
 *   - two threads, on a copy of the model placed on the pool's nodes, give
 *     the same scores bit for bit;
 *   - bf16 and int8 copies of the store score close to the reference;
 *   - family-specific errors: fe_layer_mask, a store of another model, and
 *     corrupt SIMILARITY nodes (kind, gamma, dim) are clear errors.
 * usage: test_family FIXTURE_DIR... */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/container.h"
#include "tools/text_input.h"
#include "test_util.h"
#include "towerrt.h"

#define REL_TOL 1e-5
#define QUANT_TOL 5e-2

static char *path_join(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);
  snprintf(p, n, "%s/%s", dir, name);
  return p;
}

static char *tmp_path(void) {
  char *p = malloc(64);
  strcpy(p, "/tmp/towerrt_family_XXXXXX");
  int fd = mkstemp(p);
  if (fd >= 0) close(fd);
  return p;
}

static towerrt_status score_request(towerrt_session *s, const trt_request *q, float *scores) {
  towerrt_features user = {q->user.ids, q->user.n_ids, q->user.dense, q->user.n_dense};
  if (q->by_id) return towerrt_score(s, &user, q->items.keys, q->items.n_keys, scores);
  towerrt_features items = {q->items.ids, q->items.n_ids, q->items.dense, q->items.n_dense};
  return towerrt_score_features(s, &user, &items, q->items.n_rows, scores);
}

/* Scores every request of `requests` with s and compares with `expected`
 * (tolerance tol * max(1, |expected|)); `other`, if not NULL, must give the
 * same scores bit for bit. */
static void check_file(const char *dir, const towerrt_model *m, towerrt_session *s, towerrt_session *other, const char *requests,
                       const char *expected, double tol, const char *tag) {
  char *rp = path_join(dir, requests), *ep = path_join(dir, expected);
  FILE *rf = fopen(rp, "r"), *ef = fopen(ep, "r");
  CHECK(rf && ef, "cannot open %s or %s", rp, ep);
  trt_text_reader r;
  trt_request q = {0};
  int done = 0;
  size_t n_req = 0, n_scores = 0;
  double worst = 0;
  if (rf && ef && trt_text_open(&r, rf, rp, "towerrt-requests", m) == TOWERRT_OK) {
    for (;;) {
      towerrt_status st = trt_text_next_request(&r, &q, &done);
      CHECK(st == TOWERRT_OK, "%s: %s", rp, trt_text_error());
      if (st || done) break;
      size_t k = q.by_id ? q.items.n_keys : q.items.n_rows;
      float *scores = malloc(k * sizeof *scores), *again = malloc(k * sizeof *again);
      st = score_request(s, &q, scores);
      CHECK(st == TOWERRT_OK, "%s request %zu: %s", rp, n_req, towerrt_session_error(s));
      if (other) {
        CHECK(score_request(other, &q, again) == TOWERRT_OK, "%s", towerrt_session_error(other));
        CHECK(memcmp(scores, again, k * sizeof *scores) == 0, "%s request %zu: two threads give other scores", rp, n_req);
      }
      for (size_t i = 0; i < k && !st; i++) {
        double want;
        if (fscanf(ef, "%lf", &want) != 1) {
          CHECK(0, "%s: fewer expected scores than candidates (request %zu)", ep, n_req);
          break;
        }
        double err = fabs(scores[i] - want) / fmax(1.0, fabs(want));
        if (err > worst) worst = err;
        CHECK(err <= tol, "%s %s request %zu cand %zu: towerrt %.9g reference %.9g", rp, tag, n_req, i, (double)scores[i], want);
        n_scores++;
      }
      free(scores);
      free(again);
      n_req++;
    }
    trt_text_close(&r);
  }
  double extra;
  CHECK(!ef || fscanf(ef, "%lf", &extra) != 1, "%s has more scores than the requests produced", ep);
  CHECK(n_req > 0, "%s: no requests", rp);
  printf("  %-22s %-14s %zu requests, %zu scores, max err %.3g\n", requests, tag, n_req, n_scores, worst);
  trt_request_free(&q);
  if (rf) fclose(rf);
  if (ef) fclose(ef);
  free(rp);
  free(ep);
}

/* bf16 and int8 copies of the store: the family's norms read quantized rows. */
static void check_quantized(const char *dir, const towerrt_model *m, const towerrt_items *f32) {
  static const towerrt_precision precs[2] = {TOWERRT_PRECISION_BF16, TOWERRT_PRECISION_INT8};
  static const char *const names[2] = {"bf16 store", "int8 store"};
  for (int i = 0; i < 2; i++) {
    char *qp = tmp_path();
    towerrt_items *q = NULL;
    towerrt_session *s = NULL;
    CHECK(towerrt_items_quantize(f32, precs[i], qp) == TOWERRT_OK, "quantize: %s", towerrt_last_error());
    CHECK(towerrt_items_load(qp, NULL, &q) == TOWERRT_OK, "%s", towerrt_last_error());
    if (q && towerrt_session_create(m, q, NULL, &s) == TOWERRT_OK)
      check_file(dir, m, s, NULL, "requests_ids.txt", "expected_ids.txt", QUANT_TOL, names[i]);
    else
      CHECK(0, "session on a %s: %s", names[i], towerrt_last_error());
    towerrt_session_free(s);
    towerrt_items_free(q);
    remove(qp);
    free(qp);
  }
}

/* Options and stores that make no sense for a family model are errors. */
static void check_errors(const towerrt_model *m, const towerrt_items *items, const towerrt_model *prev, const char *prev_store) {
  towerrt_options o;
  towerrt_options_init(&o);
  o.fe_layer_mask = 1u << 3 | 1u;
  towerrt_session *s = NULL;
  CHECK(towerrt_session_create(m, items, &o, &s) == TOWERRT_ERR_INVALID_ARGUMENT, "fe_layer_mask on a family model: %s",
        towerrt_last_error());
  towerrt_session_free(s);
  s = NULL;
  char buf[8192];
  towerrt_model_describe(m, buf, sizeof buf);
  CHECK(strstr(buf, "no Light-SE") && (strstr(buf, "cosine:") || strstr(buf, "dot:")), "describe: %s", buf);
  if (prev && prev_store) { /* the previous fixture's store */
    towerrt_items *other = NULL;
    CHECK(towerrt_items_load(prev_store, NULL, &other) == TOWERRT_OK, "%s", towerrt_last_error());
    towerrt_status st = towerrt_session_create(m, other, NULL, &s);
    CHECK(st == TOWERRT_ERR_MISMATCH, "a store of another model: %s (%s)", towerrt_status_name(st), towerrt_last_error());
    towerrt_session_free(s);
    towerrt_items_free(other);
  }
}

/* Offset of the first GRAPH node with op `op` in a .twr image, or 0. */
static size_t find_node(const unsigned char *file, size_t size, uint32_t op) {
  uint32_t n = trt_rd32(file + 32);
  for (uint32_t i = 0; i < n && 64 + (i + 1) * 32 <= size; i++) {
    const unsigned char *e = file + 64 + i * 32;
    if (trt_rd32(e) != 4) continue;
    uint64_t off = trt_rd64(e + 8), sz = trt_rd64(e + 16);
    if (off + sz > size || sz < 8) return 0;
    uint32_t count = trt_rd32(file + off);
    for (uint32_t j = 0; j < count && 8 + (uint64_t)(j + 1) * 64 <= sz; j++)
      if (trt_rd32(file + off + 8 + (size_t)j * 64) == op) return (size_t)(off + 8 + (size_t)j * 64);
  }
  return 0;
}

static void put32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* Corrupt SIMILARITY nodes: each edit must be a clear error, never a model. */
static void check_corrupt(const char *model_path) {
  size_t size;
  unsigned char *orig = test_read_file(model_path, &size);
  CHECK(orig != NULL, "read %s", model_path);
  if (!orig) return;
  size_t node = find_node(orig, size, 9);
  CHECK(node != 0, "%s: no SIMILARITY node", model_path);
  struct {
    size_t at;
    uint32_t value;
    towerrt_status want;
    const char *what;
  } edits[] = {
      {60, 7, TOWERRT_ERR_UNSUPPORTED, "similarity kind 7"},
      {52, 0x7FC00000u, TOWERRT_ERR_NONFINITE, "gamma NaN"},
      {56, 3, TOWERRT_ERR_SHAPE, "dim 3"},
      {16, 0, TOWERRT_ERR_FORMAT, "user input = value 0 (EMBED)"},
      {4, 0, TOWERRT_ERR_FORMAT, "side user"},
  };
  char *tp = tmp_path();
  for (size_t e = 0; node && e < sizeof edits / sizeof edits[0]; e++) {
    unsigned char *f = malloc(size);
    memcpy(f, orig, size);
    uint32_t v = edits[e].value;
    if (edits[e].at == 56 && trt_rd32(f + node + 56) == 3) v = 2; /* a dim that is wrong for this model */
    put32(f + node + edits[e].at, v);
    test_fix_crcs(f, size);
    test_write_file(tp, f, size);
    towerrt_model *m = NULL;
    towerrt_status st = towerrt_model_load(tp, NULL, &m);
    CHECK(st == edits[e].want && !m, "corrupt SIMILARITY (%s): got %s, want %s (%s)", edits[e].what, towerrt_status_name(st),
          towerrt_status_name(edits[e].want), towerrt_last_error());
    towerrt_model_free(m);
    free(f);
  }
  remove(tp);
  free(tp);
  free(orig);
}

static void check_fixture(const char *dir, const towerrt_model **prev, char **prev_store, towerrt_pool *pool) {
  printf("fixture %s\n", dir);
  char *mp = path_join(dir, "model.twr");
  char *store = tmp_path();
  towerrt_model *m = NULL;
  towerrt_items *items = NULL;
  towerrt_session *s = NULL, *s2 = NULL, *sl = NULL;
  towerrt_status st = towerrt_model_load(mp, NULL, &m);
  CHECK(st == TOWERRT_OK, "load %s: %s", mp, towerrt_last_error());
  if (!st) st = test_build_store(m, dir, store);
  CHECK(st == TOWERRT_OK, "build store: %s", towerrt_last_error());
  if (!st) st = towerrt_items_load(store, NULL, &items);
  CHECK(st == TOWERRT_OK, "load store: %s", towerrt_last_error());
  if (!st) st = towerrt_session_create(m, items, NULL, &s);
  CHECK(st == TOWERRT_OK, "session: %s", towerrt_last_error());
  towerrt_options o;
  towerrt_options_init(&o);
  towerrt_model *mr = NULL; /* the same model with its weights placed (replicated) on the pool's nodes */
  if (!st && pool) {
    o.pool = pool;
    o.placement = TOWERRT_PLACE_REPLICATE;
    CHECK(towerrt_model_load(mp, &o, &mr) == TOWERRT_OK, "load with placement: %s", towerrt_last_error());
    o.placement = TOWERRT_PLACE_SHARED;
    o.threads = 2;
    o.numa_node = 0;
    if (mr) CHECK(towerrt_session_create(mr, items, &o, &s2) == TOWERRT_OK, "2-thread session: %s", towerrt_last_error());
  }
  towerrt_options_init(&o);
  o.output_logits = 1;
  if (!st) CHECK(towerrt_session_create(m, items, &o, &sl) == TOWERRT_OK, "logits session: %s", towerrt_last_error());
  if (!st) {
    printf("  kernels %s\n", towerrt_model_isa(m));
    check_file(dir, m, s, s2, "requests_features.txt", "expected_features.txt", REL_TOL, "scores");
    check_file(dir, m, s, s2, "requests_ids.txt", "expected_ids.txt", REL_TOL, "scores");
    if (sl) {
      check_file(dir, m, sl, NULL, "requests_features.txt", "expected_logits.txt", REL_TOL, "logits");
      check_file(dir, m, sl, NULL, "requests_ids.txt", "expected_logits.txt", REL_TOL, "logits");
    }
    check_quantized(dir, m, items);
    check_errors(m, items, *prev, *prev_store);
  }
  check_corrupt(mp);
  towerrt_session_free(s);
  towerrt_session_free(s2);
  towerrt_session_free(sl);
  towerrt_model_free(mr);
  towerrt_items_free(items);
  towerrt_model_free((towerrt_model *)*prev);
  if (*prev_store) {
    remove(*prev_store);
    free(*prev_store);
  }
  *prev = m;
  *prev_store = store;
  free(mp);
}

int main(int argc, char **argv) {
  if (test_forced_isa_unavailable()) return TEST_SKIPPED;
  CHECK(argc > 1, "usage: test_family FIXTURE_DIR...");
  towerrt_options po;
  towerrt_options_init(&po);
  po.threads_per_node = 1;
  po.pin_threads = 0;
  towerrt_pool *pool = NULL;
  if (towerrt_pool_create(&po, &pool) != TOWERRT_OK) {
    printf("note: no worker pool here (%s): the 2-thread comparison is skipped\n", towerrt_last_error());
    pool = NULL;
  }
  const towerrt_model *prev = NULL;
  char *prev_store = NULL;
  for (int i = 1; i < argc; i++) check_fixture(argv[i], &prev, &prev_store, pool);
  towerrt_model_free((towerrt_model *)prev);
  if (prev_store) {
    remove(prev_store);
    free(prev_store);
  }
  towerrt_pool_free(pool);
  return test_finish("test_family");
}
