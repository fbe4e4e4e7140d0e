/* Live item-store swaps (towerrt_session_set_items, reference-counted
 * stores). Three threads score continuously, each on its own session (one
 * of them split over a worker pool), by id and by top-n; a fourth thread
 * loads a fresh copy of store A or B (the f32 store of a golden fixture
 * and its bf16 copy: same model, other scores), sets it on every session
 * and drops its own reference at once, many times over. Every result must
 * equal, bitwise, the one its store gives alone (A's or B's, never a mix),
 * each scorer must see both stores, and no store may leak or be used after
 * its last reference (ASan, and TSan: label `threads`). Bounded in time:
 * SWAPS swaps or ~2 s, whichever comes first. Also: the error cases of
 * towerrt_session_set_items, and a store freed by its loader while
 * sessions still hold it.
 * usage: test_swap FIXTURE_DIR OTHER_FIXTURE_DIR */
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "test_util.h"
#include "towerrt.h"

#define SCORERS 3
#define SWAPS 300
#define TOPN 5

typedef struct shared {
  const towerrt_model *m;
  towerrt_features user;
  uint64_t *ids;
  size_t k;
  float *want[2];           /* scores of store A, B alone */
  uint64_t want_top[2][TOPN];
  towerrt_session *sess[SCORERS];
  atomic_int stop;
  atomic_long done[SCORERS]; /* requests completed per scorer */
  long seen[SCORERS][2], bad[SCORERS];
} shared;

typedef struct scorer_arg {
  shared *sh;
  int i;
} scorer_arg;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Which store gave these scores: 0 (A), 1 (B) or -1 (neither: a failure). */
static int which_store(const shared *sh, const float *scores) {
  for (int w = 0; w < 2; w++)
    if (memcmp(scores, sh->want[w], sh->k * sizeof *scores) == 0) return w;
  return -1;
}

static void *scorer(void *p) {
  scorer_arg *a = p;
  shared *sh = a->sh;
  float *scores = malloc(sh->k * sizeof *scores), top[TOPN];
  uint64_t top_ids[TOPN];
  for (long r = 0; !atomic_load(&sh->stop); r++) {
    int w;
    if (r % 2 == 0) {
      w = towerrt_score(sh->sess[a->i], &sh->user, sh->ids, sh->k, scores) == TOWERRT_OK ? which_store(sh, scores) : -1;
    } else {
      w = towerrt_score_topn(sh->sess[a->i], &sh->user, sh->ids, sh->k, TOPN, top_ids, top) == TOWERRT_OK ? 0 : -1;
      if (w == 0) w = memcmp(top_ids, sh->want_top[0], sizeof top_ids) == 0 ? 0 : memcmp(top_ids, sh->want_top[1], sizeof top_ids) == 0 ? 1 : -1;
    }
    if (w < 0)
      sh->bad[a->i]++;
    else
      sh->seen[a->i][w]++;
    atomic_fetch_add(&sh->done[a->i], 1);
  }
  free(scores);
  return NULL;
}

/* Waits until every scorer finished two more requests (the second one
 * started after the swap), or the deadline. */
static void wait_rounds(shared *sh, double deadline) {
  long start[SCORERS];
  for (int i = 0; i < SCORERS; i++) start[i] = atomic_load(&sh->done[i]);
  for (int i = 0; i < SCORERS; i++)
    while (atomic_load(&sh->done[i]) < start[i] + 2 && now() < deadline) sched_yield();
}

typedef struct swapper_arg {
  shared *sh;
  const char *paths[2];
  int swaps;
} swapper_arg;

static void *swapper(void *p) {
  swapper_arg *a = p;
  double deadline = now() + 2.0;
  for (a->swaps = 0; a->swaps < SWAPS && now() < deadline; a->swaps++) {
    towerrt_items *it = NULL;
    if (towerrt_items_load(a->paths[(a->swaps + 1) % 2], NULL, &it) != TOWERRT_OK) break;
    for (int i = 0; i < SCORERS; i++) CHECK(towerrt_session_set_items(a->sh->sess[i], it) == TOWERRT_OK, "swap: %s", towerrt_last_error());
    towerrt_items_free(it); /* the sessions hold it now */
    if (a->swaps % 10 == 0) wait_rounds(a->sh, deadline);
  }
  atomic_store(&a->sh->stop, 1);
  return NULL;
}

