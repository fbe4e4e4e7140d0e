/* Many threads, each with its own sessions, on shared models and item
 * stores: every result must be bitwise identical to the same request scored
 * alone on one thread (scores, status, the session's message and the
 * thread's message). Requests are interleaved across the threads: different
 * users, by id and by features, k from 1 to a few hundred (across the id
 * and item-tower block sizes), with and without output_logits, on an int8
 * copy of the store, on sessions that split each request over a worker
 * pool shared by all the threads (threads = 3; the reference runs them on
 * one thread), and some requests that fail (an unknown item id, a user id
 * out of range) so that error messages are produced concurrently too.
 * usage: test_concurrency FIXTURE_DIR...
 * env: TOWERRT_CONCURRENCY_THREADS (default 8), TOWERRT_CONCURRENCY_JOBS
 * (jobs per fixture, default 320). Run under ThreadSanitizer by
 * tools/run_hardening.sh (ctest -L threads). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/text_input.h"
#include "test_util.h"
#include "towerrt.h"

#define MAX_FIXTURES 16
#define MAX_USERS 64
/* Session variants: 0 default options, 1 output_logits, 2 threads = 3 on
 * the shared pool (reference: threads = 1), 3 the int8 store. */
#define N_VARIANTS 4
#define MAX_K 400

typedef struct fixture {
  towerrt_model *model;
  towerrt_items *items, *items_int8; /* items_int8 may be NULL */
  trt_rows catalog;
  trt_request users[MAX_USERS];
  size_t n_users;
} fixture;

typedef struct job {
  size_t fixture, user;
  int by_id, variant;
  size_t k;
  uint64_t *keys;
  int64_t *iids;
  float *idense;
  int64_t *uids; /* a private copy of the user's ids (maybe made invalid) */
  /* the single-thread answer */
  towerrt_status want;
  float *ref;
  char ref_msg[512];
} job;

static fixture g_fx[MAX_FIXTURES];
static size_t g_n_fx;
static job *g_jobs;
static size_t g_n_jobs;
static size_t g_jobs_per_thread;
static pthread_barrier_t g_start;
static towerrt_pool *g_pool; /* NULL if no pool could be created */

static void load_users(fixture *fx, const char *dir, const char *file) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  FILE *f = fopen(path, "r");
  CHECK(f != NULL, "cannot open %s", path);
  if (!f) return;
  trt_text_reader r;
  towerrt_status st = trt_text_open(&r, f, path, "towerrt-requests", fx->model);
  for (int done = 0; !st && fx->n_users < MAX_USERS;) {
    trt_request q = {0};
    st = trt_text_next_request(&r, &q, &done);
    if (st || done) {
      trt_request_free(&q);
      break;
    }
    fx->users[fx->n_users++] = q;
  }
  CHECK(st == TOWERRT_OK, "%s: %s", path, trt_text_error());
  trt_text_close(&r);
  fclose(f);
}

static int load_fixture(fixture *fx, const char *dir) {
  char path[1024];
  snprintf(path, sizeof path, "%s/model.twr", dir);
  if (towerrt_model_load(path, NULL, &fx->model)) {
    CHECK(0, "%s", towerrt_last_error());
    return 0;
  }
  snprintf(path, sizeof path, "%s/items.txt", dir);
  FILE *f = fopen(path, "r");
  trt_text_reader r;
  int done = 0;
  towerrt_status st = f ? trt_text_open(&r, f, path, "towerrt-items", fx->model) : TOWERRT_ERR_IO;
  while (!st && !done) st = trt_text_read_items(&r, &fx->catalog, 1u << 20, &done);
  if (f) {
    trt_text_close(&r);
    fclose(f);
  }
  char store[] = "/tmp/towerrt_concurrency_XXXXXX";
  int fd = mkstemp(store);
  if (fd >= 0) close(fd);
  towerrt_features cat = {fx->catalog.ids, fx->catalog.n_ids, fx->catalog.dense, fx->catalog.n_dense};
  if (!st) st = towerrt_items_build(fx->model, &cat, fx->catalog.keys, fx->catalog.n_keys, store);
  if (!st) st = towerrt_items_load(store, NULL, &fx->items);
  if (!st && towerrt_items_quantize(fx->items, TOWERRT_PRECISION_INT8, store) == TOWERRT_OK &&
      towerrt_items_load(store, NULL, &fx->items_int8) != TOWERRT_OK)
    fx->items_int8 = NULL;
  remove(store);
  CHECK(st == TOWERRT_OK, "%s: %s", dir, towerrt_last_error());
  load_users(fx, dir, "requests_ids.txt");
  load_users(fx, dir, "requests_features.txt");
  return st == TOWERRT_OK && fx->n_users > 0 && fx->catalog.n_keys > 0;
}

