/* Serving calls against their oracles:
 *  - top-n (towerrt_score_topn, _heads_topn, _features_topn) equals the
 *    first n entries of a stable sort of towerrt_score's scores by (score
 *    desc, id asc), bitwise, for every request of every golden fixture, n
 *    from 1 to past k, with ties (each candidate given three times; by
 *    features, equal rows at different positions), on one thread and split
 *    over a worker pool;
 *  - the selection heap alone against qsort on random data full of ties;
 *  - the candidate policy: strict fails on an unknown id, skip gives NaN
 *    there, the other scores unchanged, the count, and top-n without them.
 * Runs with whatever kernel set TOWERRT_ISA forces (ctest serving_<isa>).
 * usage: test_serving FIXTURE_DIR... */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/topn.h"
#include "test_util.h"
#include "towerrt.h"

typedef struct ranked {
  float score;
  uint64_t id;
  size_t pos;
} ranked;

/* The oracle's order: score desc, id asc, position asc (= a stable sort by (score desc, id asc)). */
static int cmp_ranked(const void *pa, const void *pb) {
  const ranked *a = pa, *b = pb;
  if (a->score != b->score) return a->score > b->score ? -1 : 1;
  if (a->id != b->id) return a->id < b->id ? -1 : 1;
  return (a->pos > b->pos) - (a->pos < b->pos);
}

/* The oracle: sorts the finite scores; returns how many. */
static size_t oracle_rank(const float *scores, const uint64_t *ids, size_t k, ranked *out) {
  size_t m = 0;
  for (size_t i = 0; i < k; i++)
    if (isfinite(scores[i])) out[m++] = (ranked){scores[i], ids ? ids[i] : i, i};
  qsort(out, m, sizeof *out, cmp_ranked);
  return m;
}

static void check_top(const char *what, const ranked *want, size_t m, size_t n, const uint64_t *ids, const float *scores) {
  for (size_t i = 0; i < n; i++) {
    uint64_t wid = i < m ? want[i].id : TOWERRT_NO_ID;
    float ws = i < m ? want[i].score : NAN;
    int same = ids[i] == wid && (i < m ? memcmp(&scores[i], &ws, sizeof ws) == 0 : isnan(scores[i]));
    CHECK(same, "%s: n = %zu, rank %zu: id %llu score %.9g, want id %llu score %.9g", what, n, i, (unsigned long long)ids[i],
          (double)scores[i], (unsigned long long)wid, (double)ws);
    if (!same) return;
  }
}

/* The n values tried for k candidates (those within the session's max_topn). */
static size_t n_values(size_t k, size_t max_n, size_t *out) {
  size_t cand[] = {1, 2, 3, 10, k / 2, k - 1, k, k + 3}, m = 0;
  for (size_t i = 0; i < sizeof cand / sizeof *cand; i++)
    if (cand[i] >= 1 && cand[i] <= max_n && cand[i] <= k + 3) out[m++] = cand[i];
  return m;
}

/* By id and by heads: top-n of ids[k] equals the oracle over towerrt_score. */
static void check_ids(towerrt_session *s, const char *tag, const towerrt_features *user, const uint64_t *ids, size_t k) {
  float *scores = malloc(k * sizeof *scores), *top = malloc((k + 3) * sizeof *top);
  uint64_t *top_ids = malloc((k + 3) * sizeof *top_ids);
  ranked *want = malloc(k * sizeof *want);
  float *heads = malloc(towerrt_session_user_heads_size(s) * sizeof *heads);
  CHECK(towerrt_score(s, user, ids, k, scores) == TOWERRT_OK, "%s: %s", tag, towerrt_session_error(s));
  CHECK(towerrt_user_heads(s, user, 1, heads) == TOWERRT_OK, "%s heads: %s", tag, towerrt_session_error(s));
  size_t m = oracle_rank(scores, ids, k, want), ns[8], nn = n_values(k, towerrt_session_max_topn(s), ns);
  CHECK(m == k, "%s: %zu of %zu scores finite", tag, m, k);
  /* batched heads equal towerrt_score's within rounding only: their own oracle */
  ranked *want_h = malloc(k * sizeof *want_h);
  CHECK(towerrt_score_heads(s, heads, ids, k, scores) == TOWERRT_OK, "%s: %s", tag, towerrt_session_error(s));
  size_t mh = oracle_rank(scores, ids, k, want_h);
  for (size_t j = 0; j < nn; j++) {
    char what[160];
    snprintf(what, sizeof what, "%s by id", tag);
    CHECK(towerrt_score_topn(s, user, ids, k, ns[j], top_ids, top) == TOWERRT_OK, "%s: %s", what, towerrt_session_error(s));
    check_top(what, want, m, ns[j], top_ids, top);
    snprintf(what, sizeof what, "%s by heads", tag);
    CHECK(towerrt_score_heads_topn(s, heads, ids, k, ns[j], top_ids, top) == TOWERRT_OK, "%s: %s", what, towerrt_session_error(s));
    check_top(what, want_h, mh, ns[j], top_ids, top);
  }
  free(scores), free(top), free(top_ids), free(want), free(want_h), free(heads);
}