static void reference_scores(shared *sh, const towerrt_items *it, int w) {
  towerrt_session *s = NULL;
  float top[TOPN];
  sh->want[w] = malloc(sh->k * sizeof(float));
  CHECK(towerrt_session_create(sh->m, it, NULL, &s) == TOWERRT_OK, "%s", towerrt_last_error());
  CHECK(s && towerrt_score(s, &sh->user, sh->ids, sh->k, sh->want[w]) == TOWERRT_OK, "%s", towerrt_last_error());
  CHECK(s && towerrt_score_topn(s, &sh->user, sh->ids, sh->k, TOPN, sh->want_top[w], top) == TOWERRT_OK, "%s", towerrt_last_error());
  towerrt_session_free(s);
}

/* Errors, and a store that outlives its loader's reference. */
static void check_api(const towerrt_model *m, towerrt_items *a_items, const char *other_dir, const shared *sh) {
  towerrt_session *s = NULL;
  CHECK(towerrt_session_create(m, a_items, NULL, &s) == TOWERRT_OK, "%s", towerrt_last_error());
  CHECK(towerrt_session_set_items(NULL, a_items) == TOWERRT_ERR_INVALID_ARGUMENT, "NULL session");
  /* a store of another model: refused, the session keeps its own */
  char mp[1024], store[] = "/tmp/towerrt_swap_other_XXXXXX";
  snprintf(mp, sizeof mp, "%s/model.twr", other_dir);
  int fd = mkstemp(store);
  if (fd >= 0) close(fd);
  towerrt_model *om = NULL;
  towerrt_items *oi = NULL;
  CHECK(towerrt_model_load(mp, NULL, &om) == TOWERRT_OK, "%s", towerrt_last_error());
  CHECK(om && test_build_store(om, other_dir, store) == TOWERRT_OK && towerrt_items_load(store, NULL, &oi) == TOWERRT_OK, "%s",
        towerrt_last_error());
  CHECK(towerrt_session_set_items(s, oi) == TOWERRT_ERR_MISMATCH, "another model's store must be refused");
  float *got = malloc(sh->k * sizeof *got);
  CHECK(towerrt_score(s, &sh->user, sh->ids, sh->k, got) == TOWERRT_OK && memcmp(got, sh->want[0], sh->k * sizeof *got) == 0,
        "after a refused swap the session scores with its own store");
  /* no store: by id fails cleanly, a store set later works */
  CHECK(towerrt_session_set_items(s, NULL) == TOWERRT_OK, "detach: %s", towerrt_last_error());
  CHECK(towerrt_score(s, &sh->user, sh->ids, sh->k, got) == TOWERRT_ERR_NO_ITEMS, "no store: NO_ITEMS");
  CHECK(towerrt_session_set_items(s, a_items) == TOWERRT_OK, "%s", towerrt_last_error());
  CHECK(towerrt_score(s, &sh->user, sh->ids, sh->k, got) == TOWERRT_OK && memcmp(got, sh->want[0], sh->k * sizeof *got) == 0,
        "store set again");
  free(got);
  towerrt_items_free(oi);
  towerrt_model_free(om);
  remove(store);
  towerrt_session_free(s);
}