/* k: mostly small, sometimes across the 32-row and 256-id blocks. */
static size_t pick_k(uint64_t *rng) {
  switch (test_rand_range(rng, 0, 5)) {
    case 0: return 1;
    case 1: return test_rand_range(rng, 2, 40);
    case 2: return test_rand_range(rng, 30, 70);
    case 3: return test_rand_range(rng, 250, 300);
    default: return test_rand_range(rng, 1, 160);
  }
}

static void make_job(job *j, size_t fi, uint64_t *rng) {
  const fixture *fx = &g_fx[fi];
  const towerrt_model *m = fx->model;
  size_t is = towerrt_model_id_slots(m, TOWERRT_ITEM), iw = towerrt_model_dense_width(m, TOWERRT_ITEM);
  memset(j, 0, sizeof *j);
  j->fixture = fi;
  j->user = test_rand_range(rng, 0, fx->n_users - 1);
  j->by_id = (int)test_rand_range(rng, 0, 1);
  j->variant = (int)test_rand_range(rng, 0, N_VARIANTS - 1);
  j->k = pick_k(rng);
  j->keys = malloc(j->k * sizeof *j->keys);
  j->iids = malloc((j->k * is + 1) * sizeof *j->iids);
  j->idense = malloc((j->k * iw + 1) * sizeof *j->idense);
  j->ref = malloc(j->k * sizeof *j->ref);
  const trt_rows *u = &fx->users[j->user].user;
  j->uids = malloc(u->n_ids * sizeof *j->uids);
  memcpy(j->uids, u->ids, u->n_ids * sizeof *j->uids);
  for (size_t c = 0; c < j->k; c++) {
    size_t row = test_rand_range(rng, 0, fx->catalog.n_keys - 1);
    j->keys[c] = fx->catalog.keys[row];
    memcpy(j->iids + c * is, fx->catalog.ids + row * is, is * sizeof *j->iids);
    memcpy(j->idense + c * iw, fx->catalog.dense + row * iw, iw * sizeof *j->idense);
  }
  /* About one job in ten fails on purpose. */
  size_t fail = test_rand_range(rng, 0, 19);
  if (fail == 0 && j->by_id) j->keys[j->k / 2] = UINT64_C(0xFEEDFACE00000000) + test_rand_range(rng, 0, 1000);
  if (fail == 1) j->uids[0] = -1 - (int64_t)test_rand_range(rng, 0, 1000);
}

static towerrt_status run_job(const job *j, towerrt_session *const *sessions, float *scores) {
  const fixture *fx = &g_fx[j->fixture];
  const trt_rows *u = &fx->users[j->user].user;
  towerrt_features user = {j->uids, u->n_ids, u->dense, u->n_dense};
  towerrt_session *s = sessions[j->fixture * N_VARIANTS + (size_t)j->variant];
  if (j->by_id) return towerrt_score(s, &user, j->keys, j->k, scores);
  size_t is = towerrt_model_id_slots(fx->model, TOWERRT_ITEM), iw = towerrt_model_dense_width(fx->model, TOWERRT_ITEM);
  towerrt_features items = {j->iids, j->k * is, iw ? j->idense : NULL, j->k * iw};
  return towerrt_score_features(s, &user, &items, j->k, scores);
}