static void check_features(towerrt_session *s, const char *tag, const towerrt_features *user, const towerrt_features *items, size_t k) {
  float *scores = malloc(k * sizeof *scores), *top = malloc((k + 3) * sizeof *top);
  uint64_t *top_ids = malloc((k + 3) * sizeof *top_ids);
  ranked *want = malloc(k * sizeof *want);
  CHECK(towerrt_score_features(s, user, items, k, scores) == TOWERRT_OK, "%s: %s", tag, towerrt_session_error(s));
  size_t m = oracle_rank(scores, NULL, k, want), ns[8], nn = n_values(k, towerrt_session_max_topn(s), ns);
  for (size_t j = 0; j < nn; j++) {
    CHECK(towerrt_score_features_topn(s, user, items, k, ns[j], top_ids, top) == TOWERRT_OK, "%s: %s", tag, towerrt_session_error(s));
    check_top(tag, want, m, ns[j], top_ids, top);
  }
  free(scores), free(top), free(top_ids), free(want);
}

/* Every request of the fixture, then the same candidates three times over (ties). */
static void check_requests(towerrt_session *s, const char *tag, const trt_request *q, size_t nq, const trt_request *fq, size_t nf) {
  for (size_t r = 0; r < nq; r++) {
    towerrt_features u = {q[r].user.ids, q[r].user.n_ids, q[r].user.dense, q[r].user.n_dense};
    size_t k = q[r].items.n_keys;
    check_ids(s, tag, &u, q[r].items.keys, k);
    uint64_t *tripled = malloc(3 * k * sizeof *tripled);
    for (size_t i = 0; i < 3 * k; i++) tripled[i] = q[r].items.keys[(i * 7) % k]; /* shuffled, every id repeated */
    char t[128];
    snprintf(t, sizeof t, "%s ties", tag);
    check_ids(s, t, &u, tripled, 3 * k);
    free(tripled);
    /* many blocks (split over the pool's workers, heaps merged), every id ~100 times */
    size_t big = 2500 + r;
    uint64_t *many = malloc(big * sizeof *many);
    for (size_t i = 0; i < big; i++) many[i] = q[r].items.keys[(i * 7919 + r) % k];
    snprintf(t, sizeof t, "%s many ties", tag);
    check_ids(s, t, &u, many, big);
    free(many);
  }
  for (size_t r = 0; r < nf; r++) {
    towerrt_features u = {fq[r].user.ids, fq[r].user.n_ids, fq[r].user.dense, fq[r].user.n_dense};
    towerrt_features it = {fq[r].items.ids, fq[r].items.n_ids, fq[r].items.dense, fq[r].items.n_dense};
    check_features(s, tag, &u, &it, fq[r].items.n_rows);
    /* the rows 9 times (several blocks): equal scores at different positions */
    trt_rows twice = {0};
    for (int rep = 0; rep < 9; rep++)
      CHECK(trt_rows_append(&twice, &fq[r].items) == TOWERRT_OK, "append rows");
    towerrt_features it2 = {twice.ids, twice.n_ids, twice.dense, twice.n_dense};
    char t[128];
    snprintf(t, sizeof t, "%s features ties", tag);
    check_features(s, t, &u, &it2, 9 * fq[r].items.n_rows);
    trt_rows_free(&twice);
  }
}

