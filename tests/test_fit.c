/* FIT (docs/family.md "FIT") end to end against the PyTorch reference
 * (tools/reference/fit_ref.py; fixtures by tools/make_golden_fit.py):
 *   - by features, the logits and the probabilities equal the reference's
 *     (float64, hard queries) within REL_TOL * max(1, |expected|), with the
 *     kernel set chosen here or forced by TOWERRT_ISA (tests/fit.cmake);
 *   - by item-store id (a store built from the request's candidates: the
 *     shared builder runs FIT's widened item tower) the same, a skipped
 *     unknown id is NaN and the rest unchanged; top-n keeps the n best;
 *   - what FIT does not serve is a clear error: a bf16 store, user heads,
 *     scoring from heads, fe_layer_mask; k above max_k is LIMIT; a corrupt
 *     LSS node is SHAPE.
 * usage: test_fit FIXTURE_DIR... */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_util.h"
#include "towerrt.h"

#define REL_TOL 2e-5

/* A scratch path of this process (ctest runs the fit_<isa> tests at once). */
static const char *tmp(const char *name) {
  static char buf[4][128];
  static int i;
  char *p = buf[i++ & 3];
  snprintf(p, 128, "/tmp/towerrt_fit_%ld_%s", (long)getpid(), name);
  return p;
}
#define MAX_K 200

static towerrt_pool *g_pool; /* placement: a copy of each model on the pool's nodes */
static towerrt_model *g_placed;

typedef struct request {
  size_t k, us, ud, is, id;
  int64_t *uids, *iids;
  float *udense, *idense;
  double *logit, *prob;
} request;

static void request_free(request *q) {
  free(q->uids), free(q->iids), free(q->udense), free(q->idense), free(q->logit), free(q->prob);
  memset(q, 0, sizeof *q);
}

/* The next request of requests.txt; 0 at the end. */
static int read_request(FILE *f, request *q) {
  memset(q, 0, sizeof *q);
  if (fscanf(f, " request %zu %zu %zu %zu %zu", &q->k, &q->us, &q->ud, &q->is, &q->id) != 5) return 0;
  q->uids = calloc(q->us + 1, sizeof *q->uids), q->udense = calloc(q->ud + 1, sizeof *q->udense);
  q->iids = calloc(q->k * q->is + 1, sizeof *q->iids), q->idense = calloc(q->k * q->id + 1, sizeof *q->idense);
  q->logit = calloc(q->k + 1, sizeof *q->logit), q->prob = calloc(q->k + 1, sizeof *q->prob);
  int ok = 1;
  for (size_t i = 0; i < q->us; i++) ok &= fscanf(f, "%lld", (long long *)&q->uids[i]) == 1;
  for (size_t i = 0; i < q->ud; i++) ok &= fscanf(f, "%f", &q->udense[i]) == 1;
  for (size_t c = 0; c < q->k && ok; c++) {
    for (size_t i = 0; i < q->is; i++) ok &= fscanf(f, "%lld", (long long *)&q->iids[c * q->is + i]) == 1;
    for (size_t i = 0; i < q->id; i++) ok &= fscanf(f, "%f", &q->idense[c * q->id + i]) == 1;
    ok &= fscanf(f, "%lf %lf", &q->logit[c], &q->prob[c]) == 2;
  }
  CHECK(ok, "requests.txt: truncated request of %zu candidates", q->k);
  return ok;
}

static towerrt_session *session_on(const towerrt_model *m, const towerrt_items *items, int logits, int skip) {
  towerrt_options o;
  towerrt_options_init(&o);
  o.max_k = MAX_K;
  o.output_logits = (uint32_t)logits;
  o.skip_unknown_items = (uint32_t)skip;
  towerrt_session *s = NULL;
  towerrt_status st = towerrt_session_create(m, items, &o, &s);
  CHECK(st == TOWERRT_OK, "session: %s", towerrt_last_error());
  return s;
}

static towerrt_session *session(const towerrt_model *m, int logits) { return session_on(m, NULL, logits, 0); }

static double check_scores(const char *dir, size_t r, const float *got, const double *want, size_t k, const char *what) {
  double worst = 0.0;
  for (size_t c = 0; c < k; c++) {
    double err = fabs(got[c] - want[c]) / fmax(1.0, fabs(want[c]));
    if (err > worst) worst = err;
    CHECK(err <= REL_TOL, "%s request %zu candidate %zu: %s %.9g, reference %.9g", dir, r, c, what, got[c], want[c]);
  }
  return worst;
}