/* The reference sessions (pooled = 0) run everything on the caller. */
static int make_sessions(towerrt_session **sessions, int pooled) {
  for (size_t f = 0; f < g_n_fx; f++)
    for (int v = 0; v < N_VARIANTS; v++) {
      towerrt_options o;
      towerrt_options_init(&o);
      o.max_k = MAX_K;
      o.output_logits = v == 1;
      if (v == 2 && pooled && g_pool) {
        o.pool = g_pool;
        o.threads = 3;
      }
      const towerrt_items *items = v == 3 && g_fx[f].items_int8 ? g_fx[f].items_int8 : g_fx[f].items;
      if (towerrt_session_create(g_fx[f].model, items, &o, &sessions[f * N_VARIANTS + (size_t)v])) return 0;
    }
  return 1;
}

static void free_sessions(towerrt_session **sessions) {
  for (size_t i = 0; i < g_n_fx * N_VARIANTS; i++) towerrt_session_free(sessions[i]);
}

typedef struct worker {
  size_t index;
  size_t mismatches, done;
  char first_problem[768];
} worker;

static void *worker_main(void *arg) {
  worker *w = arg;
  towerrt_session *sessions[MAX_FIXTURES * N_VARIANTS] = {0};
  int ok = make_sessions(sessions, 1);
  float *scores = malloc(MAX_K * sizeof *scores);
  size_t *order = malloc(g_n_jobs * sizeof *order);
  uint64_t rng = 0xC0FFEEull + w->index * 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i < g_n_jobs; i++) order[i] = i;
  for (size_t i = g_n_jobs; i > 1; i--) { /* this thread's own interleaving */
    size_t r = test_rand_range(&rng, 0, i - 1), t = order[i - 1];
    order[i - 1] = order[r];
    order[r] = t;
  }
  pthread_barrier_wait(&g_start);
  for (size_t i = 0; ok && i < g_jobs_per_thread && i < g_n_jobs; i++) {
    const job *j = &g_jobs[order[i]];
    towerrt_session *s = sessions[j->fixture * N_VARIANTS + (size_t)j->variant];
    towerrt_status st = run_job(j, sessions, scores);
    const char *problem = NULL;
    if (st != j->want) problem = "status";
    else if (memcmp(scores, j->ref, j->k * sizeof *scores) != 0) problem = "scores (not bitwise identical)";
    else if (st && strcmp(towerrt_session_error(s), j->ref_msg) != 0) problem = "session message";
    else if (st && strcmp(towerrt_last_error(), j->ref_msg) != 0) problem = "thread message";
    if (problem && !w->mismatches++)
      snprintf(w->first_problem, sizeof w->first_problem, "job %zu (%s, k %zu): %s differs: got %s '%s', want %s '%s'", order[i],
               j->by_id ? "by id" : "by features", j->k, problem, towerrt_status_name(st), st ? towerrt_session_error(s) : "",
               towerrt_status_name(j->want), j->ref_msg);
    w->done++;
  }
  if (!ok) snprintf(w->first_problem, sizeof w->first_problem, "session create failed: %s", towerrt_last_error());
  free_sessions(sessions);
  free(scores);
  free(order);
  return NULL;
}