/* Strict vs skip on a request with unknown ids slipped in. */
static void check_policy(const towerrt_model *m, const towerrt_items *items, const trt_request *q) {
  towerrt_features u = {q->user.ids, q->user.n_ids, q->user.dense, q->user.n_dense};
  size_t k = q->items.n_keys, k2 = k + k / 2 + 1, n_unknown = 0;
  uint64_t *ids = malloc(k2 * sizeof *ids), *top_ids = malloc(k2 * sizeof *top_ids);
  float *clean = malloc(k * sizeof *clean), *got = malloc(k2 * sizeof *got), *want = malloc(k2 * sizeof *want), *top = malloc(k2 * sizeof *top);
  ranked *rk = malloc(k2 * sizeof *rk);
  /* unknown ids (beyond every catalog id) at every other place, up front */
  for (size_t i = 0, j = 0; i < k2; i++) {
    int unknown = (i % 2 == 0 && n_unknown < k2 - k) || j == k;
    ids[i] = unknown ? UINT64_C(0xFFFFFFFFFFFF0000) + i : q->items.keys[j++];
    n_unknown += unknown != 0;
  }
  towerrt_options o;
  towerrt_options_init(&o);
  towerrt_session *strict = NULL, *skip = NULL;
  CHECK(towerrt_session_create(m, items, &o, &strict) == TOWERRT_OK, "%s", towerrt_last_error());
  o.skip_unknown_items = 1;
  CHECK(towerrt_session_create(m, items, &o, &skip) == TOWERRT_OK, "%s", towerrt_last_error());
  if (strict && skip) {
    CHECK(towerrt_score(strict, &u, q->items.keys, k, clean) == TOWERRT_OK, "%s", towerrt_session_error(strict));
    CHECK(towerrt_score(strict, &u, ids, k2, got) == TOWERRT_ERR_UNKNOWN_ITEM, "strict: an unknown id must fail");
    CHECK(isnan(got[k2 - 1]), "strict failure leaves NaN");
    CHECK(towerrt_score_topn(strict, &u, ids, k2, 2, top_ids, top) == TOWERRT_ERR_UNKNOWN_ITEM && top_ids[0] == TOWERRT_NO_ID && isnan(top[0]),
          "strict top-n: an unknown id must fail with NO_ID / NaN outputs");
    CHECK(towerrt_score(skip, &u, ids, k2, got) == TOWERRT_OK, "skip: %s", towerrt_session_error(skip));
    CHECK(towerrt_session_last_skipped(skip) == n_unknown, "skip: %zu skipped, want %zu", towerrt_session_last_skipped(skip), n_unknown);
    for (size_t i = 0, j = 0; i < k2; i++) {
      int unknown = ids[i] >= UINT64_C(0xFFFFFFFFFFFF0000);
      want[i] = unknown ? NAN : clean[j++];
      CHECK(unknown ? isnan(got[i]) : memcmp(&got[i], &want[i], sizeof(float)) == 0, "skip: candidate %zu: %.9g, want %.9g", i,
            (double)got[i], (double)want[i]);
    }
    size_t mm = oracle_rank(want, ids, k2, rk);
    size_t ns[] = {1, k, k2};
    for (size_t j = 0; j < 3; j++) {
      if (ns[j] > towerrt_session_max_topn(skip)) continue;
      CHECK(towerrt_score_topn(skip, &u, ids, k2, ns[j], top_ids, top) == TOWERRT_OK, "skip top-n: %s", towerrt_session_error(skip));
      CHECK(towerrt_session_last_skipped(skip) == n_unknown, "skip top-n: skipped count");
      check_top("skip top-n", rk, mm, ns[j], top_ids, top);
    }
    CHECK(towerrt_score(skip, &u, q->items.keys, k, got) == TOWERRT_OK && towerrt_session_last_skipped(skip) == 0,
          "no unknown ids: none skipped");
  }
  towerrt_session_free(strict);
  towerrt_session_free(skip);
  free(ids), free(top_ids), free(clean), free(got), free(want), free(top), free(rk);
}