/* Top-n by features: the n best scores of the full request, best first. */
static void check_topn(towerrt_session *s, const towerrt_features *u, const towerrt_features *it, const request *q, const float *full) {
  size_t n = q->k < 5 ? q->k : 5;
  uint64_t ids[5];
  float top[5];
  CHECK(towerrt_score_features_topn(s, u, it, q->k, n, ids, top) == TOWERRT_OK, "topn: %s", towerrt_session_error(s));
  for (size_t j = 0; j < n; j++) {
    CHECK(ids[j] < q->k && top[j] == full[ids[j]], "topn %zu: id %llu score %g", j, (unsigned long long)ids[j], top[j]);
    size_t better = 0;
    for (size_t c = 0; c < q->k; c++) better += full[c] > top[j];
    CHECK(better <= j, "topn %zu: %zu candidates score higher than %g", j, better, top[j]);
  }
}

/* By id from a store of the request's candidates (ids 1000 + c): the
 * same logits; a top-n; with skip_unknown_items an unknown id is NaN and
 * the others keep their scores. */
static double check_by_id(const char *dir, size_t r, const towerrt_model *m, const towerrt_features *u, const towerrt_features *it,
                          const request *q) {
  const char *path = tmp("store.twi");
  uint64_t *ids = malloc((q->k + 1) * sizeof *ids);
  float *got = malloc((q->k + 1) * sizeof *got);
  for (size_t c = 0; c < q->k; c++) ids[c] = 1000 + c;
  towerrt_items *items = NULL;
  double worst = 0.0;
  towerrt_status st = towerrt_items_build(m, it, ids, q->k, path);
  if (!st) st = towerrt_items_load(path, NULL, &items);
  CHECK(st == TOWERRT_OK, "%s: store: %s", dir, towerrt_last_error());
  towerrt_session *s = items ? session_on(m, items, 1, 1) : NULL;
  if (s) {
    CHECK(towerrt_score(s, u, ids, q->k, got) == TOWERRT_OK, "%s by id: %s", dir, towerrt_session_error(s));
    worst = check_scores(dir, r, got, q->logit, q->k, "logit by id");
    if (g_placed) { /* the placed copy, 2 threads asked for: the same scores bit for bit */
      towerrt_options o;
      towerrt_options_init(&o);
      o.max_k = MAX_K, o.output_logits = 1, o.pool = g_pool, o.placement = TOWERRT_PLACE_SHARED, o.threads = 2, o.numa_node = 0;
      towerrt_session *sp = NULL;
      float *again = malloc((q->k + 1) * sizeof *again), *feat = malloc((q->k + 1) * sizeof *feat);
      CHECK(towerrt_session_create(g_placed, items, &o, &sp) == TOWERRT_OK, "placed session: %s", towerrt_last_error());
      if (sp) {
        CHECK(towerrt_score(sp, u, ids, q->k, again) == TOWERRT_OK, "placed by id: %s", towerrt_session_error(sp));
        CHECK(memcmp(again, got, q->k * sizeof *got) == 0, "%s: the placed model scores by id differently", dir);
        CHECK(towerrt_score_features(sp, u, it, q->k, feat) == TOWERRT_OK, "placed by features: %s", towerrt_session_error(sp));
        worst = fmax(worst, check_scores(dir, r, feat, q->logit, q->k, "logit placed by features"));
      }
      towerrt_session_free(sp);
      free(again), free(feat);
    }
    uint64_t top_ids[3];
    float top[3];
    size_t n = q->k < 3 ? q->k : 3;
    CHECK(towerrt_score_topn(s, u, ids, q->k, n, top_ids, top) == TOWERRT_OK, "topn by id: %s", towerrt_session_error(s));
    for (size_t j = 0; j < n; j++) {
      size_t better = 0;
      for (size_t c = 0; c < q->k; c++) better += got[c] > top[j];
      CHECK(top_ids[j] >= 1000 && top_ids[j] < 1000 + q->k && top[j] == got[top_ids[j] - 1000] && better <= j, "topn by id %zu", j);
    }
    ids[0] = 999999; /* unknown: skipped */
    float *again = malloc((q->k + 1) * sizeof *again);
    CHECK(towerrt_score(s, u, ids, q->k, again) == TOWERRT_OK, "skip unknown: %s", towerrt_session_error(s));
    CHECK(isnan(again[0]) && towerrt_session_last_skipped(s) == 1, "skip unknown: %g, %zu skipped", again[0], towerrt_session_last_skipped(s));
    CHECK(q->k < 2 || memcmp(again + 1, got + 1, (q->k - 1) * sizeof *got) == 0, "skip unknown changed the other scores");
    free(again);
  }
  towerrt_session_free(s);
  towerrt_items_free(items);
  remove(path);
  free(ids), free(got);
  return worst;
}