static size_t env_size(const char *name, size_t def) {
  const char *v = getenv(name);
  return v && *v ? (size_t)strtoull(v, NULL, 10) : def;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: test_concurrency FIXTURE_DIR...\n");
    return 2;
  }
  size_t n_threads = env_size("TOWERRT_CONCURRENCY_THREADS", 8), per_fixture = env_size("TOWERRT_CONCURRENCY_JOBS", 320);
  if (n_threads < 2) n_threads = 2;
  uint64_t rng = test_seed("test_concurrency");
  for (int i = 1; i < argc && g_n_fx < MAX_FIXTURES; i++)
    if (load_fixture(&g_fx[g_n_fx], argv[i])) g_n_fx++;
  if (!g_n_fx) return test_finish("test_concurrency");
  g_n_jobs = g_n_fx * per_fixture;
  g_jobs = calloc(g_n_jobs, sizeof *g_jobs);
  /* One worker pool shared by every thread's pooled sessions (2 workers on
   * each NUMA node, not pinned: the test must not depend on the machine). */
  towerrt_options po;
  towerrt_options_init(&po);
  po.threads_per_node = 2;
  po.pin_threads = 0;
  if (towerrt_pool_create(&po, &g_pool) != TOWERRT_OK) {
    printf("test_concurrency: no worker pool (%s): variant 2 runs without one\n", towerrt_last_error());
    g_pool = NULL;
  }
  for (size_t i = 0; i < g_n_jobs; i++) make_job(&g_jobs[i], i % g_n_fx, &rng);

  /* The reference: every job alone, in order, on one thread. */
  towerrt_session *ref_sessions[MAX_FIXTURES * N_VARIANTS] = {0};
  CHECK(make_sessions(ref_sessions, 0), "%s", towerrt_last_error());
  size_t n_errors = 0;
  for (size_t i = 0; i < g_n_jobs; i++) {
    job *j = &g_jobs[i];
    j->want = run_job(j, ref_sessions, j->ref);
    if (j->want) {
      n_errors++;
      snprintf(j->ref_msg, sizeof j->ref_msg, "%s", towerrt_session_error(ref_sessions[j->fixture * N_VARIANTS + (size_t)j->variant]));
    }
    CHECK(j->want == TOWERRT_OK || j->want == TOWERRT_ERR_UNKNOWN_ITEM || j->want == TOWERRT_ERR_ID_OUT_OF_RANGE,
          "job %zu: %s: %s", i, towerrt_status_name(j->want), j->ref_msg);
  }
  free_sessions(ref_sessions);

  /* Each thread runs every job, in its own order, all at once. */
  g_jobs_per_thread = g_n_jobs;
  pthread_t *th = malloc(n_threads * sizeof *th);
  worker *w = calloc(n_threads, sizeof *w);
  pthread_barrier_init(&g_start, NULL, (unsigned)n_threads);
  for (size_t t = 0; t < n_threads; t++) {
    w[t].index = t;
    CHECK(pthread_create(&th[t], NULL, worker_main, &w[t]) == 0, "pthread_create");
  }
  size_t total = 0;
  for (size_t t = 0; t < n_threads; t++) {
    pthread_join(th[t], NULL);
    total += w[t].done;
    CHECK(w[t].mismatches == 0 && !w[t].first_problem[0], "thread %zu: %zu mismatches; first: %s", t, w[t].mismatches, w[t].first_problem);
  }
  pthread_barrier_destroy(&g_start);
  printf("test_concurrency: %zu threads, %zu jobs (%zu failing on purpose) on %zu fixtures, %zu requests scored concurrently%s\n",
         n_threads, g_n_jobs, n_errors, g_n_fx, total, g_pool ? ", a quarter of them on a shared worker pool" : "");
  CHECK(total == n_threads * g_jobs_per_thread, "only %zu of %zu requests ran", total, n_threads * g_jobs_per_thread);
  for (size_t i = 0; i < g_n_jobs; i++) {
    free(g_jobs[i].keys), free(g_jobs[i].iids), free(g_jobs[i].idense), free(g_jobs[i].ref), free(g_jobs[i].uids);
  }
  free(g_jobs), free(th), free(w);
  towerrt_pool_free(g_pool);
  for (size_t f = 0; f < g_n_fx; f++) {
    for (size_t u = 0; u < g_fx[f].n_users; u++) trt_request_free(&g_fx[f].users[u]);
    trt_rows_free(&g_fx[f].catalog);
    towerrt_items_free(g_fx[f].items);
    towerrt_items_free(g_fx[f].items_int8);
    towerrt_model_free(g_fx[f].model);
  }
  return test_finish("test_concurrency");
}