static void check_topn_errors(towerrt_session *s, const trt_request *q) {
  towerrt_features u = {q->user.ids, q->user.n_ids, q->user.dense, q->user.n_dense};
  uint64_t ids[4];
  float sc[4];
  size_t k = q->items.n_keys, big = towerrt_session_max_topn(s) + 1;
  CHECK(towerrt_score_topn(s, &u, q->items.keys, k, 0, ids, sc) == TOWERRT_ERR_INVALID_ARGUMENT, "n = 0");
  CHECK(towerrt_score_topn(s, &u, q->items.keys, k, 1, NULL, sc) == TOWERRT_ERR_INVALID_ARGUMENT, "NULL out_ids");
  CHECK(towerrt_score_topn(s, &u, q->items.keys, k, 1, ids, NULL) == TOWERRT_ERR_INVALID_ARGUMENT, "NULL out_scores");
  CHECK(towerrt_score_topn(NULL, &u, q->items.keys, k, 1, ids, sc) == TOWERRT_ERR_INVALID_ARGUMENT, "NULL session");
  CHECK(towerrt_score_topn(s, &u, q->items.keys, 0, 1, ids, sc) == TOWERRT_ERR_EMPTY_REQUEST, "k = 0");
  uint64_t *bid = malloc(big * sizeof *bid);
  float *bsc = malloc(big * sizeof *bsc);
  CHECK(towerrt_score_topn(s, &u, q->items.keys, k, big, bid, bsc) == TOWERRT_ERR_LIMIT, "n above max_topn");
  CHECK(strstr(towerrt_session_error(s), "max_topn") != NULL, "the message names max_topn: %s", towerrt_session_error(s));
  CHECK(bid[big - 1] == TOWERRT_NO_ID && isnan(bsc[0]), "a failed top-n leaves NO_ID / NaN");
  free(bid), free(bsc);
}

static towerrt_session *session(const towerrt_model *m, const towerrt_items *items, towerrt_pool *pool, uint32_t threads, uint32_t max_topn) {
  towerrt_options o;
  towerrt_options_init(&o);
  o.pool = pool;
  o.threads = threads;
  o.max_topn = max_topn;
  o.max_k = 20000;
  towerrt_session *s = NULL;
  CHECK(towerrt_session_create(m, items, &o, &s) == TOWERRT_OK, "session: %s", towerrt_last_error());
  return s;
}

/* bf16 and int8 stores of the same catalog: other kernels, same contract. */
static void check_quantized(const towerrt_model *m, const towerrt_items *items, towerrt_pool *pool, const trt_request *q, size_t nq,
                            const trt_request *fq, size_t nf) {
  const towerrt_precision precs[] = {TOWERRT_PRECISION_BF16, TOWERRT_PRECISION_INT8};
  for (int i = 0; i < 2; i++) {
    char path[] = "/tmp/towerrt_serving_q_XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) close(fd);
    towerrt_items *qi = NULL;
    CHECK(towerrt_items_quantize(items, precs[i], path) == TOWERRT_OK, "quantize: %s", towerrt_last_error());
    CHECK(towerrt_items_load(path, NULL, &qi) == TOWERRT_OK, "load: %s", towerrt_last_error());
    if (qi) {
      const char *tag = i ? "int8 store" : "bf16 store";
      towerrt_session *s = session(m, qi, pool, pool ? 2 : 1, 100000);
      if (s) check_requests(s, tag, q, nq, fq, nf);
      check_policy(m, qi, &q[0]);
      towerrt_session_free(s);
    }
    towerrt_items_free(qi);
    remove(path);
  }
}

static void check_fixture(const char *dir, towerrt_pool *pool) {
  printf("fixture %s\n", dir);
  char mp[1024], store[] = "/tmp/towerrt_serving_XXXXXX";
  snprintf(mp, sizeof mp, "%s/model.twr", dir);
  int fd = mkstemp(store);
  if (fd >= 0) close(fd);
  towerrt_model *m = NULL;
  towerrt_items *items = NULL;
  CHECK(towerrt_model_load(mp, NULL, &m) == TOWERRT_OK, "%s", towerrt_last_error());
  CHECK(m && test_build_store(m, dir, store) == TOWERRT_OK, "build store: %s", towerrt_last_error());
  CHECK(m && towerrt_items_load(store, NULL, &items) == TOWERRT_OK, "%s", towerrt_last_error());
  trt_request *q = NULL, *fq = NULL;
  size_t nq = m ? test_read_requests(m, dir, "requests_ids.txt", &q) : 0, nf = m ? test_read_requests(m, dir, "requests_features.txt", &fq) : 0;
  CHECK(nq > 0 && nf > 0, "%s: no requests", dir);
  if (items && nq) {
    printf("  kernels %s, %zu + %zu requests\n", towerrt_model_isa(m), nq, nf);
    towerrt_session *s1 = session(m, items, NULL, 1, 100000), *s2 = pool ? session(m, items, pool, 2, 100000) : NULL;
    towerrt_session *small = session(m, items, NULL, 1, 5);
    if (s1) check_requests(s1, "1 thread", q, nq, fq, nf);
    if (s2) check_requests(s2, "2 threads", q, nq, fq, nf);
    if (small) check_requests(small, "max_topn 5", q, nq, fq, nf);
    if (small) check_topn_errors(small, &q[0]);
    check_policy(m, items, &q[0]);
    towerrt_session_free(s1), towerrt_session_free(s2), towerrt_session_free(small);
    check_quantized(m, items, pool, q, nq, fq, nf);
  }
  test_free_requests(q, nq);
  test_free_requests(fq, nf);
  towerrt_items_free(items);
  towerrt_model_free(m);
  remove(store);
}