static void check_dir(const char *dir) {
  char path[1024];
  snprintf(path, sizeof path, "%s/model.twr", dir);
  towerrt_model *m = NULL;
  if (towerrt_model_load(path, NULL, &m) != TOWERRT_OK) {
    CHECK(0, "%s: %s", path, towerrt_last_error());
    return;
  }
  if (g_pool) {
    towerrt_options o;
    towerrt_options_init(&o);
    o.pool = g_pool;
    o.placement = TOWERRT_PLACE_REPLICATE;
    CHECK(towerrt_model_load(path, &o, &g_placed) == TOWERRT_OK, "load with placement: %s", towerrt_last_error());
  }
  towerrt_session *sl = session(m, 1), *sp = session(m, 0);
  snprintf(path, sizeof path, "%s/requests.txt", dir);
  FILE *f = fopen(path, "r");
  CHECK(f != NULL, "cannot open %s", path);
  request q;
  double worst = 0.0;
  size_t n_req = 0;
  while (f && sl && sp && read_request(f, &q)) {
    towerrt_features u = {q.uids, q.us, q.ud ? q.udense : NULL, q.ud};
    towerrt_features it = {q.iids, q.k * q.is, q.id ? q.idense : NULL, q.k * q.id};
    float *got = malloc(q.k * sizeof *got);
    CHECK(towerrt_score_features(sl, &u, &it, q.k, got) == TOWERRT_OK, "%s: %s", dir, towerrt_session_error(sl));
    worst = fmax(worst, check_scores(dir, n_req, got, q.logit, q.k, "logit"));
    CHECK(towerrt_score_features(sp, &u, &it, q.k, got) == TOWERRT_OK, "%s: %s", dir, towerrt_session_error(sp));
    worst = fmax(worst, check_scores(dir, n_req, got, q.prob, q.k, "probability"));
    check_topn(sp, &u, &it, &q, got);
    worst = fmax(worst, check_by_id(dir, n_req, m, &u, &it, &q));
    free(got);
    request_free(&q);
    n_req++;
  }
  CHECK(n_req > 0, "%s: no requests", dir);
  printf("%s: %zu requests, isa %s, worst relative error %.3g\n", dir, n_req, towerrt_model_isa(m), worst);
  if (f) fclose(f);
  towerrt_session_free(sl);
  towerrt_session_free(sp);
  towerrt_model_free(m);
  towerrt_model_free(g_placed);
  g_placed = NULL;
}