int main(int argc, char **argv) {
  if (test_forced_isa_unavailable()) return TEST_SKIPPED;
  CHECK(argc == 3, "usage: test_swap FIXTURE_DIR OTHER_FIXTURE_DIR");
  if (argc != 3) return test_finish("test_swap");
  char mp[1024], pa[] = "/tmp/towerrt_swap_a_XXXXXX", pb[] = "/tmp/towerrt_swap_b_XXXXXX";
  snprintf(mp, sizeof mp, "%s/model.twr", argv[1]);
  int fa = mkstemp(pa), fb = mkstemp(pb);
  if (fa >= 0) close(fa);
  if (fb >= 0) close(fb);
  towerrt_model *m = NULL;
  towerrt_items *a = NULL;
  trt_request q = {0};
  CHECK(towerrt_model_load(mp, NULL, &m) == TOWERRT_OK, "%s", towerrt_last_error());
  CHECK(m && test_build_store(m, argv[1], pa) == TOWERRT_OK && towerrt_items_load(pa, NULL, &a) == TOWERRT_OK, "%s", towerrt_last_error());
  CHECK(a && towerrt_items_quantize(a, TOWERRT_PRECISION_BF16, pb) == TOWERRT_OK, "%s", towerrt_last_error());
  CHECK(m && test_first_request(m, argv[1], "requests_ids.txt", &q), "no request");
  if (g_test_failures) return test_finish("test_swap");
  shared *sh = calloc(1, sizeof *sh);
  sh->m = m;
  sh->user = (towerrt_features){q.user.ids, q.user.n_ids, q.user.dense, q.user.n_dense};
  sh->k = 700; /* several id blocks, so the pooled session splits them */
  sh->ids = malloc(sh->k * sizeof *sh->ids);
  for (size_t i = 0; i < sh->k; i++) sh->ids[i] = q.items.keys[i % q.items.n_keys];
  towerrt_items *b = NULL;
  CHECK(towerrt_items_load(pb, NULL, &b) == TOWERRT_OK, "%s", towerrt_last_error());
  reference_scores(sh, a, 0);
  reference_scores(sh, b, 1);
  CHECK(memcmp(sh->want[0], sh->want[1], sh->k * sizeof(float)) != 0, "stores A and B must score differently (else the test proves nothing)");
  check_api(m, a, argv[2], sh);

  towerrt_options po;
  towerrt_options_init(&po);
  po.topology = "synthetic:pack:1 core:2 pu:1";
  towerrt_pool *pool = NULL;
  CHECK(towerrt_pool_create(&po, &pool) == TOWERRT_OK, "%s", towerrt_last_error());
  for (int i = 0; i < SCORERS; i++) {
    towerrt_options o;
    towerrt_options_init(&o);
    o.max_k = (uint32_t)sh->k;
    if (i == 0 && pool) o.pool = pool, o.threads = 2;
    CHECK(towerrt_session_create(m, a, &o, &sh->sess[i]) == TOWERRT_OK, "%s", towerrt_last_error());
  }
  /* the loader's references go: the sessions keep A alive */
  towerrt_items_free(a);
  towerrt_items_free(b);
  pthread_t th[SCORERS + 1];
  scorer_arg args[SCORERS];
  swapper_arg sw = {sh, {pa, pb}, 0};
  double t0 = now();
  for (int i = 0; i < SCORERS; i++) {
    args[i] = (scorer_arg){sh, i};
    pthread_create(&th[i], NULL, scorer, &args[i]);
  }
  pthread_create(&th[SCORERS], NULL, swapper, &sw);
  for (int i = 0; i <= SCORERS; i++) pthread_join(th[i], NULL);
  long total = 0;
  for (int i = 0; i < SCORERS; i++) {
    CHECK(sh->bad[i] == 0, "scorer %d: %ld results equal to neither store's own", i, sh->bad[i]);
    CHECK(sh->seen[i][0] > 0 && sh->seen[i][1] > 0, "scorer %d saw store A %ld times, B %ld times: both expected", i, sh->seen[i][0],
          sh->seen[i][1]);
    total += sh->seen[i][0] + sh->seen[i][1];
  }
  CHECK(sw.swaps >= 10, "only %d swaps", sw.swaps);
  printf("%d swaps, %ld requests in %.2f s, every result its store's own\n", sw.swaps, total, now() - t0);
  for (int i = 0; i < SCORERS; i++) towerrt_session_free(sh->sess[i]); /* the last references: the stores go here */
  towerrt_pool_free(pool);
  free(sh->ids), free(sh->want[0]), free(sh->want[1]), free(sh);
  trt_request_free(&q);
  towerrt_model_free(m);
  remove(pa);
  remove(pb);
  return test_finish("test_swap");
}