/* The heap alone: random scores and ids from small sets (many ties), split
 * over 1-4 heaps in random order and merged, against qsort. */
static void check_heap(void) {
  uint64_t rng = test_seed("test_serving heap");
  enum { MAXK = 600 };
  trt_rank mem[4][MAXK];
  ranked want[MAXK];
  float scores[MAXK], top[MAXK];
  uint64_t ids[MAXK], top_ids[MAXK];
  for (int trial = 0; trial < 400; trial++) {
    size_t k = test_rand_range(&rng, 1, MAXK - 1), n = test_rand_range(&rng, 1, k + 5 < MAXK ? k + 5 : MAXK);
    size_t n_scores = test_rand_range(&rng, 1, 8), n_ids = test_rand_range(&rng, 1, 2 * k);
    for (size_t i = 0; i < k; i++) {
      scores[i] = (float)test_rand_range(&rng, 0, n_scores) * 0.25f - 0.5f;
      if (test_rand_range(&rng, 0, 20) == 0) scores[i] = -0.0f; /* -0 ties +0 */
      ids[i] = test_rand_range(&rng, 0, n_ids);
    }
    size_t m = oracle_rank(scores, ids, k, want), n_heaps = test_rand_range(&rng, 1, 4);
    trt_topn h[4];
    for (size_t j = 0; j < n_heaps; j++) trt_topn_reset(&h[j], mem[j], n);
    for (size_t i = 0; i < k; i++) { /* a random heap each, in a rotated order */
      size_t c = (i + (size_t)trial) % k;
      trt_topn_push(&h[test_rand_range(&rng, 0, n_heaps - 1)], (trt_rank){scores[c], (uint32_t)c, ids[c]});
    }
    for (size_t j = 1; j < n_heaps; j++) trt_topn_merge(&h[0], &h[j]);
    trt_topn_emit(&h[0], n, top_ids, top);
    /* the oracle's -0 and +0 tie, so compare the score values, not bits */
    for (size_t i = 0; i < n; i++) {
      int ok = i < m ? top_ids[i] == want[i].id && top[i] == want[i].score : top_ids[i] == TOWERRT_NO_ID && isnan(top[i]);
      CHECK(ok, "heap trial %d (k %zu, n %zu, %zu heaps) rank %zu: id %llu score %g, want id %llu score %g", trial, k, n, n_heaps, i,
            (unsigned long long)top_ids[i], (double)top[i], i < m ? (unsigned long long)want[i].id : 0ull, i < m ? (double)want[i].score : 0.0);
      if (!ok) break;
    }
  }
  printf("heap: 400 random trials with ties against qsort\n");
}

int main(int argc, char **argv) {
  if (test_forced_isa_unavailable()) return TEST_SKIPPED;
  CHECK(argc > 1, "usage: test_serving FIXTURE_DIR...");
  check_heap();
  towerrt_options o;
  towerrt_options_init(&o);
  o.topology = "synthetic:pack:1 core:3 pu:1"; /* 3 workers, not pinned: same plan on any machine */
  towerrt_pool *pool = NULL;
  CHECK(towerrt_pool_create(&o, &pool) == TOWERRT_OK, "pool: %s", towerrt_last_error());
  for (int i = 1; i < argc; i++) check_fixture(argv[i], pool);
  towerrt_pool_free(pool);
  return test_finish("test_serving");
}