/* What FIT does not serve, and the limits, are clear errors. */
static void check_errors(const char *dir) {
  char path[1024];
  snprintf(path, sizeof path, "%s/model.twr", dir);
  towerrt_model *m = NULL;
  if (towerrt_model_load(path, NULL, &m) != TOWERRT_OK) return;
  towerrt_options o;
  towerrt_options_init(&o);
  o.fe_layer_mask = 1;
  towerrt_session *s = NULL;
  CHECK(towerrt_session_create(m, NULL, &o, &s) == TOWERRT_ERR_INVALID_ARGUMENT, "fe_layer_mask accepted");
  towerrt_session_free(s);
  s = session(m, 0);
  float heads[64];
  int64_t ids[64] = {0};
  float dense[64] = {0};
  towerrt_features u = {ids, towerrt_model_id_slots(m, TOWERRT_USER), dense, towerrt_model_dense_width(m, TOWERRT_USER)};
  CHECK(towerrt_user_heads(s, &u, 1, heads) == TOWERRT_ERR_UNSUPPORTED, "user heads of a FIT model");
  uint64_t item_ids[1] = {0};
  float out[MAX_K + 1];
  CHECK(towerrt_score(s, &u, item_ids, 1, out) == TOWERRT_ERR_NO_ITEMS, "by id without a store");
  CHECK(towerrt_score_heads(s, heads, item_ids, 1, out) == TOWERRT_ERR_UNSUPPORTED, "scoring from heads");
  size_t is = towerrt_model_id_slots(m, TOWERRT_ITEM), id = towerrt_model_dense_width(m, TOWERRT_ITEM);
  int64_t *iids = calloc((MAX_K + 1) * is + 1, sizeof *iids);
  float *idn = calloc((MAX_K + 1) * id + 1, sizeof *idn);
  towerrt_features it = {iids, (MAX_K + 1) * is, id ? idn : NULL, (MAX_K + 1) * id};
  CHECK(towerrt_score_features(s, &u, &it, MAX_K + 1, out) == TOWERRT_ERR_LIMIT, "k above max_k");
  /* a bf16 copy of a store: refused (its rows carry the match logits) */
  towerrt_items *store = NULL, *half = NULL;
  uint64_t one[2] = {7, 8};
  towerrt_features two = {iids, 2 * is, id ? idn : NULL, 2 * id};
  const char *f32 = tmp("f32.twi"), *bf16 = tmp("bf16.twi");
  towerrt_status st = towerrt_items_build(m, &two, one, 2, f32);
  if (!st) st = towerrt_items_load(f32, NULL, &store);
  if (!st) st = towerrt_items_quantize(store, TOWERRT_PRECISION_BF16, bf16);
  if (!st) st = towerrt_items_load(bf16, NULL, &half);
  CHECK(st == TOWERRT_OK, "bf16 store: %s", towerrt_last_error());
  if (half) CHECK(towerrt_session_set_items(s, half) == TOWERRT_ERR_UNSUPPORTED, "a bf16 store accepted");
  if (store) CHECK(towerrt_session_set_items(s, store) == TOWERRT_OK, "f32 store: %s", towerrt_last_error());
  towerrt_items_free(store), towerrt_items_free(half);
  remove(f32), remove(bf16);
  free(iids), free(idn);
  towerrt_session_free(s);
  towerrt_model_free(m);
  /* a corrupt LSS node: o that disagrees with its tensors */
  size_t size = 0;
  unsigned char *file = test_read_file(path, &size);
  int edited = 0;
  for (size_t off = 0; file && off + 64 <= size && !edited; off += 4) {
    uint32_t op, side;
    memcpy(&op, file + off, 4), memcpy(&side, file + off + 4, 4);
    if (op == 15 && side == 2 && off % 8 == 0) { /* LSS: attr[0] at byte 56 of the record */
      int32_t o2;
      memcpy(&o2, file + off + 56, 4);
      if (o2 <= 0 || o2 > 64) continue;
      o2 += 1;
      memcpy(file + off + 56, &o2, 4);
      edited = 1;
    }
  }
  CHECK(edited, "%s: no LSS record found to corrupt", path);
  if (edited) {
    test_fix_crcs(file, size);
    const char *bad = tmp("corrupt.twr");
    test_write_file(bad, file, size);
    st = towerrt_model_load(bad, NULL, &m);
    CHECK(st == TOWERRT_ERR_SHAPE, "corrupt LSS: status %s (%s)", towerrt_status_name(st), towerrt_last_error());
    if (st == TOWERRT_OK) towerrt_model_free(m);
    remove(bad);
  }
  free(file);
}

int main(int argc, char **argv) {
  if (test_forced_isa_unavailable()) return TEST_SKIPPED;
  if (argc < 2) {
    fprintf(stderr, "usage: test_fit FIXTURE_DIR...\n");
    return 2;
  }
  towerrt_options po;
  towerrt_options_init(&po);
  po.threads_per_node = 2;
  po.pin_threads = 0;
  CHECK(towerrt_pool_create(&po, &g_pool) == TOWERRT_OK, "pool: %s", towerrt_last_error());
  for (int i = 1; i < argc; i++) check_dir(argv[i]);
  check_errors(argv[1]);
  towerrt_pool_free(g_pool);
  return test_finish("test_fit");
}
